package sim

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// maxFormBytes bounds a REST request's form.
const maxFormBytes = 1 << 20

// Handler returns the simulator's HTTP API:
//
//   - Twilio's REST API for messages, under /2010-04-01/Accounts/{Sid}/,
//     with HTTP Basic auth (account SID and auth token);
//   - Monitor's alerts (the debugger log), under /v1/Alerts;
//   - the simulator's own API, under /sim/v1/Accounts/{Sid}/, to make
//     inbound traffic happen and to inspect opt-outs.
//
// Clients that talk to api.twilio.com and monitor.twilio.com, such as
// twilio-go, work against it when those hosts are sent to it.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	const messages = "/2010-04-01/Accounts/{account}/Messages"
	mux.Handle("POST "+messages+".json", s.api(s.createMessage))
	mux.Handle("GET "+messages+".json", s.api(s.listMessages))
	mux.Handle("GET "+messages+"/{file}", s.api(s.fetchMessage))
	mux.Handle("GET /v1/Alerts", s.api(s.listAlerts))
	mux.Handle("GET /v1/Alerts/{sid}", s.api(s.fetchAlert))
	const control = "/sim/v1/Accounts/{account}/"
	mux.Handle("POST "+control+"InboundMessages", s.api(s.postInboundMessage))
	mux.Handle("POST "+control+"InboundCalls", s.api(s.postInboundCall))
	mux.Handle("POST "+control+"ClientNotifications", s.api(s.postClientNotification))
	mux.Handle("GET "+control+"OptOuts", s.api(s.listOptOuts))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, restErr(http.StatusNotFound, 20404, "The requested resource %s was not found", r.URL.Path))
	})
	return mux
}

// apiFunc is a REST handler for an authenticated account. It returns the
// status and the JSON value to answer with, or an error.
type apiFunc func(r *http.Request, acct *account) (int, any, error)

// api authenticates a request, holds its place in the account's
// concurrency limit for Config.APILatency, runs h and writes its answer or
// its error in Twilio's shape.
func (s *Sim) api(h apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		acct, err := s.authenticate(r)
		if err != nil {
			writeError(w, err)
			return
		}
		release, err := s.admit(acct)
		if err != nil {
			writeError(w, err)
			return
		}
		defer release()
		if s.cfg.APILatency > 0 {
			t := time.NewTimer(s.cfg.APILatency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		status, v, err := h(r, acct)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, status, v)
	})
}

// authenticate checks HTTP Basic auth against the accounts' tokens, in
// constant time. It fails closed: a missing or wrong credential is 20003,
// and so is one for an account other than the path's.
func (s *Sim) authenticate(r *http.Request) (*account, error) {
	user, pass, ok := r.BasicAuth()
	denied := restErr(http.StatusUnauthorized, twilio.CodeAuthenticationFailed, "Authenticate")
	if !ok {
		return nil, denied
	}
	s.mu.Lock()
	acct := s.accounts[user]
	s.mu.Unlock()
	if acct == nil {
		return nil, denied
	}
	match := 0
	for _, tok := range acct.AuthTokens {
		if tok != "" {
			match |= subtle.ConstantTimeCompare([]byte(pass), []byte(tok))
		}
	}
	if match != 1 {
		return nil, denied
	}
	if path := r.PathValue("account"); path != "" && path != acct.SID {
		return nil, denied
	}
	return acct, nil
}

// admit counts a request against its account's concurrency limit, or
// refuses it with 429 and 20429, never processed and safe to retry.
func (s *Sim) admit(acct *account) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if acct.inFlight >= s.cfg.ConcurrencyLimit {
		return nil, restErr(http.StatusTooManyRequests, twilio.CodeTooManyRequests, "Too Many Requests")
	}
	acct.inFlight++
	return func() {
		s.mu.Lock()
		acct.inFlight--
		s.mu.Unlock()
	}, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // Twilio's JSON has plain & in page URIs
	_ = enc.Encode(v)
}

// writeError answers err in Twilio's error shape; an error that is not a
// *RestError is a 500 whose detail stays out of the answer.
func writeError(w http.ResponseWriter, err error) {
	var re *RestError
	if !errors.As(err, &re) {
		re = restErr(http.StatusInternalServerError, 20500, "Internal Server Error")
	}
	body := map[string]any{"code": int(re.Code), "message": re.Message, "more_info": re.Code.MoreInfo(), "status": re.Status}
	if re.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
	}
	writeJSON(w, re.Status, body)
}

// parseForm reads a bounded form body.
func parseForm(r *http.Request) (url.Values, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, restErr(http.StatusBadRequest, 20001, "Unable to parse the request body: %v", err)
	}
	return r.Form, nil
}

func (s *Sim) createMessage(r *http.Request, acct *account) (int, any, error) {
	form, err := parseForm(r)
	if err != nil {
		return 0, nil, err
	}
	p, err := sendParamsFromForm(form)
	if err != nil {
		return 0, nil, err
	}
	m, err := s.CreateMessage(acct.SID, p)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, messageJSON(&m), nil
}

func (s *Sim) fetchMessage(r *http.Request, acct *account) (int, any, error) {
	sid, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	m, found := s.Message(sid)
	if !ok || !found || m.AccountSID != acct.SID {
		return 0, nil, restErr(http.StatusNotFound, 20404, "The requested resource %s was not found", r.URL.Path)
	}
	return http.StatusOK, messageJSON(&m), nil
}

// Message returns a copy of the message with the given SID.
func (s *Sim) Message(sid string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[sid]
	if !ok {
		return Message{}, false
	}
	return m.snapshot(), true
}

