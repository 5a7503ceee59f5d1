package outbound

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Pacing where it is decided.
//
// These tests run Sender.Send — the real scheduler, the real per-sender
// rate limiters, the request spacing after the store writes, the
// rescheduling of long waits — on testing/synctest's fake clock, against
// a store whose writes take a random time and a job queue that brings
// rescheduled sends back late. The clock moves only when every goroutine
// waits, so the time a create reaches the client is exactly the time
// Switchboard decided it may go: the bounds below have no slack at all,
// and no load on the machine can move them. (What the transport and the
// scheduler add on a real machine is measured, not asserted, by the e2e
// package's BenchmarkOutboundPacing.)

// create is one create request as the client got it.
type create struct {
	at   time.Time
	cost int    // segments
	to   string // the recipient
}

// stampingClient stamps each create with the fake clock's time, by its
// sender, and answers it after latency.
type stampingClient struct {
	latency time.Duration

	mu      sync.Mutex
	creates map[string][]create
}

func (c *stampingClient) Create(_ context.Context, p twilio.CreateParams) (*twilio.RestMessage, error) {
	at := time.Now()
	n, _ := twilio.Segments(p.Body)
	c.mu.Lock()
	if c.creates == nil {
		c.creates = map[string][]create{}
	}
	c.creates[p.From] = append(c.creates[p.From], create{at: at, cost: n, to: p.To})
	c.mu.Unlock()
	time.Sleep(c.latency) // the provider's answer, on the fake clock
	return &twilio.RestMessage{SID: "SM" + p.To, From: p.From, To: p.To, Status: "queued"}, nil
}

func (c *stampingClient) List(context.Context, twilio.ListParams) ([]twilio.RestMessage, error) {
	return nil, nil
}

func (c *stampingClient) bySender() map[string][]create {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]create{}
	for from, cs := range c.creates {
		out[from] = append([]create(nil), cs...)
	}
	return out
}

// slowStore is a memStore whose writes take up to maxWrite each, at
// random: the varying store latency between a send's turn and its request.
// Its shared turns (SharedTurns) are a bucket per sender with a burst of
// one, as postgres.Store's, on the fake clock, each take reaching it after
// up to maxTake.
type slowStore struct {
	*memStore
	maxWrite time.Duration
	maxTake  time.Duration
	heart    int // processes alive, for SenderHeartbeat; 0 is 1

	mu    sync.Mutex
	rnd   *rand.Rand
	turns map[string]time.Time // sender's next shared turn
	gone  map[string]time.Time // until when the sender's last request holds it
	ahead time.Duration        // the furthest ahead of a take a sender's turns were booked
	takes int
}

func newSlowStore(maxWrite time.Duration, seed uint64) *slowStore {
	return &slowStore{memStore: &memStore{msgs: map[string]*switchboard.OutboundMessage{}},
		maxWrite: maxWrite, rnd: rand.New(rand.NewPCG(seed, seed)), turns: map[string]time.Time{},
		gone: map[string]time.Time{}}
}

// TakeSenderTurn reaches the store after up to maxTake, takes the turn
// there, and answers at once: the turn's request goes exactly at its turn,
// so that the pacing below is exact. (The jitter of the answer's trip, and
// of the request's, is measured end to end by the e2e package.)
func (s *slowStore) TakeSenderTurn(_ context.Context, sender string, interval time.Duration) (time.Duration, error) {
	time.Sleep(s.random(s.maxTake))
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	turn := maxTime(s.turns[sender], now)
	s.turns[sender] = turn.Add(interval)
	s.ahead = max(s.ahead, s.turns[sender].Sub(now))
	s.takes++
	return turn.Sub(now), nil
}

// GoSenderTurn lets a request go now unless the sender's last request
// still holds it, as the store does.
func (s *slowStore) GoSenderTurn(_ context.Context, sender string, interval time.Duration) (bool, time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if until := s.gone[sender]; until.After(now) {
		return false, until.Sub(now), nil
	}
	s.gone[sender] = now.Add(interval)
	return true, 0, nil
}

func (s *slowStore) random(upTo time.Duration) time.Duration {
	if upTo <= 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.rnd.Int64N(int64(upTo)))
}

func (s *slowStore) RecordSend(ctx context.Context, r switchboard.SendResult) error {
	time.Sleep(s.random(s.maxWrite))
	return s.memStore.RecordSend(ctx, r)
}

func (s *slowStore) SenderHeartbeat(context.Context, string, time.Time, time.Duration) (int, error) {
	return max(s.heart, 1), nil
}

