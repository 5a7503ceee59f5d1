package postgres_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/postgres"
	"github.com/switchboard-dev/switchboard/postgres/pgtest"
)

// Concurrent takes of one sender from several replicas (Stores of their
// own on one database) get turns exactly an interval apart: none shares a
// turn or gets one closer than the interval to another. The interval is an
// hour, so that how long the takes themselves take (which a busy machine
// stretches) cannot blur one turn into the next: each wait is its turn's
// start less the database's clock when it was taken, and those clock
// readings differ by no more than the test's run.
func TestTakeSenderTurnSpacesConcurrentTakes(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	const (
		replicas = 3
		each     = 8
		interval = time.Hour
		sender   = "+15550009001"
	)
	stores := []*postgres.Store{open(t, url)}
	for range replicas - 1 {
		stores = append(stores, open(t, url))
	}
	ctx := context.Background()
	start := time.Now()
	var (
		mu    sync.Mutex
		waits []time.Duration
		wg    sync.WaitGroup
	)
	for _, s := range stores {
		for range each {
			wg.Go(func() {
				w, err := s.TakeSenderTurn(ctx, sender, interval)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				waits = append(waits, w)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	took := time.Since(start)
	if len(waits) != replicas*each {
		t.Fatalf("%d turns taken, want %d", len(waits), replicas*each)
	}
	slices.Sort(waits)
	if waits[0] != 0 {
		t.Errorf("the first turn of an unused sender starts in %v, want at once", waits[0])
	}
	// Turn k starts k intervals after the first; its wait is that less
	// how much later than the first it was taken.
	for k, w := range waits {
		want := time.Duration(k) * interval
		if w > want || w < want-took {
			t.Errorf("turn %d starts in %v, want %v less at most the %v the takes took", k, w, want, took)
		}
	}
	t.Logf("%d concurrent takes from %d replicas in %v", len(waits), replicas, took)
}

// A sender whose turn has passed (idle since) has its next turn at once,
// and one interval after it the turn after; each sender has a bucket of
// its own.
func TestTakeSenderTurnIdleAndIndependent(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s := open(t, url)
	ctx := context.Background()
	const interval = time.Hour
	take := func(sender string) time.Duration {
		t.Helper()
		w, err := s.TakeSenderTurn(ctx, sender, interval)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	if w := take("+15550009101"); w != 0 {
		t.Fatalf("first turn in %v, want at once", w)
	}
	if w := take("+15550009102"); w != 0 {
		t.Errorf("another sender's first turn in %v, want at once: buckets are per sender", w)
	}
	if w := take("+15550009101"); w <= interval-time.Minute || w > interval {
		t.Errorf("second turn in %v, want about %v", w, interval)
	}
	// Idle for longer than its turns reach: the bucket holds one turn,
	// not the ones it missed.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE sender_turns SET next_at = clock_timestamp() - interval '10 hours' WHERE sender = $1`, "+15550009101"); err != nil {
		t.Fatal(err)
	}
	if w := take("+15550009101"); w != 0 {
		t.Errorf("turn after idling in %v, want at once", w)
	}
	if w := take("+15550009101"); w <= interval-time.Minute || w > interval {
		t.Errorf("turn after that in %v, want about %v: no burst saved up while idle", w, interval)
	}
}

// Hostile input: no sender, intervals that are not positive, too fine or
// huge are refused and leave the bucket as it was; a sender named like SQL
// is a sender like any other; a canceled take fails.
func TestTakeSenderTurnRefusesBadInput(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s := open(t, url)
	ctx := context.Background()
	const sender = "+15550009201"
	for _, c := range []struct {
		sender   string
		interval time.Duration
	}{
		{"", time.Second},
		{sender, 0},
		{sender, -time.Second},
		{sender, time.Nanosecond},
		{sender, postgres.MaxTurnInterval + time.Microsecond},
		{sender, time.Duration(1<<63 - 1)},
	} {
		if w, err := s.TakeSenderTurn(ctx, c.sender, c.interval); err == nil {
			t.Errorf("TakeSenderTurn(%q, %v) = %v, want refused", c.sender, c.interval, w)
		}
	}
	if w, err := s.TakeSenderTurn(ctx, sender, postgres.MaxTurnInterval); err != nil || w != 0 {
		t.Errorf("the longest interval: %v, %v; want a turn at once", w, err)
	}
	if w, err := s.TakeSenderTurn(ctx, sender, time.Second); err != nil || w <= postgres.MaxTurnInterval-time.Hour {
		t.Errorf("after a day's interval: %v, %v; want the turn a day on", w, err)
	}

	odd := "'); DELETE FROM sender_turns; --" + strings.Repeat("é", 1000)
	for range 2 {
		if _, err := s.TakeSenderTurn(ctx, odd, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if w, err := s.TakeSenderTurn(ctx, sender, time.Second); err != nil || w <= postgres.MaxTurnInterval-time.Hour {
		t.Errorf("after an odd sender's takes: %v, %v; the other sender's turn moved", w, err)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.TakeSenderTurn(canceled, sender, time.Second); err == nil {
		t.Error("a canceled take succeeded")
	}
}

// Requests of a sender going from several replicas at once: each goes
// only once the one before it had its interval, by the database's clock,
// so going 3 × 5 times takes at least 14 intervals, however the replicas'
// attempts interleave; one refused learns how long the sender is held.
func TestGoSenderTurnSpacesRequests(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	const (
		replicas = 3
		each     = 5
		interval = 20 * time.Millisecond
		sender   = "+15550009002"
	)
	ctx := context.Background()
	s := open(t, url)
	if gone, _, err := s.GoSenderTurn(ctx, sender, time.Hour); err != nil || !gone {
		t.Fatalf("the first request of an unused sender: gone %v, %v; want it to go", gone, err)
	}
	gone, held, err := s.GoSenderTurn(ctx, sender, interval)
	if err != nil || gone || held <= 59*time.Minute || held > time.Hour {
		t.Fatalf("a request right after: gone %v, held %v, %v; want held for the hour the first took", gone, held, err)
	}
	if _, _, err := s.GoSenderTurn(ctx, "", interval); err == nil {
		t.Error("an empty sender went")
	}
	for _, bad := range []time.Duration{0, -time.Second, postgres.MaxTurnInterval + time.Second} {
		if _, _, err := s.GoSenderTurn(ctx, "+15550009003", bad); err == nil {
			t.Errorf("interval %v: went", bad)
		}
	}

	sender2 := sender + "0"
	stores := []*postgres.Store{s, open(t, url), open(t, url)}
	start := time.Now()
	var wg sync.WaitGroup
	for _, st := range stores {
		wg.Go(func() {
			for range each {
				for {
					gone, held, err := st.GoSenderTurn(ctx, sender2, interval)
					if err != nil {
						t.Error(err)
						return
					}
					if gone {
						break
					}
					time.Sleep(held) // the sender is held for this long
				}
			}
		})
	}
	wg.Wait()
	// A lower bound: a busy machine only makes it longer.
	if took, least := time.Since(start), (replicas*each-1)*interval; took < least {
		t.Errorf("%d requests went within %v; spaced by %v they take at least %v", replicas*each, took, interval, least)
	}
}
