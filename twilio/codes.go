package twilio

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Code is a Twilio error code, as Twilio's debugger and REST API report it.
type Code int

// Twilio error codes Switchboard reports or reacts to.
const (
	CodeHTTPRetrievalFailure         Code = 11200 // the webhook answered non-2xx, or not at all
	CodeHTTPConnectionFailure        Code = 11205 // connect timeout, or no full response within 15 s
	CodeHTTPProtocolViolation        Code = 11206 // malformed response
	CodeBadHostName                  Code = 11210 // DNS failure
	CodeCertificateInvalid           Code = 11237
	CodeResponseTooLarge             Code = 11750 // TwiML over 64 kB
	CodeDocumentParseFailure         Code = 12100 // malformed TwiML
	CodeSchemaValidationWarning      Code = 12200
	CodeInvalidContentType           Code = 12300 // TwiML without an XML Content-Type
	CodeClientNotificationFailed     Code = 13807
	CodeAuthenticationFailed         Code = 20003
	CodeTooManyRequests              Code = 20429 // never processed, safe to retry
	CodeInvalidTo                    Code = 21211
	CodeInvalidFrom                  Code = 21212
	CodeBodyRequired                 Code = 21602
	CodeFromNotCapable               Code = 21606
	CodeUnsubscribedRecipient        Code = 21610 // the recipient replied STOP
	CodeFromQueueFull                Code = 21611
	CodeToNotSMSCapable              Code = 21614
	CodeBodyTooLong                  Code = 21617
	CodeQueueOverflow                Code = 30001
	CodeUnreachableHandset           Code = 30003
	CodeMessageBlocked               Code = 30004
	CodeUnknownDestination           Code = 30005
	CodeLandlineOrUnreachableCarrier Code = 30006
	CodeMessageFiltered              Code = 30007
	CodeUnknownError                 Code = 30008
	CodeValidityPeriodExpired        Code = 30036
	CodeSignatureInvalid             Code = 57012
	CodeOutsideSessionWindow         Code = 63016
)

var codeDescriptions = map[Code]string{
	CodeHTTPRetrievalFailure:         "HTTP retrieval failure",
	CodeHTTPConnectionFailure:        "HTTP connection failure",
	CodeHTTPProtocolViolation:        "HTTP protocol violation",
	CodeBadHostName:                  "HTTP bad host name",
	CodeCertificateInvalid:           "certificate invalid",
	CodeResponseTooLarge:             "TwiML response body too large",
	CodeDocumentParseFailure:         "document parse failure",
	CodeSchemaValidationWarning:      "schema validation warning",
	CodeInvalidContentType:           "invalid Content-Type",
	CodeClientNotificationFailed:     "client notification URL returned an error",
	CodeAuthenticationFailed:         "authentication failed",
	CodeTooManyRequests:              "too many concurrent requests",
	CodeInvalidTo:                    "invalid To number",
	CodeInvalidFrom:                  "invalid From number",
	CodeBodyRequired:                 "message body required",
	CodeFromNotCapable:               "From number not able to send",
	CodeUnsubscribedRecipient:        "recipient unsubscribed",
	CodeFromQueueFull:                "From number's queue exceeds 10 hours",
	CodeToNotSMSCapable:              "To number not SMS-capable",
	CodeBodyTooLong:                  "message body over 1600 characters",
	CodeQueueOverflow:                "queue overflow",
	CodeUnreachableHandset:           "unreachable handset",
	CodeMessageBlocked:               "message blocked",
	CodeUnknownDestination:           "unknown destination handset",
	CodeLandlineOrUnreachableCarrier: "landline or unreachable carrier",
	CodeMessageFiltered:              "message filtered by carrier",
	CodeUnknownError:                 "unknown error",
	CodeValidityPeriodExpired:        "validity period expired",
	CodeSignatureInvalid:             "signature invalid",
	CodeOutsideSessionWindow:         "outside WhatsApp 24-hour session window",
}

// recipientRefusals are the errors by which Twilio refuses a recipient for
// good, and what Twilio's REST API says with each: a message to the same
// To would be refused the same way whatever its body or sender, until the
// recipient itself changes (replies START after 21610; becomes a valid
// mobile number). Not among them, though they name the recipient: 21612
// (not reachable from that sender: it depends on the From), 21408 (the
// account's geographic permissions, the account's to change), and the
// carriers' 3000x outcomes, which come after Twilio accepted a message and
// are often transient.
var recipientRefusals = map[Code]string{
	CodeInvalidTo:             "The 'To' number %s is not a valid phone number.",
	CodeUnsubscribedRecipient: "Attempt to send to unsubscribed recipient",
	CodeToNotSMSCapable:       "'To' number is not a valid mobile number",
}

// RecipientRefusals returns the codes by which Twilio refuses a recipient
// for good (21211, 21610, 21614), in ascending order.
func RecipientRefusals() []Code {
	return slices.Sorted(maps.Keys(recipientRefusals))
}

// RefusesRecipient reports whether c is one of RecipientRefusals.
func (c Code) RefusesRecipient() bool {
	_, ok := recipientRefusals[c]
	return ok
}

