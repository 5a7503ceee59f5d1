package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/switchboard-dev/switchboard"
)

func TestBatchSplitsIntoBoundedJobs(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, MaxEventsPerJob - 1, MaxEventsPerJob, MaxEventsPerJob + 1, 3*MaxEventsPerJob + 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			due := make([]Due, n)
			for i := range due {
				due[i] = Due{EventID: fmt.Sprint(i), Attempts: i % 3}
			}
			jobs := Batch(due)
			if want := (n + MaxEventsPerJob - 1) / MaxEventsPerJob; len(jobs) != want {
				t.Fatalf("%d jobs, want %d", len(jobs), want)
			}
			next := 0
			for _, j := range jobs {
				if len(j.Events) == 0 || len(j.Events) > MaxEventsPerJob || !j.At.IsZero() {
					t.Errorf("job of %d events due at %v", len(j.Events), j.At)
				}
				for _, d := range j.Events {
					if d != due[next] {
						t.Errorf("event %d: got %+v, want %+v (order and attempt counts kept)", next, d, due[next])
					}
					next++
				}
			}
			if next != n {
				t.Errorf("jobs carry %d events, want %d", next, n)
			}
			// Appending to one job's slice must not overwrite the next job's events.
			if len(jobs) > 1 {
				_ = append(jobs[0].Events, Due{EventID: "x"})
				if jobs[1].Events[0] != due[MaxEventsPerJob] {
					t.Error("jobs share backing storage")
				}
			}
		})
	}
}

