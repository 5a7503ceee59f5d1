package outbound

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Send metrics (metrics.Metrics.OutboundSends and Outbound429s). The send
// path can count its outcomes itself with ObserveSend and Observe429; until
// it does, ObserveStore and ObserveClient count them from outside, around
// the Store and Client a Sender is given.

// Send outcomes, the outcome label of metrics.Metrics.OutboundSends.
const (
	OutcomeSent   = "sent"   // Twilio accepted the message
	OutcomeRetry  = "retry"  // queued again after a failed or ambiguous attempt
	OutcomeFailed = "failed" // refused, suppressed, or out of attempts
)

// SendOutcome is the outcome a send result records, or "" for none: a
// message marked sending, or put back in the queue for pacing (queued
// without an error).
func SendOutcome(r switchboard.SendResult) string {
	switch {
	case r.State == switchboard.MessageSent:
		return OutcomeSent
	case r.State == switchboard.MessageFailed:
		return OutcomeFailed
	case r.State == switchboard.MessageQueued && r.Error != "":
		return OutcomeRetry
	}
	return ""
}

// ObserveSend counts r's outcome for pool in m; nil m counts nothing.
func ObserveSend(m *metrics.Metrics, pool string, r switchboard.SendResult) {
	if o := SendOutcome(r); m != nil && o != "" {
		m.OutboundSends.WithLabelValues(pool, o).Inc()
	}
}

// Is429 reports whether err is Twilio's 429 or 20429 answer.
func Is429(err error) bool {
	var re *twilio.RestError
	return errors.As(err, &re) && (re.Status == http.StatusTooManyRequests || re.Code == twilio.CodeTooManyRequests)
}

// Observe429 counts err for pool in m when it is Twilio's 429 or 20429; nil
// m counts nothing.
func Observe429(m *metrics.Metrics, pool string, err error) {
	if m != nil && Is429(err) {
		m.Outbound429s.WithLabelValues(pool).Inc()
	}
}

// ObserveStore returns store with every send result it records counted by
// ObserveSend, when it applied (a stale or repeated result that changed
// nothing is not counted). It reads the message back after each outcome
// for its pool: one read by id per attempt. A failed read loses the count,
// never the result.
func ObserveStore(store Store, m *metrics.Metrics) Store {
	return &observedStore{Store: store, m: m}
}

type observedStore struct {
	Store
	m *metrics.Metrics
}

func (s *observedStore) RecordSend(ctx context.Context, r switchboard.SendResult) error {
	if err := s.Store.RecordSend(ctx, r); err != nil {
		return err
	}
	if SendOutcome(r) == "" {
		return nil
	}
	msg, err := s.Store.OutboundMessage(ctx, r.MessageID)
	if err != nil || !recorded(msg, r) {
		return nil
	}
	ObserveSend(s.m, msg.Pool, r)
	return nil
}

// recorded reports whether msg, read back after RecordSend(r), carries r:
// its attempts and state, and its time at the stores' precision. A sent
// message may have moved on already (a status callback came first): its
// SID tells it.
func recorded(msg *switchboard.OutboundMessage, r switchboard.SendResult) bool {
	if msg.Attempts != r.Attempts {
		return false
	}
	if r.State == switchboard.MessageSent {
		return msg.TwilioSID == r.TwilioSID && msg.State.Rank() >= switchboard.MessageSent.Rank()
	}
	return msg.State == r.State && (r.At.IsZero() || msg.UpdatedAt.Sub(r.At).Abs() < time.Microsecond)
}

// ObserveClient returns client with Twilio's 429 and 20429 answers to
// creates counted by Observe429, under the pool poolOf names for the
// sender ("" when it knows none).
func ObserveClient(client Client, m *metrics.Metrics, poolOf func(from string) string) Client {
	return &observedClient{Client: client, m: m, poolOf: poolOf}
}

type observedClient struct {
	Client
	m      *metrics.Metrics
	poolOf func(string) string
}

func (c *observedClient) Create(ctx context.Context, p twilio.CreateParams) (*twilio.RestMessage, error) {
	msg, err := c.Client.Create(ctx, p)
	if err != nil {
		Observe429(c.m, c.poolOf(p.From), err)
	}
	return msg, err
}
