package switchboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"
)

// AlertCondition names what an alert rule watches. Every condition is read
// from the store's per-minute aggregates (see Dashboard) over the rule's
// window, except breaker_open, which is this process's live state.
type AlertCondition string

// The conditions an alert rule can watch. Each observes one value per key
// (a route, a pool, …); an alert is one rule and one key.
const (
	// AlertErrorCode: how many times Code (0: any code) was seen in the
	// window, from Source; breaches above Threshold. Key: the code.
	AlertErrorCode AlertCondition = "error_code"
	// AlertThrottled: Twilio's 429 answers to a pool's sends in the
	// window; breaches above Threshold. Key: the pool.
	AlertThrottled AlertCondition = "throttled"
	// AlertDeliveryFailure: the share (0..1) of a route's delivery
	// attempts the app did not answer 2xx, with at least MinCount
	// attempts; breaches above Threshold. Key: the route.
	AlertDeliveryFailure AlertCondition = "delivery_failure"
	// AlertDeliveryRate: the share (0..1) of outbound outcomes that were
	// deliveries, per pool, template or country (By), with at least
	// MinCount outcomes; breaches below Threshold (a floor).
	AlertDeliveryRate AlertCondition = "delivery_rate"
	// AlertAckLatency: p95 of the time to answer Twilio, in
	// milliseconds, in every minute of For; breaches above Threshold.
	AlertAckLatency AlertCondition = "ack_latency"
	// AlertDeliveryLatency: p95 of a route's delivery attempts, in
	// milliseconds, in every minute of For; breaches above Threshold.
	AlertDeliveryLatency AlertCondition = "delivery_latency"
	// AlertDeadLetters: events of a route dead-lettered in the window;
	// breaches above Threshold. Key: the route.
	AlertDeadLetters AlertCondition = "dead_letters"
	// AlertQueueLag: how long, in seconds, the oldest due event has
	// waited (the highest sample in the window); breaches above
	// Threshold.
	AlertQueueLag AlertCondition = "queue_lag"
	// AlertBreakerOpen: a delivery target's circuit breaker open (or
	// half-open) for longer than For, as this process sees it. Key: the
	// target's origin.
	AlertBreakerOpen AlertCondition = "breaker_open"
	// AlertOptOuts: numbers that opted out in the window; breaches above
	// Threshold.
	AlertOptOuts AlertCondition = "opt_outs"
)

// AlertConditions lists every AlertCondition.
var AlertConditions = []AlertCondition{AlertErrorCode, AlertThrottled, AlertDeliveryFailure, AlertDeliveryRate,
	AlertAckLatency, AlertDeliveryLatency, AlertDeadLetters, AlertQueueLag, AlertBreakerOpen, AlertOptOuts}

// Sources of the error codes an AlertErrorCode rule counts.
const (
	CodeSourceAny      = ""         // all of them
	CodeSourceDelivery = "delivery" // Switchboard's own delivery attempts (11200, 11205, …)
	CodeSourceMessage  = "message"  // outbound messages' status callbacks and send refusals (30007, …)
	CodeSourceDebugger = "debugger" // Twilio's Debugger webhooks (route kind debugger)
)

// Breakdowns an AlertDeliveryRate rule can watch.
const (
	ByPool     = "pool"
	ByTemplate = "template"
	ByCountry  = "country"
)

// AlertRule is one configured alert ([[alerts]]).
type AlertRule struct {
	Name      string
	Condition AlertCondition
	// Window is how far back the condition looks (whole minutes).
	Window time.Duration
	// For is how long the condition must hold before the alert fires
	// (the latency SLO's "N minutes", the breaker's "longer than N").
	For time.Duration
	// ClearFor is how long the condition must stay clear before a firing
	// alert resolves; an alert that keeps re-firing has it lengthened
	// (flap damping, see AlertState).
	ClearFor  time.Duration
	Threshold float64
	// MinCount is the least volume a rate is judged on (attempts,
	// outcomes): below it the alert neither fires nor resolves on noise.
	MinCount int64
	Code     int    // AlertErrorCode: the code; 0 any
	Source   string // AlertErrorCode: CodeSource*
	By       string // AlertDeliveryRate: ByPool, ByTemplate or ByCountry
	// Match limits the rule to one key (a route path, pool, template,
	// country or target origin); empty watches every key.
	Match    string
	Severity string // "critical" or "warning"
	// Runbook is the heading anchor in docs/runbooks.md of what to do.
	Runbook string
	// Notify names the [[notifiers]] told of its transitions; empty
	// means every notifier.
	Notify   []string
	Disabled bool
}

