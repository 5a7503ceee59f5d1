package store

import (
	"context"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/jobs"
)

// Driver is what an engine supplies to a Store: transactions, and the SQL
// primitives run in them. A primitive does one thing to the tables (an
// insert, a selection, a delete) in the engine's dialect, with its own
// scanning and locking; every rule about what to write, and when, is the
// Store's. An engine may pipeline a primitive's statements (PostgreSQL
// does) or loop over them (SQLite does): callers see one call either way.
type Driver interface {
	// Read returns the primitives that read, on connections of their own,
	// outside any write transaction.
	Read() Reader
	// InTx runs fn in a write transaction and commits it. When fn fails,
	// or the commit does, the transaction is rolled back and the error
	// returned: nothing fn wrote is kept.
	InTx(ctx context.Context, fn func(Tx) error) error
}

// Reader is the primitives that read. A selection that finds nothing
// returns no items and no error; the Store turns that into ErrNotFound
// where a caller asked for one item.
type Reader interface {
	Events(ctx context.Context, q Query) ([]*switchboard.Event, error)
	Requests(ctx context.Context, q Query) ([]*switchboard.Request, error)
	Messages(ctx context.Context, q Query) ([]*switchboard.OutboundMessage, error)
	// Attempts returns an event's attempts, oldest first.
	Attempts(ctx context.Context, eventID string) ([]*switchboard.Attempt, error)
	// History returns a message's status changes in the order recorded.
	History(ctx context.Context, messageID string) ([]switchboard.StatusChange, error)
	// Exists reports whether table holds a row matching where, and holds
	// it (q.Lock) until the transaction ends where the engine locks rows.
	Exists(ctx context.Context, table string, q Query) (bool, error)
	// Counts counts the rows of table matching where by the value of
	// column.
	Counts(ctx context.Context, table, column string, where []Cond) (map[string]int64, error)
	// Count counts the rows of table matching where. Without a grouping
	// to serve, an engine is free to find them through the index of
	// their most selective condition.
	Count(ctx context.Context, table string, where []Cond) (int64, error)
	// CountUpTo counts the rows of table matching where, up to most: it
	// reads no more than most of them.
	CountUpTo(ctx context.Context, table string, where []Cond, most int) (int64, error)
	// OldestDue is the earliest next_attempt_at of the events waiting
	// (pending or retrying) that are due at now; zero when none is.
	OldestDue(ctx context.Context, now time.Time) (time.Time, error)
	// StickySender returns the sender stored for recipient in pool, and
	// false when there is none.
	StickySender(ctx context.Context, pool, recipient string) (string, bool, error)
	// SendView returns message id with its recipient's suppression and
	// sticky sender and the purposes of the earlier unsent messages to it
	// in its pool, in one statement; nil when there is no such message.
	SendView(ctx context.Context, id string) (*switchboard.SendView, error)
	// Session returns console session id if it expires after now; nil
	// when there is no such session.
	Session(ctx context.Context, id string, now time.Time) (*switchboard.ConsoleSession, error)

	// AlertStates returns every stored alert state, in no particular
	// order.
	AlertStates(ctx context.Context) ([]AlertStateRow, error)
	// AlertHistory returns the history of rule's alert key (every key of
	// rule when all), newest first, at most limit entries.
	AlertHistory(ctx context.Context, rule, key string, all bool, limit int) ([]switchboard.AlertEvent, error)

	// The selections of the rollups (Store.RollUp). Each takes the rows
	// whose time falls in [from, until), through an index on that time.

	// RequestsByMinute counts the requests received, by minute and
	// outcome (Key).
	RequestsByMinute(ctx context.Context, from, until time.Time) ([]MinuteCount, error)
	// SuppressionsByMinute counts the suppressions created, by minute and
	// reason (Key).
	SuppressionsByMinute(ctx context.Context, from, until time.Time) ([]MinuteCount, error)
	// DeadByMinute counts the events dead-lettered, by minute of their
	// updated time and route (Key).
	DeadByMinute(ctx context.Context, from, until time.Time) ([]MinuteCount, error)
	// AttemptFacts calls fn with each attempt started, in no particular
	// order; an error from fn ends the selection and is returned.
	AttemptFacts(ctx context.Context, from, until time.Time, fn func(AttemptFact) error) error
	// StatusFacts calls fn with each applied status change recorded, as
	// AttemptFacts does.
	StatusFacts(ctx context.Context, from, until time.Time, fn func(StatusFact) error) error
	// SendFacts calls fn with each message sent (by its sent time) and
	// each failed message Twilio never accepted (no Twilio SID; by its
	// updated time), as AttemptFacts does.
	SendFacts(ctx context.Context, from, until time.Time, fn func(SendFact) error) error
	// FirstFact is the earliest time, at or after from, of a row the
	// selections above could take; zero when there is none.
	FirstFact(ctx context.Context, from time.Time) (time.Time, error)
	// RollupMark returns the first minute of the rollups not final yet;
	// zero when none was set.
	RollupMark(ctx context.Context) (time.Time, error)
	// Rollups returns the aggregates of the minutes in [from, until),
	// summed by bucket of step (whole minutes) from from, series and key:
	// each row's Minute is its bucket's start, its counts and latency the
	// sums of its minutes'.
	Rollups(ctx context.Context, from, until time.Time, step time.Duration) ([]RollupRow, error)
	// Samples returns the samples of the minutes in [from, until),
	// combined by bucket of step from from, series and key, whatever
	// their nodes: a gauge's highest value, a counter's sum, the latency
	// histograms summed. Each one's Minute is its bucket's start, and its
	// Node empty.
	Samples(ctx context.Context, from, until time.Time, step time.Duration) ([]switchboard.Sample, error)

	DebuggerReader
}

