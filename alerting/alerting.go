// Package alerting evaluates the alert rules (switchboard.AlertRule)
// against the store's dashboard every Interval, moves each alert through
// its lifecycle (switchboard.AlertState.Step), and hands each transition's
// notifications to the store as events of the notifiers' routes, which
// delivery carries with its retries and dead letter.
//
// Replicas evaluate side by side: each alert's state is shared in the
// store and changed only by compare-and-set, so each transition is stored
// once, and its notifications are keyed by the transition
// (switchboard.NotificationKey), so each is delivered once.
package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
)

// Store is what an Evaluator needs of switchboard.Store.
type Store interface {
	Dashboard(ctx context.Context, q switchboard.DashboardQuery) (*switchboard.Dashboard, error)
	AlertStates(ctx context.Context) ([]switchboard.AlertState, error)
	PutAlertState(ctx context.Context, st *switchboard.AlertState, ev *switchboard.AlertEvent) error
	DeleteAlertState(ctx context.Context, rule, key string, version int64) error
	Ingest(ctx context.Context, items []*switchboard.Ingest) error
}

// DefaultInterval is the default time between evaluations.
const DefaultInterval = 30 * time.Second

// DefaultTimeout is the default bound of one evaluation.
const DefaultTimeout = time.Minute

// DefaultRunbookBase is where runbook links point without RunbookBase:
// the runbooks' document, relative to the repository.
const DefaultRunbookBase = switchboard.RunbooksURL

// Options configure an Evaluator.
type Options struct {
	Store Store
	// Rules are the rules evaluated; disabled ones are skipped.
	Rules []switchboard.AlertRule
	// Notifiers names every configured notifier: those a rule's
	// transitions go to when its Notify is empty.
	Notifiers []string
	// Breakers returns this process's breakers not closed; nil for none.
	Breakers func() []switchboard.BreakerOpen
	// Interval is the time between the starts of two evaluations
	// (default DefaultInterval); Timeout bounds each (default
	// DefaultTimeout).
	Interval, Timeout time.Duration
	// PublicURL, when set, gives notifications a link to the console's
	// alerts (PublicURL + "/console/alerts").
	PublicURL string
	// RunbookBase is the runbooks' document; a notification links to the
	// rule's runbook as RunbookBase#anchor. Default DefaultRunbookBase.
	RunbookBase string
	// Now is the evaluations' clock (default time.Now); NewID makes the
	// notification events' ids (default UUIDv7s).
	Now   func() time.Time
	NewID func() string
	// Logger defaults to slog.Default(); Metrics, when set, gets
	// switchboard_alerts_firing.
	Logger  *slog.Logger
	Metrics *metrics.Metrics
}

// Evaluator evaluates the rules every Interval once started.
type Evaluator struct {
	opts Options

	mu     sync.Mutex
	cancel context.CancelFunc // of the running loop; nil when stopped
	done   chan struct{}
}

