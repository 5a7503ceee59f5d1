package store

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

func TestLatencyRoundTrip(t *testing.T) {
	h := switchboard.NewLatencyHistogram()
	for _, d := range []time.Duration{0, time.Millisecond, 3 * time.Millisecond, 3 * time.Millisecond, time.Second, time.Hour} {
		h.Observe(d)
	}
	s := EncodeLatency(h)
	if got := DecodeLatency(s); !slices.Equal(got, h) {
		t.Errorf("%q decodes to %v, want %v", s, got, h)
	}
	if s := EncodeLatency(switchboard.NewLatencyHistogram()); s != "" {
		t.Errorf("an empty histogram encodes to %q, want nothing", s)
	}
	if s := EncodeLatency(nil); s != "" || DecodeLatency(s) != nil {
		t.Errorf("nil encodes to %q", s)
	}
}

// What cannot be read as a histogram of today's shape is left out, never
// misread: another shape, garbage, out-of-range buckets.
func TestDecodeLatencyRefusesWhatItCannotRead(t *testing.T) {
	size := len(switchboard.LatencyBuckets) + 1
	for _, s := range []string{
		"", "garbage", "3:0=1", "x:0=1", strconv.Itoa(size) + ":", strconv.Itoa(size) + ":0=", strconv.Itoa(size) + ":=1", strconv.Itoa(size) + ":0=1,",
		strconv.Itoa(size) + ":-1=1", strconv.Itoa(size) + ":" + strconv.Itoa(size) + "=1", strconv.Itoa(size) + ":0=-5", strconv.Itoa(size) + ":0=1;1=2",
		strconv.Itoa(size) + ":0=99999999999999999999",
	} {
		if h := DecodeLatency(s); h != nil {
			t.Errorf("%q decodes to %v, want nothing", s, h)
		}
	}
}
