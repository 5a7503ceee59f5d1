package web_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/egress"
	"github.com/switchboard-dev/switchboard/web"
)

// internalWebhooks are status webhooks whose host is internal on its face.
var internalWebhooks = []struct{ url, class string }{
	{"http://127.0.0.1:8080/hooks/status?token=s3cr3t", "loopback"},
	{"http://localhost:3000/hooks/status?token=s3cr3t", "loopback"},
	{"http://[::1]/hooks/status", "loopback"},
	{"http://[::ffff:127.0.0.1]/hooks/status", "loopback"},
	{"http://169.254.169.254/latest/meta-data/", "link-local"},
	{"http://10.0.0.5/hooks/status", "private"},
	{"http://100.64.0.1/hooks/status", "CGNAT"},
	{"http://0.0.0.0:8080/hooks/status", "unspecified"},
}

// The native API refuses a status_webhook whose host is an internal
// address or a localhost name (400), naming the address class and not the
// URL's query, and stores nothing.
func TestCreateMessageRefusesInternalStatusWebhook(t *testing.T) {
	t.Parallel()
	f := newOutboundFixture(t)
	for i, w := range internalWebhooks {
		t.Run(w.url, func(t *testing.T) {
			resp, body := f.send(t, fmt.Sprintf("k%d", i), fmt.Sprintf(`{"to": "+15557770001", "body": "hi", "status_webhook": %q}`, w.url))
			checkError(t, resp, body, http.StatusBadRequest, w.class)
			if strings.Contains(string(body), "s3cr3t") {
				t.Errorf("answer %s names the URL's query", body)
			}
		})
	}
	if n := f.messageCount(t); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}
}

// The Twilio-compatible API refuses such a StatusCallback with 21609.
func TestTwilioCreateRefusesInternalStatusCallback(t *testing.T) {
	t.Parallel()
	f := newTwilioFixture(t)
	for _, w := range internalWebhooks {
		t.Run(w.url, func(t *testing.T) {
			resp, body := f.twilio(t, twilioCall{form: form("To", "+15557770001", "From", "+15550001001", "Body", "hi", "StatusCallback", w.url)})
			checkTwilioError(t, resp, body, http.StatusBadRequest, 21609)
			if !strings.Contains(string(body), w.class) || strings.Contains(string(body), "s3cr3t") {
				t.Errorf("answer %s: want the class %s named and not the URL's query", body, w.class)
			}
		})
	}
	if n := f.messageCount(t); n != 0 {
		t.Errorf("%d messages stored, want none", n)
	}
}

// With loopback on the allowlist, both APIs take a loopback status
// webhook, and neither refuses a public one; other internal classes stay
// refused.
func TestStatusWebhookAllowlist(t *testing.T) {
	t.Parallel()
	f := newOutboundFixture(t,
		web.WithEgress(egress.New(netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))),
		web.WithTwilioAccounts([]web.TwilioAccount{{SID: outAccount, Tokens: []string{outToken}}}))
	for i, hook := range []string{"http://127.0.0.1:8080/hooks/status", "http://localhost:3000/hooks/status", "https://app.example.com/hooks/status"} {
		resp, body := f.send(t, fmt.Sprintf("ok%d", i), fmt.Sprintf(`{"to": "+15557770001", "body": "hi %d", "status_webhook": %q}`, i, hook))
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("native create with status_webhook %s = %d %s, want 202", hook, resp.StatusCode, body)
		}
		resp, body = f.twilio(t, twilioCall{form: form("To", "+15557770001", "From", "+15550001001", "Body", fmt.Sprint("hi ", i), "StatusCallback", hook)})
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("compatible create with StatusCallback %s = %d %s, want 201", hook, resp.StatusCode, body)
		}
	}
	resp, body := f.send(t, "metadata", `{"to": "+15557770001", "body": "hi", "status_webhook": "http://169.254.169.254/"}`)
	checkError(t, resp, body, http.StatusBadRequest, "link-local")
}
