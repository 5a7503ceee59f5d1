package cli

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/web"
)

func TestMessagesList(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	out := mustRun(t, "messages", "list", "--config", f.cfg)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("messages list: %d lines; want a header and 2 messages:\n%s", len(lines), out)
	}
	if !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "  TO  ") {
		t.Errorf("header %q", lines[0])
	}
	col := strings.Index(lines[0], "STATE")
	for i, want := range []string{"sent", "failed"} { // newest first
		if !strings.HasPrefix(lines[i+1][col:], want+" ") {
			t.Errorf("row %d: %q; want state %s under STATE", i+1, lines[i+1], want)
		}
	}
	if !strings.Contains(lines[2], "+15557654321") || !strings.Contains(lines[2], "21211: invalid To") {
		t.Errorf("failed message row %q; want its recipient and error", lines[2])
	}

	for _, tc := range []struct {
		args []string
		ids  []string
	}{
		{[]string{"--state", "failed"}, []string{f.failed}},
		{[]string{"--to", "+15557654322"}, []string{f.accepted}},
		{[]string{"--pool", "default", "--limit", "1"}, []string{f.accepted}},
		{[]string{"--pool", "other"}, nil},
		{[]string{"--since", "2026-11-01T12:00:01Z"}, []string{f.accepted}},
		{[]string{"--until", "2026-11-01T12:00:01Z"}, []string{f.failed}},
	} {
		var page web.Page[web.MessageJSON]
		out := mustRun(t, append([]string{"messages", "list", "--json", "--config", f.cfg}, tc.args...)...)
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("messages list --json %v: %v", tc.args, err)
		}
		var ids []string
		for _, m := range page.Items {
			ids = append(ids, m.ID)
		}
		if strings.Join(ids, ",") != strings.Join(tc.ids, ",") {
			t.Errorf("messages list %v: %v; want %v", tc.args, ids, tc.ids)
		}
	}

	redacted := mustRun(t, "messages", "list", "--config", f.redacted)
	if strings.Contains(redacted, "+1555765432") || !strings.Contains(redacted, "[redacted]") {
		t.Errorf("messages list under admin.redact shows a recipient:\n%s", redacted)
	}
	for _, args := range [][]string{{"--state", "lost"}, {"--purpose", "spam"}} {
		if _, err := run(t, append([]string{"messages", "list", "--config", f.cfg}, args...)...); err == nil {
			t.Errorf("messages list %v: no error", args)
		}
	}
}

func TestMessagesShow(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	out := mustRun(t, "messages", "show", "--config", f.cfg, f.accepted)
	for _, want := range []string{
		"Message " + f.accepted + "\n",
		"  state            sent\n",
		"  to               +15557654322\n",
		"  twilio sid       SMaccepted\n",
		"  sent             2026-11-01T12:01:00.000Z\n",
		"\nBody\n  Your code is 1234 – café\n",
		"\nMedia\n  https://media.example.com/a.png\n",
		"\nHistory\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("messages show: no %q in\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"delivered", "replayed", "next attempt", "0001-01-01"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("messages show: %q (a zero time) in\n%s", unwanted, out)
		}
	}
	redacted := mustRun(t, "messages", "show", "--config", f.redacted, f.accepted)
	if strings.Contains(redacted, "+15557654322") || strings.Contains(redacted, "Your code") {
		t.Errorf("messages show under admin.redact:\n%s", redacted)
	}
}

func TestMessagesReplay(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	for _, tc := range []struct {
		name, id string
		want     error
	}{
		{"accepted by Twilio", f.accepted, switchboard.ErrConflict},
		{"unknown", "01a20000-0000-7000-8000-000000000000", switchboard.ErrNotFound},
	} {
		if out, err := run(t, "messages", "replay", "--config", f.cfg, tc.id); !errors.Is(err, tc.want) {
			t.Errorf("messages replay of a message %s: %q, %v; want %v", tc.name, out, err, tc.want)
		}
	}
	out := mustRun(t, "messages", "replay", "--config", f.cfg, "--json", f.failed)
	var m web.MessageJSON
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("messages replay --json: %v\n%s", err, out)
	}
	if m.ID != f.failed || m.State != string(switchboard.MessageQueued) || m.ReplayedAt.IsZero() {
		t.Errorf("replayed message: %+v; want %s queued with a replay time", m, f.failed)
	}
	stored, err := f.store.OutboundMessage(t.Context(), f.failed)
	if err != nil || stored.State != switchboard.MessageQueued {
		t.Errorf("stored message after replay: %v, %v; want queued", stored.State, err)
	}
	// Queued again, it is no longer failed: a second replay is refused.
	if _, err := run(t, "messages", "replay", "--config", f.cfg, f.failed); !errors.Is(err, switchboard.ErrConflict) {
		t.Errorf("second replay: %v; want refused", err)
	}
}
