package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// Opt-out keywords Twilio handles for an account (matched on the whole
// body, trimmed, in any case).
var (
	optOutKeywords = []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
	optInKeywords  = []string{"START", "YES", "UNSTOP"}
	helpKeywords   = []string{"HELP", "INFO"}
)

// InboundMessage is a message a handset sends to one of the simulator's
// numbers.
type InboundMessage struct {
	From      string // the handset; "whatsapp:+1…" for WhatsApp
	To        string // an owned number, with the same channel prefix
	Body      string
	MediaURLs []string // makes it an MMS (MM… SID)
	// ProfileName is the sender's WhatsApp profile name.
	ProfileName string
}

// InboundResult is what became of an inbound message or call.
type InboundResult struct {
	SID     string         `json:"sid"`
	Webhook *WebhookResult `json:"webhook,omitempty"` // nil when the number has no URL
	// OptOut is STOP, START or HELP when the message was one of those
	// keywords.
	OptOut string `json:"opt_out,omitempty"`
	// Replies are the messages created from the <Message> verbs of the
	// answer.
	Replies []string `json:"replies,omitempty"`
}

// ReceiveMessage makes an inbound message happen: the handset's opt-out
// keywords update the account's opt-out list, the number's SMS URL (or its
// fallback) is called as Twilio would, and <Message> verbs in the answer
// become reply messages from the number.
func (s *Sim) ReceiveMessage(ctx context.Context, in InboundMessage) (*InboundResult, error) {
	to, channel := address(in.To)
	from, fromChannel := address(in.From)
	if channel != fromChannel || !twilio.IsE164(from) {
		return nil, restErr(http.StatusBadRequest, twilio.CodeInvalidFrom, "From %q is not a phone number on the same channel as To %q", in.From, in.To)
	}
	s.mu.Lock()
	n, ok := s.numbers[to]
	if !ok {
		s.mu.Unlock()
		return nil, restErr(http.StatusNotFound, twilio.CodeInvalidTo, "To %q is not a number the simulator owns", in.To)
	}
	acct := n.account
	prefix := "SM"
	if len(in.MediaURLs) > 0 {
		prefix = "MM"
	}
	segments, encoding := twilio.Segments(in.Body)
	now := time.Now()
	m := &Message{
		SID: s.newSID(prefix), AccountSID: acct.SID, From: in.From, To: in.To, Body: in.Body,
		MediaURLs: slices.Clone(in.MediaURLs), Direction: "inbound", Segments: segments, Encoding: encoding,
		Created: now, Sent: now, Validity: DefaultValidityPeriod,
	}
	s.messages[m.SID] = m
	acct.messages = append(acct.messages, m)
	s.setStatus(m, StatusReceived, 0, now)
	res := &InboundResult{SID: m.SID, OptOut: keyword(in.Body)}
	switch res.OptOut {
	case "STOP":
		acct.optOuts[from] = true
	case "START":
		delete(acct.optOuts, from)
	}
	num := n.Number
	params := inboundParams(m, acct.SID, segments, in)
	if res.OptOut != "" {
		params.Set("OptOutType", res.OptOut)
	}
	s.mu.Unlock()

	if num.SMSURL == "" {
		return res, nil
	}
	r, err := s.Send(ctx, Webhook{
		AccountSID: acct.SID, Method: num.SMSMethod, URL: num.SMSURL, Params: params,
		Expect: twilio.ExpectMessagingTwiML, FallbackURL: num.SMSFallbackURL, FallbackMethod: num.SMSFallbackMethod,
		ResourceSID: m.SID,
	})
	if err != nil {
		return nil, err
	}
	res.Webhook = r
	if final := r.Final(); final.Error == nil {
		res.Replies = s.reply(acct.SID, in, final.Body)
	}
	return res, nil
}

