package sim

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestStatusCallbackRequests: status callbacks over the network carry
// Twilio's headers and parameters.
func TestStatusCallbackRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, region, want string
	}{
		{"DefaultRegion", "", "us1"},
		{"ConfiguredRegion", "ie1", "ie1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(nil)
			srv := startApp(t, a)
			cfg := testConfig()
			cfg.HomeRegion = tt.region
			cfg.Carriers = []Carrier{{Latency: Latency{Median: time.Millisecond}}}
			s := newSim(t, cfg)
			m, err := s.CreateMessage(acctSID, SendParams{From: fastNumber, To: handset, Body: "hi", StatusCallback: srv.URL + "/status"})
			if err != nil {
				t.Fatal(err)
			}
			got := waitCallbacks(t, a, "/status", 3)
			tokens := map[string]bool{}
			var statuses []string
			for _, r := range got {
				h := r.Header
				if !uuidPattern.MatchString(r.Token()) || tokens[r.Token()] {
					t.Errorf("I-Twilio-Idempotency-Token %q: want a UUID of its own", r.Token())
				}
				tokens[r.Token()] = true
				if h.Get("X-Home-Region") != tt.want || h.Get("User-Agent") != "TwilioProxy/1.1" ||
					h.Get("Content-Type") != "application/x-www-form-urlencoded" || r.Method != http.MethodPost {
					t.Errorf("headers %v: want X-Home-Region %s, User-Agent TwilioProxy/1.1, a form POST", h, tt.want)
				}
				f := r.Form
				status := f.Get("MessageStatus")
				statuses = append(statuses, status)
				if f.Get("MessageSid") != m.SID || f.Get("SmsSid") != m.SID || f.Get("AccountSid") != acctSID ||
					f.Get("From") != fastNumber || f.Get("To") != handset || f.Get("SmsStatus") != status ||
					f.Get("ApiVersion") != "2010-04-01" || f.Has("ErrorCode") {
					t.Errorf("parameters %v: want the message's", f)
				}
				if (status == StatusDelivered) != f.Has("RawDlrDoneDate") {
					t.Errorf("%s callback: RawDlrDoneDate %q; want one on delivered only", status, f.Get("RawDlrDoneDate"))
				}
			}
			// Over the network their order is not guaranteed.
			slices.Sort(statuses)
			if !slices.Equal(statuses, []string{StatusDelivered, StatusSending, StatusSent}) {
				t.Errorf("callbacks for %v, want sending, sent and delivered, no queued", statuses)
			}
		})
	}
}

// callbackSim returns a Sim inside a bubble whose webhooks go to a in
// process, and a's requests.
func callbackSim(t *testing.T, cfg Config, a *app) *Sim {
	cfg.Transport = handlerTransport{a}
	return newSim(t, cfg)
}

// bySID groups callbacks by MessageSid, in the order they arrived.
func bySID(reqs []request) map[string][]request {
	out := map[string][]request{}
	for _, r := range reqs {
		sid := r.Form.Get("MessageSid")
		out[sid] = append(out[sid], r)
	}
	return out
}

