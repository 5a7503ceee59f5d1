package ingest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/ingest"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/twilio"
)

// BenchmarkAck measures durable intake (verify, store with group commit and
// fsync, answer) against the reference in the same run: a handler that
// answers static TwiML and stores nothing. Both are called in-process from
// parallel goroutines, so the figure is the handler's cost without the
// network; docs/benchmarks.md has the load command's figures over HTTP.
//
//	go test ./ingest -run XXX -bench Ack -benchtime 20000x -cpu 2
func BenchmarkAck(b *testing.B) {
	b.Run("reference-static-twiml", func(b *testing.B) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			_, _ = w.Write([]byte("<Response/>"))
		})
		runAck(b, h)
	})
	b.Run("switchboard-sqlite", func(b *testing.B) {
		store, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "sb.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		h := ingest.New(ingest.Options{
			Store: store, PublicURL: public, MaxBodyBytes: 1 << 20, AckTimeout: 30 * time.Second,
			Routes: []ingest.Route{{Path: "/sms", AccountSID: account, Tokens: []string{token}, TwiML: []byte("<Response/>")}},
		})
		runAck(b, h)
	})
}

// runAck sends signed inbound-message webhooks from 64 goroutines per CPU's
// worth of parallelism, each with its own MessageSid. Besides the time per
// request it reports cpu-ns/op, the CPU the whole process spent per
// request (user and system, the store's writer included): unlike the
// elapsed time, it holds on a machine busy with other work.
func runAck(b *testing.B, h http.Handler) {
	var seq atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	cpu0 := processCPU(b)
	defer func() { b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op") }()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			body := fmt.Sprintf("MessageSid=SM%032d&AccountSid=%s&From=%%2B15550100&To=%%2B15550199&Body=hello+%d", n, account, n)
			_, sig, _ := twilio.SignRequest(token, public+"/sms", "application/x-www-form-urlencoded", []byte(body))
			req := httptest.NewRequest(http.MethodPost, "/sms", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Twilio-Signature", sig)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("status %d: %s", rec.Code, rec.Body)
				return
			}
		}
	})
}

// processCPU is the CPU time this process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
