package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// finish records attempts of it's event that leave it in state, the last
// one at at; a terminal state is reached at at, so that is the event's age.
func finish(t *testing.T, s switchboard.Store, ev *switchboard.Event, state switchboard.State, at time.Time, attempts int) {
	t.Helper()
	for n := 1; n <= attempts; n++ {
		st, status, next := switchboard.StateRetrying, 503, at.Add(time.Hour)
		if n == attempts {
			st, status, next = state, 200, time.Time{}
			if state != switchboard.StateDelivered {
				status = 500
			}
			if !state.Terminal() {
				next = at.Add(time.Hour)
			}
		}
		r := &switchboard.AttemptResult{Attempt: switchboard.Attempt{
			EventID: ev.ID, Number: n, StartedAt: at.Add(-time.Duration(attempts-n) * time.Minute), TargetURL: "http://app/sms",
			StatusCode: status, Latency: 0, ResponseHeader: http.Header{}, ResponseExcerpt: []byte("x"),
		}, State: st, NextAttemptAt: next, Attempts: n}
		if err := s.RecordAttempts(context.Background(), []*switchboard.AttemptResult{r}); err != nil {
			t.Fatalf("RecordAttempts %s: %v", ev.ID, err)
		}
	}
}

// prune calls Prune and fails the test on an error.
func prune(t *testing.T, s switchboard.Store, kind switchboard.PruneKind, before time.Time, limit int) int {
	t.Helper()
	n, err := s.Prune(context.Background(), kind, before, limit)
	if err != nil {
		t.Fatalf("Prune %s: %v", kind, err)
	}
	return n
}

// gone fails the test unless every event and request named is deleted
// (ErrNotFound) and the events have no attempts left.
func gone(t *testing.T, s switchboard.Store, what string, events, requests []string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range events {
		if _, err := s.Event(ctx, id); !errors.Is(err, switchboard.ErrNotFound) {
			t.Errorf("%s: event %s: %v, want it pruned", what, id, err)
		}
		if atts, err := s.Attempts(ctx, id); err != nil || len(atts) != 0 {
			t.Errorf("%s: event %s still has %d attempts (%v)", what, id, len(atts), err)
		}
	}
	for _, id := range requests {
		if _, err := s.Request(ctx, id); !errors.Is(err, switchboard.ErrNotFound) {
			t.Errorf("%s: request %s: %v, want it pruned", what, id, err)
		}
	}
}

// kept fails the test unless every event and request named is stored.
func kept(t *testing.T, s switchboard.Store, what string, events, requests []string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range events {
		if _, err := s.Event(ctx, id); err != nil {
			t.Errorf("%s: event %s: %v, want it kept", what, id, err)
		}
	}
	for _, id := range requests {
		if _, err := s.Request(ctx, id); err != nil {
			t.Errorf("%s: request %s: %v, want it kept", what, id, err)
		}
	}
}

