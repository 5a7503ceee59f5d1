package console

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// DefaultRunbookBase is where the runbooks are read without
// Options.RunbookBase: the repository's docs/runbooks.md.
const DefaultRunbookBase = switchboard.RunbooksURL

// alertHistoryRows is how much of an alert's history its page shows.
const alertHistoryRows = 100

// silenceChoices are the silences a button sets; anything else is a
// custom until.
var silenceChoices = map[string]time.Duration{"1h": time.Hour, "4h": 4 * time.Hour, "24h": 24 * time.Hour}

// alertsDone are the notices an action's redirect names, so that the page
// shows only text of its own.
var alertsDone = map[string]string{
	"acknowledged": "Acknowledged: the alert shows who took it until it fires again.",
	"silenced":     "Silenced: its notifications are held back until then; what happens is still recorded.",
	"unsilenced":   "Silence ended: notifications go out again.",
}

// alertsPage lists every configured rule with its alerts, firing first.
type alertsPage struct {
	Rules  []ruleView
	Notice string
}

// alertPage is one rule: its alerts, actions on them, and history (of one
// alert when Key is set, of all of them otherwise).
type alertPage struct {
	Rule    ruleView
	Key     *string // nil: the whole rule
	Alert   *alertView
	History []alertEventView
	Notice  string
	// Failed says the notice is a refusal.
	Failed bool
	// Actions are the forms, for the alert or the whole rule.
	Actions actionsView
	// SilenceMax is the latest a custom silence may end, for the input.
	SilenceMax string
}

// actionsView is what the action forms act on.
type actionsView struct {
	Key           string // "*": every key of the rule
	WholeRule     bool
	CanAck        bool
	SilencedUntil time.Time
}

// ruleView is a rule as the console shows it.
type ruleView struct {
	Name, Condition, Severity, Window, For string
	Threshold                              string // with how it breaches: "> 50%", "< 90%"
	Match, Runbook                         string
	Disabled                               bool
	Status                                 string
	// SilencedUntil is the silence of every key, while it runs.
	SilencedUntil time.Time
	Alerts        []alertView
}

// alertView is one alert (a rule and a key) as the console shows it.
type alertView struct {
	Rule, Key, Status, Value, Summary string
	Seq                               int64
	// Since is when it fired (firing) or resolved (ok).
	Since   time.Time
	AckedAt time.Time
	AckedBy string
	// SilencedUntil counts its rule's silence; zero when none runs.
	SilencedUntil time.Time
	URL           string // its page, with its history and actions
}

// alertEventView is one entry of an alert's history.
type alertEventView struct {
	Key, What, Value, Note string
	Seq                    int64
	At                     time.Time
	Notified               bool
}

// rule is the configured rule named in the path.
func (c *Console) rule(r *http.Request) (*switchboard.AlertRule, error) {
	name := r.PathValue("rule")
	for i := range c.o.Alerts {
		if c.o.Alerts[i].Name == name {
			return &c.o.Alerts[i], nil
		}
	}
	return nil, errNoPage
}

func (c *Console) alerts(w http.ResponseWriter, r *http.Request, s *session) error {
	states, err := c.store.AlertStates(r.Context())
	if err != nil {
		return fmt.Errorf("read alert states: %w", err)
	}
	now := c.now()
	p := alertsPage{Notice: alertsDone[r.URL.Query().Get("done")]}
	for i := range c.o.Alerts {
		p.Rules = append(p.Rules, c.ruleView(&c.o.Alerts[i], states, now))
	}
	// Firing first, then critical before warning, then by name.
	slices.SortStableFunc(p.Rules, func(a, b ruleView) int {
		return switchboard.CompareAlertListing(a.Status == "firing", a.Severity, a.Name, b.Status == "firing", b.Severity, b.Name)
	})
	return c.render(w, s, http.StatusOK, "alerts", "Alerts", p)
}

