package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
)

// Slack POSTs each notification to a Slack incoming webhook: a text (what
// notifications and clients without blocks show) and blocks with a
// header, the facts and links to the runbook and the console. The
// webhook's URL is its secret: only its origin is ever reported.
type Slack struct {
	*poster
}

// NewSlack returns a notifier posting to the incoming webhook at rawURL.
func NewSlack(rawURL string, o Options) (*Slack, error) {
	o.defaults()
	p, err := newPoster(rawURL, o)
	if err != nil {
		return nil, err
	}
	return &Slack{poster: p}, nil
}

// Target is the webhook's origin.
func (s *Slack) Target() string { return s.origin }

// Notify posts the notification as a Slack message.
func (s *Slack) Notify(ctx context.Context, _ *switchboard.Event, req *switchboard.Request, _ int) deliver.NotifyOutcome {
	n, err := decode(req)
	if err != nil {
		return undecodable(s.origin, err)
	}
	body, err := json.Marshal(slackMessageOf(n))
	if err != nil {
		return undecodable(s.origin, fmt.Errorf("encode Slack message: %w", err))
	}
	return s.post(ctx, http.Header{"Content-Type": {"application/json"}}, body)
}

// slackMessage is an incoming webhook's payload.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type   string      `json:"type"`
	Text   *slackText  `json:"text,omitempty"`
	Fields []slackText `json:"fields,omitempty"`
}

type slackText struct {
	Type string `json:"type"` // plain_text or mrkdwn
	Text string `json:"text"`
}

// Slack's limits on a header's text and a section's.
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
)

// slackMessageOf is the incoming-webhook payload of n. Every text from the
// notification is escaped (&, < and >), so a key or summary cannot make
// links or mentions.
func slackMessageOf(n *switchboard.Notification) slackMessage {
	status := statusWord(n.Status)
	title := fmt.Sprintf("[%s] %s %s", status, n.Rule, n.Key)
	facts := []slackText{
		{Type: "mrkdwn", Text: "*Status*\n" + slackEscape(status)},
		{Type: "mrkdwn", Text: "*Severity*\n" + slackEscape(n.Severity)},
		{Type: "mrkdwn", Text: "*Rule*\n" + slackEscape(n.Rule)},
		{Type: "mrkdwn", Text: "*Key*\n" + slackEscape(orNone(n.Key))},
		{Type: "mrkdwn", Text: "*Value*\n" + slackEscape(number(n.Value)+" (threshold "+number(n.Threshold)+")")},
	}
	var links []string
	if n.Runbook != "" {
		links = append(links, slackLink(n.Runbook, "Runbook"))
	}
	if n.Console != "" {
		links = append(links, slackLink(n.Console, "Open in the console"))
	}
	blocks := []slackBlock{
		{Type: "header", Text: &slackText{Type: "plain_text", Text: cut(title, slackHeaderMax)}},
		{Type: "section", Text: &slackText{Type: "mrkdwn", Text: cut(slackEscape(orNone(n.Summary)), slackSectionMax)}, Fields: facts},
	}
	if len(links) > 0 {
		blocks = append(blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: strings.Join(links, " · ")}})
	}
	text := slackEscape(title)
	if n.Summary != "" {
		text += ": " + slackEscape(n.Summary)
	}
	return slackMessage{Text: cut(text, slackSectionMax), Blocks: blocks}
}

// slackEscape escapes the three characters Slack gives meaning to in text.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// slackLink is a link in Slack's syntax. The URL is the operator's own
// (public_url, the runbook's); the characters that would end the link
// early are percent-encoded.
func slackLink(u, label string) string {
	u = strings.NewReplacer("<", "%3C", ">", "%3E", "|", "%7C", " ", "%20").Replace(u)
	return "<" + u + "|" + label + ">"
}

// statusWord is a notification's status as its title says it.
func statusWord(s switchboard.AlertStatus) string {
	if s == switchboard.AlertFiring {
		return "FIRING"
	}
	return "RESOLVED"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func number(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// cut keeps at most max runes of s.
func cut(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}
