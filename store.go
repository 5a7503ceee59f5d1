package switchboard

import (
	"context"
	"fmt"
	"time"
)

// Store keeps requests, events and attempts durable and runs the delivery
// jobs. Its use cases are written once, in package store, over a driver
// of SQL primitives; sqlite.Store (default) and postgres.Store supply
// their engine's driver. Every
// method is safe for concurrent use; the store conformance suite in storetest
// holds both engines to the same behaviour.
type Store interface {
	// Ingest stores received requests durably. For each accepted item it
	// creates the event and schedules its delivery in the same transaction,
	// unless an event with the same idempotency key exists, in which case the
	// item becomes a duplicate of it. Concurrent calls are group-committed:
	// they share transactions and fsyncs. When Ingest returns nil every item
	// is durable and its result fields are set; when it returns an error none
	// of the items was stored. A call waiting past ctx for its commit returns
	// an error, and the caller must not report the items as stored.
	//
	// A new event's first delivery is due now when its Event.NextAttemptAt
	// is zero. When it is set, the first delivery job is scheduled for that
	// time instead, and the event is stored with it as its next attempt
	// time; like any scheduled delivery, the job may start up to a few
	// seconds after it is due. A delayed first delivery is a safety net for
	// a caller that tries the delivery itself meanwhile (proxy mode): it
	// records its attempt with RecordAttempts, which moves the event's
	// attempt count on, so the delayed job, carrying attempt count 0, finds
	// the event moved on and does nothing (see Deliverer). If the caller
	// dies before recording, the job delivers the event: nothing is lost. A
	// duplicate's NextAttemptAt is ignored, like the rest of its Event.
	//
	// An accepted item's Fanout events are created with it, in the same
	// transaction, each with its own delivery job (see Ingest.Fanout); a
	// duplicate creates none.
	Ingest(ctx context.Context, items []*Ingest) error

	// IngestFanout creates fan-out events of requests already stored (see
	// Ingest.Fanout), for a caller that learns only after a request was
	// answered that the request has one, in one transaction. Each event
	// needs an ID, the RequestID of its stored request, an IdempotencyKey
	// and a Target (ErrInvalid); it is created with its delivery job, as
	// Ingest creates one, unless an event with its idempotency key exists,
	// in which case it is skipped. So a key derived from the request's own
	// event makes the fan-out at most once, however often it is tried.
	// When IngestFanout returns nil every event is durable or was already
	// there; when it returns an error none was stored.
	IngestFanout(ctx context.Context, events []*Event) error

	// RecordAttempts stores delivery attempts, the event state each leads to
	// and, for an event still to be delivered, its next delivery job, in one
	// transaction. Like Ingest, concurrent calls are group-committed. A
	// result with a non-empty Attempt.Error sets the event's LastError
	// whatever its State, so an event delivered with an error (the app got
	// the request but answered badly) keeps it; an empty Error leaves
	// LastError as it was. A result's non-nil Response replaces the event's
	// stored response in the same transaction.
	//
	// A result whose Attempt.Number is 0 (no request was made: an open
	// circuit, an event parked for a listener) records no attempt and is
	// applied only if the event still has result.Attempts attempts and is
	// not terminal; otherwise it is stale (another delivery moved the event
	// on meanwhile) and is ignored, so it cannot undo that delivery. A
	// result with an attempt applies to the event only while no attempt of
	// its number or later is on record (its attempt row is kept either
	// way): a process that stalled past the takeover of its job cannot
	// undo, when it resumes, what the process that took over recorded.
	RecordAttempts(ctx context.Context, results []*AttemptResult) error

	// WaitingEvents returns a page of the events of f.Routes still to be
	// delivered (pending or retrying, whatever their next attempt time)
	// that have no Target of their own, in the order they were created: by
	// ID, which is time-ordered (UUIDv7), after f.After. A listener's
	// session reads them to deliver each in order (see package listener).
	WaitingEvents(ctx context.Context, f WaitingFilter) ([]*Event, error)

	// Event returns the event with the given id, or ErrNotFound.
	Event(ctx context.Context, id string) (*Event, error)
	// Request returns the request with the given id, or ErrNotFound.
	Request(ctx context.Context, id string) (*Request, error)
	// Attempts returns an event's attempts, oldest first.
	Attempts(ctx context.Context, eventID string) ([]*Attempt, error)
	// ListEvents returns a page of events, newest first.
	ListEvents(ctx context.Context, f EventFilter) (*Page[*Event], error)
	// ListRequests returns a page of requests, newest first.
	ListRequests(ctx context.Context, f RequestFilter) (*Page[*Request], error)

	// Replay schedules a new delivery for every matching event that is in a
	// terminal state (delivered or dead); events still pending or retrying
	// already have a delivery scheduled and are skipped, so an event is never
	// delivered by two jobs at once. It returns how many were scheduled.
	Replay(ctx context.Context, f ReplayFilter) (int, error)
	// ReplayCount counts the events Replay(f) would schedule now, without
	// scheduling any (ErrInvalid as Replay).
	ReplayCount(ctx context.Context, f ReplayFilter) (int, error)

	// CreateSession stores a console session (a zero CreatedAt becomes
	// now) and writes it back as stored; an invalid one is ErrInvalid
	// (ConsoleSession.Validate), an id already stored ErrConflict. It
	// deletes, in the same transaction, a bounded batch of the sessions
	// expired at its creation, so that sessions nobody signs out of do
	// not pile up.
	CreateSession(ctx context.Context, s *ConsoleSession) error
	// Session returns the console session with id, or ErrNotFound when
	// there is none or it has expired at now (ExpiresAt is not after
	// now).
	Session(ctx context.Context, id string, now time.Time) (*ConsoleSession, error)
	// DeleteSession deletes the console session with id (signing out),
	// and a bounded batch of those expired at now, oldest first; an
	// absent one is not an error.
	DeleteSession(ctx context.Context, id string, now time.Time) error

	// Dashboard reads the dashboard's series (see Dashboard) from the
	// store's per-minute aggregates (see RollUp) and the processes'
	// samples (see RecordSamples): ErrInvalid for what
	// DashboardQuery.Buckets refuses (an empty range, one longer than
	// MaxDashboardRange, a Step that is not whole minutes, over
	// MaxDashboardRange or making more than MaxDashboardBuckets buckets).
	Dashboard(ctx context.Context, q DashboardQuery) (*Dashboard, error)
	// RollUp brings the per-minute aggregates that Dashboard reads up to
	// date at now. They are computed from the rows the store keeps
	// (requests, attempts, message status histories, messages,
	// suppressions), so a pass is idempotent: run again, by this process
	// after a crash or by several replicas at once, it writes the same
	// aggregates. Each pass recomputes the minutes not yet final, a few
	// before now's, where late rows may still land; older ones are final
	// and are kept, whatever retention later deletes of the rows, for
	// RollupRetention. A pass computes at most an hour of minutes
	// (RollUpResult.Behind says when more are left).
	RollUp(ctx context.Context, now time.Time) (RollUpResult, error)
	// RecordSamples stores what processes measured over finished minutes
	// (see Sample), replacing what was stored for the same minute, node,
	// series and key; samples older than RollupRetention go with the
	// aggregates. A sample that is not Valid, or more than MaxSamples of
	// them, is ErrInvalid, and nothing is stored.
	RecordSamples(ctx context.Context, samples []Sample) error

	// AlertStates returns every stored alert state (see AlertState),
	// ordered by rule and key.
	AlertStates(ctx context.Context) ([]AlertState, error)
	// PutAlertState stores st if the stored state's Version is still
	// st.Version (0: none stored yet), with Version then one more, and
	// appends ev to the alert's history (nil: none) in the same
	// transaction; otherwise it returns ErrConflict and changes nothing.
	// History is kept for RollupRetention and at most MaxAlertHistory
	// entries per alert.
	PutAlertState(ctx context.Context, st *AlertState, ev *AlertEvent) error
	// DeleteAlertState deletes an alert's state if its Version is still
	// version (ErrConflict otherwise, or when there is none); its history
	// stays. For alerts long quiet: see alerting's pruning.
	DeleteAlertState(ctx context.Context, rule, key string, version int64) error
	// AlertHistory returns an alert's history (key "" for every key of
	// the rule), newest first, at most limit entries.
	AlertHistory(ctx context.Context, rule, key string, limit int) ([]AlertEvent, error)

	// DebuggerAlerts lists the stored Debugger alerts (see
	// Ingest.Debugger), newest first by the time they were received: by
	// id without a time range, by (time, id) with one, as ListEvents
	// pages. A bad cursor or a negative code is ErrInvalid. An alert is
	// deleted with its event (Prune), in the same transaction.
	DebuggerAlerts(ctx context.Context, f DebuggerFilter) (*Page[*DebuggerAlert], error)

	// CreateMessage stores an outbound message before anything is sent
	// (store before send) and, in the same transaction, schedules its first
	// send job, due at m.NextAttemptAt, or now when that is zero. The
	// message is stored in MessageQueued with no attempts, whatever m's
	// State says; a zero CreatedAt becomes now. m needs an ID, an
	// IdempotencyKey, a To, a PayloadHash and a valid Purpose (ErrInvalid).
	// A created message is written back to *m as stored.
	//
	// The idempotency key is unique. When a message with m's key exists
	// and has the same PayloadHash, CreateMessage fills *m with the stored
	// message, schedules nothing and returns created=false; when its hash
	// differs, it returns an error wrapping ErrConflict and leaves *m alone.
	// Of concurrent creates with one key, on any number of replicas,
	// exactly one returns created=true.
	CreateMessage(ctx context.Context, m *OutboundMessage) (created bool, err error)
	// OutboundMessage returns the message with the given id, or ErrNotFound.
	OutboundMessage(ctx context.Context, id string) (*OutboundMessage, error)
	// OutboundMessageByKey returns the message with the given idempotency
	// key, or ErrNotFound. The key is the stored form of a MessageKey,
	// which names its API and account: it finds only that account's
	// message.
	OutboundMessageByKey(ctx context.Context, key string) (*OutboundMessage, error)
	// OutboundMessageBySID returns the message of accountSID that Twilio
	// knows by twilioSID, or ErrNotFound, also when that SID is another
	// account's message: an SID, which anyone may name, never reaches
	// across accounts. An empty accountSID is ErrInvalid.
	OutboundMessageBySID(ctx context.Context, accountSID, twilioSID string) (*OutboundMessage, error)
	// MessageBySID returns the message of accountSID that sid names: by
	// the Switchboard SID it was given at create (OutboundMessage.SID),
	// else by the SID Twilio gave it; ErrNotFound for another account's,
	// as for an unknown one.
	MessageBySID(ctx context.Context, accountSID, sid string) (*OutboundMessage, error)
	// ListOutboundMessages returns a page of messages, newest first.
	ListOutboundMessages(ctx context.Context, f OutboundFilter) (*Page[*OutboundMessage], error)

	// ListAccountMessages returns a page of one account's messages (see
	// AccountFilter), newest first by creation time, then id: the
	// Twilio-compatible listing. A page starting from a position holds the
	// same messages whatever was created since. An invalid filter is
	// ErrInvalid.
	ListAccountMessages(ctx context.Context, f AccountFilter) (*AccountPage, error)
	// CancelMessage cancels the queued message id of accountSID (see
	// OutboundMessage.Cancel) and appends a "canceled" entry (source
	// "api") to its history, in one transaction that holds the message
	// against a concurrent send claim: of a cancel and a claim
	// (RecordSend of MessageSending), exactly one wins, and the loser gets
	// ErrNotCancelable or ErrCanceled. A message already canceled is
	// returned as it is. It returns the message as it stands; another
	// account's message, like an unknown one, is ErrNotFound and left
	// alone.
	CancelMessage(ctx context.Context, accountSID, id string) (*OutboundMessage, error)
	// RedactMessage empties the body of the settled message id of
	// accountSID (see OutboundMessage.Redact) and returns it; a message
	// still queued or sending is ErrNotSettled, another account's
	// ErrNotFound, and neither is changed.
	RedactMessage(ctx context.Context, accountSID, id string) (*OutboundMessage, error)
	// DeleteMessage deletes the settled message id of accountSID with its
	// history, in one transaction; its idempotency key is free again. A
	// message still queued or sending is ErrNotSettled, another account's
	// ErrNotFound, and neither is changed.
	DeleteMessage(ctx context.Context, accountSID, id string) error

	// RecordSend stores the outcome of a send attempt in one transaction.
	// r.State is MessageSending, MessageSent (with a TwilioSID),
	// MessageFailed, or MessageQueued for a retry, in which case the next
	// send job, carrying r.Attempts, is scheduled at r.NextAttemptAt (now
	// when zero). A result applies only to a message still queued or
	// sending whose attempt count is not above r.Attempts; any other result
	// (stale, repeated, or for a message Twilio already has) changes
	// nothing and schedules nothing, so it cannot undo a newer outcome.
	// MessageSent sets SentAt; a non-empty From, TwilioStatus or Error and a
	// non-zero ErrorCode replace the stored ones. An unknown message is
	// ErrNotFound; any other State is ErrInvalid. A MessageSending result
	// (a sender's claim, recorded before its request to Twilio) for a
	// canceled message is ErrCanceled: the sender must not send it. A
	// sticky claim (SendResult.Sticky) that applies also sets the
	// recipient's sticky sender, as SetStickySender does, in the same
	// transaction.
	RecordSend(ctx context.Context, r SendResult) error
	// UpdateMessageStatus applies a status update from Twilio to the message
	// of u.AccountSID with u.TwilioSID, monotonically (see
	// OutboundMessage.ApplyStatus): a repeated or out-of-order older status
	// does not change the message. Every update, applied or not, is
	// appended to the message's history in the same transaction. A zero
	// u.At is now. It returns the message as it stands after the update.
	// An unknown SID is ErrNotFound, and so is another account's: that
	// message is left alone and nothing is appended to any history. An
	// update without an account is ErrInvalid (StatusUpdate.Validate).
	UpdateMessageStatus(ctx context.Context, u StatusUpdate) (*OutboundMessage, error)
	// MessageHistory returns the status updates of a message, oldest
	// (first recorded) first; none for an unknown message.
	MessageHistory(ctx context.Context, messageID string) ([]StatusChange, error)

	// ReplayMessage queues a failed message again for a fresh run of send
	// attempts and schedules its send job, in one transaction: its state
	// becomes queued, its attempt count 0 and its ReplayedAt now, and a
	// "replayed" entry (source "replay") is appended to its history; its
	// last error and code stay until a send replaces them. Only a
	// replayable message (OutboundMessage.Replayable: failed, never
	// accepted by Twilio) is replayed; any other is ErrConflict, and an
	// unknown id ErrNotFound. It returns the message as replayed.
	ReplayMessage(ctx context.Context, id string) (*OutboundMessage, error)
	// EarlierUnsent returns the oldest message of pool to recipient created
	// before the message beforeID (by id order, which is creation order)
	// that is still queued or sending and whose purpose is one of
	// purposes; ErrNotFound when there is none. It keeps sends to one
	// recipient in order (FIFO per recipient within a pool). A pool sends
	// with one account, so this stays within it.
	EarlierUnsent(ctx context.Context, pool, recipient, beforeID string, purposes []Purpose) (*OutboundMessage, error)
	// SendView returns message id with what a send attempt of it reads
	// besides (see SendView: its recipient's suppression, sticky sender and
	// earlier unsent messages), in one read that sees them all as of one
	// moment; ErrNotFound for an unknown message.
	SendView(ctx context.Context, id string) (*SendView, error)
	// SenderHeartbeat records that node, a sending process, is alive at
	// at, forgets nodes not seen for ttl, and returns how many nodes are
	// alive (this one included), so that they can share each sender's
	// rate.
	SenderHeartbeat(ctx context.Context, node string, at time.Time, ttl time.Duration) (alive int, err error)

	// Suppress adds number to accountSID's suppression list with reason,
	// an opt-out or a refusal (RefusalReason), or replaces the reason of
	// its entry; except that an opt-out never replaces a refusal, which
	// stays as it is. Numbers are compared exactly: callers normalise them
	// (E.164) first.
	Suppress(ctx context.Context, accountSID, number, reason string) error
	// Unsuppress removes number's opt-out from accountSID's suppression
	// list; a refusal stays. Removing an absent number is not an error.
	Unsuppress(ctx context.Context, accountSID, number string) error
	// Suppressed reports whether number is on accountSID's suppression list,
	// for either reason.
	Suppressed(ctx context.Context, accountSID, number string) (bool, error)
	// Suppression returns the reason number is on accountSID's suppression
	// list, or ErrNotFound when it is not.
	Suppression(ctx context.Context, accountSID, number string) (reason string, err error)

	// StickySender returns the sender last set for recipient in pool, or
	// ErrNotFound. Like EarlierUnsent, per pool, and so per account.
	StickySender(ctx context.Context, pool, recipient string) (from string, err error)
	// SetStickySender sets the sender of recipient in pool, replacing any
	// previous one.
	SetStickySender(ctx context.Context, pool, recipient, from string) error

	// Prune deletes, in one transaction, up to limit items of kind (see
	// PruneKind) that are older than before, oldest first, with what
	// belongs to them, and returns how many items it deleted. It never
	// deletes an event that is pending or retrying, nor a request an
	// event still refers to, nor a message being sent, and keeps every
	// reference whole: attempts and status history go with their event or
	// message, in the same transaction. An item changed concurrently (a
	// replayed event) is left alone. Fewer than limit means none was left
	// when it ran, except for sticky senders: one found still in use is
	// kept and counts its last use as its age instead. An unknown kind or
	// a limit below 1 is ErrInvalid.
	Prune(ctx context.Context, kind PruneKind, before time.Time, limit int) (n int, err error)

	// Stats reports what the metrics need from storage.
	Stats(ctx context.Context) (*Stats, error)
	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error

	// StartDelivery starts delivery workers that call d for each due event.
	StartDelivery(ctx context.Context, d Deliverer, cfg DeliveryConfig) error
	// StopDelivery stops the workers, letting running deliveries finish
	// until ctx is done.
	StopDelivery(ctx context.Context) error
	// Close releases the store; StopDelivery first.
	Close() error
}

