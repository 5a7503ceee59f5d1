package web_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/metrics/metricstest"
	"github.com/switchboard-dev/switchboard/web"
)

// received is a request as a provider got it.
type received struct {
	method     string
	requestURI string // path and query exactly as sent
	header     http.Header
	body       []byte
	bodyErr    error // the body broke off
}

// recordingProvider is a real HTTP server standing for a provider: it
// records every request and answers with answer (by default 201 with a
// fixed JSON body and headers of its own).
type recordingProvider struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(w http.ResponseWriter, r *http.Request, body []byte)
}

const providerAnswer = `{"sid": "CA0123456789abcdef0123456789abcdef", "status": "queued"}`

func newRecordingProvider(t testing.TB) *recordingProvider {
	t.Helper()
	p := &recordingProvider{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		p.mu.Lock()
		p.got = append(p.got, received{method: r.Method, requestURI: r.RequestURI, header: r.Header.Clone(), body: b, bodyErr: err})
		answer := p.answer
		p.mu.Unlock()
		if answer != nil {
			answer(w, r, b)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Twilio-Request-Id", "RQ0123456789abcdef0123456789abcdef")
		w.Header().Add("X-Provider", "one")
		w.Header().Add("X-Provider", "two")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(providerAnswer))
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *recordingProvider) requests() []received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]received(nil), p.got...)
}

