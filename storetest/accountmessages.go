package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
)

// The use cases of one account's messages behind the Twilio-compatible
// API: listing by keyset, cancel, redaction and deletion. Each stays in
// its account: another account's message is not found and never changed.

// accountMessage stores a message of account to to, created at at.
func accountMessage(t *testing.T, s switchboard.Store, account, key, to string, at time.Time) *switchboard.OutboundMessage {
	t.Helper()
	m := NewMessage(key, to, at)
	m.AccountSID = account
	createMessage(t, s, m)
	return m
}

// markSent records m as sent from from at at, with Twilio SID sid.
func markSent(t *testing.T, s switchboard.Store, m *switchboard.OutboundMessage, from, sid string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := s.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: switchboard.MessageSending,
		From: from, At: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: switchboard.MessageSent,
		TwilioSID: sid, TwilioStatus: "queued", At: at}); err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, s switchboard.Store, id string) *switchboard.OutboundMessage {
	t.Helper()
	m, err := s.OutboundMessage(context.Background(), id)
	if err != nil {
		t.Fatalf("load message %s: %v", id, err)
	}
	return m
}

func ids(ms []*switchboard.OutboundMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// walk lists every page of f forward, limit at a time, and returns the
// ids seen in order and the number of pages read.
func walk(t *testing.T, s switchboard.Store, f switchboard.AccountFilter) (seen []string, pages int) {
	t.Helper()
	for {
		page, err := s.ListAccountMessages(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		seen = append(seen, ids(page.Items)...)
		if !page.More {
			return seen, pages
		}
		last := switchboard.PositionOf(page.Items[len(page.Items)-1])
		f.After = &last
		if pages > 100 {
			t.Fatal("paging does not end")
		}
	}
}

// An account's listing: newest first by creation time, ties by id; pages
// by keyset that neither skip nor repeat a message when newer ones are
// created meanwhile; pages back from a position; To, From and sent-time
// filters; and never a message of another account.
func testListAccountMessages(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	const mine, theirs = "AC1", "AC2"
	// Nine messages of mine, three created at the same instant, and a
	// message of theirs at every instant too.
	var all []*switchboard.OutboundMessage
	for i := range 9 {
		at := base.Add(time.Duration(min(i, 6)) * time.Minute)
		m := accountMessage(t, s, mine, fmt.Sprintf("acct-list-%d", i), fmt.Sprintf("+1555010%d", i%3), at)
		all = append(all, m)
		accountMessage(t, s, theirs, fmt.Sprintf("acct-list-theirs-%d", i), fmt.Sprintf("+1555010%d", i%3), at)
	}
	want := slices.Clone(all)
	slices.SortFunc(want, func(a, b *switchboard.OutboundMessage) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		switch {
		case a.ID > b.ID:
			return -1
		case a.ID < b.ID:
			return 1
		}
		return 0
	})
	wantIDs := ids(want)
	seen, pages := walk(t, s, switchboard.AccountFilter{AccountSID: mine, Limit: 2})
	if !reflect.DeepEqual(seen, wantIDs) || pages != 5 {
		t.Errorf("pages of 2: %v in %d pages, want %v in 5", seen, pages, wantIDs)
	}
	if seen, _ := walk(t, s, switchboard.AccountFilter{AccountSID: mine, Limit: switchboard.MaxAccountPage}); !reflect.DeepEqual(seen, wantIDs) {
		t.Errorf("one page: %v, want %v", seen, wantIDs)
	}

	// Newer messages created between pages do not shift the next page.
	first, err := s.ListAccountMessages(ctx, switchboard.AccountFilter{AccountSID: mine, Limit: 4})
	if err != nil || len(first.Items) != 4 || !first.More {
		t.Fatalf("first page: %+v, %v", first, err)
	}
	accountMessage(t, s, mine, "acct-list-newer", "+15550100", base.Add(time.Hour))
	accountMessage(t, s, mine, "acct-list-newer-2", "+15550100", base.Add(time.Hour))
	after := switchboard.PositionOf(first.Items[3])
	rest, _ := walk(t, s, switchboard.AccountFilter{AccountSID: mine, Limit: 4, After: &after})
	if got := append(ids(first.Items), rest...); !reflect.DeepEqual(got, wantIDs) {
		t.Errorf("pages with messages created between them: %v, want %v", got, wantIDs)
	}

	// The page before the second one is the first one again, newest first;
	// More says whether newer ones lie beyond it.
	second, err := s.ListAccountMessages(ctx, switchboard.AccountFilter{AccountSID: mine, Limit: 4, After: &after})
	if err != nil || len(second.Items) != 4 {
		t.Fatalf("second page: %+v, %v", second, err)
	}
	before := switchboard.PositionOf(second.Items[0])
	back, err := s.ListAccountMessages(ctx, switchboard.AccountFilter{AccountSID: mine, Limit: 4, Before: &before})
	if err != nil || !reflect.DeepEqual(ids(back.Items), ids(first.Items)) || !back.More {
		t.Errorf("page before the second: %v (more %v), %v; want %v with more (the newer ones)", ids(back.Items), back.More, err, ids(first.Items))
	}
	back, err = s.ListAccountMessages(ctx, switchboard.AccountFilter{AccountSID: mine, Limit: 10, Before: &before})
	if err != nil || len(back.Items) != 6 || back.More {
		t.Errorf("all before the second page: %d items (more %v), %v; want 6 and no more", len(back.Items), back.More, err)
	}

	// Filters. Three of mine are sent, on two days, from two senders.
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	markSent(t, s, all[0], "+15559000", "SMacct0", day.Add(time.Hour))
	markSent(t, s, all[1], "+15559001", "SMacct1", day.Add(23*time.Hour))
	markSent(t, s, all[2], "+15559000", "SMacct2", day.Add(25*time.Hour))
	theirSent := accountMessage(t, s, theirs, "acct-list-their-sent", "+15550100", base)
	markSent(t, s, theirSent, "+15559000", "SMacct9", day.Add(time.Hour))
	cases := []struct {
		name string
		f    switchboard.AccountFilter
		want []*switchboard.OutboundMessage
	}{
		{"to", switchboard.AccountFilter{To: "+15550101"}, []*switchboard.OutboundMessage{all[7], all[4], all[1]}},
		{"from", switchboard.AccountFilter{From: "+15559000"}, []*switchboard.OutboundMessage{all[2], all[0]}},
		{"sent on a day", switchboard.AccountFilter{SentSince: day, SentBefore: day.Add(24 * time.Hour)},
			[]*switchboard.OutboundMessage{all[1], all[0]}},
		{"sent since", switchboard.AccountFilter{SentSince: day.Add(23 * time.Hour)}, []*switchboard.OutboundMessage{all[2], all[1]}},
		{"sent before", switchboard.AccountFilter{SentBefore: day.Add(23 * time.Hour)}, []*switchboard.OutboundMessage{all[0]}},
		{"to and from", switchboard.AccountFilter{To: "+15550100", From: "+15559000"}, []*switchboard.OutboundMessage{all[0]}},
		{"no match", switchboard.AccountFilter{To: "+15550199"}, nil},
	}
	for _, c := range cases {
		c.f.AccountSID, c.f.Limit = mine, 100
		page, err := s.ListAccountMessages(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, want := ids(page.Items), ids(c.want); !reflect.DeepEqual(got, want) || page.More {
			t.Errorf("%s: %v (more %v), want %v", c.name, got, page.More, want)
		}
	}

	// Hostile values are values, and a position of another account's
	// message is only a position: nothing of theirs is listed.
	for _, v := range hostileValues {
		for _, f := range []switchboard.AccountFilter{{AccountSID: v}, {AccountSID: mine, To: v}, {AccountSID: mine, From: v}} {
			f.Limit = 10
			page, err := s.ListAccountMessages(ctx, f)
			n := 0
			if page != nil {
				n = len(page.Items)
			}
			expectNone(t, "ListAccountMessages", v, n, err)
		}
	}
	for _, v := range untextValues {
		for _, f := range []switchboard.AccountFilter{{AccountSID: v}, {AccountSID: mine, To: v}, {AccountSID: mine, From: v}} {
			f.Limit = 10
			page, err := s.ListAccountMessages(ctx, f)
			n := 0
			if page != nil {
				n = len(page.Items)
			}
			expectNone(t, "ListAccountMessages", v, n, err)
		}
		if _, err := s.MessageBySID(ctx, mine, v); !errIsNotFound(err) {
			t.Errorf("MessageBySID(%q) = %v, want ErrNotFound", v, err)
		}
		if _, err := s.OutboundMessageBySID(ctx, mine, v); !errIsNotFound(err) {
			t.Errorf("OutboundMessageBySID(%q) = %v, want ErrNotFound", v, err)
		}
	}
	theirPage, err := s.ListAccountMessages(ctx, switchboard.AccountFilter{AccountSID: theirs, Limit: 1})
	if err != nil || len(theirPage.Items) != 1 {
		t.Fatal(theirPage, err)
	}
	theirPos := switchboard.PositionOf(theirPage.Items[0])
	for _, f := range []switchboard.AccountFilter{{After: &theirPos}, {Before: &theirPos}} {
		f.AccountSID, f.Limit = mine, 100
		page, err := s.ListAccountMessages(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Items {
			if m.AccountSID != mine {
				t.Errorf("listed %s of %s from another account's position", m.ID, m.AccountSID)
			}
		}
	}

	// A position is whatever a client sent back in a page token: one at
	// the ends of time (a forged token) is a position like any other,
	// neither an error of the store nor a way out of the account.
	for _, at := range []time.Time{time.UnixMicro(math.MinInt64).UTC(), time.UnixMicro(math.MaxInt64).UTC(), time.UnixMicro(-1).UTC(),
		{}, time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		edge := switchboard.MessagePosition{CreatedAt: at, ID: "ffffffff-ffff-ffff-ffff-ffffffffffff"}
		for _, f := range []switchboard.AccountFilter{{After: &edge}, {Before: &edge}} {
			f.AccountSID, f.Limit = mine, 100
			page, err := s.ListAccountMessages(ctx, f)
			if err != nil {
				t.Errorf("a page from position %v: %v", at, err)
				continue
			}
			for _, m := range page.Items {
				if m.AccountSID != mine {
					t.Errorf("listed %s of %s from position %v", m.ID, m.AccountSID, at)
				}
			}
		}
	}

	pos := switchboard.PositionOf(all[0])
	for _, f := range []switchboard.AccountFilter{
		{Limit: 10},
		{AccountSID: mine},
		{AccountSID: mine, Limit: switchboard.MaxAccountPage + 1},
		{AccountSID: mine, Limit: -1},
		{AccountSID: mine, Limit: 10, After: &pos, Before: &pos},
	} {
		if _, err := s.ListAccountMessages(ctx, f); !errors.Is(err, switchboard.ErrInvalid) {
			t.Errorf("ListAccountMessages(%+v) = %v, want ErrInvalid", f, err)
		}
	}
}

// A queued message is canceled, with a history entry; a send claimed for
// it is then refused (ErrCanceled) and nothing a sender records changes
// it. A message being sent or sent is not canceled; nor is another
// account's, which is not found.
func testCancelMessage(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	m := accountMessage(t, s, "AC1", "cancel-1", "+15550200", base)
	got, err := s.CancelMessage(ctx, "AC2", m.ID)
	if !errIsNotFound(err) || got != nil {
		t.Errorf("another account's cancel = %+v, %v; want ErrNotFound", got, err)
	}
	if now := load(t, s, m.ID); now.State != switchboard.MessageQueued {
		t.Fatalf("another account's cancel left the message %s", now.State)
	}
	if _, err := s.CancelMessage(ctx, "", m.ID); !errors.Is(err, switchboard.ErrInvalid) {
		t.Errorf("cancel without an account = %v, want ErrInvalid", err)
	}
	if _, err := s.CancelMessage(ctx, "AC1", uuid.NewString()); !errIsNotFound(err) {
		t.Errorf("cancel of an unknown message = %v, want ErrNotFound", err)
	}

	got, err = s.CancelMessage(ctx, "AC1", m.ID)
	if err != nil || got.State != switchboard.MessageCanceled || !got.NextAttemptAt.IsZero() || got.Body != m.Body {
		t.Fatalf("cancel = %+v, %v; want canceled, nothing due, the body kept", got, err)
	}
	if stored := load(t, s, m.ID); !reflect.DeepEqual(stored, got) {
		t.Errorf("stored %+v, want what cancel returned %+v", stored, got)
	}
	h, err := s.MessageHistory(ctx, m.ID)
	if err != nil || len(h) != 1 || h[0].Status != switchboard.StatusCanceled || h[0].Source != switchboard.SourceAPI || !h[0].Applied {
		t.Errorf("history = %+v, %v; want one applied canceled entry from the api", h, err)
	}
	again, err := s.CancelMessage(ctx, "AC1", m.ID)
	if err != nil || !reflect.DeepEqual(again, got) {
		t.Errorf("repeated cancel = %+v, %v; want the message unchanged", again, err)
	}
	if h, _ := s.MessageHistory(ctx, m.ID); len(h) != 1 {
		t.Errorf("a repeated cancel appended to the history: %d entries", len(h))
	}

	// The send worker's claim is refused; nothing else it records applies
	// or schedules anything.
	jobsBefore := len(sendJobs(t, o, m.ID))
	if err := s.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: switchboard.MessageSending,
		From: "+15559000"}); !errors.Is(err, switchboard.ErrCanceled) {
		t.Errorf("claim of a canceled message = %v, want ErrCanceled", err)
	}
	for _, st := range []switchboard.MessageState{switchboard.MessageQueued, switchboard.MessageFailed} {
		if err := s.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: st, Error: "late"}); err != nil {
			t.Errorf("%s result for a canceled message: %v", st, err)
		}
	}
	if err := s.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: switchboard.MessageSent,
		TwilioSID: "SMcancel1"}); err != nil {
		t.Errorf("sent result for a canceled message: %v", err)
	}
	if stored := load(t, s, m.ID); !reflect.DeepEqual(stored, got) {
		t.Errorf("after send results: %+v, want it still canceled as it was", stored)
	}
	if n := len(sendJobs(t, o, m.ID)); n != jobsBefore {
		t.Errorf("%d send jobs, want still %d", n, jobsBefore)
	}
	// It no longer holds later messages to its recipient back.
	later := accountMessage(t, s, "AC1", "cancel-later", "+15550200", base.Add(time.Second))
	if e, err := s.EarlierUnsent(ctx, "default", "+15550200", later.ID, switchboard.Purposes); !errIsNotFound(err) {
		t.Errorf("EarlierUnsent = %+v, %v; want none: the canceled message is not unsent", e, err)
	}

	// Claimed (sending) and sent messages stay as they are.
	sending := accountMessage(t, s, "AC1", "cancel-sending", "+15550201", base)
	if err := s.RecordSend(ctx, switchboard.SendResult{MessageID: sending.ID, Attempts: 1, State: switchboard.MessageSending, From: "+15559000"}); err != nil {
		t.Fatal(err)
	}
	sent := accountMessage(t, s, "AC1", "cancel-sent", "+15550202", base)
	markSent(t, s, sent, "+15559000", "SMcancelsent", base)
	for _, id := range []string{sending.ID, sent.ID} {
		before := load(t, s, id)
		if _, err := s.CancelMessage(ctx, "AC1", id); !errors.Is(err, switchboard.ErrNotCancelable) {
			t.Errorf("cancel of a %s message = %v, want ErrNotCancelable", before.State, err)
		}
		if after := load(t, s, id); !reflect.DeepEqual(after, before) {
			t.Errorf("a refused cancel changed the message: %+v, was %+v", after, before)
		}
	}
}

