package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// The rollups are the dashboard's per-minute aggregates, computed from the
// rows the store keeps: each fact is counted in the minute of its own time.
// A RollupRow's series says what it counts, by Key:
const (
	// seriesWebhooks: requests received, by outcome; N.
	seriesWebhooks = "webhooks"
	// seriesAttempts: delivery attempts started, by route; N attempts,
	// Failed those the app did not answer 2xx, Latency the app's time.
	seriesAttempts = "attempts"
	// seriesAttemptCodes: attempts with a Twilio error code, by code; N.
	seriesAttemptCodes = "attempt_codes"
	// seriesPools, seriesTemplates and seriesCountries: outbound messages
	// by pool, by template and by the recipient's country; N sent
	// (accepted by Twilio), OK delivered, Failed failed or undelivered,
	// Latency the time from sent to delivered.
	seriesPools     = "pools"
	seriesTemplates = "templates"
	seriesCountries = "countries"
	// seriesStatuses: status changes applied, by status; N.
	seriesStatuses = "statuses"
	// seriesMessageCodes: failed or undelivered messages with an error
	// code, by code; N.
	seriesMessageCodes = "message_codes"
	// seriesOptOuts: numbers that opted out (Key empty); N.
	seriesOptOuts = "opt_outs"
	// seriesDead: events dead-lettered, by route, in the minute they died
	// (their updated time, which a dead event keeps until it is replayed
	// or deleted); N.
	seriesDead = "dead"
	// seriesDebuggerCodes: Twilio's Debugger alerts received, by error
	// code ("0" for none, or the others past the cap); N.
	seriesDebuggerCodes = "debugger_codes"
)

// Facts are stored up to a few minutes after their time: an attempt when
// it ends (its time is its start), a request when its batch commits. Each
// pass therefore recomputes the minutes from rollupLateness before now's
// on; older ones are final. A pass computes at most rollupChunk of
// minutes, so that one catching up reads a bounded number of rows.
const (
	rollupLateness = 3 * time.Minute
	rollupChunk    = time.Hour
)

