package e2e

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	twiliogo "github.com/twilio/twilio-go"
	twclient "github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"
	lookups "github.com/twilio/twilio-go/rest/lookups/v2"
	monitor "github.com/twilio/twilio-go/rest/monitor/v1"

	"github.com/switchboard-dev/switchboard/sim"
)

// An API key of the test account; twilio-go wants an alphanumeric secret.
const (
	e2eKeySID    = "SKe2e0000000000000000000000000000a"
	e2eKeySecret = "e2eKeySecret000000000000000000000"
)

// wireRecord is one request as a client sent it or a provider got it.
type wireRecord struct {
	method, uri, auth string // uri: path and query as on the wire
	body              []byte
}

// hostPrefixing sends twilio-go's requests to a running switchboard
// serve over loopback, as an application drops Switchboard in: paths of
// api.twilio.com as they are, those of Twilio's other hosts prefixed with
// the host. It refuses hosts outside twilio.com and records what it sent.
type hostPrefixing struct {
	addr string
	next http.RoundTripper
	mu   sync.Mutex
	sent []wireRecord
}

func (rw *hostPrefixing) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" || !strings.HasSuffix(req.URL.Host, ".twilio.com") {
		return nil, fmt.Errorf("request for %s: not one of Twilio's hosts", req.URL)
	}
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	rw.mu.Lock()
	rw.sent = append(rw.sent, wireRecord{method: req.Method, uri: req.URL.RequestURI(), auth: req.Header.Get("Authorization"), body: body})
	rw.mu.Unlock()
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	if req.URL.Host != "api.twilio.com" {
		out.URL.Path = "/" + req.URL.Host + req.URL.Path
		if req.URL.RawPath != "" {
			out.URL.RawPath = "/" + req.URL.Host + req.URL.RawPath
		}
	}
	out.URL.Scheme, out.URL.Host, out.Host = "http", rw.addr, ""
	return rw.next.RoundTrip(out)
}

func (rw *hostPrefixing) last(t *testing.T) wireRecord {
	t.Helper()
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if len(rw.sent) == 0 {
		t.Fatal("the client sent nothing")
	}
	return rw.sent[len(rw.sent)-1]
}

// prefixingClient is twilio-go authenticating with user and pass for
// account, its requests sent to p.
func prefixingClient(t *testing.T, p *proc, user, pass, account string) (*twiliogo.RestClient, *hostPrefixing) {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	rw := &hostPrefixing{addr: p.addr, next: tr}
	c := &twclient.Client{
		Credentials: twclient.NewCredentials(user, pass),
		HTTPClient:  &http.Client{Transport: rw, Timeout: 30 * time.Second},
	}
	c.SetAccountSid(account)
	rc := twiliogo.NewRestClientWithParams(twiliogo.ClientParams{Username: user, Password: pass, AccountSid: account, Client: c})
	rc.Edge, rc.Region = "", "" // not from the environment: they would change the hosts
	return rc, rw
}

// wireRecorder is a provider that records what it gets and answers a
// Call resource.
type wireRecorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []wireRecord
	handle func(w http.ResponseWriter, r *http.Request) bool // true: answered
}

const callResource = `{"sid": "CAe2e00000000000000000000000000001", "account_sid": "` + accountSID + `", "status": "queued", "to": "+15557770001"}`

func startWireRecorder(t *testing.T) *wireRecorder {
	t.Helper()
	rec := &wireRecorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		handle := rec.handle
		rec.mu.Unlock()
		if handle != nil && handle(w, r) {
			return
		}
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.got = append(rec.got, wireRecord{method: r.Method, uri: r.RequestURI, auth: r.Header.Get("Authorization"), body: body})
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(callResource))
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *wireRecorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.got)
}

func (rec *wireRecorder) last(t *testing.T) wireRecord {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) == 0 {
		t.Fatal("the provider got nothing")
	}
	return rec.got[len(rec.got)-1]
}

// addAPIKey gives the test account an API key in the configuration file
// at path.
func addAPIKey(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("auth_tokens = "))
	j := bytes.IndexByte(b[i:], '\n')
	if i < 0 || j < 0 {
		t.Fatal("configuration has no auth_tokens line")
	}
	line := fmt.Sprintf("api_keys = [{ sid = %q, secret = %q }]\n", e2eKeySID, e2eKeySecret)
	b = append(b[:i+j+1], append([]byte(line), b[i+j+1:]...)...)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPassThrough runs the real binary with a recording provider: the