// Old delivered events go in batches of the limit, oldest first, with
// their attempts, their requests and their duplicates' requests; dead
// events only with their own kind; recent, pending and retrying events
// stay, whatever their age.
func testPruneEvents(t *testing.T, o Opened) {
	s := o.Store
	cutoff := base.Add(30 * 24 * time.Hour)
	var oldIDs, oldReqs []string
	for i := range 7 {
		it := NewItem("/sms", fmt.Sprintf("old-%d", i), base)
		ingest(t, s, it)
		finish(t, s, it.Event, switchboard.StateDelivered, base.Add(time.Duration(i)*time.Hour), 2)
		oldIDs, oldReqs = append(oldIDs, it.Event.ID), append(oldReqs, it.Request.ID)
		if i%2 == 0 { // a Twilio retry, stored as a duplicate of it
			dup := NewItem("/sms", it.Event.IdempotencyKey, base.Add(time.Minute))
			ingest(t, s, dup)
			if !dup.Duplicate {
				t.Fatalf("retry of %s not a duplicate", it.Event.IdempotencyKey)
			}
			oldReqs = append(oldReqs, dup.Request.ID)
		}
	}
	recent := NewItem("/sms", "recent", cutoff.Add(-time.Hour))
	ingest(t, s, recent)
	finish(t, s, recent.Event, switchboard.StateDelivered, cutoff.Add(time.Minute), 1)
	dead := NewItem("/sms", "dead", base)
	ingest(t, s, dead)
	finish(t, s, dead.Event, switchboard.StateDead, base, 3)
	pending := NewItem("/sms", "pending", base)
	retrying := NewItem("/sms", "retrying", base)
	ingest(t, s, pending, retrying)
	finish(t, s, retrying.Event, switchboard.StateRetrying, base, 2)

	var got []int
	for n := -1; n != 0; {
		n = prune(t, s, switchboard.PruneDelivered, cutoff, 3)
		got = append(got, n)
		if len(got) > 10 {
			t.Fatalf("Prune goes on returning %v", got)
		}
	}
	if fmt.Sprint(got) != "[3 3 1 0]" {
		t.Errorf("batches of 3 deleted %v, want [3 3 1 0]", got)
	}
	gone(t, s, "old delivered", oldIDs, oldReqs)
	kept(t, s, "recent delivered, dead, pending, retrying",
		[]string{recent.Event.ID, dead.Event.ID, pending.Event.ID, retrying.Event.ID},
		[]string{recent.Request.ID, dead.Request.ID, pending.Request.ID, retrying.Request.ID})
	if atts, err := s.Attempts(context.Background(), dead.Event.ID); err != nil || len(atts) != 3 {
		t.Errorf("dead event kept %d attempts (%v), want 3", len(atts), err)
	}

	// Oldest first: with a limit of 1, the event delivered first goes
	// first.
	a, b := NewItem("/sms", "second", base), NewItem("/sms", "first", base)
	ingest(t, s, a, b)
	finish(t, s, a.Event, switchboard.StateDelivered, base.Add(2*time.Hour), 1)
	finish(t, s, b.Event, switchboard.StateDelivered, base.Add(time.Hour), 1)
	if n := prune(t, s, switchboard.PruneDelivered, cutoff, 1); n != 1 {
		t.Fatalf("Prune = %d, want 1", n)
	}
	gone(t, s, "oldest", []string{b.Event.ID}, []string{b.Request.ID})
	kept(t, s, "newer", []string{a.Event.ID}, []string{a.Request.ID})

	if n := prune(t, s, switchboard.PruneDead, cutoff, 10); n != 1 {
		t.Errorf("Prune dead = %d, want 1", n)
	}
	gone(t, s, "old dead", []string{dead.Event.ID}, []string{dead.Request.ID})
}

// Whatever the cutoff, an event still to be delivered stays with its
// request, and so does an old event replayed since.
func testPruneNeverLive(t *testing.T, o Opened) {
	s, ctx := o.Store, context.Background()
	pending, retrying, replayed := NewItem("/sms", "p", base), NewItem("/sms", "r", base), NewItem("/sms", "rp", base)
	ingest(t, s, pending, retrying, replayed)
	finish(t, s, retrying.Event, switchboard.StateRetrying, base, 1)
	finish(t, s, replayed.Event, switchboard.StateDead, base, 1)
	if n, err := s.Replay(ctx, switchboard.ReplayFilter{EventID: replayed.Event.ID}); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	future := time.Now().Add(365 * 24 * time.Hour)
	for _, k := range switchboard.PruneKinds {
		if n := prune(t, s, k, future, 100); n != 0 {
			t.Errorf("Prune %s deleted %d, want nothing: every event is still to be delivered", k, n)
		}
	}
	kept(t, s, "live", []string{pending.Event.ID, retrying.Event.ID, replayed.Event.ID},
		[]string{pending.Request.ID, retrying.Request.ID, replayed.Request.ID})
}

// Rejected requests go by the time they were received, by their own kind
// only, and nothing else goes with them.
func testPruneRejected(t *testing.T, o Opened) {
	s := o.Store
	cutoff := base.Add(7 * 24 * time.Hour)
	var old []string
	for i := range 5 {
		it := NewItem("/sms", fmt.Sprintf("rej-%d", i), base.Add(time.Duration(i)*time.Minute))
		it.Request.Outcome, it.Request.Reason, it.Event = switchboard.OutcomeRejected, "bad signature", nil
		ingest(t, s, it)
		old = append(old, it.Request.ID)
	}
	young := NewItem("/sms", "rej-young", cutoff)
	young.Request.Outcome, young.Event = switchboard.OutcomeRejected, nil
	accepted := NewItem("/sms", "acc", base)
	ingest(t, s, young, accepted)
	finish(t, s, accepted.Event, switchboard.StateDelivered, base, 1)

	for _, k := range []switchboard.PruneKind{switchboard.PruneDead, switchboard.PruneMessages} {
		if n := prune(t, s, k, cutoff, 10); n != 0 {
			t.Errorf("Prune %s deleted %d", k, n)
		}
	}
	if n := prune(t, s, switchboard.PruneRejected, cutoff, 3); n != 3 {
		t.Errorf("first batch = %d, want 3", n)
	}
	gone(t, s, "oldest rejected", nil, old[:3])
	kept(t, s, "newer rejected", nil, old[3:])
	if n := prune(t, s, switchboard.PruneRejected, cutoff, 3); n != 2 {
		t.Errorf("second batch = %d, want 2", n)
	}
	gone(t, s, "old rejected", nil, old)
	kept(t, s, "rejected at the cutoff, accepted", []string{accepted.Event.ID}, []string{young.Request.ID, accepted.Request.ID})
}