// base is the provider's base URL with a path of its own, which the
// forwarded paths follow.
func (p *recordingProvider) base(t testing.TB) *url.URL {
	t.Helper()
	u, err := url.Parse(p.srv.URL + "/base")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// newPassThroughFixture serves the Twilio-compatible API for outAccount
// and otherAccount (see newKeyFixture), outAccount's requests passed
// through to prov; otherAccount has no provider.
func newPassThroughFixture(t testing.TB, prov *recordingProvider, pt web.PassThrough, logger *slog.Logger) *fixture {
	t.Helper()
	pt.Providers = append([]web.PassThroughProvider{{Account: outAccount, BaseURL: prov.base(t)}}, pt.Providers...)
	return newFixtureWith(t, token, logger, web.WithOutbound(testPools), web.WithTwilioAccounts([]web.TwilioAccount{
		{SID: outAccount, Tokens: []string{outToken, outToken2}, APIKeys: []web.TwilioAPIKey{
			{SID: outKey, Secret: outKeySecret}, {SID: outKey2, Secret: outKey2Secret},
		}},
		{SID: otherAccount, Tokens: []string{otherToken}, APIKeys: []web.TwilioAPIKey{{SID: otherKey, Secret: otherSecret}}},
	}), web.WithPassThrough(pt))
}

// raw sends a request with the given target (path and query as written
// on the wire), Basic auth (user "" for none), headers and body.
func (f *fixture) raw(t *testing.T, method, target, user, pass string, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+"/", body)
	if err != nil {
		t.Fatal(err)
	}
	// Opaque keeps the path exactly as written, escapes and all.
	req.URL.Opaque = "//" + req.URL.Host + target
	for k, v := range header {
		req.Header[k] = v
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestPassThroughForwardsUnchanged: what Switchboard does not serve
// reaches the account's provider with its method, path, query, headers,
// Authorization and body as sent, and the provider's answer comes back
// as it gave it.
func TestPassThroughForwardsUnchanged(t *testing.T) {
	t.Parallel()
	prov := newRecordingProvider(t)
	f := newPassThroughFixture(t, prov, web.PassThrough{}, nil)
	acct := "/2010-04-01/Accounts/" + outAccount
	callBody := "To=%2B15557770001&From=%2B15550001001&Url=https%3A%2F%2Fapp.example.com%2Fvoice&Twiml=%3CResponse%2F%3E"
	tests := []struct {
		name, method, target, user, pass string
		body                             string
		want                             string // the provider's request URI; "" for /base+target
	}{
		{"create a call", "POST", acct + "/Calls.json", outAccount, outToken, callBody, ""},
		{"the secondary token", "POST", acct + "/Calls.json", outAccount, outToken2, callBody, ""},
		{"an API key", "POST", acct + "/Calls.json", outKey, outKeySecret, callBody, ""},
		{"the account", "GET", acct + ".json", outAccount, outToken, "", ""},
		{"a list with a query", "GET", acct + "/IncomingPhoneNumbers.json?PhoneNumber=%2B15550001001&PageSize=20", outAccount, outToken, "", ""},
		{"a delete", "DELETE", acct + "/IncomingPhoneNumbers/PN0123456789abcdef0123456789abcdef.json", outKey2, outKey2Secret, "", ""},
		{"a message's media", "GET", acct + "/Messages/SM0123456789abcdef0123456789abcdef/Media.json", outAccount, outToken, "", ""},
		{"a media file", "GET", acct + "/Messages/SM0123456789abcdef0123456789abcdef/Media/ME0123456789abcdef0123456789abcdef", outAccount, outToken, "", ""},
		{"a method Switchboard does not serve", "PUT", acct + "/Messages.json", outAccount, outToken, "x=1", ""},
		{"a path without an account", "GET", "/2010-04-01/Accounts.json?FriendlyName=x", outAccount, outToken, "", ""},
		{"another product", "GET", "/lookups.twilio.com/v2/PhoneNumbers/+15557770001?Fields=line_type_intelligence", outKey, outKeySecret, "",
			"/base/v2/PhoneNumbers/+15557770001?Fields=line_type_intelligence"},
		{"another product, a POST", "POST", "/verify.twilio.com/v2/Services/VA0123456789abcdef0123456789abcdef/Verifications", outAccount, outToken,
			"To=%2B15557770001&Channel=sms", "/base/v2/Services/VA0123456789abcdef0123456789abcdef/Verifications"},
		{"a host in capitals", "GET", "/Lookups.Twilio.com/v2/PhoneNumbers/+15557770001", outAccount, outToken, "", "/base/v2/PhoneNumbers/+15557770001"},
		{"api.twilio.com named", "POST", "/api.twilio.com" + acct + "/Calls.json", outAccount, outToken, callBody, "/base" + acct + "/Calls.json"},
		{"escapes kept", "GET", "/lookups.twilio.com/v2/PhoneNumbers/%2B1%20555?x=%26y", outAccount, outToken, "", "/base/v2/PhoneNumbers/%2B1%20555?x=%26y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(prov.requests())
			header := http.Header{
				"User-Agent":                 {"twilio-go/1.0 (test)"},
				"Accept":                     {"application/json"},
				"I-Twilio-Idempotency-Token": {"tok-" + tt.name},
				"X-Custom":                   {"a", "b"},
				"Connection":                 {"X-Hop"},
				"X-Hop":                      {"dropped: named by Connection"},
				"X-Forwarded-For":            {"203.0.113.9"},
			}
			var body io.Reader
			if tt.body != "" {
				header.Set("Content-Type", "application/x-www-form-urlencoded")
				body = strings.NewReader(tt.body)
			}
			resp, got := f.raw(t, tt.method, tt.target, tt.user, tt.pass, header, body)
			if resp.StatusCode != http.StatusCreated || string(got) != providerAnswer {
				t.Fatalf("answer = %d %s, want the provider's", resp.StatusCode, got)
			}
			if resp.Header.Get("Twilio-Request-Id") != "RQ0123456789abcdef0123456789abcdef" ||
				strings.Join(resp.Header.Values("X-Provider"), ",") != "one,two" || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("answer's headers = %v", resp.Header)
			}
			reqs := prov.requests()
			if len(reqs) != before+1 {
				t.Fatalf("the provider got %d requests, want 1", len(reqs)-before)
			}
			r := reqs[before]
			want := tt.want
			if want == "" {
				want = "/base" + tt.target
			}
			if r.method != tt.method || r.requestURI != want || string(r.body) != tt.body {
				t.Errorf("provider got %s %s %q, want %s %s %q", r.method, r.requestURI, r.body, tt.method, want, tt.body)
			}
			if a := r.header.Values("Authorization"); len(a) != 1 || a[0] != basic(tt.user, tt.pass) {
				t.Errorf("provider got Authorization %q, want the client's", a)
			}
			for _, k := range []string{"User-Agent", "Accept", "I-Twilio-Idempotency-Token", "X-Custom", "Content-Type"} {
				if g, w := r.header.Values(k), header.Values(k); strings.Join(g, "|") != strings.Join(w, "|") {
					t.Errorf("provider got %s %q, want %q", k, g, w)
				}
			}
			for _, k := range []string{"X-Hop", "X-Forwarded-For", "Forwarded"} {
				if v := r.header.Values(k); v != nil {
					t.Errorf("provider got %s %q: hop-by-hop or forwarding headers are not passed on", k, v)
				}
			}
		})
	}
}

// TestPassThroughKeepsOwnEndpoints: Switchboard's own endpoints answer
// what they serve, with or without the api.twilio.com prefix; the
// provider sees none of it.
func TestPassThroughKeepsOwnEndpoints(t *testing.T) {
	t.Parallel()
	prov := newRecordingProvider(t)
	f := newPassThroughFixture(t, prov, web.PassThrough{}, nil)
	msg := form("To", "+15557770001", "MessagingServiceSid", serviceSID, "Body", "own endpoint")
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for _, prefix := range []string{"", "/api.twilio.com", "/API.twilio.com"} {
		messages := prefix + "/2010-04-01/Accounts/" + outAccount + "/Messages"
		resp, body := f.raw(t, "POST", messages+".json", outAccount, outToken, hdr, strings.NewReader(msg.Encode()))
		m := decodeTwilioMessage(t, resp, body, http.StatusCreated)
		resp, body = f.raw(t, "GET", messages+"/"+m.SID+".json", outKey, outKeySecret, nil, nil)
		if got := decodeTwilioMessage(t, resp, body, http.StatusOK); got.SID != m.SID {
			t.Errorf("%s: fetched %s, want %s", prefix, got.SID, m.SID)
		}
		// The prefix is no way around authentication.
		resp, body = f.raw(t, "POST", messages+".json", outAccount, "wrong", hdr, strings.NewReader(msg.Encode()))
		checkTwilioError(t, resp, body, http.StatusUnauthorized, 20003)
	}
	if n := len(prov.requests()); n != 0 {
		t.Errorf("the provider got %d requests, want none", n)
	}
}

