package switchboard

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
	// Seq numbers the firings: each firing of any alert of the rule takes
	// a number above every one the rule has stored, so that an alert
	// forgotten (see QuietAlertRetention) and firing again never reuses
	// one. A notification's idempotency key holds it.
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

// RunbooksURL is where a rule's runbook is read by default: the
// repository's docs/runbooks.md, one heading per AlertRule.Runbook.
const RunbooksURL = "https://github.com/switchboard-dev/switchboard/blob/main/docs/runbooks.md"

// MaxAlertsPerRule bounds the alerts (keys) stored per rule. Keys come
// from outside (error codes in signed Debugger webhooks, templates an app
// names): past the bound, a new key is not tracked until quiet ones are
// forgotten.
const MaxAlertsPerRule = 200

// QuietAlertRetention is how long an alert stays stored once it is
// resolved (or never fired), not breaching and not silenced; then its
// state is forgotten and its history kept, trimmed by age.
const QuietAlertRetention = 24 * time.Hour

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

// IsNotifierRoute reports whether route is a notifier's (NotifierRoute).
func IsNotifierRoute(route string) bool { return strings.HasPrefix(route, "notify:") }

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

// BreakerOpen is a delivery target whose circuit breaker is not closed
// (open or half-open), as this process sees it, and since when.
type BreakerOpen struct {
	Target    string // scheme and host
	OpenSince time.Time
}

// AlertObservation is what one evaluation of a rule saw of one key.
type AlertObservation struct {
	Key   string
	Value float64 // always a finite number
	// Breaching reports that the condition holds.
	Breaching bool
	// Judged is false when there was too little volume to judge (below
	// the rule's MinCount): the alert's state is left as it is.
	Judged  bool
	Summary string
}

// Span is how far back an evaluation of r reads the dashboard: its
// window, or For when longer for the latency conditions, which look at
// each minute of For.
func (r *AlertRule) Span() time.Duration {
	if r.perMinute() {
		return max(r.Window, r.For)
	}
	return r.Window
}

// perMinute reports whether r's condition is judged minute by minute
// over For (the latency SLOs): For is then part of what is observed, not
// a hold after it.
func (r *AlertRule) perMinute() bool {
	return r.Condition == AlertAckLatency || r.Condition == AlertDeliveryLatency
}

// Hold is how long an observation must keep breaching before the alert
// fires: For, except for the conditions whose observation already spans
// For (ack_latency and delivery_latency look at every minute of For,
// breaker_open at how long the breaker has been open), which fire as
// soon as they breach.
func (r *AlertRule) Hold() time.Duration {
	if r.perMinute() || r.Condition == AlertBreakerOpen {
		return 0
	}
	return r.For
}