// Fan-out events share their request: it goes with the last of them,
// whichever kind that is, and never before.
func testPruneFanout(t *testing.T, o Opened) {
	s, ctx := o.Store, context.Background()
	cutoff := base.Add(90 * 24 * time.Hour)

	// A callback whose status webhook copy is still retrying.
	it := NewItem("/status", "fan-live", base)
	hook := fanoutOf(it, "status_webhook", "https://app.example.com/status")
	it.Fanout = []*switchboard.Event{hook}
	ingest(t, s, it)
	finish(t, s, it.Event, switchboard.StateDelivered, base, 1)
	finish(t, s, hook, switchboard.StateRetrying, base, 1)
	// A callback whose copy, added after its answer (IngestFanout), died.
	later := NewItem("/status", "fan-dead", base)
	ingest(t, s, later)
	copyOf := fanoutOf(later, "status_webhook", "https://app.example.com/status")
	copyOf.RequestID = later.Request.ID
	if err := s.IngestFanout(ctx, []*switchboard.Event{copyOf}); err != nil {
		t.Fatal(err)
	}
	finish(t, s, later.Event, switchboard.StateDelivered, base, 1)
	finish(t, s, copyOf, switchboard.StateDead, base, 2)
	// The copy is delivered and old, its request's own event dead.
	third := NewItem("/status", "fan-main-dead", base)
	thirdHook := fanoutOf(third, "status_webhook", "https://app.example.com/status")
	third.Fanout = []*switchboard.Event{thirdHook}
	ingest(t, s, third)
	finish(t, s, third.Event, switchboard.StateDead, base, 1)
	finish(t, s, thirdHook, switchboard.StateDelivered, base, 1)

	if n := prune(t, s, switchboard.PruneDelivered, cutoff, 100); n != 3 {
		t.Errorf("Prune delivered = %d, want 3", n)
	}
	gone(t, s, "delivered events", []string{it.Event.ID, later.Event.ID, thirdHook.ID}, nil)
	kept(t, s, "events of shared requests", []string{hook.ID, copyOf.ID, third.Event.ID},
		[]string{it.Request.ID, later.Request.ID, third.Request.ID})

	if n := prune(t, s, switchboard.PruneDead, cutoff, 100); n != 2 {
		t.Errorf("Prune dead = %d, want 2", n)
	}
	gone(t, s, "dead events and the requests they were the last of", []string{copyOf.ID, third.Event.ID},
		[]string{later.Request.ID, third.Request.ID})
	kept(t, s, "retrying copy", []string{hook.ID}, []string{it.Request.ID})

	// Delivered at last (its second attempt), the copy takes its request
	// along.
	finish(t, s, hook, switchboard.StateDelivered, base.Add(time.Hour), 2)
	if n := prune(t, s, switchboard.PruneDelivered, cutoff, 100); n != 1 {
		t.Errorf("Prune delivered = %d, want 1", n)
	}
	gone(t, s, "the last event of a request", []string{hook.ID}, []string{it.Request.ID})
}

