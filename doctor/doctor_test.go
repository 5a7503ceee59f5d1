package doctor

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-dev/switchboard/twilio"
)

const (
	validTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response><Message>Hi</Message></Response>`
	testToken  = "12345"
)

func TestProbeHTTP(t *testing.T) {
	t.Parallel()

	redirectTo := func(code int, location string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", location)
			w.WriteHeader(code)
		}
	}
	mp3 := append([]byte("ID3\x04\x00\x00\x00\x00\x00\x00"), bytes.Repeat([]byte{0xff, 0xfb, 0x90, 0x64}, 200)...)

	tests := []struct {
		name    string
		kind    Kind
		method  string
		token   string
		routes  map[string]http.HandlerFunc // path → handler; the probe calls /start
		wants   []want
		failed  bool
		inspect func(t *testing.T, srv *httptest.Server, r *Report)
	}{
		{
			name:   "healthy TwiML",
			routes: map[string]http.HandlerFunc{"/start": twimlHandler("application/xml", validTwiML)},
			wants:  []want{{"reachability", StatusWarn, twilio.CodeHTTPConnectionFailure}, {"twiml", StatusPass, 0}},
			inspect: func(t *testing.T, _ *httptest.Server, r *Report) {
				for _, f := range r.Findings {
					if f.Status != StatusPass && f.Check != "reachability" {
						t.Errorf("finding %+v, want pass", f)
					}
				}
				for _, check := range []string{"host", "connect", "redirect", "status", "latency", "size", "content-type", "sniff", "twiml"} {
					finding(t, r, check)
				}
				if len(r.Hops) != 0 {
					t.Errorf("hops %v without a redirect", r.Hops)
				}
			},
		},
		{
			name:   "500",
			routes: map[string]http.HandlerFunc{"/start": statusHandler(500)},
			wants:  []want{{"status", StatusFail, twilio.CodeHTTPRetrievalFailure}},
			failed: true,
		},
		{
			name: "401 with WWW-Authenticate",
			routes: map[string]http.HandlerFunc{"/start": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Basic realm="app"`)
				w.WriteHeader(http.StatusUnauthorized)
			}},
			wants:  []want{{"auth", StatusFail, twilio.CodeHTTPRetrievalFailure}},
			failed: true,
			inspect: func(t *testing.T, _ *httptest.Server, r *Report) {
				if f := finding(t, r, "auth"); !strings.Contains(f.Fix, "user:pass@") {
					t.Errorf("fix %q does not suggest credentials in the URL", f.Fix)
				}
			},
		},
		{
			name:   "405 for POST",
			routes: map[string]http.HandlerFunc{"/start": statusHandler(http.StatusMethodNotAllowed)},
			wants:  []want{{"status", StatusFail, twilio.CodeHTTPRetrievalFailure}},
			failed: true,
			inspect: func(t *testing.T, _ *httptest.Server, r *Report) {
				if f := finding(t, r, "status"); !strings.Contains(f.Fix, "static file") {
					t.Errorf("fix %q", f.Fix)
				}
			},
		},
		{
			name:   "403 to a signed request",
			token:  testToken,
			routes: map[string]http.HandlerFunc{"/start": statusHandler(http.StatusForbidden)},
			wants:  []want{{"status", StatusFail, twilio.CodeHTTPRetrievalFailure}, {"signature", StatusWarn, 0}},
			failed: true,
			inspect: func(t *testing.T, srv *httptest.Server, r *Report) {
				f := finding(t, r, "signature")
				if !strings.Contains(f.Message, "signed URL "+srv.URL+"/start ") {
					t.Errorf("signature finding %q does not show the signed URL %s/start", f.Message, srv.URL)
				}
				if !strings.Contains(f.Message, "X-Twilio-Signature ") {
					t.Errorf("signature finding %q does not show the signature", f.Message)
				}
			},
		},
		{
			name: "redirect chain",
			routes: map[string]http.HandlerFunc{
				"/start": redirectTo(http.StatusTemporaryRedirect, "/b"),
				"/b":     redirectTo(http.StatusPermanentRedirect, "/c"),
				"/c":     twimlHandler("text/xml", validTwiML),
			},
			wants: []want{{"redirect", StatusWarn, 0}, {"status", StatusPass, 0}, {"twiml", StatusPass, 0}},
			inspect: func(t *testing.T, srv *httptest.Server, r *Report) {
				if len(r.Hops) != 3 {
					t.Fatalf("hops %+v, want 3", r.Hops)
				}
				for i, path := range []string{"/start", "/b", "/c"} {
					if h := r.Hops[i]; h.URL != srv.URL+path || h.Method != "POST" {
						t.Errorf("hop %d = %+v, want POST %s", i, h, srv.URL+path)
					}
				}
				if r.Hops[2].Status != 200 || r.Hops[0].Status != 307 {
					t.Errorf("hop statuses %+v", r.Hops)
				}
			},
		},
		{
			name:   "redirect to ftp",
			routes: map[string]http.HandlerFunc{"/start": redirectTo(http.StatusFound, "ftp://files.example/twiml.xml")},
			wants:  []want{{"redirect", StatusFail, twilio.CodeHTTPRetrievalFailure}},
			failed: true,
		},
		{
			name: "302 turns POST into GET",
			routes: map[string]http.HandlerFunc{
				"/start": redirectTo(http.StatusFound, "/b"),
				"/b": func(w http.ResponseWriter, r *http.Request) {
					if r.Method != "GET" || r.ContentLength > 0 {
						w.WriteHeader(http.StatusBadRequest)
						return
					}
					twimlHandler("application/xml", validTwiML)(w, r)
				},
			},
			wants: []want{{"redirect", StatusWarn, 0}, {"status", StatusPass, 0}},
			inspect: func(t *testing.T, _ *httptest.Server, r *Report) {
				n := 0
				for _, f := range r.Findings {
					if f.Check == "redirect" && strings.Contains(f.Message, "GET") {
						n++
					}
				}
				if n == 0 {
					t.Errorf("no POST-to-GET warning in:\n%s", r.Text())
				}
				if len(r.Hops) != 2 || r.Hops[1].Method != "GET" {
					t.Errorf("hops %+v, want POST then GET", r.Hops)
				}
			},
		},
		{
			name:   "redirect loop",
			routes: map[string]http.HandlerFunc{"/start": redirectTo(http.StatusTemporaryRedirect, "/start")},
			wants:  []want{{"redirect", StatusFail, twilio.CodeHTTPRetrievalFailure}},
			failed: true,
			inspect: func(t *testing.T, _ *httptest.Server, r *Report) {
				if len(r.Hops) != maxRedirects+1 {
					t.Errorf("%d hops, want %d", len(r.Hops), maxRedirects+1)
				}
			},
		},
		{
			name:   "no Content-Type",
			routes: map[string]http.HandlerFunc{"/start": twimlHandler("", validTwiML)},
			wants:  []want{{"content-type", StatusFail, twilio.CodeInvalidContentType}, {"twiml", StatusPass, 0}},
			failed: true,
		},
		{
			name:   "TwiML as text/plain",
			routes: map[string]http.HandlerFunc{"/start": twimlHandler("text/plain; charset=utf-8", "<Response><Say>hi</Say></Response>")},
			wants:  []want{{"content-type", StatusFail, twilio.CodeInvalidContentType}, {"sniff", StatusWarn, twilio.CodeInvalidContentType}},
			failed: true,
		},
		{
			name:   "text/html tolerated",
			routes: map[string]http.HandlerFunc{"/start": twimlHandler("text/html", validTwiML)},
			wants:  []want{{"content-type", StatusWarn, 0}, {"sniff", StatusPass, 0}, {"twiml", StatusPass, 0}},
		},
		{
			name:   "malformed XML",
			routes: map[string]http.HandlerFunc{"/start": twimlHandler("application/xml", "<Response><Say>hi</Response>")},
			wants:  []want{{"twiml", StatusFail, twilio.CodeDocumentParseFailure}},
			failed: true,
		},
		{
			name:   "root not Response",
			routes: map[string]http.HandlerFunc{"/start": twimlHandler("application/xml", "<Foo><Say>hi</Say></Foo>")},
			wants:  []want{{"twiml", StatusFail, twilio.CodeDocumentParseFailure}},
			failed: true,
		},
		{
			name:   "unknown verb",
			routes: map[string]http.HandlerFunc{"/start": twimlHandler("application/xml", "<Response><Dance/><Message>hi</Message></Response>")},
			wants:  []want{{"twiml", StatusWarn, twilio.CodeSchemaValidationWarning}},
			inspect: func(t *testing.T, _ *httptest.Server, r *Report) {
				if f := finding(t, r, "twiml"); !strings.Contains(f.Message, "<Dance>") {
					t.Errorf("message %q does not name <Dance>", f.Message)
				}
			},
		},
		{
			name: "body over 64 kB",
			routes: map[string]http.HandlerFunc{"/start": twimlHandler("application/xml",
				"<Response><Say>"+strings.Repeat("a", 70<<10)+"</Say></Response>")},
			wants:  []want{{"size", StatusFail, twilio.CodeResponseTooLarge}},
			failed: true,
		},
		{
			name:   "MP3 labelled audio/x-wav",
			kind:   KindVoice,
			routes: map[string]http.HandlerFunc{"/start": twimlHandler("audio/x-wav", string(mp3))},
			wants:  []want{{"sniff", StatusWarn, twilio.CodeInvalidContentType}, {"content-type", StatusFail, twilio.CodeInvalidContentType}},
			failed: true,
			inspect: func(t *testing.T, _ *httptest.Server, r *Report) {
				if f := finding(t, r, "sniff"); !strings.Contains(f.Message, "audio/mpeg") {
					t.Errorf("sniff finding %q does not name audio/mpeg", f.Message)
				}
			},
		},
		{
			name:   "empty body for sms",
			routes: map[string]http.HandlerFunc{"/start": statusHandler(http.StatusOK)},
			wants:  []want{{"twiml", StatusPass, 0}},
		},
		{
			name:   "empty body for voice",
			kind:   KindVoice,
			routes: map[string]http.HandlerFunc{"/start": statusHandler(http.StatusOK)},
			wants:  []want{{"twiml", StatusFail, twilio.CodeDocumentParseFailure}},
			failed: true,
		},
		{
			name:   "status callback 204",
			kind:   KindStatus,
			routes: map[string]http.HandlerFunc{"/start": statusHandler(http.StatusNoContent)},
			wants:  []want{{"status", StatusPass, 0}},
			inspect: func(t *testing.T, _ *httptest.Server, r *Report) {
				for _, f := range r.Findings {
					if f.Check == "twiml" || f.Check == "content-type" {
						t.Errorf("status callback body checked: %+v", f)
					}
				}
			},
		},
		{
			name:   "status callback 500",
			kind:   KindStatus,
			routes: map[string]http.HandlerFunc{"/start": statusHandler(500)},
			wants:  []want{{"status", StatusFail, twilio.CodeHTTPRetrievalFailure}},
			failed: true,
		},
		{
			name:   "client notification 404",
			kind:   KindClientNotification,
			token:  testToken,
			routes: map[string]http.HandlerFunc{"/start": statusHandler(http.StatusNotFound)},
			wants:  []want{{"status", StatusPass, 0}},
		},
		{
			name:   "client notification 500",
			kind:   KindClientNotification,
			routes: map[string]http.HandlerFunc{"/start": statusHandler(500)},
			wants:  []want{{"status", StatusFail, twilio.CodeClientNotificationFailed}},
			failed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mux := http.NewServeMux()
			for path, h := range tt.routes {
				mux.HandleFunc(path, h)
			}
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)

			r := probe(t, Options{URL: srv.URL + "/start", Kind: tt.kind, Method: tt.method, AuthToken: tt.token})
			requireFindings(t, r, tt.wants...)
			if r.Failed() != tt.failed {
				t.Errorf("Failed() = %v, want %v:\n%s", r.Failed(), tt.failed, r.Text())
			}
			if tt.inspect != nil {
				tt.inspect(t, srv, r)
			}
		})
	}
}