// Ingest is one received request handed to Store.Ingest.
type Ingest struct {
	Request Request // Outcome is OutcomeAccepted or OutcomeRejected on input
	Event   *Event  // the event to create; nil for a rejected request

	// Fanout are further events of an accepted request, each delivered to
	// its own Event.Target (which must be set: ErrInvalid otherwise), such
	// as a message status callback also due to the message's status
	// webhook. When Event is created, each fan-out event is created in the
	// same transaction, from the same stored request (its RequestID is set
	// to Request.ID), with its own idempotency key and its own delivery
	// job, due at its own NextAttemptAt (now when zero): the request is
	// acknowledged only once they are all durable. A fan-out event whose
	// key is already stored is skipped. When the item turns out a
	// duplicate, none is created: its original created its own. Store.Ingest
	// leaves the slice as it was given.
	Fanout []*Event

	// RecordDuplicate, when set, is asked once the item turns out a
	// duplicate whether its request is recorded; false records nothing
	// for it (it is answered as a duplicate all the same). nil records it.
	// A recorded duplicate is stored as metadata (Request.Metadata): its
	// original holds the content. This bounds what a flood of replays of
	// one captured request can write.
	RecordDuplicate func() bool

	// Debugger, for a Debugger webhook (a route of kind debugger), is its
	// parsed alert: stored in the same transaction as the event when the
	// item is accepted, with its EventID and ReceivedAt set to the
	// event's and the request's; nothing of it is stored for a duplicate.
	// An alert whose account and Sid are stored already (its event pruned
	// since) is kept as it was.
	Debugger *DebuggerAlert

	// Set by Store.Ingest for accepted requests. Duplicate is true when an
	// event with the same idempotency key already existed; Event is then
	// replaced by that existing event (with its stored response) and
	// Request.Outcome becomes OutcomeDuplicate.
	Duplicate bool
}

