package outbound

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
)

// The Service is what the send APIs and webhook intake do to outbound
// messages, each rule written once: which pool takes a message, the
// suppression check, idempotency, the message as stored, replay, and what
// Twilio's receipts (status callbacks, opt-out and opt-in keywords) change
// (receipts.go). The APIs check the form of a request in their own dialect
// and render the answer in it; intake parses webhooks and retries; the
// Service does the rest.

// ServiceStore is what a Service needs of switchboard.Store.
type ServiceStore interface {
	CreateMessage(ctx context.Context, m *switchboard.OutboundMessage) (created bool, err error)
	OutboundMessageByKey(ctx context.Context, key string) (*switchboard.OutboundMessage, error)
	ReplayMessage(ctx context.Context, id string) (*switchboard.OutboundMessage, error)
	UpdateMessageStatus(ctx context.Context, u switchboard.StatusUpdate) (*switchboard.OutboundMessage, error)
	Suppressed(ctx context.Context, accountSID, number string) (bool, error)
	Suppress(ctx context.Context, accountSID, number, reason string) error
	Unsuppress(ctx context.Context, accountSID, number string) error
}

// PoolRoute is a sender pool as creates are routed to it.
type PoolRoute struct {
	Name       string
	AccountSID string   // the account the pool's provider sends with
	Senders    []string // E.164 numbers, short codes or Messaging Service SIDs
	Purposes   []switchboard.Purpose
}

// ServiceOptions configure a Service.
type ServiceOptions struct {
	// Pools take the messages created, in this order: a native create
	// that names no pool goes to the first pool serving its purpose.
	// Without pools every create is refused (ErrUnroutable).
	Pools []PoolRoute
	// Metrics counts the status updates applied; nil counts them in an
	// unregistered set.
	Metrics *metrics.Metrics
	Now     func() time.Time // default time.Now
}

// Service creates, replays and tracks outbound messages for the APIs and
// for intake. It is safe for concurrent use.
type Service struct {
	store    ServiceStore
	pools    []PoolRoute
	metrics  *metrics.Metrics
	now      func() time.Time
	keywords keywordOrder // orders opt-outs and opt-ins per sender
}

// NewService returns a Service over store.
func NewService(store ServiceStore, o ServiceOptions) *Service {
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{store: store, pools: slices.Clone(o.Pools), metrics: o.Metrics, now: o.Now}
}

// AutoKeyWindow is how long a create without an idempotency key is the
// same message as an identical earlier one of the same account.
const AutoKeyWindow = 24 * time.Hour

// derivedKeyPrefix starts the key derived for a create without one.
const derivedKeyPrefix = "auto:"

// Errors of Create, for the APIs to answer in their dialect.
var (
	// ErrSuppressed refuses a message to a recipient on its account's
	// suppression list (an opt-out): nothing was stored.
	ErrSuppressed = errors.New("recipient has opted out (21610): the message was not stored or sent")
	// ErrUnroutable is wrapped, with switchboard.ErrInvalid, by the error
	// of a create no configured pool takes.
	ErrUnroutable = errors.New("no pool takes the message")
)

// unroutable is an error wrapping ErrUnroutable whose text is
// switchboard.ErrInvalid's and the reason.
type unroutable struct{ reason string }

func noPool(format string, a ...any) error { return &unroutable{fmt.Sprintf(format, a...)} }

func (e *unroutable) Error() string { return switchboard.ErrInvalid.Error() + ": " + e.reason }

func (e *unroutable) Is(target error) bool {
	return target == ErrUnroutable || target == switchboard.ErrInvalid
}

// Draft is a create as an API received it, its form already checked by
// that API.
type Draft struct {
	API switchboard.KeyAPI
	// Key is the caller's idempotency key, in API's key space of the
	// account of the pool the message goes to. Empty derives one from the
	// payload, so that an identical create within AutoKeyWindow is the
	// same message (the Twilio-compatible API without an idempotency
	// header).
	Key string
	// Payload is the message as the caller asked for it. For the native
	// API, Pool and From pick the pool, else Purpose does (empty:
	// transactional). For the Twilio-compatible API, which has no purpose,
	// Pool is the Messaging Service SID named, if any.
	switchboard.Payload
	// Account is the account a Twilio-compatible caller authenticated as:
	// only its pools take the message.
	Account       string
	StatusWebhook string // empty for none
}

