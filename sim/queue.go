package sim

import (
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// defaultCarrier applies to destinations no Carrier rule matches.
var defaultCarrier = Carrier{Latency: Latency{Median: time.Second, P99: 3 * time.Second}}

// CreateMessage creates an outbound message for an account, as the REST
// API's create does, and puts it in its sender's queue. The error is a
// *RestError for a request Twilio would refuse, or ErrClosed.
func (s *Sim) CreateMessage(accountSID string, p SendParams) (Message, error) {
	if err := p.check(); err != nil {
		return Message{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Message{}, ErrClosed
	}
	acct, ok := s.accounts[accountSID]
	if !ok {
		return Message{}, restErr(http.StatusNotFound, 20404, "The requested resource /2010-04-01/Accounts/%s was not found", accountSID)
	}
	sender, svc, rerr := s.senderFor(acct, p)
	if rerr != nil {
		return Message{}, rerr
	}
	to, _ := address(p.To)
	if acct.optOuts[to] || p.To == magicOptedOutTo {
		return Message{}, restErr(http.StatusBadRequest, twilio.CodeUnsubscribedRecipient, "Attempt to send to unsubscribed recipient")
	}
	if sender == nil {
		sender = svc.pick(to)
	}

	now := time.Now()
	segments, encoding := twilio.Segments(p.Body)
	m := &Message{
		AccountSID:     accountSID,
		From:           sender.Number.Number,
		To:             p.To,
		Body:           p.Body,
		MediaURLs:      append([]string(nil), p.MediaURLs...),
		Direction:      "outbound-api",
		Segments:       segments,
		Encoding:       encoding,
		StatusCallback: p.StatusCallback,
		Validity:       p.ValidityPeriod,
		Created:        now,
	}
	if _, channel := address(p.To); channel != "" {
		m.From = channel + ":" + m.From
	}
	if m.Validity == 0 {
		m.Validity = DefaultValidityPeriod
	}
	if svc != nil {
		m.ServiceSID = svc.SID
		if m.StatusCallback == "" {
			m.StatusCallback = svc.StatusCallback
		}
	}

	start := now
	if sender.nextFree.After(now) {
		start = sender.nextFree
	}
	wait := start.Sub(now)
	if wait > s.cfg.QueueLimit && svc == nil {
		return Message{}, restErr(http.StatusBadRequest, twilio.CodeFromQueueFull,
			"The 'From' number %s has exceeded the maximum number of queued messages (its queue is %v long)", m.From, wait.Round(time.Second))
	}
	m.SID = s.newSID("SM")
	s.messages[m.SID] = m
	acct.messages = append(acct.messages, m)
	var created Message
	if svc != nil {
		s.setStatus(m, StatusAccepted, 0, now)
		created = m.snapshot()               // Twilio answers a service's create with accepted
		s.setStatus(m, StatusQueued, 0, now) // the service picked a sender at once
	} else {
		s.setStatus(m, StatusQueued, 0, now)
		created = m.snapshot()
	}

	switch {
	case wait > s.cfg.QueueLimit: // only through a service: accepted, then failed
		s.after(0, func() { s.changeStatus(m, StatusFailed, twilio.CodeQueueOverflow) })
	case wait >= m.Validity:
		// It would expire before its turn, so it takes no turn.
		s.after(m.Validity, func() { s.changeStatus(m, StatusFailed, twilio.CodeValidityPeriodExpired) })
	default:
		s.schedule(m, sender, start, now)
	}
	return created, nil
}

// senderFor returns the number a request sends from, or the service whose
// pool will pick one, or the error Twilio gives for From or
// MessagingServiceSid. s.mu must be held.
func (s *Sim) senderFor(acct *account, p SendParams) (*ownedNumber, *service, *RestError) {
	var svc *service
	if p.MessagingServiceSID != "" {
		svc = acct.services[p.MessagingServiceSID]
		if svc == nil {
			return nil, nil, restErr(http.StatusBadRequest, 21701, "The Messaging Service Sid %s is invalid.", p.MessagingServiceSID)
		}
	}
	if p.From == "" {
		return nil, svc, nil
	}
	n, _ := address(p.From)
	if n == magicValidFrom {
		return s.magicSender(acct), svc, nil
	}
	sender := s.numbers[n]
	if n == magicFromNotOwned || sender == nil || sender.account != acct {
		return nil, nil, restErr(http.StatusBadRequest, twilio.CodeFromNotCapable,
			"The From phone number %s is not a valid, SMS-capable inbound phone number or short code for your account.", p.From)
	}
	return sender, svc, nil
}

// magicSender is the sender of Twilio's always-valid test From number,
// one per account. s.mu must be held.
func (s *Sim) magicSender(acct *account) *ownedNumber {
	key := acct.SID + "/" + magicValidFrom
	if n, ok := s.numbers[key]; ok {
		return n
	}
	n := &ownedNumber{Number: Number{Number: magicValidFrom, Type: LongCode, Throughput: LongCode.DefaultThroughput()}, account: acct}
	s.numbers[key] = n
	return n
}

// pick chooses the sender of a message to a recipient: the one it had
// before, for a sticky service, otherwise the one whose queue empties
// first.
func (svc *service) pick(to string) *ownedNumber {
	if n, ok := svc.sticky[to]; ok && svc.Sticky {
		return n
	}
	best := svc.numbers[0]
	for _, n := range svc.numbers[1:] {
		if n.nextFree.Before(best.nextFree) {
			best = n
		}
	}
	if svc.Sticky {
		svc.sticky[to] = best
	}
	return best
}

// schedule gives m its turn on sender's queue, starting at start: it is
// sending for as long as its segments take at the sender's throughput,
// sent when the last has gone, and then its carrier's outcome follows.
// The outcome and latency are drawn now, so that they follow the order
// messages were created in. s.mu must be held.
func (s *Sim) schedule(m *Message, sender *ownedNumber, start, now time.Time) {
	took := time.Duration(float64(m.Segments) / sender.Throughput * float64(time.Second))
	sender.nextFree = start.Add(took)
	carrier := s.carrierFor(m.To)
	outcome := s.drawOutcome(carrier)
	latency := s.draw(carrier.Latency)

	wait := start.Sub(now)
	if outcome.Status == StatusFailed {
		s.after(wait, func() { s.changeStatus(m, StatusFailed, outcome.errorCode()) })
		return
	}
	s.after(wait, func() { s.changeStatus(m, StatusSending, 0) })
	s.after(wait+took, func() { s.changeStatus(m, StatusSent, 0) })
	final, code := StatusDelivered, twilio.Code(0)
	if outcome.Status == StatusUndelivered {
		final, code = StatusUndelivered, outcome.errorCode()
	}
	s.after(wait+took+latency, func() { s.changeStatus(m, final, code) })
}

// carrierFor returns the rule with the longest prefix matching to.
func (s *Sim) carrierFor(to string) Carrier {
	n, _ := address(to)
	best, found := defaultCarrier, false
	for _, c := range s.cfg.Carriers {
		if strings.HasPrefix(n, c.Prefix) && (!found || len(c.Prefix) > len(best.Prefix)) {
			best, found = c, true
		}
	}
	return best
}

// drawOutcome draws a message's fate; the zero Outcome is delivery. s.mu
// must be held.
func (s *Sim) drawOutcome(c Carrier) Outcome {
	u := s.rng.Float64()
	for _, o := range c.Outcomes {
		if u < o.Rate {
			return o
		}
		u -= o.Rate
	}
	return Outcome{}
}

// draw draws a delay from l. s.mu must be held.
func (s *Sim) draw(l Latency) time.Duration {
	if l.P99 <= l.Median || l.Median <= 0 {
		return max(l.Median, 0)
	}
	// z of the 99th percentile of the standard normal distribution.
	const z99 = 2.3263478740408408
	sigma := math.Log(float64(l.P99)/float64(l.Median)) / z99
	return time.Duration(float64(l.Median) * math.Exp(sigma*s.rng.NormFloat64()))
}

// changeStatus moves m to status at the current time.
func (s *Sim) changeStatus(m *Message, status string, code twilio.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setStatus(m, status, code, time.Now())
}

// setStatus records m's move to status and queues its status callback
// (none for a message's first status, as with Twilio). s.mu must be held.
func (s *Sim) setStatus(m *Message, status string, code twilio.Code, now time.Time) {
	first := len(m.History) == 0
	m.Status, m.ErrorCode, m.Updated = status, code, now
	if status == StatusSent {
		m.Sent = now
	}
	m.History = append(m.History, StatusChange{Status: status, At: now})
	s.alertOnStatus(m, status, code, now)
	if !first && m.StatusCallback != "" {
		s.queueCallback(m)
	}
}

// queueCallback schedules m's status callback for its current status,
// late, held back or doubled as Config.Callbacks says. s.mu must be held.
func (s *Sim) queueCallback(m *Message) {
	wh := Webhook{
		AccountSID:  m.AccountSID,
		URL:         m.StatusCallback,
		Params:      statusParams(m),
		Expect:      twilio.ExpectStatus,
		ResourceSID: m.SID,
	}
	knobs := s.cfg.Callbacks
	delay := s.draw(knobs.Delay)
	if knobs.ReorderRate > 0 && s.rng.Float64() < knobs.ReorderRate {
		delay += knobs.ReorderBy
	}
	send := func() { _, _ = s.Send(s.ctx, wh) } // failures go to the debugger log
	s.after(delay, send)
	if knobs.DuplicateRate > 0 && s.rng.Float64() < knobs.DuplicateRate {
		s.after(delay+knobs.DuplicateAfter, send) // Send draws a fresh token
	}
}

// statusParams are the parameters of m's status callback for its current
// status.
func statusParams(m *Message) url.Values {
	v := url.Values{
		"MessageSid":    {m.SID},
		"SmsSid":        {m.SID},
		"AccountSid":    {m.AccountSID},
		"From":          {m.From},
		"To":            {m.To},
		"MessageStatus": {m.Status},
		"SmsStatus":     {m.Status},
		"ApiVersion":    {"2010-04-01"},
	}
	if m.ServiceSID != "" {
		v.Set("MessagingServiceSid", m.ServiceSID)
	}
	if m.ErrorCode != 0 {
		v.Set("ErrorCode", itoa(int(m.ErrorCode)))
	}
	if m.Status == StatusDelivered || m.Status == StatusUndelivered {
		v.Set("RawDlrDoneDate", m.Updated.UTC().Format("0601021504"))
	}
	return v
}
