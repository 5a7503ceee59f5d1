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
	cost int // segments
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
	c.creates[p.From] = append(c.creates[p.From], create{at: at, cost: n})
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
type slowStore struct {
	*memStore
	maxWrite time.Duration
	heart    int // processes alive, for SenderHeartbeat; 0 is 1

	mu  sync.Mutex
	rnd *rand.Rand
}

func newSlowStore(maxWrite time.Duration, seed uint64) *slowStore {
	return &slowStore{memStore: &memStore{msgs: map[string]*switchboard.OutboundMessage{}},
		maxWrite: maxWrite, rnd: rand.New(rand.NewPCG(seed, seed))}
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

// TestPacingSharedByReplicas runs two Senders on one store, each told by
// the heartbeat that two processes share the rates, sending one sender's
// backlog: each paces at half the rate, exactly, and together they never
// exceed the rate by more than a burst of one turn each.
func TestPacingSharedByReplicas(t *testing.T) {
	const (
		rate     = 10.0
		backlog  = 120
		maxWrite = 150 * time.Millisecond
		sender   = "+15550003001"
	)
	synctest.Test(t, func(t *testing.T) {
		store := newSlowStore(maxWrite, 7)
		store.heart = 2
		var (
			replicas []*Sender
			clients  []*stampingClient
		)
		for range 2 {
			c := &stampingClient{latency: 20 * time.Millisecond}
			s, err := New(store, Options{Client: c, Heartbeat: time.Second,
				Pools: []Pool{{Name: "main", Senders: []string{sender}, Rate: rate}}})
			if err != nil {
				t.Fatal(err)
			}
			stop := s.StartHeartbeat(context.Background())
			defer stop()
			if s.Share() != 2 {
				t.Fatalf("share %d after the first heartbeat, want 2", s.Share())
			}
			replicas, clients = append(replicas, s), append(clients, c)
		}
		var ids []string
		for k := range backlog {
			id := fmt.Sprintf("main%04d", k)
			store.add(id, "main", "shared", switchboard.PurposeTransactional)
			ids = append(ids, id)
		}
		work(t, store, replicas, int(rate*10)+16, ids)

		var all []create
		for i, c := range clients {
			cs := c.bySender()[sender]
			if over, a, b := earliest(cs, rate/2, 1); over > 0 {
				t.Errorf("replica %d: create %d is %v earlier after create %d than its share, %v/s, allows", i, b, over, a, rate/2)
			}
			all = append(all, cs...)
		}
		if len(all) != backlog {
			t.Fatalf("%d creates for %d messages", len(all), backlog)
		}
		sortCreates(all)
		if over, a, b := earliest(all, rate, len(replicas)); over > 0 {
			t.Errorf("together: create %d is %v earlier after create %d than %v/s with a burst of one per replica allows", b, over, a, rate)
		}
	})
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
