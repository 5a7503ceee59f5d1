package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/store"
)

// The primitives of the rollups (store.Store.RollUp and Dashboard). Each
// selection of facts walks the index on its time (migration 0009); a
// join goes from the fact to its event or message by primary key, in
// that order (CROSS JOIN fixes SQLite's join order).

// The selections of facts, each of [?1, ?2).
const (
	requestsByMinute = `SELECT received_at - received_at % 60000000 AS minute, outcome, count(*) FROM requests
        WHERE received_at >= ?1 AND received_at < ?2 GROUP BY minute, outcome`
	suppressionsByMinute = `SELECT created_at - created_at % 60000000 AS minute, reason, count(*) FROM suppressions
        WHERE created_at >= ?1 AND created_at < ?2 GROUP BY minute, reason`
	// deadByMinute walks events_terminal (state, updated_at), named:
	// without statistics SQLite would rather walk every dead event
	// through events_state. It repeats the index's terms, which SQLite
	// needs to see to use a partial index.
	deadByMinute = `SELECT updated_at - updated_at % 60000000 AS minute, route, count(*) FROM events INDEXED BY events_terminal
        WHERE state IN ('delivered', 'dead') AND state = 'dead' AND updated_at >= ?1 AND updated_at < ?2 GROUP BY minute, route`
	attemptFacts = `SELECT a.started_at, e.route, a.status_code, a.latency_us, a.twilio_code
        FROM attempts a CROSS JOIN events e ON e.id = a.event_id
        WHERE a.started_at >= ?1 AND a.started_at < ?2`
	statusFacts = `SELECT h.at, h.status, h.error_code, h.source, m.pool, m.template, m.to_number,
            m.sent_at, m.delivered_at
        FROM message_status h CROSS JOIN messages m ON m.id = h.message_id
        WHERE h.at >= ?1 AND h.at < ?2 AND h.applied = 1`
	// The failed messages walk messages_refused (named: without
	// statistics SQLite would rather walk every failed message through
	// messages_state), whose terms the query repeats.
	sendFacts = `SELECT sent_at, pool, template, to_number, 0, 0 FROM messages
        WHERE sent_at >= ?1 AND sent_at < ?2
        UNION ALL
        SELECT updated_at, pool, template, to_number, 1, error_code FROM messages INDEXED BY messages_refused
        WHERE state = 'failed' AND twilio_sid = '' AND updated_at >= ?1 AND updated_at < ?2`
	// firstFact takes the least of each index's first entry from ?1.
	firstFact = `SELECT min(t) FROM (
        SELECT (SELECT min(received_at) FROM requests WHERE received_at >= ?1) AS t
        UNION ALL SELECT (SELECT min(started_at) FROM attempts WHERE started_at >= ?1)
        UNION ALL SELECT (SELECT min(at) FROM message_status WHERE at >= ?1)
        UNION ALL SELECT (SELECT min(sent_at) FROM messages WHERE sent_at >= ?1)
        UNION ALL SELECT (SELECT min(updated_at) FROM messages INDEXED BY messages_refused
            WHERE state = 'failed' AND twilio_sid = '' AND updated_at >= ?1)
        UNION ALL SELECT (SELECT min(created_at) FROM suppressions WHERE created_at >= ?1)
        UNION ALL SELECT (SELECT min(updated_at) FROM events INDEXED BY events_terminal
            WHERE state IN ('delivered', 'dead') AND state = 'dead' AND updated_at >= ?1))`
	// The dashboard's reads sum the minutes of each bucket of ?3
	// microseconds from ?1; the histograms of a bucket come joined by
	// spaces, which store.DecodeLatency sums.
	selectRollups = `SELECT (minute - ?1) / ?3 AS bucket, series, key, sum(n), sum(ok), sum(failed),
            group_concat(nullif(latency, ''), ' ')
        FROM rollups WHERE minute >= ?1 AND minute < ?2 GROUP BY bucket, series, key`
	selectSamples = `SELECT (minute - ?1) / ?3 AS bucket, series, key, sum(value), max(value),
            group_concat(nullif(latency, ''), ' ')
        FROM samples WHERE minute >= ?1 AND minute < ?2 GROUP BY bucket, series, key`
)

func (c *conn) countByMinute(ctx context.Context, query string, from, until time.Time) ([]store.MinuteCount, error) {
	return collect(ctx, c.q, query, []any{micros(from), micros(until)}, func(row rowScanner) (store.MinuteCount, error) {
		var (
			mc     store.MinuteCount
			minute int64
		)
		err := row.Scan(&minute, &mc.Key, &mc.N)
		mc.Minute = fromMicros(minute)
		return mc, err
	})
}

func (c *conn) RequestsByMinute(ctx context.Context, from, until time.Time) ([]store.MinuteCount, error) {
	return c.countByMinute(ctx, requestsByMinute, from, until)
}

func (c *conn) SuppressionsByMinute(ctx context.Context, from, until time.Time) ([]store.MinuteCount, error) {
	return c.countByMinute(ctx, suppressionsByMinute, from, until)
}

func (c *conn) DeadByMinute(ctx context.Context, from, until time.Time) ([]store.MinuteCount, error) {
	return c.countByMinute(ctx, deadByMinute, from, until)
}

