package rollup

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// Sampler gathers, minute by minute, what only this process sees: the
// time it took to answer each webhook, Twilio's 429s to its sends, the
// webhooks it answered without recording them, and the queue's depth and
// lag as it read them. A Worker writes its minutes to the store. It is
// safe for concurrent use, and cheap enough for every webhook's answer: a
// lock held for a map look-up and an increment.
type Sampler struct {
	node string

	mu      sync.Mutex
	minutes map[time.Time]*minuteSamples
	// floor is the first minute not forgotten: a sample of an earlier one,
	// come late, is dropped rather than stored over the minute written.
	floor time.Time
}

// minuteSamples is one minute's samples, by series and key.
type minuteSamples struct {
	ack    switchboard.LatencyHistogram
	ackN   int64
	values map[seriesKey]float64 // counters and gauges
}

type seriesKey struct {
	series switchboard.SampleSeries
	key    string
}

// Bounds of what a Sampler holds: the minutes not yet written (a store
// down for longer loses the oldest), and the keys of one minute (pools,
// outcomes: a handful; a caller passing more loses the rest).
const (
	maxMinutes = 60
	maxKeys    = 1000
)

// NewSampler returns a Sampler whose samples name node.
func NewSampler(node string) *Sampler {
	return &Sampler{node: node, minutes: map[time.Time]*minuteSamples{}}
}

// Node is the node the samples name.
func (s *Sampler) Node() string { return s.node }

// minute returns the samples of at's minute, made on first use; nil for a
// minute forgotten already, or older than every one held when no more may
// be added.
func (s *Sampler) minute(at time.Time) *minuteSamples {
	m := at.UTC().Truncate(time.Minute)
	ms, ok := s.minutes[m]
	if ok {
		return ms
	}
	if m.Before(s.floor) {
		return nil
	}
	if len(s.minutes) >= maxMinutes {
		oldest := slices.MinFunc(slices.Collect(maps.Keys(s.minutes)), func(a, b time.Time) int { return a.Compare(b) })
		if m.Before(oldest) {
			return nil
		}
		delete(s.minutes, oldest)
	}
	ms = &minuteSamples{values: map[seriesKey]float64{}}
	s.minutes[m] = ms
	return ms
}

// ObserveAck counts a webhook answered at at, took after it was received.
// The minute is the answer's: samples are taken as they happen, so that a
// minute over gets no more.
func (s *Sampler) ObserveAck(at time.Time, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ms := s.minute(at); ms != nil {
		if ms.ack == nil {
			ms.ack = switchboard.NewLatencyHistogram()
		}
		ms.ack.Observe(took)
		ms.ackN++
	}
}

// Throttled counts a 429 from Twilio to a send of pool, answered at at.
func (s *Sampler) Throttled(at time.Time, pool string) {
	s.add(at, switchboard.SampleThrottled, pool, 1)
}

// Unrecorded counts a webhook of outcome (duplicate or rejected) that was
// not recorded, found so at at.
func (s *Sampler) Unrecorded(at time.Time, outcome switchboard.Outcome) {
	s.add(at, switchboard.SampleUnrecorded, string(outcome), 1)
}

// Gauge records a level of series read at at; a minute keeps the highest.
func (s *Sampler) Gauge(at time.Time, series switchboard.SampleSeries, v float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.minute(at)
	if ms == nil {
		return
	}
	k := seriesKey{series, ""}
	if old, ok := ms.values[k]; ok && old >= v {
		return
	}
	if _, ok := ms.values[k]; ok || len(ms.values) < maxKeys {
		ms.values[k] = v
	}
}

func (s *Sampler) add(at time.Time, series switchboard.SampleSeries, key string, n float64) {
	if len(key) > switchboard.MaxSampleKey {
		// Cut whole characters only: a split one would be refused by
		// PostgreSQL with the rest of the samples.
		key = strings.ToValidUTF8(key[:switchboard.MaxSampleKey], "")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.minute(at)
	if ms == nil {
		return
	}
	k := seriesKey{series, key}
	if _, ok := ms.values[k]; ok || len(ms.values) < maxKeys {
		ms.values[k] += n
	}
}

// Samples returns the samples of every minute held, oldest first, and the
// minutes among them that are over at now (before now's minute): once
// those are stored, Forget drops them. The minute still running is
// returned too, as it stands: stored again later, it is replaced by its
// fuller self.
func (s *Sampler) Samples(now time.Time) (samples []switchboard.Sample, finished []time.Time) {
	cur := now.UTC().Truncate(time.Minute)
	s.mu.Lock()
	defer s.mu.Unlock()
	minutes := slices.SortedFunc(maps.Keys(s.minutes), func(a, b time.Time) int { return a.Compare(b) })
	for _, m := range minutes {
		ms := s.minutes[m]
		if ms.ackN > 0 {
			samples = append(samples, switchboard.Sample{Minute: m, Node: s.node, Series: switchboard.SampleAck,
				Value: float64(ms.ackN), Latency: slices.Clone(ms.ack)})
		}
		keys := slices.SortedFunc(maps.Keys(ms.values), func(a, b seriesKey) int {
			return cmp.Or(cmp.Compare(a.series, b.series), cmp.Compare(a.key, b.key))
		})
		for _, k := range keys {
			samples = append(samples, switchboard.Sample{Minute: m, Node: s.node, Series: k.series, Key: k.key, Value: ms.values[k]})
		}
		if m.Before(cur) {
			finished = append(finished, m)
		}
	}
	return samples, finished
}

// Forget drops minutes, once their samples are stored; a sample of one of
// them, or of an earlier minute, that comes later is dropped too.
func (s *Sampler) Forget(minutes []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range minutes {
		delete(s.minutes, m)
		if next := m.Add(time.Minute); next.After(s.floor) {
			s.floor = next
		}
	}
}
