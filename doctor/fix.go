package doctor

import "github.com/switchboard-dev/switchboard/twilio"

// The one-line fixes of the failures a delivery attempt and a probe share;
// the probe's findings and Fix say the same thing of the same failure.
const (
	fixDNS         = "check the host name's spelling and its DNS A/AAAA records"
	fixConnect     = "make sure the app listens on this host and port and its firewall admits Twilio"
	fixTimeout     = "answer at once and do slow work in the background"
	fixProtocol    = "make the app send a complete HTTP/1.1 response"
	fixTLS         = "use a certificate from a public CA and serve its full chain"
	fixStatus      = "check the app's logs for the error and make it answer 2xx"
	fixTooLarge    = "keep TwiML under 64 kB: shorten it or split it with <Redirect>"
	fixContentType = "send Content-Type: application/xml (or text/xml) with TwiML"
	fixParse       = "send a well-formed <Response>…</Response> document; build TwiML with a library rather than by string concatenation"
	fixSchema      = "use only TwiML verbs and nouns, spelled with their exact case"
	fixNotify      = "answer the client notification with 200 (or 404 when the client is unknown)"
	fixDenied      = "point the route at an address egress.allow permits, or allow its network there"
)

// fixes by error class; Fix falls back to the Twilio code for a class not
// listed.
var classFixes = map[twilio.ErrorClass]string{
	twilio.ClassDNS:         fixDNS,
	twilio.ClassConnect:     fixConnect,
	twilio.ClassTimeout:     fixTimeout,
	twilio.ClassTLS:         fixTLS,
	twilio.ClassProtocol:    fixProtocol,
	twilio.ClassHTTPStatus:  fixStatus,
	twilio.ClassTooLarge:    fixTooLarge,
	twilio.ClassContentType: fixContentType,
	twilio.ClassParse:       fixParse,
	"denied":                fixDenied, // deliver.ClassDenied, which this package cannot import
}

var codeFixes = map[twilio.Code]string{
	twilio.CodeHTTPRetrievalFailure:     fixStatus,
	twilio.CodeHTTPConnectionFailure:    fixTimeout + "; " + fixConnect,
	twilio.CodeHTTPProtocolViolation:    fixProtocol,
	twilio.CodeBadHostName:              fixDNS,
	twilio.CodeCertificateInvalid:       fixTLS,
	twilio.CodeResponseTooLarge:         fixTooLarge,
	twilio.CodeDocumentParseFailure:     fixParse,
	twilio.CodeSchemaValidationWarning:  fixSchema,
	twilio.CodeInvalidContentType:       fixContentType,
	twilio.CodeClientNotificationFailed: fixNotify,
}

// Fix returns the one-line fix of a failed delivery, by its error class
// (a twilio.ErrorClass, or deliver's "denied") and else by the Twilio code
// it maps to; "" when neither is known, as for a success.
func Fix(class string, code twilio.Code) string {
	if f, ok := classFixes[twilio.ErrorClass(class)]; ok {
		return f
	}
	return codeFixes[code]
}