// TestPassThroughRefuses: without the right credentials, for another
// account's path, for a host outside twilio.com, a path that could mean
// two things, or a body over the cap, nothing reaches a provider.
func TestPassThroughRefuses(t *testing.T) {
	t.Parallel()
	prov := newRecordingProvider(t)
	f := newPassThroughFixture(t, prov, web.PassThrough{MaxBodyBytes: 1000}, nil)
	provHost := strings.TrimPrefix(prov.srv.URL, "http://")
	calls := "/2010-04-01/Accounts/" + outAccount + "/Calls.json"
	otherCalls := "/2010-04-01/Accounts/" + otherAccount + "/Calls.json"
	tests := []struct {
		name, method, target, user, pass string
		header                           http.Header
		body                             string
		status, code                     int
	}{
		{"no credentials", "GET", calls, "", "", nil, "", 401, 20003},
		{"a wrong token", "GET", calls, outAccount, "wrong", nil, "", 401, 20003},
		{"another account's token", "GET", calls, outAccount, otherToken, nil, "", 401, 20003},
		{"a key with a wrong secret", "GET", calls, outKey, "wrong", nil, "", 401, 20003},
		{"another product without credentials", "GET", "/lookups.twilio.com/v2/PhoneNumbers/+15557770001", "", "", nil, "", 401, 20003},
		{"a key of one account for another's path", "GET", otherCalls, outKey, outKeySecret, nil, "", 401, 20003},
		{"a token of one account for another's path", "POST", otherCalls, outAccount, outToken, nil, "To=x", 401, 20003},
		{"another account's path, lower case", "GET", "/2010-04-01/accounts/" + otherAccount + "/Calls.json", outAccount, outToken, nil, "", 401, 20003},
		{"another account's resource", "GET", "/2010-04-01/Accounts/" + otherAccount + ".json", outAccount, outToken, nil, "", 401, 20003},
		{"an account without a provider", "GET", otherCalls, otherKey, otherSecret, nil, "", 404, 20404},
		{"a host outside twilio.com", "GET", "/evil.example.com/v1/x", outAccount, outToken, nil, "", 404, 20404},
		{"the provider's own address as a host", "GET", "/" + provHost + "/v1/x", outAccount, outToken, nil, "", 404, 20404},
		{"twilio.com itself", "GET", "/twilio.com/v1/x", outAccount, outToken, nil, "", 404, 20404},
		{"twilio.com inside another name", "GET", "/x.twilio.com.evil.example.com/v1/x", outAccount, outToken, nil, "", 404, 20404},
		{"an encoded host", "GET", "/evil.example.com%2f.twilio.com/v1/x", outAccount, outToken, nil, "", 404, 20404},
		{"an escaped host", "GET", "/lookups%2etwilio.com/v1/x", outAccount, outToken, nil, "", 404, 20404},
		{"a user in the host", "GET", "/evil.example.com@lookups.twilio.com/v1/x", outAccount, outToken, nil, "", 404, 20404},
		{"a port in the host", "GET", "/lookups.twilio.com:8443/v1/x", outAccount, outToken, nil, "", 404, 20404},
		{"an encoded slash in the account", "GET", "/2010-04-01/Accounts/" + otherAccount + "%2F..%2F" + outAccount + "/Calls.json", outAccount, outToken, nil, "", 404, 20404},
		{"a backslash", "GET", `/2010-04-01/Accounts/` + outAccount + `/Calls\x.json`, outAccount, outToken, nil, "", 404, 20404},
		{"api.twilio.com named twice, another account's path", "GET", "/api.twilio.com/api.twilio.com" + otherCalls, outAccount, outToken, nil, "", 404, 20404},
		{"a host prefix after another", "GET", "/lookups.twilio.com/api.twilio.com" + otherCalls, outAccount, outToken, nil, "", 404, 20404},
		{"a host prefix after another, in capitals", "GET", "/API.twilio.com/Api.Twilio.Com" + otherCalls, outAccount, outToken, nil, "", 404, 20404},
		{"a host with a trailing dot", "GET", "/lookups.twilio.com./v1/x", outAccount, outToken, nil, "", 404, 20404},
		{"an IP literal", "GET", "/127.0.0.1/v1/x", outAccount, outToken, nil, "", 404, 20404},
		{"an IPv6 literal", "GET", "/[::1]/v1/x", outAccount, outToken, nil, "", 404, 20404},
		{"a fragment before twilio.com", "GET", "/evil.example.com%23.twilio.com/v1/x", outAccount, outToken, nil, "", 404, 20404},
		{"an escaped dot in twilio.com", "GET", "/lookups.twilio%2ecom/v1/x", outAccount, outToken, nil, "", 404, 20404},
		{"a Unicode host", "GET", "/lookups.twilio.c%C3%B6m/v1/x", outAccount, outToken, nil, "", 404, 20404},
		{"another account's path after an escaped dot segment", "GET", "/2010-04-01/Accounts/" + outAccount + "/%2e%2e/" + otherAccount + "/Calls.json", outAccount, outToken, nil, "", 404, 20404},
		{"another account's path, escaped", "GET", "/2010-04-01/%41ccounts/%41" + otherAccount[1:] + "/Calls.json", outAccount, outToken, nil, "", 401, 20003},
		{"another account's path, upper case", "GET", "/2010-04-01/ACCOUNTS/" + otherAccount + "/Calls.json", outAccount, outToken, nil, "", 401, 20003},
		{"another account's path with a trailing slash", "GET", otherCalls + "/", outAccount, outToken, nil, "", 401, 20003},
		{"another account's path, api.twilio.com in capitals", "GET", "/API.TWILIO.COM" + otherCalls, outAccount, outToken, nil, "", 401, 20003},
		{"another account's path in the 2008 API", "GET", "/api.twilio.com/2008-08-01/Accounts/" + otherAccount + "/SMS/Messages.json", outAccount, outToken, nil, "", 401, 20003},
		{"two credentials, the second another account's", "GET", calls, "", "",
			http.Header{"Authorization": {basic(outAccount, outToken), basic(otherAccount, otherToken)}}, "", 401, 20003},
		{"a body over the cap", "POST", calls, outAccount, outToken, nil, strings.Repeat("x", 1001), 413, 20413},
		{"a connection upgrade", "GET", calls, outAccount, outToken, http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, "", 400, 20001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			resp, got := f.raw(t, tt.method, tt.target, tt.user, tt.pass, tt.header, body)
			checkTwilioError(t, resp, got, tt.status, tt.code)
		})
	}
	if n := len(prov.requests()); n != 0 {
		t.Errorf("the provider got %d requests, want none: %+v", n, prov.requests())
	}
}

