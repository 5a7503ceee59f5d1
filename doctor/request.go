package doctor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/switchboard-dev/switchboard/twilio"
)

// Content types of Twilio's requests.
const (
	formType      = "application/x-www-form-urlencoded"
	voiceFormType = formType + "; charset=UTF-8"
	jsonType      = "application/json"
)

// Numbers in the 555-01xx range, reserved for fiction.
const (
	callerNumber = "+12125550123"
	appNumber    = "+14155550100"
)

// sid returns a random Twilio SID with the given two-letter prefix.
func sid(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails
	return prefix + hex.EncodeToString(b[:])
}

// payload is what a probe sends before any redirect.
type payload struct {
	contentType string
	body        []byte     // nil for GET
	query       url.Values // parameters added to the URL's query for GET
}

// newPayload returns the parameters Twilio sends for a request of the
// probe's kind, as a form body, a query or a JSON body.
func newPayload(o *normalized) (payload, error) {
	account := o.AccountSID
	if account == "" {
		account = sid("AC")
	}
	var params url.Values
	contentType := formType
	switch o.Kind {
	case KindSMS:
		msg := sid("SM")
		params = url.Values{
			"MessageSid":    {msg},
			"SmsSid":        {msg},
			"SmsMessageSid": {msg},
			"AccountSid":    {account},
			"From":          {callerNumber},
			"FromCountry":   {"US"},
			"To":            {appNumber},
			"ToCountry":     {"US"},
			// Not ASCII, so that the app's decoding and signature check
			// meet what real traffic carries.
			"Body":        {"Hi! Is the café open tomorrow? ☕"},
			"NumMedia":    {"0"},
			"NumSegments": {"1"},
			"SmsStatus":   {"received"},
			"ApiVersion":  {"2010-04-01"},
		}
	case KindVoice:
		contentType = voiceFormType
		params = url.Values{
			"CallSid":    {sid("CA")},
			"AccountSid": {account},
			"CallStatus": {"ringing"},
			"Direction":  {"inbound"},
			"From":       {callerNumber},
			"Caller":     {callerNumber},
			"To":         {appNumber},
			"Called":     {appNumber},
			"ApiVersion": {"2010-04-01"},
		}
	case KindStatus:
		msg := sid("SM")
		params = url.Values{
			"MessageSid":     {msg},
			"SmsSid":         {msg},
			"MessageStatus":  {"delivered"},
			"SmsStatus":      {"delivered"},
			"AccountSid":     {account},
			"From":           {appNumber},
			"To":             {callerNumber},
			"RawDlrDoneDate": {o.Now().UTC().Format("0601021504")},
			"ApiVersion":     {"2010-04-01"},
		}
	case KindClientNotification:
		body, err := json.Marshal(map[string]string{
			"twi_account_sid":  account,
			"twi_bridge_token": sid("BT"),
			"twi_call_sid":     sid("CA"),
			"twi_from":         callerNumber,
			"twi_to":           "client:alice",
			"twi_message_id":   sid("WB"),
			"twi_message_type": "twilio.voice.call",
		})
		if err != nil {
			return payload{}, fmt.Errorf("encode client notification: %w", err)
		}
		return payload{contentType: jsonType, body: body}, nil
	}
	if o.Method == "GET" {
		return payload{query: params}, nil
	}
	return payload{contentType: contentType, body: []byte(params.Encode())}, nil
}

// withQuery returns u with params appended to its query, leaving the
// existing query byte for byte as it was.
func withQuery(u *url.URL, params url.Values) *url.URL {
	if len(params) == 0 {
		return u
	}
	v := *u
	if v.RawQuery == "" {
		v.RawQuery = params.Encode()
	} else {
		v.RawQuery += "&" + params.Encode()
	}
	return &v
}

// signed is a request ready to send and what its signature covered.
type signed struct {
	req       *http.Request
	signedURL string // the URL the signature covers, which is the URL sent
	signature string // "" when unsigned
}

// newRequest builds one of a probe's requests as Twilio sends it: its
// headers, its signature over the exact URL sent, and for a JSON body the
// bodySHA256 Twilio adds to the URL.
func newRequest(ctx context.Context, o *normalized, idempotencyToken, method string, u *url.URL, contentType string, body []byte) (*signed, error) {
	// SignRequest is also what adds bodySHA256 to a JSON request's URL,
	// which Twilio does whether or not anyone checks the signature.
	signedURL, signature, err := twilio.SignRequest(o.AuthToken, u.String(), contentType, body)
	if err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	target, err := url.Parse(signedURL)
	if err != nil {
		return nil, fmt.Errorf("parse signed URL: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body == nil {
		req.Body, req.GetBody, req.ContentLength = nil, nil, 0
	}
	req.URL = target // keep the URL exactly as signed
	h := req.Header
	h.Set("User-Agent", "TwilioProxy/1.1")
	h.Set("X-Home-Region", "us1")
	h.Set("I-Twilio-Idempotency-Token", idempotencyToken)
	h.Set("Accept", "*/*")
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	s := &signed{req: req, signedURL: signedURL}
	if o.AuthToken != "" {
		h.Set("X-Twilio-Signature", signature)
		s.signature = signature
	}
	return s, nil
}