// reply sends the <Message> verbs of an accepted answer back to the
// handset, and returns their SIDs. A reply Twilio would refuse (the
// handset has opted out, say) is skipped, as Twilio skips it.
func (s *Sim) reply(accountSID string, in InboundMessage, twiml []byte) []string {
	doc, err := twilio.ParseTwiML(twiml)
	if err != nil || len(doc.Messages) == 0 {
		return nil
	}
	var sids []string
	for _, body := range doc.Messages {
		m, err := s.CreateMessage(accountSID, SendParams{To: in.From, From: in.To, Body: body})
		if err != nil {
			s.log.Info("reply not sent", "account", accountSID, "error", err)
			continue
		}
		s.mu.Lock()
		s.messages[m.SID].Direction = "outbound-reply"
		s.mu.Unlock()
		sids = append(sids, m.SID)
	}
	return sids
}

// keyword returns STOP, START or HELP when body is one of their keywords.
func keyword(body string) string {
	w := strings.ToUpper(strings.TrimSpace(body))
	switch {
	case slices.Contains(optOutKeywords, w):
		return "STOP"
	case slices.Contains(optInKeywords, w):
		return "START"
	case slices.Contains(helpKeywords, w):
		return "HELP"
	}
	return ""
}

// inboundParams are an inbound message webhook's parameters.
func inboundParams(m *Message, accountSID string, segments int, in InboundMessage) url.Values {
	v := url.Values{
		"MessageSid":    {m.SID},
		"SmsMessageSid": {m.SID},
		"SmsSid":        {m.SID},
		"AccountSid":    {accountSID},
		"From":          {m.From},
		"To":            {m.To},
		"Body":          {m.Body},
		"NumMedia":      {itoa(len(in.MediaURLs))},
		"NumSegments":   {itoa(segments)},
		"SmsStatus":     {StatusReceived},
		"ApiVersion":    {"2010-04-01"},
	}
	for i, u := range in.MediaURLs {
		v.Set(fmt.Sprintf("MediaUrl%d", i), u)
		v.Set(fmt.Sprintf("MediaContentType%d", i), "image/jpeg")
	}
	if _, channel := address(in.From); channel == "whatsapp" {
		from, _ := address(in.From)
		v.Set("WaId", strings.TrimPrefix(from, "+"))
		v.Set("ProfileName", in.ProfileName)
		v.Set("MessageType", "text")
		if len(in.MediaURLs) > 0 {
			v.Set("MessageType", "image")
		}
	}
	return v
}

// InboundCall is a call a handset makes to one of the simulator's numbers.
type InboundCall struct {
	From, To string
}

// ReceiveCall makes an inbound call happen: the number's voice URL (or
// its fallback) is asked for TwiML as Twilio would.
func (s *Sim) ReceiveCall(ctx context.Context, in InboundCall) (*InboundResult, error) {
	if !twilio.IsE164(in.From) {
		return nil, restErr(http.StatusBadRequest, twilio.CodeInvalidFrom, "From %q is not a phone number", in.From)
	}
	s.mu.Lock()
	n, ok := s.numbers[in.To]
	if !ok {
		s.mu.Unlock()
		return nil, restErr(http.StatusNotFound, twilio.CodeInvalidTo, "To %q is not a number the simulator owns", in.To)
	}
	acct, num, sid := n.account, n.Number, s.newSID("CA")
	s.mu.Unlock()
	res := &InboundResult{SID: sid}
	if num.VoiceURL == "" {
		return res, nil
	}
	params := url.Values{
		"CallSid": {sid}, "AccountSid": {acct.SID}, "From": {in.From}, "To": {in.To},
		"Caller": {in.From}, "Called": {in.To}, "CallStatus": {"ringing"}, "Direction": {"inbound"},
		"ApiVersion": {"2010-04-01"}, "CallToken": {""},
	}
	r, err := s.Send(ctx, Webhook{
		AccountSID: acct.SID, Method: num.VoiceMethod, URL: num.VoiceURL, Params: params,
		Expect: twilio.ExpectVoiceTwiML, FallbackURL: num.VoiceFallbackURL, FallbackMethod: num.VoiceFallbackMethod,
		ResourceSID: sid,
	})
	if err != nil {
		return nil, err
	}
	res.Webhook = r
	return res, nil
}

