package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/jobs"
)

// SendJob is a send job as River stores it.
type SendJob struct {
	Args        jobs.SendArgs
	Queue       string
	State       string
	Attempt     int // River's own count of the times a worker took the job
	ScheduledAt time.Time
}

// ListSendJobs lists the send jobs in River's tables on driver, oldest
// first, without working any: the engines' tests use it for
// Opened.SendJobs.
func ListSendJobs[TTx any](ctx context.Context, driver riverdriver.Driver[TTx]) ([]SendJob, error) {
	client, err := river.NewClient(driver, &river.Config{})
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	res, err := client.JobList(ctx, river.NewJobListParams().Kinds(jobs.SendArgs{}.Kind()).First(10000))
	if err != nil {
		return nil, fmt.Errorf("list send jobs: %w", err)
	}
	out := make([]SendJob, len(res.Jobs))
	for i, j := range res.Jobs {
		if err := json.Unmarshal(j.EncodedArgs, &out[i].Args); err != nil {
			return nil, fmt.Errorf("decode send job %d: %w", j.ID, err)
		}
		out[i].Queue, out[i].State, out[i].Attempt, out[i].ScheduledAt = j.Queue, string(j.State), j.Attempt, j.ScheduledAt.UTC()
	}
	return out, nil
}

// sendJobs lists the send jobs of one message.
func sendJobs(t *testing.T, o Opened, messageID string) []SendJob {
	t.Helper()
	if o.SendJobs == nil {
		t.Fatal("the engine's Opener sets no SendJobs")
	}
	var out []SendJob
	for _, j := range o.SendJobs(t) {
		if j.Args.MessageID == messageID {
			out = append(out, j)
		}
	}
	return out
}

// NewMessage builds a new outbound message with its payload hash, keyed by
// key.
func NewMessage(key, to string, at time.Time) *switchboard.OutboundMessage {
	m := &switchboard.OutboundMessage{
		ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: key, AccountSID: "AC1", Pool: "default",
		Purpose: switchboard.PurposeTransactional, To: to, Body: "Your code is 1234 – café",
		MediaURLs: []string{"https://media.example.com/a.png"}, StatusWebhook: "https://app.example.com/status",
		CreatedAt: at,
	}
	m.PayloadHash = switchboard.Payload{To: m.To, Body: m.Body, MediaURLs: m.MediaURLs, Pool: m.Pool, From: m.From, Purpose: m.Purpose, Template: m.Template}.Hash()
	return m
}

func createMessage(t *testing.T, s switchboard.Store, m *switchboard.OutboundMessage) {
	t.Helper()
	created, err := s.CreateMessage(context.Background(), m)
	if err != nil {
		t.Fatalf("CreateMessage %s: %v", m.IdempotencyKey, err)
	}
	if !created {
		t.Fatalf("CreateMessage %s: not created", m.IdempotencyKey)
	}
}

