package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// Twilio's Debugger alerts are stored with their event, once per account
// and Sid, listed newest first, counted by code in the rollups and
// deleted with their events.

// DebuggerItem returns the accepted Debugger webhook of account with
// sid, about resource, with code, received at at.
func DebuggerItem(account, sid, resource string, code int, at time.Time) *switchboard.Ingest {
	it := NewItem("/debugger", "debugger:"+account+":"+sid, at)
	payload := fmt.Sprintf(`{"resource_sid":%q,"error_code":"%d","webhook":{"request":{"url":"https://app.example.com/sms","method":"POST"},"response":{"status_code":"502","body":"+15005550006 said hi"}}}`,
		resource, code)
	it.Event.Kind, it.Event.AccountSID, it.Event.MessageSID = switchboard.KindDebugger, account, resource
	it.Event.Response = switchboard.Response{Status: 200}
	it.Debugger = &switchboard.DebuggerAlert{
		Sid: sid, AccountSID: account, Level: "Error", Timestamp: at.Add(-time.Second).UTC().Truncate(time.Millisecond),
		PayloadType: "application/json", ResourceSID: resource, ErrorCode: code, Method: "POST",
		URL: "https://app.example.com/sms", Status: 502, MoreInfo: fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
		Payload: []byte(payload),
	}
	return it
}

func debuggerSID(n int) string { return fmt.Sprintf("NO%032x", n) }

func listDebugger(t *testing.T, s switchboard.Store, f switchboard.DebuggerFilter) []*switchboard.DebuggerAlert {
	t.Helper()
	var all []*switchboard.DebuggerAlert
	for range 100 {
		p, err := s.DebuggerAlerts(context.Background(), f)
		if err != nil {
			t.Fatalf("DebuggerAlerts(%+v): %v", f, err)
		}
		all = append(all, p.Items...)
		if p.Next == "" {
			return all
		}
		f.Cursor = p.Next
	}
	t.Fatal("DebuggerAlerts pages on and on")
	return nil
}

