package switchboard

import (
	"fmt"
	"math"
	"time"
)

// DashboardQuery asks for the dashboard's series over [Since, Until).
type DashboardQuery struct {
	Since, Until time.Time
	// Step is the width of one bucket; zero chooses one (DashboardStep).
	Step time.Duration
}

// DashboardStep is the bucket width for a range: the fewest whole minutes
// that cut it into at most MaxDashboardBuckets buckets, the last one
// possibly shorter.
func DashboardStep(r time.Duration) time.Duration {
	if r <= 0 {
		return time.Minute
	}
	return max(time.Minute, ceilDiv(ceilDiv(r, MaxDashboardBuckets), time.Minute)*time.Minute)
}

// ceilDiv is a/b rounded up, for positive a and b, without overflow.
func ceilDiv(a, b time.Duration) time.Duration {
	q := a / b
	if a%b != 0 {
		q++
	}
	return q
}

// Buckets resolves q: its range cut to whole minutes (Since down, Until
// up), its step (DashboardStep of that range when q.Step is zero) and how
// many buckets of it the range holds, the last one possibly shorter. It
// refuses, with ErrInvalid, a missing or empty range, one longer than
// MaxDashboardRange, and a step that is not a whole number of minutes,
// is longer than MaxDashboardRange or makes more than
// MaxDashboardBuckets buckets. A caller that wants the same buckets from
// one refresh to the next aligns Since to the step.
func (q DashboardQuery) Buckets() (since, until time.Time, step time.Duration, n int, err error) {
	if q.Since.IsZero() || q.Until.IsZero() {
		return since, until, 0, 0, fmt.Errorf("%w: a dashboard needs a since and an until", ErrInvalid)
	}
	if !q.Since.Before(q.Until) {
		return since, until, 0, 0, fmt.Errorf("%w: empty dashboard range: since %s is not before until %s",
			ErrInvalid, q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	}
	if q.Until.Sub(q.Since) > MaxDashboardRange {
		return since, until, 0, 0, fmt.Errorf("%w: dashboard range over %s", ErrInvalid, MaxDashboardRange)
	}
	since = q.Since.UTC().Truncate(time.Minute)
	until = q.Until.UTC().Truncate(time.Minute)
	if until.Before(q.Until) {
		until = until.Add(time.Minute)
	}
	r := until.Sub(since)
	step = q.Step
	switch {
	case step == 0:
		step = DashboardStep(r)
	case step < time.Minute || step%time.Minute != 0 || step > MaxDashboardRange:
		return since, until, 0, 0, fmt.Errorf("%w: dashboard step %s is not a whole number of minutes up to %s",
			ErrInvalid, q.Step, MaxDashboardRange)
	}
	n64 := ceilDiv(r, step)
	if n64 > MaxDashboardBuckets {
		return since, until, 0, 0, fmt.Errorf("%w: dashboard step %s makes %d buckets, over %d",
			ErrInvalid, step, n64, MaxDashboardBuckets)
	}
	return since, until, step, int(n64), nil
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
	AckP50, AckP95, AckP99 []float64
	// Routes are the delivery signals per route.
	Routes []RouteSeries
	// QueueDepth is the events waiting for delivery (pending or retrying)
	// and QueueLag how long, in seconds, the oldest due one had waited:
	// the highest of the samples every process took in the bucket, about
	// one a minute.
	QueueDepth, QueueLag []float64
	// TwilioCodes counts, over the whole range, the Twilio error codes of
	// delivery attempts (what Twilio would have logged), most first; code
	// 0 counts together the rarest past MaxDashboardKeys.
	TwilioCodes []CodeCount

	// Pools are the outbound signals per pool.
	Pools []PoolSeries
	// Templates and Countries break outbound delivery down by message
	// template and by the recipient's country (an ISO 3166 code found
	// from the To number, or "unknown"), most messages first; OtherKey,
	// last, counts together the rarest past MaxDashboardKeys.
	Templates, Countries []MessageBreakdown
	// MessageStatuses counts the status changes applied in the range by
	// status, most first; MessageCodes the error codes of failed or
	// undelivered messages, those refused at send included, most first
	// (code 0 as for TwilioCodes).
	MessageStatuses []KeyCount
	MessageCodes    []CodeCount
	// OptOuts is how many numbers opted out in the range.
	OptOuts int64
	// OptOutSeries is opt-outs per bucket (a count, not a rate).
	OptOutSeries []float64
	// DebuggerCodes counts the error codes of Twilio's Debugger webhooks
	// (see DebuggerAlert) received in the range, most first (code 0 as
	// for TwilioCodes).
	DebuggerCodes []CodeCount
}

// RouteSeries is one route's delivery over a dashboard's buckets.
type RouteSeries struct {
	Route string
	// Attempts and Failed are delivery attempts per second; SuccessRate
	// is the share of attempts the app answered 2xx (0..1, NaN for none).
	Attempts, Failed, SuccessRate []float64
	// P50 and P95 are the attempts' latency in milliseconds.
	P50, P95 []float64
	// Dead is events dead-lettered per bucket (a count, not a rate).
	Dead []float64
	// Totals over the range.
	TotalAttempts, TotalFailed, TotalDead int64
	TotalP50, TotalP95                    time.Duration
}

// PoolSeries is one outbound pool over a dashboard's buckets.
type PoolSeries struct {
	Pool string
	// Sent is messages handed to Twilio per second; Throttled Twilio's
	// 429 answers per second.
	Sent, Throttled []float64
	// DeliveryRate is the share of outcomes that were deliveries (0..1,
	// NaN for none): delivered, against failed or undelivered, a message
	// refused at send included; P50 and P95 the time from sent to
	// delivered, in milliseconds.
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

// RollupRetention is how long the per-minute aggregates (see Store.RollUp)
// and samples are kept: longer than MaxDashboardRange, and independent of
// the retention of the rows they were computed from.
const RollupRetention = 35 * 24 * time.Hour

// MaxDashboardKeys bounds the keys of a breakdown whose keys come from
// outside (templates, error codes): past it, the rarest are counted
// together under OtherKey (a code under 0).
const MaxDashboardKeys = 100

// OtherKey is the key of what MaxDashboardKeys leaves out.
const OtherKey = "other"

// RollUpResult is what one Store.RollUp pass did.
type RollUpResult struct {
	// From and Until are the minutes the pass recomputed: [From, Until).
	From, Until time.Time
	// Final is the first minute still open after the pass: every minute
	// before it is final, and no pass computes it again.
	Final time.Time
	// Behind reports that the pass stopped short of now, with minutes
	// left to compute (after a store upgraded with facts to roll up, or a
	// long stop): another pass should follow at once.
	Behind bool
}

// SampleSeries names what a Sample measures: what only the processes
// see, not the store.
type SampleSeries string

// The series of samples. A counter's samples add up across processes and
// minutes; a gauge's take the highest.
const (
	// SampleAck is the time to answer Twilio's webhooks: Latency holds
	// the answers of the minute and Value their count. Key is empty.
	SampleAck SampleSeries = "ack"
	// SampleThrottled counts Twilio's 429 answers to sends, by pool (Key).
	SampleThrottled SampleSeries = "throttled"
	// SampleUnrecorded counts webhooks answered but not recorded (over the
	// recording limit), by outcome (Key): duplicate or rejected.
	SampleUnrecorded SampleSeries = "unrecorded"
	// SampleQueueDepth is a gauge: the events waiting for delivery.
	SampleQueueDepth SampleSeries = "queue_depth"
	// SampleQueueLag is a gauge: how long, in seconds, the oldest due
	// delivery had waited.
	SampleQueueLag SampleSeries = "queue_lag"
)

// Gauge reports whether s is a gauge: a level, not a count.
func (s SampleSeries) Gauge() bool { return s == SampleQueueDepth || s == SampleQueueLag }

// Valid reports whether s is one of the series above.
func (s SampleSeries) Valid() bool {
	switch s {
	case SampleAck, SampleThrottled, SampleUnrecorded, SampleQueueDepth, SampleQueueLag:
		return true
	}
	return false
}

// Sample is one process's measure of one series over one minute.
type Sample struct {
	Minute time.Time // the minute's start
	// Node names the process: samples of one minute from several
	// processes are combined, each node's counted once.
	Node    string
	Series  SampleSeries
	Key     string
	Value   float64
	Latency LatencyHistogram // SampleAck only
}

// Bounds of a Sample's strings.
const (
	MaxSampleNode = 128
	MaxSampleKey  = 128
)

// MaxSamples bounds the samples of one Store.RecordSamples call.
const MaxSamples = 10_000

// Validate refuses, with ErrInvalid, a sample Store.RecordSamples does not
// take: its minute not a whole minute, an empty or overlong node, an
// unknown series, an overlong key, a value that is negative or not
// finite, or a latency histogram of another shape than
// NewLatencyHistogram's.
func (s Sample) Validate() error {
	switch {
	case s.Minute.IsZero() || !s.Minute.Equal(s.Minute.Truncate(time.Minute)):
		return fmt.Errorf("%w: sample minute %s is not the start of a minute", ErrInvalid, s.Minute)
	case s.Node == "" || len(s.Node) > MaxSampleNode:
		return fmt.Errorf("%w: sample node of %d bytes (1 to %d)", ErrInvalid, len(s.Node), MaxSampleNode)
	case !s.Series.Valid():
		return fmt.Errorf("%w: unknown sample series %q", ErrInvalid, s.Series)
	case len(s.Key) > MaxSampleKey:
		return fmt.Errorf("%w: sample key of %d bytes (at most %d)", ErrInvalid, len(s.Key), MaxSampleKey)
	case math.IsNaN(s.Value) || math.IsInf(s.Value, 0) || s.Value < 0:
		return fmt.Errorf("%w: sample value %v", ErrInvalid, s.Value)
	case s.Latency != nil && len(s.Latency) != len(LatencyBuckets)+1:
		return fmt.Errorf("%w: sample latency histogram of %d buckets", ErrInvalid, len(s.Latency))
	}
	return nil
}
