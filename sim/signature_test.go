package sim

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"

	"github.com/switchboard-dev/switchboard/twilio"
)

// Vectors from Twilio's SDK test suites (token 12345).
const (
	vecToken    = "12345"
	vecURL      = "https://mycompany.com/myapp.php?foo=1&bar=2"
	vecForm     = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212"
	vecJSON     = `{"property": "value", "boolean": true}`
	vecJSONHash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
	formType    = "application/x-www-form-urlencoded"
)

// TestValidateSDKVectors: what Twilio's SDKs sign, our checking accepts,
// and so does twilio-go's; a changed byte makes both refuse it.
func TestValidateSDKVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url, contentType, body, sig string
	}{
		{"Form", vecURL, formType, vecForm, "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{"FormPort443", "https://mycompany.com:443/myapp.php?foo=1&bar=2", formType, vecForm, "kvajT1Ptam85bY51eRf/AJRuM3w="},
		{"FormHTTPPort80", "http://mycompany.com:80/myapp.php?foo=1&bar=2", formType, vecForm, "0ZXoZLH/DfblKGATFgpif+LLRf4="},
		// The signature over the URL with :443 is valid for the URL
		// without it, and the other way round.
		{"FormSignedWith443", vecURL, formType, vecForm, "kvajT1Ptam85bY51eRf/AJRuM3w="},
		{"FormSignedWithout443", "https://mycompany.com:443/myapp.php?foo=1&bar=2", formType, vecForm, "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{"JSON", vecURL + "&bodySHA256=" + vecJSONHash, "application/json", vecJSON, "a9nBmqA0ju/hNViExpshrM61xv4="},
	}
	rv := client.NewRequestValidator(vecToken)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := twilio.ValidateRequest([]string{vecToken}, tt.url, tt.contentType, []byte(tt.body), tt.sig); err != nil {
				t.Errorf("ValidateRequest: %v", err)
			}
			if !rv.ValidateBody(tt.url, []byte(tt.body), tt.sig) {
				t.Errorf("twilio-go refuses the vector")
			}
			// Rotation: the signing token may be either of two.
			if err := twilio.ValidateRequest([]string{"other", vecToken}, tt.url, tt.contentType, []byte(tt.body), tt.sig); err != nil {
				t.Errorf("ValidateRequest with the token second: %v", err)
			}
			tampered := strings.Replace(tt.body, "1234", "1235", 1)
			tampered = strings.Replace(tampered, "true", "false", 1)
			if err := twilio.ValidateRequest([]string{vecToken}, tt.url, tt.contentType, []byte(tampered), tt.sig); err == nil {
				t.Errorf("ValidateRequest accepts a tampered body")
			}
			if err := twilio.ValidateRequest([]string{"54321"}, tt.url, tt.contentType, []byte(tt.body), tt.sig); !errors.Is(err, twilio.ErrBadSignature) {
				t.Errorf("ValidateRequest with the wrong token: %v, want ErrBadSignature", err)
			}
		})
	}
}

// checkSigned fails unless r carries a signature by acctToken for signedURL
// (the URL Twilio requested, which behind a tunnel is not the one the app
// saw), valid for both twilio-go's validator and ours, and invalid for
// another token.
func checkSigned(t *testing.T, r request, signedURL string) {
	t.Helper()
	sig := r.Signature()
	if sig == "" {
		t.Fatalf("%s %s: no X-Twilio-Signature", r.Method, r.URL)
	}
	rv := client.NewRequestValidator(acctToken)
	var ok bool
	if r.Method == http.MethodGet {
		ok = rv.Validate(signedURL, map[string]string{}, sig)
	} else {
		ok = rv.ValidateBody(signedURL, r.Body, sig)
	}
	if !ok {
		t.Errorf("%s %s: twilio-go's validator refuses signature %s", r.Method, signedURL, sig)
	}
	ct := r.Header.Get("Content-Type")
	if err := twilio.ValidateRequest([]string{acctToken}, signedURL, ct, r.Body, sig); err != nil {
		t.Errorf("%s %s: ValidateRequest: %v", r.Method, signedURL, err)
	}
	if err := twilio.ValidateRequest([]string{otherTok}, signedURL, ct, r.Body, sig); err == nil {
		t.Errorf("%s %s: signature valid for another account's token too", r.Method, signedURL)
	}
	// The account's first token signs, not the second.
	if err := twilio.ValidateRequest([]string{oldToken}, signedURL, ct, r.Body, sig); err == nil {
		t.Errorf("%s %s: signed with the second token, want the first", r.Method, signedURL)
	}
}