// add stores a queued message of pool, created now.
func (s *slowStore) add(id, pool, body string, purpose switchboard.Purpose) {
	s.memStore.mu.Lock()
	defer s.memStore.mu.Unlock()
	s.msgs[id] = &switchboard.OutboundMessage{ID: id, Pool: pool, Purpose: purpose, To: "+1555" + id,
		Body: body, State: switchboard.MessageQueued, CreatedAt: time.Now()}
}

// jobLag is how late, at most, the job queue brings back a send
// rescheduled for later: River's scheduler makes a scheduled job available
// every 5 s. A send due now is taken at once.
const jobLag = 5 * time.Second

// work runs every message of ids to the end as the job queue would: at
// most workers sends at once, each send of a message after its previous
// attempt left it queued, a rescheduled one at its NextAttemptAt plus up
// to jobLag, from any of senders (the processes sharing the store). It
// returns when every message is sent.
func work(t *testing.T, store *slowStore, senders []*Sender, workers int, ids []string) {
	t.Helper()
	slots := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			for attempt := 0; ; attempt++ {
				m, err := store.OutboundMessage(context.Background(), id)
				if err != nil {
					t.Error(err)
					return
				}
				if m.State != switchboard.MessageQueued {
					if m.State != switchboard.MessageSent {
						t.Errorf("message %s: %s (%s)", id, m.State, m.LastError)
					}
					return
				}
				if wait := time.Until(m.NextAttemptAt); wait > 0 {
					time.Sleep(wait + store.random(jobLag))
				}
				slots <- struct{}{}
				err = senders[(i+attempt)%len(senders)].Send(context.Background(), id, m.Attempts)
				<-slots
				if err != nil {
					t.Errorf("send %s: %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// earliest returns how much earlier than a token bucket of rate segments a
// second, with room for burst turns, allows it the worst create of cs
// (in order) comes, and which: the largest
// (segments of cs[i..j-1] + 1 - burst)/rate - (cs[j].at - cs[i].at) over
// i < j, since create j needs a whole segment's token of its own and may
// leave its sender in debt for the rest. A bucket that paced them exactly
// gives at most 0.
func earliest(cs []create, rate float64, burst int) (over time.Duration, wi, wj int) {
	over = time.Duration(-1 << 62)
	interval := time.Duration(float64(time.Second) / rate) // exact for the rates used
	for i := range cs {
		segments := 0
		for j := i + 1; j < len(cs); j++ {
			segments += max(cs[j-1].cost, 1)
			allowed := time.Duration(segments+1-burst) * interval
			if d := allowed - cs[j].at.Sub(cs[i].at); d > over {
				over, wi, wj = d, i, j
			}
		}
	}
	return over, wi, wj
}

// pacingPool is a pool of TestPacingWhereDecided and its backlog.
type pacingPool struct {
	Pool
	backlog int // messages
	long    int // every long-th message has two segments; 0 none
}

// TestPacingWhereDecided posts a backlog of twelve seconds of each pool's
// rate (longer than MaxWait, so that sends both wait in process and are
// rescheduled) to two pools — two senders at 10 segments/s, some messages
// of two segments; one sender at 5/s — of all three purposes, with the
// send workers outbound.Policy asks for. On the fake clock it checks, for
// every sender: no create comes earlier than a bucket of its rate with a
// burst of one allows (exactly: no slack), every message is created once,
// and the sender keeps its rate over the backlog: its creates take no
// longer than its rate asks, but for the store write between a turn and
// its request.
func TestPacingWhereDecided(t *testing.T) {
	const (
		maxWrite = 150 * time.Millisecond // each store write takes up to this
		// A send's turn and its request are one write apart: the message
		// as sending, with the recipient's sticky sender.
		between = maxWrite
	)
	pools := []pacingPool{
		{Pool: Pool{Name: "fast", Senders: []string{"+15550003001", "+15550003002"}, Rate: 10}, backlog: 240, long: 5},
		{Pool: Pool{Name: "slow", Senders: []string{"+15550003101"}, Rate: 5}, backlog: 60},
	}
	for seed := range uint64(2) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := newSlowStore(maxWrite, seed)
				client := &stampingClient{latency: 20 * time.Millisecond}
				var (
					cfg     []Pool
					ids     []string
					ceiling float64
				)
				purposes := []switchboard.Purpose{switchboard.PurposeOTP, switchboard.PurposeTransactional, switchboard.PurposeMarketing}
				segments := map[string]int{} // by pool
				for _, pl := range pools {
					cfg = append(cfg, pl.Pool)
					ceiling += pl.Rate * float64(len(pl.Senders))
					for k := range pl.backlog {
						id := fmt.Sprintf("%s%04d", pl.Name, k)
						body, cost := "paced", 1
						if pl.long > 0 && k%pl.long == 0 {
							body, cost = strings.Repeat("x", 161), 2
						}
						store.add(id, pl.Name, body, purposes[k%len(purposes)])
						ids = append(ids, id)
						segments[pl.Name] += cost
					}
				}
				s, err := New(store, Options{Client: client, Pools: cfg})
				if err != nil {
					t.Fatal(err)
				}
				// Rate × senders × MaxWait, summed over the pools, and some over.
				workers := int(ceiling*s.policy.MaxWait.Seconds()) + 16
				start := time.Now()
				work(t, store, []*Sender{s}, workers, ids)

				created := client.bySender()
				total := 0
				for _, pl := range pools {
					poolSegments := 0
					for _, n := range pl.Senders {
						cs := created[n]
						total += len(cs)
						if len(cs) < 2 {
							t.Fatalf("sender %s: %d creates, want a backlog", n, len(cs))
						}
						if over, i, j := earliest(cs, pl.Rate, 1); over > 0 {
							t.Errorf("sender %s: create %d is %v earlier after create %d than %v segments/s with a burst of one allow",
								n, j, over, i, pl.Rate)
						}
						// The sender's turns come one after another while
						// sends wait; each request goes at most the
						// write after its turn (and the turns' rounding
						// up, a microsecond each, adds up).
						used := 0
						for _, c := range cs[:len(cs)-1] {
							used += c.cost
						}
						ideal := time.Duration(float64(used) / pl.Rate * float64(time.Second))
						span := cs[len(cs)-1].at.Sub(cs[0].at)
						if late := span - ideal; late > between+time.Duration(len(cs))*time.Microsecond {
							t.Errorf("sender %s: %d creates in %v, %v more than %v segments/s take: below its rate",
								n, len(cs), span, late, pl.Rate)
						}
						over, _, _ := earliest(cs, pl.Rate, 1)
						t.Logf("sender %s: %d creates in %v (%v of segments at %v/s), closest to its bucket %v",
							n, len(cs), span, ideal, pl.Rate, -over)
						if first := cs[0].at.Sub(start); first > between {
							t.Errorf("sender %s: first create %v after the backlog was due", n, first)
						}
						for _, c := range cs {
							poolSegments += c.cost
						}
					}
					if poolSegments != segments[pl.Name] {
						t.Errorf("pool %s: %d segments created, want %d", pl.Name, poolSegments, segments[pl.Name])
					}
					// The pool as a whole keeps rate × senders: its senders
					// share the backlog, none idle while another has sends
					// waiting. Its creates take no longer than its segments
					// at that rate, but for the write, and for a message
					// of two segments that one sender had while the other
					// had none left.
					first, last := created[pl.Senders[0]][0].at, created[pl.Senders[0]][0].at
					for _, n := range pl.Senders {
						cs := created[n]
						first, last = minTime(first, cs[0].at), maxTime(last, cs[len(cs)-1].at)
					}
					perSegment := time.Duration(float64(time.Second) / (pl.Rate * float64(len(pl.Senders))))
					if span, ideal := last.Sub(first), time.Duration(poolSegments)*perSegment; span > ideal+between+2*perSegment*time.Duration(len(pl.Senders)) {
						t.Errorf("pool %s: %d segments in %v, want about %v at %v segments/s per sender: below its rate",
							pl.Name, poolSegments, span, ideal, pl.Rate)
					}
				}
				if n := len(ids); total != n {
					t.Errorf("%d creates for %d messages", total, n)
				}
			})
		})
	}
}