// destination is where routing sends a draft: the pool, the purpose, and
// the sender when routing picked it.
type destination struct {
	pool    *PoolRoute
	purpose switchboard.Purpose
	from    string
}

// Create stores the message d asks for, before anything is sent, and
// reports whether it created it. When d's key already names a stored
// message with the same payload, that message comes back, created false;
// with another payload the error wraps switchboard.ErrConflict. A
// recipient on the suppression list of the pool's account is refused with
// ErrSuppressed and nothing is stored, unless the key already names a
// stored message, which comes back as any repeat does. A message no pool
// takes is an error wrapping ErrUnroutable.
func (s *Service) Create(ctx context.Context, d Draft) (m *switchboard.OutboundMessage, created bool, err error) {
	dest, err := s.route(&d)
	if err != nil {
		return nil, false, err
	}
	p := d.Payload
	p.Purpose = dest.purpose
	hash := p.Hash()
	account := dest.pool.AccountSID
	// The key in d.API's key space of the pool's account, whatever it
	// looks like: a key spelling another space's stored form stays in
	// this one. So a retry that a configuration change routes to a pool
	// of another account is another message of that account.
	key := switchboard.MessageKey{API: d.API, Account: account, Key: d.Key}.String()
	now := s.now()
	if d.Key == "" {
		key = derivedKey(d.API, account, hash, now)
		if twin, err := s.recentTwin(ctx, d.API, account, hash, now); twin != nil || err != nil {
			return twin, false, err
		}
	}
	if err := s.checkSuppression(ctx, account, p.To, key); err != nil {
		return nil, false, err
	}
	m = &switchboard.OutboundMessage{
		ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: key, AccountSID: account, Pool: dest.pool.Name,
		Purpose: dest.purpose, From: cmp.Or(p.From, dest.from), To: p.To, Body: p.Body, MediaURLs: p.MediaURLs,
		StatusWebhook: d.StatusWebhook, Template: p.Template, PayloadHash: hash,
		CreatedAt: now, // the clock the derived keys' windows are measured by
	}
	if created, err = s.store.CreateMessage(ctx, m); err != nil {
		return nil, false, fmt.Errorf("create message: %w", err)
	}
	return m, created, nil
}

// derivedKey is the stored idempotency key of a create without one, in
// api's key space of account: the payload hash and the AutoKeyWindow-long
// window that at falls in. Its stored form,
// "twilio:{account}:auto:{hash}:{window}", is the one it had before keys
// had a space per API, as is a header's, so these need no migration.
func derivedKey(api switchboard.KeyAPI, account, hash string, at time.Time) string {
	window := strconv.FormatInt(at.Unix()/int64(AutoKeyWindow/time.Second), 10)
	return switchboard.MessageKey{API: api, Account: account, Key: derivedKeyPrefix + hash + ":" + window}.String()
}

// recentTwin returns the message stored for an identical create without
// a key in the previous window, when it is younger than AutoKeyWindow: it
// is this message. nil when there is none.
func (s *Service) recentTwin(ctx context.Context, api switchboard.KeyAPI, account, hash string, now time.Time) (*switchboard.OutboundMessage, error) {
	prev, err := s.store.OutboundMessageByKey(ctx, derivedKey(api, account, hash, now.Add(-AutoKeyWindow)))
	switch {
	case err == nil && now.Sub(prev.CreatedAt) < AutoKeyWindow:
		return prev, nil
	case err != nil && !errors.Is(err, switchboard.ErrNotFound):
		return nil, fmt.Errorf("look up idempotency key: %w", err)
	}
	return nil, nil
}