// alertName keeps names usable in URLs, idempotency keys and metrics.
var alertName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Validate checks a rule.
func (r *AlertRule) Validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: alert %q: %s", ErrInvalid, r.Name, fmt.Sprintf(f, a...))
	}
	if !alertName.MatchString(r.Name) {
		return bad("name: want 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit")
	}
	if !slices.Contains(AlertConditions, r.Condition) {
		return bad("condition %q: want one of %v", r.Condition, AlertConditions)
	}
	if r.Window < time.Minute || r.Window%time.Minute != 0 || r.Window > 24*time.Hour {
		return bad("window %s: want whole minutes from 1m to 24h", r.Window)
	}
	if r.For < 0 || r.For > 24*time.Hour || r.ClearFor < 0 || r.ClearFor > 24*time.Hour {
		return bad("for and clear_for: want 0 to 24h")
	}
	if r.Threshold < 0 {
		return bad("threshold: must not be negative")
	}
	switch r.Condition {
	case AlertDeliveryFailure, AlertDeliveryRate:
		if r.Threshold > 1 {
			return bad("threshold %v: a share, want 0 to 1", r.Threshold)
		}
	}
	switch r.Source {
	case CodeSourceAny, CodeSourceDelivery, CodeSourceMessage, CodeSourceDebugger:
	default:
		return bad("source %q: want delivery, message, debugger or empty for all", r.Source)
	}
	if r.Condition == AlertDeliveryRate {
		switch r.By {
		case ByPool, ByTemplate, ByCountry:
		default:
			return bad("by %q: want pool, template or country", r.By)
		}
	}
	switch r.Severity {
	case "critical", "warning":
	default:
		return bad("severity %q: want critical or warning", r.Severity)
	}
	if r.MinCount < 0 || r.Code < 0 {
		return bad("min_count and code: must not be negative")
	}
	return nil
}

// DefaultAlertRules are the alerts that ship enabled. A [[alerts]] entry of
// the same name replaces one (to tune it or set disabled = true).
func DefaultAlertRules() []AlertRule {
	return []AlertRule{
		{Name: "webhook-delivery-failing", Condition: AlertDeliveryFailure, Window: 5 * time.Minute, ClearFor: time.Minute,
			Threshold: 0.5, MinCount: 10, Severity: "critical", Runbook: "webhook-error-spike"},
		{Name: "webhook-dead-letters", Condition: AlertDeadLetters, Window: 15 * time.Minute, ClearFor: time.Minute,
			Threshold: 0, Severity: "critical", Runbook: "dead-letters"},
		{Name: "circuit-open", Condition: AlertBreakerOpen, Window: 5 * time.Minute, For: 5 * time.Minute, ClearFor: time.Minute,
			Severity: "critical", Runbook: "webhook-error-spike"},
		{Name: "twilio-429-storm", Condition: AlertThrottled, Window: 5 * time.Minute, ClearFor: time.Minute,
			Threshold: 10, Severity: "warning", Runbook: "429-storm"},
		{Name: "delivery-rate-drop", Condition: AlertDeliveryRate, By: ByPool, Window: 15 * time.Minute, ClearFor: 5 * time.Minute,
			Threshold: 0.9, MinCount: 20, Severity: "critical", Runbook: "delivery-rate-regression"},
		{Name: "ack-latency-slo", Condition: AlertAckLatency, Window: 5 * time.Minute, For: 5 * time.Minute, ClearFor: time.Minute,
			Threshold: 1000, Severity: "warning", Runbook: "slow-acks"},
		{Name: "queue-lag", Condition: AlertQueueLag, Window: 5 * time.Minute, ClearFor: time.Minute,
			Threshold: 300, Severity: "warning", Runbook: "queue-lag"},
		{Name: "twilio-debugger-errors", Condition: AlertErrorCode, Source: CodeSourceDebugger, Window: 15 * time.Minute,
			ClearFor: 5 * time.Minute, Threshold: 10, Severity: "warning", Runbook: "twilio-debugger-errors"},
		{Name: "opt-out-spike", Condition: AlertOptOuts, Window: time.Hour, ClearFor: 15 * time.Minute,
			Threshold: 50, Severity: "warning", Runbook: "opt-out-spike"},
	}
}

// AlertStatus is where an alert stands.
type AlertStatus string

