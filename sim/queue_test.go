package sim

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// rateBodies are 1-, 2- and 3-segment bodies, GSM-7 and UCS-2.
var rateBodies = []struct {
	body     string
	segments int
}{
	{"short and plain", 1},
	{strings.Repeat("g", 200), 2}, // GSM-7: 153 + 47
	{strings.Repeat("ж", 150), 3}, // UCS-2: 67 + 67 + 16
	{"ünïcödé ☃", 1},              // UCS-2
	{strings.Repeat("{", 81), 2},  // GSM-7 escapes: 162 septets
	{strings.Repeat("x", 400), 3}, // GSM-7: 153 + 153 + 94
	{strings.Repeat("😀", 36), 2},  // UCS-2 surrogate pairs: 72 units
}

// statusAt returns when m reached status, or false if it never did.
func statusAt(m Message, status string) (time.Time, bool) {
	for _, c := range m.History {
		if c.Status == status {
			return c.At, true
		}
	}
	return time.Time{}, false
}

// TestThroughput: each sender sends its configured segments per second,
// measured from when each message reached sent.
func TestThroughput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		from string
		rate float64
	}{
		{"LongCode", longCode, 1},
		{"TollFree", tollFree, 3},
		{"ShortCode", shortCode, 100},
		{"Custom", customRate, 7.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				s := newSim(t, testConfig())
				start := time.Now()
				// A backlog of 45 s of sending.
				backlog := 0
				var sids []string
				for i := 0; float64(backlog) < 45*tt.rate; i++ {
					b := rateBodies[i%len(rateBodies)]
					m, err := s.CreateMessage(acctSID, SendParams{From: tt.from, To: handset, Body: b.body})
					if err != nil {
						t.Fatalf("message %d: %v", i, err)
					}
					if m.Segments != b.segments {
						t.Fatalf("body %d: %d segments, want %d", i%len(rateBodies), m.Segments, b.segments)
					}
					backlog += m.Segments
					sids = append(sids, m.SID)
				}
				time.Sleep(50 * time.Second)
				synctest.Wait()

				// Segments whose message reached sent within (from, to].
				from, to := start.Add(5*time.Second), start.Add(35*time.Second)
				inWindow := 0.0
				var last time.Time
				for _, sid := range sids {
					m, _ := s.Message(sid)
					sending, ok1 := statusAt(m, StatusSending)
					sent, ok2 := statusAt(m, StatusSent)
					if !ok1 || !ok2 {
						t.Fatalf("message %s: history %v, want sending and sent", sid, m.History)
					}
					if sent.Before(last) {
						t.Errorf("message %s sent at %v, before the one created before it (%v)", sid, sent.Sub(start), last.Sub(start))
					}
					last = sent
					// A message's segments leave one after another while it
					// is sending; the last leaves when it is sent.
					for k := 1; k <= m.Segments; k++ {
						at := sending.Add(sent.Sub(sending) * time.Duration(k) / time.Duration(m.Segments))
						if at.After(from) && !at.After(to) {
							inWindow++
						}
					}
				}
				got := inWindow / 30
				if math.Abs(got-tt.rate) > 0.02*tt.rate {
					t.Errorf("%v segments/s in the 30 s window, want %v ± 2%%", got, tt.rate)
				}
				// The whole backlog drains at the rate too.
				if drained := float64(backlog) / last.Sub(start).Seconds(); math.Abs(drained-tt.rate) > 0.02*tt.rate {
					t.Errorf("%d segments drained in %v: %v/s, want %v ± 2%%", backlog, last.Sub(start), drained, tt.rate)
				}
			})
		})
	}
}

