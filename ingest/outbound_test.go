package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/ingest"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/metrics/metricstest"
	"github.com/switchboard-dev/switchboard/sim"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Intake's follow-ups for outbound messages (Options.Outbound): status
// callbacks update the message they are about, inbound keywords opt their
// sender out or back in. Each test drives intake over HTTP, with
// hand-signed requests or the simulator, against a real SQLite store.

const (
	obSender  = "+14155550001" // the pool's number
	obHandset = "+14155550177" // the recipient
	obPool    = "alerts"
	obBody    = "your code is 123456"
)

// obClock is a settable clock: each request's receipt time is what it says.
type obClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *obClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *obClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// obLogs collects a handler's log lines.
type obLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *obLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *obLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type obFixture struct {
	*fixture // store, server; send signs and posts a webhook
	h        *ingest.Handler
	metrics  *metrics.Metrics
	clock    *obClock
	logs     *obLogs
	t0       time.Time
}

type obOptions struct {
	off  bool                                      // Options.Outbound false
	wrap func(switchboard.Store) switchboard.Store // a store in front of the real one
	gate func(http.Handler) http.Handler           // wraps the handler
	now  func(*obClock) func() time.Time           // default: the settable clock
	// after is Options.After; default: at once, so that a callback for an
	// unknown SID runs its retries without waiting.
	after       func(time.Duration) <-chan time.Time
	statusRetry time.Duration // Options.StatusRetry
	lookup      time.Duration // Options.StatusWebhookLookup
}

