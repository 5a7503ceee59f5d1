// Package jobs runs Switchboard's delivery jobs on River, and defines the
// send jobs of outbound messages (SendArgs, on a queue of their own). It is
// generic over River's driver so that the sqlite and postgres stores share
// one adapter: each store inserts jobs in its own transactions and hands
// Start a switchboard.Deliverer to work them. (SQLite, where one process
// delivers, uses River for its send jobs only: its deliveries are worked
// straight from the events table; see package dispatch.)
//
// A job delivers a list of events. A batch of freshly ingested events shares
// one job, so River's per-job bookkeeping (insert, fetch, complete) is paid
// once per batch rather than once per event; a retry is a job of its own,
// scheduled for when it is due. Each event in a job carries the attempt
// count it had when the job was made, so that a stale job (rescued after a
// crash, or overtaken by a newer one) finds the event moved on and leaves it
// alone.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/switchboard-dev/switchboard"
)

// Due is an event to deliver and the attempt count it had when scheduled.
type Due struct {
	EventID  string `json:"id"`
	Attempts int    `json:"n"`
	// Event and Request, when set, are the new event and its request as
	// the transaction that created them wrote them, handed over in memory
	// to a dispatcher in the same process (package dispatch) so that it
	// need not read them back. Never stored in a job; read-only.
	Event   *switchboard.Event   `json:"-"`
	Request *switchboard.Request `json:"-"`
}

// DeliverArgs is a delivery job: deliver each event to its route's target.
type DeliverArgs struct {
	Events []Due `json:"events"`
}

// Kind names the job in River's tables.
func (DeliverArgs) Kind() string { return "switchboard_deliver" }

// InsertOpts: attempt counting is the Deliverer's; River's own count only
// grows on internal failures such as a database outage, so its budget is
// generous.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 100}
}

// SendQueue is the River queue of send jobs. The delivery workers started
// by Queue.Start work only River's default queue. River fails a fetched job
// whose kind has no registered worker (UnknownJobKindError), retries it and
// finally discards it, so send jobs sitting in the default queue would be
// thrown away by the delivery workers; on a queue of their own they wait,
// untouched, for the send workers. (River's rescuer also discards a job of
// an unknown kind, but only one left running, which a send job cannot be
// before a send worker exists; that worker should share the River client
// that works deliveries, so that its leader knows both kinds.)
const SendQueue = "send"

// SendArgs is a send job: send one outbound message to Twilio. Attempts is
// the message's attempt count when the job was made, so that a stale job
// (rescued after a crash, or overtaken by a newer one) finds the message
// moved on and leaves it alone, as with delivery jobs.
//
// The stores insert send jobs (InsertSendTx); Start works them when its
// DeliveryConfig has a Sender, and otherwise they wait on SendQueue.
type SendArgs struct {
	MessageID string `json:"id"`
	Attempts  int    `json:"n"`
}

// Kind names the job in River's tables.
func (SendArgs) Kind() string { return "switchboard_send" }

// InsertOpts puts send jobs on SendQueue. Attempt counting is the send
// worker's, as for deliveries, so River's own budget is generous.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: SendQueue, MaxAttempts: 100}
}

// MaxEventsPerJob bounds a job, so that one job's run time stays short and a
// batch spreads over workers and replicas.
const MaxEventsPerJob = 32

// Scheduled is one job to insert: its events and when it is due (zero:
// now).
type Scheduled struct {
	Events []Due
	At     time.Time
}

// Batch splits events due now into jobs of at most MaxEventsPerJob.
func Batch(due []Due) []Scheduled {
	var out []Scheduled
	for len(due) > 0 {
		n := min(len(due), MaxEventsPerJob)
		out = append(out, Scheduled{Events: due[:n:n]})
		due = due[n:]
	}
	return out
}

// Queue inserts delivery jobs and, once started, works them.
type Queue[TTx any] struct {
	driver   riverdriver.Driver[TTx]
	logger   *slog.Logger
	inserter *river.Client[TTx]
	pollOnly bool

	mu     sync.Mutex
	worker *river.Client[TTx]
}

// Option adjusts a Queue.
type Option func(*options)

type options struct{ pollOnly bool }

