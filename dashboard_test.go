package switchboard

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestDashboardStepMakesAtMostMaxBuckets(t *testing.T) {
	for _, tc := range []struct {
		r    time.Duration
		want time.Duration
	}{
		{0, time.Minute},
		{-time.Hour, time.Minute},
		{time.Hour, time.Minute},
		{6 * time.Hour, time.Minute},
		{6*time.Hour + time.Second, 2 * time.Minute},
		{24 * time.Hour, 4 * time.Minute},
		{MaxDashboardRange, 124 * time.Minute},
	} {
		got := DashboardStep(tc.r)
		if got != tc.want {
			t.Errorf("DashboardStep(%s) = %s, want %s", tc.r, got, tc.want)
		}
		if n := (tc.r + got - 1) / got; n > MaxDashboardBuckets {
			t.Errorf("DashboardStep(%s) = %s makes %d buckets", tc.r, got, n)
		}
	}
	if got := DashboardStep(math.MaxInt64); got <= 0 || got%time.Minute != 0 || math.MaxInt64/got > MaxDashboardBuckets {
		t.Errorf("DashboardStep(max) = %s", got)
	}
}

func TestDashboardQueryBuckets(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	since, until, step, n, err := DashboardQuery{Since: at.Add(30 * time.Second), Until: at.Add(24*time.Hour + time.Second)}.Buckets()
	if err != nil {
		t.Fatal(err)
	}
	if !since.Equal(at) || !until.Equal(at.Add(24*time.Hour+time.Minute)) || step != 5*time.Minute || n != 289 {
		t.Errorf("buckets %s to %s by %s: %d; want whole minutes by 5 min: 289", since, until, step, n)
	}
	_, _, step, n, err = DashboardQuery{Since: at, Until: at.Add(90 * time.Minute), Step: time.Hour}.Buckets()
	if err != nil || step != time.Hour || n != 2 {
		t.Errorf("90 min by the hour: %s, %d buckets, %v; want 2, the last shorter", step, n, err)
	}
	for _, q := range []DashboardQuery{
		{},
		{Since: at},
		{Until: at},
		{Since: at, Until: at},
		{Since: at, Until: at.Add(-time.Minute)},
		{Since: at, Until: at.Add(MaxDashboardRange + time.Nanosecond)},
		{Since: at, Until: at.Add(time.Hour), Step: -time.Minute},
		{Since: at, Until: at.Add(time.Hour), Step: time.Minute + time.Nanosecond},
		{Since: at, Until: at.Add(time.Hour), Step: MaxDashboardRange + time.Minute},
		{Since: at, Until: at.Add(7 * time.Hour), Step: time.Minute},
		{Since: time.Time{}.Add(time.Nanosecond), Until: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, _, _, _, err := q.Buckets(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", q, err)
		}
	}
}

func TestSampleValidate(t *testing.T) {
	m := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ok := Sample{Minute: m, Node: "n", Series: SampleAck, Value: 1, Latency: NewLatencyHistogram()}
	if err := ok.Validate(); err != nil {
		t.Errorf("%+v: %v", ok, err)
	}
	for _, s := range []SampleSeries{SampleAck, SampleThrottled, SampleUnrecorded, SampleQueueDepth, SampleQueueLag} {
		if !s.Valid() {
			t.Errorf("%s is not valid", s)
		}
	}
	if SampleAck.Gauge() || !SampleQueueDepth.Gauge() || !SampleQueueLag.Gauge() || SampleThrottled.Gauge() {
		t.Error("gauges are the queue's depth and lag only")
	}
}
