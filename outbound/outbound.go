// Package outbound is the outbound side: the Service (service.go,
// receipts.go), which both send APIs and webhook intake call to create,
// replay and update messages, and the Sender, which sends stored messages
// to Twilio: the switchboard.Sender the send jobs call.
//
// A send attempt loads the message, skips it when it is terminal or its job
// is stale, fails it (dead letter) when it waited longer than MaxAge, fails
// it at once when the recipient is on its account's suppression list
// (21610 for an opt-out, else the code Twilio refused it with for good),
// waits while an earlier message to the same recipient in the pool is
// unsent (FIFO per recipient), waits in its pool's line for a turn of its
// sticky sender, or of any sender of the pool when it has none (OTP before
// transactional before marketing; see priority.go), records the message as
// sending, waits for the sender's turn across replicas when it shares the
// store with others (share.go), and, while this process holds its lease,
// creates it at Twilio. The answer decides: sent with
// Twilio's SID; failed for a permanent refusal, and when Twilio refused
// the recipient for good (twilio.RecipientRefusals) the recipient put on
// the account's suppression list, so that the next create to it fails at
// once; queued again with capped, jittered exponential backoff
// (Retry-After honoured) for a retryable one, failed once the attempts run
// out. When the request may have reached Twilio without an answer, the
// message is looked up at Twilio before anything is resent.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Store is what a Sender needs of switchboard.Store.
type Store interface {
	SendView(ctx context.Context, id string) (*switchboard.SendView, error)
	OutboundMessageBySID(ctx context.Context, accountSID, twilioSID string) (*switchboard.OutboundMessage, error)
	RecordSend(ctx context.Context, r switchboard.SendResult) error
	Suppress(ctx context.Context, accountSID, number, reason string) error
	StickySender(ctx context.Context, pool, recipient string) (string, error)
	EarlierUnsent(ctx context.Context, pool, recipient, beforeID string, purposes []switchboard.Purpose) (*switchboard.OutboundMessage, error)
	SenderHeartbeat(ctx context.Context, node string, at time.Time, ttl time.Duration) (int, error)
}

// Client is Twilio's Messages API; *twilio.MessagesClient is one.
type Client interface {
	Create(ctx context.Context, p twilio.CreateParams) (*twilio.RestMessage, error)
	List(ctx context.Context, p twilio.ListParams) ([]twilio.RestMessage, error)
}

// Pool is a set of senders that share a message stream.
type Pool struct {
	Name string
	// Senders are E.164 numbers or short codes the account owns, or
	// Messaging Service SIDs (MG…): a message given a service is created
	// with its MessagingServiceSid, and Twilio picks the number.
	Senders []string
	// Rate is each sender's pace in segments per second, as Twilio counts
	// them (see twilio.Segments; a message with media counts one), with a
	// burst of one. The pool never exceeds Rate × len(Senders) in total,
	// over all the processes sharing a store when Options.Heartbeat is set
	// (see share.go).
	Rate float64
	// BrownoutDelay is the queue delay of OTP and transactional sends past
	// which the pool pauses its marketing sends, until it falls to half of
	// it (see priority.go); zero never pauses marketing.
	BrownoutDelay time.Duration
	// Client is the Twilio account the pool sends with; nil uses
	// Options.Client.
	Client Client
}

// Policy tunes retries and pacing.
type Policy struct {
	BaseBackoff time.Duration // first retry's backoff before jitter; default 1 s
	MaxBackoff  time.Duration // cap of every backoff; default 5 min
	MaxAttempts int           // requests to Twilio before a message is dead (failed); default 8
	// MaxWait is the longest a send waits in process for its sender's turn;
	// a longer wait is rescheduled as a job instead of holding a worker,
	// RescheduleLead before its turn is estimated to come. Default 10 s.
	MaxWait time.Duration
	// RescheduleLead is how long before its estimated turn a rescheduled
	// send is due again: the job queue makes a scheduled job available up
	// to its scheduler's interval late (River's: 5 s), so a send due this
	// early is back in line before its turn, and a pool under a backlog
	// always has sends waiting for each turn. It must stay below MaxWait.
	// Default 7 s: the scheduler's interval and a margin for fetching. A pool stays at its rate under a backlog while the send
	// workers can hold its waiting sends: SendWorkers of at least Rate ×
	// senders × MaxWait, summed over the pools.
	RescheduleLead time.Duration
	// LookupWindow is how far back a lookup after an ambiguous failure
	// accepts a message as ours, before the message was created (clock skew
	// between Switchboard and Twilio). Default 5 min.
	LookupWindow time.Duration
	// MaxAge is how long a message may wait to be sent, since it was
	// created or replayed; an older one is failed, not sent (a dead
	// letter, with Twilio's 30036, validity period expired), and may be
	// replayed. A message whose request may have reached Twilio is looked
	// up first, whatever its age. Default 24 h.
	MaxAge time.Duration
}

