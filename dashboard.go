package switchboard

import (
	"math"
	"time"
)

// DashboardQuery asks for the dashboard's series over [Since, Until).
type DashboardQuery struct {
	Since, Until time.Time
	// Step is the width of one bucket; zero chooses one (DashboardStep).
	Step time.Duration
}

// DashboardStep is the bucket width for a range: whole minutes, so that a
// range has at most MaxDashboardBuckets of them.
func DashboardStep(r time.Duration) time.Duration {
	step := time.Minute
	for r/step > MaxDashboardBuckets {
		step += time.Minute
	}
	return step
}

// MaxDashboardBuckets bounds the points of one series.
const MaxDashboardBuckets = 360

// MaxDashboardRange is the longest range a dashboard covers.
const MaxDashboardRange = 31 * 24 * time.Hour

// Dashboard is the golden signals over a range, read from the store's
// per-minute aggregates. Series hold one value per bucket (Times); a
// rate is per second over its bucket; NaN means no data in that bucket
// (a latency or ratio of nothing).
type Dashboard struct {
	Since, Until time.Time
	Step         time.Duration
	Times        []time.Time // each bucket's start

	// Webhooks received per second, by what was answered: accepted (a new
	// event), duplicate (answered like its original), rejected (403).
	Accepted, Duplicate, Rejected []float64
	// AckP50 and AckP99 are the time to answer Twilio, in milliseconds, as
	// the processes that answered measured it.
	AckP50, AckP99 []float64
	// Routes are the delivery signals per route.
	Routes []RouteSeries
	// QueueDepth is the events waiting for delivery (pending or retrying)
	// and QueueLag how long, in seconds, the oldest due one had waited,
	// as sampled once a minute.
	QueueDepth, QueueLag []float64
	// TwilioCodes counts, over the whole range, the Twilio error codes of
	// delivery attempts (what Twilio would have logged), most first.
	TwilioCodes []CodeCount

	// Pools are the outbound signals per pool.
	Pools []PoolSeries
	// Templates and Countries break outbound delivery down by message
	// template and by the recipient's country (from the To prefix).
	Templates, Countries []MessageBreakdown
	// MessageStatuses counts the status changes recorded in the range by
	// status; MessageCodes the error codes of failed or undelivered
	// messages, most first.
	MessageStatuses []KeyCount
	MessageCodes    []CodeCount
	// OptOuts is how many numbers opted out in the range.
	OptOuts int64
}

// RouteSeries is one route's delivery over a dashboard's buckets.
type RouteSeries struct {
	Route string
	// Attempts and Failed are delivery attempts per second; SuccessRate
	// is the share of attempts the app answered 2xx (0..1, NaN for none).
	Attempts, Failed, SuccessRate []float64
	// P50 and P95 are the attempts' latency in milliseconds.
	P50, P95 []float64
	// Totals over the range.
	TotalAttempts, TotalFailed int64
	TotalP50, TotalP95         time.Duration
}

// PoolSeries is one outbound pool over a dashboard's buckets.
type PoolSeries struct {
	Pool string
	// Sent is messages handed to Twilio per second; Throttled Twilio's
	// 429 answers per second.
	Sent, Throttled []float64
	// DeliveryRate is the share of final statuses that were "delivered"
	// (0..1, NaN for none); P50 and P95 the time from sent to delivered,
	// in milliseconds.
	DeliveryRate, P50, P95 []float64
	// Totals over the range.
	TotalSent, TotalDelivered, TotalFailed, TotalThrottled int64
}

// MessageBreakdown is outbound delivery over a range for one template or
// country.
type MessageBreakdown struct {
	Key                     string
	Sent, Delivered, Failed int64
	P50, P95                time.Duration // sent to delivered
}

// CodeCount is how often an error code occurred.
type CodeCount struct {
	Code  int
	Count int64
}

// KeyCount is how often something occurred.
type KeyCount struct {
	Key   string
	Count int64
}

// LatencyBuckets are the upper bounds of a LatencyHistogram's buckets:
// about 26% apart, from 1 ms to 2 minutes; the last bucket takes anything
// longer. Quantiles read from them are within one bucket's width.
var LatencyBuckets = func() []time.Duration {
	var b []time.Duration
	for d := float64(time.Millisecond); d < float64(2*time.Minute); d *= math.Pow(2, 1.0/3) {
		b = append(b, time.Duration(d))
	}
	return append(b, 2*time.Minute)
}()

// LatencyHistogram counts durations by LatencyBuckets, plus one bucket
// for anything longer. Histograms of the same shape add, so per-minute
// ones make a range's.
type LatencyHistogram []int64

// NewLatencyHistogram returns an empty histogram.
func NewLatencyHistogram() LatencyHistogram { return make(LatencyHistogram, len(LatencyBuckets)+1) }

// Observe counts d.
func (h LatencyHistogram) Observe(d time.Duration) {
	lo, hi := 0, len(LatencyBuckets)
	for lo < hi { // the first bound at or above d
		mid := (lo + hi) / 2
		if LatencyBuckets[mid] < d {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	h[lo]++
}

// Add adds o's counts to h; a histogram of another shape (stored by an
// older version) is ignored rather than misread.
func (h LatencyHistogram) Add(o LatencyHistogram) {
	if len(o) != len(h) {
		return
	}
	for i, n := range o {
		h[i] += n
	}
}

// Count is how many durations h holds.
func (h LatencyHistogram) Count() int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	return n
}

// Quantile is the upper bound of the bucket holding the q-th quantile
// (0 < q ≤ 1); -1 for an empty histogram.
func (h LatencyHistogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return -1
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i, c := range h {
		seen += c
		if seen >= rank {
			if i >= len(LatencyBuckets) {
				return LatencyBuckets[len(LatencyBuckets)-1]
			}
			return LatencyBuckets[i]
		}
	}
	return LatencyBuckets[len(LatencyBuckets)-1]
}

// BreakerState is one delivery target's circuit breaker as this process
// sees it: "closed", "half-open" or "open".
type BreakerState struct {
	Target string // scheme and host
	State  string
}

// PoolState is one outbound pool as this process sees it now.
type PoolState struct {
	Pool       string
	Rate       float64 // configured segments per second per sender
	Senders    int
	Brownout   bool          // marketing paused
	QueueDelay time.Duration // how long the send waiting longest has been due
}
