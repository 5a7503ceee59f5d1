package console_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/console"
)

// seedMessage stores message id(5000+n), created n seconds after base.
func seedMessage(s *fakeStore, n int, adjust func(*switchboard.OutboundMessage), hist ...switchboard.StatusChange) *switchboard.OutboundMessage {
	at := base.Add(time.Duration(n) * time.Second)
	m := &switchboard.OutboundMessage{
		ID: id(5000 + n), IdempotencyKey: "api:" + sid("AC", 1) + ":order-" + caller, AccountSID: sid("AC", 1), Pool: "main",
		Purpose: switchboard.PurposeTransactional, From: business, To: caller, Body: secret, Template: "receipt",
		State: switchboard.MessageDelivered, TwilioSID: sid("SM", 9000+n), TwilioStatus: "delivered", Attempts: 1,
		CreatedAt: at, UpdatedAt: at, SentAt: at.Add(time.Second), DeliveredAt: at.Add(3 * time.Second),
	}
	if adjust != nil {
		adjust(m)
	}
	s.addMessage(m, hist...)
	return m
}

func messageRows(t *testing.T, page string) []string {
	t.Helper()
	var ids []string
	for _, tr := range all(mustID(t, page, "messages-table"), func(n *html.Node) bool { return n.Data == "tr" && hasAttr(n, "data-message-id") }) {
		ids = append(ids, attr(tr, "data-message-id"))
	}
	return ids
}

func TestMessagesListFilters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedMessage(f.store, 1, nil)
	seedMessage(f.store, 2, func(m *switchboard.OutboundMessage) {
		m.State, m.ErrorCode, m.Pool, m.Purpose, m.Template = switchboard.MessageFailed, 21610, "otp", switchboard.PurposeOTP, "code"
	})
	s := f.signIn()
	if rows := messageRows(t, f.get(s, "/console/messages", http.StatusOK)); !slices.Equal(rows, []string{id(5002), id(5001)}) {
		t.Errorf("rows %v", rows)
	}
	q := url.Values{"pool": {"otp"}, "purpose": {"otp"}, "template": {"code"}, "status": {"failed"}, "code": {"21610"},
		"number": {"+1 555 000 1111"}, "since": {"2026-03-01T11:00:00"}, "until": {"2026-03-01T13:00:00"}}
	page := f.get(s, "/console/messages?"+q.Encode(), http.StatusOK)
	f.store.mu.Lock()
	got := f.store.messageFilters[len(f.store.messageFilters)-1]
	f.store.mu.Unlock()
	want := switchboard.OutboundFilter{Pool: "otp", Purpose: "otp", Template: "code", State: "failed", ErrorCode: 21610, Number: caller,
		Since: base.Add(-time.Hour), Until: base.Add(time.Hour), Limit: 50}
	if got != want {
		t.Errorf("store asked for %+v, want %+v", got, want)
	}
	if rows := messageRows(t, page); !slices.Equal(rows, []string{id(5002)}) {
		t.Errorf("filtered rows %v", rows)
	}
	form := mustID(t, page, "messages-filters")
	for name, want := range map[string]string{"pool": "otp", "template": "code", "code": "21610", "number": "+1 555 000 1111"} {
		in := first(form, func(n *html.Node) bool { return n.Data == "input" && attr(n, "name") == name })
		if in == nil || attr(in, "value") != want {
			t.Errorf("input %s: want %q", name, want)
		}
	}
}

func TestMessagePageTimeline(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m := seedMessage(f.store, 1, nil,
		switchboard.StatusChange{Status: "sending", At: base.Add(1100 * time.Millisecond), Source: "send", Applied: true},
		switchboard.StatusChange{Status: "sent", At: base.Add(1300 * time.Millisecond), Source: "send", Applied: true},
		switchboard.StatusChange{Status: "delivered", At: base.Add(4300 * time.Millisecond), Source: "callback", Applied: true},
		switchboard.StatusChange{Status: "sent", At: base.Add(5 * time.Second), Source: "callback", Applied: false},
	)
	s := f.signIn()
	page := f.get(s, "/console/messages/"+m.ID, http.StatusOK)
	steps := all(mustID(t, page, "timeline"), func(n *html.Node) bool { return n.Data == "li" })
	var got []string
	for _, st := range steps {
		got = append(got, attr(st, "data-status"))
	}
	if !slices.Equal(got, []string{"created", "sending", "sent", "delivered", "sent"}) {
		t.Fatalf("timeline %v", got)
	}
	for i, want := range []string{"", "+100 ms", "+200 ms", "+3.00 s"} {
		if want != "" && !strings.Contains(text(steps[i]), want) {
			t.Errorf("step %d: %q lacks %q", i, text(steps[i]), want)
		}
	}
	if !strings.Contains(attr(steps[4], "class"), "ignored") || !strings.Contains(text(steps[4]), "not applied") {
		t.Errorf("an out-of-order status is not marked: %q", text(steps[4]))
	}
	if b := mustID(t, page, "message-replay-button"); !hasAttr(b, "disabled") {
		t.Error("a delivered message can be replayed")
	}
	if why := text(mustID(t, page, "replay-why")); !strings.Contains(why, "Twilio accepted") {
		t.Errorf("why %q", why)
	}
}

func TestReplayAFailedMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	failed := seedMessage(f.store, 1, func(m *switchboard.OutboundMessage) {
		m.State, m.TwilioSID, m.ErrorCode, m.LastError = switchboard.MessageFailed, "", 20429, "too many requests"
	})
	delivered := seedMessage(f.store, 2, nil)
	s := f.signIn()
	if b := mustID(t, f.get(s, "/console/messages/"+failed.ID, http.StatusOK), "message-replay-button"); hasAttr(b, "disabled") {
		t.Fatal("a replayable message's button is disabled")
	}
	page := f.post(s, "/console/messages/"+failed.ID+"/replay", nil, http.StatusOK)
	if !strings.Contains(text(mustID(t, page, "action-notice")), "Replay scheduled") {
		t.Error("no notice")
	}
	if st := text(mustID(t, page, "message-state")); st != "queued" {
		t.Errorf("state after replay %q", st)
	}
	f.post(s, "/console/messages/"+delivered.ID+"/replay", nil, http.StatusConflict)
	f.post(s, "/console/messages/"+id(9999)+"/replay", nil, http.StatusNotFound)

	// Without a messages service there is nothing to replay with.
	g := newFixture(t, func(o *console.Options) { o.Messages = nil })
	seedMessage(g.store, 1, func(m *switchboard.OutboundMessage) { m.State, m.TwilioSID = switchboard.MessageFailed, "" })
	gs := g.signIn()
	if b := mustID(t, g.get(gs, "/console/messages/"+id(5001), http.StatusOK), "message-replay-button"); !hasAttr(b, "disabled") {
		t.Error("a replay button without a messages service")
	}
	g.post(gs, "/console/messages/"+id(5001)+"/replay", nil, http.StatusNotFound)
}