func (c *Console) ruleView(rule *switchboard.AlertRule, states []switchboard.AlertState, now time.Time) ruleView {
	v := ruleView{
		Name: rule.Name, Condition: string(rule.Condition), Severity: rule.Severity, Window: rule.Window.String(),
		Threshold: thresholdText(rule), Match: rule.Match, Disabled: rule.Disabled, Status: string(switchboard.AlertOK),
	}
	if rule.For > 0 {
		v.For = rule.For.String()
	}
	if rule.Runbook != "" {
		v.Runbook = cmp.Or(c.o.RunbookBase, DefaultRunbookBase) + "#" + url.PathEscape(rule.Runbook)
	}
	rd := c.redactor()
	for i := range states {
		st := &states[i]
		switch {
		case st.Rule != rule.Name:
		case st.Key == switchboard.AlertAllKeys:
			if st.SilencedUntil.After(now) {
				v.SilencedUntil = st.SilencedUntil
			}
		default:
			a := alertView{
				Rule: st.Rule, Key: st.Key, Status: string(cmp.Or(st.Status, switchboard.AlertOK)), Value: valueText(rule.Condition, st.Value),
				Summary: rd.text(st.Summary), Seq: st.Seq, Since: st.ResolvedAt, AckedAt: st.AckedAt, AckedBy: rd.text(st.AckedBy),
				URL: alertURL(st.Rule, &st.Key, ""),
			}
			if a.Status == string(switchboard.AlertFiring) {
				a.Since, v.Status = st.FiredAt, a.Status
			}
			if until := switchboard.SilencedUntil(states, st.Rule, st.Key); until.After(now) {
				a.SilencedUntil = until
			}
			v.Alerts = append(v.Alerts, a)
		}
	}
	slices.SortStableFunc(v.Alerts, func(a, b alertView) int {
		return switchboard.CompareAlertListing(a.Status == "firing", "", a.Key, b.Status == "firing", "", b.Key)
	})
	return v
}

// alertURL is the page of a rule, or of one of its alerts when key is
// not nil; done names the notice it shows.
func alertURL(rule string, key *string, done string) string {
	v := url.Values{}
	if key != nil {
		v.Set("key", *key)
	}
	if done != "" {
		v.Set("done", done)
	}
	u := Prefix + "alerts/" + url.PathEscape(rule)
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	return u
}

// valueText shows a value in its condition's unit.
func valueText(cond switchboard.AlertCondition, v float64) string {
	switch cond {
	case switchboard.AlertDeliveryFailure, switchboard.AlertDeliveryRate:
		return percent(v)
	case switchboard.AlertAckLatency, switchboard.AlertDeliveryLatency:
		return numberText(v, " ms")
	case switchboard.AlertQueueLag:
		return numberText(v, " s")
	}
	return numberText(v, "")
}

// thresholdText is how a rule's value breaches: above its threshold, or
// below it for a floor.
func thresholdText(rule *switchboard.AlertRule) string {
	if rule.Condition == switchboard.AlertBreakerOpen {
		return "open > " + rule.For.String() // its threshold is a time: For
	}
	op := "> "
	if rule.Condition == switchboard.AlertDeliveryRate {
		op = "< "
	}
	return op + valueText(rule.Condition, rule.Threshold)
}

