package sqlite

import (
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/groupcommit"
)

// attemptLinger is how long attempt records wait to be gathered before they
// join the writer. Every delivery records its attempt separately; without
// this, at a steady rate nearly every one would pay for a commit of its own
// and keep the writer busy while webhooks wait for it. Deliveries are not
// waiting on the answer in any hurry; webhooks are.
const attemptLinger = 5 * time.Millisecond

func newAttemptStage(writer *groupcommit.Committer[*writeOp]) *groupcommit.Committer[[]*switchboard.AttemptResult] {
	return groupcommit.Stage(writer, attemptLinger, 256, func(batch [][]*switchboard.AttemptResult) *writeOp {
		op := &writeOp{}
		for _, results := range batch {
			op.attempts = append(op.attempts, results...)
		}
		return op
	})
}