func debuggerConcurrent(t *testing.T, o Opened) {
	s := o.Store
	at := time.Now().UTC().Truncate(time.Millisecond)
	const n = 8
	items := make([]*switchboard.Ingest, n)
	for i := range items {
		items[i] = DebuggerItem("AC1", debuggerSID(1), "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 30007, at)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, it := range items {
		wg.Go(func() { errs[i] = s.Ingest(context.Background(), []*switchboard.Ingest{it}) })
	}
	wg.Wait()
	var created []*switchboard.Ingest
	for i, it := range items {
		if errs[i] != nil {
			t.Fatalf("Ingest %d: %v", i, errs[i])
		}
		if !it.Duplicate {
			created = append(created, it)
		}
	}
	if len(created) != 1 {
		t.Fatalf("%d of %d deliveries of one Sid created an event, want 1", len(created), n)
	}
	got := listDebugger(t, s, switchboard.DebuggerFilter{})
	if len(got) != 1 {
		t.Fatalf("%d alerts stored, want 1", len(got))
	}
	a, want := got[0], created[0]
	if a.EventID != want.Event.ID || a.Sid != debuggerSID(1) || a.AccountSID != "AC1" || a.ErrorCode != 30007 ||
		a.ResourceSID != "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" || a.Level != "Error" || a.Status != 502 || a.Method != "POST" ||
		a.URL != "https://app.example.com/sms" || !bytes.Equal(a.Payload, want.Debugger.Payload) ||
		!a.ReceivedAt.Equal(at) || !a.Timestamp.Equal(want.Debugger.Timestamp) || a.PayloadType != "application/json" ||
		a.MoreInfo != "https://www.twilio.com/docs/errors/30007" {
		t.Errorf("stored %+v, want the alert of %+v with event %s", a, want.Debugger, want.Event.ID)
	}
}

// The same Sid from two accounts is two alerts: an account names its own
// alerts, and another's cannot shadow them.
func debuggerAccounts(t *testing.T, o Opened) {
	s := o.Store
	at := time.Now().UTC().Truncate(time.Millisecond)
	a := DebuggerItem("AC1", debuggerSID(2), "SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 11200, at)
	b := DebuggerItem("AC2", debuggerSID(2), "SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 11200, at.Add(time.Second))
	ingest(t, s, a, b)
	if a.Duplicate || b.Duplicate {
		t.Fatalf("one Sid in two accounts: duplicates %v, %v; want two events", a.Duplicate, b.Duplicate)
	}
	got := listDebugger(t, s, switchboard.DebuggerFilter{ResourceSID: "SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"})
	if len(got) != 2 || got[0].AccountSID != "AC2" || got[1].AccountSID != "AC1" {
		t.Fatalf("alerts of the Sid in two accounts: %d, want AC2's then AC1's", len(got))
	}
	// Selected by account, each account's alerts only.
	for _, acct := range []string{"AC1", "AC2"} {
		got := listDebugger(t, s, switchboard.DebuggerFilter{AccountSID: acct, ResourceSID: "SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", Limit: 1})
		if len(got) != 1 || got[0].AccountSID != acct {
			t.Errorf("alerts of %s about the SID: %d, want its own one", acct, len(got))
		}
	}
	// And events: an account's events of a SID, never another's.
	for _, acct := range []string{"AC1", "AC2"} {
		p, err := s.ListEvents(context.Background(), switchboard.EventFilter{AccountSID: acct, SID: "SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"})
		if err != nil {
			t.Fatalf("ListEvents of %s: %v", acct, err)
		}
		if len(p.Items) != 1 || p.Items[0].AccountSID != acct {
			t.Errorf("events of %s about the SID: %d, want its own one", acct, len(p.Items))
		}
	}
	if p, err := s.ListEvents(context.Background(), switchboard.EventFilter{AccountSID: "AC9", SID: "SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}); err != nil || len(p.Items) != 0 {
		t.Errorf("events of an account with none: %v, %v; want none", p, err)
	}
}

func debuggerListing(t *testing.T, o Opened) {
	s := o.Store
	m0 := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Hour)
	var items []*switchboard.Ingest
	for i := range 7 {
		code, res := 11200, "SMcccccccccccccccccccccccccccccccc"
		if i%2 == 1 {
			code, res = 30007, fmt.Sprintf("SM%032x", i)
		}
		items = append(items, DebuggerItem("AC1", debuggerSID(100+i), res, code, m0.Add(time.Duration(i)*time.Minute)))
	}
	ingest(t, s, items...)
	ids := func(as []*switchboard.DebuggerAlert) string {
		var out []string
		for _, a := range as {
			out = append(out, strings.TrimLeft(a.Sid[2:], "0"))
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		name string
		f    switchboard.DebuggerFilter
		want string
	}{
		{"all, in pages", switchboard.DebuggerFilter{Limit: 2}, "6a,69,68,67,66,65,64"},
		{"by resource", switchboard.DebuggerFilter{ResourceSID: "SMcccccccccccccccccccccccccccccccc", Limit: 3}, "6a,68,66,64"},
		{"by code", switchboard.DebuggerFilter{ErrorCode: 30007}, "69,67,65"},
		{"by time", switchboard.DebuggerFilter{Since: m0.Add(2 * time.Minute), Until: m0.Add(5 * time.Minute), Limit: 2}, "68,67,66"},
		{"by code and time", switchboard.DebuggerFilter{ErrorCode: 11200, Since: m0.Add(time.Minute), Limit: 1}, "6a,68,66"},
		{"unknown resource", switchboard.DebuggerFilter{ResourceSID: "SMdddddddddddddddddddddddddddddddd"}, ""},
		{"hostile resource", switchboard.DebuggerFilter{ResourceSID: "' OR 1=1 --"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(listDebugger(t, s, tc.f)); got != tc.want {
				t.Errorf("listed %s, want %s", got, tc.want)
			}
		})
	}
	for _, f := range []switchboard.DebuggerFilter{
		{Cursor: "t123-nonsense", Since: m0},
		{ErrorCode: -1},
	} {
		if _, err := s.DebuggerAlerts(context.Background(), f); err == nil || !errors.Is(err, switchboard.ErrInvalid) {
			if f.Cursor == "" || err != nil {
				t.Errorf("DebuggerAlerts(%+v): %v, want ErrInvalid", f, err)
			}
		}
	}
}

func debuggerRollup(t *testing.T, o Opened) {
	s := o.Store
	m0 := time.Now().UTC().Truncate(time.Minute).Add(-30 * time.Minute)
	var items []*switchboard.Ingest
	for i, code := range []int{30007, 30007, 11200, 30007, 0} {
		items = append(items, DebuggerItem("AC1", debuggerSID(200+i), "SMeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", code, m0.Add(time.Duration(i)*20*time.Second)))
	}
	dup := DebuggerItem("AC1", debuggerSID(200), "SMeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", 30007, m0.Add(90*time.Second))
	ingest(t, s, items...)
	ingest(t, s, dup)
	rollUp(t, s, time.Now())
	d, err := s.Dashboard(context.Background(), switchboard.DashboardQuery{Since: m0, Until: m0.Add(10 * time.Minute), Step: time.Minute})
	if err != nil {
		t.Fatalf("Dashboard: %v", err)
	}
	if got := fmt.Sprint(d.DebuggerCodes); got != "[{30007 3} {11200 1} {0 1}]" {
		t.Errorf("DebuggerCodes %s, want [{30007 3} {11200 1} {0 1}] (a retry counted once)", got)
	}
}

func debuggerPrune(t *testing.T, o Opened) {
	s := o.Store
	old := DebuggerItem("AC1", debuggerSID(300), "SMffffffffffffffffffffffffffffffff", 30007, base)
	kept := DebuggerItem("AC1", debuggerSID(301), "SMffffffffffffffffffffffffffffffff", 30007, base)
	ingest(t, s, old, kept)
	finish(t, s, old.Event, switchboard.StateDelivered, base, 1)
	finish(t, s, kept.Event, switchboard.StateDelivered, base.Add(48*time.Hour), 1)
	if n := prune(t, s, switchboard.PruneDelivered, base.Add(24*time.Hour), 10); n != 1 {
		t.Fatalf("pruned %d events, want 1", n)
	}
	got := listDebugger(t, s, switchboard.DebuggerFilter{ResourceSID: "SMffffffffffffffffffffffffffffffff"})
	if len(got) != 1 || got[0].EventID != kept.Event.ID {
		t.Fatalf("after pruning one event, alerts %v, want only %s's", got, kept.Event.ID)
	}
	// Its Sid is new again once its event is gone, as any webhook's key.
	again := DebuggerItem("AC1", debuggerSID(300), "SMffffffffffffffffffffffffffffffff", 30007, base.Add(72*time.Hour))
	ingest(t, s, again)
	if again.Duplicate {
		t.Fatal("a Sid whose event was pruned is still a duplicate")
	}
	if got := listDebugger(t, s, switchboard.DebuggerFilter{ResourceSID: "SMffffffffffffffffffffffffffffffff"}); len(got) != 2 {
		t.Errorf("after the Sid came again, %d alerts, want 2", len(got))
	}
}
