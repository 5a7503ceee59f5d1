package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/store"
)

// replayPreviewer is the store's dry run of a replay (store.Store's
// PreviewReplay), which every engine has through the store it embeds.
type replayPreviewer interface {
	PreviewReplay(ctx context.Context, f switchboard.ReplayFilter, sample int) (store.ReplayPreview, error)
}

// A replay's preview counts what Replay would schedule, lists the newest
// of them, refuses what Replay refuses and changes nothing; Replay then
// schedules as many as it counted.
func testPreviewReplay(t *testing.T, o Opened) {
	ctx := context.Background()
	p, ok := o.Store.(replayPreviewer)
	if !ok {
		t.Fatalf("%T has no PreviewReplay", o.Store)
	}
	// Created in this order, so their ids are too.
	smsDead := NewItem("/sms", "pv-sms-dead", base)
	smsDelivered := NewItem("/sms", "pv-sms-delivered", base.Add(time.Minute))
	voiceDead := NewItem("/voice", "pv-voice-dead", base.Add(2*time.Minute))
	smsPending := NewItem("/sms", "pv-sms-pending", base.Add(3*time.Minute))
	smsRetrying := NewItem("/sms", "pv-sms-retrying", base.Add(4*time.Minute))
	ingest(t, o.Store, smsDead, smsDelivered, voiceDead, smsPending, smsRetrying)
	if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{
		attempt(smsDead.Event.ID, 1, 410, switchboard.StateDead, time.Time{}),
		attempt(smsDelivered.Event.ID, 1, 200, switchboard.StateDelivered, time.Time{}),
		attempt(voiceDead.Event.ID, 1, 410, switchboard.StateDead, time.Time{}),
		attempt(smsRetrying.Event.ID, 1, 500, switchboard.StateRetrying, base.Add(time.Hour)),
	}); err != nil {
		t.Fatal(err)
	}
	id := func(it *switchboard.Ingest) string { return it.Event.ID }

	for _, tc := range []struct {
		name    string
		f       switchboard.ReplayFilter
		sample  int
		matched int
		ids     []string
		err     error
	}{
		{"route", switchboard.ReplayFilter{Route: "/sms"}, 5, 2, []string{id(smsDelivered), id(smsDead)}, nil},
		{"sample of one is the newest", switchboard.ReplayFilter{Route: "/sms"}, 1, 2, []string{id(smsDelivered)}, nil},
		{"no sample", switchboard.ReplayFilter{Route: "/sms"}, 0, 2, nil, nil},
		{"state", switchboard.ReplayFilter{State: switchboard.StateDead}, 5, 2, []string{id(voiceDead), id(smsDead)}, nil},
		{"route and state", switchboard.ReplayFilter{Route: "/sms", State: switchboard.StateDead}, 5, 1, []string{id(smsDead)}, nil},
		{"since", switchboard.ReplayFilter{Since: base.Add(time.Minute)}, 5, 2, []string{id(voiceDead), id(smsDelivered)}, nil},
		{"until", switchboard.ReplayFilter{Until: base.Add(time.Minute)}, 5, 1, []string{id(smsDead)}, nil},
		{"one event", switchboard.ReplayFilter{EventID: id(voiceDead)}, 5, 1, []string{id(voiceDead)}, nil},
		{"a pending event is not replayed", switchboard.ReplayFilter{EventID: id(smsPending)}, 5, 0, nil, nil},
		{"a retrying event is not replayed", switchboard.ReplayFilter{EventID: id(smsRetrying)}, 5, 0, nil, nil},
		{"no such route", switchboard.ReplayFilter{Route: "/nope"}, 5, 0, nil, nil},
		{"hostile route is only a value", switchboard.ReplayFilter{Route: "/sms' OR '1'='1"}, 5, 0, nil, nil},
		{"unknown event", switchboard.ReplayFilter{EventID: "nope"}, 5, 0, nil, switchboard.ErrNotFound},
		{"empty filter", switchboard.ReplayFilter{}, 5, 0, nil, switchboard.ErrInvalid},
		{"pending state", switchboard.ReplayFilter{State: switchboard.StatePending}, 5, 0, nil, switchboard.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.PreviewReplay(ctx, tc.f, tc.sample)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("PreviewReplay(%+v): %v; want %v", tc.f, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("PreviewReplay(%+v): %v", tc.f, err)
			}
			if got.Matched != tc.matched || !slices.Equal(got.Sample, tc.ids) {
				t.Errorf("PreviewReplay(%+v, %d) = %d %v; want %d %v", tc.f, tc.sample, got.Matched, got.Sample, tc.matched, tc.ids)
			}
		})
	}

	// Nothing was scheduled: every event is as it was.
	for _, it := range []*switchboard.Ingest{smsDead, smsDelivered, voiceDead, smsPending, smsRetrying} {
		ev, err := o.Store.Event(ctx, it.Event.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprint(map[string]switchboard.State{
			id(smsDead): switchboard.StateDead, id(smsDelivered): switchboard.StateDelivered, id(voiceDead): switchboard.StateDead,
			id(smsPending): switchboard.StatePending, id(smsRetrying): switchboard.StateRetrying,
		}[ev.ID]); string(ev.State) != want {
			t.Errorf("after previews, event %s is %s; want %s", it.Event.IdempotencyKey, ev.State, want)
		}
	}

	// The replay schedules what its preview counted, after which the
	// preview finds nothing left.
	f := switchboard.ReplayFilter{Route: "/sms"}
	before, err := p.PreviewReplay(ctx, f, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := o.Store.Replay(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if n != before.Matched {
		t.Errorf("Replay scheduled %d; its preview counted %d", n, before.Matched)
	}
	if after, err := p.PreviewReplay(ctx, f, 5); err != nil || after.Matched != 0 || len(after.Sample) != 0 {
		t.Errorf("preview after the replay = %+v, %v; want nothing matched", after, err)
	}
}
