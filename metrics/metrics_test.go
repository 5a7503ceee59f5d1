package metrics_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/metrics/metricstest"
	"github.com/switchboard-dev/switchboard/outbound"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Outbound send metrics: outcomes and 429s counted by the send path, and
// queue depth per pool read from the store.

func openStore(t *testing.T) switchboard.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return st
}

func createMessage(t *testing.T, st switchboard.Store, pool string) *switchboard.OutboundMessage {
	t.Helper()
	m := &switchboard.OutboundMessage{
		ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: uuid.NewString(), AccountSID: "AC1", Pool: pool,
		Purpose: switchboard.PurposeTransactional, To: "+14155550177", Body: "hi",
		PayloadHash: switchboard.Payload{To: "+14155550177", Body: "hi", Pool: pool, Purpose: switchboard.PurposeTransactional}.Hash(),
	}
	if created, err := st.CreateMessage(context.Background(), m); err != nil || !created {
		t.Fatalf("create message: created %v, %v", created, err)
	}
	return m
}

func TestSendOutcome(t *testing.T) {
	tests := []struct {
		r    switchboard.SendResult
		want string
	}{
		{switchboard.SendResult{State: switchboard.MessageSending}, ""},
		{switchboard.SendResult{State: switchboard.MessageQueued}, ""}, // put back for pacing
		{switchboard.SendResult{State: switchboard.MessageQueued, Error: "twilio: 429 20429: busy"}, outbound.OutcomeRetry},
		{switchboard.SendResult{State: switchboard.MessageSent, TwilioSID: "SM1"}, outbound.OutcomeSent},
		{switchboard.SendResult{State: switchboard.MessageFailed, ErrorCode: 21610}, outbound.OutcomeFailed},
	}
	for _, tt := range tests {
		if got := outbound.SendOutcome(tt.r); got != tt.want {
			t.Errorf("SendOutcome(%s, error %q) = %q, want %q", tt.r.State, tt.r.Error, got, tt.want)
		}
	}
}

type fakeClient struct{ errs []error }

func (c *fakeClient) Create(context.Context, twilio.CreateParams) (*twilio.RestMessage, error) {
	err := c.errs[0]
	c.errs = c.errs[1:]
	if err != nil {
		return nil, err
	}
	return &twilio.RestMessage{SID: "SM1", Status: "queued"}, nil
}

func (c *fakeClient) List(context.Context, twilio.ListParams) ([]twilio.RestMessage, error) {
	return nil, nil
}

// The send path counts each outcome it records, by pool, and Twilio's
// 429s (HTTP 429, or 20429 in any answer).
func TestSenderCountsOutcomesAnd429s(t *testing.T) {
	st := openStore(t)
	m := metrics.New()
	ctx := context.Background()
	fc := &fakeClient{errs: []error{
		&twilio.RestError{Status: 429},
		&twilio.RestError{Status: 400, Code: twilio.CodeTooManyRequests},
		&twilio.RestError{Status: 503},
		nil,
		&twilio.RestError{Status: 400, Code: 21211},
	}}
	sender, err := outbound.New(st, outbound.Options{Client: fc, Metrics: m, Pools: []outbound.Pool{
		{Name: "alerts", Senders: []string{"+14155550001"}, Rate: 1000},
		{Name: "bulk", Senders: []string{"+14155550002"}, Rate: 1000},
	}})
	if err != nil {
		t.Fatal(err)
	}
	msg := createMessage(t, st, "alerts")
	for attempts := range 4 { // 429, 20429, 503: retried; then sent
		if err := sender.Send(ctx, msg.ID, attempts); err != nil {
			t.Fatal(err)
		}
	}
	if err := sender.Send(ctx, msg.ID, 4); err != nil { // a stale job: nothing recorded
		t.Fatal(err)
	}
	bad := createMessage(t, st, "bulk")
	if err := sender.Send(ctx, bad.ID, 0); err != nil { // 21211: failed
		t.Fatal(err)
	}
	for _, c := range []struct {
		pool, outcome string
		want          float64
	}{
		{"alerts", "retry", 3}, {"alerts", "sent", 1}, {"alerts", "failed", 0}, {"bulk", "failed", 1}, {"bulk", "sent", 0},
	} {
		got := metricstest.Sample(t, m, "switchboard_outbound_sends_total", "pool", c.pool, "outcome", c.outcome).GetCounter().GetValue()
		if got != c.want {
			t.Errorf("sends %s/%s = %v, want %v", c.pool, c.outcome, got, c.want)
		}
	}
	if got := metricstest.Sample(t, m, "switchboard_outbound_429_total", "pool", "alerts").GetCounter().GetValue(); got != 2 {
		t.Errorf("429s of alerts = %v, want 2", got)
	}
	if got := metricstest.Sample(t, m, "switchboard_outbound_429_total", "pool", "bulk").GetCounter().GetValue(); got != 0 {
		t.Errorf("429s of bulk = %v, want 0", got)
	}
}