// DuplicateRecord returns what is stored for the request of it, found a
// duplicate of event original: the request as metadata, marked as that
// event's duplicate; ok is false when RecordDuplicate declines to record
// it. Both engines store duplicates through it.
func (it *Ingest) DuplicateRecord(original string) (req Request, ok bool) {
	if it.RecordDuplicate != nil && !it.RecordDuplicate() {
		return Request{}, false
	}
	req = it.Request
	req.Outcome, req.Reason, req.EventID = OutcomeDuplicate, "duplicate of event "+original, original
	return req.Metadata(), true
}

// AttemptResult is the outcome of one delivery try and the state it leaves
// the event in.
type AttemptResult struct {
	// Attempt is the request made to the app. Number 0 means none was made
	// (the target's circuit was open, or the route is gone): no attempt is
	// recorded, only the event's new state.
	Attempt Attempt
	// State is the event's new state. For StatePending and StateRetrying the
	// store schedules the next delivery at NextAttemptAt.
	State         State
	NextAttemptAt time.Time
	// Attempts is the event's attempt count after this result; the next
	// delivery job carries it, so that a stale job finds it changed. See
	// AttemptsAfter.
	Attempts int
	// Response, when non-nil, replaces the event's stored response (status,
	// content type and body), so that a later duplicate of the webhook is
	// answered with it (Ingest.Duplicate, with Event.Response). nil leaves
	// the stored response as it is.
	Response *Response
}