// New returns an Evaluator; Start runs it.
func New(o Options) *Evaluator {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.RunbookBase == "" {
		o.RunbookBase = DefaultRunbookBase
	}
	if o.Breakers == nil {
		o.Breakers = func() []switchboard.BreakerOpen { return nil }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.PublicURL = strings.TrimSuffix(o.PublicURL, "/")
	return &Evaluator{opts: o}
}

type alertID struct{ rule, key string }

// RunOnce evaluates every rule once, within Timeout: one dashboard read
// per distinct span (AlertRule.Span) and one read of the alerts' states,
// then a Step of each alert observed, and of each stored alert of the
// rule that was not (a key without traffic in the window: judged clear,
// so that it resolves). A state is written only when it changes more than
// its value, or while the alert fires; an alert never seen breaching is
// not stored. A failure of one alert's write is reported and the others
// go on; the error joins them all.
func (e *Evaluator) RunOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	now := e.opts.Now()
	list, err := e.opts.Store.AlertStates(ctx)
	if err != nil {
		return fmt.Errorf("alerting: read the alerts: %w", err)
	}
	p := newPass(list)
	states := p.states
	boards := map[time.Duration]*switchboard.Dashboard{}
	breakers := e.opts.Breakers()
	var errs []error
	for i := range e.opts.Rules {
		r := &e.opts.Rules[i]
		if r.Disabled {
			continue
		}
		d, err := e.board(ctx, boards, r, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		observed := map[string]bool{}
		for _, obs := range r.Observe(d, breakers, now) {
			observed[obs.Key] = true
			errs = append(errs, e.step(ctx, p, r, obs, now))
		}
		for id, st := range states {
			// A state under AlertAllKeys is the rule's silence, not an alert.
			if id.rule == r.Name && id.key != switchboard.AlertAllKeys && !observed[id.key] && (st.Status == switchboard.AlertFiring || !st.BreachSince.IsZero()) {
				errs = append(errs, e.step(ctx, p, r, switchboard.AlertObservation{Key: id.key, Judged: true,
					Summary: "nothing seen in " + r.Window.String()}, now))
			}
		}
	}
	e.gauge(states)
	errs = append(errs, e.forget(ctx, p, now))
	return errors.Join(errs...)
}

// pass is what one evaluation knows of the stored alerts, kept up to date
// as it changes them.
type pass struct {
	states map[alertID]*switchboard.AlertState
	keys   map[string]int   // alerts stored per rule
	seq    map[string]int64 // the highest Seq stored per rule
	capped map[string]bool  // rules that met MaxAlertsPerRule this pass
}

func newPass(list []switchboard.AlertState) *pass {
	p := &pass{states: make(map[alertID]*switchboard.AlertState, len(list)), keys: map[string]int{},
		seq: map[string]int64{}, capped: map[string]bool{}}
	for i := range list {
		st := &list[i]
		p.states[alertID{st.Rule, st.Key}] = st
		p.keys[st.Rule]++
		p.seq[st.Rule] = max(p.seq[st.Rule], st.Seq)
	}
	return p
}

// forget deletes the alerts quiet for QuietAlertRetention: resolved or
// never fired, not breaching, not silenced. The one holding its rule's
// highest Seq stays, so that the next firing of any alert of the rule,
// forgotten ones included, takes a number never used (its notifications'
// idempotency keys are new). A state changed meanwhile (by another
// replica, or an acknowledgement) is left for the next pass.
func (e *Evaluator) forget(ctx context.Context, p *pass, now time.Time) error {
	var errs []error
	for id, st := range p.states {
		quiet := st.Status == switchboard.AlertOK && st.BreachSince.IsZero() && st.ClearSince.IsZero() &&
			!st.SilencedUntil.After(now) && now.Sub(st.UpdatedAt) > switchboard.QuietAlertRetention
		if !quiet || (st.Seq > 0 && st.Seq == p.seq[id.rule]) {
			continue
		}
		err := e.opts.Store.DeleteAlertState(ctx, id.rule, id.key, st.Version)
		switch {
		case errors.Is(err, switchboard.ErrConflict):
		case err != nil:
			errs = append(errs, fmt.Errorf("alerting: forget %s %q: %w", id.rule, id.key, err))
		default:
			delete(p.states, id)
			p.keys[id.rule]--
		}
	}
	return errors.Join(errs...)
}

// board returns the dashboard of r's span up to now, read once per span.
func (e *Evaluator) board(ctx context.Context, boards map[time.Duration]*switchboard.Dashboard, r *switchboard.AlertRule,
	now time.Time) (*switchboard.Dashboard, error) {
	if r.Condition == switchboard.AlertBreakerOpen {
		return &switchboard.Dashboard{}, nil // this process's breakers only
	}
	span := r.Span()
	if d, ok := boards[span]; ok {
		return d, nil
	}
	d, err := e.opts.Store.Dashboard(ctx, switchboard.DashboardQuery{Since: now.Add(-span), Until: now})
	if err != nil {
		return nil, fmt.Errorf("alerting: read the dashboard of the last %s: %w", span, err)
	}
	boards[span] = d
	return d, nil
}

// step moves one alert with one observation, and stores what changed.
//
// A transition's notifications are ingested before its state is put, and
// that order loses nothing and duplicates nothing. Loses nothing: if the
// put then fails or the process dies, the stored state is still the one
// before the transition, so the next evaluation (here or on a replica)
// makes the same transition again. Duplicates nothing: that transition
// has the same Seq, so its notifications have the same idempotency keys
// (switchboard.NotificationKey), and the store keeps the first of each;
// a replica that made the transition first (our put then fails with
// ErrConflict) ingested the same keys too.
func (e *Evaluator) step(ctx context.Context, p *pass, r *switchboard.AlertRule,
	obs switchboard.AlertObservation, now time.Time) error {
	states := p.states
	id := alertID{r.Name, obs.Key}
	stored, ok := states[id]
	st := switchboard.AlertState{Rule: r.Name, Key: obs.Key, Status: switchboard.AlertOK}
	if ok {
		st = *stored
		st.Firings = append([]time.Time(nil), stored.Firings...)
	}
	ev := st.Step(r, obs, now)
	if ev == nil && !changed(stored, &st) {
		return nil
	}
	if !ok && p.keys[r.Name] >= switchboard.MaxAlertsPerRule {
		// Bounded: keys come from outside. Said once per pass.
		if !p.capped[r.Name] {
			p.capped[r.Name] = true
			e.opts.Logger.Warn("alert rule has as many alerts as it keeps; new keys are not tracked until quiet ones are forgotten",
				"rule", r.Name, "max", switchboard.MaxAlertsPerRule)
		}
		return nil
	}
	if ev != nil && ev.What == switchboard.AlertWhatFiring && st.Seq <= p.seq[r.Name] {
		st.Seq = p.seq[r.Name] + 1 // see switchboard.AlertState.Seq
		ev.Seq = st.Seq
	}
	st.UpdatedAt = now
	if ev != nil {
		notified, err := e.notify(ctx, r, &st, silencedUntil(states, id), now)
		if err != nil {
			return err
		}
		ev.Notified = notified
		e.opts.Logger.Info("alert "+ev.What, "rule", r.Name, "key", obs.Key, "seq", st.Seq, "value", obs.Value,
			"summary", obs.Summary, "notified", notified)
	}
	err := e.opts.Store.PutAlertState(ctx, &st, ev)
	switch {
	case errors.Is(err, switchboard.ErrConflict):
		// Another replica changed it since it was read: its version is
		// the truth, read again next pass.
		e.opts.Logger.Debug("alert changed by another replica", "rule", r.Name, "key", obs.Key)
		return nil
	case err != nil:
		return fmt.Errorf("alerting: %w", err)
	}
	states[id] = &st
	if !ok {
		p.keys[r.Name]++
	}
	p.seq[r.Name] = max(p.seq[r.Name], st.Seq)
	return nil
}

// silencedUntil is when the silence of alert id ends: its own, or its
// rule's (a state under switchboard.AlertAllKeys), whichever is later.
func silencedUntil(states map[alertID]*switchboard.AlertState, id alertID) time.Time {
	var until time.Time
	for _, k := range []string{id.key, switchboard.AlertAllKeys} {
		if st, ok := states[alertID{id.rule, k}]; ok && st.SilencedUntil.After(until) {
			until = st.SilencedUntil
		}
	}
	return until
}

// changed reports whether st, stepped from stored (nil: none stored),
// has changed enough to be written: a breach or a clear started or
// ended, or a new value while firing. An alert never stored that is not
// breaching stays unstored: keys are many (templates, countries), and
// most never fire.
func changed(stored, st *switchboard.AlertState) bool {
	if stored == nil {
		return !st.BreachSince.IsZero()
	}
	return !stored.BreachSince.Equal(st.BreachSince) || !stored.ClearSince.Equal(st.ClearSince) ||
		st.Status == switchboard.AlertFiring && (stored.Value != st.Value || stored.Summary != st.Summary)
}

// notify ingests the notifications of st's transition, one per notifier
// of r, unless a silence holds them back; notified reports whether any
// went out.
func (e *Evaluator) notify(ctx context.Context, r *switchboard.AlertRule, st *switchboard.AlertState, silenced time.Time,
	now time.Time) (bool, error) {
	if silenced.After(now) {
		return false, nil
	}
	names := r.Notify
	if len(names) == 0 {
		names = e.opts.Notifiers
	}
	if len(names) == 0 {
		return false, nil
	}
	items := make([]*switchboard.Ingest, 0, len(names))
	for _, name := range names {
		n := e.Notification(r, st, now)
		it, err := switchboard.NotificationItem(name, &n, e.opts.NewID(), now)
		if err != nil {
			return false, fmt.Errorf("alerting: %w", err)
		}
		items = append(items, it)
	}
	if err := e.opts.Store.Ingest(ctx, items); err != nil {
		return false, fmt.Errorf("alerting: store the notifications of %s %q #%d: %w", r.Name, st.Key, st.Seq, err)
	}
	return true, nil
}

// Notification is what the notifiers are told of st's transition at now
// (its ID is left to switchboard.NotificationItem: one per notifier).
func (e *Evaluator) Notification(r *switchboard.AlertRule, st *switchboard.AlertState, now time.Time) switchboard.Notification {
	n := switchboard.Notification{Rule: r.Name, Key: st.Key, Status: st.Status, Severity: r.Severity, Summary: st.Summary,
		Value: st.Value, Threshold: r.Threshold, Seq: st.Seq, FiredAt: st.FiredAt, At: now,
		Runbook: e.opts.RunbookBase + "#" + r.Runbook}
	if e.opts.PublicURL != "" {
		n.Console = e.opts.PublicURL + "/console/alerts"
	}
	return n
}

// gauge sets switchboard_alerts_firing of every rule from states.
func (e *Evaluator) gauge(states map[alertID]*switchboard.AlertState) {
	if e.opts.Metrics == nil {
		return
	}
	firing := map[string]int{}
	for _, r := range e.opts.Rules {
		firing[r.Name] = 0
	}
	for id, st := range states {
		if _, ok := firing[id.rule]; ok && st.Status == switchboard.AlertFiring {
			firing[id.rule]++
		}
	}
	for rule, n := range firing {
		e.opts.Metrics.AlertsFiring.WithLabelValues(rule).Set(float64(n))
	}
}

// Start evaluates in the background, at once and then every Interval,
// until Stop. It does nothing when already started.
func (e *Evaluator) Start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	go e.loop(ctx, e.done)
}

func (e *Evaluator) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(e.opts.Interval)
	defer t.Stop()
	for {
		if err := e.RunOnce(ctx); err != nil && ctx.Err() == nil {
			e.opts.Logger.Warn("alerting: evaluation failed; the next one tries again", "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// Stop ends the background evaluations, cancelling one in progress (its
// transitions not stored are made again by the next evaluation, here or
// on a replica).
func (e *Evaluator) Stop() {
	e.mu.Lock()
	cancel, done := e.cancel, e.done
	e.cancel, e.done = nil, nil
	e.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