// A cancel and a send claim of one message race, each on its own store
// handle (a replica where the engine has them): exactly one wins, and the
// message is as the winner left it.
func testCancelRacesClaim(t *testing.T, o Opened) {
	ctx := context.Background()
	other := o.Store
	if o.Replica != nil {
		other = o.Replica(t)
	}
	const n = 20
	msgs := make([]*switchboard.OutboundMessage, n)
	for i := range msgs {
		msgs[i] = accountMessage(t, o.Store, "AC1", fmt.Sprintf("race-%d", i), fmt.Sprintf("+155503%02d", i), base)
	}
	type outcome struct{ cancel, claim error }
	results := make([]outcome, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			_, results[i].cancel = o.Store.CancelMessage(ctx, "AC1", m.ID)
		}()
		go func() {
			defer wg.Done()
			<-start
			results[i].claim = other.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1,
				State: switchboard.MessageSending, From: "+15559000"})
		}()
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		got := load(t, o.Store, msgs[i].ID)
		switch {
		case r.cancel == nil && errors.Is(r.claim, switchboard.ErrCanceled):
			if got.State != switchboard.MessageCanceled || got.Attempts != 0 {
				t.Errorf("message %d: the cancel won, but it is %s after %d attempts", i, got.State, got.Attempts)
			}
		case r.claim == nil && errors.Is(r.cancel, switchboard.ErrNotCancelable):
			if got.State != switchboard.MessageSending || got.Attempts != 1 {
				t.Errorf("message %d: the claim won, but it is %s after %d attempts", i, got.State, got.Attempts)
			}
		default:
			t.Errorf("message %d: cancel %v, claim %v: want exactly one to win", i, r.cancel, r.claim)
		}
	}
}

