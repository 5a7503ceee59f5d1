package traffic

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
)

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// body returns body n of g, failing the test on an error.
func body(t *testing.T, g *generator, n int) []byte {
	t.Helper()
	b, _, err := g.payload(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// form returns body n of g parsed as a form.
func form(t *testing.T, g *generator, n int) url.Values {
	t.Helper()
	f, err := url.ParseQuery(string(body(t, g, n)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestGeneratorDeterministic(t *testing.T) {
	t.Parallel()
	for _, kind := range Kinds() {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			a := newGenerator(Options{Kind: kind, Seed: 1})
			b := newGenerator(Options{Kind: kind, Seed: 1})
			c := newGenerator(Options{Kind: kind, Seed: 2})
			for n := range 100 {
				if !bytes.Equal(body(t, a, n), body(t, b, n)) {
					t.Fatalf("body %d differs between runs with the same seed", n)
				}
				if bytes.Equal(body(t, a, n), body(t, c, n)) {
					t.Fatalf("body %d is the same for different seeds", n)
				}
			}
		})
	}
}

// TestGeneratorUniqueSIDs checks that every request of a run is about a new
// message or call, with SIDs of Twilio's shape.
func TestGeneratorUniqueSIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind   string
		sid    func(t *testing.T, g *generator, n int) []string // the SIDs that must be new in request n
		prefix []string
	}{
		{KindSMS, func(t *testing.T, g *generator, n int) []string {
			return []string{form(t, g, n).Get("MessageSid")}
		}, []string{"SM"}},
		{KindVoice, func(t *testing.T, g *generator, n int) []string {
			return []string{form(t, g, n).Get("CallSid")}
		}, []string{"CA"}},
		{KindClientNotification, func(t *testing.T, g *generator, n int) []string {
			var cn clientNotification
			if err := json.Unmarshal(body(t, g, n), &cn); err != nil {
				t.Fatal(err)
			}
			return []string{cn.CallSID, cn.MessageID, cn.BridgeToken}
		}, []string{"CA", "WB", "BT"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			g := newGenerator(Options{Kind: tt.kind, Seed: 3})
			seen := make(map[string]bool)
			for n := range 5000 {
				for i, sid := range tt.sid(t, g, n) {
					if len(sid) != 34 || !strings.HasPrefix(sid, tt.prefix[i]) {
						t.Fatalf("request %d: SID %q; want %s and 32 hex digits", n, sid, tt.prefix[i])
					}
					if seen[sid] {
						t.Fatalf("request %d repeats %s", n, sid)
					}
					seen[sid] = true
				}
			}
		})
	}
}

// TestGeneratorMessagesUnchanged pins bodies of messages and status
// callbacks, so that adding kinds never changes what an existing benchmark
// sent for a seed.
func TestGeneratorMessagesUnchanged(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts Options
		n    int
		want string
	}{
		{Options{Kind: KindSMS, Seed: 1}, 5, "AccountSid=AC10601b7fae0bcf225bac3f4504ed6fac&ApiVersion=2010-04-01" +
			"&Body=Thanks+%26+have+a+great+day+%3A%29&From=%2B12065550179&FromCity=SEATTLE&FromCountry=US&FromState=WA" +
			"&FromZip=98101&MessageSid=SMc428f2e240418f4abe1c3f83440b348c&MessagingServiceSid=MGe1897eb0fe49d782e9429964f0269d08" +
			"&NumMedia=0&NumSegments=1&SmsMessageSid=SMc428f2e240418f4abe1c3f83440b348c&SmsSid=SMc428f2e240418f4abe1c3f83440b348c" +
			"&SmsStatus=received&To=%2B14155550164&ToCity=SAN+FRANCISCO&ToCountry=US&ToState=CA&ToZip=94105"},
		{Options{Kind: KindStatus, Seed: 9, AccountSID: "ACx"}, 7, "AccountSid=ACx&ApiVersion=2010-04-01&From=%2B12065550182" +
			"&MessageSid=SM1cde4e7dc2411daac76fc157f3f94475&MessageStatus=delivered&SmsSid=SM1cde4e7dc2411daac76fc157f3f94475" +
			"&SmsStatus=delivered&To=%2B16175550188"},
	}
	for _, tt := range tests {
		if got := string(body(t, newGenerator(tt.opts), tt.n)); got != tt.want {
			t.Errorf("%s body %d, seed %d:\n got %s\nwant %s", tt.opts.Kind, tt.n, tt.opts.Seed, got, tt.want)
		}
	}
}

