package sim

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// carrierConfig has overlapping prefixes: +447 is a longer +44.
func carrierConfig(seed int64) Config {
	cfg := testConfig()
	cfg.Seed = seed
	cfg.Carriers = []Carrier{
		{Prefix: "", Latency: Latency{Median: 300 * time.Millisecond}},
		{Prefix: "+44", Latency: Latency{Median: 2 * time.Second, P99: 10 * time.Second}, Outcomes: []Outcome{
			{Status: StatusUndelivered, Code: 30003, Rate: 0.10},
			{Status: StatusFailed, Code: 30004, Rate: 0.05},
		}},
		{Prefix: "+447", Latency: Latency{Median: 500 * time.Millisecond}, Outcomes: []Outcome{
			{Status: StatusUndelivered, Code: 30006, Rate: 0.30},
		}},
	}
	return cfg
}

// outcome is what became of one message, with times relative to its
// creation.
type outcome struct {
	SID     string
	To      string
	Status  string
	Code    twilio.Code
	History []string // status@offset
}

// runCarriers sends n messages to each destination inside a bubble and
// returns what became of them, in creation order.
func runCarriers(t *testing.T, seed int64, n int, dests ...string) []outcome {
	t.Helper()
	var out []outcome
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, carrierConfig(seed))
		var sids []string
		for i := range n {
			for j, d := range dests {
				m, err := s.CreateMessage(acctSID, SendParams{From: fastNumber, To: fmt.Sprintf("%s%07d", d, i*len(dests)+j), Body: "fate"})
				if err != nil {
					t.Fatal(err)
				}
				sids = append(sids, m.SID)
			}
		}
		time.Sleep(time.Minute) // every outcome is in by then
		synctest.Wait()
		for _, sid := range sids {
			m, _ := s.Message(sid)
			o := outcome{SID: m.SID, To: m.To, Status: m.Status, Code: m.ErrorCode}
			for _, c := range m.History {
				o.History = append(o.History, fmt.Sprintf("%s@%v", c.Status, c.At.Sub(m.Created)))
			}
			out = append(out, o)
		}
	})
	return out
}

// TestCarrierOutcomes: the longest matching prefix decides a message's
// fate, at about the configured rates.
func TestCarrierOutcomes(t *testing.T) {
	t.Parallel()
	const n = 2000
	var (
		uk, ukMobile, us []Message
	)
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, carrierConfig(7))
		var sids []string
		for i := range n {
			for _, d := range []string{"+44207", "+44780", "+1555"} {
				m, err := s.CreateMessage(acctSID, SendParams{From: fastNumber, To: fmt.Sprintf("%s%07d", d, i), Body: "fate"})
				if err != nil {
					t.Fatal(err)
				}
				sids = append(sids, m.SID)
			}
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		for _, sid := range sids {
			m, _ := s.Message(sid)
			switch {
			case m.To[:4] == "+447":
				ukMobile = append(ukMobile, m)
			case m.To[:3] == "+44":
				uk = append(uk, m)
			default:
				us = append(us, m)
			}
		}
	})

	tests := []struct {
		name     string
		msgs     []Message
		want     map[string]float64 // "status code" → share
		latency  time.Duration      // median from sent to the receipt
		p99      time.Duration      // 0: every latency is the median
		excluded []string           // outcomes of a shorter prefix that must not occur
	}{
		{"+44", uk, map[string]float64{"undelivered 30003": 0.10, "failed 30004": 0.05, "delivered 0": 0.85}, 2 * time.Second, 10 * time.Second, nil},
		{"+447LongestPrefixWins", ukMobile, map[string]float64{"undelivered 30006": 0.30, "delivered 0": 0.70}, 500 * time.Millisecond, 0, []string{"undelivered 30003", "failed 30004"}},
		{"DefaultRule", us, map[string]float64{"delivered 0": 1}, 300 * time.Millisecond, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.msgs) != n {
				t.Fatalf("%d messages, want %d", len(tt.msgs), n)
			}
			counts := map[string]int{}
			var latencies []time.Duration
			for _, m := range tt.msgs {
				key := fmt.Sprintf("%s %d", m.Status, m.ErrorCode)
				counts[key]++
				checkHistory(t, m)
				if m.Status == StatusDelivered || m.Status == StatusUndelivered {
					latencies = append(latencies, m.Updated.Sub(m.Sent))
				}
			}
			for key, share := range tt.want {
				got := float64(counts[key]) / n
				t.Logf("%s: %.4f", key, got)
				// Four standard deviations of a binomial share.
				tol := 4 * math.Sqrt(share*(1-share)/n)
				if math.Abs(got-share) > tol {
					t.Errorf("%s: share %.4f, want %.2f ± %.4f", key, got, share, tol)
				}
			}
			for key := range counts {
				if _, ok := tt.want[key]; !ok {
					t.Errorf("outcome %q (%d times) is not one of the rule's", key, counts[key])
				}
			}
			for _, key := range tt.excluded {
				if counts[key] != 0 {
					t.Errorf("outcome %q of a shorter prefix happened %d times", key, counts[key])
				}
			}

			slices.Sort(latencies)
			median := latencies[len(latencies)/2]
			if tt.p99 == 0 {
				if latencies[0] != tt.latency || latencies[len(latencies)-1] != tt.latency {
					t.Errorf("latencies from %v to %v, want all %v", latencies[0], latencies[len(latencies)-1], tt.latency)
				}
				return
			}
			if r := float64(median) / float64(tt.latency); r < 0.9 || r > 1.1 {
				t.Errorf("median latency %v, want %v ± 10%%", median, tt.latency)
			}
			over := sort.Search(len(latencies), func(i int) bool { return latencies[i] > tt.p99 })
			if share := float64(len(latencies)-over) / float64(len(latencies)); share < 0.002 || share > 0.025 {
				t.Errorf("%.4f of latencies over the p99 %v, want about 0.01", share, tt.p99)
			}
		})
	}
}