// Tx is the primitives of a write transaction; it reads too.
type Tx interface {
	Reader

	// InsertEvents inserts events, in the order given, each in state
	// pending with no attempts and with its From and To, unless an event
	// with its idempotency key is stored: created[i] reports whether
	// events[i] was new. An insert that meets a key a concurrent
	// transaction holds waits for it.
	InsertEvents(ctx context.Context, events []NewEvent) (created []bool, err error)
	// InsertRequests inserts requests as they are.
	InsertRequests(ctx context.Context, requests []*switchboard.Request) error
	// ApplyAttempts inserts each attempt made (Number > 0) and updates its
	// event: state, attempts (never lowered), updated and next-attempt
	// time, delivered time when delivered, last error when non-empty, last
	// code (the attempt's TwilioCode) when an attempt was made, and the
	// stored response when a new one is given. A result with no attempt
	// made (Number 0) updates its event only if the event still has
	// Result.Attempts attempts and is not terminal, checked on the row as
	// concurrent writers left it; otherwise it changes nothing.
	ApplyAttempts(ctx context.Context, writes []AttemptWrite) error
	// MarkForReplay sets the events matching where to pending, due now,
	// and returns them with their attempt counts.
	MarkForReplay(ctx context.Context, where []Cond, now time.Time) ([]jobs.Due, error)
	// InsertJobs inserts delivery jobs in this transaction.
	InsertJobs(ctx context.Context, jobs []jobs.Scheduled) error
	// InsertSendJob inserts a send job due at at (now when zero).
	InsertSendJob(ctx context.Context, args jobs.SendArgs, at time.Time) error

	// InsertMessage inserts m as queued with no attempts, unless a message
	// with its idempotency key is stored; created reports which.
	InsertMessage(ctx context.Context, m *switchboard.OutboundMessage) (created bool, err error)
	// UpdateMessages writes back what sends, replays and status updates
	// change of each message.
	UpdateMessages(ctx context.Context, messages []*switchboard.OutboundMessage) error
	// InsertHistory appends status changes to their messages' histories,
	// in the order given.
	InsertHistory(ctx context.Context, rows []StatusRow) error
	// RedactMessage empties the body of message id and sets its updated
	// time to at; it writes no other column.
	RedactMessage(ctx context.Context, id string, at time.Time) error
	// DeleteMessage deletes message id and its history.
	DeleteMessage(ctx context.Context, id string) error
	// Heartbeat records node as seen at at, forgets the nodes not seen
	// since at-ttl, and counts those left.
	Heartbeat(ctx context.Context, node string, at time.Time, ttl time.Duration) (alive int, err error)
	// Suppress inserts number's entry on accountSID's suppression list,
	// or replaces its reason, unless keep is non-empty and the stored
	// reason starts with keep: that entry stays as it is.
	Suppress(ctx context.Context, accountSID, number, reason string, at time.Time, keep string) error
	// Unsuppress deletes number's entry from accountSID's suppression
	// list, unless keep is non-empty and its reason starts with keep.
	Unsuppress(ctx context.Context, accountSID, number, keep string) error
	// SetStickySenders inserts or replaces each sender of a recipient in a
	// pool, in the order given. An engine may pipeline them (PostgreSQL
	// does): a batch of send claims sets one per new recipient.
	SetStickySenders(ctx context.Context, senders []StickyWrite) error

	// InsertSession inserts console session s, unless a session with its
	// id is stored; created reports which.
	InsertSession(ctx context.Context, s *switchboard.ConsoleSession) (created bool, err error)
	// DeleteSessions deletes console session id (none for an empty id)
	// and up to limit of the sessions expired at expired (expiring at or
	// before it), those that expired first first.
	DeleteSessions(ctx context.Context, id string, expired time.Time, limit int) error

	// The primitives of retention. Each takes the oldest rows first, at
	// most limit, through the indexes made for it; an engine with
	// concurrent writers skips rows other transactions hold.

	// DeleteRejected deletes rejected requests received before before.
	DeleteRejected(ctx context.Context, before time.Time, limit int) (int, error)
	// DeleteEvents deletes events in state last updated before before,
	// with their attempts, and returns their ids and their requests' ids.
	DeleteEvents(ctx context.Context, state switchboard.State, before time.Time, limit int) (events, requests []string, err error)
	// DeleteOrphanRequests deletes, of the requests with the given ids and
	// those naming the given (deleted) events, each one no event refers
	// to any more: neither the event it names nor a fan-out event made
	// from it.
	DeleteOrphanRequests(ctx context.Context, requests, events []string) error
	// DeleteMessages deletes messages no longer queued or sending, last
	// updated before before, with their histories.
	DeleteMessages(ctx context.Context, before time.Time, limit int) (int, error)
	// OldStickySenders returns sticky senders set before before, each with
	// the creation time of the last message to its recipient in its pool.
	OldStickySenders(ctx context.Context, before time.Time, limit int) ([]StickyUse, error)
	// WriteStickySenders sets the time of each of touch to its LastMessage
	// and deletes each of drop.
	WriteStickySenders(ctx context.Context, touch, drop []StickyUse) error

	// The primitives of the alerts' writes.

	// PutAlertState inserts row when expect is 0 and none is stored for
	// its rule and key, or replaces the stored one whose version is
	// expect; ok reports whether it did (false: another writer changed
	// it first, and nothing was written).
	PutAlertState(ctx context.Context, row AlertStateRow, expect int64) (ok bool, err error)
	// InsertAlertEvent appends ev to its alert's history and returns its
	// id.
	InsertAlertEvent(ctx context.Context, ev *switchboard.AlertEvent) (int64, error)
	// DeleteAlertState deletes rule's alert key if its version is still
	// version, and reports whether it did.
	DeleteAlertState(ctx context.Context, rule, key string, version int64) (ok bool, err error)
	// TrimAlertHistory deletes the history of rule's alert key past its
	// keep newest entries, and every alert's entries from before before.
	TrimAlertHistory(ctx context.Context, rule, key string, keep int, before time.Time) error

	// The primitives of the rollups' writes.

	// LockRollups holds the rollups until the transaction ends, so that
	// passes of several processes write one after the other; an engine
	// with one writer needs no lock.
	LockRollups(ctx context.Context) error
	// ReplaceRollups deletes the aggregates of the minutes in [from,
	// until) and inserts rows, each within them.
	ReplaceRollups(ctx context.Context, from, until time.Time, rows []RollupRow) error
	// SetRollupMark sets the first minute not final.
	SetRollupMark(ctx context.Context, mark time.Time) error
	// DeleteRollups deletes the aggregates and samples of the minutes
	// before before.
	DeleteRollups(ctx context.Context, before time.Time) error
	// UpsertSamples inserts samples, each replacing one stored for its
	// minute, series, key and node.
	UpsertSamples(ctx context.Context, samples []switchboard.Sample) error

	DebuggerWriter
}