// official twilio-go client creates a call and looks a number up through
// Switchboard, with the account's token or an API key, and the provider
// gets exactly what the client sent; wrong credentials and hosts outside
// twilio.com reach nothing; a large body is streamed.
func TestPassThrough(t *testing.T) {
	rec := startWireRecorder(t)
	cfg := writeConfig(t, config{storage: filepath.Join(t.TempDir(), "data", "switchboard.db"), provider: rec.srv.URL})
	addAccountToken(t, cfg, sdkToken)
	addAPIKey(t, cfg)
	p := startServe(t, cfg)

	same := func(t *testing.T, sent, got wireRecord) {
		t.Helper()
		if got.method != sent.method || got.uri != sent.uri || got.auth != sent.auth || !bytes.Equal(got.body, sent.body) {
			t.Errorf("provider got %s %s auth %q body %q;\nclient sent %s %s auth %q body %q",
				got.method, got.uri, got.auth, got.body, sent.method, sent.uri, sent.auth, sent.body)
		}
	}
	callParams := (&api.CreateCallParams{}).SetTo("+15557770001").SetFrom(outboundSender).SetUrl("https://app.example.com/voice?x=1&y=%2B")

	t.Run("a call with the account's token", func(t *testing.T) {
		rc, rw := prefixingClient(t, p, accountSID, sdkToken, accountSID)
		call, err := rc.Api.CreateCall(callParams)
		if err != nil {
			t.Fatalf("CreateCall through Switchboard: %v", err)
		}
		if deref(call.Sid) != "CAe2e00000000000000000000000000001" || deref(call.Status) != "queued" {
			t.Errorf("call = %s %s, want the provider's", deref(call.Sid), deref(call.Status))
		}
		sent := rw.last(t)
		if sent.method != http.MethodPost || sent.uri != "/2010-04-01/Accounts/"+accountSID+"/Calls.json" {
			t.Errorf("twilio-go sent %s %s", sent.method, sent.uri)
		}
		same(t, sent, rec.last(t))
	})

	t.Run("a call with an API key", func(t *testing.T) {
		rc, rw := prefixingClient(t, p, e2eKeySID, e2eKeySecret, accountSID)
		if _, err := rc.Api.CreateCall(callParams); err != nil {
			t.Fatalf("CreateCall with an API key: %v", err)
		}
		same(t, rw.last(t), rec.last(t))
	})

	t.Run("a lookup at another host", func(t *testing.T) {
		rc, rw := prefixingClient(t, p, e2eKeySID, e2eKeySecret, accountSID)
		if _, err := rc.LookupsV2.FetchPhoneNumber("+15557770001", (&lookups.FetchPhoneNumberParams{}).SetFields("line_type_intelligence")); err != nil {
			t.Fatalf("FetchPhoneNumber: %v", err)
		}
		sent, got := rw.last(t), rec.last(t)
		if !strings.HasPrefix(sent.uri, "/v2/PhoneNumbers/") {
			t.Errorf("twilio-go sent %s", sent.uri)
		}
		// The provider is not Twilio: every host's paths are at its base.
		same(t, sent, got)
	})

	t.Run("wrong credentials", func(t *testing.T) {
		before := rec.count()
		for _, creds := range [][2]string{{accountSID, "notTheToken0"}, {e2eKeySID, "notTheSecret0"}, {e2eKeySID, sdkToken}} {
			rc, _ := prefixingClient(t, p, creds[0], creds[1], accountSID)
			_, err := rc.Api.CreateCall(callParams)
			var te *twclient.TwilioRestError
			if !errors.As(err, &te) || te.Code != 20003 || te.Status != http.StatusUnauthorized {
				t.Errorf("%s: %v, want 401 with code 20003", creds[0], err)
			}
			_, err = rc.LookupsV2.FetchPhoneNumber("+15557770001", nil)
			if !errors.As(err, &te) || te.Code != 20003 {
				t.Errorf("%s, a lookup: %v, want 20003", creds[0], err)
			}
		}
		if n := rec.count() - before; n != 0 {
			t.Errorf("the provider got %d requests, want none", n)
		}
	})

	t.Run("hosts outside twilio.com", func(t *testing.T) {
		var reached atomic.Int64
		evil := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
		t.Cleanup(evil.Close)
		before := rec.count()
		for _, prefix := range []string{"/evil.example.com", "/" + strings.TrimPrefix(evil.URL, "http://"),
			"/" + strings.TrimPrefix(rec.srv.URL, "http://"), "/localhost", "/twilio.com", "/evil.example.com%2f.twilio.com"} {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+p.addr+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque = "//" + p.addr + prefix + "/v1/Anything"
			req.SetBasicAuth(accountSID, authToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", prefix, resp.StatusCode)
			}
		}
		if n := rec.count() - before; n != 0 || reached.Load() != 0 {
			t.Errorf("the provider got %d requests and the other server %d, want none", n, reached.Load())
		}
	})

	t.Run("a large body is streamed", func(t *testing.T) {
		const first, total = 1 << 20, 24 << 20
		gotFirst := make(chan struct{})
		rec.mu.Lock()
		rec.handle = func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, "/Recordings.json") {
				return false
			}
			h := sha256.New()
			if _, err := io.CopyN(h, r.Body, first); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return true
			}
			close(gotFirst)
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return true
			}
			fmt.Fprintf(w, "%d %x", first+n, h.Sum(nil))
			return true
		}
		rec.mu.Unlock()
		rssBefore := peakRSSKB(t, p)

		pr, pw := io.Pipe()
		sum := sha256.New()
		go func() {
			chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
			for sent := 0; sent < total; sent += len(chunk) {
				if sent == first {
					// The rest only once the provider has the first
					// MiB: a body held whole would wait forever.
					select {
					case <-gotFirst:
					case <-time.After(time.Minute):
						pw.CloseWithError(errors.New("the provider got nothing before the body ended: buffered"))
						return
					}
				}
				sum.Write(chunk)
				if _, err := pw.Write(chunk); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+p.addr+"/2010-04-01/Accounts/"+accountSID+"/Recordings.json", pr)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(accountSID, authToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("%d %x", total, sum.Sum(nil)); resp.StatusCode != http.StatusOK || string(answer) != want {
			t.Fatalf("provider answered %d %q, want %q", resp.StatusCode, answer, want)
		}
		// Streamed, the process's peak memory grows by far less than the
		// body.
		if grew := peakRSSKB(t, p) - rssBefore; grew > total/2/1024 {
			t.Errorf("peak RSS grew by %d KiB passing %d KiB through", grew, total/1024)
		}
	})

	t.Run("counted", func(t *testing.T) {
		resp, err := http.Get("http://" + p.addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			`switchboard_passthrough_requests_total{method="POST",path="/2010-04-01/Accounts/{sid}/Calls",status="2xx"} 2`,
			`switchboard_passthrough_requests_total{method="GET",path="/lookups.twilio.com/v2/PhoneNumbers/{id}",status="2xx"} 1`,
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if strings.Contains(string(b), "15557770001") {
			t.Error("a phone number is in the metrics")
		}
	})
}

