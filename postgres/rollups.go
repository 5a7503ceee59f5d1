package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/store"
)

// The primitives of the rollups (store.Store.RollUp and Dashboard). Each
// selection of facts walks the index on its time (migration 0009) and
// joins the fact's event or message by primary key.

// minuteOf is the start of the minute of a timestamptz column, whatever
// the session's time zone.
func minuteOf(column string) string {
	return `to_timestamp(floor(extract(epoch FROM ` + column + `) / 60) * 60)`
}

func (c *conn) countByMinute(ctx context.Context, query string, from, until time.Time) ([]store.MinuteCount, error) {
	return collect(ctx, c.q, query, []any{from, until}, func(row rowScanner) (store.MinuteCount, error) {
		var mc store.MinuteCount
		err := row.Scan(&mc.Minute, &mc.Key, &mc.N)
		mc.Minute = mc.Minute.UTC()
		return mc, err
	})
}

func (c *conn) RequestsByMinute(ctx context.Context, from, until time.Time) ([]store.MinuteCount, error) {
	return c.countByMinute(ctx, `SELECT `+minuteOf("received_at")+`, outcome, count(*) FROM requests
        WHERE received_at >= $1 AND received_at < $2 GROUP BY 1, 2`, from, until)
}

func (c *conn) SuppressionsByMinute(ctx context.Context, from, until time.Time) ([]store.MinuteCount, error) {
	return c.countByMinute(ctx, `SELECT `+minuteOf("created_at")+`, reason, count(*) FROM suppressions
        WHERE created_at >= $1 AND created_at < $2 GROUP BY 1, 2`, from, until)
}

// DeadByMinute walks events_terminal (state, updated_at).
func (c *conn) DeadByMinute(ctx context.Context, from, until time.Time) ([]store.MinuteCount, error) {
	return c.countByMinute(ctx, `SELECT `+minuteOf("updated_at")+`, route, count(*) FROM events
        WHERE state = 'dead' AND updated_at >= $1 AND updated_at < $2 GROUP BY 1, 2`, from, until)
}

// each runs a query and calls scan on each of its rows, until one fails.
func (c *conn) each(ctx context.Context, query string, args []any, dest []any, fn func() error) error {
	rows, err := c.q.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	_, err = pgx.ForEachRow(rows, dest, fn)
	return err
}

func (c *conn) AttemptFacts(ctx context.Context, from, until time.Time, fn func(store.AttemptFact) error) error {
	var (
		f         store.AttemptFact
		latencyUS int64
	)
	return c.each(ctx, `SELECT a.started_at, e.route, a.status_code, a.latency_us, a.twilio_code
        FROM attempts a JOIN events e ON e.id = a.event_id
        WHERE a.started_at >= $1 AND a.started_at < $2`, []any{from, until},
		[]any{&f.StartedAt, &f.Route, &f.StatusCode, &latencyUS, &f.TwilioCode}, func() error {
			f.StartedAt, f.Latency = f.StartedAt.UTC(), time.Duration(latencyUS)*time.Microsecond
			return fn(f)
		})
}

func (c *conn) StatusFacts(ctx context.Context, from, until time.Time, fn func(store.StatusFact) error) error {
	var (
		f               store.StatusFact
		sent, delivered *time.Time
	)
	return c.each(ctx, `SELECT h.at, h.status, h.error_code, h.source, m.pool, m.template, m.to_number,
            m.sent_at, m.delivered_at
        FROM message_status h JOIN messages m ON m.id = h.message_id
        WHERE h.at >= $1 AND h.at < $2 AND h.applied`, []any{from, until},
		[]any{&f.At, &f.Status, &f.ErrorCode, &f.Source, &f.Pool, &f.Template, &f.To, &sent, &delivered}, func() error {
			f.At, f.SentAt, f.DeliveredAt = f.At.UTC(), utc(sent), utc(delivered)
			return fn(f)
		})
}

