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
	"github.com/switchboard-dev/switchboard/twilio"
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
	Suppression(ctx context.Context, accountSID, number string) (reason string, err error)
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
	// DedupWindow, when positive, makes a Twilio-compatible create
	// without an idempotency key the message an identical create of the
	// same account made less than DedupWindow before it is. Zero, the
	// default, is Twilio's own behaviour: every such create is a message
	// of its own. Negative is zero, longer than MaxDedupWindow is
	// MaxDedupWindow.
	DedupWindow time.Duration
	// Metrics counts the status updates applied; nil counts them in an
	// unregistered set.
	Metrics *metrics.Metrics
	Now     func() time.Time // default time.Now
}

// MaxDedupWindow is the longest DedupWindow: a derived key is remembered
// as long as its message is stored, and messages are kept at least
// switchboard.MinRetention.
const MaxDedupWindow = switchboard.MinRetention

// Service creates, replays and tracks outbound messages for the APIs and
// for intake. It is safe for concurrent use.
type Service struct {
	store    ServiceStore
	pools    []PoolRoute
	window   time.Duration // ServiceOptions.DedupWindow; 0 for none
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
	return &Service{store: store, pools: slices.Clone(o.Pools), window: min(max(o.DedupWindow, 0), MaxDedupWindow), metrics: o.Metrics, now: o.Now}
}

// Key prefixes of creates without an idempotency key, in the Twilio API's
// key space of the account.
const (
	// derivedKeyPrefix starts the key derived from the payload under a
	// dedup window.
	derivedKeyPrefix = "auto:"
	// ownKeyPrefix starts the key of a create that is a message of its
	// own, followed by the message's id: no other create derives it.
	ownKeyPrefix = "msg:"
)

// legacyWindow is the one window length whose derived keys omit it: the
// day all derived keys had before the window was configurable.
const legacyWindow = 24 * time.Hour

// Errors of Create, for the APIs to answer in their dialect.
var (
	// ErrSuppressed is what every refusal of a recipient on its
	// account's suppression list is (errors.Is): a *RecipientRefused,
	// which tells Twilio's code for it. Nothing was stored.
	ErrSuppressed = errors.New("recipient is on the suppression list: the message was not stored or sent")
	// ErrUnroutable is wrapped, with switchboard.ErrInvalid, by the error
	// of a create no configured pool takes.
	ErrUnroutable = errors.New("no pool takes the message")
)

// RecipientRefused refuses a message to a recipient on its account's
// suppression list with the code Twilio gives for it at create: 21610 for
// an opt-out, else the code Twilio refused the recipient with for good
// (see twilio.RecipientRefusals), such as 21614. Nothing was stored. Its
// text names the code, never the recipient.
type RecipientRefused struct{ Code twilio.Code }

func (e *RecipientRefused) Error() string {
	return fmt.Sprintf("recipient refused (%d, %s): the message was not stored or sent", int(e.Code), e.Code)
}

// Is makes every RecipientRefused ErrSuppressed.
func (e *RecipientRefused) Is(target error) bool { return target == ErrSuppressed }

