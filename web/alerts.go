package web

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// WithAlerts lists the configured alert rules under /api/v1/alerts, and
// lets callers acknowledge and silence their alerts. Without it the list
// is empty and every rule is unknown (404).
func WithAlerts(rules []switchboard.AlertRule) Option {
	return func(s *Server) { s.alertRules = slices.Clone(rules) }
}

// Bounds of the alert endpoints.
const (
	defaultAlertHistory = 50
	maxAlertBody        = 16 << 10
)

// AlertRuleJSON is a configured rule and its alerts, as GET
// /api/v1/alerts lists them.
type AlertRuleJSON struct {
	Name      string  `json:"name"`
	Condition string  `json:"condition"`
	Window    string  `json:"window"`
	For       string  `json:"for,omitempty"`
	Threshold float64 `json:"threshold"`
	MinCount  int64   `json:"min_count,omitempty"`
	Code      int     `json:"code,omitempty"`
	Source    string  `json:"source,omitempty"`
	By        string  `json:"by,omitempty"`
	Match     string  `json:"match,omitempty"`
	Severity  string  `json:"severity"`
	Runbook   string  `json:"runbook,omitempty"`
	Disabled  bool    `json:"disabled"`
	// Status is firing when any of its alerts is.
	Status string `json:"status"`
	// SilencedUntil is the silence of every key of the rule, when one
	// runs.
	SilencedUntil time.Time `json:"silenced_until,omitzero"`
	// Alerts are its alerts with a stored state (one per key), firing
	// first.
	Alerts []AlertJSON `json:"alerts"`
}

