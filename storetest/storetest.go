// Package storetest is the conformance suite every switchboard.Store must
// pass. The sqlite and postgres packages run it against real databases.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
)

// Opener returns a fresh, empty store for one test, closed by the test's
// cleanup. Calling it again within the same test must return another handle
// on the same database (a second replica).
type Opener func(t *testing.T) Opened

// Opened is a store for one test and a way to open more handles on the same
// database.
type Opened struct {
	Store   switchboard.Store
	Replica func(t *testing.T) switchboard.Store
	// Reopen, for an engine without replicas (Replica nil), closes Store
	// and opens its database again, as the next process would after a
	// crash.
	Reopen func(t *testing.T) switchboard.Store
	// SendJobs lists the send jobs in the store's River tables, oldest
	// first, read straight from the database (see ListSendJobs).
	SendJobs func(t *testing.T) []SendJob
	// StaleJobs is true for an engine whose delivery jobs outlive the
	// state that made them (River's rows), so that an event that moved on
	// is still handed to the Deliverer, which must leave it alone; false
	// for one whose queue is the events table itself, which hands over
	// only what is due.
	StaleJobs bool
}

// Run runs the whole suite.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, o Opened)
	}{
		{"IngestStoresRequestAndEventExactly", testIngestExact},
		{"DuplicateGetsOriginalAndNoSecondEvent", testDuplicate},
		{"DuplicateWithinOneBatch", testDuplicateInBatch},
		{"DuplicateIsRecordedAsMetadataOrNotAtAll", testDuplicateRecord},
		{"RejectedRequestIsStoredWithoutEvent", testRejected},
		{"RecordAttemptsMovesState", testRecordAttempts},
		{"RecordAttemptsReplacesResponse", testReplaceResponse},
		{"DeliveredWithErrorKeepsLastError", testDeliveredWithError},
		{"ListEventsFiltersAndPages", testListEvents},
		{"ListRequestsFilters", testListRequests},
		{"TimedListingsHoldTheRangeInTimeOrder", testTimedListings},
		{"ReplayOnlyTerminalEvents", testReplay},
		{"PreviewReplayCountsWithoutScheduling", testPreviewReplay},
		{"StatsCountsAndLag", testStats},
		{"NotFound", testNotFound},
		{"DeliveryWorksEveryEventOnce", testDelivery},
		{"DeliveryRetryIsCalledAgain", testDeliveryRetry},
		{"ReplayCarriesAttempts", testReplayCarriesAttempts},
		{"DelayedFirstDelivery", testDelayedFirstDelivery},
		{"WaitingEventsOldestFirstAcrossRoutes", testWaitingEvents},
		{"WaitingEventsHostileValuesMatchNothing", testWaitingHostile},
		{"ParkedResultsApplyOnlyToTheEventDecidedOn", testParkedResults},
		{"ParkRacingADeliveryNeverUndoesIt", testParkRacesDelivery},
		{"FanoutEventsAreStoredAndDelivered", testFanout},
		{"FanoutSkippedForDuplicate", testFanoutDuplicate},
		{"InvalidFanoutStoresNothing", testFanoutInvalid},
		{"IngestFanoutAtMostOnce", testIngestFanout},
		{"ReplicasNeverDeliverTwiceAtOnce", testReplicas},
		{"CreateMessageIsIdempotent", testCreateMessage},
		{"ConcurrentCreatesOfOneKey", testConcurrentCreates},
		{"DelayedFirstSend", testDelayedFirstSend},
		{"SendJobsAreLeftToSendWorkers", testSendJobsNotDelivered},
		{"RecordSendRetriesAndOutcomes", testRecordSend},
		{"StatusUpdatesAreMonotonic", testStatusUpdates},
		{"ConcurrentStatusUpdatesAreMonotonic", testConcurrentStatusUpdates},
		{"ListOutboundMessagesFiltersAndPages", testListMessages},
		{"SuppressionRoundTrip", testSuppression},
		{"SuppressionKeepsRefusals", testSuppressionReasons},
		{"OptOutsRacingARefusalLeaveIt", testOptOutsRacingRefusals},
		{"StickySenderRoundTrip", testStickySender},
		{"StickyClaimSetsTheSenderWhenItApplies", testStickyClaim},
		{"ConcurrentSendResultsEachWithItsOwnOutcome", testConcurrentSends},
		{"SendViewReadsWhatDecidesASend", testSendView},
		{"TemplateRoundTripAndFilter", testTemplate},
		{"ReplayMessageOnlyNeverAccepted", testReplayMessage},
		{"EarlierUnsentKeepsRecipientOrder", testEarlierUnsent},
		{"SenderHeartbeatCountsLiveNodes", testSenderHeartbeat},
		{"OutboundNotFound", testOutboundNotFound},
		{"StatusUpdateStaysInItsAccount", testStatusUpdateStaysInItsAccount},
		{"LookupBySIDStaysInItsAccount", testLookupBySIDStaysInItsAccount},
		{"KeysOfAccountsAndAPIsNeverMeet", testKeysOfAccountsAndAPIsNeverMeet},
		{"ListAccountMessagesByKeyset", testListAccountMessages},
		{"CancelOnlyQueuedMessages", testCancelMessage},
		{"CancelRacesSendClaim", testCancelRacesClaim},
		{"RedactOnlySettledMessages", testRedactMessage},
		{"DeleteOnlySettledMessages", testDeleteMessage},
		{"CanceledMessagesArePruned", testCanceledIsPruned},
		{"PruneEventsInBatchesOldestFirst", testPruneEvents},
		{"PruneNeverTakesLiveEvents", testPruneNeverLive},
		{"PruneRejectedByItsOwnCutoff", testPruneRejected},
		{"PruneFanoutRequestGoesWithItsLastEvent", testPruneFanout},
		{"StaleAttemptResultKeepsTheLaterRecord", testStaleAttemptResult},
		{"PruneMessagesOnceSettled", testPruneMessages},
		{"PruneStickySendersNotInUse", testPruneStickySenders},
		{"PruneRefusesInvalid", testPruneInvalid},
		{"PruneWhileIngesting", testPruneWhileIngesting},
		{"HostileFilterValuesAreOnlyValues", testHostileFilters},
		{"EventKeepsNumbersAndLastCode", testEventNumbersAndLastCode},
		{"ListEventsByNumberAndCode", testListEventsByNumberAndCode},
		{"ListMessagesByNumberAndCode", testListMessagesByNumberAndCode},
		{"ReplayByKindAndCodeAndCount", testReplayByKindAndCode},
		{"ConsoleSessions", testSessions},
		{"RollUpCountsKnownFacts", testRollUpCountsKnownFacts},
		{"RollUpAfterCrash", testRollUpAfterCrash},
		{"RollUpConcurrentPasses", testRollUpConcurrentPasses},
		{"RollUpRetention", testRollUpRetention},
		{"RollUpBoundsKeys", testRollUpBoundsKeys},
		{"DashboardRefusesInvalid", testDashboardRefusesInvalid},
		{"RecordSamplesRefusesInvalid", testRecordSamplesRefusesInvalid},
		{"AlertStateCompareAndSet", testAlertStateCompareAndSet},
		{"AlertStateRaceHasOneWinner", testAlertStateRace},
		{"AlertHistoryOrderAndLimits", testAlertHistoryOrderAndLimits},
		{"AlertHostileKeys", testAlertHostileKeys},
		{"AlertStateSurvivesRestart", testAlertStateSurvivesRestart},
		{"AlertStateDeletedAtItsVersion", testAlertStateDelete},
		{"DebuggerAlertStoredOnceUnderConcurrency", debuggerConcurrent},
		{"DebuggerAlertSameSidInTwoAccounts", debuggerAccounts},
		{"DebuggerAlertsListFiltersAndPages", debuggerListing},
		{"DebuggerAlertsRolledUpByCode", debuggerRollup},
		{"DebuggerAlertPrunedWithItsEvent", debuggerPrune},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

var base = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// NewItem builds an accepted request with its event, keyed by key.
func NewItem(route, key string, at time.Time) *switchboard.Ingest {
	reqID, evID := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	body := []byte("MessageSid=SM" + key + "&Body=caf%C3%A9+%26+more")
	return &switchboard.Ingest{
		Request: switchboard.Request{
			ID: reqID, ReceivedAt: at, Route: route, Method: http.MethodPost,
			URL: "https://hooks.example.com" + route + "?x=1",
			Header: http.Header{
				"Content-Type":               {"application/x-www-form-urlencoded"},
				"X-Twilio-Signature":         {"sig=="},
				"I-Twilio-Idempotency-Token": {key},
			},
			Body: body, RemoteAddr: "127.0.0.1:5555", Outcome: switchboard.OutcomeAccepted,
		},
		Event: &switchboard.Event{
			ID: evID, RequestID: reqID, Route: route, AccountSID: "AC1", Kind: switchboard.KindMessage,
			MessageSID: "SM" + key, IdempotencyKey: key,
			Response:  switchboard.Response{Status: 200, ContentType: "application/xml", Body: []byte("<Response/>")},
			State:     switchboard.StatePending,
			CreatedAt: at,
		},
	}
}

func ingest(t *testing.T, s switchboard.Store, items ...*switchboard.Ingest) {
	t.Helper()
	if err := s.Ingest(context.Background(), items); err != nil {
		t.Fatalf("Ingest: %v", err)
	}
}

func testIngestExact(t *testing.T, o Opened) {
	ctx := context.Background()
	it := NewItem("/sms", "k1", base)
	want := it.Request
	ingest(t, o.Store, it)
	if it.Duplicate {
		t.Fatal("first request reported as duplicate")
	}
	got, err := o.Store.Request(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Body, want.Body) || got.URL != want.URL || got.Method != want.Method ||
		got.Header.Get("X-Twilio-Signature") != "sig==" || !got.ReceivedAt.Equal(base) ||
		got.Outcome != switchboard.OutcomeAccepted || got.EventID != it.Event.ID {
		t.Errorf("request round trip:\n got %+v\nwant %+v", got, want)
	}
	ev, err := o.Store.Event(ctx, it.Event.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.State != switchboard.StatePending || ev.Kind != switchboard.KindMessage || ev.MessageSID != "SMk1" ||
		ev.RequestID != want.ID || string(ev.Response.Body) != "<Response/>" || ev.Response.Status != 200 ||
		!ev.CreatedAt.Equal(base) || ev.Attempts != 0 {
		t.Errorf("event round trip: %+v", ev)
	}
}

func testDuplicate(t *testing.T, o Opened) {
	ctx := context.Background()
	first := NewItem("/sms", "dup", base)
	ingest(t, o.Store, first)
	again := NewItem("/sms", "dup", base.Add(time.Second))
	again.Event.Response.Body = []byte("<Response><Message>different</Message></Response>")
	ingest(t, o.Store, again)
	if !again.Duplicate || again.Event.ID != first.Event.ID {
		t.Fatalf("duplicate = %v, event %s, want the original %s", again.Duplicate, again.Event.ID, first.Event.ID)
	}
	if string(again.Event.Response.Body) != "<Response/>" {
		t.Errorf("duplicate answer = %q, want the original's", again.Event.Response.Body)
	}
	req, err := o.Store.Request(ctx, again.Request.ID)
	if err != nil {
		t.Fatal(err)
	}
	if req.Outcome != switchboard.OutcomeDuplicate || req.EventID != first.Event.ID {
		t.Errorf("duplicate request stored as %s → %s", req.Outcome, req.EventID)
	}
	page, err := o.Store.ListEvents(ctx, switchboard.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 {
		t.Errorf("%d events, want 1", len(page.Items))
	}
}

// A duplicate's request is recorded as metadata, or not at all when its
// RecordDuplicate declines; either way it is answered as the duplicate of
// its original.
func testDuplicateRecord(t *testing.T, o Opened) {
	ctx := context.Background()
	first := NewItem("/sms", "dup-rec", base)
	first.Request.Body = append(first.Request.Body, []byte("&Padding="+strings.Repeat("p", 2000))...)
	ingest(t, o.Store, first)

	kept := NewItem("/sms", "dup-rec", base.Add(time.Second))
	kept.Request.Body = first.Request.Body
	kept.RecordDuplicate = func() bool { return true }
	dropped := NewItem("/sms", "dup-rec", base.Add(2*time.Second))
	dropped.RecordDuplicate = func() bool { return false }
	inBatch := NewItem("/sms", "dup-rec", base.Add(3*time.Second))
	inBatch.RecordDuplicate = func() bool { return false }
	ingest(t, o.Store, kept)
	ingest(t, o.Store, dropped, inBatch)
	for _, it := range []*switchboard.Ingest{kept, dropped, inBatch} {
		if !it.Duplicate || it.Event.ID != first.Event.ID {
			t.Errorf("request %s: duplicate %v of %s, want a duplicate of %s", it.Request.ID, it.Duplicate, it.Event.ID, first.Event.ID)
		}
	}
	req, err := o.Store.Request(ctx, kept.Request.ID)
	if err != nil {
		t.Fatal(err)
	}
	if req.Outcome != switchboard.OutcomeDuplicate || len(req.Body) != switchboard.MetadataBodyBytes || req.EventID != first.Event.ID {
		t.Errorf("recorded duplicate: %s, %d body bytes, event %s; want metadata of a duplicate", req.Outcome, len(req.Body), req.EventID)
	}
	for _, it := range []*switchboard.Ingest{dropped, inBatch} {
		if _, err := o.Store.Request(ctx, it.Request.ID); !errors.Is(err, switchboard.ErrNotFound) {
			t.Errorf("declined duplicate %s: %v, want not recorded", it.Request.ID, err)
		}
	}
	orig, err := o.Store.Request(ctx, first.Request.ID)
	if err != nil || !bytes.Equal(orig.Body, first.Request.Body) {
		t.Errorf("the original lost its body: %v", err)
	}
}

func testDuplicateInBatch(t *testing.T, o Opened) {
	a, b := NewItem("/sms", "same", base), NewItem("/sms", "same", base)
	ingest(t, o.Store, a, b)
	if a.Duplicate || !b.Duplicate || b.Event.ID != a.Event.ID {
		t.Fatalf("a dup=%v b dup=%v b→%s a=%s", a.Duplicate, b.Duplicate, b.Event.ID, a.Event.ID)
	}
}

func testRejected(t *testing.T, o Opened) {
	ctx := context.Background()
	it := NewItem("/sms", "rej", base)
	it.Request.Outcome, it.Request.Reason, it.Event = switchboard.OutcomeRejected, "bad signature", nil
	ingest(t, o.Store, it)
	got, err := o.Store.Request(ctx, it.Request.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Outcome != switchboard.OutcomeRejected || got.Reason != "bad signature" || got.EventID != "" {
		t.Errorf("rejected request stored as %+v", got)
	}
	page, err := o.Store.ListEvents(ctx, switchboard.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 0 {
		t.Errorf("a rejected request created %d events", len(page.Items))
	}
}

func attempt(ev string, n int, status int, state switchboard.State, next time.Time) *switchboard.AttemptResult {
	a := switchboard.Attempt{
		EventID: ev, Number: n, StartedAt: base.Add(time.Duration(n) * time.Minute), TargetURL: "http://app/sms",
		StatusCode: status, Latency: 1500 * time.Microsecond, ResponseHeader: http.Header{"X-App": {"1"}},
		ResponseExcerpt: []byte("oops"),
	}
	if status/100 != 2 {
		a.ErrorClass, a.TwilioCode, a.Error = "http-status", 11200, fmt.Sprintf("HTTP %d", status)
	}
	return &switchboard.AttemptResult{Attempt: a, State: state, NextAttemptAt: next, Attempts: n}
}

func testRecordAttempts(t *testing.T, o Opened) {
	ctx := context.Background()
	it := NewItem("/sms", "att", base)
	ingest(t, o.Store, it)
	id := it.Event.ID
	next := base.Add(time.Hour)
	if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{attempt(id, 1, 500, switchboard.StateRetrying, next)}); err != nil {
		t.Fatal(err)
	}
	ev, _ := o.Store.Event(ctx, id)
	if ev.State != switchboard.StateRetrying || ev.Attempts != 1 || !ev.NextAttemptAt.Equal(next) || ev.LastError != "HTTP 500" {
		t.Errorf("after a failed attempt: %+v", ev)
	}
	if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{attempt(id, 2, 204, switchboard.StateDelivered, time.Time{})}); err != nil {
		t.Fatal(err)
	}
	ev, _ = o.Store.Event(ctx, id)
	if ev.State != switchboard.StateDelivered || ev.Attempts != 2 || ev.DeliveredAt.IsZero() || !ev.NextAttemptAt.IsZero() {
		t.Errorf("after delivery: %+v", ev)
	}
	atts, err := o.Store.Attempts(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 2 || atts[0].Number != 1 || atts[0].StatusCode != 500 || atts[0].TwilioCode != 11200 ||
		atts[0].Latency != 1500*time.Microsecond || string(atts[0].ResponseExcerpt) != "oops" ||
		atts[0].ResponseHeader.Get("X-App") != "1" || atts[1].StatusCode != 204 {
		t.Errorf("attempts: %+v %+v", atts[0], atts[len(atts)-1])
	}
}

func testListEvents(t *testing.T, o Opened) {
	ctx := context.Background()
	var items []*switchboard.Ingest
	for i := range 7 {
		route := "/sms"
		if i%2 == 1 {
			route = "/status"
		}
		it := NewItem(route, fmt.Sprintf("le%d", i), base.Add(time.Duration(i)*time.Minute))
		if route == "/status" {
			it.Event.Kind = switchboard.KindMessageStatus
		}
		items = append(items, it)
	}
	ingest(t, o.Store, items...)
	if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{attempt(items[0].Event.ID, 1, 410, switchboard.StateDead, time.Time{})}); err != nil {
		t.Fatal(err)
	}

	var seen []string
	cursor := ""
	for {
		page, err := o.Store.ListEvents(ctx, switchboard.EventFilter{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Items {
			seen = append(seen, e.ID)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(seen) != 7 || seen[0] != items[6].Event.ID || seen[6] != items[0].Event.ID {
		t.Errorf("paging saw %d events, newest first expected", len(seen))
	}

	cases := []struct {
		name string
		f    switchboard.EventFilter
		want int
	}{
		{"route", switchboard.EventFilter{Route: "/status"}, 3},
		{"kind", switchboard.EventFilter{Kind: switchboard.KindMessage}, 4},
		{"state", switchboard.EventFilter{State: switchboard.StateDead}, 1},
		{"sid", switchboard.EventFilter{SID: "SMle3"}, 1},
		{"since", switchboard.EventFilter{Since: base.Add(5 * time.Minute)}, 2},
		{"until", switchboard.EventFilter{Until: base.Add(2 * time.Minute)}, 2},
		{"combined", switchboard.EventFilter{Route: "/sms", Since: base.Add(time.Minute)}, 3},
	}
	for _, c := range cases {
		page, err := o.Store.ListEvents(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(page.Items) != c.want {
			t.Errorf("%s: %d events, want %d", c.name, len(page.Items), c.want)
		}
	}
}

func testListRequests(t *testing.T, o Opened) {
	ctx := context.Background()
	a := NewItem("/sms", "lr", base)
	b := NewItem("/sms", "lr", base.Add(time.Second))
	c := NewItem("/voice", "lr-rej", base.Add(2*time.Second))
	c.Request.Outcome, c.Request.Reason, c.Event = switchboard.OutcomeRejected, "signature", nil
	ingest(t, o.Store, a, b, c)
	cases := []struct {
		f    switchboard.RequestFilter
		want string
	}{
		{switchboard.RequestFilter{Outcome: switchboard.OutcomeDuplicate}, b.Request.ID},
		{switchboard.RequestFilter{Outcome: switchboard.OutcomeRejected}, c.Request.ID},
		{switchboard.RequestFilter{Route: "/voice"}, c.Request.ID},
		{switchboard.RequestFilter{Until: base.Add(time.Second)}, a.Request.ID},
	}
	for _, tc := range cases {
		page, err := o.Store.ListRequests(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 || page.Items[0].ID != tc.want {
			t.Errorf("filter %+v: got %d requests", tc.f, len(page.Items))
		}
	}
	page, err := o.Store.ListRequests(ctx, switchboard.RequestFilter{EventID: a.Event.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 {
		t.Errorf("requests of event: %d, want 2 (original and duplicate)", len(page.Items))
	}
}

func testReplay(t *testing.T, o Opened) {
	ctx := context.Background()
	dead, pending := NewItem("/sms", "rp-dead", base), NewItem("/sms", "rp-pending", base)
	ingest(t, o.Store, dead, pending)
	if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{attempt(dead.Event.ID, 1, 410, switchboard.StateDead, time.Time{})}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Store.Replay(ctx, switchboard.ReplayFilter{}); !errors.Is(err, switchboard.ErrInvalid) {
		t.Errorf("empty replay filter: err = %v, want ErrInvalid", err)
	}
	if _, err := o.Store.Replay(ctx, switchboard.ReplayFilter{EventID: "nope"}); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("replay of unknown event: err = %v, want ErrNotFound", err)
	}
	n, err := o.Store.Replay(ctx, switchboard.ReplayFilter{Route: "/sms"})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("replayed %d, want 1 (the pending event already has a delivery)", n)
	}
	ev, _ := o.Store.Event(ctx, dead.Event.ID)
	if ev.State != switchboard.StatePending {
		t.Errorf("replayed event state = %s, want pending", ev.State)
	}
	if n, _ := o.Store.Replay(ctx, switchboard.ReplayFilter{EventID: pending.Event.ID}); n != 0 {
		t.Errorf("replay of a pending event scheduled %d deliveries", n)
	}
}

func testStats(t *testing.T, o Opened) {
	ctx := context.Background()
	now := time.Now().UTC()
	a, b := NewItem("/sms", "st-a", now.Add(-time.Minute)), NewItem("/sms", "st-b", now.Add(-10*time.Second))
	ingest(t, o.Store, a, b)
	if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{attempt(b.Event.ID, 1, 200, switchboard.StateDelivered, time.Time{})}); err != nil {
		t.Fatal(err)
	}
	st, err := o.Store.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.EventsByState[switchboard.StatePending] != 1 || st.EventsByState[switchboard.StateDelivered] != 1 || st.EventsByState[switchboard.StateDead] != 0 {
		t.Errorf("by state: %v", st.EventsByState)
	}
	if !st.OldestDue.Equal(a.Event.CreatedAt.Truncate(time.Microsecond)) {
		t.Errorf("oldest due = %v, want %v", st.OldestDue, a.Event.CreatedAt)
	}
}

func testNotFound(t *testing.T, o Opened) {
	ctx := context.Background()
	if _, err := o.Store.Event(ctx, "missing"); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("Event: %v", err)
	}
	if _, err := o.Store.Request(ctx, "missing"); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("Request: %v", err)
	}
	if atts, err := o.Store.Attempts(ctx, "missing"); err != nil || len(atts) != 0 {
		t.Errorf("Attempts: %v %v", atts, err)
	}
	if err := o.Store.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// recordingDeliverer records deliveries, checks none overlaps another of
// the same event, and, as the Deliverer contract asks, leaves alone an event
// that is terminal or has moved on since its job was made; otherwise it
// records each outcome in the store as a real Deliverer does.
type recordingDeliverer struct {
	store    switchboard.Store
	mu       sync.Mutex
	calls    map[string]int
	tokens   map[string][]int       // the attempt counts each event's jobs carried
	times    map[string][]time.Time // when each call began
	running  map[string]bool
	overlaps int
	retryFor map[string]int // event → how many times to fail first
	done     chan string
}

func newRecorder(store switchboard.Store, buffer int) *recordingDeliverer {
	return &recordingDeliverer{store: store, calls: map[string]int{}, tokens: map[string][]int{},
		times: map[string][]time.Time{}, running: map[string]bool{}, retryFor: map[string]int{},
		done: make(chan string, buffer)}
}

func (d *recordingDeliverer) Deliver(ctx context.Context, id string, attempts int) error {
	now := time.Now()
	d.mu.Lock()
	if d.running[id] {
		d.overlaps++
	}
	d.running[id] = true
	d.calls[id]++
	d.tokens[id] = append(d.tokens[id], attempts)
	d.times[id] = append(d.times[id], now)
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.running[id] = false
		d.mu.Unlock()
	}()
	ev, err := d.store.Event(ctx, id)
	if err != nil {
		return err
	}
	if ev.State.Terminal() || ev.Attempts != attempts {
		return nil // a stale job
	}
	d.mu.Lock()
	retry := d.retryFor[id] > 0
	if retry {
		d.retryFor[id]--
	}
	d.mu.Unlock()
	result := &switchboard.AttemptResult{
		Attempt:  switchboard.Attempt{EventID: id, Number: attempts + 1, StartedAt: now, StatusCode: 204},
		State:    switchboard.StateDelivered,
		Attempts: attempts + 1,
	}
	if retry {
		result.Attempt.StatusCode, result.Attempt.Error = 500, "HTTP 500"
		result.State, result.NextAttemptAt = switchboard.StateRetrying, now.Add(10*time.Millisecond)
	}
	if err := d.store.RecordAttempts(ctx, []*switchboard.AttemptResult{result}); err != nil {
		return err
	}
	if !retry {
		d.done <- id
	}
	return nil
}

func (d *recordingDeliverer) waitFor(t *testing.T, n int) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	timeout := time.After(60 * time.Second)
	for len(got) < n {
		select {
		case id := <-d.done:
			got[id] = true
		case <-timeout:
			t.Fatalf("delivered %d of %d events", len(got), n)
		}
	}
	return got
}

// waitForCalls waits until every event in ids has been handed to Deliver.
func (d *recordingDeliverer) waitForCalls(t *testing.T, timeout time.Duration, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d.mu.Lock()
		missing := 0
		for _, id := range ids {
			if d.calls[id] == 0 {
				missing++
			}
		}
		d.mu.Unlock()
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events never handed to the Deliverer", missing, len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var deliveryConfig = switchboard.DeliveryConfig{Workers: 8, PollInterval: 20 * time.Millisecond, JobTimeout: time.Minute}

func start(t *testing.T, s switchboard.Store, d switchboard.Deliverer) {
	t.Helper()
	if err := s.StartDelivery(context.Background(), d, deliveryConfig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.StopDelivery(ctx); err != nil {
			t.Errorf("StopDelivery: %v", err)
		}
	})
}

func testDelivery(t *testing.T, o Opened) {
	const n = 40
	d := newRecorder(o.Store, n*2)
	var items []*switchboard.Ingest
	for i := range n {
		items = append(items, NewItem("/sms", fmt.Sprintf("dl%d", i), time.Now()))
	}
	ingest(t, o.Store, items[:n/2]...)
	start(t, o.Store, d)
	ingest(t, o.Store, items[n/2:]...) // some before, some after the workers start
	got := d.waitFor(t, n)
	for _, it := range items {
		if !got[it.Event.ID] {
			t.Errorf("event %s never delivered", it.Event.ID)
		}
	}
}

func testDeliveryRetry(t *testing.T, o Opened) {
	d := newRecorder(o.Store, 4)
	it := NewItem("/sms", "retry", time.Now())
	d.retryFor[it.Event.ID] = 2
	ingest(t, o.Store, it)
	start(t, o.Store, d)
	d.waitFor(t, 1)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.calls[it.Event.ID] != 3 {
		t.Errorf("Deliver called %d times, want 3 (two retries, then success)", d.calls[it.Event.ID])
	}
	if got := fmt.Sprint(d.tokens[it.Event.ID]); got != "[0 1 2]" {
		t.Errorf("jobs carried attempt counts %s, want [0 1 2]", got)
	}
	ev, err := o.Store.Event(context.Background(), it.Event.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.State != switchboard.StateDelivered || ev.Attempts != 3 {
		t.Errorf("event after retries: state %s attempts %d", ev.State, ev.Attempts)
	}
}

// A replayed event's job carries the attempts already made, so the next
// attempt continues the count.
func testReplayCarriesAttempts(t *testing.T, o Opened) {
	d := newRecorder(o.Store, 4)
	it := NewItem("/sms", "replay-token", time.Now())
	ingest(t, o.Store, it)
	start(t, o.Store, d)
	d.waitFor(t, 1)
	if n, err := o.Store.Replay(context.Background(), switchboard.ReplayFilter{EventID: it.Event.ID}); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	d.waitFor(t, 1)
	d.mu.Lock()
	defer d.mu.Unlock()
	if got := fmt.Sprint(d.tokens[it.Event.ID]); got != "[0 1]" {
		t.Errorf("jobs carried attempt counts %s, want [0 1]", got)
	}
}

func testReplicas(t *testing.T, o Opened) {
	if o.Replica == nil {
		t.Skip("engine has no replicas")
	}
	const n = 200
	d := newRecorder(o.Store, n*2)
	replica := o.Replica(t)
	start(t, o.Store, d)
	start(t, replica, d)
	var items []*switchboard.Ingest
	for i := range n {
		items = append(items, NewItem("/sms", fmt.Sprintf("rep%d", i), time.Now()))
	}
	for i := 0; i < n; i += 20 {
		target := o.Store
		if i/20%2 == 1 {
			target = replica
		}
		ingest(t, target, items[i:i+20]...)
	}
	d.waitFor(t, n)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.overlaps != 0 {
		t.Errorf("%d deliveries overlapped another of the same event", d.overlaps)
	}
	for _, it := range items {
		if c := d.calls[it.Event.ID]; c != 1 {
			t.Errorf("event %s delivered %d times", it.Event.ID, c)
		}
	}
}

// A result's Response replaces the event's stored response, which a later
// duplicate then gets; a nil Response leaves it alone.
func testReplaceResponse(t *testing.T, o Opened) {
	ctx := context.Background()
	it, empty := NewItem("/sms", "resp", base), NewItem("/status", "resp-empty", base)
	ingest(t, o.Store, it, empty)
	id := it.Event.ID
	if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{attempt(id, 1, 500, switchboard.StateRetrying, base.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if ev, err := o.Store.Event(ctx, id); err != nil || string(ev.Response.Body) != "<Response/>" || ev.Response.Status != 200 {
		t.Fatalf("after a result without a response: %+v, %v; want the original response", ev, err)
	}

	want := switchboard.Response{Status: 200, ContentType: "text/xml; charset=utf-8",
		Body: []byte("<Response><Message>from the app</Message></Response>")}
	r := attempt(id, 2, 200, switchboard.StateDelivered, time.Time{})
	r.Response = &switchboard.Response{Status: want.Status, ContentType: want.ContentType, Body: bytes.Clone(want.Body)}
	r2 := attempt(empty.Event.ID, 1, 204, switchboard.StateDelivered, time.Time{})
	r2.Response = &switchboard.Response{Status: 204} // no content type, nil body
	if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{r, r2}); err != nil {
		t.Fatal(err)
	}
	ev, err := o.Store.Event(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Response.Status != want.Status || ev.Response.ContentType != want.ContentType || !bytes.Equal(ev.Response.Body, want.Body) {
		t.Errorf("stored response = %d %q %q, want %d %q %q", ev.Response.Status, ev.Response.ContentType,
			ev.Response.Body, want.Status, want.ContentType, want.Body)
	}
	if ev.State != switchboard.StateDelivered || ev.Attempts != 2 {
		t.Errorf("event after the replacing result: state %s attempts %d", ev.State, ev.Attempts)
	}
	again := NewItem("/sms", "resp", base.Add(time.Minute))
	ingest(t, o.Store, again)
	if !again.Duplicate || again.Event.ID != id {
		t.Fatalf("duplicate = %v, event %s, want the original %s", again.Duplicate, again.Event.ID, id)
	}
	if got := again.Event.Response; got.Status != want.Status || got.ContentType != want.ContentType || !bytes.Equal(got.Body, want.Body) {
		t.Errorf("duplicate answered %d %q %q, want the replaced response", got.Status, got.ContentType, got.Body)
	}
	ev, err = o.Store.Event(ctx, empty.Event.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Response.Status != 204 || ev.Response.ContentType != "" || len(ev.Response.Body) != 0 {
		t.Errorf("empty replacement stored as %d %q %q", ev.Response.Status, ev.Response.ContentType, ev.Response.Body)
	}

	// A later result without a response leaves the replaced one.
	if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{attempt(id, 3, 200, switchboard.StateDelivered, time.Time{})}); err != nil {
		t.Fatal(err)
	}
	if ev, err := o.Store.Event(ctx, id); err != nil || !bytes.Equal(ev.Response.Body, want.Body) {
		t.Errorf("after a result without a response: %+v, %v; want the replaced response", ev, err)
	}
}

// A result that delivers the event with an error (the app got the request
// but answered badly) keeps the error in LastError, and the event, being
// delivered, is not delivered again by the job it already had.
func testDeliveredWithError(t *testing.T, o Opened) {
	ctx := context.Background()
	it := NewItem("/sms", "delivered-error", time.Now())
	ingest(t, o.Store, it)
	id := it.Event.ID
	r := attempt(id, 1, 500, switchboard.StateDelivered, time.Time{})
	r.Attempt.Error = "HTTP 500 from the app, answered to Twilio as is"
	if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{r}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		ev, err := o.Store.Event(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if ev.State != switchboard.StateDelivered || ev.Attempts != 1 || ev.LastError != r.Attempt.Error ||
			ev.DeliveredAt.IsZero() || !ev.NextAttemptAt.IsZero() {
			t.Errorf("%s: state %s attempts %d last error %q delivered at %v next attempt at %v", when,
				ev.State, ev.Attempts, ev.LastError, ev.DeliveredAt, ev.NextAttemptAt)
		}
	}
	check("after a delivery with an error")

	// The job made at ingest still runs, carrying attempt count 0: it must
	// find the event moved on. An engine without such jobs must not hand
	// it over at all: another event, due beside it, shows the queue ran.
	d := newRecorder(o.Store, 2)
	wait := id
	if !o.StaleJobs {
		other := NewItem("/sms", "delivered-error-other", time.Now())
		ingest(t, o.Store, other)
		wait = other.Event.ID
	}
	start(t, o.Store, d)
	d.waitForCalls(t, 30*time.Second, wait)
	// Let a delivery that wrongly went ahead finish recording.
	if err := o.Store.StopDelivery(ctx); err != nil {
		t.Fatal(err)
	}
	check("after its job ran")
	atts, err := o.Store.Attempts(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 1 || atts[0].Error != r.Attempt.Error {
		t.Errorf("%d attempts stored, want only the one delivered with an error", len(atts))
	}
}

// An event ingested with NextAttemptAt is not handed to the Deliverer
// before then, and is after. One whose attempt was recorded meanwhile (the
// proxy delivered it) has moved on: its delayed job, carrying attempt count
// 0, does not deliver it again.
func testDelayedFirstDelivery(t *testing.T, o Opened) {
	ctx := context.Background()
	// Whole milliseconds: the SQLite queue keeps scheduled times to the
	// millisecond, so the comparison below is exact on both engines.
	at := time.Now().Add(time.Second).Truncate(time.Millisecond)
	delayed, proxied := NewItem("/sms", "delayed", time.Now()), NewItem("/sms", "proxied", time.Now())
	delayed.Event.NextAttemptAt, proxied.Event.NextAttemptAt = at, at
	ingest(t, o.Store, delayed, proxied)
	for _, it := range []*switchboard.Ingest{delayed, proxied} {
		ev, err := o.Store.Event(ctx, it.Event.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ev.State != switchboard.StatePending || ev.Attempts != 0 || !ev.NextAttemptAt.Equal(at) {
			t.Errorf("delayed event stored as state %s attempts %d next attempt at %v, want pending, 0, %v",
				ev.State, ev.Attempts, ev.NextAttemptAt, at)
		}
	}
	r := attempt(proxied.Event.ID, 1, 500, switchboard.StateDelivered, time.Time{})
	r.Attempt.StartedAt = time.Now()
	if err := o.Store.RecordAttempts(ctx, []*switchboard.AttemptResult{r}); err != nil {
		t.Fatal(err)
	}

	// Started after the proxied event was recorded, so that its job cannot
	// run first however slow this machine is.
	d := newRecorder(o.Store, 2)
	start(t, o.Store, d)
	// Scheduled jobs become available within River's scheduler interval
	// (5 s) after they are due. The proxied event's is stale: only an
	// engine with such jobs hands it over (see Opened.StaleJobs).
	wait := []string{delayed.Event.ID}
	if o.StaleJobs {
		wait = append(wait, proxied.Event.ID)
	}
	d.waitForCalls(t, 30*time.Second, wait...)
	d.waitFor(t, 1)
	if err := o.Store.StopDelivery(ctx); err != nil {
		t.Fatal(err)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	for _, it := range []*switchboard.Ingest{delayed, proxied} {
		id := it.Event.ID
		if got := fmt.Sprint(d.tokens[id]); got != "[0]" && (o.StaleJobs || it == delayed || got != "[]") {
			t.Errorf("event %s: jobs carried attempt counts %s, want [0]", it.Event.IdempotencyKey, got)
		}
		for _, when := range d.times[id] {
			if when.Before(at) {
				t.Errorf("event %s handed to the Deliverer at %v, before its first delivery was due at %v",
					it.Event.IdempotencyKey, when, at)
			}
		}
	}
	ev, err := o.Store.Event(ctx, delayed.Event.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.State != switchboard.StateDelivered || ev.Attempts != 1 {
		t.Errorf("delayed event after its delivery: state %s attempts %d", ev.State, ev.Attempts)
	}
	ev, err = o.Store.Event(ctx, proxied.Event.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev.State != switchboard.StateDelivered || ev.Attempts != 1 || ev.LastError != r.Attempt.Error {
		t.Errorf("proxied event after its delayed job: state %s attempts %d last error %q", ev.State, ev.Attempts, ev.LastError)
	}
	if atts, err := o.Store.Attempts(ctx, proxied.Event.ID); err != nil || len(atts) != 1 {
		t.Errorf("proxied event has %d attempts (%v), want only the proxy's", len(atts), err)
	}
}

// fanoutOf returns a fan-out event of it's event for target, keyed by the
// event's key and suffix.
func fanoutOf(it *switchboard.Ingest, suffix, target string) *switchboard.Event {
	f := *it.Event
	f.ID = uuid.Must(uuid.NewV7()).String()
	f.IdempotencyKey = it.Event.IdempotencyKey + "#" + suffix
	f.Target = target
	f.Response.Body = bytes.Clone(it.Event.Response.Body)
	return &f
}

// eventsOf returns every stored event of the request with the given id,
// keyed by idempotency key.
func eventsOf(t *testing.T, s switchboard.Store, requestID string) map[string]*switchboard.Event {
	t.Helper()
	page, err := s.ListEvents(context.Background(), switchboard.EventFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*switchboard.Event{}
	for _, ev := range page.Items {
		if ev.RequestID == requestID {
			out[ev.IdempotencyKey] = ev
		}
	}
	return out
}

// An accepted item's fan-out events are stored with it, from its request,
// each with its target and a delivery job of its own; the main event keeps
// an empty target.
func testFanout(t *testing.T, o Opened) {
	ctx := context.Background()
	it := NewItem("/status", "fan", time.Now())
	it.Event.Kind = switchboard.KindMessageStatus
	hook := fanoutOf(it, "status_webhook", "https://app.example.com/status?secret=1")
	other := fanoutOf(it, "other", "https://other.example.com/hook")
	other.RequestID = "" // set by the store
	it.Fanout = []*switchboard.Event{hook, other}
	plain := NewItem("/status", "no-fan", time.Now())
	ingest(t, o.Store, it, plain)
	if it.Duplicate || len(it.Fanout) != 2 {
		t.Fatalf("duplicate = %v, fan-out %d events, want a new event and the 2 fan-out events given", it.Duplicate, len(it.Fanout))
	}

	got := eventsOf(t, o.Store, it.Request.ID)
	if len(got) != 3 {
		t.Fatalf("request has %d events, want the event and 2 fan-out events: %v", len(got), got)
	}
	if main := got["fan"]; main == nil || main.ID != it.Event.ID || main.Target != "" {
		t.Errorf("main event stored as %+v, want %s with no target", main, it.Event.ID)
	}
	for _, want := range []*switchboard.Event{hook, other} {
		ev, err := o.Store.Event(ctx, want.ID)
		if err != nil {
			t.Fatalf("fan-out event %s: %v", want.IdempotencyKey, err)
		}
		if ev.Target != want.Target || ev.IdempotencyKey != want.IdempotencyKey || ev.RequestID != it.Request.ID ||
			ev.Route != "/status" || ev.Kind != switchboard.KindMessageStatus || ev.MessageSID != "SMfan" ||
			ev.State != switchboard.StatePending || ev.Attempts != 0 {
			t.Errorf("fan-out event stored as %+v, want target %q from request %s", ev, want.Target, it.Request.ID)
		}
	}
	if ev, err := o.Store.Event(ctx, plain.Event.ID); err != nil || ev.Target != "" {
		t.Errorf("event without fan-out stored as %+v, %v; want no target", ev, err)
	}
	if req, err := o.Store.Request(ctx, it.Request.ID); err != nil || req.EventID != it.Event.ID {
		t.Errorf("request stored as %+v, %v; want it to name its main event %s", req, err, it.Event.ID)
	}

	d := newRecorder(o.Store, 8)
	start(t, o.Store, d)
	delivered := d.waitFor(t, 4)
	for _, id := range []string{it.Event.ID, hook.ID, other.ID, plain.Event.ID} {
		if !delivered[id] {
			t.Errorf("event %s never delivered", id)
		}
	}
}

// A duplicate creates no fan-out events, whether its original had some or
// not, in another batch or in the same one.
func testFanoutDuplicate(t *testing.T, o Opened) {
	first := NewItem("/status", "fan-dup", base)
	first.Fanout = []*switchboard.Event{fanoutOf(first, "status_webhook", "https://app.example.com/status")}
	ingest(t, o.Store, first)
	again := NewItem("/status", "fan-dup", base.Add(time.Second))
	again.Fanout = []*switchboard.Event{fanoutOf(again, "status_webhook", "https://app.example.com/status"),
		fanoutOf(again, "more", "https://app.example.com/more")}
	ingest(t, o.Store, again)
	if !again.Duplicate {
		t.Fatal("repeat not reported as a duplicate")
	}
	if got := eventsOf(t, o.Store, first.Request.ID); len(got) != 2 {
		t.Errorf("original request has %d events, want the event and its fan-out event", len(got))
	}
	if got := eventsOf(t, o.Store, again.Request.ID); len(got) != 0 {
		t.Errorf("duplicate request created %d events: %v", len(got), got)
	}
	for _, f := range again.Fanout {
		if _, err := o.Store.Event(context.Background(), f.ID); !errors.Is(err, switchboard.ErrNotFound) {
			t.Errorf("fan-out event %s of a duplicate: %v, want ErrNotFound", f.IdempotencyKey, err)
		}
	}

	// In one batch: the first item is the original, the second its
	// duplicate, whose fan-out is not created.
	a, b := NewItem("/status", "fan-batch", base), NewItem("/status", "fan-batch", base)
	b.Fanout = []*switchboard.Event{fanoutOf(b, "status_webhook", "https://app.example.com/status")}
	ingest(t, o.Store, a, b)
	if a.Duplicate || !b.Duplicate {
		t.Fatalf("a dup=%v b dup=%v", a.Duplicate, b.Duplicate)
	}
	if _, err := o.Store.Event(context.Background(), b.Fanout[0].ID); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("fan-out event of a duplicate in the same batch: %v, want ErrNotFound", err)
	}
}

// A fan-out event without a target fails its item: nothing of it is
// stored, and it is not acknowledged.
func testFanoutInvalid(t *testing.T, o Opened) {
	ctx := context.Background()
	it := NewItem("/status", "fan-invalid", base)
	bad := fanoutOf(it, "status_webhook", "")
	it.Fanout = []*switchboard.Event{bad}
	if err := o.Store.Ingest(ctx, []*switchboard.Ingest{it}); err == nil {
		t.Fatal("Ingest of a fan-out event without a target succeeded")
	}
	if _, err := o.Store.Request(ctx, it.Request.ID); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("request of the failed item: %v, want ErrNotFound", err)
	}
	if _, err := o.Store.Event(ctx, it.Event.ID); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("event of the failed item: %v, want ErrNotFound", err)
	}
	if err := o.Store.IngestFanout(ctx, []*switchboard.Event{bad}); !errors.Is(err, switchboard.ErrInvalid) {
		t.Errorf("IngestFanout without a target: %v, want ErrInvalid", err)
	}
}

// IngestFanout adds a fan-out event to a stored request, with its delivery
// job, once: another event with the same key is skipped, and an unknown
// request is ErrNotFound.
func testIngestFanout(t *testing.T, o Opened) {
	ctx := context.Background()
	it := NewItem("/status", "late", time.Now())
	ingest(t, o.Store, it)
	hook := fanoutOf(it, "status_webhook", "https://app.example.com/status")
	if err := o.Store.IngestFanout(ctx, []*switchboard.Event{hook}); err != nil {
		t.Fatalf("IngestFanout: %v", err)
	}
	again := fanoutOf(it, "status_webhook", "https://app.example.com/status")
	if err := o.Store.IngestFanout(ctx, []*switchboard.Event{again}); err != nil {
		t.Fatalf("IngestFanout again: %v", err)
	}
	got := eventsOf(t, o.Store, it.Request.ID)
	if len(got) != 2 {
		t.Fatalf("request has %d events, want the event and one fan-out event: %v", len(got), got)
	}
	if ev := got[hook.IdempotencyKey]; ev == nil || ev.ID != hook.ID || ev.Target != hook.Target || ev.State != switchboard.StatePending {
		t.Errorf("fan-out event stored as %+v, want %s for %s", ev, hook.ID, hook.Target)
	}
	if _, err := o.Store.Event(ctx, again.ID); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("second fan-out event with the same key: %v, want ErrNotFound", err)
	}

	orphan := fanoutOf(NewItem("/status", "never-stored", time.Now()), "status_webhook", "https://app.example.com/status")
	if err := o.Store.IngestFanout(ctx, []*switchboard.Event{orphan}); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("IngestFanout for an unknown request: %v, want ErrNotFound", err)
	}
	if _, err := o.Store.Event(ctx, orphan.ID); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("fan-out event of an unknown request: %v, want ErrNotFound", err)
	}

	d := newRecorder(o.Store, 4)
	start(t, o.Store, d)
	delivered := d.waitFor(t, 2)
	if !delivered[it.Event.ID] || !delivered[hook.ID] {
		t.Errorf("delivered %v, want the event %s and its fan-out event %s", delivered, it.Event.ID, hook.ID)
	}
}
