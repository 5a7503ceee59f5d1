package ingest_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/ingest"
	"github.com/switchboard-dev/switchboard/metrics"
)

// A process that stored status callbacks but died before applying them
// (here: intake with outbound tracking off, as if the follow-ups never
// ran) leaves the message behind; the next process's RecoverStatuses
// applies the callbacks of the moments before the newest, once.
func TestRecoverStatusesAfterACrash(t *testing.T) {
	f := newOutboundFixture(t, obOptions{off: true})
	const sid = "SM00000000000000000000000000000077"
	m := f.sentMessage(t, sid)

	f.at(-time.Minute) // long before the crash: outside the window
	f.post(t, statusCallback(sid, "queued"))
	f.at(3 * time.Second)
	f.post(t, statusCallback(sid, "sent"))
	delivered := f.at(10 * time.Second)
	f.post(t, statusCallback(sid, "delivered"))
	f.post(t, statusCallback("SM00000000000000000000000000000099", "delivered")) // not ours
	f.done()
	if got := f.message(t, m.ID); got.State != switchboard.MessageSent || len(f.history(t, m.ID)) != 0 {
		t.Fatalf("before recovery: %s with %d history entries; want untouched", got.State, len(f.history(t, m.ID)))
	}

	next := ingest.New(ingest.Options{Store: f.store, PublicURL: public, Outbound: true, Metrics: metrics.New(), AckTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(f.logs, nil)), After: atOnce})
	n, err := next.RecoverStatuses(context.Background(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("recovered %d callbacks, want 2 (sent, delivered)", n)
	}
	got := f.message(t, m.ID)
	if got.State != switchboard.MessageDelivered || !got.DeliveredAt.Equal(delivered) {
		t.Errorf("after recovery: %s delivered at %v; want delivered at %v", got.State, got.DeliveredAt, delivered)
	}
	f.checkHistory(t, m.ID,
		change{status: "sent", at: 3 * time.Second, applied: true},
		change{status: "delivered", at: 10 * time.Second, applied: true})

	// Again: everything is in the history already.
	if n, err := next.RecoverStatuses(context.Background(), 30*time.Second); err != nil || n != 0 {
		t.Errorf("second recovery: %d, %v; want nothing to do", n, err)
	}
	if h := f.history(t, m.ID); len(h) != 2 {
		t.Errorf("history after a second recovery: %d entries, want 2", len(h))
	}
}

// Without outbound tracking there is nothing to recover.
func TestRecoverStatusesOff(t *testing.T) {
	f := newOutboundFixture(t, obOptions{off: true})
	f.sentMessage(t, "SM00000000000000000000000000000078")
	f.post(t, statusCallback("SM00000000000000000000000000000078", "delivered"))
	f.done()
	if n, err := f.h.RecoverStatuses(context.Background(), time.Minute); err != nil || n != 0 {
		t.Errorf("RecoverStatuses with tracking off: %d, %v", n, err)
	}
}
