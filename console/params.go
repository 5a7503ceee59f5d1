package console

import (
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Bounds of what a page's query may hold.
const (
	maxParams     = 32
	maxParamBytes = 512
	// maxPageSize is the most rows a list shows; a larger limit is cut to
	// it, and defaultPageSize is what a list shows without one.
	maxPageSize     = 200
	defaultPageSize = 50
)

// checkParams refuses a query or form that no console page sends: too
// many parameters, overlong ones, or ones that are not printable UTF-8
// (a NUL byte, which PostgreSQL refuses in text, or other controls).
func checkParams(v url.Values) error {
	n := 0
	for k, vals := range v {
		n += len(vals)
		if n > maxParams {
			return badRequest("Too many parameters.")
		}
		if !cleanParam(k) {
			return badRequest("A parameter's name is not valid text.")
		}
		for _, x := range vals {
			if !cleanParam(x) {
				return badRequest("Parameter %q is too long or not valid text.", k)
			}
		}
	}
	return nil
}

func cleanParam(s string) bool {
	if len(s) > maxParamBytes || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// timeLayouts are the forms since and until take: RFC 3339, and what an
// HTML datetime-local input sends (read as UTC).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}

// inputTime is how a time is written back into a datetime-local input.
const inputTime = "2006-01-02T15:04:05"

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			// Whole seconds, as the form writes them back.
			return t.UTC().Truncate(time.Second), nil
		}
	}
	return time.Time{}, badRequest("%s: want a time like 2026-01-02T15:04:05Z.", name)
}

// timeRange reads since and until.
func timeRange(v url.Values) (since, until time.Time, err error) {
	if since, err = parseTime("since", v.Get("since")); err != nil {
		return
	}
	if until, err = parseTime("until", v.Get("until")); err != nil {
		return
	}
	if !since.IsZero() && !until.IsZero() && !until.After(since) {
		return since, until, badRequest("until must be after since.")
	}
	return since, until, nil
}

// pageSize reads limit: a positive number, cut to maxPageSize however
// large.
func pageSize(v string) (int, error) {
	if v == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if errors.Is(err, strconv.ErrRange) {
		return maxPageSize, nil
	}
	if err != nil || n == 0 {
		return 0, badRequest("limit: want a positive number.")
	}
	return int(min(n, maxPageSize)), nil
}

// cursorPattern is the form of a list's cursor: the id of the last row of
// the previous page, or, in a time range, its time and id (see
// store.listing), both letters, digits and dashes.
var cursorPattern = regexp.MustCompile(`^[0-9A-Za-z-]{1,64}$`)

func cursor(v string) (string, error) {
	if v != "" && !cursorPattern.MatchString(v) {
		return "", badRequest("cursor: not one this console gave.")
	}
	return v, nil
}

// errorCode reads a Twilio error code.
func errorCode(name, v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 99999 {
		return 0, badRequest("%s: want a Twilio error code such as 11200.", name)
	}
	return n, nil
}

// sidPattern is a Twilio SID: two capital letters and 32 hex digits.
var sidPattern = regexp.MustCompile(`^[A-Z]{2}[0-9a-fA-F]{32}$`)

// search is what the inspector's free search named.
type search struct {
	SID, Number, EventID string
}

// parseSearch reads the inspector's q: a message or call SID, a phone
// number (E.164, on a channel such as whatsapp: too; spaces, dashes and
// parentheses are dropped) or an event id.
func parseSearch(q string) (search, error) {
	q = strings.TrimSpace(q)
	switch {
	case q == "":
		return search{}, nil
	case sidPattern.MatchString(q):
		return search{SID: q}, nil
	}
	if u, err := uuid.Parse(q); err == nil && len(q) == 36 {
		return search{EventID: u.String()}, nil
	}
	if n := phoneNumber(q); n != "" {
		return search{Number: n}, nil
	}
	return search{}, badRequest("Search takes a message or call SID (SM…, MM…, CA…), a phone number (+15551234567) or an event id.")
}