func TestSendArgsGoOnTheSendQueue(t *testing.T) {
	t.Parallel()
	args := SendArgs{MessageID: "m1", Attempts: 2}
	if args.Kind() != "switchboard_send" || args.Kind() == (DeliverArgs{}).Kind() {
		t.Errorf("kind %q", args.Kind())
	}
	// The delivery workers work the default queue only.
	if q := args.InsertOpts().Queue; q != SendQueue || q == river.QueueDefault {
		t.Errorf("send jobs on queue %q, want %q", q, SendQueue)
	}
	b, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"id":"m1","n":2}` {
		t.Errorf("encoded as %s", b)
	}
}

// A job due now or in the past is inserted available (no ScheduledAt),
// since River would otherwise leave it scheduled until its scheduler's
// next pass; only a future one is scheduled.
func TestDueAt(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, tc := range []struct {
		name      string
		at        time.Time
		scheduled bool
	}{
		{"zero", time.Time{}, false},
		{"past", now.Add(-time.Second), false},
		{"future", now.Add(time.Hour), true},
	} {
		opts := dueAt(tc.at)
		if got := opts != nil; got != tc.scheduled {
			t.Errorf("%s: scheduled %v, want %v", tc.name, got, tc.scheduled)
		}
		if opts != nil && !opts.ScheduledAt.Equal(tc.at) {
			t.Errorf("%s: scheduled at %v, want %v", tc.name, opts.ScheduledAt, tc.at)
		}
	}
}

// batchDeliverer records how each event was handed over, and loads a
// job's events from a fixed set, counting the loads.
type batchDeliverer struct {
	mu        sync.Mutex
	stored    map[string]*switchboard.Event
	loads     int
	byID      []string // Deliver calls
	asLoaded  []string // DeliverLoaded calls
	failLoads bool
}

func (b *batchDeliverer) EventsForDelivery(_ context.Context, ids []string) ([]*switchboard.Event, map[string]*switchboard.Request, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.loads++
	if b.failLoads {
		return nil, nil, errors.New("database unavailable")
	}
	var evs []*switchboard.Event
	reqs := map[string]*switchboard.Request{}
	for _, id := range ids {
		if ev, ok := b.stored[id]; ok {
			evs = append(evs, ev)
			reqs[ev.RequestID] = &switchboard.Request{ID: ev.RequestID}
		}
	}
	return evs, reqs, nil
}

func (b *batchDeliverer) Deliver(_ context.Context, id string, _ int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.byID = append(b.byID, id)
	return nil
}

func (b *batchDeliverer) DeliverLoaded(_ context.Context, ev *switchboard.Event, req *switchboard.Request) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if req == nil || req.ID != ev.RequestID {
		return fmt.Errorf("event %s handed over without its request", ev.ID)
	}
	b.asLoaded = append(b.asLoaded, ev.ID)
	return nil
}

func TestWorkLoadsAJobsEventsTogether(t *testing.T) {
	t.Parallel()
	stored := map[string]*switchboard.Event{
		"due":       {ID: "due", RequestID: "r1", State: switchboard.StatePending, Attempts: 2},
		"moved-on":  {ID: "moved-on", RequestID: "r2", State: switchboard.StateRetrying, Attempts: 3},
		"delivered": {ID: "delivered", RequestID: "r3", State: switchboard.StateDelivered, Attempts: 1},
	}
	job := &river.Job[DeliverArgs]{Args: DeliverArgs{Events: []Due{
		{EventID: "due", Attempts: 2}, {EventID: "moved-on", Attempts: 2}, {EventID: "delivered", Attempts: 0}, {EventID: "unknown"},
	}}}
	for _, tt := range []struct {
		name                   string
		failLoads              bool
		wantByID, wantAsLoaded []string
	}{
		{"loaded", false, []string{"unknown"}, []string{"due"}},
		{"load failed: one by one", true, []string{"delivered", "due", "moved-on", "unknown"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := &batchDeliverer{stored: stored, failLoads: tt.failLoads}
			w := &worker{deliverer: b, slots: make(chan struct{}, 2), load: b, loaded: b}
			if err := w.Work(context.Background(), job); err != nil {
				t.Fatal(err)
			}
			slices.Sort(b.byID)
			if b.loads != 1 || !slices.Equal(b.byID, tt.wantByID) || !slices.Equal(b.asLoaded, tt.wantAsLoaded) {
				t.Errorf("loads %d, one by one %v, as loaded %v; want 1, %v, %v", b.loads, b.byID, b.asLoaded, tt.wantByID, tt.wantAsLoaded)
			}
		})
	}
}

// lapsingDeliverer is a batchDeliverer whose lease lapses once it has
// made its first delivery, as a process's does when it is paused there
// for longer than its lease. It notes when the events were read and the
// start each lease check was asked about.
type lapsingDeliverer struct {
	*batchDeliverer
	lapsed   bool
	loadedAt time.Time
	asked    []time.Time
}

func (l *lapsingDeliverer) EventsForDelivery(ctx context.Context, ids []string) ([]*switchboard.Event, map[string]*switchboard.Request, error) {
	l.mu.Lock()
	l.loadedAt = time.Now()
	l.mu.Unlock()
	return l.batchDeliverer.EventsForDelivery(ctx, ids)
}

func (l *lapsingDeliverer) DeliverLoaded(ctx context.Context, ev *switchboard.Event, req *switchboard.Request) error {
	err := l.batchDeliverer.DeliverLoaded(ctx, ev, req)
	l.mu.Lock()
	l.lapsed = true
	l.mu.Unlock()
	return err
}

func (l *lapsingDeliverer) HeldSince(start time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, start)
	return !l.lapsed
}

// A job's events read together are delivered only while the lease has
// been held since before they were read: those still waiting for a
// worker when it lapses are not delivered from what may be stale by then
// (another replica may have taken the job over and delivered them), and
// the job fails, to run again once the attempt counts say what is due.
func TestWorkDeliversNothingReadBeforeTheLeaseLapsed(t *testing.T) {
	t.Parallel()
	stored := map[string]*switchboard.Event{}
	var due []Due
	for _, id := range []string{"a", "b", "c"} {
		stored[id] = &switchboard.Event{ID: id, RequestID: "r-" + id, State: switchboard.StatePending}
		due = append(due, Due{EventID: id})
	}
	l := &lapsingDeliverer{batchDeliverer: &batchDeliverer{stored: stored}}
	// One worker: the second and third events wait for the first.
	w := &worker{deliverer: l, slots: make(chan struct{}, 1), load: l, loaded: l}
	err := w.Work(context.Background(), &river.Job[DeliverArgs]{Args: DeliverArgs{Events: due}})
	if !errors.Is(err, errLeaseLost) {
		t.Errorf("Work = %v, want errLeaseLost", err)
	}
	if !slices.Equal(l.asLoaded, []string{"a"}) || len(l.byID) != 0 {
		t.Errorf("delivered %v as loaded and %v one by one; want only a, before the lapse", l.asLoaded, l.byID)
	}
	for _, start := range l.asked {
		if start.After(l.loadedAt) {
			t.Errorf("the lease was asked about %v, after the events were read (%v)", start, l.loadedAt)
		}
	}
	if len(l.asked) != len(due) {
		t.Errorf("the lease was asked %d times, want once per event (%d)", len(l.asked), len(due))
	}
}

// rescued tells a job River's rescuer took over from one whose last run
// ended with an error of its own, after which nothing may have been sent.
// The message is River's (internal/maintenance/job_rescuer.go, "Stuck job
// rescued by JobRescuer"): this pins it.
func TestRescued(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		errors []string
		want   bool
	}{
		{"first run", nil, false},
		{"rescued", []string{"Stuck job rescued by JobRescuer"}, true},
		{"rescued, then failed on its own", []string{"Stuck job rescued by JobRescuer", "event x: load: connection refused"}, false},
		{"failed, then rescued", []string{"event x: load: connection refused", "Stuck job rescued by JobRescuer"}, true},
		{"failed", []string{"event x: record attempt 1: database is closed"}, false},
	} {
		job := &rivertype.JobRow{}
		for _, e := range tc.errors {
			job.Errors = append(job.Errors, rivertype.AttemptError{Error: e})
		}
		if got := rescued(job); got != tc.want {
			t.Errorf("%s: rescued = %v, want %v", tc.name, got, tc.want)
		}
	}
}