// Messages go once their send is over (any state but queued and sending),
// by the time they last changed, with their status history.
func testPruneMessages(t *testing.T, o Opened) {
	s, ctx := o.Store, context.Background()
	cutoff := base.Add(90 * 24 * time.Hour)
	byState := map[switchboard.MessageState]string{}
	for i, st := range switchboard.MessageStates {
		if st == switchboard.MessageCanceled {
			continue // canceled at the store's own clock: see testCanceledIsPruned
		}
		m := NewMessage(fmt.Sprintf("prune-%s", st), fmt.Sprintf("+1555000%02d", i), base)
		createMessage(t, s, m)
		byState[st] = m.ID
		at := base.Add(time.Minute)
		if st == switchboard.MessageQueued {
			continue
		}
		if err := s.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: switchboard.MessageSending, At: at}); err != nil {
			t.Fatal(err)
		}
		switch st {
		case switchboard.MessageSending:
			continue
		case switchboard.MessageFailed:
			if err := s.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: switchboard.MessageFailed,
				ErrorCode: 21211, Error: "invalid To", At: at}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		sid := fmt.Sprintf("SMprune%s", st)
		if err := s.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: switchboard.MessageSent,
			TwilioSID: sid, TwilioStatus: "queued", At: at}); err != nil {
			t.Fatal(err)
		}
		if st == switchboard.MessageSent {
			continue
		}
		if _, err := s.UpdateMessageStatus(ctx, switchboard.StatusUpdate{AccountSID: m.AccountSID, TwilioSID: sid, Status: string(st), At: at.Add(time.Minute), Source: "callback"}); err != nil {
			t.Fatal(err)
		}
	}
	recent := NewMessage("prune-recent", "+15550999", base)
	createMessage(t, s, recent)
	if err := s.RecordSend(ctx, switchboard.SendResult{MessageID: recent.ID, Attempts: 1, State: switchboard.MessageFailed,
		Error: "refused", At: cutoff}); err != nil {
		t.Fatal(err)
	}
	settled := []switchboard.MessageState{switchboard.MessageSent, switchboard.MessageDelivered,
		switchboard.MessageUndelivered, switchboard.MessageFailed, switchboard.MessageRead}
	for _, st := range settled {
		if h, err := s.MessageHistory(ctx, byState[st]); err != nil || (st != switchboard.MessageSent && st != switchboard.MessageFailed && len(h) == 0) {
			t.Fatalf("history of the %s message: %d entries (%v)", st, len(h), err)
		}
	}

	if n := prune(t, s, switchboard.PruneMessages, cutoff, 3); n != 3 {
		t.Errorf("first batch = %d, want 3", n)
	}
	if n := prune(t, s, switchboard.PruneMessages, cutoff, 3); n != 2 {
		t.Errorf("second batch = %d, want 2", n)
	}
	if n := prune(t, s, switchboard.PruneMessages, cutoff, 3); n != 0 {
		t.Errorf("third batch = %d, want 0", n)
	}
	for _, st := range settled {
		if _, err := s.OutboundMessage(ctx, byState[st]); !errors.Is(err, switchboard.ErrNotFound) {
			t.Errorf("%s message: %v, want it pruned", st, err)
		}
		if h, err := s.MessageHistory(ctx, byState[st]); err != nil || len(h) != 0 {
			t.Errorf("%s message's history: %d entries left (%v)", st, len(h), err)
		}
	}
	for _, id := range []string{byState[switchboard.MessageQueued], byState[switchboard.MessageSending], recent.ID} {
		if _, err := s.OutboundMessage(ctx, id); err != nil {
			t.Errorf("message %s: %v, want it kept", id, err)
		}
	}
	// Its key is free again: the idempotency window is the retention.
	again := NewMessage("prune-delivered", "+15550002", base)
	if created, err := s.CreateMessage(ctx, again); err != nil || !created {
		t.Errorf("CreateMessage with a pruned message's key: created %v, %v", created, err)
	}
}

// A sticky sender goes once no message to its recipient was created in
// its pool since the cutoff; one still in use stays and is not looked at
// again before its last use is old.
func testPruneStickySenders(t *testing.T, o Opened) {
	s, ctx := o.Store, context.Background()
	for _, r := range []string{"+15550001", "+15550002", "+15550003"} {
		if err := s.SetStickySender(ctx, "default", r, "+15559000"); err != nil {
			t.Fatal(err)
		}
	}
	// The sticky senders are set before cutoff; the message to the first
	// recipient is created after it, another pool's message to the second
	// does not count.
	cutoff := time.Now()
	inUse := NewMessage("sticky-use", "+15550001", time.Time{})
	createMessage(t, s, inUse)
	other := NewMessage("sticky-other-pool", "+15550002", time.Time{})
	other.Pool = "other"
	other.PayloadHash = switchboard.Payload{To: other.To, Body: other.Body, MediaURLs: other.MediaURLs, Pool: other.Pool, From: other.From, Purpose: other.Purpose, Template: other.Template}.Hash()
	createMessage(t, s, other)

	if n := prune(t, s, switchboard.PruneStickySenders, cutoff, 10); n != 2 {
		t.Errorf("Prune sticky senders = %d, want 2", n)
	}
	if from, err := s.StickySender(ctx, "default", "+15550001"); err != nil || from != "+15559000" {
		t.Errorf("sticky sender in use: %q, %v", from, err)
	}
	for _, r := range []string{"+15550002", "+15550003"} {
		if _, err := s.StickySender(ctx, "default", r); !errors.Is(err, switchboard.ErrNotFound) {
			t.Errorf("sticky sender of %s: %v, want it pruned", r, err)
		}
	}
	if n := prune(t, s, switchboard.PruneStickySenders, cutoff, 10); n != 0 {
		t.Errorf("Prune again = %d, want 0", n)
	}
	if _, err := s.StickySender(ctx, "default", "+15550001"); err != nil {
		t.Errorf("sticky sender in use, pruned again: %v", err)
	}
}

