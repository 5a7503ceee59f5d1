// Package switchboard holds Switchboard's domain: the webhook requests it
// receives, the events it accepts from them, the delivery attempts it makes to
// the application, and the Store that keeps all of them durable.
//
// Adapters live in packages named after what they wrap: sqlite and postgres
// implement Store, twilio speaks Twilio's protocol, ingest receives webhooks,
// deliver forwards them to the app and web serves the admin API.
package switchboard

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Version is the build's version, set with -ldflags at release time.
var Version = "dev"

// Kind is what a Twilio webhook request is about.
type Kind string

// The kinds of webhook Switchboard recognises.
const (
	KindMessage            Kind = "message"             // inbound SMS/MMS/WhatsApp
	KindMessageStatus      Kind = "message-status"      // status callback of a message
	KindVoice              Kind = "voice"               // a call asking for TwiML
	KindCallStatus         Kind = "call-status"         // status callback of a call
	KindClientNotification Kind = "client-notification" // Voice SDK notification (JSON)
	KindFallback           Kind = "fallback"            // Twilio's fallback URL request
	KindOther              Kind = "other"
	// KindDebugger is Twilio's Debugger webhook (see DebuggerAlert); only
	// a route configured with kind debugger takes it.
	KindDebugger Kind = "debugger"
	// KindNotification is an alert's notification to a notifier (see
	// Notification), made by Switchboard itself, never received.
	KindNotification Kind = "notification"
)

// Kinds lists every Kind, in a stable order.
var Kinds = []Kind{KindMessage, KindMessageStatus, KindVoice, KindCallStatus, KindClientNotification, KindFallback, KindOther,
	KindDebugger, KindNotification}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// IsStatus reports whether the kind is a status callback, whose answer to
// Twilio is an empty 200 rather than TwiML.
func (k Kind) IsStatus() bool { return k == KindMessageStatus || k == KindCallStatus }

// State is where an event stands in its delivery to the app.
type State string

// Delivery states. Delivered and Dead are terminal until a replay.
const (
	StatePending   State = "pending"   // stored, first attempt not yet made
	StateRetrying  State = "retrying"  // an attempt failed; another is scheduled
	StateDelivered State = "delivered" // the app answered 2xx
	StateDead      State = "dead"      // given up: 410, max attempts or max age
)

// States lists every State, in a stable order.
var States = []State{StatePending, StateRetrying, StateDelivered, StateDead}

// Valid reports whether s is one of States.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Terminal reports whether no further delivery is scheduled in this state.
func (s State) Terminal() bool { return s == StateDelivered || s == StateDead }

// Outcome is what became of one received request.
type Outcome string

// Request outcomes.
const (
	OutcomeAccepted  Outcome = "accepted"  // stored as a new event
	OutcomeDuplicate Outcome = "duplicate" // a retry of an event already stored
	OutcomeRejected  Outcome = "rejected"  // refused (signature, size, form...); never delivered
)

// Request is one HTTP request received on a webhook route, exactly as it
// arrived, whatever became of it.
type Request struct {
	ID         string
	ReceivedAt time.Time
	Route      string // the route's path
	Method     string
	URL        string // the public URL the signature was checked against
	Header     http.Header
	Body       []byte
	RemoteAddr string
	Outcome    Outcome
	Reason     string // why it was rejected or what it duplicated
	EventID    string // the event it created or duplicated; empty when rejected
}

// Response is the answer given to Twilio for an event; duplicates get the
// same one.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// Event is an accepted request on its way to the app.
type Event struct {
	ID             string
	RequestID      string
	Route          string
	AccountSID     string
	Kind           Kind
	MessageSID     string
	CallSID        string
	IdempotencyKey string
	// Target, when not empty, is where the event is delivered instead of
	// its route's target: a fan-out event (see Ingest.Fanout), such as a
	// status callback for an outbound message's status webhook. It is
	// delivered like any event of its route: with the route's retry policy
	// and account token (re-signed for Target), the request's body byte
	// for byte, and the circuit breaker of Target's origin, not the route's.
	Target    string
	Response  Response
	State     State
	Attempts  int // delivery attempts made so far
	CreatedAt time.Time
	UpdatedAt time.Time
	// NextAttemptAt is when the next delivery is due; zero when none is
	// scheduled. Given to Store.Ingest, a non-zero time delays the new
	// event's first delivery until then (see Store.Ingest); zero means now.
	NextAttemptAt time.Time
	DeliveredAt   time.Time // zero until delivered
	LastError     string
	// LastCode is the Twilio error code of the last attempt (0 when it
	// succeeded or none was made).
	LastCode int
	// From and To are the webhook's From and To (as Twilio sent them),
	// for finding an event by number; empty when it had none.
	From, To string
}

// ValidateFanout checks what Store.Ingest and Store.IngestFanout need of a
// fan-out event (see Ingest.Fanout): an ID, an IdempotencyKey and a Target.
func (e *Event) ValidateFanout() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("%w: fan-out event without an id", ErrInvalid)
	case e.IdempotencyKey == "":
		return fmt.Errorf("%w: fan-out event %s without an idempotency key", ErrInvalid, e.ID)
	case e.Target == "":
		return fmt.Errorf("%w: fan-out event %s without a target", ErrInvalid, e.ID)
	}
	return nil
}

// Attempt is one try at delivering an event to the app.
type Attempt struct {
	ID              int64
	EventID         string
	Number          int // 1 for the first attempt of the event
	StartedAt       time.Time
	TargetURL       string
	StatusCode      int // 0 when no HTTP answer was received
	Latency         time.Duration
	ErrorClass      string // empty on success; see deliver.Class*
	TwilioCode      int    // the Twilio error code the same failure would have caused; 0 on success
	Error           string
	ResponseHeader  http.Header
	ResponseExcerpt []byte
}

// Sentinel errors callers branch on; both store engines map their own errors
// to these. (A duplicate webhook is not an error: Store.Ingest reports it in
// Ingest.Duplicate.)
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid input")
	// ErrConflict is returned when an outbound message is created with an
	// idempotency key already used for a different payload (see
	// Store.CreateMessage); the same key with the same payload is not an
	// error.
	ErrConflict = errors.New("conflict")
)