// TestPassThroughWithoutIt: with no pass-through configured, what
// Switchboard does not serve is 404 (20404) once authenticated, 401
// before.
func TestPassThroughWithoutIt(t *testing.T) {
	t.Parallel()
	f := newKeyFixture(t)
	calls := "/2010-04-01/Accounts/" + outAccount + "/Calls.json"
	resp, body := f.raw(t, "GET", calls, outKey, outKeySecret, nil, nil)
	checkTwilioError(t, resp, body, http.StatusNotFound, 20404)
	resp, body = f.raw(t, "GET", "/lookups.twilio.com/v2/PhoneNumbers/+15557770001", outAccount, outToken, nil, nil)
	checkTwilioError(t, resp, body, http.StatusNotFound, 20404)
	resp, body = f.raw(t, "GET", calls, "", "", nil, nil)
	checkTwilioError(t, resp, body, http.StatusUnauthorized, 20003)
}

// fakeTwilio answers every request itself, recording the URL it was
// sent to: the provider is Twilio, whose hosts a test does not dial.
type fakeTwilio struct {
	mu   sync.Mutex
	urls []string
}

func (f *fakeTwilio) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	f.mu.Lock()
	f.urls = append(f.urls, r.URL.String())
	f.mu.Unlock()
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
}

// TestPassThroughToTwilio: when the provider is Twilio, a path prefixed
// with another of Twilio's hosts goes to that host, over HTTPS, and the
// REST API's paths to the provider's base URL.
func TestPassThroughToTwilio(t *testing.T) {
	t.Parallel()
	tw := &fakeTwilio{}
	for _, base := range []string{"https://api.twilio.com", "https://api.dublin.ie1.twilio.com"} {
		t.Run(base, func(t *testing.T) {
			u, _ := url.Parse(base)
			f := newFixtureWith(t, token, nil, web.WithTwilioAccounts([]web.TwilioAccount{{SID: outAccount, Tokens: []string{outToken}}}),
				web.WithPassThrough(web.PassThrough{Providers: []web.PassThroughProvider{{Account: outAccount, BaseURL: u, Transport: tw}}}))
			tests := []struct{ target, want string }{
				{"/2010-04-01/Accounts/" + outAccount + "/Calls.json?x=1", base + "/2010-04-01/Accounts/" + outAccount + "/Calls.json?x=1"},
				{"/lookups.twilio.com/v2/PhoneNumbers/+15557770001?Fields=x", "https://lookups.twilio.com/v2/PhoneNumbers/+15557770001?Fields=x"},
				{"/Verify.Twilio.com/v2/Services", "https://verify.twilio.com/v2/Services"},
				{"/messaging.twilio.com/v1/Services/MG0123456789abcdef0123456789abcdef", "https://messaging.twilio.com/v1/Services/MG0123456789abcdef0123456789abcdef"},
				{"/api.twilio.com/2010-04-01/Accounts/" + outAccount + ".json", base + "/2010-04-01/Accounts/" + outAccount + ".json"},
				{"/monitor.twilio.com/", "https://monitor.twilio.com/"},
			}
			for _, tt := range tests {
				tw.mu.Lock()
				tw.urls = nil
				tw.mu.Unlock()
				resp, body := f.raw(t, "GET", tt.target, outAccount, outToken, nil, nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: %d %s", tt.target, resp.StatusCode, body)
				}
				tw.mu.Lock()
				if len(tw.urls) != 1 || tw.urls[0] != tt.want {
					t.Errorf("%s went to %v, want %s", tt.target, tw.urls, tt.want)
				}
				tw.mu.Unlock()
			}
		})
	}
}