// TestPacingSharedByReplicas runs three Senders on one store, as three
// replicas on PostgreSQL, sending one sender's backlog (every fifth
// message of two segments) through the store's shared turns. Together they
// never send faster than a bucket of the sender's rate with a burst of one
// allows (exactly, on the fake clock); each message is created once; the
// store's bucket is never booked further ahead than one request per
// replica (each holds its sender's local turns back while it waits for a
// shared one); and the replicas keep the sender near its rate. With two of
// them idle, the third alone sends at the whole rate: an idle replica's
// share is not wasted.
func TestPacingSharedByReplicas(t *testing.T) {
	const (
		rate     = 10.0
		backlog  = 120
		maxWrite = 150 * time.Millisecond
		// A replica takes its next shared turn of a sender once its last
		// request went: a take slower than the sender's interval (100
		// ms) would leave turns unused. PostgreSQL answers one in
		// milliseconds.
		maxTake  = 50 * time.Millisecond
		sender   = "+15550003001"
		replicas = 3
		longest  = 2 // segments
	)
	for _, busy := range []int{replicas, 1} {
		t.Run(fmt.Sprintf("busy=%d", busy), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := newSlowStore(maxWrite, 7)
				store.heart, store.maxTake = replicas, maxTake
				var (
					senders []*Sender
					clients []*stampingClient
				)
				for range replicas {
					c := &stampingClient{latency: 20 * time.Millisecond}
					s, err := New(store, Options{Client: c, Heartbeat: time.Second,
						Pools: []Pool{{Name: "main", Senders: []string{sender}, Rate: rate}}})
					if err != nil {
						t.Fatal(err)
					}
					stop := s.StartHeartbeat(context.Background())
					defer stop()
					if s.Processes() != replicas {
						t.Fatalf("%d processes after the first heartbeat, want %d", s.Processes(), replicas)
					}
					senders, clients = append(senders, s), append(clients, c)
				}
				var ids []string
				segments := 0
				for k := range backlog {
					id := fmt.Sprintf("main%04d", k)
					body := "shared"
					if k%5 == 0 {
						body = strings.Repeat("x", 161)
					}
					n, _ := twilio.Segments(body)
					segments += n
					store.add(id, "main", body, switchboard.PurposeTransactional)
					ids = append(ids, id)
				}
				start := time.Now()
				work(t, store, senders[:busy], int(rate*10)+16, ids)

				var all []create
				for _, c := range clients {
					all = append(all, c.bySender()[sender]...)
				}
				if len(all) != backlog {
					t.Fatalf("%d creates for %d messages", len(all), backlog)
				}
				sortCreates(all)
				if over, a, b := earliest(all, rate, 1); over > 0 {
					t.Errorf("together: create %d is %v earlier after create %d than %v segments/s with a burst of one allows",
						b, over, a, rate)
				}
				interval := time.Duration(float64(time.Second) / rate)
				if limit := time.Duration((busy+1)*longest) * interval; store.ahead > limit {
					t.Errorf("the shared turns were booked %v ahead, more than a request of each busy replica (%v)", store.ahead, limit)
				}
				// At the sender's rate the creates take the backlog's
				// segments, less the last message's, at the rate. Each
				// replica's next request reaches the store up to two
				// writes after its last one went (its claim, then the
				// take): with three replicas a turn can pass unused.
				span := all[len(all)-1].at.Sub(all[0].at)
				ideal := time.Duration(segments-all[len(all)-1].cost) * interval
				t.Logf("%d of %d replicas busy: %d creates in %v (%v at %v segments/s), the first %v after the backlog; %d shared turns taken, booked at most %v ahead",
					busy, replicas, len(all), span, ideal, rate, all[0].at.Sub(start), store.takes, store.ahead)
				if slack := 2 * maxWrite * time.Duration(busy); span > ideal+slack {
					t.Errorf("%d creates in %v, more than %v at %v segments/s and %v: below the sender's rate",
						len(all), span, ideal, rate, slack)
				}
				if store.takes != backlog {
					t.Errorf("%d shared turns taken for %d creates", store.takes, backlog)
				}
				// A send waits for its shared turn after its claim, holding
				// a worker, outside the priority lines: each replica holds
				// its sender's local turns back while other replicas' sends
				// book the shared ones, so that its sends wait in its lines
				// instead. A claimed send then waits for its write, at most
				// one request of its replica ahead of it, and its own turn,
				// each turn at most the bound above away. (Without the
				// hold, the replicas' lines grow with the backlog: seconds
				// here.)
				claimed := map[string]time.Time{} // by recipient
				store.memStore.mu.Lock()
				for _, r := range store.results {
					if r.State == switchboard.MessageSending {
						claimed[store.msgs[r.MessageID].To] = r.At
					}
				}
				store.memStore.mu.Unlock()
				var slowest time.Duration
				for _, c := range all {
					slowest = max(slowest, c.at.Sub(claimed[c.to]))
				}
				bound := maxWrite + 2*time.Duration((busy+1)*longest)*interval
				t.Logf("longest from a claim to its request: %v (bound %v)", slowest, bound)
				if slowest > bound {
					t.Errorf("a claimed send waited %v for its request, more than %v: sends queue after their claims", slowest, bound)
				}
			})
		})
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func sortCreates(cs []create) {
	slices.SortFunc(cs, func(a, b create) int { return a.at.Compare(b.at) })
}