// Options configure a Sender.
type Options struct {
	Pools []Pool
	// Client talks to Twilio for the messages of pools without a Client of
	// their own, and of pools no longer configured.
	Client Client
	// StatusCallback is Switchboard's status route; empty for none. Each
	// message is sent with it and its SID (OutboundMessage.StatusCallbackURL).
	StatusCallback string
	Logger         *slog.Logger
	Now            func() time.Time // default time.Now
	Rand           func() float64   // in [0, 1), for jitter; default math/rand/v2
	Policy         Policy
	// Metrics, when set, counts send outcomes by pool and Twilio's 429s.
	Metrics *metrics.Metrics
	// Samples, when set, counts Twilio's 429s per minute for the
	// dashboard (see package rollup).
	Samples Samples
	// Heartbeat, when set, says that other processes send from the same
	// store (replicas on PostgreSQL): each sender is paced at Rate across
	// all of them, by turns taken in the store (SharedTurns, which the
	// store must implement; see share.go), and every Heartbeat,
	// StartHeartbeat records this process (Node) alive and counts the
	// processes alive (Processes). Zero paces every sender at Rate in this
	// process alone (one process per store, as with SQLite).
	Heartbeat time.Duration
	// Node names this process for the heartbeat; default a random UUID.
	Node string
	// Lease, when set, fences sends among replicas: no message is created
	// at Twilio unless this process held its lease throughout the send
	// (ErrLeaseLost). nil: one process sends (SQLite).
	Lease Lease
}

// Samples is what a Sender tells the dashboard's samples (rollup.Sampler).
type Samples interface {
	// Throttled counts a 429 from Twilio to a send of pool, at at.
	Throttled(at time.Time, pool string)
}

// Sender sends outbound messages; it implements switchboard.Sender.
type Sender struct {
	store  Store
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	rand   func() float64
	policy Policy

	pools  map[string]*pool
	shared SharedTurns // the turns shared with other processes; nil when alone

	processes int // alive sending from the store, as the last heartbeat counted; 1 when alone

	// unsent[pool+"\x00"+recipient] are the messages this process is
	// sending, or waiting to send, to a recipient, for FIFO per recipient.
	mu     sync.Mutex
	unsent map[string]map[string]chan struct{}
}

type pool struct {
	Pool
	sched *scheduler
}

var _ switchboard.Sender = (*Sender)(nil)