// MinuteCount is a count of rows of one minute with one value of a
// column.
type MinuteCount struct {
	Minute time.Time
	Key    string
	N      int64
}

// AttemptFact is what the rollups take of a delivery attempt.
type AttemptFact struct {
	StartedAt  time.Time
	Route      string // its event's
	StatusCode int
	Latency    time.Duration
	TwilioCode int
}

// StatusFact is what the rollups take of an applied status change, with
// its message's pool, template, recipient and times.
type StatusFact struct {
	At                  time.Time
	Status              string
	ErrorCode           int
	Source              string
	Pool, Template, To  string
	SentAt, DeliveredAt time.Time
}

// SendFact is what the rollups take of a message sent (Failed false, At
// its sent time) or failed before Twilio accepted it (Failed true, At
// its updated time, ErrorCode its code).
type SendFact struct {
	At                 time.Time
	Pool, Template, To string
	Failed             bool
	ErrorCode          int
}

// RollupRow is one minute's aggregate of one series and key (see
// rollup.go for what each series counts).
type RollupRow struct {
	Minute        time.Time
	Series, Key   string
	N, OK, Failed int64
	Latency       switchboard.LatencyHistogram // nil for none
}

// AlertStateRow is an alert state as stored: its switchboard.AlertState
// as JSON, with its version and update time beside it.
type AlertStateRow struct {
	Rule, Key string
	Version   int64
	State     []byte
	UpdatedAt time.Time
}

// NewEvent is an event to insert for a stored request.
type NewEvent struct {
	RequestID string
	Event     *switchboard.Event
	// DueAt is the event's next attempt time: its first delivery's.
	DueAt time.Time
}

// AttemptWrite is one delivery result to apply, with the times the Store
// derived from it.
type AttemptWrite struct {
	Result *switchboard.AttemptResult
	// UpdatedAt is when the attempt ended.
	UpdatedAt time.Time
	// NextAttemptAt is when the event is due again; zero (NULL) for an
	// event left terminal.
	NextAttemptAt time.Time
}

// StickyWrite is a sticky sender to set: From for Recipient in Pool, set
// at At.
type StickyWrite struct {
	Pool, Recipient, From string
	At                    time.Time
}

// StickyUse is a sticky sender and the creation time of the last message
// to its recipient in its pool (zero for none).
type StickyUse struct {
	Pool, Recipient string
	LastMessage     time.Time
}

// Table names a primitive may take.
const (
	TableEvents       = "events"
	TableRequests     = "requests"
	TableMessages     = "messages"
	TableSuppressions = "suppressions"
	TableDebugger     = "debugger_alerts"
)
