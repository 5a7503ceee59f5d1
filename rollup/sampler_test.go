package rollup

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard"
)

var m0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func TestSamplerGathersByMinute(t *testing.T) {
	s := NewSampler("n1")
	s.ObserveAck(m0.Add(time.Second), 2*time.Millisecond)
	s.ObserveAck(m0.Add(59*time.Second), 200*time.Millisecond)
	s.ObserveAck(m0.Add(time.Minute), time.Millisecond)
	s.Throttled(m0, "p1")
	s.Throttled(m0.Add(time.Second), "p1")
	s.Throttled(m0, "p2")
	s.Unrecorded(m0, switchboard.OutcomeRejected)
	s.Gauge(m0, switchboard.SampleQueueDepth, 5)
	s.Gauge(m0.Add(time.Second), switchboard.SampleQueueDepth, 9)
	s.Gauge(m0.Add(2*time.Second), switchboard.SampleQueueDepth, 7)

	samples, finished := s.Samples(m0.Add(time.Minute + time.Second))
	want := switchboard.NewLatencyHistogram()
	want.Observe(2 * time.Millisecond)
	want.Observe(200 * time.Millisecond)
	one := switchboard.NewLatencyHistogram()
	one.Observe(time.Millisecond)
	got := fmt.Sprint(samples)
	wantSamples := fmt.Sprint([]switchboard.Sample{
		{Minute: m0, Node: "n1", Series: switchboard.SampleAck, Value: 2, Latency: want},
		{Minute: m0, Node: "n1", Series: switchboard.SampleQueueDepth, Value: 9},
		{Minute: m0, Node: "n1", Series: switchboard.SampleThrottled, Key: "p1", Value: 2},
		{Minute: m0, Node: "n1", Series: switchboard.SampleThrottled, Key: "p2", Value: 1},
		{Minute: m0, Node: "n1", Series: switchboard.SampleUnrecorded, Key: "rejected", Value: 1},
		{Minute: m0.Add(time.Minute), Node: "n1", Series: switchboard.SampleAck, Value: 1, Latency: one},
	})
	if got != wantSamples {
		t.Errorf("samples\n%s\nwant\n%s", got, wantSamples)
	}
	if len(finished) != 1 || !finished[0].Equal(m0) {
		t.Errorf("finished minutes %v, want only %s", finished, m0)
	}
	for _, sm := range samples {
		if err := sm.Validate(); err != nil {
			t.Errorf("%+v: %v", sm, err)
		}
	}
}

// Once a minute is stored and forgotten, a sample of it that comes late
// is dropped: written, it would replace the stored minute with itself.
func TestSamplerDropsLateSamplesOfForgottenMinutes(t *testing.T) {
	s := NewSampler("n1")
	s.Throttled(m0, "p1")
	_, finished := s.Samples(m0.Add(time.Minute))
	s.Forget(finished)
	s.Throttled(m0.Add(30*time.Second), "p1")
	s.ObserveAck(m0.Add(-time.Hour), time.Second)
	s.Throttled(m0.Add(time.Minute), "p1")
	samples, _ := s.Samples(m0.Add(time.Minute))
	if len(samples) != 1 || !samples[0].Minute.Equal(m0.Add(time.Minute)) {
		t.Errorf("samples after forgetting %s: %+v, want only the next minute's", m0, samples)
	}
}

// A Sampler holds a bounded number of minutes and keys, and cuts long
// keys: a store down for long, or a caller passing anything, cannot make
// it grow without end.
func TestSamplerIsBounded(t *testing.T) {
	s := NewSampler("n1")
	for i := range maxMinutes + 30 {
		s.Throttled(m0.Add(time.Duration(i)*time.Minute), "p1")
	}
	for i := range maxKeys + 30 {
		s.Throttled(m0.Add(200*time.Minute), fmt.Sprint("pool-", i))
	}
	s.Throttled(m0.Add(201*time.Minute), strings.Repeat("x", 10*switchboard.MaxSampleKey))
	s.Throttled(m0, "p1") // older than every minute held, with no room
	if len(s.minutes) > maxMinutes {
		t.Errorf("%d minutes held, over %d", len(s.minutes), maxMinutes)
	}
	samples, _ := s.Samples(m0.Add(300 * time.Minute))
	keys := 0
	for _, sm := range samples {
		if err := sm.Validate(); err != nil {
			t.Errorf("%v", err)
		}
		if sm.Minute.Equal(m0.Add(200 * time.Minute)) {
			keys++
		}
		if sm.Minute.Equal(m0) {
			t.Errorf("a sample of %s, older than every minute held, was kept", m0)
		}
	}
	if keys != maxKeys {
		t.Errorf("%d keys in one minute, want %d", keys, maxKeys)
	}
}

// A key cut to its bound keeps whole characters: a split one would make
// PostgreSQL refuse every sample written with it.
func TestSamplerCutsKeysAtCharacters(t *testing.T) {
	s := NewSampler("n1")
	pool := "p" + strings.Repeat("é", switchboard.MaxSampleKey) // 2 bytes each: the bound falls mid-character
	s.Throttled(m0, pool)
	samples, _ := s.Samples(m0.Add(time.Hour))
	if len(samples) != 1 {
		t.Fatalf("%d samples, want 1", len(samples))
	}
	if k := samples[0].Key; !utf8.ValidString(k) || len(k) > switchboard.MaxSampleKey || !strings.HasPrefix(pool, k) {
		t.Errorf("key %q (%d bytes): want a valid prefix of the pool's name within %d bytes", k, len(k), switchboard.MaxSampleKey)
	}
}

func TestDefaultNodeIsValidText(t *testing.T) {
	if n := defaultNode(); !utf8.ValidString(n) || n == "" || len(n) > switchboard.MaxSampleNode {
		t.Errorf("defaultNode() = %q", n)
	}
}
