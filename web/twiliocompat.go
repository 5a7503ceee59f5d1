package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/egress"
	"github.com/switchboard-dev/switchboard/outbound"
	"github.com/switchboard-dev/switchboard/twilio"
)

// TwilioPrefix starts every path of the Twilio-compatible API.
const TwilioPrefix = "/2010-04-01/"

// Twilio error codes of the compatible API that package twilio does not
// name. CodeConflict follows Twilio's pattern of HTTP status + 20000
// (20404, 20429): Twilio itself has no idempotency conflict.
const (
	codeInvalidParameter  twilio.Code = 20001
	codeNotFound          twilio.Code = 20404
	codeConflict          twilio.Code = 20409
	codeInternal          twilio.Code = 20500
	codeFromRequired      twilio.Code = 21603
	codeStatusCallback    twilio.Code = 21609
	codeInvalidMediaURL   twilio.Code = 21620
	codeTooManyMedia      twilio.Code = 21623
	codeToRequired        twilio.Code = 21604
	codeInvalidServiceSID twilio.Code = 21701
	maxTwilioFormBytes                = 1 << 20
	twilioAPIVersion                  = "2010-04-01"
)

// twilioError is an answer of the Twilio-compatible API in Twilio's error
// shape.
type twilioError struct {
	status  int
	code    twilio.Code
	message string
}

func (e *twilioError) Error() string { return fmt.Sprintf("%d %d: %s", e.status, e.code, e.message) }

func twilioErr(status int, code twilio.Code, format string, a ...any) error {
	return &twilioError{status: status, code: code, message: fmt.Sprintf(format, a...)}
}

// twilioAPI registers h for pattern, authenticated with Basic auth against
// the account in the path. Every error it returns is answered by
// writeTwilioError.
func (s *Server) twilioAPI(pattern string, h func(w http.ResponseWriter, r *http.Request, account string) error) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		account, err := s.twilioAuthenticate(r)
		if err == nil {
			err = h(w, r, account)
		}
		if err != nil {
			s.writeTwilioError(w, r, err)
		}
	})
}

// writeTwilioError is the one place errors of the Twilio-compatible API
// become answers, in Twilio's shape: {"code", "message", "more_info",
// "status"}. An unexpected error is a 500 (20500) whose detail is logged,
// not answered.
func (s *Server) writeTwilioError(w http.ResponseWriter, r *http.Request, err error) {
	var te *twilioError
	switch {
	case errors.As(err, &te):
	case errors.Is(err, switchboard.ErrConflict):
		te = &twilioError{http.StatusConflict, codeConflict, "The idempotency token was already used with a different request"}
	case errors.Is(err, switchboard.ErrNotFound):
		te = &twilioError{http.StatusNotFound, codeNotFound, "The requested resource " + r.URL.Path + " was not found"}
	default:
		s.logger.Error("Twilio-compatible API", "method", r.Method, "path", r.URL.Path, "err", err)
		te = &twilioError{http.StatusInternalServerError, codeInternal, "Internal Server Error"}
	}
	if te.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
	}
	writeTwilioJSON(w, te.status, map[string]any{
		"code": int(te.code), "message": te.message, "more_info": te.code.MoreInfo(), "status": te.status,
	})
}

func writeTwilioJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// twilioRequest is a create request of the compatible API.
type twilioRequest struct {
	To, From, ServiceSID, Body, StatusCallback string
	MediaURLs                                  []string
}

