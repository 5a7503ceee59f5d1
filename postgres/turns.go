package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// MaxTurnInterval is the longest interval TakeSenderTurn takes a turn
// for: a day. A longer one is refused, not clamped, so that a garbage
// value cannot push a sender's turns out of reach of its later sends.
const MaxTurnInterval = 24 * time.Hour

// takeSenderTurn is a shared token bucket with a burst of one (GCRA): the
// turn starts at the sender's next_at, or at once when that has passed,
// and the next turn is an interval after its start. The row lock of the
// upsert serialises the takes of a sender across replicas, and every time
// is PostgreSQL's clock_timestamp(), read once the lock is held, so the
// replicas' own clocks do not matter. It returns how long after now the
// turn starts, in microseconds, never negative.
const takeSenderTurn = `INSERT INTO sender_turns AS t (sender, next_at)
    VALUES ($1, clock_timestamp() + $2 * interval '1 microsecond')
    ON CONFLICT (sender) DO UPDATE
        SET next_at = greatest(t.next_at, clock_timestamp()) + $2 * interval '1 microsecond'
    RETURNING (extract(epoch FROM greatest(t.next_at - $2 * interval '1 microsecond' - clock_timestamp(),
        interval '0')) * 1000000)::bigint`

// TakeSenderTurn takes sender's next turn in the bucket every replica on
// this database shares, and reserves the interval after it: the next
// take, from any replica, gets a turn at least interval later. It returns
// how long from now the turn starts (0 when it has come); the caller
// makes its request then, or wastes the turn. Turns are spaced by the
// database's clock, so replicas whose clocks differ still never get two
// turns of a sender less than interval apart. An empty sender, or an
// interval under a microsecond or above MaxTurnInterval, is refused.
func (s *Store) TakeSenderTurn(ctx context.Context, sender string, interval time.Duration) (time.Duration, error) {
	switch {
	case sender == "":
		return 0, errors.New("take a sender's turn: no sender")
	case interval < time.Microsecond || interval > MaxTurnInterval:
		// The table counts in microseconds, PostgreSQL's resolution.
		return 0, fmt.Errorf("take a turn of sender %s: interval %v is outside [1µs, %v]", sender, interval, MaxTurnInterval)
	}
	var us int64
	if err := s.pool.QueryRow(ctx, takeSenderTurn, sender, interval.Microseconds()).Scan(&us); err != nil {
		return 0, fmt.Errorf("take a turn of sender %s: %w", sender, err)
	}
	return time.Duration(us) * time.Microsecond, nil
}

// goSenderTurn marks a sender's request as going now, unless the request
// that went before it still holds the sender (its interval has not run
// out by the database's clock): then nothing changes and no row comes
// back. The row lock serialises two replicas going at once: the second
// finds the first's interval and does not go.
const goSenderTurn = `INSERT INTO sender_turns AS t (sender, next_at, gone_until)
    VALUES ($1, clock_timestamp(), clock_timestamp() + $2 * interval '1 microsecond')
    ON CONFLICT (sender) DO UPDATE SET gone_until = clock_timestamp() + $2 * interval '1 microsecond'
        WHERE coalesce(t.gone_until, '-infinity') <= clock_timestamp()
    RETURNING true`

// GoSenderTurn lets a request of sender go now, and holds the sender for
// interval after it, if the request of the sender that went before it,
// from any replica, has had its interval: a turn taken (TakeSenderTurn)
// ahead of time is spent only by a request that really goes, so one that
// went late, its replica slow to wake, pushes the next back rather than
// bunching with it. Otherwise it returns false and how long from now the
// sender is held (0 when it was freed meanwhile: go again). The caller
// makes its request at once when it returns true. Input is refused as by
// TakeSenderTurn.
func (s *Store) GoSenderTurn(ctx context.Context, sender string, interval time.Duration) (bool, time.Duration, error) {
	switch {
	case sender == "":
		return false, 0, errors.New("go in a sender's turn: no sender")
	case interval < time.Microsecond || interval > MaxTurnInterval:
		return false, 0, fmt.Errorf("go in a turn of sender %s: interval %v is outside [1µs, %v]", sender, interval, MaxTurnInterval)
	}
	var gone bool
	err := s.pool.QueryRow(ctx, goSenderTurn, sender, interval.Microseconds()).Scan(&gone)
	if err == nil {
		return true, 0, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, 0, fmt.Errorf("go in a turn of sender %s: %w", sender, err)
	}
	var us int64
	if err := s.pool.QueryRow(ctx, `SELECT (extract(epoch FROM greatest(gone_until - clock_timestamp(), interval '0'))
        * 1000000)::bigint FROM sender_turns WHERE sender = $1`, sender).Scan(&us); err != nil {
		return false, 0, fmt.Errorf("go in a turn of sender %s: how long it is held: %w", sender, err)
	}
	return false, time.Duration(us) * time.Microsecond, nil
}