func TestGeneratorInbound(t *testing.T) {
	t.Parallel()
	g := newGenerator(Options{Kind: KindSMS, AccountSID: "AC00000000000000000000000000000001", Seed: 3})
	f := form(t, g, 0)
	for _, key := range []string{"SmsSid", "SmsMessageSid", "MessagingServiceSid", "From", "To", "Body", "FromCity", "FromState", "FromCountry"} {
		if f.Get(key) == "" {
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
		if got := f.Get(key); got != want {
			t.Errorf("%s = %q; want %q", key, got, want)
		}
	}
	if len(f.Get("MessagingServiceSid")) != 34 {
		t.Errorf("MessagingServiceSid %q", f.Get("MessagingServiceSid"))
	}
}

func TestGeneratorStatus(t *testing.T) {
	t.Parallel()
	g := newGenerator(Options{Kind: KindStatus, Seed: 3})
	for n := 0; n < 100; n += 2 {
		sent, delivered := form(t, g, n), form(t, g, n+1)
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

func TestGeneratorVoice(t *testing.T) {
	t.Parallel()
	g := newGenerator(Options{Kind: KindVoice, AccountSID: "AC00000000000000000000000000000001", Seed: 3})
	f := form(t, g, 0)
	for key, want := range map[string]string{
		"AccountSid":    "AC00000000000000000000000000000001",
		"CallStatus":    "ringing",
		"Direction":     "inbound",
		"ApiVersion":    "2010-04-01",
		"FromCountry":   "US",
		"ToCountry":     "US",
		"CallerCountry": "US",
		"CalledCountry": "US",
	} {
		if got := f.Get(key); got != want {
			t.Errorf("%s = %q; want %q", key, got, want)
		}
	}
	for _, key := range []string{"FromCity", "FromState", "FromZip", "ToCity", "ToState", "ToZip", "CallerCity", "CalledZip"} {
		if f.Get(key) == "" {
			t.Errorf("%s missing", key)
		}
	}
	if f.Get("From") == "" || f.Get("Caller") != f.Get("From") || f.Get("To") == "" || f.Get("Called") != f.Get("To") {
		t.Errorf("From %q Caller %q To %q Called %q; want Caller = From, Called = To", f.Get("From"), f.Get("Caller"), f.Get("To"), f.Get("Called"))
	}
	if got := g.contentType(); got != "application/x-www-form-urlencoded; charset=UTF-8" {
		t.Errorf("Content-Type %q", got)
	}
}

func TestGeneratorClientNotification(t *testing.T) {
	t.Parallel()
	g := newGenerator(Options{Kind: KindClientNotification, AccountSID: "AC00000000000000000000000000000001", Seed: 3})
	var members map[string]any
	if err := json.Unmarshal(body(t, g, 0), &members); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"twi_account_sid":  "AC00000000000000000000000000000001",
		"twi_message_type": "twilio.voice.call",
	} {
		if got := members[key]; got != want {
			t.Errorf("%s = %v; want %q", key, got, want)
		}
	}
	for key, prefix := range map[string]string{
		"twi_bridge_token": "BT",
		"twi_call_sid":     "CA",
		"twi_from":         "+1",
		"twi_to":           "client:",
		"twi_message_id":   "WB",
	} {
		if s, ok := members[key].(string); !ok || !strings.HasPrefix(s, prefix) {
			t.Errorf("%s = %v; want a string starting %q", key, members[key], prefix)
		}
	}
	if len(members) != 7 {
		t.Errorf("%d members; want 7: %v", len(members), members)
	}
	if got := g.contentType(); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
}
