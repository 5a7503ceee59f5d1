package web_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/storetest"
	"github.com/switchboard-dev/switchboard/web"
)

// seedEvents stores eight events, created a minute apart from base:
//
//	0 /sms    message         dead
//	1 /status message-status  delivered
//	2 /sms    message         retrying
//	3 /status message-status  pending
//	4 /sms    message         pending
//	5 /status message-status  pending
//	6 /sms    message         pending
//	7 /voice  voice (CallSid) pending
func seedEvents(t *testing.T, f *fixture) []*switchboard.Ingest {
	t.Helper()
	var items []*switchboard.Ingest
	for i := range 8 {
		at := base.Add(time.Duration(i) * time.Minute)
		key := fmt.Sprintf("k%d", i)
		var it *switchboard.Ingest
		switch {
		case i == 7:
			it = storetest.NewItem("/voice", key, at)
			it.Event.Kind, it.Event.MessageSID, it.Event.CallSID = switchboard.KindVoice, "", "CA7"
		case i%2 == 1:
			it = storetest.NewItem("/status", key, at)
			it.Event.Kind = switchboard.KindMessageStatus
		default:
			it = storetest.NewItem("/sms", key, at)
		}
		items = append(items, it)
	}
	f.ingest(t, items...)
	f.record(t,
		result(items[0].Event.ID, 1, 410, switchboard.StateDead),
		result(items[1].Event.ID, 1, 200, switchboard.StateDelivered),
		result(items[2].Event.ID, 1, 503, switchboard.StateRetrying),
	)
	return items
}

// eventIDs returns the ids of the events of items at the given indexes.
func eventIDs(items []*switchboard.Ingest, idx ...int) []string {
	ids := []string{}
	for _, i := range idx {
		ids = append(ids, items[i].Event.ID)
	}
	return ids
}

func listEvents(t *testing.T, f *fixture, q url.Values) web.Page[web.EventJSON] {
	t.Helper()
	resp, body := f.get(t, "/api/v1/events?"+q.Encode())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/events?%s = %d %s", q.Encode(), resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	return decodeJSON[web.Page[web.EventJSON]](t, body)
}

func TestListEventsFilters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	items := seedEvents(t, f)
	at := func(minutes int) string { return base.Add(time.Duration(minutes) * time.Minute).Format(time.RFC3339) }

	tests := []struct {
		name     string
		query    url.Values
		want     []int // indexes into items, newest first
		wantNext bool
	}{
		{"no filter", url.Values{}, []int{7, 6, 5, 4, 3, 2, 1, 0}, false},
		{"route", url.Values{"route": {"/status"}}, []int{5, 3, 1}, false},
		{"unknown route", url.Values{"route": {"/nowhere"}}, []int{}, false},
		{"kind message", url.Values{"kind": {"message"}}, []int{6, 4, 2, 0}, false},
		{"kind message-status", url.Values{"kind": {"message-status"}}, []int{5, 3, 1}, false},
		{"kind voice", url.Values{"kind": {"voice"}}, []int{7}, false},
		{"kind with no events", url.Values{"kind": {"fallback"}}, []int{}, false},
		{"state pending", url.Values{"state": {"pending"}}, []int{7, 6, 5, 4, 3}, false},
		{"state retrying", url.Values{"state": {"retrying"}}, []int{2}, false},
		{"state delivered", url.Values{"state": {"delivered"}}, []int{1}, false},
		{"state dead", url.Values{"state": {"dead"}}, []int{0}, false},
		{"message sid", url.Values{"sid": {"SMk3"}}, []int{3}, false},
		{"call sid", url.Values{"sid": {"CA7"}}, []int{7}, false},
		{"unknown sid", url.Values{"sid": {"SMnope"}}, []int{}, false},
		{"since is inclusive", url.Values{"since": {at(5)}}, []int{7, 6, 5}, false},
		{"until is exclusive", url.Values{"until": {at(2)}}, []int{1, 0}, false},
		{"since and until", url.Values{"since": {at(2)}, "until": {at(4)}}, []int{3, 2}, false},
		{"since with a zone offset", url.Values{"since": {"2026-11-01T13:05:00+01:00"}}, []int{7, 6, 5}, false},
		{"since with fractional seconds", url.Values{"since": {"2026-11-01T12:04:59.5Z"}}, []int{7, 6, 5}, false},
		{"route and since", url.Values{"route": {"/sms"}, "since": {at(1)}}, []int{6, 4, 2}, false},
		{"route and state", url.Values{"route": {"/sms"}, "state": {"pending"}}, []int{6, 4}, false},
		{"limit", url.Values{"limit": {"2"}}, []int{7, 6}, true},
		{"limit with filter", url.Values{"kind": {"message"}, "limit": {"3"}}, []int{6, 4, 2}, true},
		{"limit equal to the count", url.Values{"limit": {"8"}}, []int{7, 6, 5, 4, 3, 2, 1, 0}, false},
		{"limit above the maximum", url.Values{"limit": {"100000"}}, []int{7, 6, 5, 4, 3, 2, 1, 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			page := listEvents(t, f, tt.query)
			got := []string{}
			for _, e := range page.Items {
				got = append(got, e.ID)
			}
			if want := eventIDs(items, tt.want...); !slices.Equal(got, want) {
				t.Errorf("events = %v, want %v", got, want)
			}
			if (page.Next != "") != tt.wantNext {
				t.Errorf("next = %q, want a cursor: %v", page.Next, tt.wantNext)
			}
		})
	}
}

