package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/ingest"
	"github.com/switchboard-dev/switchboard/postgres"
	"github.com/switchboard-dev/switchboard/postgres/pgtest"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/twilio"
)

// BenchmarkStatusCallbacks measures what tracking outbound messages
// (Options.Outbound) costs intake: the same signed message status
// callbacks, for messages Switchboard sent (stored with their Twilio SIDs),
// go to a status route with tracking off, the reference, and on, where each
// callback also updates its message and its history after the answer. Two
// callbacks per message, sent then delivered, from 64 goroutines (in
// process, no network, like BenchmarkAck), so that concurrency may swap
// them as Twilio's may.
//
// ns/op covers every callback answered and every follow-up done (the timer
// stops after Handler.Wait); ack-p50-µs and ack-p99-µs are the answers'
// latency; drain-ms is how long the follow-ups ran on after the last
// answer; tracked-% is the share of messages whose status a callback moved
// (0 for the reference). Deliveries to the app are not worked, in either.
// PostgreSQL runs when SWITCHBOARD_TEST_POSTGRES_URL is set.
//
//	go test ./ingest -run XXX -bench StatusCallbacks -benchtime 4000x -cpu 2 -count 3
func BenchmarkStatusCallbacks(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, tracked := range []bool{false, true} {
			name := engine + "/reference-untracked"
			if tracked {
				name = engine + "/tracked"
			}
			b.Run(name, func(b *testing.B) {
				runStatusCallbacks(b, openBenchStore(b, engine), tracked)
			})
		}
	}
}

// openBenchStore opens an empty store of engine, closed when b ends.
func openBenchStore(b *testing.B, engine string) switchboard.Store {
	b.Helper()
	ctx := context.Background()
	var (
		st  switchboard.Store
		err error
	)
	switch engine {
	case "sqlite":
		st, err = sqlite.Open(ctx, filepath.Join(b.TempDir(), "sb.db"), nil)
	case "postgres":
		st, err = postgres.Open(ctx, pgtest.URL(b), nil) // skips without the variable
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return st
}

func runStatusCallbacks(b *testing.B, st switchboard.Store, tracked bool) {
	ctx := context.Background()
	// The messages the callbacks are about, sent and recorded with their
	// SIDs, in both runs, so that the stores hold the same rows.
	n := (b.N + 1) / 2
	sids := make([]string, n)
	var (
		wg    sync.WaitGroup
		setup atomic.Int64
		errs  atomic.Value
	)
	for range 32 {
		wg.Go(func() {
			for {
				i := int(setup.Add(1)) - 1
				if i >= n {
					return
				}
				sid := fmt.Sprintf("SM%032x", i+1)
				sids[i] = sid
				if err := storeSentMessage(ctx, st, sid, i); err != nil {
					errs.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := errs.Load().(error); err != nil {
		b.Fatal(err)
	}

	h := ingest.New(ingest.Options{
		Store: st, PublicURL: public, MaxBodyBytes: 1 << 20, AckTimeout: 30 * time.Second,
		Routes:   []ingest.Route{{Path: "/status", AccountSID: account, Tokens: []string{token}}},
		Logger:   slog.New(slog.DiscardHandler),
		Outbound: tracked,
	})
	var (
		seq     atomic.Int64
		mu      sync.Mutex
		latency []time.Duration
	)
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			k := int(seq.Add(1)) - 1
			sid, status := sids[(k/2)%n], "sent"
			if k%2 == 1 {
				status = "delivered"
			}
			req := statusRequest(sid, status)
			rec := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(rec, req)
			mine = append(mine, time.Since(start))
			if rec.Code != http.StatusOK {
				b.Errorf("status %d: %s", rec.Code, rec.Body)
				return
			}
		}
		mu.Lock()
		latency = append(latency, mine...)
		mu.Unlock()
	})
	answered := time.Now()
	h.Wait()
	drain := time.Since(answered)
	b.StopTimer()

	slices.Sort(latency)
	if len(latency) > 0 {
		b.ReportMetric(float64(latency[len(latency)/2].Microseconds()), "ack-p50-µs")
		b.ReportMetric(float64(latency[len(latency)*99/100].Microseconds()), "ack-p99-µs")
	}
	b.ReportMetric(float64(drain.Milliseconds()), "drain-ms")
	moved := 0
	for _, sid := range sids {
		m, err := st.OutboundMessageBySID(ctx, account, sid)
		if err != nil {
			b.Fatal(err)
		}
		if m.TwilioStatus != "queued" {
			moved++
		}
	}
	b.ReportMetric(100*float64(moved)/float64(n), "tracked-%")
	if tracked && b.N >= 2 && moved == 0 {
		b.Errorf("tracking on, but no callback moved a message")
	}
}

// storeSentMessage stores an outbound message as the send path leaves it
// once Twilio accepted it as sid (status queued).
func storeSentMessage(ctx context.Context, st switchboard.Store, sid string, i int) error {
	m := &switchboard.OutboundMessage{
		ID: uuid.Must(uuid.NewV7()).String(), IdempotencyKey: "bench-" + sid, AccountSID: account, Pool: "bench",
		Purpose: switchboard.PurposeTransactional, To: fmt.Sprintf("+1555%07d", i), Body: "your code is 123456",
		PayloadHash: "bench-" + sid,
	}
	if _, err := st.CreateMessage(ctx, m); err != nil {
		return fmt.Errorf("create message: %w", err)
	}
	if err := st.RecordSend(ctx, switchboard.SendResult{MessageID: m.ID, Attempts: 1, State: switchboard.MessageSent,
		From: "+15550009999", TwilioSID: sid, TwilioStatus: "queued"}); err != nil {
		return fmt.Errorf("record send: %w", err)
	}
	return nil
}

// statusRequest is Twilio's signed status callback of sid, with a fresh
// idempotency token, as the simulator sends it.
func statusRequest(sid, status string) *http.Request {
	v := url.Values{
		"MessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {account}, "From": {"+15550009999"}, "To": {"+15550000001"},
		"MessageStatus": {status}, "SmsStatus": {status}, "ApiVersion": {"2010-04-01"},
	}
	body := v.Encode()
	_, sig, _ := twilio.SignRequest(token, public+"/status", "application/x-www-form-urlencoded", []byte(body))
	req := httptest.NewRequest(http.MethodPost, "/status", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", sig)
	req.Header.Set("I-Twilio-Idempotency-Token", uuid.NewString())
	return req
}
