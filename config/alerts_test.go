package config

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

const alertsTOML = validTOML + `
[alerting]
interval = "15s"
[[notifiers]]
name = "ops-slack"
type = "slack"
url = "https://hooks.slack.example/T/B/x"
[[alerts]]
name = "twilio-429-storm"
condition = "throttled"
threshold = 50
severity = "critical"
[[alerts]]
name = "opt-out-spike"
disabled = true
[[alerts]]
name = "otp-carrier-errors"
condition = "error_code"
code = 30007
source = "message"
threshold = 5
window = "15m"
notify = ["ops-slack"]
`

func TestAlertRulesMergeDefaultsAndEntries(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, alertsTOML), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Alerting.Interval != 15*time.Second || !c.Alerting.Enabled || !c.Alerting.Defaults {
		t.Errorf("alerting = %+v", c.Alerting)
	}
	rules := c.AlertRules()
	byName := map[string]switchboard.AlertRule{}
	for _, r := range rules {
		byName[r.Name] = r
	}
	if len(rules) != len(switchboard.DefaultAlertRules())+1 {
		t.Errorf("%d rules, want the defaults and one more", len(rules))
	}
	storm := byName["twilio-429-storm"]
	if storm.Threshold != 50 || storm.Severity != "critical" || storm.Window != 5*time.Minute ||
		storm.ClearFor != time.Minute || storm.Runbook != "twilio-429-storm" {
		t.Errorf("replaced default = %+v", storm)
	}
	if r := byName["opt-out-spike"]; !r.Disabled || r.Condition != switchboard.AlertOptOuts || r.Threshold != 50 {
		t.Errorf("turned-off default = %+v, want the default, disabled", r)
	}
	otp := byName["otp-carrier-errors"]
	if otp.Code != 30007 || otp.Source != "message" || otp.Window != 15*time.Minute || otp.Severity != "warning" ||
		len(otp.Notify) != 1 || otp.Notify[0] != "ops-slack" || rules[len(rules)-1].Name != "otp-carrier-errors" {
		t.Errorf("new rule = %+v (last %s)", otp, rules[len(rules)-1].Name)
	}
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			t.Errorf("%v", err)
		}
	}
}

func TestAlertRulesWithoutDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, validTOML+`
[alerting]
defaults = false
[[alerts]]
name = "lag"
condition = "queue_lag"
threshold = 60
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rules := c.AlertRules(); len(rules) != 1 || rules[0].Name != "lag" {
		t.Errorf("rules = %+v, want only lag", rules)
	}
}

func TestAlertsValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"interval too short", "[alerting]\ninterval = \"500ms\"\n", "alerting.interval"},
		{"interval too long", "[alerting]\ninterval = \"11m\"\n", "alerting.interval"},
		{"unknown notifier", "[[alerts]]\nname = \"x\"\ncondition = \"queue_lag\"\nnotify = [\"pager\"]\n", `alerts[0].notify: no [[notifiers]] named "pager"`},
		{"unknown condition", "[[alerts]]\nname = \"x\"\ncondition = \"vibes\"\n", "condition \"vibes\""},
		{"bad name", "[[alerts]]\nname = \"Has Spaces\"\ncondition = \"queue_lag\"\n", "alerts[0]"},
		{"named twice", "[[alerts]]\nname = \"x\"\ncondition = \"queue_lag\"\n[[alerts]]\nname = \"x\"\ncondition = \"opt_outs\"\n", `alerts[1].name "x": named twice`},
		{"share over 1", "[[alerts]]\nname = \"x\"\ncondition = \"delivery_failure\"\nthreshold = 50\n", "a share"},
		{"rate without by", "[[alerts]]\nname = \"x\"\ncondition = \"delivery_rate\"\nthreshold = 0.9\n", "by \"\""},
		{"disabled unknown rule", "[[alerts]]\nname = \"not-a-default\"\ndisabled = true\n", "condition"},
		{"window not minutes", "[[alerts]]\nname = \"x\"\ncondition = \"queue_lag\"\nwindow = \"90s\"\n", "window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(writeConfig(t, validTOML+tc.toml), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v, want an error mentioning %s", err, tc.want)
			}
		})
	}
}
