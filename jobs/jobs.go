// Package jobs runs Switchboard's delivery jobs on River. It is generic over
// River's driver so that the sqlite and postgres stores share one adapter:
// each store inserts jobs in its own transactions and hands Start a
// switchboard.Deliverer to work them.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/switchboard-dev/switchboard"
)

// DeliverArgs is a delivery job: deliver the event to its route's target.
type DeliverArgs struct {
	EventID string `json:"event_id"`
}

// Kind names the job in River's tables.
func (DeliverArgs) Kind() string { return "switchboard_deliver" }

// InsertOpts gives delivery jobs an attempt budget far above any route's:
// attempt counting is the Deliverer's (retries are snoozes), so River's own
// count only grows on internal failures such as a database outage.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 100}
}

// Queue inserts delivery jobs and, once started, works them.
type Queue[TTx any] struct {
	driver   riverdriver.Driver[TTx]
	logger   *slog.Logger
	inserter *river.Client[TTx]

	mu     sync.Mutex
	worker *river.Client[TTx]
}

// New returns a Queue on driver. It does not work jobs until Start.
func New[TTx any](driver riverdriver.Driver[TTx], logger *slog.Logger) (*Queue[TTx], error) {
	inserter, err := river.NewClient(driver, &river.Config{Logger: quiet(logger)})
	if err != nil {
		return nil, fmt.Errorf("river insert client: %w", err)
	}
	return &Queue[TTx]{driver: driver, logger: logger, inserter: inserter}, nil
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

// InsertTx schedules a delivery for each event inside tx, so that the jobs
// exist exactly when the events do.
func (q *Queue[TTx]) InsertTx(ctx context.Context, tx TTx, eventIDs []string) error {
	if len(eventIDs) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(eventIDs))
	for i, id := range eventIDs {
		params[i] = river.InsertManyParams{Args: DeliverArgs{EventID: id}}
	}
	if _, err := q.inserter.InsertManyFastTx(ctx, tx, params); err != nil {
		return fmt.Errorf("insert %d delivery jobs: %w", len(eventIDs), err)
	}
	return nil
}

// Start begins working delivery jobs with d.
func (q *Queue[TTx]) Start(ctx context.Context, d switchboard.Deliverer, cfg switchboard.DeliveryConfig) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.worker != nil {
		return errors.New("delivery already started")
	}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &worker{deliverer: d, timeout: cfg.JobTimeout}); err != nil {
		return fmt.Errorf("register delivery worker: %w", err)
	}
	poll := cfg.PollInterval
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	client, err := river.NewClient(q.driver, &river.Config{
		Logger:            quiet(q.logger),
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: max(cfg.Workers, 1)}},
		FetchCooldown:     min(poll, 10*time.Millisecond),
		FetchPollInterval: poll,
		JobTimeout:        cfg.JobTimeout,
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

// Stop stops working jobs, letting running ones finish until ctx is done,
// then cancelling them (their jobs are retried by the next process).
func (q *Queue[TTx]) Stop(ctx context.Context) error {
	q.mu.Lock()
	client := q.worker
	q.worker = nil
	q.mu.Unlock()
	if client == nil {
		return nil
	}
	if err := client.Stop(ctx); err != nil {
		cancelCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if cerr := client.StopAndCancel(cancelCtx); cerr != nil {
			return fmt.Errorf("stop river: %w (then %w)", err, cerr)
		}
	}
	return nil
}

type worker struct {
	river.WorkerDefaults[DeliverArgs]
	deliverer switchboard.Deliverer
	timeout   time.Duration
}

func (w *worker) Timeout(*river.Job[DeliverArgs]) time.Duration { return w.timeout }

func (w *worker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	err := w.deliverer.Deliver(ctx, job.Args.EventID)
	if after, ok := switchboard.AsRetry(err); ok {
		return river.JobSnooze(after)
	}
	return err
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
