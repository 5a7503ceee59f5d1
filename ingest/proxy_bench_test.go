package ingest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/ingest"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/twilio"
)

// BenchmarkProxy measures what proxy mode adds to a live call: the same
// signed voice webhooks, one at a time over loopback HTTP, sent to the app
// directly and through a proxy route on a real SQLite store (stored and
// fsynced before forwarding). It reports p50 and p99 latency per request;
// the difference between the two sub-benchmarks is the overhead.
func BenchmarkProxy(b *testing.B) {
	const voiceTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello</Say></Response>`
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, voiceTwiML)
	}))
	defer app.Close()

	b.Run("direct", func(b *testing.B) {
		runLive(b, app.URL, "/voice", voiceTwiML)
	})
	b.Run("ack-sqlite", func(b *testing.B) {
		store, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "sb.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		h := ingest.New(ingest.Options{
			Store: store, PublicURL: public, MaxBodyBytes: 1 << 20, AckTimeout: 30 * time.Second,
			Routes: []ingest.Route{{Path: "/voice", AccountSID: account, Tokens: []string{token}, TwiML: []byte(voiceTwiML)}},
		})
		srv := httptest.NewServer(h)
		defer srv.Close()
		runLive(b, srv.URL, "/voice", voiceTwiML)
	})
	b.Run("proxy-sqlite", func(b *testing.B) {
		store, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "sb.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		d := deliver.New(store, deliver.Options{
			Routes:         []deliver.Route{{Path: "/voice", Target: app.URL + "/voice", SignToken: token, MaxAttempts: 5, MaxAge: time.Hour, MaxInFlight: 64}},
			ConnectTimeout: time.Second, Timeout: 5 * time.Second, Policy: switchboard.RetryPolicy{Base: time.Second, Max: time.Minute},
			BreakerFailures: 1000, BreakerOpenFor: time.Minute, Workers: 16,
		})
		h := ingest.New(ingest.Options{
			Store: store, PublicURL: public, MaxBodyBytes: 1 << 20, AckTimeout: 30 * time.Second, Proxy: d,
			Routes: []ingest.Route{{Path: "/voice", AccountSID: account, Tokens: []string{token}, Mode: ingest.ModeProxy,
				TwiML: []byte("<Response><Say>fallback</Say></Response>")}},
		})
		srv := httptest.NewServer(h)
		defer srv.Close()
		runLive(b, srv.URL, "/voice", voiceTwiML)
	})
}

// runLive sends b.N voice webhooks to base+path one after another and
// reports the latency percentiles. Every answer must be want.
func runLive(b *testing.B, base, path, want string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		body := fmt.Sprintf("CallSid=CA%032d&AccountSid=%s&From=%%2B15550100&To=%%2B15550199&CallStatus=ringing&Direction=inbound", i, account)
		_, sig, _ := twilio.SignRequest(token, public+path, "application/x-www-form-urlencoded", []byte(body))
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", sig)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		if err != nil || resp.StatusCode != http.StatusOK || string(got) != want {
			b.Fatalf("answer %d %q (%v), want 200 %q", resp.StatusCode, got, err, want)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds()), "p99-µs")
}
