package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// notifierSecret signs the webhook notifier's requests (Standard
// Webhooks: "whsec_" and the base64 of the key).
var notifierSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("e2e notifier signing key, 32 by"))

// The default alerts the storm and the outage must set off, each with the
// key it fires for (filled in once the app's address is known).
var stormAlerts = []string{"webhook-delivery-failing", "webhook-dead-letters", "circuit-open", "twilio-429-storm"}

// TestAlertsFireAndResolve drives a 429 storm (the simulator as Twilio
// admits one REST request at a time) and an app outage against the real
// binary, and checks that each default alert they concern fires, resolves
// after recovery, and is told exactly once of each to a webhook notifier
// (signed), a Slack-format one and an SMTP one, although the webhook
// notifier's target was down when the alerts fired.
func TestAlertsFireAndResolve(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store) {
		t.Parallel()
		testAlertsFireAndResolve(t, st)
	})
}

func testAlertsFireAndResolve(t *testing.T, st store) {
	var down atomic.Bool
	down.Store(true)
	a := startApp(t, func(a *app) {
		a.respond = func(*delivery, int) int {
			if down.Load() {
				return http.StatusServiceUnavailable
			}
			return http.StatusNoContent
		}
	})
	hookAt := reservePort(t) // the webhook notifier's target: down at first
	hook := &notificationSink{name: "webhook", secret: notifierSecret}
	slack := &notificationSink{name: "slack"}
	slackSrv := httptest.NewServer(slack)
	t.Cleanup(slackSrv.Close)
	mailbox := startSMTP(t)

	// The simulator as Twilio, and as the outbound provider admitting one
	// request at a time, each taking 200 ms: a burst of sends meets 429s.
	// Each needs the other's address: the simulator's is reserved.
	simAt := reservePort(t)
	// Windows of a minute and short clear times, so that the test ends
	// within minutes; the rules are otherwise the defaults.
	extra := fmt.Sprintf(`[alerting]
interval = "1s"

[[alerts]]
name = "webhook-delivery-failing"
condition = "delivery_failure"
window = "1m"
clear_for = "2s"
threshold = 0.5
min_count = 5
severity = "critical"
runbook = "webhook-error-spike"

[[alerts]]
name = "webhook-dead-letters"
condition = "dead_letters"
window = "1m"
clear_for = "2s"
severity = "critical"
runbook = "dead-letters"

[[alerts]]
name = "circuit-open"
condition = "breaker_open"
window = "1m"
for = "3s"
clear_for = "2s"
severity = "critical"
runbook = "webhook-error-spike"

[[alerts]]
name = "twilio-429-storm"
condition = "throttled"
window = "1m"
clear_for = "2s"
threshold = 3
severity = "warning"
runbook = "429-storm"

[[notifiers]]
name = "ops-webhook"
type = "webhook"
url = "http://%s/hooks/switchboard"
secret = %q

[[notifiers]]
name = "ops-slack"
type = "slack"
url = "%s/services/T000/B000/XXXX"

[[notifiers]]
name = "ops-mail"
type = "smtp"
address = %q
from = "switchboard@example.com"
to = ["oncall@example.com"]
starttls = "none"
`, hookAt.addr, notifierSecret, slackSrv.URL, mailbox.addr)

	cfgPath := writeConfig(t, config{
		storage: st.url,
		routes: []route{
			{path: "/sms", target: a.url("/app/sms"), maxAttempts: 3},
			{path: "/status", mode: "static"},
		},
		provider:          "http://" + simAt.addr,
		pools:             []pool{{name: "main", senders: []string{twilioNumber}, rate: 50}},
		statusRoute:       "/status",
		dashboardInterval: time.Second,
		extra:             extra,
	})
	p := startServe(t, cfgPath)
	simAt.free()
	tw := launch(t, "switchboard sim serve", newLogBuffer(simListening), "sim", "serve", writeStormSimConfig(t, p.addr), "--listen", simAt.addr)
	tw.waitListening(t)

	// The outage: every webhook fails three times and is dead-lettered,
	// and the app's circuit opens.
	for i := range 12 {
		inboundThroughStorm(t, tw, fmt.Sprintf("outage %d", i))
	}
	// The storm: a burst of sends, most of them refused with 429 at first.
	for i := range 20 {
		if status, _ := postMessage(t, p, fmt.Sprintf("storm-%d", i),
			fmt.Sprintf(`{"to": "+1415555%04d", "body": "storm %d"}`, 1000+i, i)); status/100 != 2 {
			t.Fatalf("POST /api/v1/messages: status %d", status)
		}
	}

	appKey := "http://" + a.srv.Listener.Addr().String()
	firing := map[string]string{ // rule → the key it fires for
		"webhook-delivery-failing": "/sms", "webhook-dead-letters": "/sms",
		"circuit-open": appKey, "twilio-429-storm": "main",
	}
	const patience = 4 * time.Minute
	for _, s := range []*notificationSink{slack, mailbox.sink} {
		s.waitFor(t, patience, firing, "firing")
	}
	// The webhook notifier's notifications wait, retried, while its
	// target is down: they are events of its route, with attempts (a
	// circuit open meanwhile holds some back without one).
	eventually(t, time.Minute, func() (bool, string) {
		evs := apiEvents(t, p, "route=notify:ops-webhook")
		attempts, waiting := 0, 0
		for _, e := range evs {
			attempts += e.Attempts
			if e.State == "retrying" || e.State == "pending" {
				waiting++
			}
		}
		return waiting >= len(firing) && waiting == len(evs) && attempts >= 2*len(evs),
			fmt.Sprintf("the webhook notifier's notifications: %d waiting of %d, %d attempts (%+v)", waiting, len(evs), attempts, evs)
	})
	startSinkAt(t, hookAt, hook)
	hook.waitFor(t, patience, firing, "firing")

	// Recovery: the app answers again, and new webhooks are delivered.
	recovered := time.Now()
	down.Store(false)
	for i := range 12 {
		inboundThroughStorm(t, tw, fmt.Sprintf("recovered %d", i))
	}
	for _, s := range []*notificationSink{hook, slack, mailbox.sink} {
		s.waitFor(t, patience, firing, "resolved")
	}
	for _, s := range []*notificationSink{hook, slack, mailbox.sink} {
		s.checkExactlyOnce(t, firing)
		s.checkResolvedAfter(t, recovered)
	}
	if err := hook.signatureErr(); err != nil {
		t.Error(err)
	}
}