// checkSuppression refuses, with ErrSuppressed, a message to number when
// number is on account's suppression list, unless key names a message
// stored before (a repeat, answered as any repeat is).
func (s *Service) checkSuppression(ctx context.Context, account, number, key string) error {
	suppressed, err := s.store.Suppressed(ctx, account, number)
	if err != nil {
		return fmt.Errorf("check suppression: %w", err)
	}
	if !suppressed {
		return nil
	}
	_, err = s.store.OutboundMessageByKey(ctx, key)
	switch {
	case errors.Is(err, switchboard.ErrNotFound):
		return ErrSuppressed
	case err != nil:
		return fmt.Errorf("look up idempotency key: %w", err)
	}
	return nil
}

// Replay queues a failed message Twilio never accepted again for a fresh
// run of send attempts (see switchboard.Store.ReplayMessage) and returns
// it. Any other message is an error wrapping switchboard.ErrConflict, an
// unknown id switchboard.ErrNotFound.
func (s *Service) Replay(ctx context.Context, id string) (*switchboard.OutboundMessage, error) {
	return s.store.ReplayMessage(ctx, id)
}

// route picks the pool of d as its API does: routeNative or routeAccount.
func (s *Service) route(d *Draft) (destination, error) {
	if d.API == switchboard.KeyAPITwilio {
		return s.routeAccount(d)
	}
	return s.routeNative(d)
}

// routeNative picks the pool d names, else the pool d's From is a sender
// of, else the first pool serving d's purpose (default transactional), and
// refuses a pool that does not send from d's From or does not serve the
// purpose.
func (s *Service) routeNative(d *Draft) (destination, error) {
	purpose := cmp.Or(d.Purpose, switchboard.PurposeTransactional)
	for i := range s.pools {
		p := &s.pools[i]
		switch {
		case d.Pool != "" && p.Name != d.Pool:
			continue
		case d.Pool == "" && d.From != "" && !slices.Contains(p.Senders, d.From):
			continue
		case d.Pool == "" && d.From == "" && !slices.Contains(p.Purposes, purpose):
			continue
		}
		if d.From != "" && !slices.Contains(p.Senders, d.From) {
			return destination{}, noPool("from %q: not a sender of pool %q", d.From, p.Name)
		}
		if !slices.Contains(p.Purposes, purpose) {
			return destination{}, noPool("pool %q does not serve purpose %q", p.Name, purpose)
		}
		return destination{pool: p, purpose: purpose}, nil
	}
	switch {
	case d.Pool != "":
		return destination{}, noPool("pool %q: no such pool", d.Pool)
	case d.From != "":
		return destination{}, noPool("from %q: not a sender of any pool", d.From)
	}
	return destination{}, noPool("no pool serves purpose %q", purpose)
}

// routeAccount picks, among d.Account's pools, the pool d's From is a
// sender of; without From, the pool d's Messaging Service (d.Pool) is a
// sender of, which then sends the message, else the first pool serving
// transactional messages. The purpose is transactional when the pool
// serves it, and otherwise the pool's first purpose.
func (s *Service) routeAccount(d *Draft) (destination, error) {
	if d.From == "" && d.Pool != "" {
		for i := range s.pools {
			if p := &s.pools[i]; p.AccountSID == d.Account && slices.Contains(p.Senders, d.Pool) {
				return destination{pool: p, purpose: p.purpose(), from: d.Pool}, nil
			}
		}
	}
	for i := range s.pools {
		p := &s.pools[i]
		if p.AccountSID != d.Account {
			continue
		}
		if d.From != "" && slices.Contains(p.Senders, d.From) ||
			d.From == "" && slices.Contains(p.Purposes, switchboard.PurposeTransactional) {
			return destination{pool: p, purpose: p.purpose()}, nil
		}
	}
	if d.From != "" {
		return destination{}, noPool("from %q: not a sender of any pool of account %s", d.From, d.Account)
	}
	return destination{}, noPool("no pool of account %s serves transactional messages", d.Account)
}

// purpose is the purpose of a message routed to p without one:
// transactional when p serves it, else p's first purpose.
func (p *PoolRoute) purpose() switchboard.Purpose {
	if !slices.Contains(p.Purposes, switchboard.PurposeTransactional) && len(p.Purposes) > 0 {
		return p.Purposes[0]
	}
	return switchboard.PurposeTransactional
}