// Alert statuses. An alert with no stored state is AlertOK.
const (
	AlertOK     AlertStatus = "ok"     // resolved, or never fired
	AlertFiring AlertStatus = "firing" // the condition held long enough; a notification went out
)

// AlertState is one alert (a rule and one of its keys) as the store keeps
// it, shared by every replica. Replicas change it only through
// Store.PutAlertState's compare-and-set on Version, so each transition is
// made once.
type AlertState struct {
	Rule, Key string
	Status    AlertStatus
	// Value is the last value observed, and Summary says it in words.
	Value   float64
	Summary string
	// BreachSince is when the condition began to hold without a break
	// (zero while it does not); ClearSince when it began to stay clear
	// while firing.
	BreachSince, ClearSince time.Time
	// Seq counts the firings; a notification's idempotency key holds it.
	Seq                 int64
	FiredAt, ResolvedAt time.Time
	// Firings are the times of the recent firings (at most
	// MaxRecentFirings), what flap damping counts.
	Firings []time.Time
	// AckedAt and AckedBy say who acknowledged the current firing;
	// cleared when it fires again.
	AckedAt time.Time
	AckedBy string
	// SilencedUntil holds back notifications until then; transitions
	// are still recorded.
	SilencedUntil time.Time
	Version       int64
	UpdatedAt     time.Time
}

// MaxRecentFirings bounds AlertState.Firings.
const MaxRecentFirings = 10

// AlertEvent is one entry of an alert's history: a transition, an
// acknowledgement or a silence.
type AlertEvent struct {
	ID        int64
	Rule, Key string
	Seq       int64
	// What happened: "firing", "resolved", "acknowledged" or "silenced".
	What  string
	Value float64
	At    time.Time
	// Notified is false for a transition whose notification a silence
	// held back.
	Notified bool
	Note     string // who acknowledged, until when silenced, the summary
}

// Notification is what every notifier is given of an alert's transition;
// stored as the JSON body of a notification event (KindNotification).
type Notification struct {
	ID        string      `json:"id"` // stable: the event's idempotency key
	Rule      string      `json:"rule"`
	Key       string      `json:"key"`
	Status    AlertStatus `json:"status"` // firing or ok (resolved)
	Severity  string      `json:"severity"`
	Summary   string      `json:"summary"`
	Value     float64     `json:"value"`
	Threshold float64     `json:"threshold"`
	Seq       int64       `json:"seq"`
	FiredAt   time.Time   `json:"fired_at"`
	At        time.Time   `json:"at"`
	// Runbook is a link to the rule's runbook; Console a link to the
	// alert in the console (empty without public_url).
	Runbook string `json:"runbook"`
	Console string `json:"console,omitempty"`
}

// NotifierRoute is the route of the notification events a notifier
// delivers: not a URL path, so no webhook can land on it.
func NotifierRoute(notifier string) string { return "notify:" + notifier }

// NotificationKey is the idempotency key of the notification of one
// transition to one notifier: replicas making the same transition store
// it once.
func NotificationKey(notifier, rule, key string, seq int64, status AlertStatus) string {
	return fmt.Sprintf("notify:%s:%s:%d:%s:%s", notifier, rule, seq, status, key)
}

// MaxAlertHistory bounds the history kept per alert.
const MaxAlertHistory = 1000

// NotificationItem is what Store.Ingest is given to deliver n to one
// notifier durably: a request made by Switchboard itself (never
// received, so never signed) whose body is n as JSON, and its event on
// the notifier's route (NotifierRoute), keyed by NotificationKey so that
// the same transition stored twice, by a retry or another replica, is one
// notification. id is the new request's and event's id (ids are UUIDv7s).
func NotificationItem(notifier string, n *Notification, id string, now time.Time) (*Ingest, error) {
	if n.ID == "" {
		n.ID = NotificationKey(notifier, n.Rule, n.Key, n.Seq, n.Status)
	}
	body, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("encode notification %s: %w", n.ID, err)
	}
	route := NotifierRoute(notifier)
	return &Ingest{
		Request: Request{
			ID: id, ReceivedAt: now, Route: route, Method: http.MethodPost, URL: "switchboard:" + route,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: body, Outcome: OutcomeAccepted,
		},
		Event: &Event{
			ID: id, RequestID: id, Route: route, Kind: KindNotification, IdempotencyKey: n.ID,
			State: StatePending, CreatedAt: now, UpdatedAt: now,
		},
	}, nil
}
