package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"testing/synctest"
	"time"
)

// twilioError is Twilio's error shape.
type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func decodeError(t *testing.T, rec *httptest.ResponseRecorder) twilioError {
	t.Helper()
	var e twilioError
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", rec.Body, err)
	}
	return e
}

// TestConcurrencyLimit: with N requests of an account in flight, the next
// is refused at once with 429 and 20429, and not processed; the N succeed,
// and once they are done requests are taken again.
func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	const latency = 2 * time.Second
	for _, n := range []int{1, 5} {
		t.Run(fmt.Sprint("N=", n), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig()
				cfg.ConcurrencyLimit = n
				cfg.APILatency = latency
				s := newSim(t, cfg)
				h := s.Handler()
				create := func(body string) *http.Request {
					return apiRequest(http.MethodPost, "/2010-04-01/Accounts/"+acctSID+"/Messages.json", acctSID, acctToken,
						url.Values{"From": {fastNumber}, "To": {handset}, "Body": {body}})
				}
				start := time.Now()
				type answer struct {
					rec *httptest.ResponseRecorder
					at  time.Time
				}
				answers := make(chan answer, n)
				for i := range n {
					go func() {
						rec := serve(h, create(fmt.Sprint("in flight ", i)))
						answers <- answer{rec, time.Now()}
					}()
				}
				synctest.Wait() // all n are held by the API latency

				rec := serve(h, create("one too many"))
				if rec.Code != http.StatusTooManyRequests {
					t.Fatalf("request %d: %d %s, want 429", n+1, rec.Code, rec.Body)
				}
				if e := decodeError(t, rec); e.Code != 20429 || e.Status != 429 || e.MoreInfo != "https://www.twilio.com/docs/errors/20429" || e.Message == "" {
					t.Errorf("error %+v, want Twilio's shape with code 20429", e)
				}
				if time.Since(start) != 0 {
					t.Errorf("refused after %v, want at once", time.Since(start))
				}
				// Other accounts have limits of their own.
				other := make(chan *httptest.ResponseRecorder, 1)
				go func() {
					other <- serve(h, apiRequest(http.MethodGet, "/2010-04-01/Accounts/"+otherSID+"/Messages.json", otherSID, otherTok, nil))
				}()

				for range n {
					a := <-answers
					if a.rec.Code != http.StatusCreated {
						t.Errorf("request in flight: %d %s, want 201", a.rec.Code, a.rec.Body)
					}
					if a.at.Sub(start) != latency {
						t.Errorf("request in flight answered after %v, want %v", a.at.Sub(start), latency)
					}
				}
				if rec := <-other; rec.Code != http.StatusOK {
					t.Errorf("other account's request: %d %s, want 200", rec.Code, rec.Body)
				}
				msgs := s.Messages(acctSID)
				if len(msgs) != n {
					t.Errorf("%d messages created, want %d: the refused request is not processed", len(msgs), n)
				}
				for _, m := range msgs {
					if m.Body == "one too many" {
						t.Errorf("the refused request created %s", m.SID)
					}
				}

				if rec := serve(h, create("after")); rec.Code != http.StatusCreated {
					t.Errorf("after the others finished: %d %s, want 201", rec.Code, rec.Body)
				}
				if got := time.Since(start); got != 2*latency {
					t.Errorf("last request answered at %v, want %v", got, 2*latency)
				}
			})
		})
	}
}

// TestAuthBeforeLimit: a request with bad credentials is refused 401 even
// when the account is at its limit, and does not take a place.
func TestAuthBeforeLimit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.ConcurrencyLimit = 1
		cfg.APILatency = time.Second
		s := newSim(t, cfg)
		h := s.Handler()
		list := "/2010-04-01/Accounts/" + acctSID + "/Messages.json"
		for range 3 {
			if rec := serve(h, apiRequest(http.MethodGet, list, acctSID, "nottheone", nil)); rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("bad password: %d (WWW-Authenticate %q), want 401 with a challenge", rec.Code, rec.Header().Get("WWW-Authenticate"))
			}
		}
		if rec := serve(h, apiRequest(http.MethodGet, list, acctSID, acctToken, nil)); rec.Code != http.StatusOK {
			t.Errorf("good request after refused ones: %d, want 200", rec.Code)
		}
	})
}

// TestListMessagesHTTP: paging by next_page_uri and the DateSent filters.
func TestListMessagesHTTP(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, testConfig())
		h := s.Handler()
		for i := range 5 {
			if _, err := s.CreateMessage(acctSID, SendParams{From: longCode, To: handset, Body: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(3500 * time.Millisecond) // 0, 1 and 2 are sent at 1, 2 and 3 s
		synctest.Wait()
		start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

		list := func(q url.Values) []string {
			t.Helper()
			var bodies []string
			next := "/2010-04-01/Accounts/" + acctSID + "/Messages.json?" + q.Encode()
			for pages := 0; next != ""; pages++ {
				if pages > 10 {
					t.Fatalf("more than 10 pages")
				}
				rec := serve(h, apiRequest(http.MethodGet, next, acctSID, acctToken, nil))
				if rec.Code != http.StatusOK {
					t.Fatalf("GET %s: %d %s", next, rec.Code, rec.Body)
				}
				var page struct {
					Messages []struct {
						Body string `json:"body"`
					} `json:"messages"`
					Next *string `json:"next_page_uri"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
					t.Fatal(err)
				}
				for _, m := range page.Messages {
					bodies = append(bodies, m.Body)
				}
				next = ""
				if page.Next != nil {
					next = *page.Next
				}
			}
			return bodies
		}
		tests := []struct {
			name string
			q    url.Values
			want string
		}{
			{"All", url.Values{"PageSize": {"2"}}, "[4 3 2 1 0]"},
			{"SentDay", url.Values{"PageSize": {"1"}, "DateSent": {"2000-01-01"}}, "[2 1 0]"},
			{"SentOtherDay", url.Values{"DateSent": {"2000-01-02"}}, "[]"},
			{"SentBefore", url.Values{"DateSent<": {start.Add(2500 * time.Millisecond).Format(time.RFC3339Nano)}}, "[1 0]"},
			{"SentAfter", url.Values{"DateSent>": {start.Add(1500 * time.Millisecond).Format(time.RFC3339Nano)}}, "[2 1]"},
		}
		for _, tt := range tests {
			if got := fmt.Sprint(list(tt.q)); got != tt.want {
				t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
			}
		}
		rec := serve(h, apiRequest(http.MethodGet, "/2010-04-01/Accounts/"+acctSID+"/Messages.json", acctSID, acctToken, url.Values{"DateSent": {"yesterday"}}))
		if e := decodeError(t, rec); rec.Code != http.StatusBadRequest || e.Code != 20001 {
			t.Errorf("bad DateSent: %d %+v, want 400 with 20001", rec.Code, e)
		}
	})
}