// validate checks a create request in the order Twilio does, with Twilio's
// codes, and refuses a StatusCallback whose host p refuses (see
// WithEgress).
func (req *twilioRequest) validate(p egress.Policy) error {
	bad := http.StatusBadRequest
	switch {
	case req.To == "":
		return twilioErr(bad, codeToRequired, "A 'To' phone number is required.")
	case req.From == "" && req.ServiceSID == "":
		return twilioErr(bad, codeFromRequired, "A 'From' phone number is required.")
	case req.Body == "" && len(req.MediaURLs) == 0:
		return twilioErr(bad, twilio.CodeBodyRequired, "Message body is required.")
	case len([]rune(req.Body)) > maxBodyChars:
		return twilioErr(bad, twilio.CodeBodyTooLong, "The concatenated message body exceeds the %d character limit.", maxBodyChars)
	case len(req.MediaURLs) > maxMediaURLs:
		return twilioErr(bad, codeTooManyMedia, "Number of media files exceeds allowed limit of %d.", maxMediaURLs)
	case !twilio.IsRecipient(req.To):
		return twilioErr(bad, twilio.CodeInvalidTo, "The 'To' number %s is not a valid phone number.", req.To)
	case req.From != "" && !twilio.IsSender(req.From):
		return twilioErr(bad, twilio.CodeInvalidFrom, "The 'From' number %s is not a valid phone number or shortcode.", req.From)
	case req.ServiceSID != "" && !twilio.IsServiceSID(req.ServiceSID):
		return twilioErr(bad, codeInvalidServiceSID, "The Messaging Service Sid %s is invalid.", req.ServiceSID)
	case req.StatusCallback != "" && !absoluteHTTP(req.StatusCallback):
		return twilioErr(bad, codeStatusCallback, "The StatusCallback URL %s is not a valid URL.", req.StatusCallback)
	case req.StatusCallback != "" && p.CheckURL(req.StatusCallback) != nil:
		return twilioErr(bad, codeStatusCallback, "The StatusCallback URL is not one Switchboard calls: %v.", p.CheckURL(req.StatusCallback))
	}
	for _, m := range req.MediaURLs {
		if !absoluteHTTP(m) {
			return twilioErr(bad, codeInvalidMediaURL, "Media URL %s is invalid.", m)
		}
	}
	return nil
}

// twilioCreate is POST /2010-04-01/Accounts/{Sid}/Messages.json. It
// stores the message before anything is sent and answers 201 with it in
// Twilio's shape. The idempotency key is the I-Twilio-Idempotency-Token
// header, else Idempotency-Key; without either, the create is a message of
// its own, as at Twilio, unless a dedup window is configured (see
// outbound.ServiceOptions.DedupWindow and docs/api.md). A repeat of a key
// with the same payload answers the stored message, 201 again (Twilio has
// no 200 for a create); with another payload it is 409 (20409). A
// recipient on the pool's account's suppression list is refused as Twilio
// refuses it, with the code and message Twilio gave (21610 for an opt-out,
// 21614, 21211) and nothing is stored, unless the key already names a
// stored message.
func (s *Server) twilioCreate(w http.ResponseWriter, r *http.Request, account string) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxTwilioFormBytes)
	if err := r.ParseForm(); err != nil {
		return twilioErr(http.StatusBadRequest, codeInvalidParameter, "Unable to parse the request body: %v", err)
	}
	form := r.PostForm
	req := twilioRequest{
		To: strings.TrimSpace(form.Get("To")), From: strings.TrimSpace(form.Get("From")),
		ServiceSID: strings.TrimSpace(form.Get("MessagingServiceSid")), Body: form.Get("Body"),
		StatusCallback: strings.TrimSpace(form.Get("StatusCallback")), MediaURLs: form["MediaUrl"],
	}
	if err := req.validate(s.egress); err != nil {
		return err
	}
	header := r.Header.Get("I-Twilio-Idempotency-Token")
	if header == "" {
		header = r.Header.Get("Idempotency-Key")
	}
	if len(header) > maxIdempotencyKey {
		return twilioErr(http.StatusBadRequest, codeInvalidParameter, "The idempotency token is longer than %d bytes.", maxIdempotencyKey)
	}
	var refused *outbound.RecipientRefused
	m, _, err := s.messages.Create(r.Context(), outbound.Draft{
		API: switchboard.KeyAPITwilio, Key: header, Account: account, StatusWebhook: req.StatusCallback,
		// The Messaging Service stands where the native API's pool does.
		Payload: switchboard.Payload{To: req.To, Body: req.Body, MediaURLs: req.MediaURLs, Pool: req.ServiceSID, From: req.From},
	})
	switch {
	case errors.Is(err, outbound.ErrUnroutable) && req.From != "":
		return twilioErr(http.StatusBadRequest, twilio.CodeFromNotCapable,
			"The 'From' phone number %s is not a sender of any pool of this account.", req.From)
	case errors.Is(err, outbound.ErrUnroutable):
		return twilioErr(http.StatusBadRequest, twilio.CodeFromNotCapable,
			"No pool of this account serves transactional messages for Messaging Service %s.", req.ServiceSID)
	case errors.As(err, &refused):
		return twilioErr(http.StatusBadRequest, refused.Code, "%s", refused.Code.RefusalMessage(req.To))
	case err != nil:
		return err
	}
	writeTwilioJSON(w, http.StatusCreated, twilioMessageJSON(m))
	return nil
}