// checkHistory fails unless m's history is one Twilio gives, in order.
func checkHistory(t *testing.T, m Message) {
	t.Helper()
	var want []string
	switch m.Status {
	case StatusDelivered, StatusUndelivered:
		want = []string{StatusQueued, StatusSending, StatusSent, m.Status}
	case StatusFailed:
		want = []string{StatusQueued, StatusFailed}
	default:
		t.Errorf("message %s ended %s", m.SID, m.Status)
		return
	}
	if got := historyOf(m); !slices.Equal(got, want) {
		t.Errorf("message %s: history %v, want %v", m.SID, got, want)
	}
	for i := 1; i < len(m.History); i++ {
		if m.History[i].At.Before(m.History[i-1].At) {
			t.Errorf("message %s: %s at %v before %s at %v", m.SID, m.History[i].Status, m.History[i].At, m.History[i-1].Status, m.History[i-1].At)
		}
	}
	if (m.Status == StatusDelivered) != (m.ErrorCode == 0) {
		t.Errorf("message %s: %s with error code %d", m.SID, m.Status, m.ErrorCode)
	}
	if sent, ok := statusAt(m, StatusSent); ok != !m.Sent.IsZero() || (ok && !sent.Equal(m.Sent)) {
		t.Errorf("message %s: Sent %v, history's sent %v", m.SID, m.Sent, sent)
	}
}

// TestDeterminism: the same seed gives the same SIDs, outcomes and times;
// another seed does not.
func TestDeterminism(t *testing.T) {
	t.Parallel()
	const n = 200
	a := runCarriers(t, 42, n, "+44207", "+44780", "+1555")
	b := runCarriers(t, 42, n, "+44207", "+44780", "+1555")
	c := runCarriers(t, 43, n, "+44207", "+44780", "+1555")
	if len(a) != 3*n {
		t.Fatalf("%d messages, want %d", len(a), 3*n)
	}
	for i := range a {
		if fmt.Sprint(a[i]) != fmt.Sprint(b[i]) {
			t.Fatalf("message %d differs with the same seed:\n%+v\n%+v", i, a[i], b[i])
		}
	}
	sameSID, sameFate := 0, 0
	for i := range a {
		if a[i].SID == c[i].SID {
			sameSID++
		}
		if fmt.Sprint(a[i].History) == fmt.Sprint(c[i].History) && a[i].Code == c[i].Code {
			sameFate++
		}
	}
	if sameSID != 0 || sameFate == len(a) {
		t.Errorf("another seed: %d SIDs and %d fates of %d the same; want different draws", sameSID, sameFate, len(a))
	}
}