// AttemptsAfter is the event's attempt count after this result: Attempts,
// and never less than the number of the attempt just made.
func (r *AttemptResult) AttemptsAfter() int { return max(r.Attempts, r.Attempt.Number) }

// DeliveryConfig tunes the delivery workers.
type DeliveryConfig struct {
	Workers      int           // concurrent deliveries per process
	PollInterval time.Duration // how often idle workers look for due jobs
	JobTimeout   time.Duration // a running delivery job is cancelled after this
	// RescueAfter is how long a job may stay running before another worker
	// takes it over, for jobs whose process died. Longer than JobTimeout.
	RescueAfter time.Duration
	// Sender, when set, also works the send jobs of outbound messages, on
	// a queue of their own, with SendWorkers concurrent sends (default
	// Workers).
	Sender      Sender
	SendWorkers int
	// Rescued, when set, is told of each job taken over from a process
	// that stopped while running it, by kind ("delivery", "send").
	Rescued func(kind string)
	// Node names this process among the replicas sharing the store (its
	// heartbeats, its jobs' worker); empty: the job queue names it.
	Node string
}

// Deliverer makes one delivery attempt of an event and records its result
// with Store.RecordAttempts, which schedules the next attempt if one is due.
// attempts is the attempt count the event had when the delivery was
// scheduled: if the event has moved on since (a stale or rescued job), or is
// terminal, the Deliverer does nothing. It returns an error only for an
// internal failure; the job is then tried again.
type Deliverer interface {
	Deliver(ctx context.Context, eventID string, attempts int) error
}