// TestPassThroughStreamsTheRequest: the provider reads the first part of
// a body before the client has sent the rest, so the body is not held
// whole in memory; it arrives byte for byte.
func TestPassThroughStreamsTheRequest(t *testing.T) {
	t.Parallel()
	prov := newRecordingProvider(t)
	firstPart := make(chan struct{})
	f := newPassThroughFixture(t, prov, web.PassThrough{}, nil)
	prov.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1000)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		close(firstPart)
		h := sha256.New()
		h.Write(buf)
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %x", n+1000, h.Sum(nil))
	})
	pr, pw := io.Pipe()
	sum := sha256.New()
	go func() {
		part := bytes.Repeat([]byte("a"), 1000)
		sum.Write(part)
		if _, err := pw.Write(part); err != nil {
			pw.CloseWithError(err)
			return
		}
		// The rest is sent only once the provider has the first part:
		// were the body buffered, this would wait forever.
		select {
		case <-firstPart:
		case <-time.After(time.Minute):
			pw.CloseWithError(errors.New("the provider got nothing before the body ended: buffered"))
			return
		}
		rest := bytes.Repeat([]byte("b"), 256<<10)
		sum.Write(rest)
		_, _ = pw.Write(rest)
		pw.Close()
	}()
	resp, body := f.raw(t, "POST", "/2010-04-01/Accounts/"+outAccount+"/Recordings.json", outAccount, outToken,
		http.Header{"Content-Type": {"application/octet-stream"}}, pr)
	if want := fmt.Sprintf("%d %x", 1000+256<<10, sum.Sum(nil)); resp.StatusCode != http.StatusOK || string(body) != want {
		t.Errorf("provider answered %d %q, want %q", resp.StatusCode, body, want)
	}
}

// TestPassThroughStreamsTheAnswer: the client reads the first part of the
// provider's answer before the provider has written the rest.
func TestPassThroughStreamsTheAnswer(t *testing.T) {
	t.Parallel()
	prov := newRecordingProvider(t)
	clientHasIt := make(chan struct{})
	prov.answer = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("first|"))
		w.(http.Flusher).Flush()
		select {
		case <-clientHasIt:
			_, _ = w.Write([]byte("rest"))
		case <-r.Context().Done():
		}
	}
	f := newPassThroughFixture(t, prov, web.PassThrough{}, nil)
	req, err := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+"/2010-04-01/Accounts/"+outAccount+"/Recordings/RE0123456789abcdef0123456789abcdef.wav", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(outAccount, outToken)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("first|"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first|" {
		t.Fatalf("first part: %q %v", first, err)
	}
	close(clientHasIt)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "rest" {
		t.Errorf("rest: %q %v", rest, err)
	}
}

// TestPassThroughCapsAStreamedBody: a body without a length is cut off
// at the cap, answered 413, and the provider never gets it whole.
func TestPassThroughCapsAStreamedBody(t *testing.T) {
	t.Parallel()
	prov := newRecordingProvider(t)
	f := newPassThroughFixture(t, prov, web.PassThrough{MaxBodyBytes: 64 << 10}, nil)
	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte("x"), 8<<10)
		for range 64 { // 512 KiB
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	resp, body := f.raw(t, "POST", "/2010-04-01/Accounts/"+outAccount+"/Calls.json", outAccount, outToken, nil, pr)
	pr.CloseWithError(errors.New("done"))
	checkTwilioError(t, resp, body, http.StatusRequestEntityTooLarge, 20413)
	for _, r := range prov.requests() {
		if r.bodyErr == nil || len(r.body) > 64<<10 {
			t.Errorf("the provider got %d bytes (err %v), want fewer than the cap and a broken body", len(r.body), r.bodyErr)
		}
	}
}