// inboundThroughStorm makes an inbound message happen through the
// simulator's control API, which admits one request at a time like its
// REST API: a 429 is tried again.
func inboundThroughStorm(t *testing.T, tw *proc, body string) {
	t.Helper()
	form := url.Values{"From": {handset}, "To": {twilioNumber}, "Body": {body}}
	eventually(t, time.Minute, func() (bool, string) {
		var res simInboundResult
		status := simAPI(t, tw, http.MethodPost, "/sim/v1/Accounts/"+accountSID+"/InboundMessages", form, &res)
		return status == http.StatusCreated && res.SID != "", fmt.Sprintf("POST InboundMessages: status %d", status)
	})
}

// writeStormSimConfig writes a simulator configuration like
// writeSimConfig's, whose REST API admits one request at a time, each
// taking 200 ms.
func writeStormSimConfig(t *testing.T, switchboard string) string {
	t.Helper()
	b, err := os.ReadFile(writeSimConfig(t, switchboard))
	if err != nil {
		t.Fatal(err)
	}
	cfg := "concurrency_limit = 1\napi_latency = \"200ms\"\n" + string(b)
	path := filepath.Join(t.TempDir(), "sim-storm.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// notification is what a sink made of one notification it received.
type notification struct {
	rule, key, status string
	at                time.Time // when it was received
}

// notificationSink takes one notifier's notifications: as JSON (webhook,
// checking its Standard Webhooks signature when secret is set), as
// Slack's incoming-webhook JSON, or as mail.
type notificationSink struct {
	name   string
	secret string

	mu      sync.Mutex
	got     []notification
	badSigs []string
	changed chan struct{}
}

func (s *notificationSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var n notification
	if s.secret != "" {
		if err := verifyStandardWebhook(s.secret, r.Header, body); err != nil {
			s.mu.Lock()
			s.badSigs = append(s.badSigs, err.Error())
			s.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var doc struct{ Rule, Key, Status string }
		if err := json.Unmarshal(body, &doc); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n = notification{rule: doc.Rule, key: doc.Key, status: doc.Status}
	} else {
		var doc struct{ Text string }
		if err := json.Unmarshal(body, &doc); err != nil || doc.Text == "" {
			http.Error(w, "want Slack's JSON with a text", http.StatusBadRequest)
			return
		}
		n = parseAlertLine(doc.Text)
	}
	s.add(n)
	w.WriteHeader(http.StatusOK)
}

func (s *notificationSink) add(n notification) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.status == "ok" {
		n.status = "resolved"
	}
	n.at = time.Now()
	s.got = append(s.got, n)
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}

// parseAlertLine reads "[FIRING] rule key…" or "[RESOLVED] rule key…",
// the first line of a Slack text or a mail's subject.
func parseAlertLine(text string) notification {
	line, _, _ := strings.Cut(text, "\n")
	var n notification
	for _, st := range []string{"firing", "resolved"} {
		if strings.Contains(strings.ToLower(line), st) {
			n.status = st
		}
	}
	for _, rule := range stormAlerts {
		if strings.Contains(line, rule) {
			n.rule = rule
		}
	}
	n.key = line
	return n
}

// waitFor waits until the sink has a notification of status for every
// rule of want.
func (s *notificationSink) waitFor(t *testing.T, timeout time.Duration, want map[string]string, status string) {
	t.Helper()
	eventually(t, timeout, func() (bool, string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var missing []string
		for rule := range want {
			if !slices.ContainsFunc(s.got, func(n notification) bool { return n.rule == rule && n.status == status }) {
				missing = append(missing, rule)
			}
		}
		slices.Sort(missing)
		return len(missing) == 0, fmt.Sprintf("%s notifier: no %s notification of %v yet; got %+v", s.name, status, missing, s.got)
	})
}

// checkExactlyOnce checks that the sink got one firing and one resolved
// notification of each rule of want, for its key, and nothing else.
func (s *notificationSink) checkExactlyOnce(t *testing.T, want map[string]string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[notification]int{}
	for _, n := range s.got {
		if _, ok := want[n.rule]; !ok {
			t.Errorf("%s notifier: unexpected notification %+v", s.name, n)
			continue
		}
		if s.secret != "" && n.key != want[n.rule] {
			t.Errorf("%s notifier: %s %s for key %q, want %q", s.name, n.rule, n.status, n.key, want[n.rule])
		}
		if s.secret == "" && !strings.Contains(n.key, want[n.rule]) {
			t.Errorf("%s notifier: %q does not name the key %q", s.name, n.key, want[n.rule])
		}
		counts[notification{rule: n.rule, status: n.status}]++
	}
	for rule := range want {
		for _, st := range []string{"firing", "resolved"} {
			if c := counts[notification{rule: rule, status: st}]; c != 1 {
				t.Errorf("%s notifier: %d %s notifications of %s, want exactly 1", s.name, c, st, rule)
			}
		}
	}
}

// checkResolvedAfter checks that no alert was told resolved before the
// app recovered.
func (s *notificationSink) checkResolvedAfter(t *testing.T, recovered time.Time) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.got {
		if n.status == "resolved" && n.at.Before(recovered) {
			t.Errorf("%s notifier: %s resolved %v before the app recovered", s.name, n.rule, recovered.Sub(n.at))
		}
	}
}

func (s *notificationSink) signatureErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.badSigs) > 0 {
		return fmt.Errorf("%s notifier: %d requests failed verification: %v", s.name, len(s.badSigs), s.badSigs)
	}
	return nil
}