// atOnce is an Options.After that does not wait.
func atOnce(time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

func newOutboundFixture(t *testing.T, o obOptions) *obFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sb.db")
	st, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var store switchboard.Store = st
	if o.wrap != nil {
		store = o.wrap(st)
	}
	f := &obFixture{metrics: metrics.New(), logs: &obLogs{}, t0: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	f.clock = &obClock{t: f.t0}
	now := f.clock.now
	if o.now != nil {
		now = o.now(f.clock)
	}
	if o.after == nil {
		o.after = atOnce
	}
	f.h = ingest.New(ingest.Options{
		Store:               store,
		PublicURL:           public,
		MaxBodyBytes:        4096,
		AckTimeout:          5 * time.Second,
		Routes:              obRoutes(),
		Metrics:             f.metrics,
		Logger:              slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:                 now,
		Outbound:            !o.off,
		After:               o.after,
		StatusRetry:         o.statusRetry,
		StatusWebhookLookup: o.lookup,
	})
	var h http.Handler = f.h
	if o.gate != nil {
		h = o.gate(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		f.h.Wait()
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	f.fixture = &fixture{store: st, srv: srv, path: path}
	t.Cleanup(func() {
		// The repository never logs phone numbers or message bodies.
		logs := f.logs.String()
		for _, secret := range []string{obSender, obHandset, strings.TrimPrefix(obHandset, "+"), obBody, "hello there", "+1415555"} {
			if strings.Contains(logs, secret) {
				t.Errorf("the logs carry %q:\n%s", secret, logs)
			}
		}
	})
	return f
}

// obRoutes are the fixture's routes, both of account.
func obRoutes() []ingest.Route {
	return []ingest.Route{
		{Path: "/sms", AccountSID: account, Tokens: []string{token}, TwiML: []byte("<Response/>")},
		{Path: "/status", AccountSID: account, Tokens: []string{token}},
	}
}

// at sets the receipt time of the next request to t0+d.
func (f *obFixture) at(d time.Duration) time.Time {
	f.clock.set(f.t0.Add(d))
	return f.t0.Add(d)
}

// obTemplate is the template of the messages sentMessage stores: the
// status metrics are broken down by it.
const obTemplate = "receipt.v1"

// sentMessage stores an outbound message created at t0 and accepted by
// Twilio, as the send path records it, at t0+1s with sid.
func (f *obFixture) sentMessage(t *testing.T, sid string) *switchboard.OutboundMessage {
	t.Helper()
	return f.sentMessageOf(t, account, sid)
}

// sentMessageOf is sentMessage for a message of acct.
func (f *obFixture) sentMessageOf(t *testing.T, acct, sid string) *switchboard.OutboundMessage {
	t.Helper()
	ctx := context.Background()
	m := &switchboard.OutboundMessage{
		ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: "key-" + sid, AccountSID: acct, Pool: obPool,
		Purpose: switchboard.PurposeTransactional, To: obHandset, Body: obBody, CreatedAt: f.t0, Template: obTemplate,
		PayloadHash: switchboard.Payload{To: obHandset, Body: obBody, Pool: obPool, Purpose: switchboard.PurposeTransactional, Template: obTemplate}.Hash(),
	}
	if created, err := f.store.CreateMessage(ctx, m); err != nil || !created {
		t.Fatalf("create message: created %v, %v", created, err)
	}
	if err := f.store.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: switchboard.MessageSent,
		From: obSender, TwilioSID: sid, TwilioStatus: "queued", At: f.t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	return f.message(t, m.ID)
}

func (f *obFixture) message(t *testing.T, id string) *switchboard.OutboundMessage {
	t.Helper()
	m, err := f.store.OutboundMessage(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *obFixture) history(t *testing.T, id string) []switchboard.StatusChange {
	t.Helper()
	h, err := f.store.MessageHistory(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// statusCallback is Twilio's status callback of an outbound message, as
// Twilio signs it; extra holds more parameters, in name, value pairs.
func statusCallback(sid, status string, extra ...string) webhook {
	v := url.Values{
		"MessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {account}, "From": {obSender}, "To": {obHandset},
		"MessageStatus": {status}, "SmsStatus": {status}, "ApiVersion": {"2010-04-01"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return webhook{path: "/status", body: v.Encode()}
}

// inbound is an inbound message webhook from a handset.
func inbound(sid, from, body string) webhook {
	v := url.Values{
		"MessageSid": {sid}, "SmsMessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {account}, "From": {from},
		"To": {obSender}, "Body": {body}, "NumMedia": {"0"}, "SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"},
	}
	return webhook{path: "/sms", body: v.Encode()}
}

// post sends w and fails unless intake answered it as ack mode does: an
// empty 200 for a status callback, the route's TwiML for a message.
func (f *obFixture) post(t *testing.T, w webhook) {
	t.Helper()
	resp, body := f.send(t, w)
	want := ""
	if w.path == "/sms" {
		want = "<Response/>"
	}
	if resp.StatusCode != http.StatusOK || body != want {
		t.Fatalf("%s answered %d %q, want 200 %q", w.path, resp.StatusCode, body, want)
	}
}

// done waits for the follow-ups of every webhook answered so far.
func (f *obFixture) done() { f.h.Wait() }

type change struct {
	status  string
	code    int
	at      time.Duration // after t0
	applied bool
}

func (f *obFixture) checkHistory(t *testing.T, id string, want ...change) {
	t.Helper()
	got := f.history(t, id)
	if len(got) != len(want) {
		t.Fatalf("history has %d changes, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Status != w.status || g.ErrorCode != w.code || !g.At.Equal(f.t0.Add(w.at)) || g.Applied != w.applied || g.Source != "callback" {
			t.Errorf("history[%d] = %+v, want %+v at t0+%v from callback", i, g, w, w.at)
		}
	}
}

func (f *obFixture) statusCount(t *testing.T, status, code string) float64 {
	t.Helper()
	m := metricstest.Sample(t, f.metrics, "switchboard_outbound_status_total", "pool", obPool, "purpose", "transactional", "template", obTemplate,
		"status", status, "code", code)
	return m.GetCounter().GetValue() // 0 for nil
}

// observed returns the sample count and sum of a latency histogram of the
// pool.
func (f *obFixture) observed(t *testing.T, name string) (uint64, float64) {
	t.Helper()
	m := metricstest.Sample(t, f.metrics, name, "pool", obPool)
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

func (f *obFixture) suppressed(t *testing.T, number string) bool {
	t.Helper()
	return f.suppressedIn(t, account, number)
}

func (f *obFixture) suppressedIn(t *testing.T, acct, number string) bool {
	t.Helper()
	ok, err := f.store.Suppressed(context.Background(), acct, number)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func (f *obFixture) events(t *testing.T, sid string) []*switchboard.Event {
	t.Helper()
	page, err := f.store.ListEvents(context.Background(), switchboard.EventFilter{SID: sid})
	if err != nil {
		t.Fatal(err)
	}
	return page.Items
}

func TestStatusCallbacksTrackAnOutboundMessage(t *testing.T) {
	f := newOutboundFixture(t, obOptions{})
	const sid = "SM00000000000000000000000000000001"
	m := f.sentMessage(t, sid)

	f.at(3 * time.Second)
	f.post(t, statusCallback(sid, "sent"))
	f.done()
	if got := f.message(t, m.ID); got.State != switchboard.MessageSent || got.TwilioStatus != "sent" {
		t.Fatalf("after sent: %s/%s, want sent/sent", got.State, got.TwilioStatus)
	}
	delivered := f.at(10 * time.Second)
	f.post(t, statusCallback(sid, "delivered"))
	f.done()

	got := f.message(t, m.ID)
	if got.State != switchboard.MessageDelivered || got.TwilioStatus != "delivered" || got.ErrorCode != 0 ||
		!got.DeliveredAt.Equal(delivered) || !got.SentAt.Equal(f.t0.Add(time.Second)) {
		t.Errorf("message = %+v, want delivered at %v, sent at t0+1s", got, delivered)
	}
	f.checkHistory(t, m.ID,
		change{status: "sent", at: 3 * time.Second, applied: true},
		change{status: "delivered", at: 10 * time.Second, applied: true})

	// The callbacks are events like any other, on their way to the app.
	evs := f.events(t, sid)
	if len(evs) != 2 {
		t.Fatalf("%d events for %s, want 2", len(evs), sid)
	}
	for _, ev := range evs {
		if ev.Kind != switchboard.KindMessageStatus || ev.State != switchboard.StatePending {
			t.Errorf("event %s: %s %s, want a pending message-status", ev.ID, ev.Kind, ev.State)
		}
	}

	if n := f.statusCount(t, "sent", "0"); n != 1 {
		t.Errorf("status sent counted %v times, want 1", n)
	}
	if n := f.statusCount(t, "delivered", "0"); n != 1 {
		t.Errorf("status delivered counted %v times, want 1", n)
	}
	if n, sum := f.observed(t, "switchboard_outbound_sent_seconds"); n != 1 || sum != 3 {
		t.Errorf("created→sent: %d samples summing %vs, want 1 of 3s", n, sum)
	}
	if n, sum := f.observed(t, "switchboard_outbound_delivered_seconds"); n != 1 || sum != 9 {
		t.Errorf("sent→delivered: %d samples summing %vs, want 1 of 9s", n, sum)
	}
}

func TestOutOfOrderAndDuplicatedCallbacksEndDelivered(t *testing.T) {
	f := newOutboundFixture(t, obOptions{})
	const sid = "SM00000000000000000000000000000002"
	m := f.sentMessage(t, sid)

	f.at(5 * time.Second)
	f.post(t, statusCallback(sid, "delivered"))
	f.at(6 * time.Second)
	f.post(t, statusCallback(sid, "sent")) // overtaken
	f.at(7 * time.Second)
	f.post(t, statusCallback(sid, "sending")) // older still
	f.at(8 * time.Second)
	// Twilio's retry of the first delivered callback: a duplicate at
	// intake, answered like the original and not acted on again.
	f.post(t, statusCallback(sid, "delivered"))
	f.at(9 * time.Second)
	// The same signed callback again under a fresh idempotency token (a
	// replay: no signature covers the header): a duplicate too, never a
	// second event, delivery or status change.
	f.post(t, webhook{path: "/status", body: statusCallback(sid, "delivered").body, idemToken: "fresh-token"})
	f.done()

	got := f.message(t, m.ID)
	if got.State != switchboard.MessageDelivered || got.TwilioStatus != "delivered" || !got.DeliveredAt.Equal(f.t0.Add(5*time.Second)) {
		t.Errorf("message = %+v, want delivered at t0+5s", got)
	}
	f.checkHistory(t, m.ID,
		change{status: "delivered", at: 5 * time.Second, applied: true},
		change{status: "sent", at: 6 * time.Second},
		change{status: "sending", at: 7 * time.Second})
	if n := len(f.events(t, sid)); n != 3 {
		t.Errorf("%d events stored, want 3 (the retry and the replay are duplicates)", n)
	}

	if n := f.statusCount(t, "delivered", "0"); n != 1 {
		t.Errorf("status delivered counted %v times, want 1", n)
	}
	for _, s := range []string{"sent", "sending"} {
		if n := f.statusCount(t, s, "0"); n != 0 {
			t.Errorf("status %s counted %v times, want 0: it was not applied", s, n)
		}
	}
	if n, sum := f.observed(t, "switchboard_outbound_delivered_seconds"); n != 1 || sum != 4 {
		t.Errorf("sent→delivered: %d samples summing %vs, want 1 of 4s", n, sum)
	}
	if n, _ := f.observed(t, "switchboard_outbound_sent_seconds"); n != 0 {
		t.Errorf("created→sent observed %d times, want none: Twilio's sent never applied", n)
	}
}

func TestUndeliveredKeepsItsCode(t *testing.T) {
	f := newOutboundFixture(t, obOptions{})
	const sid = "SM00000000000000000000000000000003"
	m := f.sentMessage(t, sid)

	f.at(2 * time.Second)
	f.post(t, statusCallback(sid, "sent"))
	f.at(4 * time.Second)
	f.post(t, statusCallback(sid, "undelivered", "ErrorCode", "30003"))
	f.at(6 * time.Second)
	f.post(t, statusCallback(sid, "delivered")) // the first outcome is kept
	f.done()

	got := f.message(t, m.ID)
	if got.State != switchboard.MessageUndelivered || got.ErrorCode != 30003 || !got.DeliveredAt.IsZero() {
		t.Errorf("message = %+v, want undelivered with 30003, never delivered", got)
	}
	f.checkHistory(t, m.ID,
		change{status: "sent", at: 2 * time.Second, applied: true},
		change{status: "undelivered", code: 30003, at: 4 * time.Second, applied: true},
		change{status: "delivered", at: 6 * time.Second})
	if n := f.statusCount(t, "undelivered", "30003"); n != 1 {
		t.Errorf("status undelivered 30003 counted %v times, want 1", n)
	}
	if n, _ := f.observed(t, "switchboard_outbound_delivered_seconds"); n != 0 {
		t.Errorf("sent→delivered observed %d times, want none", n)
	}
}

func TestCallbackOfAnUnknownMessageIsOnlyStored(t *testing.T) {
	f := newOutboundFixture(t, obOptions{})
	m := f.sentMessage(t, "SM00000000000000000000000000000004")
	const unknown = "SM0000000000000000000000000000dead"

	f.post(t, statusCallback(unknown, "delivered"))
	f.done()

	if evs := f.events(t, unknown); len(evs) != 1 || evs[0].Kind != switchboard.KindMessageStatus {
		t.Fatalf("events for the unknown SID: %+v, want one message-status", evs)
	}
	if h := f.history(t, m.ID); len(h) != 0 {
		t.Errorf("another message's history changed: %+v", h)
	}
	if strings.Contains(f.logs.String(), `"level":"ERROR"`) {
		t.Errorf("an unknown SID logged an error:\n%s", f.logs)
	}
}

func TestInboundKeywordsOptOutAndIn(t *testing.T) {
	f := newOutboundFixture(t, obOptions{})
	numbers := map[string]string{ // body → the handset that sends it
		"STOP":           "+14155550101",
		"stop":           "+14155550102",
		"  Unsubscribe ": "+14155550103",
		"hello there":    "+14155550104",
		"STOP please":    "+14155550105",
	}
	i := 0
	for body, from := range numbers {
		i++
		f.at(time.Duration(i) * time.Second)
		f.post(t, inbound("SM1000000000000000000000000000000"+string(rune('0'+i)), from, body))
	}
	// Unsigned: refused, and opts nobody out.
	bad := inbound("SM20000000000000000000000000000001", "+14155550106", "STOP")
	bad.signature = "forged"
	if resp, _ := f.send(t, bad); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged STOP answered %d, want 403", resp.StatusCode)
	}
	f.done()

	for body, from := range numbers {
		want := twilio.MatchOptKeyword(body) == twilio.OptOut
		if got := f.suppressed(t, from); got != want {
			t.Errorf("after %q: suppressed %v, want %v", body, got, want)
		}
	}
	if f.suppressed(t, "+14155550106") {
		t.Error("a forged STOP opted its sender out")
	}
	if n := len(f.events(t, "SM10000000000000000000000000000001")); n != 1 {
		t.Errorf("%d events for an opt-out message, want 1: it goes to the app like any message", n)
	}

	f.at(time.Minute)
	f.post(t, inbound("SM30000000000000000000000000000001", "+14155550101", "START"))
	f.at(2 * time.Minute)
	f.post(t, inbound("SM30000000000000000000000000000002", "+14155550102", " yes"))
	f.done()
	for _, n := range []string{"+14155550101", "+14155550102"} {
		if f.suppressed(t, n) {
			t.Errorf("%s still suppressed after opting back in", n)
		}
	}
	if !f.suppressed(t, "+14155550103") {
		t.Error("an opt-in of one sender touched another")
	}
}

func TestKeywordsApplyInTheOrderReceived(t *testing.T) {
	f := newOutboundFixture(t, obOptions{})
	const from = "+14155550111"
	f.at(10 * time.Second)
	f.post(t, inbound("SM40000000000000000000000000000001", from, "STOP"))
	f.done()
	// A START received before the STOP but acted on after it (its
	// follow-up ran late) must not undo the STOP.
	f.at(5 * time.Second)
	f.post(t, inbound("SM40000000000000000000000000000002", from, "START"))
	f.done()
	if !f.suppressed(t, from) {
		t.Error("a START received before the STOP undid it")
	}
	f.at(20 * time.Second)
	f.post(t, inbound("SM40000000000000000000000000000003", from, "START"))
	f.done()
	if f.suppressed(t, from) {
		t.Error("a START received after the STOP did not undo it")
	}
}

func TestOutboundOffTouchesNothing(t *testing.T) {
	on := newOutboundFixture(t, obOptions{})
	off := newOutboundFixture(t, obOptions{off: true})
	const sid = "SM00000000000000000000000000000005"
	for _, f := range []*obFixture{on, off} {
		f.sentMessage(t, sid)
	}
	requests := []webhook{
		statusCallback(sid, "delivered"),
		statusCallback(sid, "undelivered", "ErrorCode", "30003"),
		inbound("SM50000000000000000000000000000001", obHandset, "STOP"),
		inbound("SM50000000000000000000000000000002", obHandset, "hello there"),
	}
	for _, w := range requests {
		a, aBody := on.send(t, w)
		b, bBody := off.send(t, w)
		if a.StatusCode != b.StatusCode || aBody != bBody || a.Header.Get("Content-Type") != b.Header.Get("Content-Type") ||
			a.Header.Get("Content-Length") != b.Header.Get("Content-Length") {
			t.Errorf("%s: answered %d %q %q with the option on, %d %q %q off", w.path,
				a.StatusCode, a.Header.Get("Content-Type"), aBody, b.StatusCode, b.Header.Get("Content-Type"), bBody)
		}
	}
	on.done()
	off.done()

	m, err := off.store.OutboundMessageBySID(context.Background(), account, sid)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != switchboard.MessageSent || m.TwilioStatus != "queued" {
		t.Errorf("off: message moved to %s/%s", m.State, m.TwilioStatus)
	}
	if h := off.history(t, m.ID); len(h) != 0 {
		t.Errorf("off: history %+v, want none", h)
	}
	if off.suppressed(t, obHandset) {
		t.Error("off: STOP suppressed its sender")
	}
	if n := len(off.events(t, "")); n != 4 {
		t.Errorf("off: %d events, want 4", n)
	}
	if metricstest.Sample(t, off.metrics, "switchboard_outbound_status_total") != nil {
		t.Error("off: outbound statuses counted")
	}
	// And on, the same requests did act.
	if !on.suppressed(t, obHandset) {
		t.Error("on: STOP did not suppress its sender")
	}
}

// otherAccount is an account with no route here: its messages and
// opt-outs share the store with account's.
const otherAccount = "AC00000000000000000000000000000002"

// A status callback on account's route, signed with its token and naming
// account in its body, but carrying the SID of another account's message,
// moves nothing: the message keeps its state and history, and its status
// webhook gets nothing. The callback itself is stored and goes to the
// route's app, as any callback for a message not sent through Switchboard.
func TestStatusCallbackCannotMoveAnotherAccountsMessage(t *testing.T) {
	f := newOutboundFixture(t, obOptions{})
	const sid = "SM0000000000000000000000000000b001"
	theirs := f.sentMessageOf(t, otherAccount, sid)
	// And one with a status webhook.
	const hookSID = "SM0000000000000000000000000000b002"
	hooked := &switchboard.OutboundMessage{ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: "theirs-hooked",
		AccountSID: otherAccount, Pool: obPool, Purpose: switchboard.PurposeTransactional, To: obHandset, Body: obBody,
		CreatedAt: f.t0, StatusWebhook: obWebhook, PayloadHash: "hash-theirs-hooked"}
	if created, err := f.store.CreateMessage(context.Background(), hooked); err != nil || !created {
		t.Fatalf("create message: created %v, %v", created, err)
	}
	f.recordSID(t, hooked, hookSID)

	steps := []webhook{
		statusCallback(sid, "read"),
		statusCallback(sid, "undelivered", "ErrorCode", "30003"),
		statusCallback(hookSID, "delivered"),
	}
	for i, w := range steps {
		f.at(time.Duration(i+2) * time.Second)
		f.post(t, w)
	}
	f.done()

	for _, m := range []*switchboard.OutboundMessage{f.message(t, theirs.ID), f.message(t, hooked.ID)} {
		if m.State != switchboard.MessageSent || m.TwilioStatus != "queued" || m.ErrorCode != 0 || !m.DeliveredAt.IsZero() {
			t.Errorf("another account's message %s moved to %s/%s code %d", m.ID, m.State, m.TwilioStatus, m.ErrorCode)
		}
		if h := f.history(t, m.ID); len(h) != 0 {
			t.Errorf("another account's message %s has history %+v", m.ID, h)
		}
	}
	own, fanout := f.split(t, hookSID)
	if len(own) != 1 || len(fanout) != 0 {
		t.Errorf("callback of another account's message: %d events, %d for its status webhook; want 1 and none", len(own), len(fanout))
	}
	if n := f.statusCount(t, "read", "0"); n != 0 {
		t.Errorf("status read counted %v times, want 0", n)
	}
}

// Keywords on account's route change account's suppression list alone:
// another account's entry for the same handset stays as it was.
func TestKeywordsChangeOnlyTheRoutesAccount(t *testing.T) {
	f := newOutboundFixture(t, obOptions{})
	const optedOutThere, subscribedThere = "+14155550121", "+14155550122"
	if err := f.store.Suppress(context.Background(), otherAccount, optedOutThere, "STOP"); err != nil {
		t.Fatal(err)
	}
	f.at(time.Second)
	f.post(t, inbound("SM7000000000000000000000000000b001", optedOutThere, "START"))
	f.at(2 * time.Second)
	f.post(t, inbound("SM7000000000000000000000000000b002", subscribedThere, "STOP"))
	f.done()

	for _, tc := range []struct {
		acct, number string
		want         bool
	}{
		{otherAccount, optedOutThere, true},    // START elsewhere does not opt back in here
		{otherAccount, subscribedThere, false}, // STOP elsewhere does not opt out here
		{account, optedOutThere, false},
		{account, subscribedThere, true},
	} {
		if got := f.suppressedIn(t, tc.acct, tc.number); got != tc.want {
			t.Errorf("%s suppressed for %s: %v, want %v", tc.number, tc.acct, got, tc.want)
		}
	}
}

// failingStore refuses every outbound write intake's follow-ups make.
type failingStore struct {
	switchboard.Store
}

var errStoreDown = errors.New("store down")

func (s failingStore) UpdateMessageStatus(context.Context, switchboard.StatusUpdate) (*switchboard.OutboundMessage, error) {
	return nil, errStoreDown
}

func (s failingStore) Suppress(_ context.Context, accountSID, number, _ string) error {
	return errors.New("suppress " + number + " for " + accountSID + ": " + errStoreDown.Error()) // as the stores say it
}

func TestFollowUpStoreErrorsAreLoggedNotAnswered(t *testing.T) {
	f := newOutboundFixture(t, obOptions{wrap: func(s switchboard.Store) switchboard.Store { return failingStore{s} }})
	const sid = "SM00000000000000000000000000000006"
	m := f.sentMessage(t, sid)

	f.post(t, statusCallback(sid, "delivered"))
	f.post(t, inbound("SM60000000000000000000000000000001", obHandset, "STOP"))
	f.done()

	if got := f.message(t, m.ID); got.State != switchboard.MessageSent {
		t.Errorf("message moved to %s through a failing store", got.State)
	}
	if n := len(f.events(t, "")); n != 2 {
		t.Errorf("%d events stored, want 2: the webhooks are stored whatever the follow-ups do", n)
	}
	logs := f.logs.String()
	for _, want := range []string{"outbound: apply status callback", "outbound: apply inbound keyword", "[number]"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %q:\n%s", want, logs)
		}
	}
}

// TestSimulatorCallbacksAndKeywords lets the simulator play Twilio: it
// sends a message created through its REST create with intake's status
// route as StatusCallback, sends every status callback twice (fresh
// idempotency tokens: the second copy is a duplicate all the same, since
// deduplication keys on signed content), and delivers a handset's STOP to
// the SMS route.
func TestSimulatorCallbacksAndKeywords(t *testing.T) {
	open := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(open) }) }
	f := newOutboundFixture(t, obOptions{
		now: func(*obClock) func() time.Time { return time.Now },
		// Callbacks wait until the store knows the message's SID, as they
		// would behind a send path that records it first.
		gate: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				<-open
				h.ServeHTTP(w, r)
			})
		},
	})
	t.Cleanup(release) // before the server closes: it waits for gated requests
	tw, err := sim.New(sim.Config{
		Seed: 7,
		Accounts: []sim.Account{{SID: account, AuthTokens: []string{token},
			Numbers: []sim.Number{{Number: obSender, Throughput: 100, SMSURL: public + "/sms"}}}},
		Carriers:  []sim.Carrier{{Latency: sim.Latency{Median: 20 * time.Millisecond}}},
		Callbacks: sim.Callbacks{DuplicateRate: 1, DuplicateAfter: 10 * time.Millisecond},
		Tunnels:   map[string]string{public: f.srv.URL},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)

	ctx := context.Background()
	m := &switchboard.OutboundMessage{
		ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: "sim-1", AccountSID: account, Pool: obPool,
		Purpose: switchboard.PurposeTransactional, To: obHandset, Body: obBody,
		PayloadHash: switchboard.Payload{To: obHandset, Body: obBody, Pool: obPool, Purpose: switchboard.PurposeTransactional}.Hash(),
	}
	if _, err := f.store.CreateMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	sent, err := tw.CreateMessage(account, sim.SendParams{From: obSender, To: obHandset, Body: obBody, StatusCallback: public + "/status"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: switchboard.MessageSent,
		From: obSender, TwilioSID: sent.SID, TwilioStatus: sent.Status}); err != nil {
		t.Fatal(err)
	}
	release()

	// sending, sent and delivered, each sent twice, recorded once: the
	// three copies are answered as duplicates.
	deadline := time.Now().Add(waitLimit)
	var history []switchboard.StatusChange
	for {
		history = f.history(t, m.ID)
		dups, err := f.store.ListRequests(ctx, switchboard.RequestFilter{Outcome: switchboard.OutcomeDuplicate})
		if err != nil {
			t.Fatal(err)
		}
		if len(history) >= 3 && len(dups.Items) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history after %v: %+v and %d duplicates, want 3 changes and 3 duplicates", waitLimit, history, len(dups.Items))
		}
		time.Sleep(10 * time.Millisecond) // polling, with a deadline
	}
	got := f.message(t, m.ID)
	if got.State != switchboard.MessageDelivered || got.TwilioStatus != "delivered" || got.DeliveredAt.IsZero() {
		t.Errorf("message = %+v, want delivered", got)
	}
	seen, applied := map[string]int{}, map[string]int{}
	for _, c := range history {
		seen[c.Status]++
		if c.Applied {
			applied[c.Status]++
		}
	}
	for _, s := range []string{"sending", "sent", "delivered"} {
		if seen[s] != 1 || applied[s] > 1 {
			t.Errorf("%s: recorded %d times, applied %d, want once and at most once", s, seen[s], applied[s])
		}
	}
	if applied["delivered"] != 1 {
		t.Errorf("delivered applied %d times, want once", applied["delivered"])
	}

	res, err := tw.ReceiveMessage(t.Context(), sim.InboundMessage{From: "+14155550199", To: obSender, Body: "Stop"})
	if err != nil || res.Webhook == nil || res.Webhook.Error != nil || res.OptOut != "STOP" {
		t.Fatalf("inbound STOP: %+v, %v", res, err)
	}
	deadline = time.Now().Add(waitLimit)
	for !f.suppressed(t, "+14155550199") {
		if time.Now().After(deadline) {
			t.Fatalf("STOP through the simulator not applied within %v", waitLimit)
		}
		time.Sleep(10 * time.Millisecond) // polling, with a deadline
	}
}

func TestKeywordsInFallbackRequestsAndTwilioVerdicts(t *testing.T) {
	f := newOutboundFixture(t, obOptions{})
	// A message Twilio brought to its fallback URL after the primary one
	// failed: still the handset's STOP.
	fb := inbound("SM70000000000000000000000000000001", "+14155550121", "STOP")
	fb.body += "&" + url.Values{"ErrorCode": {"11200"}, "ErrorUrl": {"https://app.example.com/sms"}}.Encode()
	f.post(t, fb)
	// An account's own opt-out keyword, which Twilio's Advanced Opt-Out
	// matched and named in OptOutType.
	own := inbound("SM70000000000000000000000000000002", "+14155550122", "arrête")
	own.body += "&OptOutType=STOP"
	f.post(t, own)
	// HELP changes nothing.
	help := inbound("SM70000000000000000000000000000003", "+14155550123", "HELP")
	help.body += "&OptOutType=HELP"
	f.post(t, help)
	f.done()

	if evs := f.events(t, "SM70000000000000000000000000000001"); len(evs) != 1 || evs[0].Kind != switchboard.KindFallback {
		t.Fatalf("fallback events: %+v", evs)
	}
	for number, want := range map[string]bool{"+14155550121": true, "+14155550122": true, "+14155550123": false} {
		if got := f.suppressed(t, number); got != want {
			t.Errorf("%s suppressed %v, want %v", number, got, want)
		}
	}
}

// queuedMessage stores an outbound message created at t0 whose send is
// under way: Twilio has it, but the send path has not recorded its SID.
func (f *obFixture) queuedMessage(t *testing.T, key string) *switchboard.OutboundMessage {
	t.Helper()
	m := &switchboard.OutboundMessage{
		ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: key, AccountSID: account, Pool: obPool,
		Purpose: switchboard.PurposeTransactional, To: obHandset, Body: obBody, CreatedAt: f.t0, Template: obTemplate,
		PayloadHash: switchboard.Payload{To: obHandset, Body: obBody, Pool: obPool, Purpose: switchboard.PurposeTransactional, Template: obTemplate}.Hash(),
	}
	if created, err := f.store.CreateMessage(context.Background(), m); err != nil || !created {
		t.Fatalf("create message: created %v, %v", created, err)
	}
	return m
}

// recordingAfter is an Options.After that does not wait and keeps the
// waits asked for; at the wait numbered hook (1 for the first) it first
// runs do.
type recordingAfter struct {
	mu    sync.Mutex
	waits []time.Duration
	hook  int
	do    func()
}

func (r *recordingAfter) after(d time.Duration) <-chan time.Time {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	n := len(r.waits)
	r.mu.Unlock()
	if n == r.hook && r.do != nil {
		r.do()
	}
	return atOnce(d)
}

func (r *recordingAfter) got() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.waits...)
}

