package outbound

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

// What Twilio's receipts change, for the Service: a status callback moves
// its message on (ApplyStatus), and an inbound opt-out or opt-in keyword
// suppresses or unsuppresses its sender for the account (ApplyKeyword).

// ApplyStatus applies one status update from Twilio to the message of
// u.AccountSID that Twilio knows by u.TwilioSID, monotonically (see
// switchboard.Store.UpdateMessageStatus, which records u in the message's
// history either way), and returns the message as it stands after it.
// Applied(m, u) tells whether u moved the message on; only then is u
// counted in the status metrics. An unknown SID, or another account's, is
// an error wrapping switchboard.ErrNotFound.
func (s *Service) ApplyStatus(ctx context.Context, u switchboard.StatusUpdate) (*switchboard.OutboundMessage, error) {
	m, err := s.store.UpdateMessageStatus(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("update status of %s: %w", u.TwilioSID, err)
	}
	if Applied(m, u) {
		s.observeStatus(m, u)
	}
	return m, nil
}

// Applied reports whether m, as ApplyStatus returned it after u, was
// changed by u. An applied update leaves its status and time on the
// message (OutboundMessage.ApplyStatus); one that did not apply leaves the
// status and time of an earlier change, which cannot carry both u's status
// and u's receipt time, each callback being received at its own instant.
func Applied(m *switchboard.OutboundMessage, u switchboard.StatusUpdate) bool {
	return m.TwilioStatus == u.Status && sameInstant(m.UpdatedAt, u.At)
}

// observeStatus counts u, which moved m on, in the status metrics.
func (s *Service) observeStatus(m *switchboard.OutboundMessage, u switchboard.StatusUpdate) {
	template := s.metrics.Template(m.Template)
	s.metrics.OutboundStatus.WithLabelValues(m.Pool, string(m.Purpose), template, u.Status, strconv.Itoa(u.ErrorCode)).Inc()
	if u.Status == "sent" {
		// Twilio's sent, which applies at most once per message: handed
		// to the carrier.
		s.metrics.OutboundSentSeconds.WithLabelValues(m.Pool, string(m.Purpose), template).Observe(seconds(m.UpdatedAt.Sub(m.CreatedAt)))
	}
	if sameInstant(m.DeliveredAt, u.At) && !m.SentAt.IsZero() {
		// This update delivered it (delivered, or read with no delivered
		// before): DeliveredAt is set only once.
		s.metrics.OutboundDeliveredSeconds.WithLabelValues(m.Pool, string(m.Purpose), template).Observe(seconds(m.DeliveredAt.Sub(m.SentAt)))
	}
}

// InHistory reports whether hist, a message's status history, holds u,
// applied or not: an entry of u's source and status recorded at u's time.
func InHistory(hist []switchboard.StatusChange, u switchboard.StatusUpdate) bool {
	return slices.ContainsFunc(hist, func(c switchboard.StatusChange) bool {
		return c.Source == u.Source && c.Status == u.Status && sameInstant(c.At, u.At)
	})
}

// sameInstant compares times at the stores' precision (microseconds).
func sameInstant(stored, t time.Time) bool {
	return !stored.IsZero() && stored.Sub(t).Abs() < time.Microsecond
}

func seconds(d time.Duration) float64 { return max(d.Seconds(), 0) }

// ErrStaleKeyword refuses a keyword received before the last one of the
// same sender that was applied (see ApplyKeyword).
var ErrStaleKeyword = errors.New("keyword older than the sender's last one")

// optOutReason is the reason stored with an opt-out.
const optOutReason = "STOP"

// keywordMemory is how long a Service remembers when a sender's last
// keyword was received: far longer than any caller waits to apply one,
// far shorter than a process lives.
const keywordMemory = 10 * time.Minute

// keywordOrder remembers, for keywordMemory, when the last keyword applied
// of each sender was received.
type keywordOrder struct {
	mu   sync.Mutex // held across the store call: keywords are rare
	last map[string]time.Time
}

// ApplyKeyword suppresses (twilio.OptOut) or unsuppresses (twilio.OptIn)
// number for account, for a keyword received at at; any other action
// changes nothing. Keywords change opt-outs only: a number Twilio refused
// for good (21614, 21211; see Sender) stays refused through an opt-in, and
// an opt-out does not replace that refusal (switchboard.Store.Suppress,
// Unsuppress), whereas an opt-in reverses Twilio's 21610 as it reverses a
// STOP.
//
// A sender's keywords apply in the order they were received, although
// callers apply each on a goroutine of its own: STOP then START leaves the
// sender subscribed, whichever runs first. A keyword received before the
// last one applied of its sender is refused with ErrStaleKeyword. (That
// order is this Service's: replicas share no such memory, so two keywords
// from one handset within moments of each other on two replicas may still
// land in either order.) ctx bounds the whole call, the wait for another
// keyword of the same sender included. A store error is returned as the
// store gave it, which may name the number.
func (s *Service) ApplyKeyword(ctx context.Context, account, number string, action twilio.OptAction, at time.Time) error {
	key := account + "\x00" + number
	o := &s.keywords
	o.mu.Lock()
	defer o.mu.Unlock()
	if last, ok := o.last[key]; ok && at.Before(last) {
		return ErrStaleKeyword
	}
	var err error
	switch action {
	case twilio.OptOut:
		err = s.store.Suppress(ctx, account, number, optOutReason)
	case twilio.OptIn:
		err = s.store.Unsuppress(ctx, account, number)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	if action == twilio.OptOut {
		s.metrics.OptOuts.Inc()
	}
	if o.last == nil {
		o.last = map[string]time.Time{}
	}
	for k, t := range o.last {
		if at.Sub(t) > keywordMemory {
			delete(o.last, k)
		}
	}
	o.last[key] = at
	return nil
}