// TestRequestsLookLikeTwilio checks what the app receives: Twilio's
// headers, parameters and a signature it can validate.
func TestRequestsLookLikeTwilio(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		kind        Kind
		method      string
		contentType string
		params      []string // parameters that must be present
		values      map[string]string
	}{
		{"sms POST", KindSMS, "POST", "application/x-www-form-urlencoded",
			[]string{"MessageSid", "SmsSid", "AccountSid", "From", "To", "Body", "ApiVersion"},
			map[string]string{"NumMedia": "0", "SmsStatus": "received", "AccountSid": "AC0123"}},
		{"sms GET", KindSMS, "GET", "",
			[]string{"MessageSid", "From", "To", "Body"},
			map[string]string{"SmsStatus": "received"}},
		{"voice", KindVoice, "POST", "application/x-www-form-urlencoded; charset=UTF-8",
			[]string{"CallSid", "From", "To", "Caller", "Called", "AccountSid", "ApiVersion"},
			map[string]string{"CallStatus": "ringing", "Direction": "inbound"}},
		{"status", KindStatus, "POST", "application/x-www-form-urlencoded",
			[]string{"MessageSid", "AccountSid", "From", "To", "SmsSid"},
			map[string]string{"MessageStatus": "delivered", "SmsStatus": "delivered"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			type received struct {
				method, uri, contentType, signature string
				header                              http.Header
				body                                []byte
			}
			got := make(chan received, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				got <- received{r.Method, r.RequestURI, r.Header.Get("Content-Type"), r.Header.Get("X-Twilio-Signature"), r.Header, body}
				twimlHandler("application/xml", validTwiML)(w, r)
			}))
			t.Cleanup(srv.Close)

			rep := probe(t, Options{URL: srv.URL + "/hook?route=a#ct=1000&tt=5000", Kind: tt.kind, Method: tt.method,
				AuthToken: testToken, AccountSID: "AC0123"})
			if rep.Failed() {
				t.Fatalf("probe failed:\n%s", rep.Text())
			}
			rcv := <-got
			if rcv.method != tt.method || rcv.contentType != tt.contentType {
				t.Errorf("got %s with Content-Type %q, want %s with %q", rcv.method, rcv.contentType, tt.method, tt.contentType)
			}
			if !strings.HasPrefix(rcv.uri, "/hook?route=a") || strings.Contains(rcv.uri, "ct=") {
				t.Errorf("request URI %q: want the query kept and the fragment dropped", rcv.uri)
			}
			for header, want := range map[string]string{"User-Agent": "TwilioProxy/1.1", "X-Home-Region": "us1"} {
				if v := rcv.header.Get(header); v != want {
					t.Errorf("%s = %q, want %q", header, v, want)
				}
			}
			if len(rcv.header.Get("I-Twilio-Idempotency-Token")) != 36 {
				t.Errorf("I-Twilio-Idempotency-Token = %q, want a UUID", rcv.header.Get("I-Twilio-Idempotency-Token"))
			}
			fullURL := srv.URL + rcv.uri
			if err := twilio.ValidateRequest([]string{testToken}, fullURL, rcv.contentType, rcv.body, rcv.signature); err != nil {
				t.Errorf("signature %q over %s: %v", rcv.signature, fullURL, err)
			}
			params := parseParams(t, tt.method, rcv.uri, rcv.body)
			for _, p := range tt.params {
				if params.Get(p) == "" {
					t.Errorf("parameter %s missing from %v", p, params)
				}
			}
			for k, v := range tt.values {
				if params.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, params.Get(k), v)
				}
			}
		})
	}
}