// RefusalMessage returns the message of Twilio's REST API when it refuses
// to with c, one of RecipientRefusals; for any other code, c's String.
func (c Code) RefusalMessage(to string) string {
	msg, ok := recipientRefusals[c]
	switch {
	case !ok:
		return c.String()
	case strings.Contains(msg, "%s"):
		return fmt.Sprintf(msg, to)
	}
	return msg
}

// String returns a short description of a known code, and "Twilio error N"
// for any other.
func (c Code) String() string {
	if d, ok := codeDescriptions[c]; ok {
		return d
	}
	return "Twilio error " + strconv.Itoa(int(c))
}

// MoreInfo returns the URL of Twilio's page about the code, the same
// more_info Twilio's REST API gives, or "" for the zero Code, which stands
// for no error.
func (c Code) MoreInfo() string {
	if c == 0 {
		return ""
	}
	return "https://www.twilio.com/docs/errors/" + strconv.Itoa(int(c))
}

// ErrorClass is the kind of failure a webhook delivery ran into, coarse
// enough to be stable across Go versions and operating systems.
type ErrorClass string

// Error classes. ClassNone is success.
const (
	ClassNone        ErrorClass = ""
	ClassDNS         ErrorClass = "dns"          // the host name did not resolve
	ClassConnect     ErrorClass = "connect"      // refused, unreachable or connect timeout
	ClassTimeout     ErrorClass = "timeout"      // no complete response in time after sending
	ClassTLS         ErrorClass = "tls"          // handshake or certificate failure
	ClassProtocol    ErrorClass = "protocol"     // malformed response, or connection lost mid-response
	ClassHTTPStatus  ErrorClass = "http-status"  // a non-2xx status
	ClassTooLarge    ErrorClass = "too-large"    // a response body over Twilio's limit
	ClassContentType ErrorClass = "content-type" // a response Content-Type Twilio refuses
	ClassParse       ErrorClass = "parse"        // a response body Twilio cannot parse
)

// Code returns the error Twilio reports for the same failure of a webhook:
// 0 for ClassNone, and CodeHTTPRetrievalFailure for a class this package
// does not define.
func (c ErrorClass) Code() Code {
	switch c {
	case ClassNone:
		return 0
	case ClassDNS:
		return CodeBadHostName
	case ClassConnect, ClassTimeout:
		return CodeHTTPConnectionFailure
	case ClassTLS:
		return CodeCertificateInvalid
	case ClassProtocol:
		return CodeHTTPProtocolViolation
	case ClassHTTPStatus:
		return CodeHTTPRetrievalFailure
	case ClassTooLarge:
		return CodeResponseTooLarge
	case ClassContentType:
		return CodeInvalidContentType
	case ClassParse:
		return CodeDocumentParseFailure
	default:
		return CodeHTTPRetrievalFailure
	}
}

// ClassifyError returns the class of an error from net/http's Client.Do or
// from reading a response body: ClassNone for nil, and otherwise
//
//   - ClassDNS for a *net.DNSError;
//   - ClassTLS for a TLS record that is not one, an alert from the peer,
//     or a certificate that does not verify;
//   - ClassConnect for a failed dial, including a dial timeout;
//   - ClassTimeout for a deadline or timeout after the connection was made;
//   - ClassProtocol for anything else: an EOF or reset mid-response, a
//     malformed response, or an error this function does not know.
//
// It never returns the classes that concern a response that did arrive
// (ClassHTTPStatus and those after it); the caller decides those.
func ClassifyError(err error) ErrorClass {
	if err == nil {
		return ClassNone
	}
	// An error that knows its class, such as a failure a listener
	// reports from the far side of its connection (package listener).
	var classed interface{ ErrorClass() ErrorClass }
	if errors.As(err, &classed) {
		return classed.ErrorClass()
	}
	// DNS first: a failed lookup comes wrapped in a dial error.
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return ClassDNS
	}
	if isTLSError(err) {
		return ClassTLS
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return ClassConnect
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ClassTimeout
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return ClassTimeout
	}
	// io.EOF, io.ErrUnexpectedEOF, ECONNRESET and net/http's unexported
	// "malformed HTTP response" errors all land here, as does the unknown:
	// Twilio reports a response it cannot make sense of as a protocol
	// violation.
	return ClassProtocol
}

// isTLSError reports whether err comes from a TLS handshake or certificate
// check.
func isTLSError(err error) bool {
	var (
		recordErr    tls.RecordHeaderError
		alertErr     tls.AlertError
		verifyErr    *tls.CertificateVerificationError
		authorityErr x509.UnknownAuthorityError
		hostnameErr  x509.HostnameError
		invalidErr   x509.CertificateInvalidError
	)
	return errors.As(err, &recordErr) ||
		errors.As(err, &alertErr) ||
		errors.As(err, &verifyErr) ||
		errors.As(err, &authorityErr) ||
		errors.As(err, &hostnameErr) ||
		errors.As(err, &invalidErr)
}