// TestPassThroughToTheSimulator: with the simulator as the provider,
// twilio-go's Monitor requests go through Switchboard to the simulator,
// which serves every product on one base, and its answers come back.
func TestPassThroughToTheSimulator(t *testing.T) {
	tw, err := sim.New(sim.Config{Seed: 1, Accounts: []sim.Account{{SID: accountSID, AuthTokens: []string{sdkToken}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)
	var alerts atomic.Int64
	h := tw.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/Alerts" {
			alerts.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := writeConfig(t, config{storage: filepath.Join(t.TempDir(), "data", "switchboard.db"), provider: srv.URL})
	addAccountToken(t, cfg, sdkToken)
	p := startServe(t, cfg)

	rc, _ := prefixingClient(t, p, accountSID, sdkToken, accountSID)
	if _, err := rc.MonitorV1.ListAlert(&monitor.ListAlertParams{}); err != nil {
		t.Fatalf("ListAlert through Switchboard: %v", err)
	}
	if alerts.Load() != 1 {
		t.Errorf("the simulator served %d alert lists, want 1", alerts.Load())
	}
	// The simulator does not serve Calls: its 404 comes back as it gave it.
	_, err = rc.Api.CreateCall((&api.CreateCallParams{}).SetTo("+15557770001").SetFrom(outboundSender).SetUrl("https://app.example.com/voice"))
	var te *twclient.TwilioRestError
	if !errors.As(err, &te) || te.Status != http.StatusNotFound || te.Code != 20404 || !strings.Contains(te.Message, "/Calls.json") {
		t.Errorf("CreateCall at the simulator: %v, want its 404", err)
	}
}
