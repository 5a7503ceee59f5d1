package groupcommit

import (
	"context"
	"time"
)

// Stage gathers items for up to linger and submits them to next as one,
// merged by merge. Use it in front of a Committer for writes nobody is
// waiting on, so that they join the shared transactions in a few large
// pieces instead of many small ones that each cost a commit. It shares
// next's Options.Fatal: what next will not retry, Stage does not either.
func Stage[T, U any](next *Committer[U], linger time.Duration, maxBatch int, merge func([]T) U) *Committer[T] {
	flush := func(ctx context.Context, batch []T) error {
		return next.Submit(ctx, merge(batch))
	}
	return New(flush, Options{Linger: linger, MaxBatch: maxBatch, Fatal: next.opts.Fatal})
}