// Sender makes one send attempt of an outbound message and records its
// result with Store.RecordSend, which schedules the next attempt if one is
// due. attempts is the attempt count the message had when the send was
// scheduled: if the message has moved on since (a stale job), or is
// terminal, the Sender does nothing — except for a message left sending at
// attempts+1, the attempt of a job that died mid-send and was rescued,
// which the Sender resolves without sending twice. It returns an error
// only for an internal failure; the job is then tried again.
type Sender interface {
	Send(ctx context.Context, messageID string, attempts int) error
}

// Page is one page of a listing. Next is the cursor of the following page,
// empty on the last one.
type Page[T any] struct {
	Items []T
	Next  string
}

// EventFilter selects events. Zero fields do not filter.
type EventFilter struct {
	// AccountSID, when set, selects that account's events only.
	AccountSID string
	Route      string
	Kind       Kind
	State      State
	SID        string // a MessageSid or CallSid
	// Number matches an event whose webhook's From or To is this number
	// (as Twilio sent it, E.164 for phones).
	Number string
	// TwilioCode matches an event whose last attempt had this Twilio
	// error code (Event.LastCode); 0 or less does not filter.
	TwilioCode int
	Since      time.Time
	Until      time.Time
	Cursor     string // Page.Next of the previous page
	Limit      int    // default 50, at most 500
}