// PollOnly makes the workers find jobs by polling alone, without River's
// listener. Jobs are inserted without notifying (InsertTx), so the
// listener only carries River's own coordination, which on a driver that
// emulates it by polling a table (SQLite) costs more, idle, than it gives.
func PollOnly() Option { return func(o *options) { o.pollOnly = true } }

// New returns a Queue on driver. It does not work jobs until Start.
func New[TTx any](driver riverdriver.Driver[TTx], logger *slog.Logger, opts ...Option) (*Queue[TTx], error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	inserter, err := river.NewClient(driver, &river.Config{Logger: quiet(logger)})
	if err != nil {
		return nil, fmt.Errorf("river insert client: %w", err)
	}
	return &Queue[TTx]{driver: driver, logger: logger, inserter: inserter, pollOnly: o.pollOnly}, nil
}

// Migrate brings River's own tables up to date.
func Migrate[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], logger *slog.Logger) error {
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: quiet(logger)})
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrate: %w", err)
	}
	return nil
}

// InsertTx inserts jobs inside tx, so that they exist exactly when the
// state that calls for them does.
func (q *Queue[TTx]) InsertTx(ctx context.Context, tx TTx, jobs []Scheduled) error {
	if len(jobs) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(jobs))
	for i, j := range jobs {
		params[i] = river.InsertManyParams{Args: DeliverArgs{Events: j.Events}, InsertOpts: dueAt(j.At)}
	}
	if _, err := q.inserter.InsertManyFastTx(ctx, tx, params); err != nil {
		return fmt.Errorf("insert %d delivery jobs: %w", len(jobs), err)
	}
	return nil
}

// dueAt is the insert options of a job due at at: none for a job due now
// (a zero or past at), which River makes available at once. River makes a
// job with any ScheduledAt, even a past one, "scheduled", and only its
// scheduler, every 5 s, makes it available: a job due now would wait for
// that pass.
func dueAt(at time.Time) *river.InsertOpts {
	if at.IsZero() || !at.After(time.Now()) {
		return nil
	}
	return &river.InsertOpts{ScheduledAt: at}
}

// InsertSendTx inserts a send job inside tx, due at at (zero: now), so that
// it exists exactly when the message state that calls for it does.
func (q *Queue[TTx]) InsertSendTx(ctx context.Context, tx TTx, args SendArgs, at time.Time) error {
	if _, err := q.inserter.InsertManyFastTx(ctx, tx, []river.InsertManyParams{{Args: args, InsertOpts: dueAt(at)}}); err != nil {
		return fmt.Errorf("insert send job of message %s: %w", args.MessageID, err)
	}
	return nil
}

// Loader loads a delivery job's events and their requests in a few reads
// rather than two per event; *store.Store is one.
type Loader interface {
	EventsForDelivery(ctx context.Context, ids []string) ([]*switchboard.Event, map[string]*switchboard.Request, error)
}

// LoadedDeliverer is a Deliverer that can be handed an event and its
// request already loaded; *deliver.Deliverer is one.
type LoadedDeliverer interface {
	DeliverLoaded(ctx context.Context, ev *switchboard.Event, req *switchboard.Request) error
}

