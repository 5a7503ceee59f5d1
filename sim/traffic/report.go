package traffic

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// Report is the outcome of a run: what Twilio would have seen of the
// target.
//
// Every request sent is counted once among Accepted, Codes and
// Interrupted, and once among Statuses, NoAnswer and Interrupted:
//
//	Sent = Accepted + sum(Codes) + Interrupted
//	Sent = sum(Statuses) + NoAnswer + Interrupted
type Report struct {
	// Sent is the number of requests sent.
	Sent int
	// Accepted counts the answers Twilio would accept, logging nothing.
	Accepted int
	// Codes counts the requests Twilio would log an error for, by the
	// error's code: answers it refuses (11200 for a status, 12300 for a
	// Content-Type, 12100 for a document, 11750 for a size, 13807 for a
	// client notification) and requests with no answer (11205 when the
	// connection fails or RequestTimeout passes, 11206 for a broken
	// answer).
	Codes map[twilio.Code]int
	// Statuses counts the answers by HTTP status, accepted or not.
	Statuses map[int]int
	// NoAnswer counts the requests without a complete answer, each also
	// counted in Codes.
	NoAnswer int
	// Interrupted counts the requests cut short because the run's context
	// ended: not the target's doing, so counted in no code.
	Interrupted int
	// Elapsed is from the first request to the last answer.
	Elapsed time.Duration
	// Throughput is Accepted answers per second of Elapsed.
	Throughput float64

	// Latencies from sending a request to reading its answer, over the
	// requests that got one, accepted or not. Percentiles are exact up to
	// MaxSamples answers and estimated from a uniform sample beyond; Max
	// is always exact.
	P50, P95, P99, Max time.Duration
}

// Acknowledged returns the number of answers with a 2xx status, whether or
// not Twilio would accept their body: the requests an endpoint that stores
// before answering has committed to.
func (r *Report) Acknowledged() int {
	n := 0
	for status, count := range r.Statuses {
		if status >= 200 && status <= 299 {
			n += count
		}
	}
	return n
}

// String returns the report in two lines: the counts, then throughput and
// latency. Codes and statuses are listed in ascending order as code×count;
// counts that are zero are left out.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent %d: accepted %d, ", r.Sent, r.Accepted)
	if len(r.Codes) == 0 {
		b.WriteString("no Twilio errors")
	} else {
		b.WriteString("Twilio errors")
		writeCounts(&b, r.Codes)
	}
	b.WriteString("; HTTP")
	if len(r.Statuses) == 0 {
		b.WriteString(" none")
	}
	writeCounts(&b, r.Statuses)
	if r.NoAnswer > 0 {
		fmt.Fprintf(&b, ", no answer %d", r.NoAnswer)
	}
	if r.Interrupted > 0 {
		fmt.Fprintf(&b, ", interrupted %d", r.Interrupted)
	}
	fmt.Fprintf(&b, "\nin %v: %.1f accepted/s; ", round(r.Elapsed), r.Throughput)
	if len(r.Statuses) == 0 {
		b.WriteString("latency n/a (no answers)")
	} else {
		fmt.Fprintf(&b, "latency p50 %v p95 %v p99 %v max %v", round(r.P50), round(r.P95), round(r.P99), round(r.Max))
	}
	return b.String()
}

// writeCounts writes " key×count" for each key of counts, in ascending
// order.
func writeCounts[K ~int](b *strings.Builder, counts map[K]int) {
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(b, " %d×%d", int(k), counts[k])
	}
}

// Compare returns a few lines setting the report of a run against the
// target beside that of the same load against the reference server: both
// throughputs and latencies, and the target's throughput as a percentage of
// the reference's.
func Compare(ref, target *Report) string {
	var b strings.Builder
	line := func(name string, r *Report) {
		fmt.Fprintf(&b, "%-9s %10.1f accepted/s  p50 %-10v p99 %v\n", name, r.Throughput, round(r.P50), round(r.P99))
	}
	line("reference", ref)
	line("target", target)
	if ref.Throughput > 0 {
		fmt.Fprintf(&b, "target/reference throughput: %.1f%%\n", 100*target.Throughput/ref.Throughput)
	} else {
		b.WriteString("target/reference throughput: n/a (reference had no throughput)\n")
	}
	return b.String()
}

// round shortens a duration for display without hiding sub-millisecond
// latencies.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// report merges the workers' tallies.
func report(workers []*worker, elapsed time.Duration) *Report {
	r := &Report{Codes: make(map[twilio.Code]int), Statuses: make(map[int]int), Elapsed: elapsed}
	var samples []time.Duration
	for _, w := range workers {
		r.Accepted += w.accepted
		r.NoAnswer += w.noAnswer
		r.Interrupted += w.interrupted
		for code, n := range w.codes {
			r.Codes[code] += n
			r.Sent += n
		}
		for status, n := range w.statuses {
			r.Statuses[status] += n
		}
		r.Max = max(r.Max, w.max)
		samples = append(samples, w.samples...)
	}
	r.Sent += r.Accepted + r.Interrupted
	if elapsed > 0 {
		r.Throughput = float64(r.Accepted) / elapsed.Seconds()
	}
	slices.Sort(samples)
	r.P50 = percentile(samples, 0.50)
	r.P95 = percentile(samples, 0.95)
	r.P99 = percentile(samples, 0.99)
	return r
}

// percentile returns the nearest-rank p-quantile of sorted, or zero if it
// is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(len(sorted)) * p))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