// phoneNumber is q as a number Twilio writes, or "" when it is none.
func phoneNumber(q string) string {
	n := strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -().", r) {
			return -1
		}
		return r
	}, q)
	if n != "" && n[0] >= '1' && n[0] <= '9' && !strings.ContainsRune(n, ':') {
		n = "+" + n // typed without its +
	}
	if twilio.IsRecipient(n) {
		return n
	}
	return ""
}

// eventQuery is the inspector's filters, as typed (to fill the form and
// build links) and as the store takes them.
type eventQuery struct {
	Route, Kind, State, Code, Q string
	window

	filter switchboard.EventFilter
	search search
}

func parseEventQuery(v url.Values) (*eventQuery, error) {
	q := &eventQuery{
		Route: strings.TrimSpace(v.Get("route")), Kind: v.Get("kind"), State: v.Get("state"),
		Code: strings.TrimSpace(v.Get("code")), Q: strings.TrimSpace(v.Get("q")),
	}
	f := &q.filter
	f.Route, f.Kind, f.State = q.Route, switchboard.Kind(q.Kind), switchboard.State(q.State)
	if f.Kind != "" && !f.Kind.Valid() {
		return nil, badRequest("kind: %q is not a webhook kind.", q.Kind)
	}
	if f.State != "" && !f.State.Valid() {
		return nil, badRequest("state: %q is not a delivery state.", q.State)
	}
	var err error
	if f.TwilioCode, err = errorCode("code", q.Code); err != nil {
		return nil, err
	}
	if q.window, f.Since, f.Until, err = parseWindow(v); err != nil {
		return nil, err
	}
	f.Limit, f.Cursor = q.Limit, q.Cursor
	if q.search, err = parseSearch(q.Q); err != nil {
		return nil, err
	}
	f.SID, f.Number = q.search.SID, q.search.Number
	return q, nil
}

// window is what every list page takes besides its filters: a time
// range, as the page's inputs show it, a page size and a cursor.
type window struct {
	Since, Until string
	Limit        int
	Cursor       string
}

// parseWindow reads a list page's range, size and cursor, and returns the
// range as the store's filters take it.
func parseWindow(v url.Values) (w window, since, until time.Time, err error) {
	if since, until, err = timeRange(v); err != nil {
		return window{}, since, until, err
	}
	w.Since, w.Until = inputValue(since), inputValue(until)
	if w.Limit, err = pageSize(v.Get("limit")); err != nil {
		return window{}, since, until, err
	}
	w.Cursor, err = cursor(v.Get("cursor"))
	return w, since, until, err
}

// put writes w's range and a page size other than the default into v;
// the cursor is the pager's own.
func (w window) put(v url.Values) {
	set(v, "since", w.Since)
	set(v, "until", w.Until)
	if w.Limit != defaultPageSize {
		v.Set("limit", strconv.Itoa(w.Limit))
	}
}

func inputValue(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(inputTime)
}

// values are the filters as a query, for links that keep them; without
// the cursor and the default limit.
func (q *eventQuery) values() url.Values {
	v := url.Values{}
	set(v, "route", q.Route)
	set(v, "kind", q.Kind)
	set(v, "state", q.State)
	set(v, "code", q.Code)
	set(v, "q", q.Q)
	q.window.put(v)
	return v
}

