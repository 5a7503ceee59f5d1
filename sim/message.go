package sim

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/twilio"
)

// Message statuses.
const (
	StatusAccepted    = "accepted" // a Messaging Service has it, no sender chosen yet
	StatusQueued      = "queued"
	StatusSending     = "sending"
	StatusSent        = "sent"
	StatusDelivered   = "delivered"
	StatusUndelivered = "undelivered"
	StatusFailed      = "failed"
	StatusReceived    = "received" // an inbound message
)

// Message is a message as the simulator keeps it.
type Message struct {
	SID            string
	AccountSID     string
	ServiceSID     string
	From, To       string
	Body           string
	MediaURLs      []string
	Direction      string // outbound-api, outbound-reply or inbound
	Status         string
	ErrorCode      twilio.Code // 0 unless failed or undelivered
	Segments       int
	Encoding       string
	StatusCallback string
	Validity       time.Duration
	Created        time.Time
	Updated        time.Time
	Sent           time.Time // when it left the sender; zero before
	// History lists every status the message has had, in order.
	History []StatusChange
}

// StatusChange is a message's move to a status.
type StatusChange struct {
	Status string
	At     time.Time
}

// SendParams are the parameters of a message create request.
type SendParams struct {
	To                  string
	From                string
	MessagingServiceSID string
	Body                string
	MediaURLs           []string
	StatusCallback      string
	ValidityPeriod      time.Duration // default 36000 s
}

// RestError is an error of the REST API, in Twilio's shape.
type RestError struct {
	Status  int         // HTTP status
	Code    twilio.Code // Twilio's error code
	Message string
}

func (e *RestError) Error() string {
	return fmt.Sprintf("%d %d: %s", e.Status, int(e.Code), e.Message)
}

func restErr(status int, code twilio.Code, format string, args ...any) *RestError {
	return &RestError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Twilio's magic test numbers.
const (
	magicValidFrom     = "+15005550006"
	magicInvalidNumber = "+15005550001" // 21212 as From, 21211 as To
	magicFromNotOwned  = "+15005550007" // 21606 as From
	magicOptedOutTo    = "+15005550004" // 21610
	magicNotCapableTo  = "+15005550009" // 21614
)

// sendParamsFromForm reads a create request's form.
func sendParamsFromForm(form url.Values) (SendParams, error) {
	p := SendParams{
		To:                  strings.TrimSpace(form.Get("To")),
		From:                strings.TrimSpace(form.Get("From")),
		MessagingServiceSID: strings.TrimSpace(form.Get("MessagingServiceSid")),
		Body:                form.Get("Body"),
		MediaURLs:           form["MediaUrl"],
		StatusCallback:      form.Get("StatusCallback"),
	}
	if v := form.Get("ValidityPeriod"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 36000 {
			return p, restErr(http.StatusBadRequest, 21626, "ValidityPeriod %q must be a whole number of seconds from 1 to 36000", v)
		}
		p.ValidityPeriod = time.Duration(n) * time.Second
	}
	return p, nil
}

// address strips a channel prefix ("whatsapp:") from a number.
func address(n string) (number, channel string) {
	if c, rest, ok := strings.Cut(n, ":"); ok {
		return rest, c
	}
	return n, ""
}

// validTo reports whether to is a number a message can go to.
func validTo(to string) bool {
	n, channel := address(to)
	return (channel == "" || channel == "whatsapp") && (twilio.IsE164(n) || (channel == "" && twilio.IsShortCode(n)))
}

// check validates p in Twilio's order and returns the first problem.
func (p *SendParams) check() *RestError {
	switch {
	case p.To == "":
		return restErr(http.StatusBadRequest, 21604, "A 'To' phone number is required.")
	case p.From == "" && p.MessagingServiceSID == "":
		return restErr(http.StatusBadRequest, 21603, "A 'From' phone number is required.")
	case p.Body == "" && len(p.MediaURLs) == 0:
		return restErr(http.StatusBadRequest, twilio.CodeBodyRequired, "Message body is required.")
	case utf8.RuneCountInString(p.Body) > 1600:
		return restErr(http.StatusBadRequest, twilio.CodeBodyTooLong, "The concatenated message body exceeds the 1600 character limit.")
	case len(p.MediaURLs) > 10:
		return restErr(http.StatusBadRequest, 21623, "Number of media files exceeds allowed limit of 10.")
	case !validTo(p.To) || p.To == magicInvalidNumber:
		return restErr(http.StatusBadRequest, twilio.CodeInvalidTo, "The 'To' number %s is not a valid phone number.", p.To)
	case p.To == magicNotCapableTo:
		return restErr(http.StatusBadRequest, twilio.CodeToNotSMSCapable, "The 'To' phone number: %s, is not currently reachable using the 'From' phone number via SMS.", p.To)
	}
	if p.StatusCallback != "" {
		if u, err := url.Parse(p.StatusCallback); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return restErr(http.StatusBadRequest, 21609, "The StatusCallback URL %s is not a valid URL.", p.StatusCallback)
		}
	}
	if p.From != "" {
		n, _ := address(p.From)
		if p.From == magicInvalidNumber || (!twilio.IsSender(n)) {
			return restErr(http.StatusBadRequest, twilio.CodeInvalidFrom, "The 'From' number %s is not a valid phone number, shortcode, or alphanumeric sender ID.", p.From)
		}
	}
	return nil
}

// messageJSON is a message in the REST API's shape.
func messageJSON(m *Message) map[string]any {
	var errCode, errMsg any
	if m.ErrorCode != 0 {
		errCode, errMsg = int(m.ErrorCode), m.ErrorCode.String()
	}
	var sent, service any
	if !m.Sent.IsZero() {
		sent = rfc2822(m.Sent)
	}
	if m.ServiceSID != "" {
		service = m.ServiceSID
	}
	uri := fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s.json", m.AccountSID, m.SID)
	return map[string]any{
		"sid":                   m.SID,
		"account_sid":           m.AccountSID,
		"messaging_service_sid": service,
		"from":                  m.From,
		"to":                    m.To,
		"body":                  m.Body,
		"status":                m.Status,
		"direction":             m.Direction,
		"num_segments":          strconv.Itoa(m.Segments),
		"num_media":             strconv.Itoa(len(m.MediaURLs)),
		"error_code":            errCode,
		"error_message":         errMsg,
		"date_created":          rfc2822(m.Created),
		"date_updated":          rfc2822(m.Updated),
		"date_sent":             sent,
		"price":                 nil,
		"price_unit":            "USD",
		"api_version":           "2010-04-01",
		"uri":                   uri,
		"subresource_uris": map[string]string{
			"media":    strings.TrimSuffix(uri, ".json") + "/Media.json",
			"feedback": strings.TrimSuffix(uri, ".json") + "/Feedback.json",
		},
	}
}

// rfc2822 formats t as Twilio's REST API does.
func rfc2822(t time.Time) string { return t.UTC().Format(time.RFC1123Z) }

// snapshot returns a copy of m safe to hand out.
func (m *Message) snapshot() Message {
	c := *m
	c.MediaURLs = append([]string(nil), m.MediaURLs...)
	c.History = append([]StatusChange(nil), m.History...)
	return c
}