func TestOutboundQueueDepthPerPool(t *testing.T) {
	st := openStore(t)
	m := metrics.New()
	m.WatchStore(st, slog.New(slog.DiscardHandler), "alerts", "idle")
	createMessage(t, st, "alerts")
	sending := createMessage(t, st, "alerts")
	createMessage(t, st, "gone") // a pool no longer configured
	done := createMessage(t, st, "alerts")
	ctx := context.Background()
	if err := st.RecordSend(ctx, switchboard.SendResult{MessageID: sending.ID, Attempts: 1, State: switchboard.MessageSending}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordSend(ctx, switchboard.SendResult{MessageID: done.ID, Attempts: 1, State: switchboard.MessageSent, TwilioSID: "SM1"}); err != nil {
		t.Fatal(err)
	}
	for pool, want := range map[string]float64{"alerts": 2, "idle": 0, "gone": 1} {
		s := metricstest.Sample(t, m, "switchboard_outbound_queue_depth", "pool", pool)
		if s == nil || s.GetGauge().GetValue() != want {
			t.Errorf("queue depth of %s = %v, want %v", pool, s.GetGauge().GetValue(), want)
		}
	}
}

func TestTemplateLabelsBounded(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	if got := m.Template(""); got != "" {
		t.Errorf("no template: %q", got)
	}
	for i := range metrics.MaxTemplates {
		name := fmt.Sprintf("t%d", i)
		if got := m.Template(name); got != name {
			t.Fatalf("template %d: label %q", i, got)
		}
	}
	if got := m.Template("one-too-many"); got != metrics.OtherTemplate {
		t.Errorf("template past the bound: %q, want %q", got, metrics.OtherTemplate)
	}
	if got := m.Template("t7"); got != "t7" {
		t.Errorf("a template seen before keeps its label: %q", got)
	}
}

// TestPassThroughLabelsBounded: methods, path classes and statuses each
// take a bounded set of label values, whatever the requests were.
func TestPassThroughLabelsBounded(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	for i := range metrics.MaxPassThroughPaths {
		m.ObservePassThrough("GET", fmt.Sprintf("/p%d", i), 200)
	}
	m.ObservePassThrough("GET", "/one-too-many", 200)
	m.ObservePassThrough("GET", "/p7", 404)
	m.ObservePassThrough("BREW", "/p7", 503)
	m.ObservePassThrough("POST", "/p7", 0)
	m.ObservePassThrough("POST", "/p7", 999)
	tests := []struct {
		labels []string
		want   float64
	}{
		{[]string{"method", "GET", "path", "/p0", "status", "2xx"}, 1},
		{[]string{"method", "GET", "path", metrics.OtherPath, "status", "2xx"}, 1},
		{[]string{"method", "GET", "path", "/p7", "status", "4xx"}, 1},
		{[]string{"method", "other", "path", "/p7", "status", "5xx"}, 1},
		{[]string{"method", "POST", "path", "/p7", "status", "error"}, 2},
	}
	for _, tt := range tests {
		s := metricstest.Sample(t, m, "switchboard_passthrough_requests_total", tt.labels...)
		if got := s.GetCounter().GetValue(); got != tt.want {
			t.Errorf("%v = %v, want %v", tt.labels, got, tt.want)
		}
	}
	if s := metricstest.Sample(t, m, "switchboard_passthrough_requests_total", "path", "/one-too-many"); s != nil {
		t.Errorf("a path class past the bound has its own series: %v", s)
	}
	var nilMetrics *metrics.Metrics
	nilMetrics.ObservePassThrough("GET", "/x", 200) // counts nothing, does not panic
}

// The breaker gauge is 1 for a target whose circuit is open or half-open
// and 0 for a closed one, as the deliverer reports them at the scrape.
func TestBreakerGauge(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	states := []switchboard.BreakerState{{Target: "https://a.example", State: "closed"},
		{Target: "https://b.example", State: "open"}, {Target: "https://c.example", State: "half-open"}}
	m.WatchBreakers(func() []switchboard.BreakerState { return states })
	for target, want := range map[string]float64{"https://a.example": 0, "https://b.example": 1, "https://c.example": 1} {
		s := metricstest.Sample(t, m, "switchboard_breaker_open", "target", target)
		if s == nil || s.GetGauge().GetValue() != want {
			t.Errorf("breaker of %s = %v, want %v", target, s.GetGauge().GetValue(), want)
		}
	}
}

// RescuedSoFar reads back what Rescued counted, by kind.
func TestRescuedSoFar(t *testing.T) {
	m := metrics.New()
	if got := m.RescuedSoFar(); len(got) != 0 {
		t.Errorf("before any rescue: %v", got)
	}
	m.Rescued.WithLabelValues("delivery").Add(3)
	m.Rescued.WithLabelValues("send").Inc()
	if got := m.RescuedSoFar(); len(got) != 2 || got["delivery"] != 3 || got["send"] != 1 {
		t.Errorf("rescued %v, want delivery 3 and send 1", got)
	}
}