func ms(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, v := range n {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestCallbackBeforeTheSIDIsRecordedIsRetried(t *testing.T) {
	const sid = "SM00000000000000000000000000000009"
	tests := []struct {
		name        string
		statusRetry time.Duration
		recordAt    int // the wait during which the send path records the SID; 0: never
		wantWaits   []time.Duration
		wantState   switchboard.MessageState
		wantHistory bool
	}{
		{name: "recorded during the first wait", recordAt: 1, wantWaits: ms(25),
			wantState: switchboard.MessageFailed, wantHistory: true},
		{name: "recorded during the fifth wait", recordAt: 5, wantWaits: ms(25, 50, 100, 200, 400),
			wantState: switchboard.MessageFailed, wantHistory: true},
		{name: "never recorded: the waits sum to the default bound", wantWaits: ms(25, 50, 100, 200, 400, 500, 500, 500, 500, 225),
			wantState: switchboard.MessageQueued},
		{name: "a smaller bound", statusRetry: 100 * time.Millisecond, wantWaits: ms(25, 50, 25),
			wantState: switchboard.MessageQueued},
		{name: "recorded after a smaller bound: not applied", statusRetry: 100 * time.Millisecond, recordAt: 4,
			wantWaits: ms(25, 50, 25), wantState: switchboard.MessageSent},
		{name: "no retry", statusRetry: -1, recordAt: 1, wantState: switchboard.MessageSent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ra := &recordingAfter{hook: tt.recordAt}
			f := newOutboundFixture(t, obOptions{after: ra.after, statusRetry: tt.statusRetry})
			m := f.queuedMessage(t, "early-"+sid)
			ra.do = func() {
				// The send path, recording Twilio's answer while the
				// callback waits.
				if err := f.store.RecordSend(context.Background(), switchboard.SendResult{MessageID: m.ID, Attempts: 1,
					State: switchboard.MessageSent, From: obSender, TwilioSID: sid, TwilioStatus: "queued", At: f.t0.Add(time.Second)}); err != nil {
					t.Error(err)
				}
			}

			f.at(2 * time.Second)
			f.post(t, statusCallback(sid, "failed", "ErrorCode", "30008"))
			f.done()
			if tt.recordAt > len(tt.wantWaits) {
				ra.do() // only after the retries: the callback is lost
			}

			if got := ra.got(); !slices.Equal(got, tt.wantWaits) {
				t.Errorf("waits %v, want %v", got, tt.wantWaits)
			}
			got := f.message(t, m.ID)
			if got.State != tt.wantState {
				t.Errorf("message %s, want %s", got.State, tt.wantState)
			}
			if tt.wantHistory {
				if got.ErrorCode != 30008 || got.TwilioStatus != "failed" {
					t.Errorf("message = %+v, want failed with 30008", got)
				}
				f.checkHistory(t, m.ID, change{status: "failed", code: 30008, at: 2 * time.Second, applied: true})
				if n := f.statusCount(t, "failed", "30008"); n != 1 {
					t.Errorf("status failed 30008 counted %v times, want 1", n)
				}
			} else if h := f.history(t, m.ID); len(h) != 0 {
				t.Errorf("history %+v, want none", h)
			}
			if logs := f.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
				t.Errorf("an SID recorded late logged an error:\n%s", logs)
			}
		})
	}
}

func TestWaitContextEndsStatusRetries(t *testing.T) {
	waiting := make(chan struct{}, 1)
	f := newOutboundFixture(t, obOptions{after: func(time.Duration) <-chan time.Time {
		select {
		case waiting <- struct{}{}:
		default:
		}
		return nil // never fires
	}})
	const sid = "SM00000000000000000000000000000010"
	m := f.queuedMessage(t, "early-"+sid)
	f.post(t, statusCallback(sid, "failed", "ErrorCode", "30008"))
	<-waiting // the callback's follow-up is waiting to retry

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.h.WaitContext(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitContext = %v, want context.Canceled", err)
	}
	if got := f.message(t, m.ID); got.State != switchboard.MessageQueued {
		t.Errorf("message %s, want still queued", got.State)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "retries ended by shutdown") {
		t.Errorf("the logs do not say the retries were ended:\n%s", logs)
	}
	if err := f.h.WaitContext(context.Background()); err != nil {
		t.Errorf("WaitContext with nothing under way = %v", err)
	}
}