// TestQueueLimit: a backlog beyond QueueLimit refuses a From number's
// message with 21611 and fails a Messaging Service's with 30001.
func TestQueueLimit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.QueueLimit = 10 * time.Second
		s := newSim(t, cfg)

		// 1-segment messages at 1/s: the k-th waits k seconds.
		for k := 0; k <= 10; k++ {
			if _, err := s.CreateMessage(acctSID, SendParams{From: longCode, To: handset, Body: fmt.Sprint(k)}); err != nil {
				t.Fatalf("message %d (waits %ds, within the limit): %v", k, k, err)
			}
		}
		_, err := s.CreateMessage(acctSID, SendParams{From: longCode, To: handset, Body: "eleven"})
		var re *RestError
		if !errors.As(err, &re) || re.Code != twilio.CodeFromQueueFull || re.Status != http.StatusBadRequest {
			t.Fatalf("message waiting 11 s: error %v, want 400 with 21611", err)
		}
		if n := len(s.Messages(acctSID)); n != 11 {
			t.Errorf("%d messages, want 11: the refused one is not created", n)
		}

		// The service's pool has two numbers: 22 fit, the 23rd overflows.
		var sids []string
		for k := range 23 {
			m, err := s.CreateMessage(acctSID, SendParams{MessagingServiceSID: serviceSID, To: handset2, Body: fmt.Sprint(k)})
			if err != nil {
				t.Fatalf("service message %d: %v; want it accepted", k, err)
			}
			if m.Status != StatusAccepted {
				t.Errorf("service message %d created %s, want accepted", k, m.Status)
			}
			sids = append(sids, m.SID)
		}
		synctest.Wait()
		for k, sid := range sids {
			m, _ := s.Message(sid)
			statuses := historyOf(m)
			if k < 22 {
				if m.Status == StatusFailed {
					t.Errorf("service message %d failed (%v), want it waiting its turn", k, statuses)
				}
				continue
			}
			if m.Status != StatusFailed || m.ErrorCode != twilio.CodeQueueOverflow ||
				!slices.Equal(statuses, []string{StatusAccepted, StatusQueued, StatusFailed}) {
				t.Errorf("service message %d: %s %d %v, want failed 30001 after accepted, queued", k, m.Status, m.ErrorCode, statuses)
			}
		}

		// Once the backlog has drained, the number takes messages again.
		time.Sleep(12 * time.Second)
		if _, err := s.CreateMessage(acctSID, SendParams{From: longCode, To: handset, Body: "later"}); err != nil {
			t.Errorf("after the backlog drained: %v", err)
		}
	})
}

func historyOf(m Message) []string {
	var out []string
	for _, c := range m.History {
		out = append(out, c.Status)
	}
	return out
}

// TestValidityPeriod: a message that would wait longer than its validity
// fails with 30036 when it expires, and takes no turn; one that would not
// is sent.
func TestValidityPeriod(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, testConfig())
		start := time.Now()
		for k := range 10 { // a 10 s backlog at 1/s
			if _, err := s.CreateMessage(acctSID, SendParams{From: longCode, To: handset, Body: fmt.Sprint(k)}); err != nil {
				t.Fatal(err)
			}
		}
		expiring, err := s.CreateMessage(acctSID, SendParams{From: longCode, To: handset, Body: "expires", ValidityPeriod: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		lasting, err := s.CreateMessage(acctSID, SendParams{From: longCode, To: handset, Body: "lasts", ValidityPeriod: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}

		time.Sleep(5*time.Second - time.Nanosecond)
		synctest.Wait()
		if m, _ := s.Message(expiring.SID); m.Status != StatusQueued {
			t.Errorf("just before its validity ends: %s, want queued", m.Status)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		m, _ := s.Message(expiring.SID)
		if m.Status != StatusFailed || m.ErrorCode != twilio.CodeValidityPeriodExpired || !m.Updated.Equal(start.Add(5*time.Second)) {
			t.Errorf("at created+5s: %s %d at %v, want failed 30036 at 5s", m.Status, m.ErrorCode, m.Updated.Sub(start))
		}
		if !slices.Equal(historyOf(m), []string{StatusQueued, StatusFailed}) || !m.Sent.IsZero() {
			t.Errorf("expired message history %v, sent %v: want queued, failed and never sent", historyOf(m), m.Sent)
		}

		time.Sleep(20 * time.Second)
		synctest.Wait()
		m, _ = s.Message(lasting.SID)
		// It takes the turn the expired message did not: sending at 10 s.
		sending, _ := statusAt(m, StatusSending)
		if m.Status != StatusDelivered || sending.Sub(start) != 10*time.Second {
			t.Errorf("message within its validity: %s, sending at %v; want delivered, sending at 10s", m.Status, sending.Sub(start))
		}
	})
}

// TestStickySender: a sticky service sends to a recipient from the same
// number; a plain one spreads its messages over the pool.
func TestStickySender(t *testing.T) {
	t.Parallel()
	for _, sticky := range []bool{false, true} {
		t.Run(fmt.Sprint("Sticky=", sticky), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig()
				cfg.Accounts[0].Services[0].Sticky = sticky
				s := newSim(t, cfg)
				froms := map[string]int{}
				for k := range 10 {
					m, err := s.CreateMessage(acctSID, SendParams{MessagingServiceSID: serviceSID, To: handset, Body: fmt.Sprint(k)})
					if err != nil {
						t.Fatal(err)
					}
					froms[m.From]++
				}
				if sticky && len(froms) != 1 {
					t.Errorf("sticky service sent from %v, want one number", froms)
				}
				if !sticky && (froms[poolA] != 5 || froms[poolB] != 5) {
					t.Errorf("plain service sent from %v, want 5 from each number of the pool", froms)
				}
			})
		})
	}
}