func set(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

// replayFilter is the bulk replay of the inspector's filters, or why
// there is none: the store replays by route, kind, code, state and time,
// not by SID or number, and would replay more than the list shows.
func (q *eventQuery) replayFilter() (switchboard.ReplayFilter, string) {
	if q.Q != "" {
		return switchboard.ReplayFilter{}, "A replay by filter cannot select by SID or phone number: clear the search to replay by route, kind, state, code and time."
	}
	f := q.filter
	rf := switchboard.ReplayFilter{Route: f.Route, Kind: f.Kind, State: f.State, TwilioCode: f.TwilioCode, Since: f.Since, Until: f.Until}
	if err := rf.Validate(); err != nil {
		if rf.State != "" && !rf.State.Terminal() {
			return rf, "Only delivered or dead events can be replayed: events " + string(rf.State) + " already have a delivery scheduled."
		}
		return rf, "A replay needs at least one filter (route, kind, state, code, since or until), so that nothing is replayed by accident."
	}
	return rf, ""
}

// requestQuery is the requests tab's filters.
type requestQuery struct {
	Route, Outcome string
	window
	filter switchboard.RequestFilter
}

func parseRequestQuery(v url.Values) (*requestQuery, error) {
	q := &requestQuery{Route: strings.TrimSpace(v.Get("route")), Outcome: v.Get("outcome")}
	f := &q.filter
	f.Route, f.Outcome = q.Route, switchboard.Outcome(q.Outcome)
	switch f.Outcome {
	case "", switchboard.OutcomeAccepted, switchboard.OutcomeDuplicate, switchboard.OutcomeRejected:
	default:
		return nil, badRequest("outcome: %q is not accepted, duplicate or rejected.", q.Outcome)
	}
	var err error
	if q.window, f.Since, f.Until, err = parseWindow(v); err != nil {
		return nil, err
	}
	f.Limit, f.Cursor = q.Limit, q.Cursor
	return q, nil
}

func (q *requestQuery) values() url.Values {
	v := url.Values{}
	set(v, "route", q.Route)
	set(v, "outcome", q.Outcome)
	q.window.put(v)
	return v
}

// messageQuery is the messages page's filters.
type messageQuery struct {
	Pool, Purpose, Template, Status, Code, Number string
	window
	filter switchboard.OutboundFilter
}

func parseMessageQuery(v url.Values) (*messageQuery, error) {
	q := &messageQuery{
		Pool: strings.TrimSpace(v.Get("pool")), Purpose: v.Get("purpose"), Template: strings.TrimSpace(v.Get("template")),
		Status: v.Get("status"), Code: strings.TrimSpace(v.Get("code")), Number: strings.TrimSpace(v.Get("number")),
	}
	f := &q.filter
	f.Pool, f.Purpose, f.Template, f.State = q.Pool, switchboard.Purpose(q.Purpose), q.Template, switchboard.MessageState(q.Status)
	if f.Purpose != "" && !f.Purpose.Valid() {
		return nil, badRequest("purpose: %q is not otp, transactional or marketing.", q.Purpose)
	}
	if f.State != "" && !f.State.Valid() {
		return nil, badRequest("status: %q is not a message status.", q.Status)
	}
	if !switchboard.ValidTemplate(f.Template) {
		return nil, badRequest("template: not a template name.")
	}
	var err error
	if f.ErrorCode, err = errorCode("code", q.Code); err != nil {
		return nil, err
	}
	if q.Number != "" {
		if f.Number = phoneNumber(q.Number); f.Number == "" {
			return nil, badRequest("number: want a phone number such as +15551234567.")
		}
	}
	if q.window, f.Since, f.Until, err = parseWindow(v); err != nil {
		return nil, err
	}
	f.Limit, f.Cursor = q.Limit, q.Cursor
	return q, nil
}

func (q *messageQuery) values() url.Values {
	v := url.Values{}
	set(v, "pool", q.Pool)
	set(v, "purpose", q.Purpose)
	set(v, "template", q.Template)
	set(v, "status", q.Status)
	set(v, "code", q.Code)
	set(v, "number", q.Number)
	q.window.put(v)
	return v
}

// listURL is a list page's address with a query; the bare page without
// one.
func listURL(page string, v url.Values) string {
	if len(v) == 0 {
		return Prefix + page
	}
	return Prefix + page + "?" + v.Encode()
}
