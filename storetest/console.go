package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// What the console's inspector reads: events by number and by their last
// Twilio code, messages by number and error code, replays by kind and
// code and their counts, and the console's sessions.

// numbered builds an event of route from and to the given numbers.
func numbered(route, key, from, to string, at time.Time) *switchboard.Ingest {
	it := NewItem(route, key, at)
	it.Event.From, it.Event.To = from, to
	return it
}

// coded is a made attempt of event ev ending in state with Twilio code c
// (0: the app took it).
func coded(ev string, n int, c int, state switchboard.State) *switchboard.AttemptResult {
	status := 200
	if c != 0 {
		status = 502
	}
	r := attempt(ev, n, status, state, time.Time{})
	if state == switchboard.StateRetrying {
		r.NextAttemptAt = base.Add(time.Hour)
	}
	r.Attempt.TwilioCode = c
	return r
}

func recordAttempts(t *testing.T, s switchboard.Store, results ...*switchboard.AttemptResult) {
	t.Helper()
	if err := s.RecordAttempts(context.Background(), results); err != nil {
		t.Fatalf("RecordAttempts: %v", err)
	}
}

// An event keeps the From and To it was stored with, and the Twilio code
// of its last attempt made: a later attempt's code replaces it (0 once
// the app took it), a result without an attempt leaves it.
func testEventNumbersAndLastCode(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	it := numbered("/sms", "nc-1", "+15550001111", "whatsapp:+15550002222", base)
	bare := NewItem("/sms", "nc-bare", base)
	ingest(t, s, it, bare)
	id := it.Event.ID
	check := func(when string, code int) {
		t.Helper()
		ev, err := s.Event(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if ev.From != "+15550001111" || ev.To != "whatsapp:+15550002222" || ev.LastCode != code {
			t.Errorf("%s: From %q To %q LastCode %d; want +15550001111, whatsapp:+15550002222, %d", when, ev.From, ev.To, ev.LastCode, code)
		}
	}
	check("as stored", 0)
	if ev, err := s.Event(ctx, bare.Event.ID); err != nil || ev.From != "" || ev.To != "" || ev.LastCode != 0 {
		t.Errorf("event without numbers: %+v, %v; want empty From, To and no code", ev, err)
	}

	recordAttempts(t, s, coded(id, 1, 11200, switchboard.StateRetrying))
	check("after a failed attempt", 11200)
	recordAttempts(t, s, coded(id, 2, 11205, switchboard.StateRetrying))
	check("after another", 11205)
	// No attempt made (the target's circuit is open): the code stays.
	recordAttempts(t, s, &switchboard.AttemptResult{Attempt: switchboard.Attempt{EventID: id, StartedAt: base.Add(time.Hour)},
		State: switchboard.StateRetrying, NextAttemptAt: base.Add(2 * time.Hour), Attempts: 2})
	check("after a result without an attempt", 11205)
	recordAttempts(t, s, coded(id, 3, 0, switchboard.StateDelivered))
	check("once delivered", 0)

	// A duplicate is answered with its original, numbers and all.
	dup := numbered("/sms", "nc-1", "+19990000000", "+19990000001", base.Add(time.Second))
	ingest(t, s, dup)
	if !dup.Duplicate || dup.Event.From != "+15550001111" || dup.Event.To != "whatsapp:+15550002222" {
		t.Errorf("duplicate: %v with From %q To %q; want the original's numbers", dup.Duplicate, dup.Event.From, dup.Event.To)
	}
	// A fan-out event keeps its own numbers.
	f := numbered("/sms", "nc-1/fan", "+15550003333", "+15550004444", base)
	f.Event.Target, f.Event.RequestID = "https://app.example.com/status", it.Request.ID
	if err := s.IngestFanout(ctx, []*switchboard.Event{f.Event}); err != nil {
		t.Fatal(err)
	}
	if ev, err := s.Event(ctx, f.Event.ID); err != nil || ev.From != "+15550003333" || ev.To != "+15550004444" {
		t.Errorf("fan-out event: %+v, %v; want its numbers", ev, err)
	}
}

// eventIDs returns the ids of events, in order.
func eventIDs(events []*switchboard.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// listAllEvents pages through f with pages of limit and returns every
// event's id, failing on one seen twice.
func listAllEvents(t *testing.T, s switchboard.Store, f switchboard.EventFilter, limit int) []string {
	t.Helper()
	var seen []string
	f.Limit = limit
	for range 100 {
		page, err := s.ListEvents(context.Background(), f)
		if err != nil {
			t.Fatalf("ListEvents(%+v): %v", f, err)
		}
		if len(page.Items) > limit {
			t.Fatalf("ListEvents(%+v): %d items, above the limit", f, len(page.Items))
		}
		for _, id := range eventIDs(page.Items) {
			if slices.Contains(seen, id) {
				t.Fatalf("ListEvents(%+v): event %s listed twice", f, id)
			}
			seen = append(seen, id)
		}
		if page.Next == "" {
			return seen
		}
		f.Cursor = page.Next
	}
	t.Fatalf("ListEvents(%+v): pages without end", f)
	return nil
}

// A number finds the events from it and those to it, each once, newest
// first, page after page; a code finds the events whose last attempt had
// it. Both combine with the other filters and a time range.
func testListEventsByNumberAndCode(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	const me, other, third = "+15550100000", "+15550199999", "+15550188888"
	// Created in this order, so their ids are too: newest last.
	var all []*switchboard.Ingest
	add := func(route, from, to string) *switchboard.Ingest {
		it := numbered(route, fmt.Sprintf("ln-%d", len(all)), from, to, base.Add(time.Duration(len(all))*time.Minute))
		all = append(all, it)
		return it
	}
	e0 := add("/sms", me, other)    // from me
	e1 := add("/sms", other, me)    // to me
	e2 := add("/status", me, third) // from me, another route
	e3 := add("/sms", third, other) // not mine
	e4 := add("/sms", me, me)       // from and to me: listed once
	e5 := add("/sms", other, me)    // to me
	e6 := add("/sms", "", "")       // no numbers
	ingest(t, s, all...)
	recordAttempts(t, s,
		coded(e0.Event.ID, 1, 11200, switchboard.StateDead),
		coded(e1.Event.ID, 1, 11205, switchboard.StateRetrying),
		coded(e3.Event.ID, 1, 11200, switchboard.StateRetrying),
		coded(e4.Event.ID, 1, 0, switchboard.StateDelivered),
		coded(e5.Event.ID, 1, 11200, switchboard.StateDead),
	)
	id := func(its ...*switchboard.Ingest) []string {
		out := make([]string, len(its))
		for i, it := range its {
			out[i] = it.Event.ID
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    switchboard.EventFilter
		want []string
	}{
		{"number, from or to", switchboard.EventFilter{Number: me}, id(e5, e4, e2, e1, e0)},
		{"another number", switchboard.EventFilter{Number: third}, id(e3, e2)},
		{"number and route", switchboard.EventFilter{Number: me, Route: "/sms"}, id(e5, e4, e1, e0)},
		{"number and time range", switchboard.EventFilter{Number: me, Since: base.Add(time.Minute), Until: base.Add(5 * time.Minute)}, id(e4, e2, e1)},
		{"number and code", switchboard.EventFilter{Number: me, TwilioCode: 11200}, id(e5, e0)},
		{"number and state", switchboard.EventFilter{Number: me, State: switchboard.StateDead}, id(e5, e0)},
		{"number and SID", switchboard.EventFilter{Number: me, SID: e1.Event.MessageSID}, id(e1)},
		{"no such number", switchboard.EventFilter{Number: "+15550000000"}, nil},
		{"a number is matched whole", switchboard.EventFilter{Number: "+1555010"}, nil},
		{"code", switchboard.EventFilter{TwilioCode: 11200}, id(e5, e3, e0)},
		{"code and state", switchboard.EventFilter{TwilioCode: 11200, State: switchboard.StateRetrying}, id(e3)},
		{"code and time range", switchboard.EventFilter{TwilioCode: 11200, Until: base.Add(5 * time.Minute)}, id(e3, e0)},
		{"another code", switchboard.EventFilter{TwilioCode: 11205}, id(e1)},
		{"no such code", switchboard.EventFilter{TwilioCode: 12300}, nil},
		{"no code filters nothing", switchboard.EventFilter{TwilioCode: 0, Route: "/status"}, id(e2)},
		{"a negative code filters nothing", switchboard.EventFilter{TwilioCode: -1, Route: "/status"}, id(e2)},
		{"everything", switchboard.EventFilter{}, id(e6, e5, e4, e3, e2, e1, e0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Pages of one and two walk the merge of the numbers' two
			// selections through its cursor; one page of 50 holds all.
			for _, limit := range []int{1, 2, 50} {
				if got := listAllEvents(t, s, tc.f, limit); !slices.Equal(got, tc.want) {
					t.Errorf("ListEvents(%+v) in pages of %d = %v; want %v", tc.f, limit, got, tc.want)
				}
			}
		})
	}
	// A page cut by the limit says where the next starts.
	page, err := s.ListEvents(ctx, switchboard.EventFilter{Number: me, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(eventIDs(page.Items), id(e5, e4)) || page.Next != e4.Event.ID {
		t.Errorf("first page of 2 = %v next %q; want %v next %q", eventIDs(page.Items), page.Next, id(e5, e4), e4.Event.ID)
	}
}

// listAllMessages pages through f with pages of limit and returns every
// message's id, failing on one seen twice.
func listAllMessages(t *testing.T, s switchboard.Store, f switchboard.OutboundFilter, limit int) []string {
	t.Helper()
	var seen []string
	f.Limit = limit
	for range 100 {
		page, err := s.ListOutboundMessages(context.Background(), f)
		if err != nil {
			t.Fatalf("ListOutboundMessages(%+v): %v", f, err)
		}
		for _, m := range page.Items {
			if slices.Contains(seen, m.ID) {
				t.Fatalf("ListOutboundMessages(%+v): message %s listed twice", f, m.ID)
			}
			seen = append(seen, m.ID)
		}
		if page.Next == "" {
			return seen
		}
		f.Cursor = page.Next
	}
	t.Fatalf("ListOutboundMessages(%+v): pages without end", f)
	return nil
}

// A number finds the messages to it and those sent from it, each once;
// an error code finds the messages that failed with it.
func testListMessagesByNumberAndCode(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	const sender, alice, bob = "+15550200000", "+15550211111", "+15550222222"
	var msgs []*switchboard.OutboundMessage
	add := func(to string) *switchboard.OutboundMessage {
		m := NewMessage(fmt.Sprintf("lm-%d", len(msgs)), to, base.Add(time.Duration(len(msgs))*time.Minute))
		createMessage(t, s, m)
		msgs = append(msgs, m)
		return m
	}
	send := func(m *switchboard.OutboundMessage, from string, state switchboard.MessageState, code int) {
		t.Helper()
		r := switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: state, From: from, ErrorCode: code, At: base}
		if state == switchboard.MessageSent {
			r.TwilioSID = "SM" + strings.ReplaceAll(m.ID, "-", "")
		}
		if err := s.RecordSend(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	m0 := add(alice)
	m1 := add(bob)
	m2 := add(alice)
	m3 := add(sender) // to the sender's own number, from it too
	m4 := add(bob)    // queued: no sender yet
	send(m0, sender, switchboard.MessageSent, 0)
	send(m1, sender, switchboard.MessageFailed, 21610)
	send(m2, "+15550233333", switchboard.MessageFailed, 21610)
	send(m3, sender, switchboard.MessageFailed, 30003)
	id := func(ms ...*switchboard.OutboundMessage) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = m.ID
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    switchboard.OutboundFilter
		want []string
	}{
		{"sender's number", switchboard.OutboundFilter{Number: sender}, id(m3, m1, m0)},
		{"recipient's number", switchboard.OutboundFilter{Number: bob}, id(m4, m1)},
		{"number and state", switchboard.OutboundFilter{Number: alice, State: switchboard.MessageFailed}, id(m2)},
		{"number and time range", switchboard.OutboundFilter{Number: sender, Since: base.Add(time.Minute)}, id(m3, m1)},
		{"no such number", switchboard.OutboundFilter{Number: "+15550299999"}, nil},
		{"error code", switchboard.OutboundFilter{ErrorCode: 21610}, id(m2, m1)},
		{"error code and number", switchboard.OutboundFilter{ErrorCode: 21610, Number: alice}, id(m2)},
		{"error code and time range", switchboard.OutboundFilter{ErrorCode: 21610, Until: base.Add(2 * time.Minute)}, id(m1)},
		{"another code", switchboard.OutboundFilter{ErrorCode: 30003}, id(m3)},
		{"no such code", switchboard.OutboundFilter{ErrorCode: 30007}, nil},
		{"a negative code filters nothing", switchboard.OutboundFilter{ErrorCode: -1, To: alice}, id(m2, m0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1, 2, 50} {
				if got := listAllMessages(t, s, tc.f, limit); !slices.Equal(got, tc.want) {
					t.Errorf("ListOutboundMessages(%+v) in pages of %d = %v; want %v", tc.f, limit, got, tc.want)
				}
			}
		})
	}
}

// Replay selects by kind and by last code too, and ReplayCount counts
// what Replay then schedules, without scheduling anything itself.
func testReplayByKindAndCode(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	sms := NewItem("/hooks", "rk-sms", base)
	status := NewItem("/hooks", "rk-status", base.Add(time.Minute))
	status.Event.Kind = switchboard.KindMessageStatus
	voice := NewItem("/hooks", "rk-voice", base.Add(2*time.Minute))
	voice.Event.Kind = switchboard.KindVoice
	retrying := NewItem("/hooks", "rk-retrying", base.Add(3*time.Minute))
	delivered := NewItem("/hooks", "rk-delivered", base.Add(4*time.Minute))
	ingest(t, s, sms, status, voice, retrying, delivered)
	recordAttempts(t, s,
		coded(sms.Event.ID, 1, 11200, switchboard.StateDead),
		coded(status.Event.ID, 1, 11200, switchboard.StateDead),
		coded(voice.Event.ID, 1, 11205, switchboard.StateDead),
		coded(retrying.Event.ID, 1, 11200, switchboard.StateRetrying),
		coded(delivered.Event.ID, 1, 0, switchboard.StateDelivered),
	)
	for _, tc := range []struct {
		name string
		f    switchboard.ReplayFilter
		want int
		err  error
	}{
		{"kind", switchboard.ReplayFilter{Kind: switchboard.KindMessage}, 2, nil}, // sms and delivered; not the retrying one
		{"kind and state", switchboard.ReplayFilter{Kind: switchboard.KindMessage, State: switchboard.StateDead}, 1, nil},
		{"code", switchboard.ReplayFilter{TwilioCode: 11200}, 2, nil}, // not the retrying one
		{"code and kind", switchboard.ReplayFilter{TwilioCode: 11200, Kind: switchboard.KindMessageStatus}, 1, nil},
		{"code and time range", switchboard.ReplayFilter{TwilioCode: 11200, Since: base.Add(time.Minute)}, 1, nil},
		{"another code", switchboard.ReplayFilter{TwilioCode: 11205}, 1, nil},
		{"no such code", switchboard.ReplayFilter{TwilioCode: 12300}, 0, nil},
		{"no such kind", switchboard.ReplayFilter{Kind: switchboard.KindFallback}, 0, nil},
		{"hostile kind is only a value", switchboard.ReplayFilter{Kind: "message' OR '1'='1"}, 0, nil},
		{"a kind that is not text", switchboard.ReplayFilter{Kind: "message\x00"}, 0, nil},
		{"a route that is not text", switchboard.ReplayFilter{Route: "/hooks\xff"}, 0, nil},
		{"an event id that is not text", switchboard.ReplayFilter{EventID: "\x00"}, 0, switchboard.ErrNotFound},
		{"unknown event", switchboard.ReplayFilter{EventID: "nope"}, 0, switchboard.ErrNotFound},
		{"a negative code", switchboard.ReplayFilter{TwilioCode: -11200}, 0, switchboard.ErrInvalid},
		{"empty filter", switchboard.ReplayFilter{}, 0, switchboard.ErrInvalid},
		{"a waiting state", switchboard.ReplayFilter{State: switchboard.StateRetrying}, 0, switchboard.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := s.ReplayCount(ctx, tc.f)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("ReplayCount(%+v) = %d, %v; want %v", tc.f, n, err, tc.err)
				}
				if _, err := s.Replay(ctx, tc.f); !errors.Is(err, tc.err) {
					t.Errorf("Replay(%+v): %v; want %v as its count", tc.f, err, tc.err)
				}
				return
			}
			if err != nil || n != tc.want {
				t.Fatalf("ReplayCount(%+v) = %d, %v; want %d", tc.f, n, err, tc.want)
			}
		})
	}

	// Counting changed nothing; the replay schedules what was counted,
	// then nothing is left to count.
	for _, it := range []*switchboard.Ingest{sms, status, voice, delivered} {
		if ev, err := s.Event(ctx, it.Event.ID); err != nil || !ev.State.Terminal() {
			t.Fatalf("after counting, event %s: %+v, %v; want it as it was", it.Event.IdempotencyKey, ev, err)
		}
	}
	f := switchboard.ReplayFilter{TwilioCode: 11200}
	counted, err := s.ReplayCount(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Replay(ctx, f)
	if err != nil || n != counted {
		t.Fatalf("Replay(%+v) = %d, %v; its count was %d", f, n, err, counted)
	}
	for _, it := range []*switchboard.Ingest{sms, status} {
		if ev, _ := s.Event(ctx, it.Event.ID); ev.State != switchboard.StatePending {
			t.Errorf("event %s replayed by code is %s; want pending", it.Event.IdempotencyKey, ev.State)
		}
	}
	if ev, _ := s.Event(ctx, voice.Event.ID); ev.State != switchboard.StateDead {
		t.Errorf("event of another code is %s; want it left dead", ev.State)
	}
	if left, err := s.ReplayCount(ctx, f); err != nil || left != 0 {
		t.Errorf("ReplayCount after the replay = %d, %v; want 0", left, err)
	}
	n, err = s.Replay(ctx, switchboard.ReplayFilter{Kind: switchboard.KindVoice})
	if err != nil || n != 1 {
		t.Errorf("Replay by kind voice = %d, %v; want 1", n, err)
	}
}

// sessionID is the id of the session whose cookie holds secret.
func sessionID(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// A session is found until it expires, and not at or after its expiry; a
// sign-out deletes it and sweeps expired ones; an id is stored once.
func testSessions(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	now := base
	live := &switchboard.ConsoleSession{ID: sessionID("live"), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateSession(ctx, live); err != nil {
		t.Fatal(err)
	}
	got, err := s.Session(ctx, live.ID, now.Add(time.Minute))
	if err != nil || got.ID != live.ID || !got.CreatedAt.Equal(now) || !got.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("Session = %+v, %v; want %+v", got, err, live)
	}
	if _, err := s.Session(ctx, live.ID, now.Add(time.Hour-time.Microsecond)); err != nil {
		t.Errorf("Session a microsecond before its expiry: %v", err)
	}
	for _, at := range []time.Time{now.Add(time.Hour), now.Add(time.Hour + time.Microsecond), now.Add(48 * time.Hour)} {
		if got, err := s.Session(ctx, live.ID, at); !errors.Is(err, switchboard.ErrNotFound) {
			t.Errorf("Session at %s, its expiry %s: %+v, %v; want ErrNotFound", at, live.ExpiresAt, got, err)
		}
	}

	// An id is stored once; the second create changes nothing.
	again := &switchboard.ConsoleSession{ID: live.ID, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	if err := s.CreateSession(ctx, again); !errors.Is(err, switchboard.ErrConflict) {
		t.Errorf("CreateSession of a stored id: %v; want ErrConflict", err)
	}
	if got, err := s.Session(ctx, live.ID, now); err != nil || !got.ExpiresAt.Equal(live.ExpiresAt) {
		t.Errorf("after a conflicting create: %+v, %v; want the stored session as it was", got, err)
	}

	// What cannot be a session is refused, or names none.
	for _, bad := range []*switchboard.ConsoleSession{
		{ID: "", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{ID: "secret", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{ID: strings.ToUpper(sessionID("upper")), CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{ID: sessionID("backwards"), CreatedAt: now, ExpiresAt: now},
		{ID: sessionID("backwards"), CreatedAt: now, ExpiresAt: now.Add(-time.Hour)},
	} {
		if err := s.CreateSession(ctx, bad); !errors.Is(err, switchboard.ErrInvalid) {
			t.Errorf("CreateSession(%+v): %v; want ErrInvalid", bad, err)
		}
	}
	for _, id := range append([]string{"", "secret", sessionID("never stored"), strings.ToUpper(live.ID), live.ID + "0",
		live.ID[:63] + "\x00", "' OR '1'='1"}, untextValues...) {
		if got, err := s.Session(ctx, id, now); !errors.Is(err, switchboard.ErrNotFound) {
			t.Errorf("Session(%q) = %+v, %v; want ErrNotFound", id, got, err)
		}
		if err := s.DeleteSession(ctx, id, now); err != nil {
			t.Errorf("DeleteSession(%q): %v; want nothing to delete and no error", id, err)
		}
	}

	// Signing out deletes the session, and the expired ones with it.
	old := &switchboard.ConsoleSession{ID: sessionID("old"), CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	// Created before old expired: its creation sweeps nothing.
	other := &switchboard.ConsoleSession{ID: sessionID("other"), CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(2 * time.Hour)}
	for _, cs := range []*switchboard.ConsoleSession{old, other} {
		if err := s.CreateSession(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteSession(ctx, live.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, live.ID, now); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("Session after signing out: %v; want ErrNotFound", err)
	}
	if _, err := s.Session(ctx, old.ID, now.Add(-90*time.Minute)); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("a session expired at the sign-out is still stored: %v; want it swept", err)
	}
	if _, err := s.Session(ctx, other.ID, now); err != nil {
		t.Errorf("another live session after a sign-out: %v; want it kept", err)
	}
	if err := s.DeleteSession(ctx, live.ID, now); err != nil {
		t.Errorf("signing out twice: %v; want no error", err)
	}

	// A sign-in sweeps the sessions expired at its creation.
	stale := &switchboard.ConsoleSession{ID: sessionID("stale"), CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := s.CreateSession(ctx, stale); err != nil {
		t.Fatal(err)
	}
	later := &switchboard.ConsoleSession{ID: sessionID("later"), CreatedAt: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateSession(ctx, later); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, stale.ID, now); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("a session expired when another was created is still stored: %v; want it swept", err)
	}

	// A zero creation time is now, by the store's clock.
	before := time.Now()
	fresh := &switchboard.ConsoleSession{ID: sessionID("fresh"), ExpiresAt: before.Add(time.Hour)}
	if err := s.CreateSession(ctx, fresh); err != nil || fresh.CreatedAt.Before(before.Truncate(time.Microsecond)) {
		t.Errorf("CreateSession without a creation time: %v, created at %s; want now", err, fresh.CreatedAt)
	}
}

// CheckConsoleMigration checks event id, stored before the migration that
// added numbers and codes to events, on s migrated since: it has none, is
// listed, found by neither, and counted for a replay of its route.
func CheckConsoleMigration(t *testing.T, s switchboard.Store, id string) {
	t.Helper()
	ctx := context.Background()
	ev, err := s.Event(ctx, id)
	if err != nil {
		t.Fatalf("event stored before the migration: %v", err)
	}
	if ev.From != "" || ev.To != "" || ev.LastCode != 0 {
		t.Errorf("event stored before the migration: From %q To %q LastCode %d; want none", ev.From, ev.To, ev.LastCode)
	}
	if page, err := s.ListEvents(ctx, switchboard.EventFilter{Route: ev.Route}); err != nil || len(page.Items) != 1 {
		t.Errorf("ListEvents of its route: %v, %v; want the event", page, err)
	}
	if page, err := s.ListEvents(ctx, switchboard.EventFilter{Number: "+15550100"}); err != nil || len(page.Items) != 0 {
		t.Errorf("ListEvents by number: %v, %v; want none", page, err)
	}
	if n, err := s.ReplayCount(ctx, switchboard.ReplayFilter{Route: ev.Route}); err != nil || n != 1 {
		t.Errorf("ReplayCount of its route = %d, %v; want 1", n, err)
	}
}
