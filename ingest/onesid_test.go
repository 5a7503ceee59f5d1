package ingest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
)

// A status callback whose signed URL names its message by its Switchboard
// SID (switchboard.SIDParam) is an event of that SID, applied by Twilio's
// SID in its body, and fanned out to the message's status webhook at once,
// even before the send path has recorded Twilio's SID.
func TestCallbackNamesItsMessageBySwitchboardSID(t *testing.T) {
	f := newOutboundFixture(t, obOptions{})
	m := f.webhookMessage(t, "one-sid", obWebhook, "") // Twilio's SID not recorded yet
	const twilioSID = "SM0000000000000000000000000000c001"

	w := statusCallback(twilioSID, "sent")
	w.path = "/status?" + switchboard.SIDParam + "=" + m.SID()
	f.at(2 * time.Second)
	f.post(t, w)
	f.done()
	own, fanout := f.split(t, m.SID())
	if len(own) != 1 || len(fanout) != 1 {
		t.Fatalf("events of %s: %d own, %d for the status webhook; want one of each", m.SID(), len(own), len(fanout))
	}

	f.recordSID(t, m, twilioSID) // the send path, late
	w = statusCallback(twilioSID, "delivered")
	w.path = "/status?" + switchboard.SIDParam + "=" + m.SID()
	f.at(3 * time.Second)
	f.post(t, w)
	f.done()
	if byTwilio := f.events(t, twilioSID); len(byTwilio) != 0 {
		t.Errorf("%d events under Twilio's SID, want none: the app knows the message by its Switchboard SID", len(byTwilio))
	}
	if got := f.message(t, m.ID); got.State != switchboard.MessageDelivered {
		t.Errorf("message %s is %s/%s, want delivered applied by Twilio's SID", got.ID, got.State, got.TwilioStatus)
	}
}

// The parameter names nothing across accounts, and nothing but a status
// callback: a callback signed for account naming another account's
// message by its Switchboard SID moves nothing of it and reaches none of
// its webhooks; an inbound message carrying the parameter keeps its own
// SID.
func TestSwitchboardSIDParamDoesNotReachAcrossAccountsOrKinds(t *testing.T) {
	f := newOutboundFixture(t, obOptions{})
	theirs := &switchboard.OutboundMessage{ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: "theirs-one-sid",
		AccountSID: otherAccount, Pool: obPool, Purpose: switchboard.PurposeTransactional, To: obHandset, Body: obBody,
		CreatedAt: f.t0, StatusWebhook: obWebhook, PayloadHash: "hash-theirs-one-sid"}
	if created, err := f.store.CreateMessage(context.Background(), theirs); err != nil || !created {
		t.Fatalf("create message: created %v, %v", created, err)
	}
	const theirTwilioSID = "SM0000000000000000000000000000c002"
	f.recordSID(t, theirs, theirTwilioSID)

	w := statusCallback(theirTwilioSID, "delivered")
	w.path = "/status?" + switchboard.SIDParam + "=" + theirs.SID()
	f.at(2 * time.Second)
	f.post(t, w)

	const inboundSID = "SM0000000000000000000000000000c003"
	in := inbound(inboundSID, "+15550009999", "hello")
	in.path = "/sms?" + switchboard.SIDParam + "=" + theirs.SID()
	f.at(3 * time.Second)
	if resp, body := f.send(t, in); resp.StatusCode != 200 || body != "<Response/>" {
		t.Fatalf("inbound answered %d %q", resp.StatusCode, body)
	}
	f.done()

	if got := f.message(t, theirs.ID); got.TwilioStatus != "queued" || len(f.history(t, theirs.ID)) != 0 {
		t.Errorf("another account's message moved to %s, history %+v", got.TwilioStatus, f.history(t, theirs.ID))
	}
	if own, fanout := f.split(t, theirs.SID()); len(own) != 1 || len(fanout) != 0 {
		t.Errorf("events under the named SID: %d own, %d for its status webhook; want the callback alone", len(own), len(fanout))
	}
	if evs := f.events(t, inboundSID); len(evs) != 1 || evs[0].Kind != switchboard.KindMessage {
		t.Errorf("inbound message: %d events under its own SID, want 1 of kind message", len(evs))
	}
}

// The parameter in every form a token holder may sign for its own route
// (a GET callback, the parameter twice, its name escaped) still names
// nothing of another account: that account's message neither moves nor
// has anything fanned out to its status webhook.
func TestSwitchboardSIDParamHostileForms(t *testing.T) {
	f := newOutboundFixture(t, obOptions{})
	mine := f.webhookMessage(t, "mine-hostile", obWebhook, "SM0000000000000000000000000000c011")
	theirs := &switchboard.OutboundMessage{ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: "theirs-hostile",
		AccountSID: otherAccount, Pool: obPool, Purpose: switchboard.PurposeTransactional, To: obHandset, Body: obBody,
		CreatedAt: f.t0, StatusWebhook: obWebhook, PayloadHash: "hash-theirs-hostile"}
	if created, err := f.store.CreateMessage(context.Background(), theirs); err != nil || !created {
		t.Fatalf("create message: created %v, %v", created, err)
	}
	const theirTwilioSID = "SM0000000000000000000000000000c012"
	f.recordSID(t, theirs, theirTwilioSID)

	get := statusCallback(theirTwilioSID, "delivered")
	get.method, get.path, get.body = http.MethodGet, "/status?"+get.body+"&"+switchboard.SIDParam+"="+theirs.SID(), ""
	twice := statusCallback(theirTwilioSID, "delivered")
	twice.path = "/status?" + switchboard.SIDParam + "=" + mine.SID() + "&" + switchboard.SIDParam + "=" + theirs.SID()
	escaped := statusCallback(theirTwilioSID, "delivered")
	escaped.path = "/status?Switchboard%53id=" + theirs.SID()
	for i, w := range []webhook{get, twice, escaped} {
		f.at(time.Duration(i+2) * time.Second)
		if resp, body := f.send(t, w); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s answered %d %q", w.method, w.path, resp.StatusCode, body)
		}
	}
	f.done()

	if got := f.message(t, theirs.ID); got.TwilioStatus != "queued" || len(f.history(t, theirs.ID)) != 0 {
		t.Errorf("another account's message moved to %s, history %+v", got.TwilioStatus, f.history(t, theirs.ID))
	}
	for _, sid := range []string{theirs.SID(), theirTwilioSID} {
		if _, fanout := f.split(t, sid); len(fanout) != 0 {
			t.Errorf("%d events under %s for another account's status webhook, want none", len(fanout), sid)
		}
	}
	if evs := f.events(t, mine.SID()); len(evs) != 0 {
		t.Errorf("%d events under our message's SID, want none: two SIDs in a URL name neither", len(evs))
	}
	if got := f.message(t, mine.ID); got.TwilioStatus != "queued" {
		t.Errorf("our message moved to %s by a callback naming another's Twilio SID", got.TwilioStatus)
	}
}