// RequestFilter selects requests. Zero fields do not filter.
type RequestFilter struct {
	Route   string
	Outcome Outcome // accepted, duplicate or rejected
	EventID string
	Since   time.Time
	Until   time.Time
	Cursor  string
	Limit   int
}

// ReplayFilter selects events to replay: one by ID, or in bulk by route,
// kind, last Twilio code, state and time range. An empty filter is
// refused (ErrInvalid) so that a bare replay cannot redeliver everything
// by accident.
type ReplayFilter struct {
	EventID    string
	Route      string
	Kind       Kind
	TwilioCode int   // the last attempt's code (Event.LastCode)
	State      State // StateDelivered or StateDead; empty means both
	Since      time.Time
	Until      time.Time
}

// Validate refuses an empty bulk filter, a non-terminal state or a
// negative code (which would filter nothing, and so replay all).
func (f ReplayFilter) Validate() error {
	if f.TwilioCode < 0 {
		return fmt.Errorf("%w: replay by Twilio code %d: codes are positive", ErrInvalid, f.TwilioCode)
	}
	if f.EventID == "" && f.Route == "" && f.Kind == "" && f.TwilioCode == 0 && f.State == "" && f.Since.IsZero() && f.Until.IsZero() {
		return fmt.Errorf("%w: replay needs an event id or at least one of route, kind, code, state, since, until", ErrInvalid)
	}
	if f.State != "" && !f.State.Terminal() {
		return fmt.Errorf("%w: only delivered or dead events can be replayed, not %q", ErrInvalid, f.State)
	}
	return nil
}

// Stats is what the metrics read from storage.
type Stats struct {
	EventsByState map[State]int64
	// OldestDue is when the oldest pending or retrying delivery became due;
	// zero when nothing is waiting.
	OldestDue time.Time
	// OutboundQueued counts, by pool, the outbound messages waiting to be
	// sent or being sent (queued or sending); a pool with none is absent.
	OutboundQueued map[string]int64
}

// LimitOrDefault clamps a page size to 1..500, default 50.
func LimitOrDefault(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 500:
		return 500
	}
	return n
}