func TestClientNotificationSigned(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var uri, sig, ct string
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		uri, sig, ct, body = r.RequestURI, r.Header.Get("X-Twilio-Signature"), r.Header.Get("Content-Type"), b
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)

	r := probe(t, Options{URL: srv.URL + "/notify", Kind: KindClientNotification, AuthToken: testToken})
	requireFindings(t, r, want{"status", StatusPass, 0}, want{"signature", StatusPass, 0})
	if r.Failed() {
		t.Fatalf("probe failed:\n%s", r.Text())
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(uri, "bodySHA256=") {
		t.Errorf("request URI %q lacks bodySHA256", uri)
	}
	if ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if err := twilio.ValidateRequest([]string{testToken}, srv.URL+uri, ct, body, sig); err != nil {
		t.Errorf("ValidateRequest: %v", err)
	}
	for _, key := range []string{"twi_account_sid", "twi_call_sid", "twi_from", "twi_to", `"twi_message_id":"WB`, `"twi_message_type":"twilio.voice.call"`} {
		if !bytes.Contains(body, []byte(key)) {
			t.Errorf("body %s lacks %s", body, key)
		}
	}
}

func TestSlowServerTimesOut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	r := probe(t, Options{URL: srv.URL + "/slow#tt=300"})
	requireFindings(t, r, want{"latency", StatusFail, twilio.CodeHTTPConnectionFailure}, want{"overrides", StatusPass, 0})
	if !r.Failed() {
		t.Errorf("not failed:\n%s", r.Text())
	}
	if f := finding(t, r, "latency"); !strings.Contains(f.Message, "300ms") || !strings.Contains(f.Message, "#tt") {
		t.Errorf("latency finding %q does not name the #tt limit", f.Message)
	}
}

