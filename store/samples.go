package store

import (
	"context"
	"fmt"

	"github.com/switchboard-dev/switchboard"
)

// RecordSamples stores what processes measured over finished minutes, in
// one transaction; see switchboard.Store.
func (s *Store) RecordSamples(ctx context.Context, samples []switchboard.Sample) error {
	if len(samples) > switchboard.MaxSamples {
		return fmt.Errorf("%w: %d samples in one call, over %d", switchboard.ErrInvalid, len(samples), switchboard.MaxSamples)
	}
	for _, sm := range samples {
		if err := sm.Validate(); err != nil {
			return err
		}
	}
	if len(samples) == 0 {
		return nil
	}
	if err := s.driver.InTx(ctx, func(tx Tx) error { return tx.UpsertSamples(ctx, samples) }); err != nil {
		return fmt.Errorf("record %d samples: %w", len(samples), err)
	}
	return nil
}