func testCreateMessage(t *testing.T, o Opened) {
	ctx := context.Background()
	m := NewMessage("out-1", "+15550001", base)
	want := *m
	created, err := o.Store.CreateMessage(ctx, m)
	if err != nil || !created {
		t.Fatalf("first create: created %v, %v", created, err)
	}
	if m.ID != want.ID || m.State != switchboard.MessageQueued || m.Attempts != 0 || !m.CreatedAt.Equal(base) ||
		!m.NextAttemptAt.Equal(base) {
		t.Errorf("created message: %+v", m)
	}
	got, err := o.Store.OutboundMessage(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.IdempotencyKey != want.IdempotencyKey || got.AccountSID != "AC1" || got.Pool != "default" ||
		got.Purpose != switchboard.PurposeTransactional || got.From != "" || got.To != want.To ||
		got.Body != want.Body || !slices.Equal(got.MediaURLs, want.MediaURLs) ||
		got.StatusWebhook != want.StatusWebhook || got.PayloadHash != want.PayloadHash ||
		got.State != switchboard.MessageQueued || got.TwilioSID != "" || !got.CreatedAt.Equal(base) ||
		!got.UpdatedAt.Equal(base) || !got.NextAttemptAt.Equal(base) || !got.SentAt.IsZero() || !got.DeliveredAt.IsZero() {
		t.Errorf("message round trip:\n got %+v\nwant %+v", got, want)
	}
	if byKey, err := o.Store.OutboundMessageByKey(ctx, "out-1"); err != nil || byKey.ID != want.ID {
		t.Errorf("OutboundMessageByKey: %+v, %v", byKey, err)
	}

	// The same key and payload again: the stored message, nothing new.
	again := NewMessage("out-1", "+15550001", base.Add(time.Minute))
	created, err = o.Store.CreateMessage(ctx, again)
	if err != nil || created {
		t.Fatalf("second create: created %v, %v; want the stored message", created, err)
	}
	if again.ID != want.ID || !again.CreatedAt.Equal(base) || again.State != switchboard.MessageQueued {
		t.Errorf("second create returned %+v, want the stored message %s", again, want.ID)
	}

	// The same key with another payload: a conflict, and *m is left alone.
	other := NewMessage("out-1", "+15550002", base)
	otherID := other.ID
	if _, err := o.Store.CreateMessage(ctx, other); !errors.Is(err, switchboard.ErrConflict) {
		t.Errorf("create with another payload: %v, want ErrConflict", err)
	}
	if other.ID != otherID || other.To != "+15550002" {
		t.Errorf("a conflicting create changed the message given: %+v", other)
	}

	// One send job, on the send queue, carrying attempt count 0.
	js := sendJobs(t, o, want.ID)
	if len(js) != 1 || js[0].Args.Attempts != 0 || js[0].Queue != jobs.SendQueue {
		t.Errorf("send jobs: %+v, want one with attempt count 0 on queue %q", js, jobs.SendQueue)
	}
	if all := o.SendJobs(t); len(all) != 1 {
		t.Errorf("%d send jobs in all, want 1", len(all))
	}

	invalid := []struct {
		name string
		edit func(*switchboard.OutboundMessage)
	}{
		{"no key", func(m *switchboard.OutboundMessage) { m.IdempotencyKey = "" }},
		{"no id", func(m *switchboard.OutboundMessage) { m.ID = "" }},
		{"no recipient", func(m *switchboard.OutboundMessage) { m.To = "" }},
		{"no hash", func(m *switchboard.OutboundMessage) { m.PayloadHash = "" }},
		{"bad purpose", func(m *switchboard.OutboundMessage) { m.Purpose = "spam" }},
	}
	for _, tc := range invalid {
		m := NewMessage("out-invalid", "+15550003", base)
		tc.edit(m)
		if _, err := o.Store.CreateMessage(ctx, m); !errors.Is(err, switchboard.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}
}

// Concurrent creates of one key, through every replica there is: exactly
// one is created, every other gets it, and it has one send job.
func testConcurrentCreates(t *testing.T, o Opened) {
	const n = 16
	stores := []switchboard.Store{o.Store}
	if o.Replica != nil {
		stores = append(stores, o.Replica(t))
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		ids     = map[string]bool{}
	)
	for i := range n {
		wg.Go(func() {
			m := NewMessage("out-race", "+15550001", base)
			c, err := stores[i%len(stores)].CreateMessage(context.Background(), m)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("create %d: %v", i, err)
				return
			}
			if c {
				created++
			}
			ids[m.ID] = true
		})
	}
	wg.Wait()
	if created != 1 || len(ids) != 1 {
		t.Fatalf("%d of %d concurrent creates created a message; they returned %d ids; want 1 and 1", created, n, len(ids))
	}
	for id := range ids {
		if js := sendJobs(t, o, id); len(js) != 1 {
			t.Errorf("%d send jobs, want 1", len(js))
		}
	}
}

func testDelayedFirstSend(t *testing.T, o Opened) {
	ctx := context.Background()
	// Whole milliseconds: the SQLite queue keeps scheduled times to the
	// millisecond.
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	m := NewMessage("out-delayed", "+15550001", time.Now())
	m.NextAttemptAt = at
	createMessage(t, o.Store, m)
	if !m.NextAttemptAt.Equal(at) {
		t.Errorf("stored next attempt at %v, want %v", m.NextAttemptAt, at)
	}
	js := sendJobs(t, o, m.ID)
	if len(js) != 1 || !js[0].ScheduledAt.Equal(at) || js[0].State != "scheduled" {
		t.Errorf("send jobs: %+v, want one scheduled at %v", js, at)
	}
	if got, err := o.Store.OutboundMessage(ctx, m.ID); err != nil || !got.NextAttemptAt.Equal(at) {
		t.Errorf("message next attempt at: %+v, %v", got, err)
	}
}

// The delivery workers work River's default queue only: a send job, which
// has no worker yet, is neither taken nor thrown away by them.
func testSendJobsNotDelivered(t *testing.T, o Opened) {
	m := NewMessage("out-not-delivered", "+15550001", time.Now())
	createMessage(t, o.Store, m)
	it := NewItem("/sms", "after-send-job", time.Now())
	ingest(t, o.Store, it)
	d := newRecorder(o.Store, 1)
	start(t, o.Store, d)
	// River fetches jobs oldest first: had the send job been on the
	// delivery queue, it would have been taken no later than the event's.
	d.waitFor(t, 1)
	if err := o.Store.StopDelivery(context.Background()); err != nil {
		t.Fatal(err)
	}
	js := sendJobs(t, o, m.ID)
	if len(js) != 1 || js[0].State != "available" || js[0].Attempt != 0 {
		t.Errorf("send jobs after the delivery workers ran: %+v, want one available and never taken", js)
	}
}

func testRecordSend(t *testing.T, o Opened) {
	ctx := context.Background()
	m := NewMessage("out-send", "+15550001", base)
	createMessage(t, o.Store, m)
	id := m.ID
	load := func() *switchboard.OutboundMessage {
		t.Helper()
		got, err := o.Store.OutboundMessage(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	// Attempt 1: sending, then a retry.
	if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: id, Attempts: 1, State: switchboard.MessageSending,
		From: "+15559999", At: base.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got := load(); got.State != switchboard.MessageSending || got.Attempts != 1 || got.From != "+15559999" ||
		!got.NextAttemptAt.IsZero() || !got.UpdatedAt.Equal(base.Add(time.Second)) {
		t.Errorf("after sending: %+v", got)
	}
	retryAt := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: id, Attempts: 1, State: switchboard.MessageQueued,
		ErrorCode: 20429, Error: "HTTP 429 from Twilio", NextAttemptAt: retryAt, At: base.Add(2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got := load(); got.State != switchboard.MessageQueued || got.Attempts != 1 || !got.NextAttemptAt.Equal(retryAt) ||
		got.ErrorCode != 20429 || got.LastError != "HTTP 429 from Twilio" || got.From != "+15559999" {
		t.Errorf("after a retry: %+v", got)
	}
	js := sendJobs(t, o, id)
	if len(js) != 2 || js[1].Args.Attempts != 1 || !js[1].ScheduledAt.Equal(retryAt) || js[1].Queue != jobs.SendQueue {
		t.Errorf("send jobs after a retry: %+v, want the first and one carrying attempt count 1 at %v", js, retryAt)
	}

	// A stale result (the first job's, attempt count 0) changes nothing.
	if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: id, Attempts: 0, State: switchboard.MessageFailed,
		ErrorCode: 21211, Error: "stale"}); err != nil {
		t.Fatal(err)
	}
	if got := load(); got.State != switchboard.MessageQueued || got.LastError != "HTTP 429 from Twilio" {
		t.Errorf("a stale result changed the message: %+v", got)
	}

	// Attempt 2: Twilio accepts it.
	sentAt := base.Add(time.Minute)
	if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: id, Attempts: 2, State: switchboard.MessageSent,
		TwilioSID: "SMout-send", TwilioStatus: "queued", At: sentAt}); err != nil {
		t.Fatal(err)
	}
	got := load()
	if got.State != switchboard.MessageSent || got.Attempts != 2 || got.TwilioSID != "SMout-send" ||
		got.TwilioStatus != "queued" || !got.SentAt.Equal(sentAt) || !got.NextAttemptAt.IsZero() || got.ErrorCode != 20429 {
		t.Errorf("after sent: %+v", got)
	}
	if bySID, err := o.Store.OutboundMessageBySID(ctx, "AC1", "SMout-send"); err != nil || bySID.ID != id {
		t.Errorf("OutboundMessageBySID: %+v, %v", bySID, err)
	}
	// Once Twilio has it, send results change nothing and schedule nothing.
	for _, st := range []switchboard.MessageState{switchboard.MessageQueued, switchboard.MessageFailed, switchboard.MessageSending} {
		if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: id, Attempts: 3, State: st}); err != nil {
			t.Fatal(err)
		}
	}
	if got := load(); got.State != switchboard.MessageSent || got.Attempts != 2 {
		t.Errorf("a result after sent changed the message: %+v", got)
	}
	if js := sendJobs(t, o, id); len(js) != 2 {
		t.Errorf("%d send jobs, want still 2", len(js))
	}

	// A permanent failure: failed at once, with its code, and no job.
	f := NewMessage("out-fail", "+15550002", base)
	createMessage(t, o.Store, f)
	if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: f.ID, Attempts: 1, State: switchboard.MessageFailed,
		ErrorCode: 21211, Error: "invalid 'To' number"}); err != nil {
		t.Fatal(err)
	}
	if got, err := o.Store.OutboundMessage(ctx, f.ID); err != nil || got.State != switchboard.MessageFailed ||
		got.ErrorCode != 21211 || got.LastError != "invalid 'To' number" || !got.NextAttemptAt.IsZero() || !got.SentAt.IsZero() {
		t.Errorf("after a permanent failure: %+v, %v", got, err)
	}
	if js := sendJobs(t, o, f.ID); len(js) != 1 {
		t.Errorf("%d send jobs after a failure, want only the first", len(js))
	}

	bad := []struct {
		name string
		r    switchboard.SendResult
		want error
	}{
		{"unknown message", switchboard.SendResult{MessageID: "missing", State: switchboard.MessageSending}, switchboard.ErrNotFound},
		{"delivered", switchboard.SendResult{MessageID: id, State: switchboard.MessageDelivered}, switchboard.ErrInvalid},
		{"sent without a SID", switchboard.SendResult{MessageID: id, State: switchboard.MessageSent}, switchboard.ErrInvalid},
		{"no message", switchboard.SendResult{State: switchboard.MessageSending}, switchboard.ErrInvalid},
	}
	for _, tc := range bad {
		if err := o.Store.RecordSend(ctx, tc.r); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// Status callbacks arrive repeated and out of order; the message only moves
// forward, and every one is in its history.
func testStatusUpdates(t *testing.T, o Opened) {
	type step struct {
		status string
		code   int
	}
	cases := []struct {
		name      string
		steps     []step
		applied   []bool
		state     switchboard.MessageState
		twilio    string
		code      int
		delivered bool // DeliveredAt set
	}{
		{"in order", []step{{"sent", 0}, {"delivered", 0}}, []bool{true, true},
			switchboard.MessageDelivered, "delivered", 0, true},
		{"delivered then sent", []step{{"delivered", 0}, {"sent", 0}}, []bool{true, false},
			switchboard.MessageDelivered, "delivered", 0, true},
		{"failure code kept", []step{{"sent", 0}, {"failed", 30008}, {"queued", 0}}, []bool{true, true, false},
			switchboard.MessageFailed, "failed", 30008, false},
		{"delivered then read", []step{{"delivered", 0}, {"read", 0}}, []bool{true, true},
			switchboard.MessageRead, "read", 0, true},
		{"read before delivered", []step{{"read", 0}, {"delivered", 0}}, []bool{true, false},
			switchboard.MessageRead, "read", 0, true},
		{"undelivered then delivered", []step{{"undelivered", 30003}, {"delivered", 0}}, []bool{true, false},
			switchboard.MessageUndelivered, "undelivered", 30003, false},
		{"failed then read", []step{{"failed", 30007}, {"read", 0}}, []bool{true, false},
			switchboard.MessageFailed, "failed", 30007, false},
		{"repeated delivered", []step{{"delivered", 0}, {"delivered", 0}}, []bool{true, false},
			switchboard.MessageDelivered, "delivered", 0, true},
		{"sending then queued", []step{{"sending", 0}, {"queued", 0}}, []bool{true, false},
			switchboard.MessageSent, "sending", 0, false},
		{"unknown status", []step{{"receiving", 0}}, []bool{false},
			switchboard.MessageSent, "queued", 0, false},
	}
	ctx := context.Background()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMessage(fmt.Sprintf("out-status-%d", i), "+15550001", base)
			createMessage(t, o.Store, m)
			sid := fmt.Sprintf("SMstatus%d", i)
			if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1,
				State: switchboard.MessageSent, TwilioSID: sid, TwilioStatus: "queued", At: base}); err != nil {
				t.Fatal(err)
			}
			var last *switchboard.OutboundMessage
			for j, st := range tc.steps {
				var err error
				last, err = o.Store.UpdateMessageStatus(ctx, switchboard.StatusUpdate{AccountSID: "AC1", TwilioSID: sid, Status: st.status,
					ErrorCode: st.code, At: base.Add(time.Duration(j+1) * time.Second), Source: "callback"})
				if err != nil {
					t.Fatal(err)
				}
			}
			got, err := o.Store.OutboundMessage(ctx, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tc.state || got.TwilioStatus != tc.twilio || got.ErrorCode != tc.code ||
				got.DeliveredAt.IsZero() == tc.delivered || !got.SentAt.Equal(base) {
				t.Errorf("final message: state %s twilio %q code %d sent at %v delivered at %v; want %s %q %d, delivered %v",
					got.State, got.TwilioStatus, got.ErrorCode, got.SentAt, got.DeliveredAt, tc.state, tc.twilio, tc.code, tc.delivered)
			}
			if last.State != got.State || last.TwilioStatus != got.TwilioStatus || !last.UpdatedAt.Equal(got.UpdatedAt) ||
				!last.DeliveredAt.Equal(got.DeliveredAt) {
				t.Errorf("UpdateMessageStatus returned %+v, stored %+v", last, got)
			}
			history, err := o.Store.MessageHistory(ctx, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(history) != len(tc.steps) {
				t.Fatalf("%d history entries, want %d", len(history), len(tc.steps))
			}
			for j, h := range history {
				want := tc.steps[j]
				if h.Status != want.status || h.ErrorCode != want.code || h.Applied != tc.applied[j] ||
					h.Source != "callback" || !h.At.Equal(base.Add(time.Duration(j+1)*time.Second)) {
					t.Errorf("history %d: %+v, want %s %d applied %v", j, h, want.status, want.code, tc.applied[j])
				}
			}
		})
	}
	if _, err := o.Store.UpdateMessageStatus(ctx, switchboard.StatusUpdate{AccountSID: "AC1", TwilioSID: "SMnobody", Status: "delivered"}); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("status of an unknown SID: %v, want ErrNotFound", err)
	}
	if _, err := o.Store.UpdateMessageStatus(ctx, switchboard.StatusUpdate{AccountSID: "AC1", Status: "delivered"}); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("status without a SID: %v, want ErrNotFound", err)
	}
}