func TestNetworkFailures(t *testing.T) {
	t.Parallel()

	// A port nothing listens on: one just closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	_ = l.Close()

	healthy := httptest.NewServer(twimlHandler("application/xml", validTwiML))
	t.Cleanup(healthy.Close)
	_, port, _ := net.SplitHostPort(healthy.Listener.Addr().String())

	tests := []struct {
		name     string
		url      string
		kind     Kind
		resolver *net.Resolver
		wants    []want
		failed   bool
	}{
		{
			name:   "connection refused",
			url:    "http://" + closedAddr + "/sms",
			wants:  []want{{"connect", StatusFail, twilio.CodeHTTPConnectionFailure}},
			failed: true,
		},
		{
			name:     "DNS failure",
			url:      "http://app.example.test/sms",
			resolver: fakeResolver(nil),
			wants:    []want{{"host", StatusPass, 0}, {"dns", StatusFail, twilio.CodeBadHostName}},
			failed:   true,
		},
		{
			name:     "underscore host that resolves",
			url:      "http://my_app.example.test:" + port + "/sms",
			resolver: fakeResolver(net.IPv4(127, 0, 0, 1)),
			wants: []want{
				{"host", StatusWarn, twilio.CodeBadHostName},
				{"dns", StatusPass, 0},
				{"reachability", StatusWarn, twilio.CodeHTTPConnectionFailure},
				{"status", StatusPass, 0},
				{"twiml", StatusPass, 0},
			},
		},
		{
			name:     "underscore host for a client notification",
			url:      "https://voice_push.example.test/notify",
			kind:     KindClientNotification,
			resolver: fakeResolver(nil),
			wants:    []want{{"host", StatusWarn, twilio.CodeClientNotificationFailed}, {"dns", StatusFail, twilio.CodeBadHostName}},
			failed:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := probe(t, Options{URL: tt.url, Kind: tt.kind, Resolver: tt.resolver})
			requireFindings(t, r, tt.wants...)
			if r.Failed() != tt.failed {
				t.Errorf("Failed() = %v, want %v:\n%s", r.Failed(), tt.failed, r.Text())
			}
		})
	}
}