// Observe judges r over d, a dashboard of the last r.Span() up to now,
// and breakers, this process's breakers not closed. It returns one
// observation per key it sees (none for a disabled rule); keys limited to
// r.Match when set. A key it does not return (a route or pool without
// traffic in the window) is, to the caller, judged and not breaching, so
// that an alert firing on it resolves.
//
// Per condition:
//   - error_code: with Code set, that code's count (key the code), 0
//     when unseen; with Code 0, each code seen (key the code, "0" for
//     the rarest counted together). Source picks TwilioCodes (delivery),
//     MessageCodes (message), DebuggerCodes (debugger) or all of them.
//   - throttled: each pool's TotalThrottled.
//   - delivery_failure: each route's TotalFailed/TotalAttempts, judged
//     from MinCount attempts (at least one).
//   - delivery_rate: delivered/(delivered+failed) per pool, template or
//     country (By), judged from MinCount outcomes (at least one);
//     breaches below Threshold.
//   - ack_latency and delivery_latency: the p95 of every minute
//     overlapping the last For (For 0: the whole window) that has any
//     data; the value is the lowest of them, so it breaches when every
//     such minute is above Threshold. Minutes without data are skipped;
//     none at all is not breaching.
//   - dead_letters: each route's TotalDead.
//   - queue_lag: the highest QueueLag sample of the window (0 without
//     any).
//   - breaker_open: each target, its value the seconds it has been open;
//     breaches once open longer than For.
//   - opt_outs: OptOuts.
//
// Every condition but delivery_rate breaches above Threshold.
func (r *AlertRule) Observe(d *Dashboard, breakers []BreakerOpen, now time.Time) []AlertObservation {
	if r.Disabled {
		return nil
	}
	var out []AlertObservation
	add := func(key string, value float64, judged bool, summary string) {
		if !r.watches(key) {
			return
		}
		if math.IsNaN(value) || math.IsInf(value, 0) {
			value, judged = 0, false
		}
		breaching := value > r.Threshold
		if r.Condition == AlertDeliveryRate {
			breaching = value < r.Threshold
		}
		out = append(out, AlertObservation{Key: key, Value: value, Breaching: judged && breaching, Judged: judged, Summary: summary})
	}
	window := r.Window.String()
	switch r.Condition {
	case AlertErrorCode:
		counts := map[int]int64{}
		for _, src := range []struct {
			source string
			codes  []CodeCount
		}{{CodeSourceDelivery, d.TwilioCodes}, {CodeSourceMessage, d.MessageCodes}, {CodeSourceDebugger, d.DebuggerCodes}} {
			if r.Source == CodeSourceAny || r.Source == src.source {
				for _, c := range src.codes {
					counts[c.Code] += c.Count
				}
			}
		}
		from := "seen"
		if r.Source != CodeSourceAny {
			from = "from " + r.Source
		}
		if r.Code != 0 {
			n := counts[r.Code]
			add(strconv.Itoa(r.Code), float64(n), true, fmt.Sprintf("error %d %s %d times in %s (threshold %v)", r.Code, from, n, window, r.Threshold))
			break
		}
		for _, code := range slices.Sorted(maps.Keys(counts)) {
			n := counts[code]
			add(strconv.Itoa(code), float64(n), true, fmt.Sprintf("error %d %s %d times in %s (threshold %v)", code, from, n, window, r.Threshold))
		}
	case AlertThrottled:
		for _, p := range d.Pools {
			add(p.Pool, float64(p.TotalThrottled), true,
				fmt.Sprintf("pool %s: %d sends throttled (429) in %s (threshold %v)", p.Pool, p.TotalThrottled, window, r.Threshold))
		}
	case AlertDeliveryFailure:
		for _, rs := range d.Routes {
			add(rs.Route, ratioOf(rs.TotalFailed, rs.TotalAttempts), rs.TotalAttempts >= max(r.MinCount, 1),
				fmt.Sprintf("route %s: %d of %d delivery attempts failed in %s (threshold %s)", rs.Route, rs.TotalFailed, rs.TotalAttempts,
					window, percent(r.Threshold)))
		}
	case AlertDeliveryRate:
		rate := func(key string, delivered, failed int64) {
			n := delivered + failed
			add(key, ratioOf(delivered, n), n >= max(r.MinCount, 1),
				fmt.Sprintf("%s %s: %d of %d messages delivered in %s (floor %s)", r.By, key, delivered, n, window, percent(r.Threshold)))
		}
		switch r.By {
		case ByPool:
			for _, p := range d.Pools {
				rate(p.Pool, p.TotalDelivered, p.TotalFailed)
			}
		case ByTemplate, ByCountry:
			breakdown := d.Templates
			if r.By == ByCountry {
				breakdown = d.Countries
			}
			for _, b := range breakdown {
				rate(b.Key, b.Delivered, b.Failed)
			}
		}
	case AlertAckLatency:
		v, minutes := r.lowestOverFor(d, d.AckP95, now)
		add("", v, true, fmt.Sprintf("p95 time to answer Twilio %s over %d minutes (SLO %vms)", ms(v), minutes, r.Threshold))
	case AlertDeliveryLatency:
		for _, rs := range d.Routes {
			v, minutes := r.lowestOverFor(d, rs.P95, now)
			add(rs.Route, v, true, fmt.Sprintf("route %s: p95 delivery latency %s over %d minutes (SLO %vms)", rs.Route, ms(v), minutes, r.Threshold))
		}
	case AlertDeadLetters:
		for _, rs := range d.Routes {
			add(rs.Route, float64(rs.TotalDead), true,
				fmt.Sprintf("route %s: %d events dead-lettered in %s (threshold %v)", rs.Route, rs.TotalDead, window, r.Threshold))
		}
	case AlertQueueLag:
		lag := 0.0
		for _, v := range d.QueueLag {
			if !math.IsNaN(v) {
				lag = max(lag, v)
			}
		}
		add("", lag, true, fmt.Sprintf("oldest due delivery waited %s in %s (threshold %vs)",
			(time.Duration(lag)*time.Second).String(), window, r.Threshold))
	case AlertBreakerOpen:
		for _, b := range breakers {
			if !r.watches(b.Target) {
				continue
			}
			open := now.Sub(b.OpenSince)
			out = append(out, AlertObservation{Key: b.Target, Value: open.Seconds(), Judged: true, Breaching: open > r.For,
				Summary: fmt.Sprintf("circuit breaker of %s open for %s (longer than %s fires)", b.Target, open.Truncate(time.Second), r.For)})
		}
	case AlertOptOuts:
		add("", float64(d.OptOuts), true, fmt.Sprintf("%d numbers opted out in %s (threshold %v)", d.OptOuts, window, r.Threshold))
	}
	return out
}

// watches reports whether r observes key: its Match, or any key when it
// has none, except a notifier's route or breaker (IsNotifierRoute),
// watched only when Match names it. Otherwise a notifier that is down
// would raise an alert about itself, notified through itself among
// others, and again at each of its flaps: its failures show in the
// inspector, the dashboard and the delivery metrics instead.
func (r *AlertRule) watches(key string) bool {
	if r.Match != "" {
		return key == r.Match
	}
	return !IsNotifierRoute(key)
}