// RollUp recomputes the minutes not final yet, up to now's, from the
// stored facts, and replaces their aggregates; see switchboard.Store. The
// facts are read outside any write transaction, on the engine's read
// connections: on a store with one writer, intake does not wait for
// them. Only the replacement is written, in one short transaction that
// holds the rollups (LockRollups), so that passes of several replicas
// write one after the other; a pass that finds minutes made final
// meanwhile by another leaves them as that one wrote them.
func (s *Store) RollUp(ctx context.Context, now time.Time) (switchboard.RollUpResult, error) {
	now = now.UTC()
	cur := now.Truncate(time.Minute)
	oldest := cur.Add(-switchboard.RollupRetention)
	r := s.driver.Read()
	mark, err := r.RollupMark(ctx)
	if err != nil {
		return switchboard.RollUpResult{}, fmt.Errorf("roll up: read the mark: %w", err)
	}
	// The first pass starts at the oldest fact kept (a store upgraded with
	// its history gets that history's dashboard), and a pass after a long
	// stop at the oldest minute kept.
	mark = later(mark, oldest)
	res := switchboard.RollUpResult{From: mark, Until: cur.Add(time.Minute)}
	// Minutes without a fact have no aggregates: a pass catching up skips
	// them, and starts computing at the first fact.
	next, err := r.FirstFact(ctx, mark)
	if err != nil {
		return switchboard.RollUpResult{}, fmt.Errorf("roll up: find the next fact: %w", err)
	}
	start := res.Until
	if !next.IsZero() && next.Before(res.Until) {
		start = later(mark, next.UTC().Truncate(time.Minute))
	}
	if res.Until.Sub(start) > rollupChunk {
		res.Until, res.Behind = start.Add(rollupChunk), true
	}
	var rows []RollupRow
	if start.Before(res.Until) {
		rows, err = s.aggregate(ctx, r, start, res.Until)
		if err != nil {
			return switchboard.RollUpResult{}, fmt.Errorf("roll up %s to %s: %w",
				start.Format(time.RFC3339), res.Until.Format(time.RFC3339), err)
		}
	}
	final := earlier(res.Until, cur.Add(-rollupLateness))
	err = s.driver.InTx(ctx, func(tx Tx) error {
		if err := tx.LockRollups(ctx); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		stored, err := tx.RollupMark(ctx)
		if err != nil {
			return fmt.Errorf("read the mark: %w", err)
		}
		// Minutes another pass made final since this one read the mark
		// stay as it wrote them.
		write := later(res.From, stored)
		if write.Before(res.Until) {
			keep := rows[:0:0]
			for _, row := range rows {
				if !row.Minute.Before(write) {
					keep = append(keep, row)
				}
			}
			if err := tx.ReplaceRollups(ctx, write, res.Until, keep); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		res.Final = later(final, stored)
		if final.After(stored) {
			if err := tx.SetRollupMark(ctx, final); err != nil {
				return fmt.Errorf("set the mark: %w", err)
			}
		}
		if err := tx.DeleteRollups(ctx, oldest); err != nil {
			return fmt.Errorf("delete what is older than %s: %w", switchboard.RollupRetention, err)
		}
		return nil
	})
	if err != nil {
		return switchboard.RollUpResult{}, fmt.Errorf("roll up: %w", err)
	}
	return res, nil
}

// aggregates gathers a pass's rows by minute, series and key.
type aggregates map[rollupKey]*RollupRow

type rollupKey struct {
	minute      time.Time
	series, key string
}

func (a aggregates) row(at time.Time, series, key string) *RollupRow {
	k := rollupKey{at.UTC().Truncate(time.Minute), series, key}
	r, ok := a[k]
	if !ok {
		r = &RollupRow{Minute: k.minute, Series: series, Key: key}
		a[k] = r
	}
	return r
}

func (r *RollupRow) observe(d time.Duration) {
	if r.Latency == nil {
		r.Latency = switchboard.NewLatencyHistogram()
	}
	r.Latency.Observe(d)
}

// aggregate reads the facts of [from, until) and returns their aggregates,
// ordered by minute, series and key.
func (s *Store) aggregate(ctx context.Context, r Reader, from, until time.Time) ([]RollupRow, error) {
	agg := aggregates{}
	requests, err := r.RequestsByMinute(ctx, from, until)
	if err != nil {
		return nil, fmt.Errorf("count requests: %w", err)
	}
	for _, c := range requests {
		agg.row(c.Minute, seriesWebhooks, c.Key).N += c.N
	}
	err = r.AttemptFacts(ctx, from, until, func(f AttemptFact) error {
		row := agg.row(f.StartedAt, seriesAttempts, f.Route)
		row.N++
		if f.StatusCode < 200 || f.StatusCode > 299 {
			row.Failed++
		}
		row.observe(f.Latency)
		if f.TwilioCode != 0 {
			agg.row(f.StartedAt, seriesAttemptCodes, strconv.Itoa(f.TwilioCode)).N++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read attempts: %w", err)
	}
	err = r.StatusFacts(ctx, from, until, func(f StatusFact) error {
		agg.row(f.At, seriesStatuses, f.Status).N++
		country := s.countries.of(f.To)
		switch {
		case delivery(f):
			for _, series := range [][2]string{{seriesPools, f.Pool}, {seriesTemplates, f.Template}, {seriesCountries, country}} {
				row := agg.row(f.At, series[0], series[1])
				row.OK++
				if !f.SentAt.IsZero() && !f.At.Before(f.SentAt) {
					row.observe(f.At.Sub(f.SentAt))
				}
			}
		case failure(f):
			for _, series := range [][2]string{{seriesPools, f.Pool}, {seriesTemplates, f.Template}, {seriesCountries, country}} {
				agg.row(f.At, series[0], series[1]).Failed++
			}
			if f.ErrorCode != 0 {
				agg.row(f.At, seriesMessageCodes, strconv.Itoa(f.ErrorCode)).N++
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read status changes: %w", err)
	}
	err = r.SendFacts(ctx, from, until, func(f SendFact) error {
		country := s.countries.of(f.To)
		for _, series := range [][2]string{{seriesPools, f.Pool}, {seriesTemplates, f.Template}, {seriesCountries, country}} {
			row := agg.row(f.At, series[0], series[1])
			if f.Failed {
				row.Failed++
			} else {
				row.N++
			}
		}
		if f.Failed && f.ErrorCode != 0 {
			agg.row(f.At, seriesMessageCodes, strconv.Itoa(f.ErrorCode)).N++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read messages sent: %w", err)
	}
	dead, err := r.DeadByMinute(ctx, from, until)
	if err != nil {
		return nil, fmt.Errorf("count dead letters: %w", err)
	}
	for _, c := range dead {
		agg.row(c.Minute, seriesDead, c.Key).N += c.N
	}
	optOuts, err := r.SuppressionsByMinute(ctx, from, until)
	if err != nil {
		return nil, fmt.Errorf("count opt-outs: %w", err)
	}
	for _, c := range optOuts {
		if !strings.HasPrefix(c.Key, switchboard.RefusalPrefix()) {
			agg.row(c.Minute, seriesOptOuts, "").N += c.N
		}
	}
	debugger, err := r.DebuggerByMinute(ctx, from, until)
	if err != nil {
		return nil, fmt.Errorf("count debugger alerts: %w", err)
	}
	for _, c := range debugger {
		agg.row(c.Minute, seriesDebuggerCodes, c.Key).N += c.N
	}
	rows := make([]RollupRow, 0, len(agg))
	for _, row := range agg {
		rows = append(rows, *row)
	}
	rows = capKeys(rows, seriesTemplates, switchboard.OtherKey)
	rows = capKeys(rows, seriesMessageCodes, "0")
	rows = capKeys(rows, seriesAttemptCodes, "0")
	rows = capKeys(rows, seriesDebuggerCodes, "0")
	slices.SortFunc(rows, func(a, b RollupRow) int {
		return cmp.Or(a.Minute.Compare(b.Minute), cmp.Compare(a.Series, b.Series), cmp.Compare(a.Key, b.Key))
	})
	return rows, nil
}

// delivery reports whether f is a message's delivery: delivered, or read
// when that is how its delivery became known (a read receipt with no
// delivery receipt before it sets the delivered time).
func delivery(f StatusFact) bool {
	switch switchboard.MessageState(f.Status) {
	case switchboard.MessageDelivered:
		return true
	case switchboard.MessageRead:
		return f.At.Equal(f.DeliveredAt)
	}
	return false
}

// failure reports whether f is a message's failure: failed or undelivered.
// A cancel is not (the app's, or Twilio's of a scheduled message): the
// message was withdrawn, not lost.
func failure(f StatusFact) bool {
	if f.Status == switchboard.StatusCanceled {
		return false
	}
	state, _ := switchboard.StatusState(f.Status)
	return state == switchboard.MessageFailed || state == switchboard.MessageUndelivered
}

// capKeys keeps the switchboard.MaxDashboardKeys keys of series counted
// most often over rows, and counts the others together under other: their
// keys come from outside (an app's templates, codes in callbacks), and a
// flood of distinct ones must not become a flood of rows.
func capKeys(rows []RollupRow, series, other string) []RollupRow {
	totals := map[string]int64{}
	for _, r := range rows {
		if r.Series == series {
			totals[r.Key] += r.N + r.OK + r.Failed
		}
	}
	if len(totals) <= switchboard.MaxDashboardKeys {
		return rows
	}
	keys := make([]string, 0, len(totals))
	for k := range totals {
		if k != other { // already the others' key: counted with them
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(totals[b], totals[a]), cmp.Compare(a, b)) })
	kept := make(map[string]bool, switchboard.MaxDashboardKeys)
	for _, k := range keys[:switchboard.MaxDashboardKeys-1] {
		kept[k] = true
	}
	out := rows[:0]
	others := map[time.Time]*RollupRow{}
	for _, r := range rows {
		if r.Series != series || kept[r.Key] {
			out = append(out, r)
			continue
		}
		o, ok := others[r.Minute]
		if !ok {
			o = &RollupRow{Minute: r.Minute, Series: series, Key: other}
			others[r.Minute] = o
		}
		o.N, o.OK, o.Failed = o.N+r.N, o.OK+r.OK, o.Failed+r.Failed
		if r.Latency != nil {
			if o.Latency == nil {
				o.Latency = switchboard.NewLatencyHistogram()
			}
			o.Latency.Add(r.Latency)
		}
	}
	for _, o := range others {
		out = append(out, *o)
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