// TestStatusCallbacksInOrder: without knobs, each status change is called
// back Delay after it, in order, with failure codes where they apply, to
// the message's URL or its service's.
func TestStatusCallbacksInOrder(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := newApp(nil)
		cfg := carrierConfig(3)
		cfg.Callbacks.Delay = Latency{Median: 2 * time.Second}
		cfg.Accounts[0].Services[0].StatusCallback = "http://app.test/service"
		s := callbackSim(t, cfg, a)
		var sids []string
		for i := range 100 {
			p := SendParams{From: fastNumber, To: fmt.Sprintf("+44207%07d", i), Body: "x", StatusCallback: "http://app.test/own"}
			if i%4 == 0 {
				p.From, p.MessagingServiceSID = "", serviceSID
				if i%8 == 0 {
					p.StatusCallback = ""
				}
			}
			m, err := s.CreateMessage(acctSID, p)
			if err != nil {
				t.Fatal(err)
			}
			sids = append(sids, m.SID)
		}
		time.Sleep(time.Minute)
		synctest.Wait()

		calls := bySID(a.requests())
		outcomes := map[string]int{}
		for i, sid := range sids {
			m, _ := s.Message(sid)
			outcomes[m.Status]++
			got := calls[sid]
			want := m.History[1:] // no callback for the first status
			if len(got) != len(want) {
				t.Errorf("message %d: %d callbacks for history %v", i, len(got), historyOf(m))
				continue
			}
			path := "/own"
			if i%8 == 0 {
				path = "/service"
			}
			// Callbacks of changes made at the same instant (queued and
			// sending, for a service's message with no wait) are due at
			// once and may come in either order, as Twilio's do; the
			// others come in the order of the changes.
			slices.SortStableFunc(got, func(a, b request) int {
				if !a.At.Equal(b.At) {
					return a.At.Compare(b.At)
				}
				return slices.Index(historyOf(m), a.Form.Get("MessageStatus")) - slices.Index(historyOf(m), b.Form.Get("MessageStatus"))
			})
			for j, r := range got {
				f := r.Form
				if f.Get("MessageStatus") != want[j].Status || !r.At.Equal(want[j].At.Add(2*time.Second)) || r.URL != "http://app.test"+path {
					t.Errorf("message %d callback %d: %s at %v to %s; want %s at %v to %s", i, j,
						f.Get("MessageStatus"), r.At, r.URL, want[j].Status, want[j].At.Add(2*time.Second), path)
				}
				code := ""
				if want[j].Status == StatusFailed || want[j].Status == StatusUndelivered {
					code = fmt.Sprint(int(m.ErrorCode))
				}
				if f.Get("ErrorCode") != code {
					t.Errorf("message %d %s callback: ErrorCode %q, want %q", i, want[j].Status, f.Get("ErrorCode"), code)
				}
				if svc := f.Get("MessagingServiceSid"); (i%4 == 0) != (svc == serviceSID) {
					t.Errorf("message %d: MessagingServiceSid %q", i, svc)
				}
			}
		}
		// The seed gives every kind of outcome among these.
		if outcomes[StatusDelivered] == 0 || outcomes[StatusUndelivered] == 0 || outcomes[StatusFailed] == 0 {
			t.Errorf("outcomes %v: want some of each", outcomes)
		}
		// The carriers' failures are alerts about their messages; no
		// webhook failed.
		for _, a := range s.Alerts("") {
			if a.RequestURL != "" || (a.ErrorCode != "30003" && a.ErrorCode != "30004") {
				t.Errorf("alert %+v, want only the carriers' failures", a)
			}
		}
	})
}

// TestDuplicateCallbacks: with duplicate_rate 1 every callback comes twice,
// DuplicateAfter apart, as two requests with their own tokens.
func TestDuplicateCallbacks(t *testing.T) {
	t.Parallel()
	for _, after := range []time.Duration{0, 3 * time.Second} {
		t.Run(fmt.Sprint("After=", after), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				a := newApp(nil)
				cfg := testConfig()
				cfg.Callbacks.DuplicateRate = 1
				cfg.Callbacks.DuplicateAfter = after
				s := callbackSim(t, cfg, a)
				m, err := s.CreateMessage(acctSID, SendParams{From: longCode, To: handset, Body: "twice", StatusCallback: "http://app.test/status"})
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Minute)
				synctest.Wait()

				want := after
				if want == 0 {
					want = time.Second // the default
				}
				m, _ = s.Message(m.SID)
				reqs := a.requests()
				if len(reqs) != 2*(len(m.History)-1) {
					t.Fatalf("%d callbacks for history %v, want each status twice", len(reqs), historyOf(m))
				}
				tokens := map[string]bool{}
				for _, c := range m.History[1:] {
					var got []request
					for _, r := range reqs {
						if r.Form.Get("MessageStatus") == c.Status {
							got = append(got, r)
						}
					}
					if len(got) != 2 {
						t.Errorf("%d %s callbacks, want 2", len(got), c.Status)
						continue
					}
					if got[0].Token() == got[1].Token() {
						t.Errorf("%s: both callbacks have token %s, want a fresh one", c.Status, got[0].Token())
					}
					if string(got[0].Body) != string(got[1].Body) || got[0].Signature() != got[1].Signature() {
						t.Errorf("%s: the duplicate differs: %s / %s", c.Status, got[0].Body, got[1].Body)
					}
					if !got[0].At.Equal(c.At) || got[1].At.Sub(got[0].At) != want {
						t.Errorf("%s at %v: callbacks at %v and %v, want at once and %v later", c.Status, c.At, got[0].At, got[1].At, want)
					}
					tokens[got[0].Token()], tokens[got[1].Token()] = true, true
				}
				if len(tokens) != len(reqs) {
					t.Errorf("%d distinct tokens among %d callbacks", len(tokens), len(reqs))
				}
			})
		})
	}
}