// lowestOverFor is the lowest value of series, one per bucket of d, over
// the buckets overlapping the last For before now (the whole dashboard
// for For 0), skipping those without data (NaN), and how many it read;
// 0 and 0 when none had data.
func (r *AlertRule) lowestOverFor(d *Dashboard, series []float64, now time.Time) (float64, int) {
	from := d.Since
	if r.For > 0 {
		from = now.Add(-r.For)
	}
	lowest, n := math.Inf(1), 0
	for i, v := range series {
		if i >= len(d.Times) || math.IsNaN(v) || !d.Times[i].Add(d.Step).After(from) {
			continue
		}
		lowest, n = min(lowest, v), n+1
	}
	if n == 0 {
		return 0, 0
	}
	return lowest, n
}

func ratioOf(part, whole int64) float64 {
	if whole == 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

func percent(share float64) string { return strconv.FormatFloat(share*100, 'f', -1, 64) + "%" }

func ms(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + "ms" }

// Alert history entries' What.
const (
	AlertWhatFiring       = "firing"
	AlertWhatResolved     = "resolved"
	AlertWhatAcknowledged = "acknowledged"
	AlertWhatSilenced     = "silenced"
)

// MaxFlapClearFor caps the clear time flap damping stretches to.
const MaxFlapClearFor = time.Hour

// ClearForAt is how long the condition must stay clear, at now, before
// the firing alert resolves: r.ClearFor times the number of firings in
// the hour before now (this one included), capped at MaxFlapClearFor
// (or at r.ClearFor when that is longer). An alert that fired once in
// the hour waits ClearFor; one that fired three times waits three times
// as long, so that a condition that keeps crossing its threshold pages
// less and less often instead of on every crossing. A ClearFor of 0 is
// not damped.
func (st *AlertState) ClearForAt(r *AlertRule, now time.Time) time.Duration {
	n := 0
	for _, f := range st.Firings {
		if now.Sub(f) < time.Hour {
			n++
		}
	}
	n = max(n, 1)
	capped := max(r.ClearFor, MaxFlapClearFor)
	if r.ClearFor > capped/time.Duration(n) {
		return capped
	}
	return r.ClearFor * time.Duration(n)
}

// Step moves the alert through its lifecycle with one observation of its
// key at now, and returns the transition it made (What "firing" or
// "resolved"; Notified true, for the caller to clear when a silence holds
// the notification back), or nil when it made none:
//
//   - An unjudged observation changes nothing.
//   - A breaching one starts BreachSince (when not set) and clears
//     ClearSince; the alert fires once the breach has held r.Hold(): Status
//     firing, Seq one more, FiredAt now, now added to Firings (the newest
//     MaxRecentFirings kept), the acknowledgement cleared.
//   - A clear one clears BreachSince; while firing it starts ClearSince
//     (when not set), and the alert resolves once clear has held
//     ClearForAt: Status ok, ResolvedAt now.
//
// A transition happens once per change of the condition: evaluations
// that see the same thing again change only Value and Summary.
func (st *AlertState) Step(r *AlertRule, obs AlertObservation, now time.Time) *AlertEvent {
	if !obs.Judged {
		return nil
	}
	if st.Status == "" {
		st.Status = AlertOK
	}
	st.Rule, st.Key = r.Name, obs.Key
	st.Value, st.Summary = obs.Value, obs.Summary
	event := func(what string) *AlertEvent {
		return &AlertEvent{Rule: st.Rule, Key: st.Key, Seq: st.Seq, What: what, Value: obs.Value, At: now, Notified: true, Note: obs.Summary}
	}
	if obs.Breaching {
		st.ClearSince = time.Time{}
		if st.BreachSince.IsZero() {
			st.BreachSince = now
		}
		if st.Status == AlertFiring || now.Sub(st.BreachSince) < r.Hold() {
			return nil
		}
		st.Status, st.Seq, st.FiredAt = AlertFiring, st.Seq+1, now
		st.Firings = append(st.Firings, now)
		if len(st.Firings) > MaxRecentFirings {
			st.Firings = slices.Clone(st.Firings[len(st.Firings)-MaxRecentFirings:])
		}
		st.AckedAt, st.AckedBy = time.Time{}, ""
		return event(AlertWhatFiring)
	}
	st.BreachSince = time.Time{}
	if st.Status != AlertFiring {
		st.ClearSince = time.Time{}
		return nil
	}
	if st.ClearSince.IsZero() {
		st.ClearSince = now
	}
	if now.Sub(st.ClearSince) < st.ClearForAt(r, now) {
		return nil
	}
	st.Status, st.ResolvedAt, st.ClearSince = AlertOK, now, time.Time{}
	return event(AlertWhatResolved)
}