// Concurrent status updates, as a burst of callbacks brings them: several
// messages, each with updates arriving out of order and repeated, and
// unknown SIDs among them, all at once, so that a store batching them puts
// several in one transaction. Each message ends in its monotonic final
// state with every update in its history, recorded in the order applied;
// each call gets its own outcome, an unknown SID ErrNotFound and nobody
// else's. (A store that failed a whole batch for one unknown SID would pass
// on the committer's retry of each update alone, only slower.)
func testConcurrentStatusUpdates(t *testing.T, o Opened) {
	type step struct {
		status string
		code   int
	}
	// Each kind's final state is the same in whatever order its updates
	// apply: one terminal status each, updated at that update's time.
	kinds := []struct {
		steps  []step
		state  switchboard.MessageState
		twilio string
		code   int
		// delivered: DeliveredAt set (at the final update when exact).
		delivered, exact bool
	}{
		{[]step{{"queued", 0}, {"sending", 0}, {"sent", 0}, {"sent", 0}, {"delivered", 0}},
			switchboard.MessageDelivered, "delivered", 0, true, true},
		{[]step{{"sending", 0}, {"sent", 0}, {"undelivered", 30003}, {"receiving", 0}},
			switchboard.MessageUndelivered, "undelivered", 30003, false, false},
		{[]step{{"sent", 0}, {"delivered", 0}, {"read", 0}},
			switchboard.MessageRead, "read", 0, true, false},
		{[]step{{"sending", 0}, {"failed", 30007}, {"queued", 0}},
			switchboard.MessageFailed, "failed", 30007, false, false},
	}
	const perKind = 3
	ctx := context.Background()

	type call struct {
		msg int // index into msgs; -1 for an unknown SID
		u   switchboard.StatusUpdate
		got *switchboard.OutboundMessage
		err error
	}
	type message struct {
		m     *switchboard.OutboundMessage // as sent, before any update
		kind  int
		final time.Time // the At of its final update
	}
	var (
		msgs  []message
		calls []*call
	)
	for k, kind := range kinds {
		for i := range perKind {
			n := len(msgs)
			m := NewMessage(fmt.Sprintf("out-concurrent-status-%d", n), "+15550001", base)
			createMessage(t, o.Store, m)
			sid := fmt.Sprintf("SMconcurrent%d", n)
			if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1,
				State: switchboard.MessageSent, TwilioSID: sid, TwilioStatus: "queued", At: base}); err != nil {
				t.Fatal(err)
			}
			sent, err := o.Store.OutboundMessage(ctx, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			msg := message{m: sent, kind: k}
			for j, st := range kind.steps {
				at := base.Add(time.Duration(n*100+j+1) * time.Second)
				if st.status == kind.twilio {
					msg.final = at
				}
				calls = append(calls, &call{msg: n, u: switchboard.StatusUpdate{AccountSID: "AC1", TwilioSID: sid, Status: st.status,
					ErrorCode: st.code, At: at, Source: "callback"}})
			}
			msgs = append(msgs, msg)
			if i == 0 {
				calls = append(calls, &call{msg: -1, u: switchboard.StatusUpdate{AccountSID: "AC1", TwilioSID: fmt.Sprintf("SMunknown%d", k),
					Status: "delivered", At: base, Source: "callback"}})
			}
		}
	}
	calls = append(calls, &call{msg: -1, u: switchboard.StatusUpdate{AccountSID: "AC1", Status: "delivered", Source: "callback"}})
	// Out of order: later updates first, interleaved across messages.
	slices.Reverse(calls)
	for i := 0; i+2 < len(calls); i += 3 {
		calls[i], calls[i+2] = calls[i+2], calls[i]
	}

	// Half the calls go to a second replica where the engine has them, so
	// that two processes' batches share messages too.
	stores := []switchboard.Store{o.Store}
	if o.Replica != nil {
		stores = append(stores, o.Replica(t))
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range calls {
		st := stores[i%len(stores)]
		wg.Go(func() {
			<-start
			c.got, c.err = st.UpdateMessageStatus(ctx, c.u)
		})
	}
	close(start)
	wg.Wait()

	for _, c := range calls {
		if c.msg < 0 {
			if !errors.Is(c.err, switchboard.ErrNotFound) || c.got != nil {
				t.Errorf("status of unknown SID %q: %+v, %v; want ErrNotFound", c.u.TwilioSID, c.got, c.err)
			}
			continue
		}
		if c.err != nil {
			t.Errorf("status %s of %s: %v", c.u.Status, c.u.TwilioSID, c.err)
		} else if c.got.ID != msgs[c.msg].m.ID || c.got.TwilioSID != c.u.TwilioSID {
			t.Errorf("status %s of %s returned message %s (SID %s), want %s", c.u.Status, c.u.TwilioSID,
				c.got.ID, c.got.TwilioSID, msgs[c.msg].m.ID)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	for n, msg := range msgs {
		kind := kinds[msg.kind]
		got, err := o.Store.OutboundMessage(ctx, msg.m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != kind.state || got.TwilioStatus != kind.twilio || got.ErrorCode != kind.code ||
			!got.UpdatedAt.Equal(msg.final) || !got.SentAt.Equal(base) || got.DeliveredAt.IsZero() == kind.delivered ||
			(kind.exact && !got.DeliveredAt.Equal(msg.final)) {
			t.Errorf("message %d: state %s twilio %q code %d updated %v delivered %v; want %s %q %d updated %v, delivered %v",
				n, got.State, got.TwilioStatus, got.ErrorCode, got.UpdatedAt, got.DeliveredAt,
				kind.state, kind.twilio, kind.code, msg.final, kind.delivered)
		}
		history, err := o.Store.MessageHistory(ctx, msg.m.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Every update once, and in the order it was applied: replaying
		// the history on the message as sent applies exactly the entries
		// marked applied and ends where the store did.
		want := map[string]int{}
		for _, c := range calls {
			if c.msg == n {
				want[fmt.Sprintf("%s/%d/%v", c.u.Status, c.u.ErrorCode, c.u.At.UnixMicro())]++
			}
		}
		replay := *msg.m
		for i, h := range history {
			key := fmt.Sprintf("%s/%d/%v", h.Status, h.ErrorCode, h.At.UnixMicro())
			if want[key] == 0 || h.Source != "callback" {
				t.Errorf("message %d: history %d %+v: not one of its updates, or recorded twice", n, i, h)
			}
			want[key]--
			applied := replay.ApplyStatus(switchboard.StatusUpdate{Status: h.Status, ErrorCode: h.ErrorCode, At: h.At})
			if applied != h.Applied {
				t.Errorf("message %d: history %d %+v: applied %v, but in history order it applies: %v", n, i, h, h.Applied, applied)
			}
		}
		if len(history) != len(kind.steps) {
			t.Errorf("message %d: %d history entries, want %d", n, len(history), len(kind.steps))
		}
		if replay.State != got.State || replay.TwilioStatus != got.TwilioStatus || replay.ErrorCode != got.ErrorCode ||
			!replay.UpdatedAt.Equal(got.UpdatedAt) || !replay.DeliveredAt.Equal(got.DeliveredAt) {
			t.Errorf("message %d: its history replayed gives %+v, stored %+v", n, replay, got)
		}
		// Each call returned the message as its own update left it.
		for _, c := range calls {
			if c.msg != n {
				continue
			}
			var applied bool
			for _, h := range history {
				if h.Status == c.u.Status && h.At.Equal(c.u.At) {
					applied = h.Applied
				}
			}
			if left := c.got.TwilioStatus == c.u.Status && c.got.UpdatedAt.Equal(c.u.At); left != applied {
				t.Errorf("message %d: status %s at %v (applied %v) returned twilio %q updated %v",
					n, c.u.Status, c.u.At, applied, c.got.TwilioStatus, c.got.UpdatedAt)
			}
		}
	}
}

func testListMessages(t *testing.T, o Opened) {
	ctx := context.Background()
	var msgs []*switchboard.OutboundMessage
	for i := range 7 {
		m := NewMessage(fmt.Sprintf("out-list-%d", i), fmt.Sprintf("+1555000%d", i%3), base.Add(time.Duration(i)*time.Minute))
		if i%2 == 1 {
			m.Pool, m.Purpose = "marketing", switchboard.PurposeMarketing
		}
		createMessage(t, o.Store, m)
		msgs = append(msgs, m)
	}
	if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: msgs[0].ID, Attempts: 1,
		State: switchboard.MessageFailed, ErrorCode: 21610}); err != nil {
		t.Fatal(err)
	}

	var seen []string
	cursor := ""
	for {
		page, err := o.Store.ListOutboundMessages(ctx, switchboard.OutboundFilter{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Items {
			seen = append(seen, m.ID)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(seen) != 7 || seen[0] != msgs[6].ID || seen[6] != msgs[0].ID {
		t.Errorf("paging saw %d messages, newest first expected", len(seen))
	}

	cases := []struct {
		name string
		f    switchboard.OutboundFilter
		want int
	}{
		{"pool", switchboard.OutboundFilter{Pool: "marketing"}, 3},
		{"purpose", switchboard.OutboundFilter{Purpose: switchboard.PurposeTransactional}, 4},
		{"state", switchboard.OutboundFilter{State: switchboard.MessageFailed}, 1},
		{"to", switchboard.OutboundFilter{To: "+15550001"}, 2},
		{"since", switchboard.OutboundFilter{Since: base.Add(5 * time.Minute)}, 2},
		{"until", switchboard.OutboundFilter{Until: base.Add(2 * time.Minute)}, 2},
		{"combined", switchboard.OutboundFilter{Pool: "default", Since: base.Add(time.Minute)}, 3},
		{"nothing", switchboard.OutboundFilter{Pool: "none"}, 0},
	}
	for _, c := range cases {
		page, err := o.Store.ListOutboundMessages(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(page.Items) != c.want || page.Next != "" {
			t.Errorf("%s: %d messages (next %q), want %d", c.name, len(page.Items), page.Next, c.want)
		}
	}
}

func testSuppression(t *testing.T, o Opened) {
	ctx := context.Background()
	check := func(account, number string, want bool) {
		t.Helper()
		got, err := o.Store.Suppressed(ctx, account, number)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("Suppressed(%s, %s) = %v, want %v", account, number, got, want)
		}
	}
	check("AC1", "+15550001", false)
	steps := []struct {
		name string
		do   func() error
	}{
		{"suppress", func() error { return o.Store.Suppress(ctx, "AC1", "+15550001", "STOP") }},
		{"suppress again", func() error { return o.Store.Suppress(ctx, "AC1", "+15550001", "UNSUBSCRIBE") }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		check("AC1", "+15550001", true)
		check("AC2", "+15550001", false) // per account
		check("AC1", "+15550002", false)
	}
	for range 2 { // removing an absent entry is not an error
		if err := o.Store.Unsuppress(ctx, "AC1", "+15550001"); err != nil {
			t.Fatal(err)
		}
		check("AC1", "+15550001", false)
	}
}

func testStickySender(t *testing.T, o Opened) {
	ctx := context.Background()
	if _, err := o.Store.StickySender(ctx, "default", "+15550001"); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("StickySender with none set: %v, want ErrNotFound", err)
	}
	for _, from := range []string{"+15559001", "+15559002"} { // set, then replace
		if err := o.Store.SetStickySender(ctx, "default", "+15550001", from); err != nil {
			t.Fatal(err)
		}
		if got, err := o.Store.StickySender(ctx, "default", "+15550001"); err != nil || got != from {
			t.Errorf("StickySender = %q, %v; want %q", got, err, from)
		}
	}
	if _, err := o.Store.StickySender(ctx, "marketing", "+15550001"); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("StickySender of another pool: %v, want ErrNotFound", err)
	}
}

// A sticky claim sets the recipient's sticky sender in the claim's
// transaction, only when the claim applies.
func testStickyClaim(t *testing.T, o Opened) {
	ctx := context.Background()
	sticky := func(to string) string {
		t.Helper()
		from, err := o.Store.StickySender(ctx, "default", to)
		if errors.Is(err, switchboard.ErrNotFound) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return from
	}
	claim := func(id, from string) switchboard.SendResult {
		return switchboard.SendResult{MessageID: id, Attempts: 1, State: switchboard.MessageSending, From: from, Sticky: true}
	}

	m := NewMessage("sticky-claim", "+15550101", base)
	createMessage(t, o.Store, m)
	if err := o.Store.RecordSend(ctx, claim(m.ID, "+15559001")); err != nil {
		t.Fatal(err)
	}
	if got := sticky(m.To); got != "+15559001" {
		t.Errorf("sticky sender after a sticky claim: %q, want +15559001", got)
	}
	// A stale claim (the message is sending at attempt 1, and this one
	// claims attempt 0) does not apply, and leaves the sender as it is.
	stale := claim(m.ID, "+15559002")
	stale.Attempts = 0
	if err := o.Store.RecordSend(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if got := sticky(m.To); got != "+15559001" {
		t.Errorf("sticky sender after a stale claim: %q, want still +15559001", got)
	}

	// A claim refused for a canceled message sets nothing.
	c := NewMessage("sticky-canceled", "+15550102", base)
	createMessage(t, o.Store, c)
	if _, err := o.Store.CancelMessage(ctx, c.AccountSID, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := o.Store.RecordSend(ctx, claim(c.ID, "+15559001")); !errors.Is(err, switchboard.ErrCanceled) {
		t.Errorf("sticky claim of a canceled message: %v, want ErrCanceled", err)
	}
	if got := sticky(c.To); got != "" {
		t.Errorf("sticky sender after a refused claim: %q, want none", got)
	}

	// Only a claim with a sender may be sticky.
	for name, r := range map[string]switchboard.SendResult{
		"not a claim": {MessageID: m.ID, Attempts: 1, State: switchboard.MessageFailed, From: "+15559001", Sticky: true},
		"no sender":   claim(m.ID, ""),
	} {
		if err := o.Store.RecordSend(ctx, r); !errors.Is(err, switchboard.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// Send results recorded at once, as many send workers record them, each
// apply as if alone and get their own outcome: a refused claim or an
// unknown message fails only its own call.
func testConcurrentSends(t *testing.T, o Opened) {
	ctx := context.Background()
	const n = 40
	var ids []string
	for i := range n {
		m := NewMessage(fmt.Sprintf("concurrent-send-%d", i), fmt.Sprintf("+1555020%04d", i), base)
		createMessage(t, o.Store, m)
		ids = append(ids, m.ID)
	}
	canceled := ids[n/2]
	if _, err := o.Store.CancelMessage(ctx, "AC1", canceled); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i, id := range append(slices.Clone(ids), "missing") {
		wg.Go(func() {
			from := fmt.Sprintf("+1555900%04d", i)
			if errs[i] = o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: id, Attempts: 1, State: switchboard.MessageSending,
				From: from, Sticky: true}); errs[i] != nil {
				return
			}
			r := switchboard.SendResult{MessageID: id, Attempts: 1, State: switchboard.MessageSent, TwilioSID: "SM" + id}
			if i%4 == 1 { // some retried instead
				r = switchboard.SendResult{MessageID: id, Attempts: 1, State: switchboard.MessageQueued, Error: "retry"}
			}
			errs[i] = o.Store.RecordSend(ctx, r)
		})
	}
	wg.Wait()
	for i, id := range ids {
		got, err := o.Store.OutboundMessage(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		from, _ := o.Store.StickySender(ctx, "default", got.To)
		js := sendJobs(t, o, id)
		switch {
		case id == canceled:
			if !errors.Is(errs[i], switchboard.ErrCanceled) || got.State != switchboard.MessageCanceled || from != "" || len(js) != 1 {
				t.Errorf("canceled message: %v, %s, sticky %q, %d jobs; want ErrCanceled and nothing changed", errs[i], got.State, from, len(js))
			}
		case i%4 == 1:
			if errs[i] != nil || got.State != switchboard.MessageQueued || got.Attempts != 1 || len(js) != 2 || js[1].Args.Attempts != 1 {
				t.Errorf("message %d: %v, %s at %d, %d jobs; want queued again at attempt 1 with a second job", i, errs[i], got.State, got.Attempts, len(js))
			}
		default:
			if errs[i] != nil || got.State != switchboard.MessageSent || got.TwilioSID != "SM"+id || len(js) != 1 {
				t.Errorf("message %d: %v, %s %q, %d jobs; want sent with its SID and no new job", i, errs[i], got.State, got.TwilioSID, len(js))
			}
		}
		if want := fmt.Sprintf("+1555900%04d", i); id != canceled && (from != want || got.From != want) {
			t.Errorf("message %d: from %q, sticky %q; want %q", i, got.From, from, want)
		}
	}
	if !errors.Is(errs[n], switchboard.ErrNotFound) {
		t.Errorf("unknown message: %v, want ErrNotFound", errs[n])
	}
}

// A send's one read: the message, its recipient's suppression and sticky
// sender, and the purposes of the earlier unsent messages to it in its
// pool, none of another pool's, another recipient's, a later one's or a
// settled one's.
func testSendView(t *testing.T, o Opened) {
	ctx := context.Background()
	const to = "+15550301"
	msg := func(key, to, pool string, p switchboard.Purpose) *switchboard.OutboundMessage {
		m := NewMessage(key, to, base)
		m.Pool, m.Purpose = pool, p
		m.PayloadHash = switchboard.Payload{To: m.To, Body: m.Body, MediaURLs: m.MediaURLs, Pool: m.Pool, Purpose: m.Purpose}.Hash()
		createMessage(t, o.Store, m)
		return m
	}
	otp := msg("view-otp", to, "default", switchboard.PurposeOTP)
	marketing := msg("view-marketing", to, "default", switchboard.PurposeMarketing)
	sent := msg("view-sent", to, "default", switchboard.PurposeTransactional)
	if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: sent.ID, Attempts: 1, State: switchboard.MessageSent, TwilioSID: "SMview"}); err != nil {
		t.Fatal(err)
	}
	msg("view-other-pool", to, "marketing", switchboard.PurposeOTP)
	msg("view-other-recipient", "+15550302", "default", switchboard.PurposeOTP)
	m := msg("view", to, "default", switchboard.PurposeTransactional)
	msg("view-later", to, "default", switchboard.PurposeOTP)

	v, err := o.Store.SendView(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Message.ID != m.ID || v.Message.To != to || v.Message.State != switchboard.MessageQueued || v.Message.Body != m.Body {
		t.Errorf("message %+v, want %s as stored", v.Message, m.ID)
	}
	if v.Suppressed || v.Suppression != "" || v.Sticky != "" {
		t.Errorf("suppressed %v (%q), sticky %q; want neither", v.Suppressed, v.Suppression, v.Sticky)
	}
	earlier := slices.Clone(v.EarlierUnsent)
	slices.Sort(earlier)
	if want := []switchboard.Purpose{switchboard.PurposeMarketing, switchboard.PurposeOTP}; !slices.Equal(earlier, want) {
		t.Errorf("earlier unsent %q, want %q", earlier, want)
	}

	if err := o.Store.Suppress(ctx, m.AccountSID, to, "STOP"); err != nil {
		t.Fatal(err)
	}
	if err := o.Store.SetStickySender(ctx, "default", to, "+15559301"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{otp.ID, marketing.ID} {
		if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: id, Attempts: 1, State: switchboard.MessageFailed}); err != nil {
			t.Fatal(err)
		}
	}
	if v, err = o.Store.SendView(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if !v.Suppressed || v.Suppression != "STOP" || v.Sticky != "+15559301" || len(v.EarlierUnsent) != 0 {
		t.Errorf("suppressed %v (%q), sticky %q, earlier unsent %q; want STOP, +15559301 and none", v.Suppressed, v.Suppression, v.Sticky, v.EarlierUnsent)
	}
	if _, err := o.Store.SendView(ctx, "missing"); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("SendView of an unknown message: %v, want ErrNotFound", err)
	}
}

func testOutboundNotFound(t *testing.T, o Opened) {
	ctx := context.Background()
	if _, err := o.Store.OutboundMessage(ctx, "missing"); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("OutboundMessage: %v", err)
	}
	if _, err := o.Store.OutboundMessageByKey(ctx, "missing"); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("OutboundMessageByKey: %v", err)
	}
	if _, err := o.Store.OutboundMessageBySID(ctx, "AC1", "SMmissing"); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("OutboundMessageBySID: %v", err)
	}
	if _, err := o.Store.OutboundMessageBySID(ctx, "AC1", ""); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("OutboundMessageBySID of the empty SID: %v", err)
	}
	if h, err := o.Store.MessageHistory(ctx, "missing"); err != nil || len(h) != 0 {
		t.Errorf("MessageHistory: %v %v", h, err)
	}
}

func testTemplate(t *testing.T, o Opened) {
	ctx := context.Background()
	a := NewMessage("tpl-a", "+15550001", base)
	a.Template = "otp.login:v2"
	a.PayloadHash = switchboard.Payload{To: a.To, Body: a.Body, MediaURLs: a.MediaURLs, Pool: a.Pool, From: a.From, Purpose: a.Purpose, Template: a.Template}.Hash()
	createMessage(t, o.Store, a)
	createMessage(t, o.Store, NewMessage("tpl-b", "+15550001", base))
	got, err := o.Store.OutboundMessage(ctx, a.ID)
	if err != nil || got.Template != "otp.login:v2" {
		t.Fatalf("template round trip: %+v, %v", got, err)
	}
	page, err := o.Store.ListOutboundMessages(ctx, switchboard.OutboundFilter{Template: "otp.login:v2"})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != a.ID {
		t.Errorf("list by template: %+v, %v", page, err)
	}
	bad := NewMessage("tpl-bad", "+15550001", base)
	bad.Template = "has space"
	if _, err := o.Store.CreateMessage(ctx, bad); !errors.Is(err, switchboard.ErrInvalid) {
		t.Errorf("create with a bad template: %v, want ErrInvalid", err)
	}
}

func testReplayMessage(t *testing.T, o Opened) {
	ctx := context.Background()
	if _, err := o.Store.ReplayMessage(ctx, "missing"); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("replay of an unknown message: %v, want ErrNotFound", err)
	}
	// Refused by Twilio: replayable.
	m := NewMessage("replay-1", "+15550001", base)
	createMessage(t, o.Store, m)
	if _, err := o.Store.ReplayMessage(ctx, m.ID); !errors.Is(err, switchboard.ErrConflict) {
		t.Errorf("replay of a queued message: %v, want ErrConflict", err)
	}
	if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 8, State: switchboard.MessageFailed,
		ErrorCode: 20429, Error: "out of attempts", At: base.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	got, err := o.Store.ReplayMessage(ctx, m.ID)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if got.State != switchboard.MessageQueued || got.Attempts != 0 || got.ReplayedAt.Before(before) ||
		got.ErrorCode != 20429 || got.LastError != "out of attempts" {
		t.Errorf("replayed: %+v", got)
	}
	if stored, err := o.Store.OutboundMessage(ctx, m.ID); err != nil || stored.State != switchboard.MessageQueued ||
		!stored.ReplayedAt.Equal(got.ReplayedAt) || stored.Attempts != 0 {
		t.Errorf("replay not stored: %+v, %v", stored, err)
	}
	js := sendJobs(t, o, m.ID)
	if len(js) != 2 || js[1].Args.Attempts != 0 {
		t.Errorf("send jobs after replay: %+v, want a new one carrying attempt count 0", js)
	}
	hist, err := o.Store.MessageHistory(ctx, m.ID)
	if err != nil || len(hist) != 1 || hist[0].Status != switchboard.StatusReplayed || hist[0].Source != switchboard.SourceReplay {
		t.Errorf("history after replay: %+v, %v", hist, err)
	}
	// Replaying twice is refused: it is queued now.
	if _, err := o.Store.ReplayMessage(ctx, m.ID); !errors.Is(err, switchboard.ErrConflict) {
		t.Errorf("second replay: %v, want ErrConflict", err)
	}

	// Accepted by Twilio, then failed by the carrier: never replayed.
	c := NewMessage("replay-2", "+15550002", base)
	createMessage(t, o.Store, c)
	if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: c.ID, Attempts: 1, State: switchboard.MessageSent,
		TwilioSID: "SMreplay2", TwilioStatus: "queued"}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Store.UpdateMessageStatus(ctx, switchboard.StatusUpdate{AccountSID: "AC1", TwilioSID: "SMreplay2", Status: "failed",
		ErrorCode: 30003, Source: "callback"}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Store.ReplayMessage(ctx, c.ID); !errors.Is(err, switchboard.ErrConflict) {
		t.Errorf("replay of a message Twilio accepted: %v, want ErrConflict", err)
	}
	if got, _ := o.Store.OutboundMessage(ctx, c.ID); got.State != switchboard.MessageFailed || len(sendJobs(t, o, c.ID)) != 1 {
		t.Errorf("a refused replay changed the message: %+v", got)
	}
}

func testEarlierUnsent(t *testing.T, o Opened) {
	ctx := context.Background()
	all := []switchboard.Purpose{switchboard.PurposeOTP, switchboard.PurposeTransactional, switchboard.PurposeMarketing}
	first := NewMessage("fifo-1", "+15550001", base)
	first.Purpose = switchboard.PurposeMarketing
	first.PayloadHash = switchboard.Payload{To: first.To, Body: first.Body, MediaURLs: first.MediaURLs, Pool: first.Pool, From: first.From, Purpose: first.Purpose}.Hash()
	second := NewMessage("fifo-2", "+15550001", base)
	other := NewMessage("fifo-other", "+15550002", base) // another recipient
	third := NewMessage("fifo-3", "+15550001", base)
	for _, m := range []*switchboard.OutboundMessage{first, second, other, third} {
		createMessage(t, o.Store, m)
	}
	earlier := func(m *switchboard.OutboundMessage, purposes []switchboard.Purpose) string {
		t.Helper()
		e, err := o.Store.EarlierUnsent(ctx, "default", m.To, m.ID, purposes)
		if errors.Is(err, switchboard.ErrNotFound) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return e.IdempotencyKey
	}
	if got := earlier(first, all); got != "" {
		t.Errorf("earlier than the first: %q", got)
	}
	if got := earlier(third, all); got != "fifo-1" {
		t.Errorf("earlier than the third: %q, want the oldest, fifo-1", got)
	}
	if got := earlier(other, all); got != "" {
		t.Errorf("another recipient's: %q", got)
	}
	// Purposes filter: an OTP-and-transactional view skips marketing.
	if got := earlier(third, all[:2]); got != "fifo-2" {
		t.Errorf("earlier non-marketing than the third: %q, want fifo-2", got)
	}
	// Sending still counts; sent and failed do not.
	if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: first.ID, Attempts: 1, State: switchboard.MessageSending, From: "+15559001"}); err != nil {
		t.Fatal(err)
	}
	if got := earlier(third, all); got != "fifo-1" {
		t.Errorf("a sending message no longer counts: %q", got)
	}
	if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: first.ID, Attempts: 1, State: switchboard.MessageSent, TwilioSID: "SMfifo1"}); err != nil {
		t.Fatal(err)
	}
	if err := o.Store.RecordSend(ctx, switchboard.SendResult{MessageID: second.ID, Attempts: 1, State: switchboard.MessageFailed, ErrorCode: 21211}); err != nil {
		t.Fatal(err)
	}
	if got := earlier(third, all); got != "" {
		t.Errorf("after the earlier ones were sent or failed: %q", got)
	}
	if _, err := o.Store.EarlierUnsent(ctx, "other-pool", third.To, third.ID, all); !errors.Is(err, switchboard.ErrNotFound) {
		t.Errorf("another pool: %v, want ErrNotFound", err)
	}
}

func testSenderHeartbeat(t *testing.T, o Opened) {
	ctx := context.Background()
	ttl := 5 * time.Second
	beat := func(node string, at time.Time) int {
		t.Helper()
		n, err := o.Store.SenderHeartbeat(ctx, node, at, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := beat("a", base); n != 1 {
		t.Errorf("one node: %d alive", n)
	}
	if n := beat("b", base.Add(time.Second)); n != 2 {
		t.Errorf("two nodes: %d alive", n)
	}
	if n := beat("a", base.Add(2*time.Second)); n != 2 {
		t.Errorf("a beats again: %d alive, want 2", n)
	}
	// b falls silent: forgotten once its last beat is older than ttl.
	if n := beat("a", base.Add(time.Second+ttl+time.Millisecond)); n != 1 {
		t.Errorf("after b fell silent: %d alive, want 1", n)
	}
}
