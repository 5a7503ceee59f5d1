package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"
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