func TestListEventsItem(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	items := seedEvents(t, f)

	page := listEvents(t, f, url.Values{"state": {"retrying"}})
	if len(page.Items) != 1 {
		t.Fatalf("%d retrying events, want 1", len(page.Items))
	}
	want := web.EventJSON{
		ID: items[2].Event.ID, RequestID: items[2].Request.ID, Route: "/sms", AccountSID: "AC1", Kind: "message",
		MessageSID: "SMk2", IdempotencyKey: "k2", State: "retrying", Attempts: 1, ResponseStatus: 200,
		CreatedAt: base.Add(2 * time.Minute), UpdatedAt: base.Add(time.Minute + 1500*time.Microsecond),
		NextAttemptAt: base.Add(time.Hour), LastError: "HTTP 503",
	}
	if got := page.Items[0]; got != want {
		t.Errorf("event:\n got %+v\nwant %+v", got, want)
	}
}

func TestListEventsPagination(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	items := seedEvents(t, f)

	tests := []struct {
		name      string
		query     url.Values
		want      []int
		wantPages int
	}{
		{"pages of three", url.Values{"limit": {"3"}}, []int{7, 6, 5, 4, 3, 2, 1, 0}, 3},
		{"pages of one", url.Values{"limit": {"1"}}, []int{7, 6, 5, 4, 3, 2, 1, 0}, 8},
		{"filtered pages", url.Values{"state": {"pending"}, "limit": {"2"}}, []int{7, 6, 5, 4, 3}, 3},
		{"filtered by range", url.Values{"since": {base.Add(time.Minute).Format(time.RFC3339)}, "route": {"/sms"}, "limit": {"1"}}, []int{6, 4, 2}, 3},
		{"one page", url.Values{"limit": {"50"}}, []int{7, 6, 5, 4, 3, 2, 1, 0}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			limit, _ := strconv.Atoi(tt.query.Get("limit"))
			var got []string
			seen := map[string]bool{}
			pages := 0
			for q := tt.query; ; {
				pages++
				if pages > len(items)+1 {
					t.Fatalf("still paging after %d pages: %v", pages, got)
				}
				page := listEvents(t, f, q)
				if len(page.Items) > limit {
					t.Errorf("page %d has %d events, limit %d", pages, len(page.Items), limit)
				}
				for _, e := range page.Items {
					if seen[e.ID] {
						t.Errorf("event %s on two pages", e.ID)
					}
					seen[e.ID] = true
					got = append(got, e.ID)
				}
				if page.Next == "" {
					break
				}
				q = url.Values{}
				for k, v := range tt.query {
					q[k] = v
				}
				q.Set("cursor", page.Next)
			}
			if want := eventIDs(items, tt.want...); !slices.Equal(got, want) {
				t.Errorf("walked %v, want %v", got, want)
			}
			if pages != tt.wantPages {
				t.Errorf("%d pages, want %d", pages, tt.wantPages)
			}
		})
	}
}

