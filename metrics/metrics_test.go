package metrics_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/outbound"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Outbound send metrics: outcomes and 429s counted around the send path's
// store and client, and queue depth per pool read from the store.

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
		PayloadHash: switchboard.PayloadHash("+14155550177", "hi", nil, pool, "", switchboard.PurposeTransactional, ""),
	}
	if created, err := st.CreateMessage(context.Background(), m); err != nil || !created {
		t.Fatalf("create message: created %v, %v", created, err)
	}
	return m
}

// metric returns the sample of family name whose labels include labels,
// given as name, value pairs, or nil.
func metric(t *testing.T, m *metrics.Metrics, name string, labels ...string) *dto.Metric {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, s := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range s.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue next
				}
			}
			return s
		}
	}
	return nil
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

func TestObserveStoreCountsAppliedOutcomes(t *testing.T) {
	st := openStore(t)
	m := metrics.New()
	store := outbound.ObserveStore(st, m)
	ctx := context.Background()
	msg := createMessage(t, st, "alerts")
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	steps := []switchboard.SendResult{
		{Attempts: 1, State: switchboard.MessageSending, From: "+14155550001", At: t0},
		{Attempts: 1, State: switchboard.MessageQueued, Error: "twilio: 503 0: unavailable", NextAttemptAt: t0, At: t0.Add(time.Second)},
		{Attempts: 0, State: switchboard.MessageQueued, Error: "stale", At: t0.Add(2 * time.Second)}, // stale: not applied
		{Attempts: 2, State: switchboard.MessageSending, At: t0.Add(3 * time.Second)},
		{Attempts: 2, State: switchboard.MessageSent, TwilioSID: "SM1", TwilioStatus: "queued", At: t0.Add(4 * time.Second)},
		{Attempts: 2, State: switchboard.MessageFailed, Error: "late", At: t0.Add(5 * time.Second)}, // after sent: not applied
	}
	for _, r := range steps {
		r.MessageID = msg.ID
		if err := store.RecordSend(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	other := createMessage(t, st, "bulk")
	if err := store.RecordSend(ctx, switchboard.SendResult{MessageID: other.ID, State: switchboard.MessageFailed,
		ErrorCode: 21610, Error: "recipient unsubscribed: not sent"}); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		pool, outcome string
		want          float64
	}{
		{"alerts", "retry", 1}, {"alerts", "sent", 1}, {"alerts", "failed", 0}, {"bulk", "failed", 1}, {"bulk", "sent", 0},
	} {
		got := metric(t, m, "switchboard_outbound_sends_total", "pool", c.pool, "outcome", c.outcome).GetCounter().GetValue()
		if got != c.want {
			t.Errorf("sends %s/%s = %v, want %v", c.pool, c.outcome, got, c.want)
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
	return &twilio.RestMessage{SID: "SM1"}, nil
}

func (c *fakeClient) List(context.Context, twilio.ListParams) ([]twilio.RestMessage, error) {
	return nil, nil
}

func TestObserveClientCounts429s(t *testing.T) {
	m := metrics.New()
	fc := &fakeClient{errs: []error{
		&twilio.RestError{Status: 429},
		&twilio.RestError{Status: 400, Code: twilio.CodeTooManyRequests},
		&twilio.RestError{Status: 503},
		&twilio.RestError{Status: 400, Code: 21211},
		errors.New("connection reset"),
		nil,
	}}
	c := outbound.ObserveClient(fc, m, func(from string) string { return map[string]string{"+14155550001": "alerts"}[from] })
	for range 6 {
		_, _ = c.Create(context.Background(), twilio.CreateParams{From: "+14155550001"})
	}
	if got := metric(t, m, "switchboard_outbound_429_total", "pool", "alerts").GetCounter().GetValue(); got != 2 {
		t.Errorf("429s = %v, want 2", got)
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
		s := metric(t, m, "switchboard_outbound_queue_depth", "pool", pool)
		if s == nil || s.GetGauge().GetValue() != want {
			t.Errorf("queue depth of %s = %v, want %v", pool, s.GetGauge().GetValue(), want)
		}
	}
}
