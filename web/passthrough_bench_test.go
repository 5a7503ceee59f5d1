package web_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/web"
)

// BenchmarkPassThrough measures what passing a request through costs a
// client: the same Calls create, one at a time over loopback HTTP with
// keep-alive, straight to a provider (direct) and through Switchboard's
// pass-through to it (passthrough), which authenticates, checks the path
// and streams both ways. It reports each request's latency percentiles.
func BenchmarkPassThrough(b *testing.B) {
	prov := newRecordingProvider(b)
	f := newPassThroughFixture(b, prov, web.PassThrough{}, nil)
	body := form("To", "+15557770001", "From", "+15550001001", "Url", "https://app.example.com/voice").Encode()
	path := "/2010-04-01/Accounts/" + outAccount + "/Calls.json"
	for _, tc := range []struct{ name, base string }{
		{"direct", prov.base(b).String()},
		{"passthrough", f.srv.URL},
	} {
		b.Run(tc.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				req, err := http.NewRequestWithContext(b.Context(), http.MethodPost, tc.base+path, strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(outAccount, outToken)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					b.Fatalf("status %d, want 201", resp.StatusCode)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
		})
	}
}