// TestReorderedCallbacks: reorder_rate holds back that share of callbacks
// by ReorderBy, so that the next status's callback arrives first.
func TestReorderedCallbacks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rate         float64
		wantReorders bool
	}{
		{0, false},
		{0.3, true},
		{1, false}, // every callback held back alike: the order stands
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("Rate=", tt.rate), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				a := newApp(nil)
				cfg := testConfig()
				cfg.Carriers = []Carrier{{Latency: Latency{Median: 500 * time.Millisecond}}}
				cfg.Callbacks.ReorderRate = tt.rate
				s := callbackSim(t, cfg, a)
				const n = 300
				var sids []string
				for i := range n {
					m, err := s.CreateMessage(acctSID, SendParams{From: fastNumber, To: handset, Body: fmt.Sprint(i), StatusCallback: "http://app.test/status"})
					if err != nil {
						t.Fatal(err)
					}
					sids = append(sids, m.SID)
				}
				time.Sleep(time.Minute)
				synctest.Wait()

				calls := bySID(a.requests())
				held, total, reordered := 0, 0, 0
				for _, sid := range sids {
					m, _ := s.Message(sid)
					got := calls[sid]
					if len(got) != len(m.History)-1 {
						t.Fatalf("message %s: %d callbacks for history %v", sid, len(got), historyOf(m))
					}
					changed := map[string]time.Time{}
					for _, c := range m.History {
						changed[c.Status] = c.At
					}
					var order []string
					for _, r := range got {
						status := r.Form.Get("MessageStatus")
						order = append(order, status)
						switch delay := r.At.Sub(changed[status]); delay {
						case 0:
						case 2 * time.Second: // the default ReorderBy
							held++
						default:
							t.Errorf("%s callback %v after the change, want 0 or 2s", status, delay)
						}
						total++
					}
					if !slices.Equal(order, historyOf(m)[1:]) {
						reordered++
					}
				}
				share := float64(held) / float64(total)
				if tol := 4 * math.Sqrt(tt.rate*(1-tt.rate)/float64(total)); math.Abs(share-tt.rate) > tol {
					t.Errorf("%.3f of %d callbacks held back, want %v ± %.3f", share, total, tt.rate, tol)
				}
				if (reordered > 0) != tt.wantReorders {
					t.Errorf("%d of %d messages' callbacks arrived out of order; want some: %v", reordered, n, tt.wantReorders)
				}
			})
		})
	}
}

// TestFailedCallbackAlerts: a status callback answered with an error is in
// the debugger log with 11200 and the message's SID.
func TestFailedCallbackAlerts(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := newApp(func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusBadGateway) })
		s := callbackSim(t, testConfig(), a)
		m, err := s.CreateMessage(acctSID, SendParams{From: longCode, To: handset, Body: "x", StatusCallback: "http://app.test/status"})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		alerts := s.Alerts(acctSID)
		if len(alerts) != 3 {
			t.Fatalf("%d alerts, want one for each of 3 callbacks", len(alerts))
		}
		for _, al := range alerts {
			if al.Code() != twilio.CodeHTTPRetrievalFailure || al.ResourceSID != m.SID || al.Status != http.StatusBadGateway || al.RequestURL != "http://app.test/status" {
				t.Errorf("alert %+v: want 11200 for %s, status 502", al, m.SID)
			}
		}
		if n := len(a.requests()); n != 3 {
			t.Errorf("%d requests, want 3: a callback answered 502 is not retried", n)
		}
	})
}