// TestWebhookSignatures: every kind of request the simulator sends is
// signed as Twilio signs it.
func TestWebhookSignatures(t *testing.T) {
	t.Parallel()
	a := newApp(func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.URL.Path {
		case "/sms", "/voice":
			w.Header().Set("Content-Type", "text/xml")
			_, _ = w.Write([]byte("<Response/>"))
		case "/broken":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	srv := startApp(t, a)

	cfg := testConfig()
	cfg.Carriers = []Carrier{{Latency: Latency{Median: time.Millisecond}}}
	cfg.Tunnels = map[string]string{"https://hooks.example.test": srv.URL}
	fast := numberOf(t, &cfg, fastNumber)
	fast.SMSURL = srv.URL + "/sms?kind=sms&q=It%27s"
	fast.VoiceURL = srv.URL + "/voice"
	get := numberOf(t, &cfg, longCode)
	get.SMSURL, get.SMSMethod = srv.URL+"/sms-get?x=1", "GET"
	fb := numberOf(t, &cfg, tollFree)
	fb.SMSURL, fb.SMSFallbackURL = srv.URL+"/broken", srv.URL+"/fallback"
	tunneled := numberOf(t, &cfg, shortCode)
	tunneled.SMSURL = "https://hooks.example.test/sms?via=tunnel"
	s := newSim(t, cfg)
	ctx := withTimeout(t)

	t.Run("InboundMessagePOST", func(t *testing.T) {
		res, err := s.ReceiveMessage(ctx, InboundMessage{From: handset, To: fastNumber, Body: "It's a test & more"})
		if err != nil || !res.Webhook.Accepted() {
			t.Fatalf("ReceiveMessage: %+v, %v", res, err)
		}
		r := lastTo(t, a, "/sms")
		if r.Header.Get("Content-Type") != formType || r.Form.Get("Body") != "It's a test & more" {
			t.Errorf("request %+v: want a form with the body", r)
		}
		if r.URL != srv.URL+"/sms?kind=sms&q=It%27s" {
			t.Errorf("requested %s: the query must stay as configured", r.URL)
		}
		checkSigned(t, r, r.URL)
	})
	t.Run("InboundMessageGET", func(t *testing.T) {
		if _, err := s.ReceiveMessage(ctx, InboundMessage{From: handset, To: longCode, Body: "get me"}); err != nil {
			t.Fatal(err)
		}
		r := lastTo(t, a, "/sms-get")
		if r.Method != http.MethodGet || len(r.Body) != 0 || r.Form.Get("x") != "1" || r.Form.Get("Body") != "get me" {
			t.Errorf("request %s %s: want a GET with the parameters in the query", r.Method, r.URL)
		}
		checkSigned(t, r, r.URL)
	})
	t.Run("InboundCall", func(t *testing.T) {
		if _, err := s.ReceiveCall(ctx, InboundCall{From: handset, To: fastNumber}); err != nil {
			t.Fatal(err)
		}
		checkSigned(t, lastTo(t, a, "/voice"), srv.URL+"/voice")
	})
	t.Run("Fallback", func(t *testing.T) {
		if _, err := s.ReceiveMessage(ctx, InboundMessage{From: handset, To: tollFree, Body: "fall back"}); err != nil {
			t.Fatal(err)
		}
		checkSigned(t, lastTo(t, a, "/broken"), srv.URL+"/broken")
		r := lastTo(t, a, "/fallback")
		if r.Form.Get("ErrorCode") != "11200" {
			t.Errorf("fallback ErrorCode %q, want 11200", r.Form.Get("ErrorCode"))
		}
		checkSigned(t, r, srv.URL+"/fallback")
	})
	t.Run("ClientNotification", func(t *testing.T) {
		res, err := s.NotifyClient(ctx, ClientNotification{AccountSID: acctSID, URL: srv.URL + "/notify?app=1", From: handset, To: "client:alice", Params: map[string]string{"k": "v w"}})
		if err != nil || res.Webhook.Error != nil {
			t.Fatalf("NotifyClient: %+v, %v", res, err)
		}
		r := lastTo(t, a, "/notify")
		u, _ := url.Parse(r.URL)
		if r.Header.Get("Content-Type") != "application/json" || u.Query().Get("app") != "1" || len(u.Query().Get("bodySHA256")) != 64 {
			t.Errorf("request %s (%s): want JSON with bodySHA256 added to the query", r.URL, r.Header.Get("Content-Type"))
		}
		checkSigned(t, r, r.URL)
		// The hash ties the body to the signature.
		r.Body = append(r.Body[:len(r.Body)-1:len(r.Body)-1], ' ', '}')
		if rv := client.NewRequestValidator(acctToken); rv.ValidateBody(r.URL, r.Body, r.Signature()) {
			t.Errorf("twilio-go accepts a changed body")
		}
		if err := twilio.ValidateRequest([]string{acctToken}, r.URL, "application/json", r.Body, r.Signature()); !errors.Is(err, twilio.ErrBodyHashMismatch) {
			t.Errorf("ValidateRequest of a changed body: %v, want ErrBodyHashMismatch", err)
		}
	})
	t.Run("Tunnel", func(t *testing.T) {
		if _, err := s.ReceiveMessage(ctx, InboundMessage{From: handset, To: shortCode, Body: "through the tunnel"}); err != nil {
			t.Fatal(err)
		}
		r := lastTo(t, a, "/sms")
		if r.URL != srv.URL+"/sms?via=tunnel" {
			t.Fatalf("requested %s, want the tunnel's end", r.URL)
		}
		checkSigned(t, r, "https://hooks.example.test/sms?via=tunnel")
		if err := twilio.ValidateRequest([]string{acctToken}, r.URL, formType, r.Body, r.Signature()); err == nil {
			t.Errorf("signature valid for the local URL: want it signed for the public one")
		}
	})
	t.Run("StatusCallbacks", func(t *testing.T) {
		m, err := s.CreateMessage(acctSID, SendParams{From: fastNumber, To: handset, Body: "track me", StatusCallback: srv.URL + "/status?tag=a%2Fb"})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{StatusSending, StatusSent, StatusDelivered}
		got := waitCallbacks(t, a, "/status", len(want))
		for i, r := range got {
			if r.Form.Get("MessageSid") != m.SID {
				t.Errorf("callback %d for %s, want %s", i, r.Form.Get("MessageSid"), m.SID)
			}
			checkSigned(t, r, srv.URL+"/status?tag=a%2Fb")
		}
	})
}

// lastTo returns the last request the app got for path.
func lastTo(t *testing.T, a *app, path string) request {
	t.Helper()
	reqs := a.requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if u, _ := url.Parse(reqs[i].URL); u.Path == path {
			return reqs[i]
		}
	}
	t.Fatalf("no request for %s among %d", path, len(reqs))
	return request{}
}

// waitCallbacks waits for n requests for path, in real time, bounded by
// the test's context.
func waitCallbacks(t *testing.T, a *app, path string, n int) []request {
	t.Helper()
	ctx := withTimeout(t)
	for {
		changed := a.changed() // before reading, so that no request is missed
		var got []request
		for _, r := range a.requests() {
			if u, _ := url.Parse(r.URL); u.Path == path {
				got = append(got, r)
			}
		}
		if len(got) >= n {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d requests for %s, want %d", len(got), path, n)
		case <-changed:
		}
	}
}
