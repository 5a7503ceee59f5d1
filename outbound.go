package switchboard

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Purpose is what an outbound message is for; it decides the pool a message
// is routed to and its priority when a pool is saturated.
type Purpose string

// The purposes of outbound messages.
const (
	PurposeOTP           Purpose = "otp"           // one-time passcodes: first in line
	PurposeTransactional Purpose = "transactional" // receipts, alerts, notifications
	PurposeMarketing     Purpose = "marketing"     // campaigns: last in line, paused under brownout
)

// Purposes lists every Purpose, in a stable order (highest priority first).
var Purposes = []Purpose{PurposeOTP, PurposeTransactional, PurposeMarketing}

// Valid reports whether p is one of Purposes.
func (p Purpose) Valid() bool {
	for _, v := range Purposes {
		if p == v {
			return true
		}
	}
	return false
}

// MessageState is where an outbound message stands, from being stored to its
// final delivery receipt.
type MessageState string

// Outbound message states. Their Rank orders them: a message only moves to a
// state of higher rank (see OutboundMessage.ApplyStatus).
const (
	MessageQueued      MessageState = "queued"      // stored, not yet accepted by Twilio
	MessageSending     MessageState = "sending"     // a send request may be in flight
	MessageSent        MessageState = "sent"        // Twilio accepted it (it has a SID)
	MessageDelivered   MessageState = "delivered"   // the carrier confirmed delivery
	MessageUndelivered MessageState = "undelivered" // the carrier could not deliver it
	MessageFailed      MessageState = "failed"      // refused by Twilio or by Switchboard, never sent
	MessageCanceled    MessageState = "canceled"    // withdrawn by the app before it was handed to Twilio, never sent
	MessageRead        MessageState = "read"        // read by the recipient (channels with read receipts)
)

// MessageStates lists every MessageState, in rank order.
var MessageStates = []MessageState{MessageQueued, MessageSending, MessageSent, MessageDelivered,
	MessageUndelivered, MessageFailed, MessageCanceled, MessageRead}

// Valid reports whether s is one of MessageStates.
func (s MessageState) Valid() bool {
	for _, v := range MessageStates {
		if s == v {
			return true
		}
	}
	return false
}

// Terminal reports whether the message's outcome is known: delivered,
// undelivered, failed, canceled or read. No send is made in a terminal
// state, and only delivered still moves on, to read.
func (s MessageState) Terminal() bool { return s.Rank() >= 3 }

// Settled reports whether a message in state s is past its send: neither
// queued nor sending. Only a settled message may be redacted or deleted,
// and retention prunes only settled ones: the sender still needs the rest
// as they are (a sending message's body identifies it at Twilio when its
// send's outcome is unknown). An unknown state is not settled.
func (s MessageState) Settled() bool {
	return s.Valid() && s != MessageQueued && s != MessageSending
}

// Rank orders states for monotonic updates: queued 0 < sending 1 < sent 2 <
// delivered, undelivered, failed, canceled 3 < read 4. An unknown state
// ranks -1.
// States of equal rank never replace each other, so the first outcome
// reported (delivered, undelivered or failed) is the one kept.
func (s MessageState) Rank() int {
	switch s {
	case MessageQueued:
		return 0
	case MessageSending:
		return 1
	case MessageSent:
		return 2
	case MessageDelivered, MessageUndelivered, MessageFailed, MessageCanceled:
		return 3
	case MessageRead:
		return 4
	}
	return -1
}

// StatusState maps one of Twilio's message status strings to the state it
// puts a message in. Twilio's accepted, scheduled, queued, sending and sent
// all mean Twilio has the message: MessageSent. canceled (a scheduled
// message withdrawn) is MessageFailed. ok is false for a status Switchboard
// does not know, which then never changes a message's state.
func StatusState(twilioStatus string) (state MessageState, ok bool) {
	switch twilioStatus {
	case "accepted", "scheduled", "queued", "sending", "sent":
		return MessageSent, true
	case "delivered":
		return MessageDelivered, true
	case "undelivered":
		return MessageUndelivered, true
	case "failed", "canceled":
		return MessageFailed, true
	case "read":
		return MessageRead, true
	}
	return "", false
}

