package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/switchboard-dev/switchboard"
)

func TestReplayByFilter(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for n := 1; n <= 3; n++ {
		seedEvent(f.store, n, switchboard.StateDead, func(e *switchboard.Event) { e.LastCode = 11200 })
	}
	seedEvent(f.store, 4, switchboard.StateRetrying, func(e *switchboard.Event) { e.LastCode = 11200 })
	seedEvent(f.store, 5, switchboard.StateDead, func(e *switchboard.Event) { e.LastCode = 11205 })
	s := f.signIn()

	page := f.get(s, "/console/replay?route=%2Fsms&code=11200&since=2026-03-01T11:00:00", http.StatusOK)
	count := mustID(t, page, "replay-count")
	if attr(count, "data-count") != "3" {
		t.Errorf("count %q, want 3 (the retrying one already has a delivery)", text(count))
	}
	form := first(parseHTML(t, page), func(n *html.Node) bool { return n.Data == "form" && attr(n, "action") == "/console/replay" })
	hidden := url.Values{}
	for _, in := range all(form, func(n *html.Node) bool { return n.Data == "input" }) {
		hidden.Set(attr(in, "name"), attr(in, "value"))
	}
	if hidden.Get("route") != "/sms" || hidden.Get("code") != "11200" || hidden.Get("since") != "2026-03-01T11:00:00" || hidden.Get("csrf") != s.csrf {
		t.Errorf("the confirmation carries %v", hidden)
	}
	if len(f.store.replays) != 0 {
		t.Fatal("counting replayed")
	}

	hidden.Del("csrf")
	page = f.post(s, "/console/replay", hidden, http.StatusOK)
	if got := attr(mustID(t, page, "replay-result"), "data-scheduled"); got != "3" {
		t.Errorf("scheduled %s, want 3", got)
	}
	want := switchboard.ReplayFilter{Route: "/sms", TwilioCode: 11200, Since: base.Add(-time.Hour)}
	if len(f.store.replays) != 1 || f.store.replays[0] != want {
		t.Errorf("replays %+v, want %+v", f.store.replays, want)
	}
}

func TestReplayByFilterRefusesWhatItCannotDo(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedEvent(f.store, 1, switchboard.StateDead)
	s := f.signIn()
	for _, tc := range []struct{ query, why string }{
		{"", "at least one filter"},
		{"state=retrying", "Only delivered or dead"},
		{"route=%2Fsms&q=%2B15550001111", "clear the search"},
	} {
		page := f.get(s, "/console/replay?"+tc.query, http.StatusOK)
		if why := text(mustID(t, page, "replay-why")); !strings.Contains(why, tc.why) {
			t.Errorf("%q: why %q, want it to say %q", tc.query, why, tc.why)
		}
		if byID(parseHTML(t, page), "replay-confirm") != nil {
			t.Errorf("%q: a confirm button", tc.query)
		}
		form, _ := url.ParseQuery(tc.query)
		f.post(s, "/console/replay", form, http.StatusBadRequest)
	}
	if len(f.store.replays) != 0 {
		t.Errorf("replayed %+v", f.store.replays)
	}
}
