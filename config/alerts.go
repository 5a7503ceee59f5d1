package config

import (
	"net/url"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// Alerting configures the evaluation of alert rules.
type Alerting struct {
	// Enabled evaluates the rules (default true).
	Enabled bool `koanf:"enabled"`
	// Defaults adds switchboard.DefaultAlertRules to [[alerts]] (default
	// true); an [[alerts]] entry of a default's name replaces it.
	Defaults bool `koanf:"defaults"`
	// Interval is how often the rules are evaluated (default 30s, 1s to
	// 10m).
	Interval time.Duration `koanf:"interval"`
	// RunbookBase is the runbooks' document that notifications and the
	// console link to, as RunbookBase#anchor (default the repository's
	// docs/runbooks.md): point it at a copy of your own to add your steps.
	RunbookBase string `koanf:"runbook_base"`
}

// Alert is one [[alerts]] entry: a switchboard.AlertRule. Unset, window
// is 5m, clear_for 1m, severity warning and runbook the rule's name. An
// entry with a default rule's name replaces it; one with only that name
// and disabled = true (no condition) turns the default off.
type Alert struct {
	Name      string        `koanf:"name"`
	Condition string        `koanf:"condition"`
	Window    time.Duration `koanf:"window"`
	For       time.Duration `koanf:"for"`
	ClearFor  time.Duration `koanf:"clear_for"`
	Threshold float64       `koanf:"threshold"`
	MinCount  int64         `koanf:"min_count"`
	Code      int           `koanf:"code"`
	Source    string        `koanf:"source"`
	By        string        `koanf:"by"`
	Match     string        `koanf:"match"`
	Severity  string        `koanf:"severity"`
	Runbook   string        `koanf:"runbook"`
	Notify    []string      `koanf:"notify"`
	Disabled  bool          `koanf:"disabled"`
}

// Defaults of an [[alerts]] entry's unset fields.
const (
	DefaultAlertWindow   = 5 * time.Minute
	DefaultAlertClearFor = time.Minute
	DefaultAlertSeverity = "warning"
)

// rule is a's switchboard.AlertRule, its unset fields defaulted.
func (a *Alert) rule() switchboard.AlertRule {
	r := switchboard.AlertRule{Name: a.Name, Condition: switchboard.AlertCondition(a.Condition), Window: a.Window,
		For: a.For, ClearFor: a.ClearFor, Threshold: a.Threshold, MinCount: a.MinCount, Code: a.Code, Source: a.Source,
		By: a.By, Match: a.Match, Severity: a.Severity, Runbook: a.Runbook, Notify: slices.Clone(a.Notify), Disabled: a.Disabled}
	if r.Window == 0 {
		r.Window = DefaultAlertWindow
	}
	if r.ClearFor == 0 {
		r.ClearFor = DefaultAlertClearFor
	}
	if r.Severity == "" {
		r.Severity = DefaultAlertSeverity
	}
	if r.Runbook == "" {
		r.Runbook = r.Name
	}
	return r
}

// turnsOff reports whether a only disables the default rule of its name.
func (a *Alert) turnsOff() bool { return a.Condition == "" && a.Disabled }

// AlertRules returns the rules to evaluate: switchboard.DefaultAlertRules
// when alerting.defaults is set, each replaced by the [[alerts]] entry of
// its name, then the other entries in their order. Disabled rules are
// left in (the console lists them); AlertRule.Observe skips them.
func (c *Config) AlertRules() []switchboard.AlertRule {
	var rules []switchboard.AlertRule
	byName := map[string]int{}
	if c.Alerting.Defaults {
		for _, r := range switchboard.DefaultAlertRules() {
			byName[r.Name] = len(rules)
			rules = append(rules, r)
		}
	}
	for i := range c.Alerts {
		a := &c.Alerts[i]
		j, isDefault := byName[a.Name]
		switch {
		case isDefault && a.turnsOff():
			rules[j].Disabled = true
		case isDefault:
			rules[j] = a.rule()
		default:
			byName[a.Name] = len(rules)
			rules = append(rules, a.rule())
		}
	}
	return rules
}

// validateAlerts adds the problems of [alerting] and [[alerts]] to bad.
func (c *Config) validateAlerts(bad func(string, ...any)) {
	if c.Alerting.Interval < time.Second || c.Alerting.Interval > 10*time.Minute {
		bad("alerting.interval %s: want 1s to 10m", c.Alerting.Interval)
	}
	if u, err := url.Parse(c.Alerting.RunbookBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		bad("alerting.runbook_base %q: want an absolute http(s) URL without a fragment", c.Alerting.RunbookBase)
	}
	defaults := map[string]bool{}
	for _, r := range switchboard.DefaultAlertRules() {
		defaults[r.Name] = true
	}
	notifiers := map[string]bool{}
	for _, n := range c.Notifiers {
		notifiers[n.Name] = true
	}
	seen := map[string]bool{}
	for i := range c.Alerts {
		a := &c.Alerts[i]
		if seen[a.Name] {
			bad("alerts[%d].name %q: named twice", i, a.Name)
		}
		seen[a.Name] = true
		if a.turnsOff() && defaults[a.Name] {
			continue
		}
		r := a.rule()
		if err := r.Validate(); err != nil {
			bad("alerts[%d]: %v", i, err)
		}
		for _, n := range a.Notify {
			if !notifiers[n] {
				bad("alerts[%d].notify: no [[notifiers]] named %q", i, n)
			}
		}
	}
}