// The failed messages walk messages_refused, whose terms the query
// repeats so that a generic plan uses it.
func (c *conn) SendFacts(ctx context.Context, from, until time.Time, fn func(store.SendFact) error) error {
	var f store.SendFact
	return c.each(ctx, `SELECT sent_at, pool, template, to_number, false, 0 FROM messages
        WHERE sent_at >= $1 AND sent_at < $2
        UNION ALL
        SELECT updated_at, pool, template, to_number, true, error_code FROM messages
        WHERE state = 'failed' AND twilio_sid = '' AND updated_at >= $1 AND updated_at < $2`, []any{from, until},
		[]any{&f.At, &f.Pool, &f.Template, &f.To, &f.Failed, &f.ErrorCode}, func() error {
			f.At = f.At.UTC()
			return fn(f)
		})
}

// FirstFact takes the least of each index's first entry from from.
func (c *conn) FirstFact(ctx context.Context, from time.Time) (time.Time, error) {
	var first *time.Time
	err := c.q.QueryRow(ctx, `SELECT least(
        (SELECT min(received_at) FROM requests WHERE received_at >= $1),
        (SELECT min(started_at) FROM attempts WHERE started_at >= $1),
        (SELECT min(at) FROM message_status WHERE at >= $1),
        (SELECT min(sent_at) FROM messages WHERE sent_at >= $1),
        (SELECT min(updated_at) FROM messages WHERE state = 'failed' AND twilio_sid = '' AND updated_at >= $1),
        (SELECT min(created_at) FROM suppressions WHERE created_at >= $1),
        (SELECT min(updated_at) FROM events WHERE state = 'dead' AND updated_at >= $1))`, from).Scan(&first)
	return utc(first), err
}

// rollupMark is the name of the mark of the rollups.
const rollupMark = "rollups"

func (c *conn) RollupMark(ctx context.Context) (time.Time, error) {
	var minute time.Time
	err := c.q.QueryRow(ctx, `SELECT minute FROM rollup_marks WHERE name = $1`, rollupMark).Scan(&minute)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	return minute.UTC(), err
}

// Rollups and Samples sum the minutes of each bucket of $3 seconds from
// $1; the histograms of a bucket come joined by spaces, which
// store.DecodeLatency sums.
func (c *conn) Rollups(ctx context.Context, from, until time.Time, step time.Duration) ([]store.RollupRow, error) {
	return collect(ctx, c.q, `SELECT floor(extract(epoch FROM minute - $1::timestamptz) / $3::bigint)::bigint AS bucket, series, key,
            sum(n)::bigint, sum(ok)::bigint, sum(failed)::bigint, coalesce(string_agg(nullif(latency, ''), ' '), '')
        FROM rollups WHERE minute >= $1 AND minute < $2 GROUP BY bucket, series, key`,
		[]any{from, until, int64(step / time.Second)}, func(row rowScanner) (store.RollupRow, error) {
			var (
				r       store.RollupRow
				bucket  int64
				latency string
			)
			err := row.Scan(&bucket, &r.Series, &r.Key, &r.N, &r.OK, &r.Failed, &latency)
			r.Minute, r.Latency = from.Add(time.Duration(bucket)*step), store.DecodeLatency(latency)
			return r, err
		})
}

func (c *conn) Samples(ctx context.Context, from, until time.Time, step time.Duration) ([]switchboard.Sample, error) {
	return collect(ctx, c.q, `SELECT floor(extract(epoch FROM minute - $1::timestamptz) / $3::bigint)::bigint AS bucket, series, key,
            sum(value), max(value), coalesce(string_agg(nullif(latency, ''), ' '), '')
        FROM samples WHERE minute >= $1 AND minute < $2 GROUP BY bucket, series, key`,
		[]any{from, until, int64(step / time.Second)}, func(row rowScanner) (switchboard.Sample, error) {
			var (
				s        switchboard.Sample
				bucket   int64
				series   string
				sum, top float64
				latency  string
			)
			err := row.Scan(&bucket, &series, &s.Key, &sum, &top, &latency)
			s.Minute, s.Series, s.Value = from.Add(time.Duration(bucket)*step), switchboard.SampleSeries(series), sum
			if s.Series.Gauge() {
				s.Value = top
			}
			s.Latency = store.DecodeLatency(latency)
			return s, err
		})
}