func TestInvalidListParameters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	tests := []struct {
		path string
		want string // the parameter the message must name
	}{
		{"/api/v1/events?kind=sms", "kind"},
		{"/api/v1/events?kind=MESSAGE", "kind"},
		{"/api/v1/events?state=done", "state"},
		{"/api/v1/events?state=Pending", "state"},
		{"/api/v1/events?since=yesterday", "since"},
		{"/api/v1/events?since=2026-11-01", "since"},
		{"/api/v1/events?since=2026-11-01T12:00:00", "since"},
		{"/api/v1/events?since=1793534400", "since"},
		{"/api/v1/events?until=2026-13-01T00:00:00Z", "until"},
		{"/api/v1/events?limit=0", "limit"},
		{"/api/v1/events?limit=-1", "limit"},
		{"/api/v1/events?limit=ten", "limit"},
		{"/api/v1/events?limit=1.5", "limit"},
		{"/api/v1/events?limit=99999999999999999999", "limit"},
		{"/api/v1/requests?outcome=lost", "outcome"},
		{"/api/v1/requests?outcome=Accepted", "outcome"},
		{"/api/v1/requests?since=soon", "since"},
		{"/api/v1/requests?until=later", "until"},
		{"/api/v1/requests?limit=0", "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			resp, body := f.get(t, tt.path)
			checkError(t, resp, body, http.StatusBadRequest, tt.want)
		})
	}
}

func TestGetEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	delivered := storetest.NewItem("/sms", "detail", base)
	binary := storetest.NewItem("/sms", "detail-binary", base.Add(time.Minute))
	binary.Request.Header.Set("Content-Type", "application/octet-stream")
	binary.Request.Body = []byte{0xff, 0xfe, 0x00, 'x', 0x80}
	f.ingest(t, delivered, binary)
	f.record(t, result(delivered.Event.ID, 1, 500, switchboard.StateRetrying))
	f.record(t, result(delivered.Event.ID, 2, 204, switchboard.StateDelivered))

	// Decoded loosely, to check the wire format rather than this package's
	// own struct tags.
	type detail struct {
		Event    map[string]json.RawMessage   `json:"event"`
		Request  map[string]json.RawMessage   `json:"request"`
		Attempts []map[string]json.RawMessage `json:"attempts"`
	}
	get := func(t *testing.T, id string) detail {
		t.Helper()
		resp, body := f.get(t, "/api/v1/events/"+id)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET event = %d %s", resp.StatusCode, body)
		}
		return decodeJSON[detail](t, body)
	}
	// checkFields checks the fields of obj given as JSON; a value of "" means
	// the field must be absent.
	checkFields := func(t *testing.T, what string, obj map[string]json.RawMessage, want map[string]string) {
		t.Helper()
		for k, v := range want {
			got, ok := obj[k]
			switch {
			case v == "" && ok:
				t.Errorf("%s.%s = %s, want it absent", what, k, got)
			case v != "" && !jsonEqual(t, got, v):
				t.Errorf("%s.%s = %s, want %s", what, k, got, v)
			}
		}
	}
	quote := func(s string) string { return strconv.Quote(s) }

	t.Run("text body and attempts", func(t *testing.T) {
		t.Parallel()
		d := get(t, delivered.Event.ID)
		checkFields(t, "event", d.Event, map[string]string{
			"id":              quote(delivered.Event.ID),
			"request_id":      quote(delivered.Request.ID),
			"route":           `"/sms"`,
			"kind":            `"message"`,
			"message_sid":     `"SMdetail"`,
			"state":           `"delivered"`,
			"attempts":        "2",
			"created_at":      `"2026-11-01T12:00:00Z"`,
			"delivered_at":    `"2026-11-01T12:02:00.0015Z"`,
			"next_attempt_at": "",
			"call_sid":        "",
		})
		checkFields(t, "request", d.Request, map[string]string{
			"id":          quote(delivered.Request.ID),
			"method":      `"POST"`,
			"url":         `"https://hooks.example.com/sms?x=1"`,
			"body":        quote(string(delivered.Request.Body)),
			"body_base64": "",
			"outcome":     `"accepted"`,
			"event_id":    quote(delivered.Event.ID),
			"remote_addr": `"127.0.0.1:5555"`,
		})
		var header http.Header
		if err := json.Unmarshal(d.Request["header"], &header); err != nil || header.Get("X-Twilio-Signature") != "sig==" {
			t.Errorf("request.header = %s, want the stored headers", d.Request["header"])
		}
		if len(d.Attempts) != 2 {
			t.Fatalf("%d attempts, want 2", len(d.Attempts))
		}
		checkFields(t, "attempts[0]", d.Attempts[0], map[string]string{
			"number":      "1",
			"started_at":  `"2026-11-01T12:01:00Z"`,
			"target_url":  `"http://app.internal/sms"`,
			"status_code": "500",
			"latency_ms":  "1.5",
			"error_class": `"http-status"`,
			"twilio_code": "11200",
			"error":       `"HTTP 500"`,
		})
		checkFields(t, "attempts[1]", d.Attempts[1], map[string]string{
			"number":      "2",
			"status_code": "204",
			"latency_ms":  "1.5",
			"twilio_code": "",
			"error":       "",
			"error_class": "",
		})
	})

	t.Run("binary body and no attempts", func(t *testing.T) {
		t.Parallel()
		d := get(t, binary.Event.ID)
		checkFields(t, "event", d.Event, map[string]string{
			"state":           `"pending"`,
			"attempts":        "0",
			"next_attempt_at": `"2026-11-01T12:01:00Z"`,
			"delivered_at":    "",
		})
		checkFields(t, "request", d.Request, map[string]string{
			"body":        "",
			"body_base64": quote(base64.StdEncoding.EncodeToString(binary.Request.Body)),
		})
		if d.Attempts == nil || len(d.Attempts) != 0 {
			t.Errorf("attempts = %v, want an empty list", d.Attempts)
		}
	})

	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		for _, id := range []string{"nope", "01900000-0000-7000-8000-000000000000", delivered.Request.ID} {
			resp, body := f.get(t, "/api/v1/events/"+url.PathEscape(id))
			checkError(t, resp, body, http.StatusNotFound, "not found")
		}
	})
}

func TestRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	accepted := storetest.NewItem("/sms", "req", base)
	duplicate := storetest.NewItem("/sms", "req", base.Add(time.Second))
	rejected := storetest.NewItem("/voice", "req-rejected", base.Add(2*time.Second))
	rejected.Request.Outcome, rejected.Request.Reason, rejected.Event = switchboard.OutcomeRejected, "bad signature", nil
	rejected.Request.Body = []byte{0x00, 0xc3} // truncated UTF-8
	other := storetest.NewItem("/status", "req-other", base.Add(3*time.Second))
	f.ingest(t, accepted, duplicate, rejected, other)
	if !duplicate.Duplicate {
		t.Fatal("second request with the same key was not stored as a duplicate")
	}
	reqIDs := func(items ...*switchboard.Ingest) []string {
		ids := []string{}
		for _, it := range items {
			ids = append(ids, it.Request.ID)
		}
		return ids
	}

	t.Run("list", func(t *testing.T) {
		tests := []struct {
			name     string
			query    string
			want     []string
			wantNext bool
		}{
			{"no filter", "", reqIDs(other, rejected, duplicate, accepted), false},
			{"outcome accepted", "outcome=accepted", reqIDs(other, accepted), false},
			{"outcome duplicate", "outcome=duplicate", reqIDs(duplicate), false},
			{"outcome rejected", "outcome=rejected", reqIDs(rejected), false},
			{"rejected shorthand", "rejected=true", reqIDs(rejected), false},
			{"duplicate shorthand", "duplicate=true", reqIDs(duplicate), false},
			{"shorthand off", "rejected=false", reqIDs(other, rejected, duplicate, accepted), false},
			{"event id", "event_id=" + accepted.Event.ID, reqIDs(duplicate, accepted), false},
			{"event id of another event", "event_id=" + other.Event.ID, reqIDs(other), false},
			{"unknown event id", "event_id=nope", reqIDs(), false},
			{"event id and outcome", "event_id=" + accepted.Event.ID + "&duplicate=true", reqIDs(duplicate), false},
			{"route", "route=/voice", reqIDs(rejected), false},
			{"until", "until=" + url.QueryEscape(base.Add(time.Second).Format(time.RFC3339)), reqIDs(accepted), false},
			{"since", "since=" + url.QueryEscape(base.Add(2*time.Second).Format(time.RFC3339)), reqIDs(other, rejected), false},
			{"limit", "limit=3", reqIDs(other, rejected, duplicate), true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				resp, body := f.get(t, "/api/v1/requests?"+tt.query)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status = %d %s", resp.StatusCode, body)
				}
				page := decodeJSON[web.Page[web.RequestJSON]](t, body)
				got := []string{}
				for _, r := range page.Items {
					got = append(got, r.ID)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("requests = %v, want %v", got, tt.want)
				}
				if (page.Next != "") != tt.wantNext {
					t.Errorf("next = %q, want a cursor: %v", page.Next, tt.wantNext)
				}
			})
		}
	})

	t.Run("cursor", func(t *testing.T) {
		t.Parallel()
		_, body := f.get(t, "/api/v1/requests?limit=3")
		first := decodeJSON[web.Page[web.RequestJSON]](t, body)
		_, body = f.get(t, "/api/v1/requests?limit=3&cursor="+url.QueryEscape(first.Next))
		second := decodeJSON[web.Page[web.RequestJSON]](t, body)
		if len(second.Items) != 1 || second.Items[0].ID != accepted.Request.ID || second.Next != "" {
			t.Errorf("second page = %+v, want only the oldest request and no cursor", second)
		}
	})

	t.Run("get", func(t *testing.T) {
		tests := []struct {
			name string
			id   string
			want web.RequestJSON
		}{
			{"accepted", accepted.Request.ID, web.RequestJSON{
				Outcome: "accepted", EventID: accepted.Event.ID, Route: "/sms", ReceivedAt: base,
				Body: new(string(accepted.Request.Body)),
			}},
			{"duplicate", duplicate.Request.ID, web.RequestJSON{
				Outcome: "duplicate", EventID: accepted.Event.ID, Reason: "duplicate of event " + accepted.Event.ID,
				Route: "/sms", ReceivedAt: base.Add(time.Second), Body: new(string(duplicate.Request.Body)),
			}},
			{"rejected", rejected.Request.ID, web.RequestJSON{
				Outcome: "rejected", Reason: "bad signature", Route: "/voice", ReceivedAt: base.Add(2 * time.Second),
				BodyBase64: "AMM=",
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				resp, body := f.get(t, "/api/v1/requests/"+tt.id)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status = %d %s", resp.StatusCode, body)
				}
				got := decodeJSON[web.RequestJSON](t, body)
				if got.ID != tt.id || got.Outcome != tt.want.Outcome || got.EventID != tt.want.EventID ||
					got.Reason != tt.want.Reason || got.Route != tt.want.Route || !got.ReceivedAt.Equal(tt.want.ReceivedAt) ||
					got.Method != http.MethodPost || got.Header.Get("I-Twilio-Idempotency-Token") == "" {
					t.Errorf("request:\n got %+v\nwant %+v", got, tt.want)
				}
				if (got.Body == nil) != (tt.want.Body == nil) || got.Body != nil && *got.Body != *tt.want.Body {
					t.Errorf("body = %v, want %v", got.Body, tt.want.Body)
				}
				if got.BodyBase64 != tt.want.BodyBase64 {
					t.Errorf("body_base64 = %q, want %q", got.BodyBase64, tt.want.BodyBase64)
				}
			})
		}
	})

	t.Run("get unknown", func(t *testing.T) {
		t.Parallel()
		for _, id := range []string{"nope", accepted.Event.ID} {
			resp, body := f.get(t, "/api/v1/requests/"+id)
			checkError(t, resp, body, http.StatusNotFound, "not found")
		}
	})
}

