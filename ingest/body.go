package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/sync/semaphore"
)

// Defaults of the body bounds (Options).
const (
	// DefaultMaxBodyMemory bounds the webhook body bytes held in memory at
	// once: 512 bodies of the default 64 KiB limit.
	DefaultMaxBodyMemory = 32 << 20
	// DefaultBodyWait is how long a request waits for its share of the
	// body memory before it is answered 503.
	DefaultBodyWait = time.Second
	// DefaultBodyReadTimeout bounds the reading of one webhook body.
	// Twilio sends a body at once and gives up on an answer after 15 s,
	// so a body that trickles in longer than this is not Twilio's.
	DefaultBodyReadTimeout = 10 * time.Second
)

// errBusy answers a request that could not get its share of the body
// memory in time: 503, so that Twilio tries again or uses its fallback.
var errBusy = errors.New("too many webhook bodies in memory; try again")

// bodyBudget bounds the bytes of webhook bodies held in memory at once,
// whoever sends them: a request reserves the most its body may take before
// reading it, and gives it back once the request is stored and answered.
// Slow or oversized senders can therefore hold at most the budget, and
// genuine requests wait briefly or get 503 (fail closed: never an answer
// for a request not stored) rather than the process running out of memory.
type bodyBudget struct {
	sem  *semaphore.Weighted
	size int64
	wait time.Duration
}

func newBodyBudget(size int64, wait time.Duration) *bodyBudget {
	return &bodyBudget{sem: semaphore.NewWeighted(size), size: size, wait: wait}
}

// reserve waits up to the budget's wait for n bytes and returns the
// function that gives them back.
func (b *bodyBudget) reserve(ctx context.Context, n int64) (release func(), err error) {
	n = min(max(n, 1), b.size)
	ctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	if err := b.sem.Acquire(ctx, n); err != nil {
		return nil, errBusy
	}
	return func() { b.sem.Release(n) }, nil
}

// readBody reads the body of a webhook within the byte limit, the body
// memory budget and the read deadline. The returned release gives the
// reserved memory back; it is never nil, and must be called once the body
// is no longer needed.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, release func(), err error) {
	release = func() {}
	if r.ContentLength > h.maxBody {
		return nil, release, reject(http.StatusRequestEntityTooLarge, "body of %d bytes exceeds the %d-byte limit", r.ContentLength, h.maxBody)
	}
	if r.ContentLength == 0 {
		return nil, release, nil
	}
	want := h.maxBody // unknown length (chunked): reserve the most it may be
	if r.ContentLength > 0 {
		want = r.ContentLength
	}
	if release, err = h.bodies.reserve(r.Context(), want); err != nil {
		return nil, func() {}, err
	}
	// A socket deadline is wall-clock time, whatever clock the handler is
	// given. Not supported by every ResponseWriter (tests' recorders); the
	// server's own ReadTimeout still bounds the read there.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(h.bodyRead))
	// Once the body is in, the deadline goes: left in place it would end
	// the connection's background read, and with it the request's context,
	// while a proxied answer or a commit is still under way.
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()

	limited := http.MaxBytesReader(w, r.Body, h.maxBody)
	if r.ContentLength > 0 {
		body = make([]byte, r.ContentLength) // exactly what it said, not a growing buffer
		_, err = io.ReadFull(limited, body)
	} else {
		body, err = io.ReadAll(limited)
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, release, reject(http.StatusRequestEntityTooLarge, "body exceeds the %d-byte limit", h.maxBody)
		}
		return nil, release, reject(http.StatusBadRequest, "read body: %v", err)
	}
	return body, release, nil
}

// excerpt shortens a value from a request for quoting in a reason or a
// log line, so hostile input cannot blow either up.
func excerpt(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:n], len(s))
}