// LockRollups takes a transaction's advisory lock keyed on the schema, so
// that passes of replicas sharing it write one after the other, and those
// of other schemas do not wait.
func (c *conn) LockRollups(ctx context.Context) error {
	_, err := c.q.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('switchboard rollups ' || coalesce(current_schema(), ''), 0))`)
	return err
}

// ReplaceRollups deletes the range and inserts the rows in one statement
// each, the rows as arrays.
func (c *conn) ReplaceRollups(ctx context.Context, from, until time.Time, rows []store.RollupRow) error {
	if _, err := c.q.Exec(ctx, `DELETE FROM rollups WHERE minute >= $1 AND minute < $2`, from, until); err != nil {
		return fmt.Errorf("delete rollups: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	minutes, series, keys := make([]time.Time, len(rows)), make([]string, len(rows)), make([]string, len(rows))
	n, ok, failed, latency := make([]int64, len(rows)), make([]int64, len(rows)), make([]int64, len(rows)), make([]string, len(rows))
	for i, r := range rows {
		minutes[i], series[i], keys[i] = r.Minute, r.Series, r.Key
		n[i], ok[i], failed[i], latency[i] = r.N, r.OK, r.Failed, store.EncodeLatency(r.Latency)
	}
	_, err := c.q.Exec(ctx, `INSERT INTO rollups (minute, series, key, n, ok, failed, latency)
        SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[])`,
		minutes, series, keys, n, ok, failed, latency)
	if err != nil {
		return fmt.Errorf("insert %d rollups: %w", len(rows), err)
	}
	return nil
}

func (c *conn) SetRollupMark(ctx context.Context, mark time.Time) error {
	_, err := c.q.Exec(ctx, `INSERT INTO rollup_marks (name, minute) VALUES ($1, $2)
        ON CONFLICT (name) DO UPDATE SET minute = excluded.minute`, rollupMark, mark)
	return err
}

func (c *conn) DeleteRollups(ctx context.Context, before time.Time) error {
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM rollups WHERE minute < $1`, before)
	b.Queue(`DELETE FROM samples WHERE minute < $1`, before)
	return sendBatch(ctx, c.q, b, func(i int) string { return [...]string{"delete rollups", "delete samples"}[i] })
}

// UpsertSamples writes the samples in one statement, as arrays. Samples
// of one minute, series, key and node in one call would meet twice in it,
// which PostgreSQL refuses: the last of them is kept, as one after the
// other would leave it.
func (c *conn) UpsertSamples(ctx context.Context, samples []switchboard.Sample) error {
	type sampleKey struct {
		minute            time.Time
		series, key, node string
	}
	last := make(map[sampleKey]int, len(samples))
	for i, s := range samples {
		last[sampleKey{s.Minute, string(s.Series), s.Key, s.Node}] = i
	}
	var (
		minutes                   []time.Time
		series, keys, nodes, hist []string
		values                    []float64
	)
	for i, s := range samples {
		if last[sampleKey{s.Minute, string(s.Series), s.Key, s.Node}] != i {
			continue
		}
		minutes, series, keys, nodes = append(minutes, s.Minute), append(series, string(s.Series)), append(keys, s.Key), append(nodes, s.Node)
		values, hist = append(values, s.Value), append(hist, store.EncodeLatency(s.Latency))
	}
	_, err := c.q.Exec(ctx, `INSERT INTO samples (minute, series, key, node, value, latency)
        SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::text[])
        ON CONFLICT (minute, series, key, node) DO UPDATE SET value = excluded.value, latency = excluded.latency`,
		minutes, series, keys, nodes, values, hist)
	return err
}