// TestPassThroughProviderFailures: a provider that cannot be reached is
// 502 (20502), one that does not answer in time 504 (20504), and past
// MaxInFlight requests at once the next is 429 (20429).
func TestPassThroughProviderFailures(t *testing.T) {
	t.Parallel()
	calls := "/2010-04-01/Accounts/" + outAccount + "/Calls.json"

	down := newRecordingProvider(t)
	f := newPassThroughFixture(t, down, web.PassThrough{}, nil)
	down.srv.Close()
	resp, body := f.raw(t, "GET", calls, outAccount, outToken, nil, nil)
	checkTwilioError(t, resp, body, http.StatusBadGateway, 20502)

	// slow answers when the request is given up on; entered says that a
	// request has reached it.
	slow := func() (*recordingProvider, chan struct{}) {
		p, entered := newRecordingProvider(t), make(chan struct{}, 10)
		p.answer = func(w http.ResponseWriter, r *http.Request, _ []byte) {
			entered <- struct{}{}
			<-r.Context().Done()
		}
		return p, entered
	}
	never, _ := slow()
	f = newPassThroughFixture(t, never, web.PassThrough{Timeout: 50 * time.Millisecond}, nil)
	resp, body = f.raw(t, "GET", calls, outAccount, outToken, nil, nil)
	checkTwilioError(t, resp, body, http.StatusGatewayTimeout, 20504)

	busy, entered := slow()
	f = newPassThroughFixture(t, busy, web.PassThrough{MaxInFlight: 1, Timeout: time.Hour}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+calls, nil)
		req.SetBasicAuth(outAccount, outToken)
		if resp, err := f.srv.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered // the first holds the only slot
	resp, body = f.raw(t, "GET", calls, outAccount, outToken, nil, nil)
	checkTwilioError(t, resp, body, http.StatusTooManyRequests, 20429)
	cancel()
	<-done
}

// TestPassThroughMetricsAndLogs: each request passed through is counted
// by method, path class and status class, and neither the metrics nor
// the logs hold a secret, a query value or a number from the path.
func TestPassThroughMetricsAndLogs(t *testing.T) {
	t.Parallel()
	prov := newRecordingProvider(t)
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := metrics.New()
	f := newPassThroughFixture(t, prov, web.PassThrough{Metrics: m}, logger)
	const number = "+15557770001"
	acct := "/2010-04-01/Accounts/" + outAccount
	f.raw(t, "POST", acct+"/Calls.json?secret-query-value=1", outAccount, outToken, nil, strings.NewReader("To=%2B15557770001"))
	f.raw(t, "GET", acct+"/Calls/CA0123456789abcdef0123456789abcdef.json", outKey, outKeySecret, nil, nil)
	f.raw(t, "GET", "/lookups.twilio.com/v2/PhoneNumbers/"+number+"?Fields=secret-query-value", outAccount, outToken, nil, nil)
	prov.srv.Close()
	f.raw(t, "DELETE", acct+"/Calls/CA0123456789abcdef0123456789abcdef.json", outAccount, outToken, nil, nil)

	tests := []struct {
		method, path, status string
	}{
		{"POST", "/2010-04-01/Accounts/{sid}/Calls", "2xx"},
		{"GET", "/2010-04-01/Accounts/{sid}/Calls/{sid}", "2xx"},
		{"GET", "/lookups.twilio.com/v2/PhoneNumbers/{id}", "2xx"},
		{"DELETE", "/2010-04-01/Accounts/{sid}/Calls/{sid}", "error"},
	}
	for _, tt := range tests {
		s := metricstest.Sample(t, m, "switchboard_passthrough_requests_total", "method", tt.method, "path", tt.path, "status", tt.status)
		if s.GetCounter().GetValue() != 1 {
			t.Errorf("%s %s %s counted %v, want 1", tt.method, tt.path, tt.status, s.GetCounter().GetValue())
		}
	}
	out := logs.String()
	if !strings.Contains(out, "pass-through failed") || !strings.Contains(out, "passed through") {
		t.Errorf("logs lack the pass-through lines:\n%s", out)
	}
	for _, secret := range []string{outToken, outKeySecret, base64.StdEncoding.EncodeToString([]byte(outAccount + ":" + outToken)),
		"secret-query-value", number, "15557770001", "CA0123456789abcdef0123456789abcdef"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs hold %q:\n%s", secret, out)
		}
	}
}