// twilioSubRank orders Twilio's statuses that all map to MessageSent, so
// that TwilioStatus too only moves forward within that state.
func twilioSubRank(twilioStatus string) int {
	switch twilioStatus {
	case "queued":
		return 1
	case "sending":
		return 2
	case "sent":
		return 3
	}
	return 0 // accepted, scheduled, or none yet
}

// OutboundMessage is a message an app asked Switchboard to send, stored
// before it is sent.
type OutboundMessage struct {
	ID             string // UUIDv7, so id order is creation order
	IdempotencyKey string // unique: the same key is the same message; see MessageKey
	AccountSID     string
	Pool           string
	Purpose        Purpose
	From           string // the sender; empty until one is chosen
	To             string
	Body           string
	MediaURLs      []string
	StatusWebhook  string // where the app wants status callbacks; empty for none
	// Template is the app's name for the message's content (see
	// ValidTemplate); delivery latency and error codes are broken down by
	// it. Empty for none.
	Template string
	// PayloadHash is the hash of the message's Payload, computed by the
	// caller with Payload.Hash; a second create with the same key must
	// carry the same hash.
	PayloadHash  string
	State        MessageState
	TwilioSID    string // set once Twilio accepted the message
	TwilioStatus string // Twilio's own last status string
	ErrorCode    int    // the Twilio error code of a failure; 0 for none
	Attempts     int    // send attempts made so far
	// NextAttemptAt is when the next send is due; zero when none is
	// scheduled. Given to Store.CreateMessage, a non-zero time delays the
	// first send until then; zero means now.
	NextAttemptAt time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
	SentAt        time.Time // zero until Twilio accepted it
	DeliveredAt   time.Time // zero until delivered (or read)
	// ReplayedAt is when the message was last replayed after it failed
	// (Store.ReplayMessage); zero if never. Its age counts from then.
	ReplayedAt time.Time
	LastError  string
}

// Age is how long m has been waiting to be sent at now: since it was
// created, or since it was last replayed.
func (m *OutboundMessage) Age(now time.Time) time.Duration {
	since := m.CreatedAt
	if m.ReplayedAt.After(since) {
		since = m.ReplayedAt
	}
	return now.Sub(since)
}

// Replayable reports whether m may be replayed: it failed without Twilio
// ever accepting it (it has no Twilio SID), so sending it again cannot
// send its idempotency key twice. A message Twilio accepted and then
// failed (a carrier failure) is not replayable: the app sends a new one.
func (m *OutboundMessage) Replayable() bool {
	return m.State == MessageFailed && m.TwilioSID == ""
}

// StatusReplayed is the status, and SourceReplay the source, of the history
// entry a replay appends (see Store.ReplayMessage).
const (
	StatusReplayed = "replayed"
	SourceReplay   = "replay"
)

// Replay puts a replayable message back in the queue at now for a fresh run
// of send attempts: queued, no attempts, due now, ReplayedAt and UpdatedAt
// now. It returns an error wrapping ErrConflict, and changes nothing, when
// m is not Replayable.
func (m *OutboundMessage) Replay(now time.Time) error {
	if !m.Replayable() {
		if m.TwilioSID != "" {
			return fmt.Errorf("%w: message %s is %s and Twilio accepted it (%s): replaying would send it twice",
				ErrConflict, m.ID, m.State, m.TwilioSID)
		}
		return fmt.Errorf("%w: message %s is %s: only failed messages are replayed", ErrConflict, m.ID, m.State)
	}
	m.State, m.Attempts, m.NextAttemptAt, m.ReplayedAt, m.UpdatedAt = MessageQueued, 0, now, now, now
	return nil
}

// Errors of the message rules below, which callers branch on.
var (
	// ErrCanceled refuses a send claimed for a canceled message (see
	// OutboundMessage.CheckClaim): whoever claimed it must not send it.
	ErrCanceled = errors.New("message canceled")
	// ErrNotCancelable refuses the cancel of a message no longer queued.
	ErrNotCancelable = errors.New("message can no longer be canceled")
	// ErrNotSettled refuses to redact or delete a message still queued or
	// being sent.
	ErrNotSettled = errors.New("message still queued or being sent")
)