// ClientNotification is a Voice SDK client notification: Twilio telling
// an app's clientNotificationUrl that a call for one of its clients has
// arrived.
type ClientNotification struct {
	AccountSID string
	URL        string
	From       string            // the caller
	To         string            // the client identity, such as client:alice
	Params     map[string]string // custom parameters (twi_params)
}

// NotifyClient sends a client notification as Twilio does: a JSON POST
// signed with bodySHA256, to which 200 (dispatched) and 404 (no binding)
// are the accepted answers; anything else is 13807.
func (s *Sim) NotifyClient(ctx context.Context, cn ClientNotification) (*InboundResult, error) {
	s.mu.Lock()
	callSID, bridge, msgID := s.newSID("CA"), s.newSID("BT"), s.newSID("WB")
	s.mu.Unlock()
	payload := map[string]any{
		"twi_account_sid":  cn.AccountSID,
		"twi_bridge_token": bridge,
		"twi_call_sid":     callSID,
		"twi_from":         cn.From,
		"twi_to":           cn.To,
		"twi_message_id":   msgID,
		"twi_message_type": "twilio.voice.call",
	}
	if len(cn.Params) > 0 {
		q := url.Values{}
		for k, v := range cn.Params {
			q.Set(k, v)
		}
		payload["twi_params"] = q.Encode()
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("sim: encode client notification: %w", err)
	}
	r, err := s.Send(ctx, Webhook{
		AccountSID: cn.AccountSID, URL: cn.URL, Body: body, ContentType: "application/json",
		Expect: twilio.ExpectClientNotification, ResourceSID: msgID,
	})
	if err != nil {
		return nil, err
	}
	return &InboundResult{SID: msgID, Webhook: r}, nil
}

// OptedOut returns the numbers that have opted out of an account's
// messages, sorted.
func (s *Sim) OptedOut(accountSID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	acct, ok := s.accounts[accountSID]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(acct.optOuts))
	for n := range acct.optOuts {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// The control API: the same operations over HTTP.

func (s *Sim) postInboundMessage(r *http.Request, acct *account) (int, any, error) {
	form, err := parseForm(r)
	if err != nil {
		return 0, nil, err
	}
	in := InboundMessage{From: form.Get("From"), To: form.Get("To"), Body: form.Get("Body"), MediaURLs: form["MediaUrl"], ProfileName: form.Get("ProfileName")}
	if err := s.ownedBy(acct, in.To); err != nil {
		return 0, nil, err
	}
	res, err := s.ReceiveMessage(r.Context(), in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, res, nil
}

func (s *Sim) postInboundCall(r *http.Request, acct *account) (int, any, error) {
	form, err := parseForm(r)
	if err != nil {
		return 0, nil, err
	}
	in := InboundCall{From: form.Get("From"), To: form.Get("To")}
	if err := s.ownedBy(acct, in.To); err != nil {
		return 0, nil, err
	}
	res, err := s.ReceiveCall(r.Context(), in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, res, nil
}

func (s *Sim) postClientNotification(r *http.Request, acct *account) (int, any, error) {
	form, err := parseForm(r)
	if err != nil {
		return 0, nil, err
	}
	cn := ClientNotification{AccountSID: acct.SID, URL: form.Get("Url"), From: form.Get("From"), To: form.Get("To")}
	if u, err := url.Parse(cn.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return 0, nil, restErr(http.StatusBadRequest, 20001, "Url %q must be an http(s) URL", cn.URL)
	}
	res, err := s.NotifyClient(r.Context(), cn)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, res, nil
}

func (s *Sim) listOptOuts(_ *http.Request, acct *account) (int, any, error) {
	return http.StatusOK, map[string]any{"opt_outs": s.OptedOut(acct.SID)}, nil
}

// ownedBy refuses a number the account does not own.
func (s *Sim) ownedBy(acct *account, number string) error {
	n, _ := address(number)
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.numbers[n]; !ok || o.account != acct {
		return restErr(http.StatusNotFound, twilio.CodeInvalidTo, "To %q is not a number of account %s", number, acct.SID)
	}
	return nil
}
