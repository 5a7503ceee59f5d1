package twilio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard"
)

// Twilio's Debugger webhook (the Console's "Debugger" webhook URL) is a
// signed form POST: Sid (NO…), AccountSid, ParentAccountSid for a
// subaccount, Timestamp (ISO 8601), Level (Error or Warning), PayloadType
// (application/json) and Payload, a JSON document with resource_sid,
// service_sid, error_code, more_info and, for a webhook's failure,
// webhook.request {url, method, headers, parameters} and
// webhook.response {status_code, headers, body}.

// MaxDebuggerPayload bounds the Payload field of a Debugger webhook that
// is stored: Twilio's carry a webhook's request and an excerpt of its
// answer, well under it.
const MaxDebuggerPayload = 32 << 10

// Bounds of the fields taken out of a payload: longer ones are cut (the
// whole payload is kept as received).
const (
	maxDebuggerURL  = 2048
	maxDebuggerText = 256
)

var (
	debuggerSID = regexp.MustCompile(`^NO[0-9a-f]{32}$`)
	accountSID  = regexp.MustCompile(`^AC[0-9a-f]{32}$`)
	resourceSID = regexp.MustCompile(`^[A-Z]{2}[0-9a-f]{32}$`)
)

// ErrDebuggerForm is the error of a Debugger webhook whose form is not
// one Twilio sends.
var ErrDebuggerForm = errors.New("not a Debugger webhook")

// ParseDebugger reads a Debugger webhook's form as an alert of account,
// the account whose token verified its signature. It refuses, with an
// error wrapping ErrDebuggerForm, a Sid that is not NO and 32 hex digits,
// an AccountSid other than account, a Payload over MaxDebuggerPayload
// or that is not a JSON object, and a Level or Timestamp that is
// missing. The alert's EventID and ReceivedAt are left to the caller.
func ParseDebugger(form url.Values, account string) (*switchboard.DebuggerAlert, error) {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrDebuggerForm, fmt.Sprintf(f, a...))
	}
	sid := form.Get("Sid")
	if !debuggerSID.MatchString(sid) {
		return nil, bad("Sid %q: want NO and 32 hex digits", clip(sid, 40))
	}
	acct := form.Get("AccountSid")
	if !accountSID.MatchString(acct) {
		return nil, bad("AccountSid %q: want AC and 32 hex digits", clip(acct, 40))
	}
	if acct != account {
		return nil, bad("AccountSid %s is not the route's account %s", acct, account)
	}
	level := form.Get("Level")
	if level == "" || len(level) > 16 || !printable(level) {
		return nil, bad("Level %q: want Error or Warning", clip(level, 16))
	}
	ts := form.Get("Timestamp")
	if ts == "" {
		ts = form.Get("TimeStamp") // as older documentation spells it
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return nil, bad("Timestamp %q: want ISO 8601", clip(ts, 40))
	}
	payloadType := form.Get("PayloadType")
	if payloadType == "" {
		payloadType = "application/json"
	}
	if payloadType != "application/json" {
		return nil, bad("PayloadType %q: want application/json", clip(payloadType, 40))
	}
	payload := []byte(form.Get("Payload"))
	if len(payload) > MaxDebuggerPayload {
		return nil, bad("Payload of %d bytes exceeds the %d-byte limit", len(payload), MaxDebuggerPayload)
	}
	var p debuggerPayload
	if err := json.Unmarshal(payload, &p); err != nil || !bytes.HasPrefix(bytes.TrimSpace(payload), []byte("{")) {
		return nil, bad("Payload is not a JSON object")
	}
	a := &switchboard.DebuggerAlert{
		Sid:         sid,
		AccountSID:  acct,
		Level:       level,
		Timestamp:   at.UTC(),
		PayloadType: payloadType,
		ErrorCode:   p.ErrorCode.int(),
		Payload:     payload,
	}
	if resourceSID.MatchString(p.ResourceSID) {
		a.ResourceSID = p.ResourceSID
	}
	if w := p.Webhook; w != nil {
		a.URL = clip(text(w.Request.URL), maxDebuggerURL)
		if m := strings.ToUpper(text(w.Request.Method)); m == "GET" || m == "POST" {
			a.Method = m
		}
		if s := w.Response.StatusCode.int(); s >= 100 && s <= 999 {
			a.Status = s
		}
	}
	if u, err := url.Parse(text(p.MoreInfo.URL())); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
		a.MoreInfo = clip(u.String(), maxDebuggerURL)
	}
	if a.MoreInfo == "" && a.ErrorCode > 0 {
		a.MoreInfo = Code(a.ErrorCode).MoreInfo()
	}
	return a, nil
}

// debuggerPayload is what is read of a Payload; the rest is kept as
// received.
type debuggerPayload struct {
	ResourceSID string       `json:"resource_sid"`
	ServiceSID  string       `json:"service_sid"`
	ErrorCode   numberOrText `json:"error_code"`
	MoreInfo    moreInfo     `json:"more_info"`
	Webhook     *struct {
		Type    string `json:"type"`
		Request struct {
			URL    string `json:"url"`
			Method string `json:"method"`
		} `json:"request"`
		Response struct {
			StatusCode numberOrText `json:"status_code"`
		} `json:"response"`
	} `json:"webhook"`
}

// numberOrText is a number Twilio may send as a JSON number or a string.
type numberOrText string

func (n *numberOrText) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*n = numberOrText(s)
		return nil
	}
	var num json.Number
	if err := json.Unmarshal(b, &num); err != nil {
		return nil // neither: taken as none, the payload is kept anyway
	}
	*n = numberOrText(num)
	return nil
}

func (n numberOrText) int() int {
	v, err := strconv.Atoi(strings.TrimSpace(string(n)))
	if err != nil || v < 0 || v > 999999 {
		return 0
	}
	return v
}

// moreInfo is the payload's more_info: a sub-document whose shape
// depends on the product; a link to Twilio's page on the code is taken
// from it when it has one (or when it is one).
type moreInfo struct{ raw json.RawMessage }

func (m *moreInfo) UnmarshalJSON(b []byte) error {
	m.raw = append(m.raw[:0], b...)
	return nil
}

// URL returns the link more_info holds, if any.
func (m moreInfo) URL() string {
	var s string
	if json.Unmarshal(m.raw, &s) == nil {
		return s
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(m.raw, &doc) != nil {
		return ""
	}
	for _, k := range []string{"url", "more_info", "moreInfo"} {
		if json.Unmarshal(doc[k], &s) == nil && s != "" {
			return s
		}
	}
	return ""
}

// text is v if it is printable UTF-8, else empty: fields shown and
// searched must not carry control characters.
func text(v string) string {
	if !printable(v) {
		return ""
	}
	return v
}

func printable(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// clip cuts v to at most n bytes of valid UTF-8.
func clip(v string, n int) string {
	if len(v) <= n {
		return v
	}
	v = v[:n]
	for len(v) > 0 && !utf8.ValidString(v) {
		v = v[:len(v)-1]
	}
	return v
}

// DebuggerKey is the idempotency key of a Debugger webhook's event: the
// alert's Sid within its account, whatever else a retry of it changes.
func DebuggerKey(account, sid string) string { return "debugger:" + account + ":" + sid }
