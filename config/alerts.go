package config

import (
	"time"
)

// Alerting configures the evaluation of alert rules.
type Alerting struct {
	// Enabled evaluates the rules (default true).
	Enabled bool `koanf:"enabled"`
	// Defaults adds switchboard.DefaultAlertRules to [[alerts]] (default
	// true); an [[alerts]] entry of a default's name replaces it.
	Defaults bool `koanf:"defaults"`
	// Interval is how often the rules are evaluated (default 30s).
	Interval time.Duration `koanf:"interval"`
}

// Alert is one [[alerts]] entry: a switchboard.AlertRule.
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

// validateAlerts adds the problems of [alerting] and [[alerts]] to bad.
func (c *Config) validateAlerts(bad func(string, ...any)) {
	// Filled in with the alert rules.
}
