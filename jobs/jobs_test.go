package jobs

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/riverqueue/river"
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
