package notify

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard"
)

func TestSlackMessage(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, nil)
	s, _ := NewSlack(r.URL+"/services/T0/B0/X", Options{Now: clock})
	ev, req := item(t, "slack", testNotification())
	if out := s.Notify(t.Context(), ev, req, 1); out.Err != nil {
		t.Fatalf("Notify: %+v", out)
	}
	got, body := r.last(t)
	if got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("content type %q", got.Header.Get("Content-Type"))
	}
	var m struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text *struct {
				Type, Text string
			} `json:"text"`
			Fields []struct{ Type, Text string } `json:"fields"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if !strings.HasPrefix(m.Text, "[FIRING] webhook-delivery-failing /sms: ") {
		t.Errorf("text %q", m.Text)
	}
	// Hostile: the summary's <@channel> and & cannot mention or link.
	if strings.Contains(m.Text, "<@channel>") || !strings.Contains(m.Text, "&lt;@channel&gt; &amp; more") {
		t.Errorf("text %q is not escaped", m.Text)
	}
	if len(m.Blocks) != 3 || m.Blocks[0].Type != "header" || m.Blocks[0].Text.Type != "plain_text" ||
		m.Blocks[0].Text.Text != "[FIRING] webhook-delivery-failing /sms" {
		t.Fatalf("blocks %s", body)
	}
	section := m.Blocks[1]
	if !strings.Contains(section.Text.Text, "&lt;@channel&gt;") {
		t.Errorf("section %q is not escaped", section.Text.Text)
	}
	var fields []string
	for _, f := range section.Fields {
		fields = append(fields, f.Text)
	}
	all := strings.Join(fields, "\n")
	for _, want := range []string{"*Status*\nFIRING", "*Severity*\ncritical", "*Rule*\nwebhook-delivery-failing", "*Key*\n/sms", "*Value*\n0.62 (threshold 0.5)"} {
		if !strings.Contains(all, want) {
			t.Errorf("fields %q lack %q", all, want)
		}
	}
	links := m.Blocks[2].Text.Text
	if !strings.Contains(links, "<https://github.com/switchboard-dev/switchboard/blob/main/docs/runbooks.md#webhook-error-spike|Runbook>") ||
		!strings.Contains(links, "<https://sb.example.com/console/alerts/webhook-delivery-failing|Open in the console>") {
		t.Errorf("links %q", links)
	}
}

func TestSlackResolvedWithoutLinks(t *testing.T) {
	t.Parallel()
	n := testNotification()
	n.Status, n.Runbook, n.Console = switchboard.AlertOK, "", ""
	n.Key = "<https://evil.example|click> & " + strings.Repeat("k", 300)
	m := slackMessageOf(n)
	if len(m.Blocks) != 2 {
		t.Errorf("%d blocks without links, want 2", len(m.Blocks))
	}
	if !strings.HasPrefix(m.Text, "[RESOLVED] ") || strings.Contains(m.Text, "<https://evil") {
		t.Errorf("text %q", m.Text)
	}
	if h := m.Blocks[0].Text.Text; len([]rune(h)) > slackHeaderMax {
		t.Errorf("header of %d characters, over Slack's %d", len([]rune(h)), slackHeaderMax)
	}
	if got := slackLink("https://x.example/a|b>c", "L"); got != "<https://x.example/a%7Cb%3Ec|L>" {
		t.Errorf("slackLink = %q", got)
	}
}