// Start begins working delivery jobs with d (none when d is nil: an engine
// that dispatches deliveries itself) and, when cfg.Sender is set, send
// jobs with it, in one River client so that its leader knows both kinds.
// With load, and a d that is a LoadedDeliverer, a job's events are loaded
// together.
func (q *Queue[TTx]) Start(ctx context.Context, d switchboard.Deliverer, load Loader, cfg switchboard.DeliveryConfig) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.worker != nil {
		return errors.New("delivery already started")
	}
	workers := max(cfg.Workers, 1)
	onRescue := cfg.Rescued
	if onRescue == nil {
		onRescue = func(string) {}
	}
	registry := river.NewWorkers()
	queues := map[string]river.QueueConfig{}
	if d != nil {
		w := &worker{deliverer: d, timeout: cfg.JobTimeout, slots: make(chan struct{}, workers), onRescue: onRescue}
		if ld, ok := d.(LoadedDeliverer); ok && load != nil {
			w.load, w.loaded = load, ld
		}
		if err := river.AddWorkerSafely(registry, w); err != nil {
			return fmt.Errorf("register delivery worker: %w", err)
		}
		queues[river.QueueDefault] = river.QueueConfig{MaxWorkers: workers}
	}
	if cfg.Sender != nil {
		sendWorkers := cfg.SendWorkers
		if sendWorkers <= 0 {
			sendWorkers = workers
		}
		if err := river.AddWorkerSafely(registry, &sendWorker{sender: cfg.Sender, timeout: cfg.JobTimeout, onRescue: onRescue}); err != nil {
			return fmt.Errorf("register send worker: %w", err)
		}
		queues[SendQueue] = river.QueueConfig{MaxWorkers: sendWorkers}
	}
	if len(queues) == 0 {
		return errors.New("start jobs: neither deliveries nor sends to work")
	}
	poll := cfg.PollInterval
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	client, err := river.NewClient(q.driver, &river.Config{
		// The node's name: a job's last worker (attempted_by) says which
		// process runs it, for rescue when that process stops beating.
		ID:                   cfg.Node,
		Logger:               quiet(q.logger),
		Workers:              registry,
		Queues:               queues,
		FetchCooldown:        min(poll, 10*time.Millisecond),
		FetchPollInterval:    poll,
		PollOnly:             q.pollOnly,
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: cfg.RescueAfter,
		// Completed jobs are only a cache of what the events table says.
		CompletedJobRetentionPeriod: time.Hour,
	})
	if err != nil {
		return fmt.Errorf("river worker client: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return fmt.Errorf("start river: %w", err)
	}
	q.worker = client
	return nil
}

// cancelWait is how long Stop waits for the jobs it cancelled to return.
const cancelWait = 500 * time.Millisecond

// Stop stops working jobs, letting running ones finish until ctx is done,
// then cancelling them (their jobs run again in the next process), and
// waits at most cancelWait more.
func (q *Queue[TTx]) Stop(ctx context.Context) error {
	q.mu.Lock()
	client := q.worker
	q.worker = nil
	q.mu.Unlock()
	if client == nil {
		return nil
	}
	if err := client.Stop(ctx); err != nil {
		// Cancelled jobs return at once (their requests are cut), so a
		// short wait keeps the process within its shutdown grace.
		cancelCtx, cancel := context.WithTimeout(context.Background(), cancelWait)
		defer cancel()
		if cerr := client.StopAndCancel(cancelCtx); cerr != nil {
			return fmt.Errorf("stop river: %w (then %w)", err, cerr)
		}
	}
	return nil
}

// worker delivers a job's events concurrently. slots, shared by all jobs,
// bounds the deliveries in flight to the configured worker count.
type worker struct {
	river.WorkerDefaults[DeliverArgs]
	deliverer switchboard.Deliverer
	timeout   time.Duration
	slots     chan struct{}
	onRescue  func(kind string)
	// load and loaded, when set, load a job's events together and deliver
	// them as loaded.
	load   Loader
	loaded LoadedDeliverer
}

func (w *worker) Timeout(*river.Job[DeliverArgs]) time.Duration { return w.timeout }

