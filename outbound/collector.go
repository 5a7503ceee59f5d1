package outbound

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Gauges of this process's pools, read at each scrape.
var (
	queueDelayDesc = prometheus.NewDesc("switchboard_outbound_queue_delay_seconds",
		"How late the latest send now waiting for a turn of the pool is, in this process (0 when none waits), by pool.",
		[]string{"pool"}, nil)
	brownoutDesc = prometheus.NewDesc("switchboard_outbound_brownout",
		"1 while the pool's marketing sends are paused by brownout in this process, else 0, by pool.",
		[]string{"pool"}, nil)
	// The name is older than pacing across replicas by shared turns: it
	// counts the processes each sender's rate is shared by, which no
	// longer divides the rate up front.
	shareDesc = prometheus.NewDesc("switchboard_outbound_rate_share",
		"Processes alive sending from this store, this one included, as its heartbeats count them; each sender's rate holds across all of them together.", nil, nil)
)

// Collector reports the pools' queue delay and brownout state and the
// processes sending from the store, as Prometheus gauges.
func (s *Sender) Collector() prometheus.Collector { return senderCollector{s} }

type senderCollector struct{ s *Sender }

func (c senderCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDelayDesc
	ch <- brownoutDesc
	ch <- shareDesc
}

func (c senderCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.s.now()
	for name, pl := range c.s.pools {
		delay, brownout := pl.sched.state(now)
		ch <- prometheus.MustNewConstMetric(queueDelayDesc, prometheus.GaugeValue, max(delay, 0).Seconds(), name)
		on := 0.0
		if brownout {
			on = 1
		}
		ch <- prometheus.MustNewConstMetric(brownoutDesc, prometheus.GaugeValue, on, name)
	}
	ch <- prometheus.MustNewConstMetric(shareDesc, prometheus.GaugeValue, float64(c.s.Processes()))
}

// state is the pool's queue delay over every purpose at now (how long the
// send waiting longest has been due) and its brownout state.
func (s *scheduler) state(now time.Time) (delay time.Duration, brownout bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updateBrownout(now)
	for _, line := range s.lines {
		for _, w := range line {
			delay = max(delay, now.Sub(w.due))
		}
	}
	return delay, s.brownout
}