// New returns a Sender over store. Every pool needs a name, a sender and a
// positive rate.
func New(store Store, opts Options) (*Sender, error) {
	if store == nil {
		return nil, errors.New("outbound: a store is required")
	}
	s := &Sender{store: store, opts: opts, log: opts.Logger, now: opts.Now,
		rand: opts.Rand, policy: opts.Policy, pools: map[string]*pool{}, processes: 1,
		unsent: map[string]map[string]chan struct{}{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Float64
	}
	p := &s.policy
	if p.BaseBackoff <= 0 {
		p.BaseBackoff = time.Second
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 5 * time.Minute
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 8
	}
	if p.MaxWait <= 0 {
		p.MaxWait = 10 * time.Second
	}
	if p.RescheduleLead <= 0 {
		p.RescheduleLead = min(7*time.Second, p.MaxWait*7/10)
	}
	if p.RescheduleLead >= p.MaxWait {
		return nil, fmt.Errorf("outbound: reschedule lead %v must be below the longest wait %v", p.RescheduleLead, p.MaxWait)
	}
	if p.LookupWindow <= 0 {
		p.LookupWindow = 5 * time.Minute
	}
	if p.MaxAge <= 0 {
		p.MaxAge = 24 * time.Hour
	}
	if s.opts.Node == "" {
		s.opts.Node = uuid.NewString()
	}
	if opts.Heartbeat > 0 {
		shared, ok := store.(SharedTurns)
		if !ok {
			// Each process pacing alone would multiply every rate.
			return nil, errors.New("outbound: a store shared with other processes (a heartbeat) must share the senders' turns too")
		}
		s.shared = shared
	}
	for _, pc := range opts.Pools {
		switch {
		case pc.Name == "":
			return nil, errors.New("outbound: a pool without a name")
		case len(pc.Senders) == 0:
			return nil, fmt.Errorf("outbound: pool %q has no senders", pc.Name)
		case pc.Rate <= 0:
			return nil, fmt.Errorf("outbound: pool %q: rate %v must be positive", pc.Name, pc.Rate)
		case pc.BrownoutDelay < 0:
			return nil, fmt.Errorf("outbound: pool %q: brownout delay %v must not be negative", pc.Name, pc.BrownoutDelay)
		case s.pools[pc.Name] != nil:
			return nil, fmt.Errorf("outbound: pool %q twice", pc.Name)
		case pc.Client == nil && opts.Client == nil:
			return nil, fmt.Errorf("outbound: pool %q has no client, and there is no default one", pc.Name)
		}
		if pc.Client == nil {
			pc.Client = opts.Client
		}
		pl := &pool{Pool: pc}
		pl.Senders = append([]string(nil), pc.Senders...)
		pl.sched = newScheduler(pc.Name, pl.Senders, pc.Rate, pc.BrownoutDelay, newLimiterTurns(pl.Senders, pc.Rate), s.log)
		s.pools[pc.Name] = pl
	}
	return s, nil
}

// Send makes one send attempt of a message (see switchboard.Sender).
func (s *Sender) Send(ctx context.Context, messageID string, attempts int) error {
	begun := s.now() // the lease must be held from here to the request
	// The message, and what decides its attempt besides, in one read.
	v, err := s.store.SendView(ctx, messageID)
	if errors.Is(err, switchboard.ErrNotFound) {
		return nil // gone: nothing to send
	}
	if err != nil {
		return fmt.Errorf("load message: %w", err)
	}
	m := v.Message
	switch {
	case m.State == switchboard.MessageQueued && m.Attempts == attempts:
	case m.State == switchboard.MessageSending && m.Attempts == attempts+1:
		// The attempt this job made died mid-send (a crash, or a lookup
		// that failed): the request may have reached Twilio.
		return s.resolveAmbiguous(ctx, m, m.From)
	default:
		return nil // terminal, sent, or a stale job
	}
	log := s.log.With("message", m.ID, "pool", m.Pool)

	if age := m.Age(s.now()); age > s.policy.MaxAge {
		log.Warn("message expired before it was sent: dead letter", "age", age.Round(time.Second), "attempts", attempts)
		return s.record(ctx, m, switchboard.SendResult{MessageID: m.ID, Attempts: attempts, State: switchboard.MessageFailed,
			ErrorCode: int(twilio.CodeValidityPeriodExpired), Error: fmt.Sprintf("expired: not sent within max_age %v", s.policy.MaxAge)})
	}

	if v.Suppressed {
		code := refusalOf(v.Suppression).Code
		log.Info("recipient suppressed: not sent", "code", int(code))
		return s.record(ctx, m, switchboard.SendResult{MessageID: m.ID, Attempts: attempts, State: switchboard.MessageFailed,
			ErrorCode: int(code), Error: "recipient suppressed (" + code.String() + "): not sent"})
	}

	pl := s.pools[m.Pool]
	if pl == nil {
		log.Warn("no such pool: not sent")
		return s.record(ctx, m, switchboard.SendResult{MessageID: m.ID, Attempts: attempts, State: switchboard.MessageFailed,
			Error: fmt.Sprintf("no pool named %q", m.Pool)})
	}
	release := s.enterLine(pl.Name, m)
	defer release()
	// When the read found no earlier unsent message that m waits for, the
	// sticky sender it read is current: an earlier message sets it with
	// its claim, before it is sent. Otherwise m waits for the earlier ones,
	// and reads the sticky sender again after them.
	sticky, stickyRead := v.Sticky, true
	if slices.ContainsFunc(purposesAhead(m.Purpose), func(p switchboard.Purpose) bool { return slices.Contains(v.EarlierUnsent, p) }) {
		later, err := s.waitForEarlier(ctx, pl, m)
		if err != nil {
			return err
		}
		if later > 0 {
			// Not counted as an attempt, nor as a retry: the message keeps
			// its place behind the earlier one.
			return s.record(ctx, m, switchboard.SendResult{MessageID: m.ID, Attempts: attempts, State: switchboard.MessageQueued,
				NextAttemptAt: s.now().Add(later)})
		}
		stickyRead = false
	}

	from, keep, err := s.assignedSender(ctx, pl, m, sticky, stickyRead)
	if err != nil {
		return err
	}
	turn, err := s.waitTurn(ctx, pl, m, from)
	if err != nil {
		return err
	}
	switch {
	case turn.paused:
		return s.record(ctx, m, switchboard.SendResult{MessageID: m.ID, Attempts: attempts, State: switchboard.MessageQueued,
			Error: "marketing paused: pool in brownout", NextAttemptAt: s.now().Add(pl.BrownoutDelay)})
	case turn.rescheduled:
		// Do not hold a worker: come back shortly before the turn is due.
		return s.record(ctx, m, switchboard.SendResult{MessageID: m.ID, Attempts: attempts, State: switchboard.MessageQueued,
			NextAttemptAt: s.now().Add(turn.later)})
	}
	from = turn.from

	attempt := attempts + 1
	// Recorded before the request, so that a crash leaves it visibly
	// possibly sent, and a rescued job looks it up instead of resending;
	// with the recipient's new sticky sender, in the same transaction.
	claim := switchboard.SendResult{MessageID: m.ID, Attempts: attempt, State: switchboard.MessageSending, From: from, Sticky: !keep}
	if err := s.record(ctx, m, claim); err != nil {
		if errors.Is(err, switchboard.ErrCanceled) {
			// Canceled since it was loaded: the store refused the claim, so
			// nothing is sent.
			log.Info("canceled before it was sent: not sent")
			return nil
		}
		return err
	}
	// The turn was taken before the writes above, whose latency varies
	// with the store's load: re-space the request itself, so that a slow
	// write followed by a fast one does not bunch two requests of the
	// sender. A wait cut short by shutdown leaves the message sending;
	// its next job looks it up before anything is resent. So does a turn
	// across replicas the store failed to give, and a lease lost: no
	// request is made without them (fails closed).
	req := pl.sched.reserve(from, s.now(), Cost(m))
	defer func() { req.went(s.now()) }() // given up: the next still waits its interval
	if err := s.waitToGo(ctx, pl, req, from, Cost(m)); err != nil {
		return err
	}
	// The last check before the request. A pause of this process between
	// it and the request reaching Twilio (a stop or a freeze of exactly
	// that moment, longer than the lease) is not fenced: the replica that
	// took the job over then looks the message up at Twilio before
	// resending it, and finds it if it was created by then; if the paused
	// request reaches Twilio only after that lookup, the message is sent
	// twice. The window is the time between two instructions and one
	// request's transit.
	if s.opts.Lease != nil && !s.opts.Lease.HeldSince(begun) {
		return fmt.Errorf("send from %s: %w", from, ErrLeaseLost)
	}
	req.went(s.now())
	params := twilio.CreateParams{To: m.To, From: from, Body: m.Body, MediaURLs: m.MediaURLs,
		// Twilio signs the URL and sends it back with every callback: they
		// name the message by its Switchboard SID (see switchboard.SIDParam).
		StatusCallback: m.StatusCallbackURL(s.opts.StatusCallback)}
	if twilio.IsServiceSID(from) {
		params.From, params.MessagingServiceSID = "", from
	}
	msg, err := pl.Client.Create(ctx, params)
	if err == nil {
		log.Debug("sent", "sid", msg.SID, "from", from, "attempt", attempt)
		return s.record(ctx, m, switchboard.SendResult{MessageID: m.ID, Attempts: attempt, State: switchboard.MessageSent,
			From: msg.From, TwilioSID: msg.SID, TwilioStatus: msg.Status})
	}
	if twilio.IsAmbiguous(err) {
		log.Warn("send may have reached Twilio: looking it up", "error", err)
		m.Attempts, m.From = attempt, from
		return s.resolveAmbiguous(ctx, m, from)
	}
	return s.failedAttempt(ctx, m, attempt, from, err)
}

// failedAttempt records a send that Twilio refused or never got: failed
// for a permanent error or once the attempts are spent, queued with
// backoff otherwise.
func (s *Sender) failedAttempt(ctx context.Context, m *switchboard.OutboundMessage, attempt int, from string, err error) error {
	log := s.log.With("message", m.ID, "pool", m.Pool, "attempt", attempt)
	r := switchboard.SendResult{MessageID: m.ID, Attempts: attempt, From: from, Error: err.Error()}
	var re *twilio.RestError
	retryAfter := time.Duration(0)
	if errors.As(err, &re) {
		r.ErrorCode = int(re.Code)
		retryAfter = re.RetryAfter
		Observe429(s.opts.Metrics, m.Pool, err)
		if s.opts.Samples != nil && Is429(err) {
			s.opts.Samples.Throttled(s.now(), m.Pool)
		}
		if re.Permanent() || (!re.Retryable() && re.Status >= 400 && re.Status < 500) {
			log.Info("refused by Twilio", "code", int(re.Code), "error", err)
			if re.Code.RefusesRecipient() {
				if err := s.recordRefusal(ctx, m, re.Code); err != nil {
					return err
				}
			}
			r.State = switchboard.MessageFailed
			return s.record(ctx, m, r)
		}
	}
	if attempt >= s.policy.MaxAttempts {
		log.Warn("send failed: out of attempts", "error", err)
		r.State = switchboard.MessageFailed
		return s.record(ctx, m, r)
	}
	r.State = switchboard.MessageQueued
	r.NextAttemptAt = s.now().Add(s.Backoff(attempt, retryAfter))
	log.Info("send failed: retrying", "error", err, "at", r.NextAttemptAt)
	return s.record(ctx, m, r)
}

// twilioOptOutReason is the reason stored with an opt-out Twilio reported
// (21610) when a message was sent: an opt-out all the same, which the
// recipient's START reverses.
const twilioOptOutReason = "21610"

// recordRefusal puts m's recipient on its account's suppression list for
// code, by which Twilio refused it for good (twilio.RecipientRefusals), so
// that the next create to it is refused at once with the same code, as
// Twilio would: as an opt-out for 21610, which the recipient's START
// reverses, else as a refusal (switchboard.RefusalReason), which no
// keyword reverses. It is recorded before the message's result: when it
// fails, the message stays sending, and its next job looks it up at
// Twilio, finds nothing, and sends again, which meets the refusal again.
func (s *Sender) recordRefusal(ctx context.Context, m *switchboard.OutboundMessage, code twilio.Code) error {
	reason := switchboard.RefusalReason(int(code))
	if code == twilio.CodeUnsubscribedRecipient {
		reason = twilioOptOutReason
	}
	if err := s.store.Suppress(ctx, m.AccountSID, m.To, reason); err != nil {
		return fmt.Errorf("record Twilio's refusal %d of the recipient of message %s: %w", int(code), m.ID, err)
	}
	return nil
}

// maxRetryAfter caps Twilio's Retry-After: a message waits at most a day
// (MaxAge's default) for one answer's sake.
const maxRetryAfter = 24 * time.Hour

// Backoff is the delay before the retry after attempt (1 for the first
// request), by switchboard.RetryPolicy: jittered over min(MaxBackoff,
// BaseBackoff × 2^(attempt-1)), and never less than retryAfter, Twilio's
// Retry-After, capped at a day.
func (s *Sender) Backoff(attempt int, retryAfter time.Duration) time.Duration {
	p := switchboard.RetryPolicy{Base: s.policy.BaseBackoff, Max: s.policy.MaxBackoff, MaxRetryAfter: maxRetryAfter, Rand: s.rand}
	return p.Delay(attempt, retryAfter)
}

// resolveAmbiguous settles a send whose request may have reached Twilio
// (m is in sending, at its attempt's count): it lists the messages to
// m.To from the sender, and records the one with m's body, created since
// m was (less LookupWindow) and not already another message's, as sent.
// Only when there is none is the message queued for a resend. It lists
// without a DateSent filter: a message still queued at its sender has no
// date_sent, and Twilio lists newest first, so the first pages hold it.
// If the lookup itself fails, it returns an error: the job runs again and
// finds the message still sending, and looks again.
func (s *Sender) resolveAmbiguous(ctx context.Context, m *switchboard.OutboundMessage, from string) error {
	log := s.log.With("message", m.ID, "pool", m.Pool, "attempt", m.Attempts)
	if from == "" {
		// No sender was recorded, so no request was made.
		return s.failedAttempt(ctx, m, m.Attempts, from, errors.New("send interrupted before a sender was chosen"))
	}
	list := twilio.ListParams{To: m.To, From: from, PageSize: 50, MaxPages: 3}
	service := ""
	if twilio.IsServiceSID(from) {
		// Twilio chose the number: list by recipient, match the service.
		list.From, service = "", from
	}
	client := s.opts.Client
	if pl := s.pools[m.Pool]; pl != nil {
		client = pl.Client
	}
	if client == nil {
		return fmt.Errorf("look up message %s at Twilio: pool %q is no longer configured, and there is no default client", m.ID, m.Pool)
	}
	found, err := client.List(ctx, list)
	if err != nil {
		return fmt.Errorf("look up message %s at Twilio: %w", m.ID, err)
	}
	since := m.CreatedAt.Add(-s.policy.LookupWindow)
	for _, tm := range found {
		if tm.Body != m.Body || tm.DateCreated.Before(since) || tm.Direction != "" && tm.Direction != "outbound-api" ||
			service != "" && tm.MessagingServiceSID != service {
			continue
		}
		// Within m's account, whose messages the pool's client lists. An
		// SID that another account's message holds (possible only if the
		// pool's account was changed under it) is not skipped here, but
		// the store's unique SID refuses the record: the job fails and
		// runs again, and nothing is recorded or sent twice.
		other, err := s.store.OutboundMessageBySID(ctx, m.AccountSID, tm.SID)
		switch {
		case err == nil && other.ID != m.ID:
			continue // another message's, with the same body
		case err != nil && !errors.Is(err, switchboard.ErrNotFound):
			return fmt.Errorf("look up SID %s: %w", tm.SID, err)
		}
		log.Info("found at Twilio: recorded as sent, not resent", "sid", tm.SID)
		return s.record(ctx, m, switchboard.SendResult{MessageID: m.ID, Attempts: m.Attempts, State: switchboard.MessageSent,
			From: tm.From, TwilioSID: tm.SID, TwilioStatus: tm.Status})
	}
	log.Info("not found at Twilio: resending")
	return s.failedAttempt(ctx, m, m.Attempts, from, errors.New("send may have failed: not found at Twilio"))
}

// assignedSender is the sender m must be sent from: the one the app asked
// for, or the recipient's sticky sender while it is still in the pool
// (keep is true for both); empty when any sender of the pool will do. The
// sticky sender is sticky (empty for none) when read is true, else it is
// read from the store.
func (s *Sender) assignedSender(ctx context.Context, pl *pool, m *switchboard.OutboundMessage, sticky string, read bool) (from string, keep bool, err error) {
	if m.From != "" {
		return m.From, true, nil
	}
	if !read {
		sticky, err = s.store.StickySender(ctx, pl.Name, m.To)
		switch {
		case errors.Is(err, switchboard.ErrNotFound):
			sticky = ""
		case err != nil:
			return "", false, fmt.Errorf("sticky sender: %w", err)
		}
	}
	if sticky != "" && slices.Contains(pl.Senders, sticky) {
		return sticky, true, nil
	}
	return "", false, nil
}

// turn is how a wait for a turn ended: a turn of from; paused by
// brownout; or rescheduled, later ahead (0: due now), because the wait
// would pass MaxWait.
type turn struct {
	from        string
	paused      bool
	rescheduled bool
	later       time.Duration
}

// waitTurn waits in pl's line for a turn m may use, from (empty: any
// sender of the pool), at most MaxWait.
func (s *Sender) waitTurn(ctx context.Context, pl *pool, m *switchboard.OutboundMessage, from string) (turn, error) {
	due := m.CreatedAt
	if m.Attempts > 0 && !m.NextAttemptAt.IsZero() {
		due = m.NextAttemptAt
	}
	w := &waiter{purpose: m.Purpose, sender: from, due: due, cost: Cost(m)}
	now := s.now()
	deadline := now.Add(s.policy.MaxWait)
	over, next, estimate := pl.sched.join(w, now)
	if !over && estimate > s.policy.MaxWait {
		if left, est := pl.sched.leave(w, now); left {
			return turn{rescheduled: true, later: s.rescheduleIn(est)}, nil
		}
		over = true
	}
	for !over {
		wake := deadline
		if !next.IsZero() && next.Before(wake) {
			wake = next
		}
		t := time.NewTimer(max(wake.Sub(now), 0))
		select {
		case o := <-w.done:
			t.Stop()
			return turn{from: o.from, paused: o.paused}, nil
		case <-ctx.Done():
			t.Stop()
			pl.sched.leave(w, s.now()) // a turn that came meanwhile is lost: pacing errs slow
			return turn{}, ctx.Err()
		case <-t.C:
			now = s.now()
			if now.Before(deadline) {
				next = pl.sched.poll(now)
				continue
			}
			if left, est := pl.sched.leave(w, now); left {
				return turn{rescheduled: true, later: s.rescheduleIn(est)}, nil
			}
			over = true
		}
	}
	o := <-w.done
	return turn{from: o.from, paused: o.paused}, nil
}

// waitToGo waits until r, a request of cost segments from sender in pl,
// may go: after the request ahead of it went, and its interval after,
// and, when other processes share the store, at the sender's turn across
// them, taken once the request ahead went (share.go); or until ctx is
// done. An error means r must not go.
func (s *Sender) waitToGo(ctx context.Context, pl *pool, r *request, sender string, cost int) error {
	if ahead := r.behind(); ahead != nil {
		select {
		case <-ahead:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	at := r.goAt()
	if s.shared != nil {
		// Taken while the interval after the request ahead runs, so
		// that the store's latency does not add to it.
		turn, err := s.takeSharedTurn(ctx, sender, cost, pl.Rate)
		if err != nil {
			return err
		}
		if turn.After(at) {
			// Later than this process's own requests kept the sender:
			// other processes are sending from it. No local turn comes
			// before this one, so that this process's sends wait in its
			// priority lines, not here (share.go).
			pl.sched.hold(sender, turn)
			at = turn
		}
		if err := s.sleepUntil(ctx, at); err != nil {
			return err
		}
		return s.goShared(ctx, sender, cost, pl.Rate)
	}
	return s.sleepUntil(ctx, at)
}

// sleepUntil waits until at, or until ctx is done.
func (s *Sender) sleepUntil(ctx context.Context, at time.Time) error {
	d := at.Sub(s.now())
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rescheduleIn is how far ahead a send whose turn is estimated est away is
// rescheduled: RescheduleLead before it, or now (0) when that is past. A
// job due even a moment ahead waits for the job queue's scheduler (up to
// its interval, 5 s), while one due now is taken again at once.
func (s *Sender) rescheduleIn(est time.Duration) time.Duration {
	return max(est-s.policy.RescheduleLead, 0)
}

// Brownout reports whether pool is in brownout: its marketing sends
// paused because its OTP and transactional sends are late (see
// priority.go). It is false for an unknown pool or one without a
// brownout delay.
func (s *Sender) Brownout(pool string) bool {
	pl := s.pools[pool]
	return pl != nil && pl.sched.inBrownout(s.now())
}

// record stores a send result of m and counts its outcome.
func (s *Sender) record(ctx context.Context, m *switchboard.OutboundMessage, r switchboard.SendResult) error {
	if r.At.IsZero() {
		r.At = s.now()
	}
	if err := s.store.RecordSend(ctx, r); err != nil {
		return fmt.Errorf("record %s send of message %s: %w", r.State, r.MessageID, err)
	}
	// Counted once the result is stored. A result the store found stale
	// (a job that lost a race for the message) may be counted too: this
	// process made the attempt either way.
	ObserveSend(s.opts.Metrics, m.Pool, r)
	return nil
}

// Cost is the turns a message takes of its sender's rate: its segments
// (twilio.Segments), or one for a message with media (MMS).
func Cost(m *switchboard.OutboundMessage) int {
	if len(m.MediaURLs) > 0 {
		return 1
	}
	n, _ := twilio.Segments(m.Body)
	return n
}