// A settled message's body is emptied, nothing else; one still queued or
// sending, or another account's, is left alone.
func testRedactMessage(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	queued := accountMessage(t, s, "AC1", "redact-queued", "+15550400", base)
	sending := accountMessage(t, s, "AC1", "redact-sending", "+15550401", base)
	if err := s.RecordSend(ctx, switchboard.SendResult{MessageID: sending.ID, Attempts: 1, State: switchboard.MessageSending, From: "+15559000"}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*switchboard.OutboundMessage{queued, sending} {
		before := load(t, s, m.ID)
		if _, err := s.RedactMessage(ctx, "AC1", m.ID); !errors.Is(err, switchboard.ErrNotSettled) {
			t.Errorf("redact of a %s message = %v, want ErrNotSettled", before.State, err)
		}
		if after := load(t, s, m.ID); !reflect.DeepEqual(after, before) {
			t.Errorf("a refused redaction changed the message: %+v", after)
		}
	}

	sent := accountMessage(t, s, "AC1", "redact-sent", "+15550402", base)
	markSent(t, s, sent, "+15559000", "SMredact", base)
	before := load(t, s, sent.ID)
	if _, err := s.RedactMessage(ctx, "AC2", sent.ID); !errIsNotFound(err) {
		t.Errorf("another account's redaction = %v, want ErrNotFound", err)
	}
	if after := load(t, s, sent.ID); after.Body != before.Body {
		t.Fatalf("another account's redaction emptied the body")
	}
	got, err := s.RedactMessage(ctx, "AC1", sent.ID)
	if err != nil || got.Body != "" || !got.UpdatedAt.After(before.UpdatedAt) {
		t.Fatalf("redact = %+v, %v; want an empty body, updated", got, err)
	}
	stored := load(t, s, sent.ID)
	if !reflect.DeepEqual(stored, got) {
		t.Errorf("stored %+v, want what redaction returned %+v", stored, got)
	}
	want := *before
	want.Body, want.UpdatedAt = "", got.UpdatedAt
	if !reflect.DeepEqual(stored, &want) {
		t.Errorf("redaction changed more than the body: %+v, was %+v", stored, before)
	}
	if again, err := s.RedactMessage(ctx, "AC1", sent.ID); err != nil || !reflect.DeepEqual(again, got) {
		t.Errorf("repeated redaction = %+v, %v; want the message as it was", again, err)
	}
	// A repeat of its create is still the same message (its payload hash
	// stays), not a new one.
	repeat := NewMessage("redact-sent", "+15550402", base)
	repeat.AccountSID = "AC1"
	if created, err := s.CreateMessage(ctx, repeat); err != nil || created || repeat.ID != sent.ID {
		t.Errorf("repeat of the redacted message's create: created %v, %v, id %s", created, err, repeat.ID)
	}

	// A canceled message is settled: its body may go too.
	canceled := accountMessage(t, s, "AC1", "redact-canceled", "+15550403", base)
	if _, err := s.CancelMessage(ctx, "AC1", canceled.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.RedactMessage(ctx, "AC1", canceled.ID); err != nil || got.Body != "" || got.State != switchboard.MessageCanceled {
		t.Errorf("redact of a canceled message = %+v, %v", got, err)
	}
}

// A settled message goes with its history, out of every look-up and
// listing, and its key is free; one still queued or sending, or another
// account's, stays.
func testDeleteMessage(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	queued := accountMessage(t, s, "AC1", "delete-queued", "+15550500", base)
	sending := accountMessage(t, s, "AC1", "delete-sending", "+15550501", base)
	if err := s.RecordSend(ctx, switchboard.SendResult{MessageID: sending.ID, Attempts: 1, State: switchboard.MessageSending, From: "+15559000"}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*switchboard.OutboundMessage{queued, sending} {
		if err := s.DeleteMessage(ctx, "AC1", m.ID); !errors.Is(err, switchboard.ErrNotSettled) {
			t.Errorf("delete of an unsettled message = %v, want ErrNotSettled", err)
		}
		load(t, s, m.ID)
	}

	sent := accountMessage(t, s, "AC1", "delete-sent", "+15550502", base)
	markSent(t, s, sent, "+15559000", "SMdelete", base)
	if _, err := s.UpdateMessageStatus(ctx, switchboard.StatusUpdate{AccountSID: "AC1", TwilioSID: "SMdelete", Status: "delivered",
		At: base.Add(time.Minute), Source: "callback"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMessage(ctx, "AC2", sent.ID); !errIsNotFound(err) {
		t.Errorf("another account's delete = %v, want ErrNotFound", err)
	}
	if h, err := s.MessageHistory(ctx, sent.ID); err != nil || len(h) != 1 || load(t, s, sent.ID).State != switchboard.MessageDelivered {
		t.Fatalf("after another account's delete: history %d entries, %v", len(h), err)
	}
	if err := s.DeleteMessage(ctx, "", sent.ID); !errors.Is(err, switchboard.ErrInvalid) {
		t.Errorf("delete without an account = %v, want ErrInvalid", err)
	}

	if err := s.DeleteMessage(ctx, "AC1", sent.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.OutboundMessage(ctx, sent.ID); !errIsNotFound(err) {
		t.Errorf("OutboundMessage after delete = %v, want ErrNotFound", err)
	}
	if _, err := s.OutboundMessageBySID(ctx, "AC1", "SMdelete"); !errIsNotFound(err) {
		t.Errorf("OutboundMessageBySID after delete = %v, want ErrNotFound", err)
	}
	if h, err := s.MessageHistory(ctx, sent.ID); err != nil || len(h) != 0 {
		t.Errorf("history after delete: %d entries, %v", len(h), err)
	}
	page, err := s.ListAccountMessages(ctx, switchboard.AccountFilter{AccountSID: "AC1", Limit: 100})
	if err != nil || slices.Contains(ids(page.Items), sent.ID) || len(page.Items) != 2 {
		t.Errorf("listing after delete: %v, %v; want the two unsettled ones", ids(page.Items), err)
	}
	if err := s.DeleteMessage(ctx, "AC1", sent.ID); !errIsNotFound(err) {
		t.Errorf("second delete = %v, want ErrNotFound", err)
	}
	// A status callback for it now finds nothing, and its key is free.
	if _, err := s.UpdateMessageStatus(ctx, switchboard.StatusUpdate{AccountSID: "AC1", TwilioSID: "SMdelete", Status: "read",
		Source: "callback"}); !errIsNotFound(err) {
		t.Errorf("status update of a deleted message = %v, want ErrNotFound", err)
	}
	again := NewMessage("delete-sent", "+15550502", base)
	again.AccountSID = "AC1"
	if created, err := s.CreateMessage(ctx, again); err != nil || !created {
		t.Errorf("create with a deleted message's key: created %v, %v; want a new message", created, err)
	}

	// A canceled message is settled: it may be deleted.
	canceled := accountMessage(t, s, "AC1", "delete-canceled", "+15550503", base)
	if _, err := s.CancelMessage(ctx, "AC1", canceled.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMessage(ctx, "AC1", canceled.ID); err != nil {
		t.Errorf("delete of a canceled message: %v", err)
	}
}

// Retention prunes a canceled message like any settled one, by the time it
// was canceled.
func testCanceledIsPruned(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	m := accountMessage(t, s, "AC1", "prune-canceled", "+15550600", base)
	c, err := s.CancelMessage(ctx, "AC1", m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := prune(t, s, switchboard.PruneMessages, c.UpdatedAt, 10); n != 0 {
		t.Errorf("pruned %d at the time it was canceled, want 0", n)
	}
	if n := prune(t, s, switchboard.PruneMessages, c.UpdatedAt.Add(time.Microsecond), 10); n != 1 {
		t.Errorf("pruned %d after it was canceled, want 1", n)
	}
	if h, err := s.MessageHistory(ctx, m.ID); err != nil || len(h) != 0 {
		t.Errorf("history of the pruned message: %d entries, %v", len(h), err)
	}
}

// MigratedMessage is a queued message an engine's test stores with its
// own SQL in a database migrated only up to the migration before the one
// that allows canceled messages, with one history entry (status "queued",
// source "test"), before opening it; CheckMigratedMessage then checks it
// came through.
func MigratedMessage() *switchboard.OutboundMessage {
	return NewMessage("migrated-cancel", "+15550700", base)
}

// CheckMigratedMessage checks that the message of MigratedMessage and its
// history survived the migration, that it is listed by its account, and
// that it can now be canceled.
func CheckMigratedMessage(t *testing.T, s switchboard.Store) {
	t.Helper()
	ctx := context.Background()
	want := MigratedMessage()
	got, err := s.OutboundMessageByKey(ctx, want.IdempotencyKey)
	if err != nil {
		t.Fatalf("migrated message: %v", err)
	}
	if got.To != want.To || got.Body != want.Body || got.State != switchboard.MessageQueued || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("migrated message = %+v", got)
	}
	if h, err := s.MessageHistory(ctx, got.ID); err != nil || len(h) != 1 || h[0].Source != "test" {
		t.Errorf("migrated history = %+v, %v; want the one entry", h, err)
	}
	page, err := s.ListAccountMessages(ctx, switchboard.AccountFilter{AccountSID: got.AccountSID, Limit: 10})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != got.ID {
		t.Errorf("listing after the migration: %+v, %v", page, err)
	}
	if c, err := s.CancelMessage(ctx, got.AccountSID, got.ID); err != nil || c.State != switchboard.MessageCanceled {
		t.Errorf("cancel after the migration = %+v, %v", c, err)
	}
	if h, _ := s.MessageHistory(ctx, got.ID); len(h) != 2 {
		t.Errorf("history after the cancel: %d entries, want 2", len(h))
	}
}