// Work fails the job if any delivery failed internally; River then runs it
// again, and the events already handled are skipped by their attempt count.
// A job taken over from a process that stopped while running it delivers
// each event still as it was as a redelivery (RescuedDeliverer), so that
// the attempt that process may have made is on record.
func (w *worker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	begun := time.Now() // before the job's events are read
	fenced, _ := w.deliverer.(FencedDeliverer)
	deliver := w.deliverFunc(ctx, job.Args.Events)
	if rd, ok := w.deliverer.(RescuedDeliverer); ok && rescued(job.JobRow) {
		w.onRescue("delivery")
		deliver = func(due Due) error { return rd.DeliverRescued(ctx, due.EventID, due.Attempts) }
	}
	for _, due := range job.Args.Events {
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return errors.Join(append(errs, ctx.Err())...)
		}
		wg.Go(func() {
			defer func() { <-w.slots }()
			// What was read at begun may be stale if the lease lapsed
			// since (a pause while this event waited for a worker): its
			// job may run in another replica now.
			if fenced != nil && !fenced.HeldSince(begun) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("event %s: %w", due.EventID, errLeaseLost))
				mu.Unlock()
				return
			}
			if err := deliver(due); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("event %s: %w", due.EventID, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// deliverFunc returns how to deliver each of events: as loaded together
// when the worker can load, one by one otherwise. A failed load falls back
// to one by one, which reports its own errors.
func (w *worker) deliverFunc(ctx context.Context, events []Due) func(Due) error {
	one := func(due Due) error { return w.deliverer.Deliver(ctx, due.EventID, due.Attempts) }
	if w.load == nil || len(events) < 2 {
		return one
	}
	ids := make([]string, len(events))
	for i, due := range events {
		ids[i] = due.EventID
	}
	loadedEvents, requests, err := w.load.EventsForDelivery(ctx, ids)
	if err != nil {
		return one
	}
	byID := make(map[string]*switchboard.Event, len(loadedEvents))
	for _, ev := range loadedEvents {
		byID[ev.ID] = ev
	}
	return func(due Due) error {
		ev, ok := byID[due.EventID]
		if !ok || requests[ev.RequestID] == nil {
			return one(due) // unknown: Deliver says so
		}
		if ev.State.Terminal() || ev.Attempts != due.Attempts {
			return nil // moved on since the job was made: a stale job
		}
		return w.loaded.DeliverLoaded(ctx, ev, requests[ev.RequestID])
	}
}

// FencedDeliverer is a Deliverer whose deliveries a lease fences among
// replicas that share the store; *deliver.Deliverer is one.
type FencedDeliverer interface {
	// HeldSince reports whether deliveries decided on what this process
	// read at start may still be made.
	HeldSince(start time.Time) bool
}

// errLeaseLost fails a job whose events were read before this process's
// lease lapsed: none of them is delivered, since another replica may have
// taken the job over meanwhile. River runs it again later, when the
// attempt counts tell what is still due.
var errLeaseLost = errors.New("not delivered: the lease lapsed since the job began")

// RescuedDeliverer delivers an event of a job taken over from a process
// that stopped while running it; *deliver.Deliverer is one.
type RescuedDeliverer interface {
	DeliverRescued(ctx context.Context, eventID string, attempts int) error
}

// rescuedError is the start of the error River's rescuer records on a job
// it takes over (a job left running past RescueStuckJobsAfter); a test
// pins it, so that an upgrade that changes it is noticed.
const rescuedError = "Stuck job rescued"

// RescuedByLiveness is the error recorded on a job taken over from a
// process that stopped beating (postgres' RescueOrphans): it starts as
// River's own rescues do, so rescued tells both.
const RescuedByLiveness = rescuedError + ": the process running it stopped beating"

// rescued reports whether job was taken over from a process that stopped
// while running it: its last run ended by rescue, not by an error of its
// own (after which nothing may have been sent).
func rescued(job *rivertype.JobRow) bool {
	return len(job.Errors) > 0 && strings.HasPrefix(job.Errors[len(job.Errors)-1].Error, rescuedError)
}

// sendWorker sends one outbound message per job.
type sendWorker struct {
	river.WorkerDefaults[SendArgs]
	sender   switchboard.Sender
	timeout  time.Duration
	onRescue func(kind string)
}

func (w *sendWorker) Timeout(*river.Job[SendArgs]) time.Duration { return w.timeout }

// Work fails the job on an internal failure; River then runs it again with
// the same attempt count.
func (w *sendWorker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	if rescued(job.JobRow) {
		// The Sender resolves a send left in flight without sending it
		// twice (see switchboard.Sender); the rescue is only counted.
		w.onRescue("send")
	}
	if err := w.sender.Send(ctx, job.Args.MessageID, job.Args.Attempts); err != nil {
		return fmt.Errorf("message %s: %w", job.Args.MessageID, err)
	}
	return nil
}

// quiet keeps River's own info logging out of Switchboard's logs; warnings
// and errors still come through.
func quiet(l *slog.Logger) *slog.Logger {
	if l == nil {
		l = slog.Default()
	}
	return slog.New(levelFloor{l.Handler(), slog.LevelWarn})
}

type levelFloor struct {
	slog.Handler
	floor slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.floor && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(a), h.floor}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(name), h.floor}
}