// refusalOf is the refusal of a recipient on the suppression list for
// reason: the code of a refusal Twilio gave, else (an opt-out) 21610.
func refusalOf(reason string) *RecipientRefused {
	if code, ok := switchboard.RefusalCode(reason); ok {
		return &RecipientRefused{Code: twilio.Code(code)}
	}
	return &RecipientRefused{Code: twilio.CodeUnsubscribedRecipient}
}

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
	// account of the pool the message goes to. Empty (the
	// Twilio-compatible API without an idempotency header) makes the
	// create a message of its own, or, under a DedupWindow, derives a key
	// from the payload, so that an identical create within the window is
	// the same message.
	Key string
	// Payload is the message as the caller asked for it. For the native
	// API, Pool and From pick the pool, else Purpose does (empty:
	// transactional). For the Twilio-compatible API, which has no purpose,
	// Pool is the Messaging Service SID named, if any (see routeAccount).
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
// a *RecipientRefused (ErrSuppressed) and nothing is stored, unless the key
// already names a stored message, which comes back as any repeat does. A
// message no pool takes is an error wrapping ErrUnroutable.
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
	id := uuid.Must(uuid.NewV7()).String()
	now := s.now()
	switch {
	case d.Key == "" && s.window > 0:
		key = derivedKey(d.API, account, hash, now, s.window)
		if twin, err := s.recentTwin(ctx, d.API, account, hash, now); twin != nil || err != nil {
			return twin, false, err
		}
	case d.Key == "":
		key = switchboard.MessageKey{API: d.API, Account: account, Key: ownKeyPrefix + id}.String()
	}
	if err := s.checkSuppression(ctx, account, p.To, key); err != nil {
		return nil, false, err
	}
	m = &switchboard.OutboundMessage{
		ID: id, IdempotencyKey: key, AccountSID: account, Pool: dest.pool.Name,
		Purpose: dest.purpose, From: cmp.Or(p.From, dest.from), To: p.To, Body: p.Body, MediaURLs: p.MediaURLs,
		StatusWebhook: d.StatusWebhook, Template: p.Template, PayloadHash: hash,
		CreatedAt: now, // the clock the derived keys' windows are measured by
	}
	if created, err = s.store.CreateMessage(ctx, m); err != nil {
		return nil, false, fmt.Errorf("create message: %w", err)
	}
	return m, created, nil
}

// derivedKey is the stored idempotency key of a create without one under
// a dedup window, in api's key space of account: the payload hash and the
// window-long interval, counted from the Unix epoch, that at falls in.
// For a day-long window its stored form,
// "twilio:{account}:auto:{hash}:{n}", is the one every derived key had
// while the window was fixed at a day, so those stored then still match.
// Any other length is written after it ("...:{n}:1h0m0s"), so that the
// intervals of two lengths never share a key: a key of a length used
// before would otherwise name a message of another time.
func derivedKey(api switchboard.KeyAPI, account, hash string, at time.Time, window time.Duration) string {
	key := derivedKeyPrefix + hash + ":" + strconv.FormatInt(at.UnixNano()/int64(window), 10)
	if window != legacyWindow {
		key += ":" + window.String()
	}
	return switchboard.MessageKey{API: api, Account: account, Key: key}.String()
}

// recentTwin returns the message stored for an identical create without
// a key in the previous interval, when it is younger than the window: it
// is this message. nil when there is none.
func (s *Service) recentTwin(ctx context.Context, api switchboard.KeyAPI, account, hash string, now time.Time) (*switchboard.OutboundMessage, error) {
	prev, err := s.store.OutboundMessageByKey(ctx, derivedKey(api, account, hash, now.Add(-s.window), s.window))
	switch {
	case err == nil && now.Sub(prev.CreatedAt) < s.window:
		return prev, nil
	case err != nil && !errors.Is(err, switchboard.ErrNotFound):
		return nil, fmt.Errorf("look up idempotency key: %w", err)
	}
	return nil, nil
}

// checkSuppression refuses, with a *RecipientRefused, a message to number
// when number is on account's suppression list, unless key names a
// message stored before (a repeat, answered as any repeat is). It fails
// closed: a store error refuses the create.
func (s *Service) checkSuppression(ctx context.Context, account, number, key string) error {
	reason, err := s.store.Suppression(ctx, account, number)
	switch {
	case errors.Is(err, switchboard.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("check suppression: %w", err)
	}
	_, err = s.store.OutboundMessageByKey(ctx, key)
	switch {
	case errors.Is(err, switchboard.ErrNotFound):
		return refusalOf(reason)
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
// transactional messages. That pool sends a message naming a Messaging
// Service none of the account's pools lists through that service all the
// same, at the pace of one of its senders: never from a number of the
// pool, which is not the service the app asked for (Twilio refuses a
// service the account does not have, 21701, when the message is sent).
// The purpose is transactional when the pool serves it, and otherwise the
// pool's first purpose.
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
			dest := destination{pool: p, purpose: p.purpose()}
			if d.From == "" {
				dest.from = d.Pool // the service asked for; "" when none
			}
			return dest, nil
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