// jsonEqual reports whether got and want encode the same JSON value.
func jsonEqual(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	if got == nil {
		return false
	}
	return reflect.DeepEqual(decodeJSON[any](t, got), decodeJSON[any](t, []byte(want)))
}

// replaySeed is one event in each situation a replay must tell apart.
type replaySeed struct {
	smsDead, smsDelivered, smsPending, voiceDead *switchboard.Ingest
}

func seedReplay(t *testing.T, f *fixture) replaySeed {
	t.Helper()
	s := replaySeed{
		smsDead:      storetest.NewItem("/sms", "rp-sms-dead", base),
		smsDelivered: storetest.NewItem("/sms", "rp-sms-delivered", base.Add(time.Minute)),
		smsPending:   storetest.NewItem("/sms", "rp-sms-pending", base.Add(2*time.Minute)),
		voiceDead:    storetest.NewItem("/voice", "rp-voice-dead", base.Add(3*time.Minute)),
	}
	f.ingest(t, s.smsDead, s.smsDelivered, s.smsPending, s.voiceDead)
	f.record(t,
		result(s.smsDead.Event.ID, 1, 410, switchboard.StateDead),
		result(s.smsDelivered.Event.ID, 1, 200, switchboard.StateDelivered),
		result(s.voiceDead.Event.ID, 1, 410, switchboard.StateDead),
	)
	return s
}

func (s replaySeed) byName() map[string]*switchboard.Ingest {
	return map[string]*switchboard.Ingest{
		"smsDead": s.smsDead, "smsDelivered": s.smsDelivered, "smsPending": s.smsPending, "voiceDead": s.voiceDead,
	}
}

// checkStates checks every seeded event's state; the ones not in changed
// must be as seeded.
func (s replaySeed) checkStates(t *testing.T, f *fixture, changed map[string]switchboard.State) {
	t.Helper()
	want := map[string]switchboard.State{
		"smsDead": switchboard.StateDead, "smsDelivered": switchboard.StateDelivered,
		"smsPending": switchboard.StatePending, "voiceDead": switchboard.StateDead,
	}
	for name, st := range changed {
		want[name] = st
	}
	for name, it := range s.byName() {
		if got := f.state(t, it.Event.ID); got != want[name] {
			t.Errorf("%s is %s, want %s", name, got, want[name])
		}
	}
}

func checkScheduled(t *testing.T, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status = %d %s, want 202", resp.StatusCode, body)
	}
	if got := decodeJSON[map[string]int](t, body); len(got) != 1 || got["scheduled"] != want {
		t.Errorf("answer = %s, want {\"scheduled\": %d}", body, want)
	}
}

func TestReplayEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		event   string // a replaySeed name
		want    []int  // scheduled by successive replays
		changed map[string]switchboard.State
	}{
		{"dead", "smsDead", []int{1}, map[string]switchboard.State{"smsDead": switchboard.StatePending}},
		{"delivered", "smsDelivered", []int{1}, map[string]switchboard.State{"smsDelivered": switchboard.StatePending}},
		{"pending", "smsPending", []int{0}, nil},
		{"twice", "voiceDead", []int{1, 0, 0}, map[string]switchboard.State{"voiceDead": switchboard.StatePending}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			seed := seedReplay(t, f)
			it := seed.byName()[tt.event]
			for _, want := range tt.want {
				resp, body := f.post(t, "/api/v1/events/"+it.Event.ID+"/replay", "")
				checkScheduled(t, resp, body, want)
			}
			seed.checkStates(t, f, tt.changed)
			if tt.changed != nil {
				ev, err := f.store.Event(t.Context(), it.Event.ID)
				if err != nil {
					t.Fatal(err)
				}
				if ev.NextAttemptAt.IsZero() {
					t.Error("replayed event has no delivery scheduled")
				}
			}
		})
	}

	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		seed := seedReplay(t, f)
		for _, id := range []string{"nope", "01900000-0000-7000-8000-000000000000", seed.smsDead.Request.ID} {
			resp, body := f.post(t, "/api/v1/events/"+id+"/replay", "")
			checkError(t, resp, body, http.StatusNotFound, "not found")
		}
		seed.checkStates(t, f, nil)
	})
}

