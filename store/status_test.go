package store

import (
	"errors"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

func TestApplyStatusesInOrderEachWithItsOwnOutcome(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	m := &switchboard.OutboundMessage{ID: "m1", AccountSID: "AC1", State: switchboard.MessageSent, TwilioSID: "SM1", TwilioStatus: "queued",
		MediaURLs: []string{"https://media.example.com/a.png"}}
	ops := []*statusOp{
		newStatusOp(switchboard.StatusUpdate{AccountSID: "AC1", TwilioSID: "SM1", Status: "sent", At: at.Add(time.Second)}),
		newStatusOp(switchboard.StatusUpdate{AccountSID: "AC1", TwilioSID: "SMnobody", Status: "delivered", At: at}),
		newStatusOp(switchboard.StatusUpdate{AccountSID: "AC1", TwilioSID: "SM1", Status: "delivered", At: at.Add(2 * time.Second)}),
		newStatusOp(switchboard.StatusUpdate{AccountSID: "AC1", Status: "delivered", At: at}),
		newStatusOp(switchboard.StatusUpdate{AccountSID: "AC1", TwilioSID: "SM1", Status: "sent", At: at.Add(3 * time.Second)}),
		// Another account naming the message's SID: as if unknown.
		newStatusOp(switchboard.StatusUpdate{AccountSID: "AC2", TwilioSID: "SM1", Status: "read", At: at.Add(4 * time.Second)}),
	}
	if sids := statusSIDs(ops); len(sids) != 2 || sids[0] != "SM1" || sids[1] != "SMnobody" {
		t.Errorf("statusSIDs = %q, want SM1 and SMnobody once each", sids)
	}
	changed, rows := applyStatuses(ops, map[string]*switchboard.OutboundMessage{"SM1": m})

	if len(changed) != 1 || changed[0] != m || m.State != switchboard.MessageDelivered || !m.UpdatedAt.Equal(at.Add(2*time.Second)) {
		t.Errorf("changed %v, message %+v; want the message once, delivered at the second update", changed, m)
	}
	wantApplied := []bool{true, true, false}
	if len(rows) != len(wantApplied) {
		t.Fatalf("%d history rows, want %d (the found updates)", len(rows), len(wantApplied))
	}
	for i, r := range rows {
		if r.MessageID != "m1" || r.Applied != wantApplied[i] {
			t.Errorf("row %d: %+v, want applied %v", i, r, wantApplied[i])
		}
	}
	for _, i := range []int{1, 3, 5} {
		if !errors.Is(ops[i].Err, switchboard.ErrNotFound) || ops[i].Message != nil {
			t.Errorf("op %d (SID %q): %v, %v; want ErrNotFound alone", i, ops[i].Update.TwilioSID, ops[i].Message, ops[i].Err)
		}
	}
	// Each found op has the message as its own update left it, a copy.
	for i, want := range map[int]string{0: "sent", 2: "delivered", 4: "delivered"} {
		if op := ops[i]; op.Err != nil || op.Message == m || op.Message.TwilioStatus != want {
			t.Errorf("op %d: %+v, %v; want a copy with status %s", i, op.Message, op.Err, want)
		}
	}
	ops[0].Message.MediaURLs[0] = "changed"
	if m.MediaURLs[0] == "changed" || ops[2].Message.MediaURLs[0] == "changed" {
		t.Error("returned messages share their media URLs")
	}
}

func TestNewStatusOpNormalisesTime(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 1, 12, 0, 0, 1500, time.FixedZone("x", 3600))
	op := newStatusOp(switchboard.StatusUpdate{At: at})
	if want := at.UTC().Truncate(time.Microsecond); !op.Update.At.Equal(want) || op.Update.At.Location() != time.UTC {
		t.Errorf("At = %v, want %v", op.Update.At, want)
	}
	if newStatusOp(switchboard.StatusUpdate{}).Update.At.IsZero() {
		t.Error("a zero At stays zero, want now")
	}
}
