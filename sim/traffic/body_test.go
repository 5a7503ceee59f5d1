package load

import (
	"bytes"
	"math/rand/v2"
	"net/url"
	"testing"
)

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func TestGeneratorDeterministic(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{KindSMS, KindStatus} {
		a := newGenerator(Options{Kind: kind, Seed: 1})
		b := newGenerator(Options{Kind: kind, Seed: 1})
		c := newGenerator(Options{Kind: kind, Seed: 2})
		for n := range 100 {
			if !bytes.Equal(a.body(n), b.body(n)) {
				t.Fatalf("%s: body %d differs between runs with the same seed", kind, n)
			}
			if bytes.Equal(a.body(n), c.body(n)) {
				t.Fatalf("%s: body %d is the same for different seeds", kind, n)
			}
		}
	}
}

func TestGeneratorInbound(t *testing.T) {
	t.Parallel()
	g := newGenerator(Options{Kind: KindSMS, AccountSID: "AC00000000000000000000000000000001", Seed: 3})
	sids := make(map[string]bool)
	for n := range 20000 {
		form, err := url.ParseQuery(string(g.body(n)))
		if err != nil {
			t.Fatal(err)
		}
		sid := form.Get("MessageSid")
		if sids[sid] {
			t.Fatalf("request %d repeats MessageSid %s", n, sid)
		}
		sids[sid] = true
		if n > 0 {
			continue
		}
		for _, key := range []string{"SmsSid", "SmsMessageSid", "MessagingServiceSid", "From", "To", "Body", "FromCity", "FromState", "FromCountry"} {
			if form.Get(key) == "" {
				t.Errorf("%s missing", key)
			}
		}
		for key, want := range map[string]string{
			"AccountSid":  "AC00000000000000000000000000000001",
			"NumMedia":    "0",
			"NumSegments": "1",
			"SmsStatus":   "received",
			"ApiVersion":  "2010-04-01",
		} {
			if got := form.Get(key); got != want {
				t.Errorf("%s = %q; want %q", key, got, want)
			}
		}
		if len(form.Get("MessagingServiceSid")) != 34 {
			t.Errorf("MessagingServiceSid %q", form.Get("MessagingServiceSid"))
		}
	}
}

func TestGeneratorStatus(t *testing.T) {
	t.Parallel()
	g := newGenerator(Options{Kind: KindStatus, Seed: 3})
	for n := 0; n < 100; n += 2 {
		sent, err := url.ParseQuery(string(g.body(n)))
		if err != nil {
			t.Fatal(err)
		}
		delivered, err := url.ParseQuery(string(g.body(n + 1)))
		if err != nil {
			t.Fatal(err)
		}
		if sent.Get("MessageStatus") != "sent" || delivered.Get("MessageStatus") != "delivered" ||
			sent.Get("SmsStatus") != "sent" || delivered.Get("SmsStatus") != "delivered" {
			t.Fatalf("statuses %q, %q; want sent, delivered", sent.Get("MessageStatus"), delivered.Get("MessageStatus"))
		}
		for _, key := range []string{"MessageSid", "SmsSid", "AccountSid", "From", "To", "ApiVersion"} {
			if sent.Get(key) == "" || sent.Get(key) != delivered.Get(key) {
				t.Errorf("%s: %q then %q; want the same for both callbacks", key, sent.Get(key), delivered.Get(key))
			}
		}
	}
}