func testPruneInvalid(t *testing.T, o Opened) {
	ctx := context.Background()
	if _, err := o.Store.Prune(ctx, "everything", base, 10); !errors.Is(err, switchboard.ErrInvalid) {
		t.Errorf("unknown kind: %v, want ErrInvalid", err)
	}
	if _, err := o.Store.Prune(ctx, switchboard.PruneDelivered, base, 0); !errors.Is(err, switchboard.ErrInvalid) {
		t.Errorf("limit 0: %v, want ErrInvalid", err)
	}
}

// Pruning runs while webhooks are ingested, some of them retries of the
// very events being pruned: every ingest succeeds, each retry becomes
// either a duplicate of an event still stored or a new event, and no
// request is left naming a deleted event or an event lacking its
// request. Replicas prune side by side where the engine has them.
func testPruneWhileIngesting(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	const old = 400
	items := make([]*switchboard.Ingest, old)
	for i := range items {
		items[i] = NewItem("/sms", fmt.Sprintf("aged-%d", i), base)
	}
	for i := 0; i < old; i += 100 {
		ingest(t, s, items[i:i+100]...)
	}
	var results []*switchboard.AttemptResult
	for _, it := range items {
		results = append(results, &switchboard.AttemptResult{Attempt: switchboard.Attempt{EventID: it.Event.ID, Number: 1,
			StartedAt: base, TargetURL: "http://app/sms", StatusCode: 200, ResponseHeader: http.Header{}},
			State: switchboard.StateDelivered, Attempts: 1})
	}
	if err := s.RecordAttempts(ctx, results); err != nil {
		t.Fatal(err)
	}
	pruners := []switchboard.Store{s}
	if o.Replica != nil {
		pruners = append(pruners, o.Replica(t))
	}

	cutoff := base.Add(24 * time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	stop := make(chan struct{})
	var ingested sync.Map // request id → item
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				fresh := NewItem("/sms", fmt.Sprintf("fresh-%d-%d", w, i), time.Now())
				retry := NewItem("/sms", items[(w*53+i*7)%old].Event.IdempotencyKey, time.Now())
				if err := s.Ingest(ctx, []*switchboard.Ingest{fresh, retry}); err != nil {
					errs <- fmt.Errorf("ingest while pruning: %w", err)
					return
				}
				ingested.Store(fresh.Request.ID, fresh)
				ingested.Store(retry.Request.ID, retry)
			}
		})
	}
	var pruned sync.WaitGroup
	total := make([]int, len(pruners))
	for p, st := range pruners {
		pruned.Go(func() {
			for {
				n, err := st.Prune(ctx, switchboard.PruneDelivered, cutoff, 7)
				if err != nil {
					errs <- fmt.Errorf("prune while ingesting: %w", err)
					return
				}
				total[p] += n
				if n == 0 {
					return
				}
			}
		})
	}
	pruned.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	sum := 0
	for _, n := range total {
		sum += n
	}
	// Retries that became new events are fresh: only the aged events go.
	if sum != old {
		t.Errorf("pruned %d events (%v), want the %d aged ones", sum, total, old)
	}
	for _, it := range items {
		if _, err := s.Event(ctx, it.Event.ID); !errors.Is(err, switchboard.ErrNotFound) {
			t.Errorf("aged event %s: %v, want it pruned", it.Event.ID, err)
		}
		if _, err := s.Request(ctx, it.Request.ID); !errors.Is(err, switchboard.ErrNotFound) {
			t.Errorf("aged request %s: %v, want it pruned", it.Request.ID, err)
		}
	}
	n := 0
	ingested.Range(func(_, v any) bool {
		n++
		it := v.(*switchboard.Ingest)
		req, err := s.Request(ctx, it.Request.ID)
		switch {
		case errors.Is(err, switchboard.ErrNotFound) && it.Duplicate:
			// A duplicate of an aged event, pruned with it.
			if _, err := s.Event(ctx, it.Event.ID); !errors.Is(err, switchboard.ErrNotFound) {
				t.Errorf("duplicate request %s pruned while its event %s stays (%v)", it.Request.ID, it.Event.ID, err)
			}
		case err != nil:
			t.Errorf("request %s (duplicate %v): %v", it.Request.ID, it.Duplicate, err)
		default:
			if _, err := s.Event(ctx, req.EventID); err != nil {
				t.Errorf("request %s (%s) names event %s: %v", req.ID, req.Outcome, req.EventID, err)
			}
		}
		return true
	})
	if n == 0 {
		t.Error("nothing was ingested while pruning")
	}
}
