package notify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/config"
)

// The Standard Webhooks specification's published test vector.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesTheSpecVector(t *testing.T) {
	t.Parallel()
	key, err := config.WebhookKey(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := Sign(key, vectorID, vectorTimestamp, []byte(vectorBody)); got != vectorSignature {
		t.Errorf("Sign = %s, want %s", got, vectorSignature)
	}
}

func TestWebhookSignsEachAttempt(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, nil)
	key, _ := config.WebhookKey(vectorSecret)
	now := epoch
	w, err := NewWebhook(r.URL+"/alerts", key, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ev, req := item(t, "ops", testNotification())
	if out := w.Notify(t.Context(), ev, req, 1); out.Err != nil {
		t.Fatalf("Notify: %+v", out)
	}
	got, body := r.last(t)
	if !bytes.Equal(body, req.Body) {
		t.Errorf("body %s, want the stored notification %s", body, req.Body)
	}
	if got.Header.Get("Content-Type") != "application/json" || got.URL.Path != "/alerts" {
		t.Errorf("content type %q, path %q", got.Header.Get("Content-Type"), got.URL.Path)
	}
	id, ts := got.Header.Get("webhook-id"), got.Header.Get("webhook-timestamp")
	if id != ev.ID || ts != strconv.FormatInt(epoch.Unix(), 10) {
		t.Errorf("webhook-id %q, webhook-timestamp %q; want %s and %d", id, ts, ev.ID, epoch.Unix())
	}
	if sig := got.Header.Get("webhook-signature"); sig != Sign(key, ev.ID, epoch.Unix(), req.Body) {
		t.Errorf("webhook-signature %q does not verify", sig)
	}

	// A retry has the same id and a fresh timestamp and signature.
	now = epoch.Add(time.Minute)
	w.Notify(t.Context(), ev, req, 2)
	again, _ := r.last(t)
	if again.Header.Get("webhook-id") != id || again.Header.Get("webhook-timestamp") != strconv.FormatInt(now.Unix(), 10) ||
		again.Header.Get("webhook-signature") == got.Header.Get("webhook-signature") {
		t.Errorf("retry's headers %v, want the same id and a new timestamp and signature", again.Header)
	}
}

// TestWebhookVerifiesWithTheReferenceLibrary checks what Switchboard sends
// with the Standard Webhooks library for Node (testdata/standardwebhooks),
// and that the library refuses a forged body. It skips when Node or the
// library is missing, unless SWITCHBOARD_TEST_REQUIRE_NODE is set.
func TestWebhookVerifiesWithTheReferenceLibrary(t *testing.T) {
	t.Parallel()
	require := os.Getenv("SWITCHBOARD_TEST_REQUIRE_NODE") != ""
	skip := func(why string) {
		if require {
			t.Fatal(why + " (SWITCHBOARD_TEST_REQUIRE_NODE is set)")
		}
		t.Skip(why)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node is not installed")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "standardwebhooks"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks")); err != nil {
		skip("standardwebhooks is not installed (npm ci --prefix notify/testdata/standardwebhooks)")
	}

	r := newReceiver(t, nil)
	key, _ := config.WebhookKey(vectorSecret)
	// The library checks the timestamp against its own clock.
	w, _ := NewWebhook(r.URL, key, Options{Now: time.Now})
	ev, req := item(t, "ops", testNotification())
	if out := w.Notify(t.Context(), ev, req, 1); out.Err != nil {
		t.Fatalf("Notify: %+v", out)
	}
	got, body := r.last(t)
	headers := map[string]string{}
	for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		headers[h] = got.Header.Get(h)
	}
	verify := func(body []byte) (ok bool, why string) {
		in, _ := json.Marshal(map[string]any{"secret": vectorSecret, "headers": headers, "body": base64.StdEncoding.EncodeToString(body)})
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "verify.js"))
		cmd.Stdin = bytes.NewReader(in)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node verify.js: %v", err)
		}
		var res struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("node verify.js printed %q: %v", out, err)
		}
		return res.OK, res.Error
	}
	if ok, why := verify(body); !ok {
		t.Errorf("the reference library refuses the notification: %s", why)
	}
	forged := bytes.Replace(body, []byte(`"firing"`), []byte(`"ok"`), 1)
	if ok, _ := verify(forged); ok {
		t.Error("the reference library accepts a forged body")
	}
}