// verifyStandardWebhook checks a request signed with Standard Webhooks'
// scheme: an HMAC-SHA256, keyed with the secret's base64 after "whsec_",
// of "id.timestamp.body", in webhook-signature as "v1,<base64>" (one of
// several, space-separated), with a timestamp within five minutes.
func verifyStandardWebhook(secret string, h http.Header, body []byte) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	var sec int64
	if _, err := fmt.Sscan(ts, &sec); err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return fmt.Errorf("webhook-timestamp %q: not within five minutes", ts)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.", id, ts)
	mac.Write(body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(sigs) {
		if v, sig, ok := strings.Cut(s, ","); ok && v == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no valid v1 signature in %q", sigs)
}

// startSinkAt serves h on a reserved port, as startAppAt does for apps.
func startSinkAt(t *testing.T, r *reservation, h http.Handler) {
	t.Helper()
	r.free()
	var ln net.Listener
	eventually(t, 5*time.Second, func() (bool, string) {
		var err error
		ln, err = net.Listen("tcp", r.addr)
		return err == nil, fmt.Sprintf("listen on %s: %v", r.addr, err)
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
}

// smtpSink is a local SMTP server whose mails are notifications.
type smtpSink struct {
	addr string
	sink *notificationSink
}

func startSMTP(t *testing.T) *smtpSink {
	t.Helper()
	s := &smtpSink{sink: &notificationSink{name: "smtp"}}
	srv := smtp.NewServer(smtpBackend{s.sink})
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 1 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

type smtpBackend struct{ sink *notificationSink }

func (b smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &smtpSession{sink: b.sink}, nil
}

type smtpSession struct {
	sink *notificationSink
	rcpt []string
}

func (s *smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpt = append(s.rcpt, to)
	return nil
}
func (s *smtpSession) Reset()        { s.rcpt = nil }
func (s *smtpSession) Logout() error { return nil }

func (s *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if !slices.Contains(s.rcpt, "oncall@example.com") {
		return fmt.Errorf("mail for %v, not the configured recipient", s.rcpt)
	}
	s.sink.add(parseAlertLine(m.Header.Get("Subject")))
	return nil
}
