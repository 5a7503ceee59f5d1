// Package metricstest reads Switchboard's metrics back in tests.
package metricstest

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard-dev/switchboard/metrics"
)

// Sample returns the sample of m's family name whose labels include
// labels, given as name, value pairs, or nil when there is none (a
// counter never incremented, say). Its Get methods read nil as zero.
func Sample(t testing.TB, m *metrics.Metrics, name string, labels ...string) *dto.Metric {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	samples:
		for _, s := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range s.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue samples
				}
			}
			return s
		}
	}
	return nil
}