// each runs a query and calls scan on each of its rows, until one fails.
func (c *conn) each(ctx context.Context, query string, args []any, scan func(rowScanner) error) error {
	rows, err := c.q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (c *conn) AttemptFacts(ctx context.Context, from, until time.Time, fn func(store.AttemptFact) error) error {
	return c.each(ctx, attemptFacts, []any{micros(from), micros(until)},
		func(row rowScanner) error {
			var (
				f                  store.AttemptFact
				started, latencyUS int64
			)
			if err := row.Scan(&started, &f.Route, &f.StatusCode, &latencyUS, &f.TwilioCode); err != nil {
				return err
			}
			f.StartedAt, f.Latency = fromMicros(started), time.Duration(latencyUS)*time.Microsecond
			return fn(f)
		})
}

func (c *conn) StatusFacts(ctx context.Context, from, until time.Time, fn func(store.StatusFact) error) error {
	return c.each(ctx, statusFacts, []any{micros(from), micros(until)},
		func(row rowScanner) error {
			var (
				f               store.StatusFact
				at              int64
				sent, delivered sql.NullInt64
			)
			if err := row.Scan(&at, &f.Status, &f.ErrorCode, &f.Source, &f.Pool, &f.Template, &f.To, &sent, &delivered); err != nil {
				return err
			}
			f.At, f.SentAt, f.DeliveredAt = fromMicros(at), nullMicros(sent), nullMicros(delivered)
			return fn(f)
		})
}

func (c *conn) SendFacts(ctx context.Context, from, until time.Time, fn func(store.SendFact) error) error {
	return c.each(ctx, sendFacts, []any{micros(from), micros(until)},
		func(row rowScanner) error {
			var (
				f  store.SendFact
				at int64
			)
			if err := row.Scan(&at, &f.Pool, &f.Template, &f.To, &f.Failed, &f.ErrorCode); err != nil {
				return err
			}
			f.At = fromMicros(at)
			return fn(f)
		})
}

func (c *conn) FirstFact(ctx context.Context, from time.Time) (time.Time, error) {
	var first sql.NullInt64
	err := c.q.QueryRowContext(ctx, firstFact, micros(from)).Scan(&first)
	return nullMicros(first), err
}

// rollupMark is the name of the mark of the rollups.
const rollupMark = "rollups"

func (c *conn) RollupMark(ctx context.Context) (time.Time, error) {
	var minute int64
	err := c.q.QueryRowContext(ctx, `SELECT minute FROM rollup_marks WHERE name = ?`, rollupMark).Scan(&minute)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return fromMicros(minute), nil
}

func (c *conn) Rollups(ctx context.Context, from, until time.Time, step time.Duration) ([]store.RollupRow, error) {
	return collect(ctx, c.q, selectRollups, []any{micros(from), micros(until), step.Microseconds()},
		func(row rowScanner) (store.RollupRow, error) {
			var (
				r       store.RollupRow
				bucket  int64
				latency sql.NullString
			)
			err := row.Scan(&bucket, &r.Series, &r.Key, &r.N, &r.OK, &r.Failed, &latency)
			r.Minute, r.Latency = from.Add(time.Duration(bucket)*step), store.DecodeLatency(latency.String)
			return r, err
		})
}

func (c *conn) Samples(ctx context.Context, from, until time.Time, step time.Duration) ([]switchboard.Sample, error) {
	return collect(ctx, c.q, selectSamples, []any{micros(from), micros(until), step.Microseconds()},
		func(row rowScanner) (switchboard.Sample, error) {
			var (
				s        switchboard.Sample
				bucket   int64
				sum, top float64
				latency  sql.NullString
			)
			err := row.Scan(&bucket, &s.Series, &s.Key, &sum, &top, &latency)
			s.Minute, s.Value, s.Latency = from.Add(time.Duration(bucket)*step), sum, store.DecodeLatency(latency.String)
			if s.Series.Gauge() {
				s.Value = top
			}
			return s, err
		})
}

// LockRollups needs no lock: SQLite's one writer runs one pass's
// transaction at a time.
func (c *conn) LockRollups(context.Context) error { return nil }

func (c *conn) ReplaceRollups(ctx context.Context, from, until time.Time, rows []store.RollupRow) error {
	if _, err := c.q.ExecContext(ctx, `DELETE FROM rollups WHERE minute >= ? AND minute < ?`, micros(from), micros(until)); err != nil {
		return fmt.Errorf("delete rollups: %w", err)
	}
	for _, r := range rows {
		if _, err := c.q.ExecContext(ctx, `INSERT INTO rollups (minute, series, key, n, ok, failed, latency)
            VALUES (?, ?, ?, ?, ?, ?, ?)`, micros(r.Minute), r.Series, r.Key, r.N, r.OK, r.Failed,
			store.EncodeLatency(r.Latency)); err != nil {
			return fmt.Errorf("insert rollup %s %q: %w", r.Series, r.Key, err)
		}
	}
	return nil
}

func (c *conn) SetRollupMark(ctx context.Context, mark time.Time) error {
	_, err := c.q.ExecContext(ctx, `INSERT INTO rollup_marks (name, minute) VALUES (?, ?)
        ON CONFLICT (name) DO UPDATE SET minute = excluded.minute`, rollupMark, micros(mark))
	return err
}

func (c *conn) DeleteRollups(ctx context.Context, before time.Time) error {
	if _, err := c.q.ExecContext(ctx, `DELETE FROM rollups WHERE minute < ?`, micros(before)); err != nil {
		return err
	}
	_, err := c.q.ExecContext(ctx, `DELETE FROM samples WHERE minute < ?`, micros(before))
	return err
}

func (c *conn) UpsertSamples(ctx context.Context, samples []switchboard.Sample) error {
	for _, s := range samples {
		if _, err := c.q.ExecContext(ctx, `INSERT INTO samples (minute, series, key, node, value, latency)
            VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (minute, series, key, node)
            DO UPDATE SET value = excluded.value, latency = excluded.latency`,
			micros(s.Minute), string(s.Series), s.Key, s.Node, s.Value, store.EncodeLatency(s.Latency)); err != nil {
			return fmt.Errorf("insert sample %s %q: %w", s.Series, s.Key, err)
		}
	}
	return nil
}