// AlertJSON is one alert: a rule and one of its keys.
type AlertJSON struct {
	Rule       string    `json:"rule"`
	Key        string    `json:"key"`
	Status     string    `json:"status"`
	Value      float64   `json:"value"`
	Summary    string    `json:"summary,omitempty"`
	Seq        int64     `json:"seq"`
	FiredAt    time.Time `json:"fired_at,omitzero"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	AckedAt    time.Time `json:"acked_at,omitzero"`
	AckedBy    string    `json:"acked_by,omitempty"`
	// SilencedUntil is when its notifications are held back until: its
	// own silence or its rule's, whichever ends later (omitted when none
	// runs).
	SilencedUntil time.Time `json:"silenced_until,omitzero"`
	UpdatedAt     time.Time `json:"updated_at,omitzero"`
	Version       int64     `json:"version"`
}

// AlertsJSON is GET /api/v1/alerts: every configured rule, those with a
// firing alert first.
type AlertsJSON struct {
	Rules []AlertRuleJSON `json:"rules"`
}

// AlertEventJSON is one entry of an alert's history.
type AlertEventJSON struct {
	ID       int64     `json:"id"`
	Rule     string    `json:"rule"`
	Key      string    `json:"key"`
	Seq      int64     `json:"seq"`
	What     string    `json:"what"`
	Value    float64   `json:"value"`
	At       time.Time `json:"at"`
	Notified bool      `json:"notified"`
	Note     string    `json:"note,omitempty"`
}

// AlertHistoryJSON is GET /api/v1/alerts/{rule}/history, newest first.
type AlertHistoryJSON struct {
	Items []AlertEventJSON `json:"items"`
}

// AlertAckJSON is the body of POST /api/v1/alerts/{rule}/ack.
type AlertAckJSON struct {
	Key string `json:"key"`
	// By is who acknowledges; "api" when empty.
	By string `json:"by,omitempty"`
}

// AlertSilenceJSON is the body of POST /api/v1/alerts/{rule}/silence:
// Until (RFC 3339) or For (a duration such as "2h"), not both. A null
// Until or a For of "0s" ends the silence. Key "" (or "*") silences
// every key of the rule.
type AlertSilenceJSON struct {
	Key   string          `json:"key"`
	Until json.RawMessage `json:"until,omitempty"`
	For   *string         `json:"for,omitempty"`
	By    string          `json:"by,omitempty"`
}

// alertConflict is an action on an alert its state refuses (already
// acknowledged, or changing too fast to act on).
type alertConflict struct{ err error }

func (e *alertConflict) Error() string { return e.err.Error() }
func (e *alertConflict) Unwrap() error { return e.err }

// alertRule is the configured rule named in the path; ErrNotFound when
// there is none.
func (s *Server) alertRule(r *http.Request) (*switchboard.AlertRule, error) {
	name := r.PathValue("rule")
	for i := range s.alertRules {
		if s.alertRules[i].Name == name {
			return &s.alertRules[i], nil
		}
	}
	return nil, fmt.Errorf("%w: no alert rule %q", switchboard.ErrNotFound, name)
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) error {
	states, err := s.store.AlertStates(r.Context())
	if err != nil {
		return fmt.Errorf("read alert states: %w", err)
	}
	now := time.Now()
	out := AlertsJSON{Rules: make([]AlertRuleJSON, 0, len(s.alertRules))}
	for i := range s.alertRules {
		out.Rules = append(out.Rules, s.alertRuleJSON(&s.alertRules[i], states, now))
	}
	// Firing first, then critical before warning, then by name.
	slices.SortStableFunc(out.Rules, func(a, b AlertRuleJSON) int {
		return switchboard.CompareAlertListing(a.Status == string(switchboard.AlertFiring), a.Severity, a.Name, b.Status == string(switchboard.AlertFiring), b.Severity, b.Name)
	})
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) alertRuleJSON(rule *switchboard.AlertRule, states []switchboard.AlertState, now time.Time) AlertRuleJSON {
	out := AlertRuleJSON{
		Name: rule.Name, Condition: string(rule.Condition), Window: rule.Window.String(), Threshold: rule.Threshold,
		MinCount: rule.MinCount, Code: rule.Code, Source: rule.Source, By: rule.By, Match: rule.Match,
		Severity: rule.Severity, Runbook: rule.Runbook, Disabled: rule.Disabled,
		Status: string(switchboard.AlertOK), Alerts: []AlertJSON{},
	}
	if rule.For > 0 {
		out.For = rule.For.String()
	}
	for i := range states {
		st := &states[i]
		switch {
		case st.Rule != rule.Name:
		case st.Key == switchboard.AlertAllKeys:
			if st.SilencedUntil.After(now) {
				out.SilencedUntil = st.SilencedUntil
			}
		default:
			a := s.alertJSON(st, switchboard.SilencedUntil(states, st.Rule, st.Key), now)
			if a.Status == string(switchboard.AlertFiring) {
				out.Status = a.Status
			}
			out.Alerts = append(out.Alerts, a)
		}
	}
	slices.SortStableFunc(out.Alerts, func(a, b AlertJSON) int {
		return switchboard.CompareAlertListing(a.Status == string(switchboard.AlertFiring), "", a.Key, b.Status == string(switchboard.AlertFiring), "", b.Key)
	})
	return out
}

// alertJSON renders a state; silenced is when its silence ends, counting
// its rule's.
func (s *Server) alertJSON(st *switchboard.AlertState, silenced, now time.Time) AlertJSON {
	out := AlertJSON{
		Rule: st.Rule, Key: st.Key, Status: string(cmp.Or(st.Status, switchboard.AlertOK)), Value: st.Value, Summary: st.Summary,
		Seq: st.Seq, FiredAt: st.FiredAt, ResolvedAt: st.ResolvedAt, AckedAt: st.AckedAt, AckedBy: st.AckedBy,
		UpdatedAt: st.UpdatedAt, Version: st.Version,
	}
	if silenced.After(now) {
		out.SilencedUntil = silenced
	}
	if s.redact {
		// What the evaluator and operators wrote may quote a URL or a
		// number.
		out.Summary, out.AckedBy = switchboard.RedactText(out.Summary), switchboard.RedactText(out.AckedBy)
	}
	return out
}

func (s *Server) alertHistory(w http.ResponseWriter, r *http.Request) error {
	rule, err := s.alertRule(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit := defaultAlertHistory
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return fmt.Errorf("%w: limit: want a positive number", switchboard.ErrInvalid)
		}
		limit = min(limit, switchboard.MaxAlertHistory)
	}
	key := q.Get("key")
	if len(key) > switchboard.MaxAlertKey {
		return fmt.Errorf("%w: key: at most %d bytes", switchboard.ErrInvalid, switchboard.MaxAlertKey)
	}
	events, err := s.store.AlertHistory(r.Context(), rule.Name, key, limit)
	if err != nil {
		return fmt.Errorf("read the history of alert %s: %w", rule.Name, err)
	}
	out := AlertHistoryJSON{Items: make([]AlertEventJSON, 0, len(events))}
	for _, e := range events {
		ev := AlertEventJSON{ID: e.ID, Rule: e.Rule, Key: e.Key, Seq: e.Seq, What: e.What, Value: e.Value, At: e.At, Notified: e.Notified, Note: e.Note}
		if s.redact {
			ev.Note = switchboard.RedactText(ev.Note)
		}
		out.Items = append(out.Items, ev)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// decodeAlertBody reads a bounded JSON object with no unknown fields and
// nothing after it.
func decodeAlertBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAlertBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %v", switchboard.ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: body: unexpected data after the JSON object", switchboard.ErrInvalid)
	}
	return nil
}

// actedOn answers an action on an alert with its state.
func (s *Server) actedOn(w http.ResponseWriter, st *switchboard.AlertState, err error) error {
	if errors.Is(err, switchboard.ErrConflict) {
		return &alertConflict{err}
	}
	if err != nil {
		return err
	}
	// The state answered is the one acted on; its rule's silence is
	// not read again.
	writeJSON(w, http.StatusOK, s.alertJSON(st, st.SilencedUntil, time.Now()))
	return nil
}

func (s *Server) ackAlert(w http.ResponseWriter, r *http.Request) error {
	rule, err := s.alertRule(r)
	if err != nil {
		return err
	}
	var body AlertAckJSON
	if err := decodeAlertBody(w, r, &body); err != nil {
		return err
	}
	st, err := switchboard.AcknowledgeAlert(r.Context(), s.store, rule.Name, body.Key, cmp.Or(body.By, "api"), time.Now())
	if err == nil {
		s.logger.Info("admin API: alert acknowledged", "rule", rule.Name, "key", body.Key, "by", st.AckedBy)
	}
	return s.actedOn(w, st, err)
}

func (s *Server) silenceAlert(w http.ResponseWriter, r *http.Request) error {
	rule, err := s.alertRule(r)
	if err != nil {
		return err
	}
	var body AlertSilenceJSON
	if err := decodeAlertBody(w, r, &body); err != nil {
		return err
	}
	now := time.Now()
	var until time.Time
	switch {
	case body.Until != nil && body.For != nil:
		return fmt.Errorf("%w: give until or for, not both", switchboard.ErrInvalid)
	case body.For != nil:
		d, err := time.ParseDuration(*body.For)
		if err != nil || d < 0 {
			return fmt.Errorf("%w: for: want a duration such as 2h, or 0s to end the silence", switchboard.ErrInvalid)
		}
		if d > switchboard.MaxSilence {
			return fmt.Errorf("%w: for: at most %s", switchboard.ErrInvalid, switchboard.MaxSilence)
		}
		if d > 0 {
			until = now.Add(d)
		}
	case body.Until != nil:
		if !bytes.Equal(body.Until, []byte("null")) {
			var v string
			if err := json.Unmarshal(body.Until, &v); err != nil {
				return fmt.Errorf("%w: until: want an RFC 3339 time or null", switchboard.ErrInvalid)
			}
			if until, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return fmt.Errorf("%w: until: want RFC 3339, like 2026-01-02T15:04:05Z", switchboard.ErrInvalid)
			}
		}
	default:
		return fmt.Errorf("%w: give until (RFC 3339, or null to end the silence) or for (such as 2h)", switchboard.ErrInvalid)
	}
	st, err := switchboard.SilenceAlert(r.Context(), s.store, rule.Name, body.Key, until, cmp.Or(body.By, "api"), now)
	if err == nil {
		s.logger.Info("admin API: alert silence set", "rule", rule.Name, "key", st.Key, "until", st.SilencedUntil)
	}
	return s.actedOn(w, st, err)
}