// Messages returns copies of an account's messages, outbound and inbound,
// in the order they were created.
func (s *Sim) Messages(accountSID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	acct, ok := s.accounts[accountSID]
	if !ok {
		return nil
	}
	out := make([]Message, len(acct.messages))
	for i, m := range acct.messages {
		out[i] = m.snapshot()
	}
	return out
}

// listMessages lists an account's messages newest first, filtered by To,
// From and DateSent (a day, or DateSent< and DateSent> bounds), a page of
// PageSize (default 50, at most 1000) at a time. PageToken names the last
// message of the previous page.
func (s *Sim) listMessages(r *http.Request, acct *account) (int, any, error) {
	q := r.URL.Query()
	size := 50
	if v := q.Get("PageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, nil, restErr(http.StatusBadRequest, 20001, "PageSize %q must be a positive number", v)
		}
		size = min(n, 1000)
	}
	match, err := dateFilter(q)
	if err != nil {
		return 0, nil, err
	}
	to, from := q.Get("To"), q.Get("From")
	after := strings.TrimPrefix(q.Get("PageToken"), "PA")
	page, _ := strconv.Atoi(q.Get("Page"))

	s.mu.Lock()
	var rows []map[string]any
	var last string
	more := false
	skipping := after != ""
	for _, m := range slices.Backward(acct.messages) {
		if skipping {
			skipping = m.SID != after
			continue
		}
		if (to != "" && m.To != to) || (from != "" && m.From != from) || !match(m) {
			continue
		}
		if len(rows) == size {
			more = true
			break
		}
		rows = append(rows, messageJSON(m))
		last = m.SID
	}
	s.mu.Unlock()

	base := fmt.Sprintf("/2010-04-01/Accounts/%s/Messages.json", acct.SID)
	pageURI := func(p int, token string) string {
		v := url.Values{}
		for _, k := range []string{"To", "From", "DateSent", "DateSent<", "DateSent>"} {
			if q.Has(k) {
				v.Set(k, q.Get(k))
			}
		}
		v.Set("PageSize", strconv.Itoa(size))
		v.Set("Page", strconv.Itoa(p))
		if token != "" {
			v.Set("PageToken", token)
		}
		return base + "?" + v.Encode()
	}
	var next any
	if more {
		next = pageURI(page+1, "PA"+last)
	}
	if rows == nil {
		rows = []map[string]any{}
	}
	return http.StatusOK, map[string]any{
		"messages":          rows,
		"page":              page,
		"page_size":         size,
		"start":             page * size,
		"end":               page*size + max(len(rows)-1, 0),
		"uri":               base + "?" + r.URL.RawQuery,
		"first_page_uri":    pageURI(0, ""),
		"next_page_uri":     next,
		"previous_page_uri": nil,
	}, nil
}

// dateFilter reads the DateSent filters: DateSent is a day (YYYY-MM-DD, or
// a timestamp whose day is used, as twilio-go sends), DateSent< and
// DateSent> bound the time sent. Unsent messages never match a filter.
func dateFilter(q url.Values) (func(*Message) bool, error) {
	parse := func(key string) (time.Time, bool, error) {
		v := q.Get(key)
		if v == "" {
			return time.Time{}, false, nil
		}
		for _, layout := range []string{time.DateOnly, time.RFC3339} {
			if t, err := time.Parse(layout, v); err == nil {
				return t, true, nil
			}
		}
		return time.Time{}, false, restErr(http.StatusBadRequest, 20001, "%s %q is not a date (YYYY-MM-DD) or an RFC 3339 time", key, v)
	}
	day, hasDay, err := parse("DateSent")
	if err != nil {
		return nil, err
	}
	before, hasBefore, err := parse("DateSent<")
	if err != nil {
		return nil, err
	}
	after, hasAfter, err := parse("DateSent>")
	if err != nil {
		return nil, err
	}
	return func(m *Message) bool {
		if !hasDay && !hasBefore && !hasAfter {
			return true
		}
		if m.Sent.IsZero() {
			return false
		}
		sent := m.Sent.UTC()
		if hasDay && sent.Format(time.DateOnly) != day.UTC().Format(time.DateOnly) {
			return false
		}
		if hasBefore && !sent.Before(before) {
			return false
		}
		return !hasAfter || sent.After(after)
	}, nil
}

func (s *Sim) listAlerts(r *http.Request, acct *account) (int, any, error) {
	level := r.URL.Query().Get("LogLevel")
	var rows []map[string]any
	for _, a := range slices.Backward(s.Alerts(acct.SID)) {
		if level == "" || a.LogLevel == level {
			rows = append(rows, alertJSON(&a))
		}
	}
	if rows == nil {
		rows = []map[string]any{}
	}
	return http.StatusOK, map[string]any{
		"alerts": rows,
		"meta": map[string]any{
			"page": 0, "page_size": len(rows), "key": "alerts",
			"first_page_url": "https://monitor.twilio.com/v1/Alerts?PageSize=50&Page=0",
			"url":            "https://monitor.twilio.com/v1/Alerts?PageSize=50&Page=0",
			"next_page_url":  nil, "previous_page_url": nil,
		},
	}, nil
}

func (s *Sim) fetchAlert(r *http.Request, acct *account) (int, any, error) {
	for _, a := range s.Alerts(acct.SID) {
		if a.SID == r.PathValue("sid") {
			return http.StatusOK, alertJSON(&a), nil
		}
	}
	return 0, nil, restErr(http.StatusNotFound, 20404, "The requested resource %s was not found", r.URL.Path)
}
