package sim

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	twiliogo "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"
	monitor "github.com/twilio/twilio-go/rest/monitor/v1"
)

var (
	messageSIDPattern = regexp.MustCompile(`^SM[0-9a-f]{32}$`)
	alertSIDPattern   = regexp.MustCompile(`^NO[0-9a-f]{32}$`)
)

// rewrite sends twilio-go's requests for Twilio's hosts to the simulator
// and refuses any other, counting them by method and path.
type rewrite struct {
	sim  *url.URL
	next http.RoundTripper
	gets atomic.Int64 // GET requests for a list of messages
}

func (rw *rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.URL.Host {
	case "api.twilio.com", "monitor.twilio.com":
	default:
		return nil, fmt.Errorf("request for %s: not a Twilio host", req.URL.Host)
	}
	if req.URL.Scheme != "https" {
		return nil, fmt.Errorf("request for %s: twilio-go should use https", req.URL)
	}
	if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/Messages.json") {
		rw.gets.Add(1)
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = rw.sim.Scheme, rw.sim.Host, ""
	return rw.next.RoundTrip(out)
}

// restClient is twilio-go's REST client, the one applications use.
type restClient = twiliogo.RestClient

// goClient returns a twilio-go client whose requests go to srv.
func goClient(t *testing.T, srv *Server, user, pass string) (*restClient, *rewrite) {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	rw := &rewrite{sim: u, next: tr}
	c := &client.Client{
		Credentials: client.NewCredentials(user, pass),
		HTTPClient: &http.Client{
			Transport:     rw,
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	c.SetAccountSid(user)
	rc := twiliogo.NewRestClientWithParams(twiliogo.ClientParams{Client: c})
	rc.Edge, rc.Region = "", "" // not from the environment: they would change the hosts
	return rc, rw
}

// serveSim starts s on a loopback port until the test ends.
func serveSim(t *testing.T, s *Sim) *Server {
	t.Helper()
	srv, err := s.Serve(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	return srv
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestTwilioGoCreateAndFetch(t *testing.T) {
	t.Parallel()
	s := newSim(t, testConfig())
	rc, _ := goClient(t, serveSim(t, s), acctSID, acctToken)

	tests := []struct {
		name, from, to, body string
		segments             string
	}{
		{"GSM7", longCode, handset, "hello from the simulator", "1"},
		{"GSM7ThreeSegments", tollFree, handset, strings.Repeat("x", 153*2+1), "3"},
		{"UCS2TwoSegments", shortCode, handset, strings.Repeat("ж", 71), "2"},
		{"MagicFrom", "+15005550006", handset2, "magic", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := (&api.CreateMessageParams{}).SetFrom(tt.from).SetTo(tt.to).SetBody(tt.body)
			m, err := rc.Api.CreateMessage(params)
			if err != nil {
				t.Fatalf("CreateMessage: %v", err)
			}
			if !messageSIDPattern.MatchString(str(m.Sid)) {
				t.Errorf("sid %q: want SM and 32 hex digits", str(m.Sid))
			}
			if str(m.Status) != StatusQueued {
				t.Errorf("status %q, want queued", str(m.Status))
			}
			if str(m.NumSegments) != tt.segments {
				t.Errorf("num_segments %q, want %s", str(m.NumSegments), tt.segments)
			}
			if str(m.From) != tt.from || str(m.To) != tt.to || str(m.Body) != tt.body ||
				str(m.AccountSid) != acctSID || str(m.Direction) != "outbound-api" || str(m.ApiVersion) != "2010-04-01" {
				t.Errorf("created %+v: want from %s, to %s, the body, account %s, outbound-api", m, tt.from, tt.to, acctSID)
			}
			if _, err := time.Parse(time.RFC1123Z, str(m.DateCreated)); err != nil {
				t.Errorf("date_created %q: not RFC 2822: %v", str(m.DateCreated), err)
			}
			if m.ErrorCode != nil || m.DateSent != nil {
				t.Errorf("error_code %v, date_sent %v: want null while queued", m.ErrorCode, m.DateSent)
			}
			if want := "/2010-04-01/Accounts/" + acctSID + "/Messages/" + str(m.Sid) + ".json"; str(m.Uri) != want {
				t.Errorf("uri %q, want %q", str(m.Uri), want)
			}

			got, err := rc.Api.FetchMessage(str(m.Sid), nil)
			if err != nil {
				t.Fatalf("FetchMessage: %v", err)
			}
			if str(got.Sid) != str(m.Sid) || str(got.Body) != tt.body || str(got.To) != tt.to ||
				str(got.NumSegments) != tt.segments || str(got.DateCreated) != str(m.DateCreated) {
				t.Errorf("fetched %+v, want the created %+v", got, m)
			}
		})
	}

	t.Run("MessagingService", func(t *testing.T) {
		p := (&api.CreateMessageParams{}).SetMessagingServiceSid(serviceSID).SetTo(handset).SetBody("via the pool")
		m, err := rc.Api.CreateMessage(p)
		if err != nil {
			t.Fatalf("CreateMessage: %v", err)
		}
		// Twilio answers a Messaging Service's create with accepted.
		if str(m.Status) != StatusAccepted || str(m.MessagingServiceSid) != serviceSID || (str(m.From) != poolA && str(m.From) != poolB) {
			t.Errorf("created %+v: want accepted, service %s, from its pool", m, serviceSID)
		}
		if got, _ := s.Message(str(m.Sid)); len(got.History) < 2 || got.History[0].Status != StatusAccepted || got.History[1].Status != StatusQueued {
			t.Errorf("history %+v: want accepted, then queued once the service picked a sender", got.History)
		}
		_, err = rc.Api.CreateMessage((&api.CreateMessageParams{}).SetMessagingServiceSid("MG00000000000000000000000000000000").SetTo(handset).SetBody("x"))
		var te *client.TwilioRestError
		if !errors.As(err, &te) || te.Code != 21701 {
			t.Errorf("unknown service: error %v, want 21701", err)
		}
	})

	t.Run("FetchUnknown", func(t *testing.T) {
		_, err := rc.Api.FetchMessage("SM00000000000000000000000000000000", nil)
		var te *client.TwilioRestError
		if !errors.As(err, &te) || te.Status != http.StatusNotFound || te.Code != 20404 {
			t.Errorf("FetchMessage(unknown) error %v, want 404 with code 20404", err)
		}
	})
}

func TestTwilioGoListPages(t *testing.T) {
	t.Parallel()
	s := newSim(t, testConfig())
	rc, rw := goClient(t, serveSim(t, s), acctSID, acctToken)

	// 7 to handset from the long code, 5 to handset2 from the toll-free
	// number, 4 to handset from the toll-free number.
	sent := map[string]string{} // SID → from|to
	for i, c := range []struct {
		from, to string
		n        int
	}{{longCode, handset, 7}, {tollFree, handset2, 5}, {tollFree, handset, 4}} {
		for j := range c.n {
			p := (&api.CreateMessageParams{}).SetFrom(c.from).SetTo(c.to).SetBody(fmt.Sprintf("batch %d message %d", i, j))
			m, err := rc.Api.CreateMessage(p)
			if err != nil {
				t.Fatalf("CreateMessage: %v", err)
			}
			sent[str(m.Sid)] = c.from + "|" + c.to
		}
	}

	tests := []struct {
		name     string
		to, from string
		pageSize int
		want     int
	}{
		{"To", handset, "", 3, 11},
		{"From", "", tollFree, 2, 9},
		{"ToAndFrom", handset, tollFree, 3, 4},
		{"All", "", "", 5, 16},
		{"PageSizeIsCount", handset2, "", 5, 5},
		{"NoMatch", "+15550000000", "", 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The limit, far above any count here, stops a server that
			// pages forever.
			p := (&api.ListMessageParams{}).SetPageSize(tt.pageSize).SetLimit(100)
			if tt.to != "" {
				p.SetTo(tt.to)
			}
			if tt.from != "" {
				p.SetFrom(tt.from)
			}
			before := rw.gets.Load()
			got, err := rc.Api.ListMessage(p)
			if err != nil {
				t.Fatalf("ListMessage: %v", err)
			}
			pages := rw.gets.Load() - before
			if want := int64(max(1, (tt.want+tt.pageSize-1)/tt.pageSize)); pages != want {
				t.Errorf("%d requests for %d messages %d a page, want %d", pages, tt.want, tt.pageSize, want)
			}
			seen := map[string]bool{}
			var prev time.Time
			for i, m := range got {
				sid := str(m.Sid)
				if seen[sid] {
					t.Errorf("message %s listed twice", sid)
				}
				seen[sid] = true
				fromTo, ok := sent[sid]
				if !ok {
					t.Errorf("listed %s, which was not created", sid)
					continue
				}
				from, to, _ := strings.Cut(fromTo, "|")
				if (tt.to != "" && to != tt.to) || (tt.from != "" && from != tt.from) {
					t.Errorf("listed %s from %s to %s: does not match the filter", sid, from, to)
				}
				created, err := time.Parse(time.RFC1123Z, str(m.DateCreated))
				if err != nil {
					t.Fatal(err)
				}
				if i > 0 && created.After(prev) {
					t.Errorf("message %d created %v after the one before it (%v): want newest first", i, created, prev)
				}
				prev = created
			}
			if len(seen) != tt.want {
				t.Errorf("listed %d distinct messages, want %d", len(seen), tt.want)
			}
		})
	}
}

func TestTwilioGoErrors(t *testing.T) {
	t.Parallel()
	s := newSim(t, testConfig())
	srv := serveSim(t, s)
	rc, _ := goClient(t, srv, acctSID, acctToken)

	tests := []struct {
		name     string
		from, to string
		body     *string
		status   int
		code     int
	}{
		{name: "InvalidTo", from: longCode, to: "12", status: 400, code: 21211},
		{name: "InvalidToLetters", from: longCode, to: "+1555abc0000", status: 400, code: 21211},
		{name: "FromNotOwned", from: "+14155550123", to: handset, status: 400, code: 21606},
		{name: "FromOfAnotherAccount", from: otherNum, to: handset, status: 400, code: 21606},
		{name: "NoBody", from: longCode, to: handset, body: ptr(""), status: 400, code: 21602},
		{name: "BodyOver1600", from: longCode, to: handset, body: ptr(strings.Repeat("a", 1601)), status: 400, code: 21617},
		{name: "BodyOver1600UCS2", from: longCode, to: handset, body: ptr(strings.Repeat("ж", 1601)), status: 400, code: 21617},
		{name: "OptedOut", from: longCode, to: optedOut, status: 400, code: 21610},
		{name: "MagicInvalidTo", from: "+15005550006", to: "+15005550001", status: 400, code: 21211},
		{name: "MagicInvalidFrom", from: "+15005550001", to: handset, status: 400, code: 21212},
		{name: "MagicFromNotOwned", from: "+15005550007", to: handset, status: 400, code: 21606},
		{name: "MagicOptedOutTo", from: "+15005550006", to: "+15005550004", status: 400, code: 21610},
		{name: "MagicNotCapableTo", from: "+15005550006", to: "+15005550009", status: 400, code: 21614},
		{name: "Body1600IsFine", from: longCode, to: handset, body: ptr(strings.Repeat("a", 1600)), status: 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := (&api.CreateMessageParams{}).SetFrom(tt.from).SetTo(tt.to).SetBody("hi")
			if tt.body != nil {
				p.SetBody(*tt.body)
			}
			m, err := rc.Api.CreateMessage(p)
			if tt.status == http.StatusCreated {
				if err != nil || !messageSIDPattern.MatchString(str(m.Sid)) {
					t.Fatalf("CreateMessage: %+v, %v; want a message", m, err)
				}
				return
			}
			var te *client.TwilioRestError
			if !errors.As(err, &te) {
				t.Fatalf("CreateMessage error %v (%T), want a *client.TwilioRestError", err, err)
			}
			if te.Code != tt.code || te.Status != tt.status {
				t.Errorf("error %d %d (%s), want status %d code %d", te.Status, te.Code, te.Message, tt.status, tt.code)
			}
			if want := fmt.Sprintf("https://www.twilio.com/docs/errors/%d", tt.code); te.MoreInfo != want {
				t.Errorf("more_info %q, want %q", te.MoreInfo, want)
			}
		})
	}

	t.Run("Authentication", func(t *testing.T) {
		t.Parallel()
		auth := []struct {
			name, user, pass, path string
			code                   int
		}{
			{name: "WrongPassword", user: acctSID, pass: "wrongpassword0123456789abcdef012", code: 20003},
			{name: "UnknownAccount", user: "AC99999999999999999999999999999999", pass: acctToken, code: 20003},
			{name: "OtherAccountsPath", user: acctSID, pass: acctToken, path: otherSID, code: 20003},
			{name: "SecondToken", user: acctSID, pass: oldToken},
			{name: "OtherAccount", user: otherSID, pass: otherTok},
		}
		for _, tt := range auth {
			t.Run(tt.name, func(t *testing.T) {
				c, _ := goClient(t, srv, tt.user, tt.pass)
				p := (&api.ListMessageParams{}).SetPageSize(1).SetLimit(1)
				if tt.path != "" {
					p.SetPathAccountSid(tt.path)
				}
				_, err := c.Api.ListMessage(p)
				if tt.code == 0 {
					if err != nil {
						t.Fatalf("ListMessage: %v", err)
					}
					return
				}
				var te *client.TwilioRestError
				if !errors.As(err, &te) || te.Status != http.StatusUnauthorized || te.Code != tt.code {
					t.Errorf("ListMessage error %v, want 401 with code %d", err, tt.code)
				}
			})
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestTwilioGoMonitorAlerts(t *testing.T) {
	t.Parallel()
	failing := startApp(t, newApp(func(w http.ResponseWriter, _ *http.Request, _ int) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	cfg := testConfig()
	numberOf(t, &cfg, longCode).SMSURL = failing.URL + "/sms"
	s := newSim(t, cfg)
	srv := serveSim(t, s)
	rc, _ := goClient(t, srv, acctSID, acctToken)

	in, err := s.ReceiveMessage(withTimeout(t), InboundMessage{From: handset, To: longCode, Body: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if in.Webhook == nil || in.Webhook.Error == nil || in.Webhook.Error.Code != 11200 {
		t.Fatalf("webhook result %+v, want 11200", in.Webhook)
	}

	alerts, err := rc.MonitorV1.ListAlert(&monitor.ListAlertParams{})
	if err != nil {
		t.Fatalf("ListAlert: %v", err)
	}
	if len(alerts) != 1 {
		t.Fatalf("%d alerts, want 1: %+v", len(alerts), alerts)
	}
	a := alerts[0]
	if !alertSIDPattern.MatchString(str(a.Sid)) || str(a.ErrorCode) != "11200" || str(a.AccountSid) != acctSID ||
		str(a.ResourceSid) != in.SID || str(a.RequestUrl) != failing.URL+"/sms" || str(a.RequestMethod) != http.MethodPost ||
		str(a.LogLevel) != "error" || str(a.MoreInfo) != "https://www.twilio.com/docs/errors/11200" {
		t.Errorf("alert %+v: want NO… 11200 error for %s at %s/sms", a, in.SID, failing.URL)
	}
	if a.DateCreated == nil || a.DateCreated.IsZero() {
		t.Errorf("alert date_created %v, want a time", a.DateCreated)
	}
	text, err := url.ParseQuery(str(a.AlertText))
	if err != nil || text.Get("httpResponse") != "500" || !strings.HasPrefix(text.Get("Msg"), "HTTP retrieval failure") {
		t.Errorf("alert_text %q (%v): want httpResponse=500 and the code's description", str(a.AlertText), err)
	}

	got, err := rc.MonitorV1.FetchAlert(str(a.Sid))
	if err != nil {
		t.Fatalf("FetchAlert: %v", err)
	}
	if str(got.Sid) != str(a.Sid) || str(got.ErrorCode) != "11200" || !strings.Contains(str(got.ResponseBody), "boom") {
		t.Errorf("fetched alert %+v, want %s with the answer's body", got, str(a.Sid))
	}

	// Another account sees none of them.
	other, _ := goClient(t, srv, otherSID, otherTok)
	if alerts, err := other.MonitorV1.ListAlert(nil); err != nil || len(alerts) != 0 {
		t.Errorf("other account's alerts: %+v, %v; want none", alerts, err)
	}
	if warnings, err := rc.MonitorV1.ListAlert((&monitor.ListAlertParams{}).SetLogLevel("warning")); err != nil || len(warnings) != 0 {
		t.Errorf("warnings: %+v, %v; want none", warnings, err)
	}
}