func TestReplayBulk(t *testing.T) {
	t.Parallel()
	pending := switchboard.StatePending
	tests := []struct {
		name    string
		body    string
		want    int
		changed map[string]switchboard.State
	}{
		{"route and state", `{"route":"/sms","state":"dead"}`, 1, map[string]switchboard.State{"smsDead": pending}},
		{"route", `{"route":"/sms"}`, 2, map[string]switchboard.State{"smsDead": pending, "smsDelivered": pending}},
		{"state dead", `{"state":"dead"}`, 2, map[string]switchboard.State{"smsDead": pending, "voiceDead": pending}},
		{"state delivered", `{"state":"delivered"}`, 1, map[string]switchboard.State{"smsDelivered": pending}},
		{"since", `{"since":"2026-11-01T12:01:00Z"}`, 2, map[string]switchboard.State{"smsDelivered": pending, "voiceDead": pending}},
		{"until", `{"until":"2026-11-01T12:01:00Z"}`, 1, map[string]switchboard.State{"smsDead": pending}},
		{"route and range", `{"route":"/sms","since":"2026-11-01T12:00:30Z","until":"2026-11-01T13:00:00Z"}`, 1,
			map[string]switchboard.State{"smsDelivered": pending}},
		{"nothing matches", `{"route":"/nowhere"}`, 0, nil},
		{"only pending events match", `{"route":"/sms","since":"2026-11-01T12:02:00Z"}`, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			seed := seedReplay(t, f)
			resp, body := f.post(t, "/api/v1/replay", tt.body)
			checkScheduled(t, resp, body, tt.want)
			seed.checkStates(t, f, tt.changed)
		})
	}
}

func TestReplayBulkRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := seedReplay(t, f)

	tests := []struct {
		name string
		body string
		want string // in the error message
	}{
		{"empty filter", `{}`, "replay needs"},
		{"empty strings", `{"route":"","state":""}`, "replay needs"},
		{"pending state", `{"state":"pending"}`, "pending"},
		{"retrying state", `{"state":"retrying"}`, "retrying"},
		{"unknown state", `{"route":"/sms","state":"gone"}`, "gone"},
		{"unknown field", `{"route":"/sms","force":true}`, "force"},
		{"event id in the body", `{"event_id":"x"}`, "event_id"},
		{"misspelled field", `{"State":"dead","rout":"/sms"}`, "rout"},
		{"truncated", `{"route":"/sms"`, "replay body"},
		{"not JSON", `route=/sms`, "replay body"},
		{"no body", ``, "replay body"},
		{"array", `[{"route":"/sms"}]`, "replay body"},
		{"null", `null`, "replay needs"},
		{"wrong type", `{"route":1}`, "replay body"},
		{"bad time", `{"since":"yesterday"}`, "replay body"},
	}
	t.Run("bodies", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				resp, body := f.post(t, "/api/v1/replay", tt.body)
				checkError(t, resp, body, http.StatusBadRequest, tt.want)
			})
		}
	})
	seed.checkStates(t, f, nil)
}

func TestReplayBulkRejectsTrailingData(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seed := seedReplay(t, f)

	for _, body := range []string{
		`{"route":"/voice"} {"state":"dead"}`,
		`{"route":"/voice"} garbage`,
		`{"route":"/voice"}}`,
	} {
		resp, b := f.post(t, "/api/v1/replay", body)
		checkError(t, resp, b, http.StatusBadRequest, "replay body")
	}
	seed.checkStates(t, f, nil)
}
