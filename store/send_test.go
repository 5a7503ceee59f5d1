package store

import (
	"errors"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

func TestApplySendsInOrderEachWithItsOwnOutcome(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	msg := func(id, pool, to string, state switchboard.MessageState) *switchboard.OutboundMessage {
		return &switchboard.OutboundMessage{ID: id, Pool: pool, To: to, State: state}
	}
	messages := map[string]*switchboard.OutboundMessage{
		"a": msg("a", "p2", "+1", switchboard.MessageQueued),
		"b": msg("b", "p1", "+2", switchboard.MessageQueued),
		"c": msg("c", "p1", "+3", switchboard.MessageCanceled),
		"d": msg("d", "p1", "+2", switchboard.MessageQueued),
	}
	op := func(r switchboard.SendResult) *sendOp { return &sendOp{Result: r, At: at} }
	ops := []*sendOp{
		// a: claimed, then sent, in one batch: the second sees the first.
		op(switchboard.SendResult{MessageID: "a", Attempts: 1, State: switchboard.MessageSending, From: "+9a", Sticky: true}),
		op(switchboard.SendResult{MessageID: "a", Attempts: 1, State: switchboard.MessageSent, TwilioSID: "SMa"}),
		// b: rescheduled (a job), then a stale result that does not apply.
		op(switchboard.SendResult{MessageID: "b", Attempts: 0, State: switchboard.MessageQueued, NextAttemptAt: at.Add(time.Minute)}),
		op(switchboard.SendResult{MessageID: "missing", Attempts: 1, State: switchboard.MessageSending}),
		op(switchboard.SendResult{MessageID: "c", Attempts: 1, State: switchboard.MessageSending, From: "+9c", Sticky: true}),
		// d: two sticky claims of one recipient (b's) in a pool: the last wins.
		op(switchboard.SendResult{MessageID: "d", Attempts: 1, State: switchboard.MessageSending, From: "+9d", Sticky: true}),
		op(switchboard.SendResult{MessageID: "d", Attempts: 2, State: switchboard.MessageSending, From: "+9e", Sticky: true}),
	}
	if ids := sendIDs(ops); len(ids) != 5 || ids[0] != "a" || ids[1] != "b" || ids[2] != "missing" {
		t.Errorf("sendIDs = %q, want each id once, in order", ids)
	}
	changed, due, sticky := applySends(ops, messages)

	if len(changed) != 3 || changed[0].ID != "a" || changed[1].ID != "b" || changed[2].ID != "d" {
		t.Errorf("changed %v, want a, b and d once each", changed)
	}
	if m := messages["a"]; m.State != switchboard.MessageSent || m.TwilioSID != "SMa" || m.From != "+9a" || !m.SentAt.Equal(at) {
		t.Errorf("a: %+v, want sent from its claim's sender", m)
	}
	if len(due) != 1 || due[0].Args.MessageID != "b" || due[0].Args.Attempts != 0 || !due[0].At.Equal(at.Add(time.Minute)) {
		t.Errorf("jobs %+v, want b's alone, at its next attempt", due)
	}
	if !errors.Is(ops[3].Err, switchboard.ErrNotFound) || !errors.Is(ops[4].Err, switchboard.ErrCanceled) {
		t.Errorf("unknown message: %v; claim of a canceled one: %v; want ErrNotFound and ErrCanceled", ops[3].Err, ops[4].Err)
	}
	for _, i := range []int{0, 1, 2, 5, 6} {
		if ops[i].Err != nil {
			t.Errorf("op %d: %v", i, ops[i].Err)
		}
	}
	if messages["c"].State != switchboard.MessageCanceled {
		t.Error("a refused claim changed the message")
	}
	want := []StickyWrite{{Pool: "p1", Recipient: "+2", From: "+9e", At: at}, {Pool: "p2", Recipient: "+1", From: "+9a", At: at}}
	if len(sticky) != len(want) || sticky[0] != want[0] || sticky[1] != want[1] {
		t.Errorf("sticky senders %+v, want %+v: the last of each recipient, by pool and recipient", sticky, want)
	}
}
