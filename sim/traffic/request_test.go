package traffic

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard/twilio"
)

// TestRequest checks each kind's request as it leaves the generator: its
// headers, and a signature that verifies for the public URL the receiver
// reconstructs from the path and query it is sent to.
func TestRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind        string
		contentType string
		bodyHash    bool // whether bodySHA256 is added to the URL
	}{
		{KindSMS, "application/x-www-form-urlencoded", false},
		{KindStatus, "application/x-www-form-urlencoded", false},
		{KindVoice, "application/x-www-form-urlencoded; charset=UTF-8", false},
		{KindClientNotification, "application/json", true},
	}
	const public = "https://hooks.example.com"
	for _, tt := range tests {
		for _, path := range []string{"/hook", "/hook?tenant=a%27b", "/hook?"} {
			t.Run(tt.kind+path, func(t *testing.T) {
				t.Parallel()
				opts := Options{
					Target:    "http://127.0.0.1:1" + path,
					SignedURL: public + path,
					AuthToken: testToken,
					Kind:      tt.kind,
					Duration:  time.Second,
				}
				if err := opts.Validate(); err != nil {
					t.Fatal(err)
				}
				m, err := newRequestMaker(&opts)
				if err != nil {
					t.Fatal(err)
				}
				seen := make(map[string]bool)
				for n := range 3 {
					req, err := m.request(t.Context(), n)
					if err != nil {
						t.Fatal(err)
					}
					body, err := io.ReadAll(req.Body)
					if err != nil {
						t.Fatal(err)
					}
					for name, want := range map[string]string{
						"Content-Type":  tt.contentType,
						"User-Agent":    "TwilioProxy/1.1",
						"X-Home-Region": "us1",
					} {
						if got := req.Header.Get(name); got != want {
							t.Errorf("%s: %q; want %q", name, got, want)
						}
					}
					token := req.Header.Get("I-Twilio-Idempotency-Token")
					if _, err := uuid.Parse(token); err != nil || seen[token] {
						t.Errorf("idempotency token %q: not a fresh UUID (%v)", token, err)
					}
					seen[token] = true

					requested := req.URL.RequestURI()
					if hashed := strings.Contains(requested, "bodySHA256="); hashed != tt.bodyHash {
						t.Errorf("requested %s; want bodySHA256 in the query: %v", requested, tt.bodyHash)
					}
					if !strings.HasPrefix(requested, strings.TrimSuffix(path, "?")) {
						t.Errorf("requested %s; want it to extend %s", requested, path)
					}
					// The same as twilio.SignRequest, however computed.
					signedURL, sig, err := twilio.SignRequest(testToken, opts.SignedURL, tt.contentType, body)
					if err != nil {
						t.Fatal(err)
					}
					if got := req.Header.Get("X-Twilio-Signature"); got != sig {
						t.Errorf("signature %q; twilio.SignRequest gives %q", got, sig)
					}
					fullURL := public + requested
					if fullURL != signedURL {
						t.Errorf("requested %s; twilio.SignRequest signed %s", fullURL, signedURL)
					}
					if err := twilio.ValidateRequest([]string{testToken}, fullURL, tt.contentType, body, req.Header.Get("X-Twilio-Signature")); err != nil {
						t.Errorf("request %d to %s: %v", n, fullURL, err)
					}
					if err := twilio.ValidateRequest([]string{"other"}, fullURL, tt.contentType, body, req.Header.Get("X-Twilio-Signature")); err == nil {
						t.Errorf("request %d: signature verifies with another token", n)
					}
				}
			})
		}
	}
}

func TestRequestURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		target, signed, signedURL string
		want                      string
	}{
		{"http://127.0.0.1/cn", "https://h.example/cn", "https://h.example/cn", "http://127.0.0.1/cn"},
		{"http://127.0.0.1/cn", "https://h.example/cn", "https://h.example/cn?bodySHA256=ab", "http://127.0.0.1/cn?bodySHA256=ab"},
		{"http://127.0.0.1/cn?a=1", "https://h.example/cn?a=1", "https://h.example/cn?a=1&bodySHA256=ab", "http://127.0.0.1/cn?a=1&bodySHA256=ab"},
		{"http://127.0.0.1/cn?", "https://h.example/cn?", "https://h.example/cn?bodySHA256=ab", "http://127.0.0.1/cn?bodySHA256=ab"},
		// A public URL with a path prefix the proxy strips.
		{"http://127.0.0.1/cn", "https://h.example/app/cn", "https://h.example/app/cn?bodySHA256=ab", "http://127.0.0.1/cn?bodySHA256=ab"},
	}
	for _, tt := range tests {
		m := &requestMaker{target: tt.target, signedURL: tt.signed}
		got, err := m.requestURL(tt.signedURL)
		if err != nil || got != tt.want {
			t.Errorf("requestURL(%s) for target %s = %q, %v; want %q", tt.signedURL, tt.target, got, err, tt.want)
		}
	}
	m := &requestMaker{target: "http://127.0.0.1/cn", signedURL: "https://h.example/cn"}
	if _, err := m.requestURL("https://other.example/cn"); err == nil {
		t.Error("requestURL of an unrelated URL succeeded; want an error")
	}
}