// twilioFetch is GET /2010-04-01/Accounts/{Sid}/Messages/{Sid}.json: a
// message of the account by the SID Switchboard gave it at create or the
// one Twilio gave it; one Switchboard does not hold is passed through.
func (s *Server) twilioFetch(w http.ResponseWriter, r *http.Request, account string) error {
	m, passed, err := s.pathMessage(w, r, account)
	if passed || err != nil {
		return err
	}
	writeTwilioJSON(w, http.StatusOK, twilioMessageJSON(m))
	return nil
}

// messageBySID returns the message of account that sid names, by either of
// its SIDs (switchboard.Store.MessageBySID). Another account's message is
// ErrNotFound, as an unknown one is.
func (s *Server) messageBySID(r *http.Request, account, sid string) (*switchboard.OutboundMessage, error) {
	return s.store.MessageBySID(r.Context(), account, sid)
}

// MessageSID is the SID the Twilio-compatible API shows for m, from create
// on: the one Switchboard gave it (OutboundMessage.SID), never Twilio's,
// so an app that keeps the SID create answered finds the message by it in
// fetch and list and in every status callback delivered to it.
func MessageSID(m *switchboard.OutboundMessage) string { return m.SID() }

// twilioStatus is the Twilio status of a message in state st.
func twilioStatus(st switchboard.MessageState) string {
	switch st {
	case switchboard.MessageQueued, switchboard.MessageSending:
		return "queued"
	}
	return string(st)
}

// twilioMessageJSON is m in the shape of Twilio's Message resource.
func twilioMessageJSON(m *switchboard.OutboundMessage) map[string]any {
	sid := MessageSID(m)
	var errCode, errMsg, from, service, sent any
	if m.ErrorCode != 0 {
		errCode, errMsg = m.ErrorCode, twilio.Code(m.ErrorCode).String()
	}
	switch {
	case twilio.IsServiceSID(m.From):
		// Sent through a Messaging Service: Twilio picks the number.
		service = m.From
	case m.From != "":
		from = m.From
	}
	segments, _ := twilio.Segments(m.Body)
	if !m.SentAt.IsZero() {
		sent = rfc2822(m.SentAt)
	}
	uri := TwilioPrefix + "Accounts/" + url.PathEscape(m.AccountSID) + "/Messages/" + sid + ".json"
	return map[string]any{
		"sid":                   sid,
		"account_sid":           m.AccountSID,
		"messaging_service_sid": service,
		"from":                  from,
		"to":                    m.To,
		"body":                  m.Body,
		"status":                twilioStatus(m.State),
		"direction":             "outbound-api",
		"num_segments":          strconv.Itoa(segments),
		"num_media":             strconv.Itoa(len(m.MediaURLs)),
		"error_code":            errCode,
		"error_message":         errMsg,
		"date_created":          rfc2822(m.CreatedAt),
		"date_updated":          rfc2822(m.UpdatedAt),
		"date_sent":             sent,
		"price":                 nil,
		"price_unit":            "USD",
		"api_version":           twilioAPIVersion,
		"uri":                   uri,
		"subresource_uris": map[string]string{
			"media": strings.TrimSuffix(uri, ".json") + "/Media.json",
		},
	}
}

// rfc2822 formats t as Twilio's REST API does.
func rfc2822(t time.Time) string { return t.UTC().Format(time.RFC1123Z) }
