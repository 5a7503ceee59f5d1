package traffic

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Meter counts a run's requests as they end, for a live view of a long
// run (see Options.Meter). Workers keep their own tallies for the report;
// a Meter adds a few atomic additions per request and never blocks them,
// and reading it (Tally) never holds them up.
type Meter struct {
	accepted, errors atomic.Int64
	latency          [latencyBuckets]atomic.Int64
}

// Latencies are counted in buckets a sixteenth of their size wide:
// exact below 8µs, then 8 buckets for each power of two of microseconds,
// up to 2^40µs (12 days). A percentile read from them is within 1/16th
// (6.25%) of the exact one, which is plenty for a live view; the report's
// percentiles are exact.
const (
	linearBuckets  = 8
	subBuckets     = 8
	latencyBuckets = linearBuckets + subBuckets*38
)

// bucket returns the bucket of a latency of us microseconds.
func bucket(us int64) int {
	if us < linearBuckets {
		return int(max(us, 0))
	}
	e := bits.Len64(uint64(us)) - 1 // 2^e <= us < 2^(e+1), e >= 3
	i := linearBuckets + (e-3)*subBuckets + int(us>>(e-3))&(subBuckets-1)
	return min(i, latencyBuckets-1)
}

// bucketMid returns the middle of bucket i, in microseconds.
func bucketMid(i int) float64 {
	if i < linearBuckets {
		return float64(i)
	}
	e := (i-linearBuckets)/subBuckets + 3
	sub := (i - linearBuckets) % subBuckets
	width := int64(1) << (e - 3)
	return float64(int64(subBuckets+sub)*width) + float64(width)/2
}

// Answer counts a request answered in latency: accepted if Twilio would
// accept the answer, an error otherwise.
func (m *Meter) Answer(latency time.Duration, accepted bool) {
	if accepted {
		m.accepted.Add(1)
	} else {
		m.errors.Add(1)
	}
	m.latency[bucket(latency.Microseconds())].Add(1)
}

// NoAnswer counts a request that got no answer: an error, of no latency.
func (m *Meter) NoAnswer() { m.errors.Add(1) }

// Tally is a Meter's counts at one moment.
type Tally struct {
	// Accepted and Errors count the requests ended so far: answers Twilio
	// would accept, and requests it would log an error for.
	Accepted, Errors int64
	latency          [latencyBuckets]int64
}

// Tally reads the counts. Requests ending meanwhile may be counted in
// some of them and not yet in others; the next Tally has them all.
func (m *Meter) Tally() Tally {
	t := Tally{Accepted: m.accepted.Load(), Errors: m.errors.Load()}
	for i := range m.latency {
		t.latency[i] = m.latency[i].Load()
	}
	return t
}

// Interval is what happened between two tallies.
type Interval struct {
	// Rate is the requests ended per second.
	Rate float64
	// P50 and P99 are the latencies of the answers, within 1/16th; zero
	// when there was none.
	P50, P99 time.Duration
}

// Since returns what happened between prev and t, d apart.
func (t Tally) Since(prev Tally, d time.Duration) Interval {
	var iv Interval
	if d > 0 {
		iv.Rate = float64(t.Accepted+t.Errors-prev.Accepted-prev.Errors) / d.Seconds()
	}
	var counts [latencyBuckets]int64
	var n int64
	for i := range counts {
		counts[i] = max(t.latency[i]-prev.latency[i], 0)
		n += counts[i]
	}
	iv.P50, iv.P99 = bucketQuantile(&counts, n, 0.50), bucketQuantile(&counts, n, 0.99)
	return iv
}

// bucketQuantile returns the nearest-rank p-quantile of n latencies
// counted in buckets, or zero for none.
func bucketQuantile(counts *[latencyBuckets]int64, n int64, p float64) time.Duration {
	if n == 0 {
		return 0
	}
	rank := max(int64(float64(n)*p+0.999999), 1) // ceil, without float error for exact ranks
	var seen int64
	for i, c := range counts {
		if seen += c; seen >= rank {
			return time.Duration(bucketMid(i) * float64(time.Microsecond))
		}
	}
	return 0
}