// TestPassThroughFirstProviderOfTheAccount: of several providers of one
// account, the first one configured gets its requests.
func TestPassThroughFirstProviderOfTheAccount(t *testing.T) {
	t.Parallel()
	first, second := newRecordingProvider(t), newRecordingProvider(t)
	f := newPassThroughFixture(t, first, web.PassThrough{Providers: []web.PassThroughProvider{{Account: outAccount, BaseURL: second.base(t)}}}, nil)
	resp, body := f.raw(t, "GET", "/2010-04-01/Accounts/"+outAccount+"/Calls.json", outAccount, outToken, nil, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if a, b := len(first.requests()), len(second.requests()); a != 1 || b != 0 {
		t.Errorf("providers got %d and %d requests, want 1 and 0", a, b)
	}
}

// TestPassThroughMessageSIDs: a message's subresources go to Twilio under
// Twilio's SID for it, never Switchboard's, which Twilio does not know; a
// message Switchboard does not hold (sent around it) is Twilio's to fetch,
// update or delete, its request passed through as it came; and a message
// of another account is never translated.
func TestPassThroughMessageSIDs(t *testing.T) {
	t.Parallel()
	prov := newRecordingProvider(t)
	f := newPassThroughFixture(t, prov, web.PassThrough{}, nil)
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	messages := "/2010-04-01/Accounts/" + outAccount + "/Messages"
	create := func() twilioMessage {
		msg := form("To", "+15557770001", "From", "+15550001001", "Body", "sub-resources")
		resp, body := f.raw(t, "POST", messages+".json", outAccount, outToken, hdr, strings.NewReader(msg.Encode()))
		return decodeTwilioMessage(t, resp, body, http.StatusCreated)
	}
	sent, unsent := create(), create()
	const twilioSID = "SMeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
	id, _ := switchboard.MessageIDOfSID(sent.SID)
	if err := f.store.RecordSend(t.Context(), switchboard.SendResult{MessageID: id, Attempts: 1, State: switchboard.MessageSent,
		From: "+15550001001", TwilioSID: twilioSID, TwilioStatus: "queued"}); err != nil {
		t.Fatal(err)
	}
	const elsewhere = "SMdddddddddddddddddddddddddddddddd" // sent around Switchboard
	for _, tc := range []struct {
		method, path, body string
		wantURI            string // "" for not passed through
	}{
		{"GET", messages + "/" + sent.SID + "/Media.json?PageSize=5", "", "/base" + messages + "/" + twilioSID + "/Media.json?PageSize=5"},
		{"DELETE", messages + "/" + sent.SID + "/Media/ME0123456789abcdef0123456789abcdef.json", "",
			"/base" + messages + "/" + twilioSID + "/Media/ME0123456789abcdef0123456789abcdef.json"},
		// Not sent: Twilio has no SID for it, and is asked as the app asked.
		{"GET", messages + "/" + unsent.SID + "/Media.json", "", "/base" + messages + "/" + unsent.SID + "/Media.json"},
		{"GET", messages + "/" + elsewhere + ".json", "", "/base" + messages + "/" + elsewhere + ".json"},
		{"POST", messages + "/" + elsewhere + ".json", "Body=", "/base" + messages + "/" + elsewhere + ".json"},
		{"DELETE", messages + "/" + elsewhere + ".json", "", "/base" + messages + "/" + elsewhere + ".json"},
		// Its own messages Switchboard answers itself.
		{"GET", messages + "/" + sent.SID + ".json", "", ""},
		{"GET", messages + "/" + twilioSID + ".json", "", ""},
	} {
		before := len(prov.requests())
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		resp, _ := f.raw(t, tc.method, tc.path, outAccount, outToken, hdr, body)
		got := prov.requests()[before:]
		switch {
		case tc.wantURI == "" && len(got) != 0:
			t.Errorf("%s %s reached the provider as %s; want it served by Switchboard", tc.method, tc.path, got[0].requestURI)
		case tc.wantURI == "" && resp.StatusCode != http.StatusOK:
			t.Errorf("%s %s = %d, want 200", tc.method, tc.path, resp.StatusCode)
		case tc.wantURI != "" && (len(got) != 1 || got[0].method != tc.method || got[0].requestURI != tc.wantURI || string(got[0].body) != tc.body):
			t.Errorf("%s %s: provider got %+v; want %s %s with body %q", tc.method, tc.path, got, tc.method, tc.wantURI, tc.body)
		}
	}

	// Another account's message, named on this account's path: its SID is
	// nobody's here, and goes to this account's provider untranslated.
	theirs := &switchboard.OutboundMessage{ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: "theirs", AccountSID: otherAccount,
		Pool: "theirs", Purpose: switchboard.PurposeTransactional, To: "+15557770001", Body: "theirs", PayloadHash: "theirs"}
	if _, err := f.store.CreateMessage(t.Context(), theirs); err != nil {
		t.Fatal(err)
	}
	if err := f.store.RecordSend(t.Context(), switchboard.SendResult{MessageID: theirs.ID, Attempts: 1, State: switchboard.MessageSent,
		TwilioSID: "SMcccccccccccccccccccccccccccccccc", TwilioStatus: "queued"}); err != nil {
		t.Fatal(err)
	}
	before := len(prov.requests())
	f.raw(t, "GET", messages+"/"+theirs.SID()+"/Media.json", outAccount, outToken, nil, nil)
	if got := prov.requests()[before:]; len(got) != 1 || !strings.Contains(got[0].requestURI, theirs.SID()) {
		t.Errorf("provider got %+v; want the path as sent", got)
	}
}

// rawExchange writes req, exactly as given, on a connection of its own
// to f and reads the answer; err is the reading's.
func (f *fixture) rawExchange(t *testing.T, req string) (*http.Response, []byte, error) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// TestPassThroughHopByHop: a request framed two ways (Transfer-Encoding
// and Content-Length, two lengths, an unknown coding) reaches the
// provider as one request framed once, or not at all; the headers of
// this hop (those Connection names, Proxy-Authorization, forwarding
// headers) are not passed on, so that a header naming Authorization
// leaves the provider with no credentials rather than others; and the
// provider's own hop-by-hop headers do not reach the client, while its
// cookies do (they are Twilio's to set).
func TestPassThroughHopByHop(t *testing.T) {
	t.Parallel()
	prov := newRecordingProvider(t)
	prov.answer = func(w http.ResponseWriter, r *http.Request, body []byte) {
		// Raw, as a proxy in front of the provider might answer: Go's
		// server would rewrite Connection.
		c, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nConnection: X-Provider-Hop\r\nX-Provider-Hop: secret\r\nKeep-Alive: timeout=5\r\n" +
			"Proxy-Authenticate: Basic realm=\"inner\"\r\nSet-Cookie: twilio=1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
		_ = buf.Flush()
	}
	f := newPassThroughFixture(t, prov, web.PassThrough{}, nil)
	calls := "/2010-04-01/Accounts/" + outAccount + "/Calls.json"
	auth := "Authorization: " + basic(outAccount, outToken) + "\r\n"
	head := func(method string) string {
		return method + " " + calls + " HTTP/1.1\r\nHost: switchboard.example\r\n" + auth
	}
	tests := []struct {
		name, req string
		status    int    // Switchboard's answer
		body      string // the provider's body; "-" for nothing forwarded
		dropped   []string
	}{
		{"Transfer-Encoding and Content-Length", head("POST") + "Content-Length: 40\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
			"3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 200, "abc", nil},
		{"two lengths", head("POST") + "Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", 400, "-", nil},
		{"an unknown coding", head("POST") + "Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501, "-", nil},
		{"hop-by-hop and forwarding headers", head("GET") + "Connection: X-Client-Hop, close\r\nX-Client-Hop: 1\r\nKeep-Alive: timeout=5\r\n" +
			"Proxy-Authorization: " + basic(otherAccount, otherToken) + "\r\nX-Forwarded-Host: evil.example.com\r\nX-Forwarded-Proto: http\r\n" +
			"Forwarded: host=evil.example.com\r\n\r\n", 200, "",
			[]string{"X-Client-Hop", "Keep-Alive", "Proxy-Authorization", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"}},
		{"Authorization named by Connection", head("GET") + "Connection: Authorization, close\r\n\r\n", 200, "", []string{"Authorization"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(prov.requests())
			resp, body, err := f.rawExchange(t, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d %s, want %d", resp.StatusCode, body, tt.status)
			}
			got := prov.requests()[before:]
			if tt.body == "-" {
				if len(got) != 0 {
					t.Fatalf("the provider got %+v, want nothing", got)
				}
				return
			}
			if len(got) != 1 || got[0].requestURI != "/base"+calls || string(got[0].body) != tt.body {
				t.Fatalf("the provider got %+v, want one request to %s with body %q", got, calls, tt.body)
			}
			for _, k := range tt.dropped {
				if v := got[0].header.Values(k); v != nil {
					t.Errorf("the provider got %s %q", k, v)
				}
			}
			if a := got[0].header.Values("Authorization"); a != nil && (len(a) != 1 || a[0] != basic(outAccount, outToken)) {
				t.Errorf("the provider got Authorization %q, want the one checked or none", a)
			}
			for _, k := range []string{"X-Provider-Hop", "Keep-Alive", "Proxy-Authenticate"} {
				if v := resp.Header.Values(k); v != nil {
					t.Errorf("the client got the provider's %s %q", k, v)
				}
			}
			if resp.Header.Get("Set-Cookie") != "twilio=1" || string(body) != "{}" {
				t.Errorf("the client got %v %s, want the provider's cookie and body", resp.Header, body)
			}
		})
	}
}

// TestPassThroughSlowClients: a client that stalls mid-body holds its
// slot only until the exchange's timeout, and a flood without valid
// credentials takes no slot at all: with MaxInFlight 1, the next
// authenticated request goes through after both.
func TestPassThroughSlowClients(t *testing.T) {
	t.Parallel()
	prov := newRecordingProvider(t)
	f := newPassThroughFixture(t, prov, web.PassThrough{MaxInFlight: 1, Timeout: 50 * time.Millisecond}, nil)
	calls := "/2010-04-01/Accounts/" + outAccount + "/Calls.json"

	// Headers and one byte of a body announced as a megabyte, then
	// nothing: the exchange times out and the connection is given up.
	c, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("POST " + calls + " HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic(outAccount, outToken) +
		"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1048576\r\n\r\nT")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the stalled request got no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout && resp.StatusCode != http.StatusBadGateway {
		t.Errorf("stalled body: %d, want 504 or 502", resp.StatusCode)
	}

	for range 20 {
		resp, body := f.raw(t, "GET", calls, outAccount, "wrong", nil, nil)
		checkTwilioError(t, resp, body, http.StatusUnauthorized, 20003)
	}
	resp, body := f.raw(t, "GET", calls, outAccount, outToken, nil, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("after a stalled client and a flood: %d %s, want the provider's answer", resp.StatusCode, body)
	}
}