// StatusCanceled is the status, and SourceAPI the source, of the history
// entry a cancel appends (see Store.CancelMessage).
const (
	StatusCanceled = "canceled"
	SourceAPI      = "api"
)

// CanCancel reports whether m may be canceled: it is queued, so no send of
// it is under way. A message being sent, or that Twilio has, is not: its
// request may already have reached Twilio.
func (m *OutboundMessage) CanCancel() bool { return m.State == MessageQueued }

// Cancel withdraws m at now: canceled, nothing more due, UpdatedAt now. A
// message already canceled stays as it is (no error), so that a repeated
// cancel is answered alike. Any other message that cannot be canceled is an
// error wrapping ErrNotCancelable, and m is left alone.
func (m *OutboundMessage) Cancel(now time.Time) error {
	switch {
	case m.State == MessageCanceled:
		return nil
	case !m.CanCancel():
		return fmt.Errorf("%w: message %s is %s", ErrNotCancelable, m.ID, m.State)
	}
	m.State, m.NextAttemptAt, m.UpdatedAt = MessageCanceled, time.Time{}, now
	return nil
}

// CheckClaim refuses, with ErrCanceled, a send result that claims a
// canceled message for a send (MessageSending): the claim is what a sender
// records before its request to Twilio, so a cancel that came first keeps
// the message from being sent. Any other result for a canceled message
// simply does not apply (ApplySend).
func (m *OutboundMessage) CheckClaim(r SendResult) error {
	if m.State == MessageCanceled && r.State == MessageSending {
		return fmt.Errorf("%w: message %s was canceled before it was sent", ErrCanceled, m.ID)
	}
	return nil
}

// CanRedact reports whether m's body may be redacted: it is settled (see
// MessageState.Settled), as Twilio redacts only a message past its send.
func (m *OutboundMessage) CanRedact() bool { return m.State.Settled() }

// Redact empties m's body at now (UpdatedAt now; a body already empty is
// left as it is), or returns an error wrapping ErrNotSettled, and changes
// nothing, when m is not CanRedact. Its PayloadHash stays: a repeat of its
// create with its key is still the same message.
func (m *OutboundMessage) Redact(now time.Time) error {
	if !m.CanRedact() {
		return fmt.Errorf("%w: message %s is %s", ErrNotSettled, m.ID, m.State)
	}
	if m.Body != "" {
		m.Body, m.UpdatedAt = "", now
	}
	return nil
}

// CanDelete reports whether m may be deleted: it is settled, so no sender
// needs it any more.
func (m *OutboundMessage) CanDelete() bool { return m.State.Settled() }

// MaxTemplateLen is the longest Template accepted.
const MaxTemplateLen = 64