func (c *Console) alert(w http.ResponseWriter, r *http.Request, s *session) error {
	rule, err := c.rule(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var key *string
	if q.Has("key") {
		k := q.Get("key")
		key = &k
	}
	p, err := c.loadAlert(r, rule, key)
	if err != nil {
		return err
	}
	p.Notice = alertsDone[q.Get("done")]
	return c.render(w, s, http.StatusOK, "alert", "Alert "+rule.Name, p)
}

func (c *Console) loadAlert(r *http.Request, rule *switchboard.AlertRule, key *string) (*alertPage, error) {
	states, err := c.store.AlertStates(r.Context())
	if err != nil {
		return nil, fmt.Errorf("read alert states: %w", err)
	}
	now := c.now()
	p := &alertPage{Rule: c.ruleView(rule, states, now), Key: key, SilenceMax: now.Add(switchboard.MaxSilence).UTC().Format(inputTime)}
	historyKey := ""
	if key != nil {
		historyKey = *key
		for i := range p.Rule.Alerts {
			if p.Rule.Alerts[i].Key == *key {
				p.Alert = &p.Rule.Alerts[i]
			}
		}
		if p.Alert == nil {
			// Never stored: it can still be silenced ahead of time.
			p.Alert = &alertView{Rule: rule.Name, Key: *key, Status: string(switchboard.AlertOK), URL: alertURL(rule.Name, key, "")}
			if until := switchboard.SilencedUntil(states, rule.Name, *key); until.After(now) {
				p.Alert.SilencedUntil = until
			}
		}
	}
	p.Actions = actionsView{Key: switchboard.AlertAllKeys, WholeRule: true, SilencedUntil: p.Rule.SilencedUntil}
	if a := p.Alert; a != nil && a.Key != "" {
		p.Actions = actionsView{Key: a.Key, SilencedUntil: a.SilencedUntil}
	}
	if a := p.Alert; a != nil {
		p.Actions.CanAck = a.Status == string(switchboard.AlertFiring) && a.AckedAt.IsZero()
	}
	events, err := c.store.AlertHistory(r.Context(), rule.Name, historyKey, alertHistoryRows)
	if err != nil {
		return nil, fmt.Errorf("read the history of alert %s: %w", rule.Name, err)
	}
	rd := c.redactor()
	for _, e := range events {
		p.History = append(p.History, alertEventView{Key: e.Key, What: e.What, Value: valueText(rule.Condition, e.Value), Note: rd.text(e.Note),
			Seq: e.Seq, At: e.At, Notified: e.Notified})
	}
	return p, nil
}

// actedBy is who acted from the console: the name the form gives, or
// "console".
func actedBy(r *http.Request) string { return cmp.Or(r.PostForm.Get("by"), "console") }

func (c *Console) ackAlert(w http.ResponseWriter, r *http.Request, s *session) error {
	rule, err := c.rule(r)
	if err != nil {
		return err
	}
	key := r.PostForm.Get("key")
	_, err = switchboard.AcknowledgeAlert(r.Context(), c.store, rule.Name, key, actedBy(r), c.now())
	return c.acted(w, r, s, rule, key, "acknowledged", err)
}

func (c *Console) silenceAlert(w http.ResponseWriter, r *http.Request, s *session) error {
	rule, err := c.rule(r)
	if err != nil {
		return err
	}
	key, now := r.PostForm.Get("key"), c.now()
	var until time.Time
	if d, ok := silenceChoices[r.PostForm.Get("for")]; ok {
		until = now.Add(d)
	} else {
		if until, err = parseTime("until", r.PostForm.Get("until")); err != nil {
			return err
		}
		if !until.After(now) {
			return c.refused(w, r, s, rule, key, http.StatusBadRequest, "Not silenced: choose a time in the future (UTC).")
		}
	}
	_, err = switchboard.SilenceAlert(r.Context(), c.store, rule.Name, key, until, actedBy(r), now)
	return c.acted(w, r, s, rule, key, "silenced", err)
}

func (c *Console) unsilenceAlert(w http.ResponseWriter, r *http.Request, s *session) error {
	rule, err := c.rule(r)
	if err != nil {
		return err
	}
	key := r.PostForm.Get("key")
	_, err = switchboard.SilenceAlert(r.Context(), c.store, rule.Name, key, time.Time{}, actedBy(r), c.now())
	return c.acted(w, r, s, rule, key, "unsilenced", err)
}

// acted answers an action: back to the alert's page (redirect after
// POST, so a reload does not act again) with a notice of what was done,
// or its page again saying why it was refused.
func (c *Console) acted(w http.ResponseWriter, r *http.Request, s *session, rule *switchboard.AlertRule, key, done string, err error) error {
	var page *string
	if (key != "" && key != switchboard.AlertAllKeys) || done == "acknowledged" {
		page = &key
	}
	switch {
	case errors.Is(err, switchboard.ErrNotFound):
		return c.refused(w, r, s, rule, key, http.StatusNotFound, "Not "+done+": this alert has never fired.")
	case errors.Is(err, switchboard.ErrConflict):
		return c.refused(w, r, s, rule, key, http.StatusConflict, "Not "+done+": "+c.redactor().text(err.Error()))
	case errors.Is(err, switchboard.ErrInvalid):
		return c.refused(w, r, s, rule, key, http.StatusBadRequest, "Not "+done+": "+c.redactor().text(err.Error()))
	case err != nil:
		return fmt.Errorf("alert %s %q %s: %w", rule.Name, key, done, err)
	}
	c.logger.Info("console: alert "+done, "rule", rule.Name, "key", key)
	http.Redirect(w, r, alertURL(rule.Name, page, done), http.StatusSeeOther)
	return nil
}

// refused shows the alert's page with why an action was refused.
func (c *Console) refused(w http.ResponseWriter, r *http.Request, s *session, rule *switchboard.AlertRule, key string, status int, msg string) error {
	var k *string
	if key != "" && key != switchboard.AlertAllKeys {
		k = &key
	}
	p, err := c.loadAlert(r, rule, k)
	if err != nil {
		return err
	}
	p.Notice, p.Failed = msg, true
	return c.render(w, s, status, "alert", "Alert "+rule.Name, p)
}
