package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard"
)

var breakerDesc = prometheus.NewDesc("switchboard_breaker_open",
	"1 while a delivery target's circuit breaker is open or half-open in this process, 0 while closed, by target origin.",
	[]string{"target"}, nil)

// WatchBreakers adds a gauge read from states at each scrape: each
// delivery target's circuit breaker, 1 when open or half-open. Targets are
// the configured routes' origins, so the series are bounded.
func (m *Metrics) WatchBreakers(states func() []switchboard.BreakerState) {
	m.Registry.MustRegister(breakerCollector(states))
}

type breakerCollector func() []switchboard.BreakerState

func (c breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- breakerDesc }

func (c breakerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, b := range c() {
		v := 0.0
		if b.State != "closed" {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(breakerDesc, prometheus.GaugeValue, v, b.Target)
	}
}