// ValidTemplate reports whether t may name a template: empty, or 1 to
// MaxTemplateLen ASCII letters, digits, '_', '-', '.' and ':'. Templates
// become metric labels, so they are kept short and plain.
func ValidTemplate(t string) bool {
	if len(t) > MaxTemplateLen {
		return false
	}
	for _, c := range []byte(t) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// ApplyStatus applies one Twilio status update to m, monotonically, and
// reports whether it changed anything. An update applies when it moves the
// message to a state of higher rank, or, within MessageSent, to a later
// Twilio status (queued, sending, sent). It never applies when it would move
// the message back, or across outcomes of one rank (undelivered stays
// undelivered if a delivered receipt arrives after it: the first outcome is
// kept), and read does not follow undelivered or failed. An unknown status
// never applies. An applied update sets State and TwilioStatus, sets
// ErrorCode when it carries one (a later update without a code keeps it),
// sets SentAt and DeliveredAt the first time the message reaches sent and
// delivered (read counts as delivered), and sets UpdatedAt to u.At.
func (m *OutboundMessage) ApplyStatus(u StatusUpdate) bool {
	next, ok := StatusState(u.Status)
	if !ok {
		return false
	}
	cur := m.State
	switch {
	case next.Rank() > cur.Rank():
		if next == MessageRead && (cur == MessageUndelivered || cur == MessageFailed) {
			return false
		}
	case next == MessageSent && cur == MessageSent:
		if twilioSubRank(u.Status) <= twilioSubRank(m.TwilioStatus) {
			return false
		}
	default:
		return false
	}
	m.State, m.TwilioStatus, m.UpdatedAt = next, u.Status, u.At
	if u.ErrorCode != 0 {
		m.ErrorCode = u.ErrorCode
	}
	if m.SentAt.IsZero() {
		m.SentAt = u.At
	}
	if m.DeliveredAt.IsZero() && (next == MessageDelivered || next == MessageRead) {
		m.DeliveredAt = u.At
	}
	return true
}

// ApplySend applies a send result to m and reports whether it changed
// anything. A result applies only while m is queued or sending (never to a
// canceled message) and r.Attempts
// is not below m.Attempts, so that a stale or repeated result cannot undo a
// newer outcome. An applied result sets State, Attempts and UpdatedAt (to
// at); a non-empty From, TwilioSID, TwilioStatus or Error (into LastError)
// and a non-zero ErrorCode replace the stored ones; MessageSent sets SentAt
// the first time; MessageQueued sets NextAttemptAt to r.NextAttemptAt, or at
// when that is zero, and every other state clears it. r must be valid (see
// SendResult.Validate).
func (m *OutboundMessage) ApplySend(r SendResult, at time.Time) bool {
	if (m.State != MessageQueued && m.State != MessageSending) || r.Attempts < m.Attempts {
		return false
	}
	m.State, m.Attempts, m.UpdatedAt = r.State, r.Attempts, at
	if r.From != "" {
		m.From = r.From
	}
	if r.TwilioSID != "" {
		m.TwilioSID = r.TwilioSID
	}
	if r.TwilioStatus != "" {
		m.TwilioStatus = r.TwilioStatus
	}
	if r.ErrorCode != 0 {
		m.ErrorCode = r.ErrorCode
	}
	if r.Error != "" {
		m.LastError = r.Error
	}
	if r.State == MessageSent && m.SentAt.IsZero() {
		m.SentAt = at
	}
	m.NextAttemptAt = time.Time{}
	if r.State == MessageQueued {
		m.NextAttemptAt = r.NextAttemptAt
		if m.NextAttemptAt.IsZero() {
			m.NextAttemptAt = at
		}
	}
	return true
}

// Payload is what an app asks to send in one outbound message, as it
// asked: what makes two creates with one idempotency key the same message
// (see Hash).
type Payload struct {
	To        string
	Body      string
	MediaURLs []string
	// Pool is the pool as the caller named it (empty when it named none),
	// not the one the message was routed to: a repeat routed elsewhere
	// after a configuration change is still the same message.
	Pool     string
	From     string
	Purpose  Purpose
	Template string
}

// Hash is the hex SHA-256 of p's canonical form, stored as the message's
// PayloadHash. A nil and an empty media list hash alike, and an empty
// template hashes as it did before templates existed. Stored messages are
// compared by it: its value for a given payload never changes.
func (p Payload) Hash() string {
	media := p.MediaURLs
	if media == nil {
		media = []string{}
	}
	// Field order is fixed by the struct; JSON escapes every separator.
	canonical, err := json.Marshal(struct {
		To       string   `json:"to"`
		Body     string   `json:"body"`
		Media    []string `json:"media"`
		Pool     string   `json:"pool"`
		From     string   `json:"from"`
		Purpose  Purpose  `json:"purpose"`
		Template string   `json:"template,omitempty"`
	}{p.To, p.Body, media, p.Pool, p.From, p.Purpose, p.Template})
	if err != nil {
		panic("switchboard: encode message payload: " + err.Error()) // strings only: cannot happen
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// KeyAPI names the API an outbound message's idempotency key came
// through: each API has a key space of its own (see MessageKey).
type KeyAPI string

// The APIs that create outbound messages.
const (
	KeyAPINative KeyAPI = "api"    // POST /api/v1/messages
	KeyAPITwilio KeyAPI = "twilio" // the Twilio-compatible API
)

// MessageKey is an outbound message's idempotency key as its caller gave
// it, with the API it came through and the account the message is sent
// with. Keys of different APIs or accounts never meet: the stored key
// (String, OutboundMessage.IdempotencyKey) starts with the API and the
// account, which the caller does not choose, so no caller key, whatever it
// contains, reaches another API's or account's messages.
type MessageKey struct {
	API KeyAPI
	// Account is the account SID. Account SIDs hold no ':' (the
	// configuration refuses one), which keeps the stored form unambiguous.
	Account string
	Key     string // the caller's key, or one derived from its request
}

// String is the stored form: API ":" Account ":" Key.
func (k MessageKey) String() string { return string(k.API) + ":" + k.Account + ":" + k.Key }

// ParseMessageKey splits a stored key into the MessageKey it was made
// from; ok is false for a key not in that form (an unknown API or no
// account), which no stored message has once migration 0005 ran.
func ParseMessageKey(stored string) (k MessageKey, ok bool) {
	api, rest, ok1 := strings.Cut(stored, ":")
	account, key, ok2 := strings.Cut(rest, ":")
	k = MessageKey{API: KeyAPI(api), Account: account, Key: key}
	if !ok1 || !ok2 || account == "" || (k.API != KeyAPINative && k.API != KeyAPITwilio) {
		return MessageKey{}, false
	}
	return k, true
}

// OutboundFilter selects outbound messages. Zero fields do not filter.
type OutboundFilter struct {
	Pool     string
	Purpose  Purpose
	State    MessageState
	To       string
	Template string
	// ErrorCode matches a message whose stored error code is this one;
	// 0 or less does not filter.
	ErrorCode int
	// Number matches a message to or from this number.
	Number string
	Since  time.Time // created at or after
	Until  time.Time // created before
	Cursor string    // Page.Next of the previous page
	Limit  int       // default 50, at most 500
}

// MaxAccountPage is the largest page of Store.ListAccountMessages, as
// Twilio's largest PageSize.
const MaxAccountPage = 1000

// MessagePosition is a message's place in an account's listing, newest
// first: by creation time, then by id. It stays where it is whatever
// messages are added, so pages that start from one are stable.
type MessagePosition struct {
	CreatedAt time.Time
	ID        string
}

// PositionOf is m's MessagePosition.
func PositionOf(m *OutboundMessage) MessagePosition {
	return MessagePosition{CreatedAt: m.CreatedAt, ID: m.ID}
}

// AccountFilter selects one account's messages for
// Store.ListAccountMessages. Zero fields other than AccountSID do not
// filter.
type AccountFilter struct {
	AccountSID string // required: a listing never spans accounts
	To, From   string
	// SentSince and SentBefore bound SentAt: at or after SentSince, before
	// SentBefore. A message not sent yet matches neither.
	SentSince, SentBefore time.Time
	// After, when set, starts the page just after that position (older
	// messages); Before, when set, ends it just before (newer messages:
	// the page preceding one that started there). At most one of them.
	After, Before *MessagePosition
	Limit         int // 1 to MaxAccountPage
}

// Validate refuses a filter without an account, with both After and
// Before, or with a Limit out of range.
func (f AccountFilter) Validate() error {
	switch {
	case f.AccountSID == "":
		return fmt.Errorf("%w: a listing of messages without an account", ErrInvalid)
	case f.After != nil && f.Before != nil:
		return fmt.Errorf("%w: a page both after and before a position", ErrInvalid)
	case f.Limit < 1 || f.Limit > MaxAccountPage:
		return fmt.Errorf("%w: page size %d: 1 to %d", ErrInvalid, f.Limit, MaxAccountPage)
	}
	return nil
}

// AccountPage is a page of Store.ListAccountMessages, newest first. More
// reports whether messages lie beyond it in the direction it was read:
// older ones for a page read after a position (or from the start), newer
// ones for a page read before one.
type AccountPage struct {
	Items []*OutboundMessage
	More  bool
}

// SendResult is the outcome of one send attempt, recorded by
// Store.RecordSend.
type SendResult struct {
	MessageID string
	// Attempts is the message's attempt count after this result; a retry's
	// send job carries it, so that a stale job finds it changed.
	Attempts int
	// State is MessageSending (recorded before the request to Twilio, so
	// that a crash leaves an ambiguous send visible), MessageSent, MessageFailed,
	// or MessageQueued for a retry at NextAttemptAt.
	State        MessageState
	From         string // the sender chosen; empty keeps the stored one
	TwilioSID    string // for MessageSent
	TwilioStatus string // Twilio's status in its answer, such as "queued"
	ErrorCode    int    // the Twilio error code of a failure; 0 keeps the stored one
	Error        string // non-empty sets LastError
	// NextAttemptAt is when a retry is due (MessageQueued); zero means now.
	NextAttemptAt time.Time
	At            time.Time // when the result was reached; zero means now
	// Sticky, on a MessageSending result (a claim) with a From, also makes
	// From the recipient's sticky sender in the message's pool, in the
	// claim's transaction, when the claim applies: the sender is recorded
	// exactly when a send from it may have been made.
	Sticky bool
}

// SendView is a message as a send attempt reads it (Store.SendView): the
// message and, in the same read, so that they agree with each other, the
// other rows that decide the attempt.
type SendView struct {
	Message *OutboundMessage
	// Suppressed reports whether the recipient is on the account's
	// suppression list, for Suppression, its reason.
	Suppressed  bool
	Suppression string
	// Sticky is the recipient's sticky sender in the message's pool;
	// empty for none.
	Sticky string
	// EarlierUnsent are the purposes of the pool's messages to the
	// recipient created before this one (by id order) and still queued or
	// sending, each once; none when there are none.
	EarlierUnsent []Purpose
}

// StatusUpdate is one status report of a message from Twilio, applied by
// Store.UpdateMessageStatus.
type StatusUpdate struct {
	TwilioSID string
	Status    string // Twilio's MessageStatus, such as "delivered"
	ErrorCode int    // Twilio's ErrorCode; 0 for none
	At        time.Time
	Source    string // where it came from, such as "callback" or "lookup"

	// AccountSID is the account the report is known to come from: the one
	// whose token verified the callback. Only a message of that account
	// is updated (required: see Validate).
	AccountSID string
}

// Validate refuses an update Store.UpdateMessageStatus does not take: one
// without an account, which could otherwise only be matched to a message
// by an SID any account may name.
func (u StatusUpdate) Validate() error {
	if u.AccountSID == "" {
		return fmt.Errorf("%w: status update of %q without an account", ErrInvalid, u.TwilioSID)
	}
	return nil
}

// StatusChange is one recorded status update of a message, applied or not.
type StatusChange struct {
	Status    string
	ErrorCode int
	At        time.Time
	Source    string
	// Applied is false for an update that did not change the message: a
	// repeated, out-of-order or unknown status.
	Applied bool
}

// ValidateNew checks what Store.CreateMessage needs of a new message: an ID,
// an IdempotencyKey, a To, a PayloadHash, a valid Purpose and a valid
// Template.
func (m *OutboundMessage) ValidateNew() error {
	switch {
	case m.ID == "":
		return fmt.Errorf("%w: message without an id", ErrInvalid)
	case m.IdempotencyKey == "":
		return fmt.Errorf("%w: message without an idempotency key", ErrInvalid)
	case m.To == "":
		return fmt.Errorf("%w: message without a recipient", ErrInvalid)
	case m.PayloadHash == "":
		return fmt.Errorf("%w: message without a payload hash", ErrInvalid)
	case !m.Purpose.Valid():
		return fmt.Errorf("%w: unknown purpose %q", ErrInvalid, m.Purpose)
	case !ValidTemplate(m.Template):
		return fmt.Errorf("%w: template %q: at most %d letters, digits, '_', '-', '.' or ':'", ErrInvalid, m.Template, MaxTemplateLen)
	}
	return nil
}

// Validate refuses a result Store.RecordSend does not take: one without a
// message id, a state other than queued, sending, sent or failed, a sent
// result without a Twilio SID, or a sticky one that is not a claim with a
// sender.
func (r SendResult) Validate() error {
	switch {
	case r.MessageID == "":
		return fmt.Errorf("%w: send result without a message id", ErrInvalid)
	case r.State == MessageSent && r.TwilioSID == "":
		return fmt.Errorf("%w: sent result without a Twilio SID", ErrInvalid)
	case r.Sticky && (r.State != MessageSending || r.From == ""):
		return fmt.Errorf("%w: a sticky sender is set only by a claim (sending) with a sender", ErrInvalid)
	}
	switch r.State {
	case MessageQueued, MessageSending, MessageSent, MessageFailed:
		return nil
	}
	return fmt.Errorf("%w: a send result cannot be %q", ErrInvalid, r.State)
}
