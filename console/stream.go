package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// Bounds of a live stream.
const (
	// streamBatch is the most rows one poll sends: the newest of a burst.
	// The rest are in the list on reload.
	streamBatch = 50
	// streamLookback is how far before the newest row sent a poll looks
	// again, for events committed after a newer one (ids are taken at
	// arrival; concurrent requests commit together, in any order).
	streamLookback = 5 * time.Second
	// streamWriteTimeout bounds each write to the browser: a browser that
	// stops reading ends its stream rather than holding a buffer.
	streamWriteTimeout = 10 * time.Second
	// streamKeepalive is how many idle polls pass between keep-alive
	// comments, which find a browser that has gone.
	streamKeepalive = 15
	// streamRecheck is how many polls pass between checks that the
	// session still stands, so that signing out elsewhere ends it.
	streamRecheck = 30
)

// stream is GET /console/events/stream: the inspector's new rows as
// server-sent events ("row", data the row's HTML, id the event's id), for
// htmx's SSE extension to prepend. With the inspector's filters, it asks
// the store every StreamEvery for events newer than the newest one shown
// (after=, or Last-Event-ID when the browser reconnects). At most
// MaxStreams run at once (503 beyond); each ends after StreamFor and the
// browser reconnects.
func (c *Console) stream(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := checkParams(r.URL.Query()); err != nil {
		return err
	}
	q, err := parseEventQuery(r.URL.Query())
	if err != nil {
		return err
	}
	if q.search.EventID != "" {
		return badRequest("A search for one event has nothing to stream.")
	}
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = r.URL.Query().Get("after")
	}
	if after, err = cursor(after); err != nil {
		return err
	}
	select {
	case c.streams <- struct{}{}:
		defer func() { <-c.streams }()
	default:
		w.Header().Set("Retry-After", "30")
		return &httpError{http.StatusServiceUnavailable, "Too many live streams are open; the list still works without one."}
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.o.StreamFor)
	defer cancel()

	st := &streamState{filter: q.filter, after: after, seen: map[string]time.Time{}}
	st.filter.Cursor, st.filter.Limit = "", streamBatch
	st.watermark = c.now()
	if after != "" {
		if err := c.startAfter(ctx, st, after); err != nil {
			return err
		}
	}

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not hold the rows back
	w.WriteHeader(http.StatusOK)
	// retry: how long the browser waits before reconnecting.
	if !c.send(rc, w, []byte("retry: 2000\n: live\n\n")) {
		return nil
	}
	tick := time.NewTicker(c.o.StreamEvery)
	defer tick.Stop()
	idle := 0
	for polls := 1; ; polls++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if polls%streamRecheck == 0 && !c.stillSignedIn(ctx, s) {
			return nil // the browser reconnects, gets 401, and the page sends it to sign in
		}
		msg, err := c.poll(ctx, st)
		if err != nil {
			if ctx.Err() == nil {
				c.logger.Warn("console: live stream poll", "err", err)
			}
			// The browser reconnects from the last row it got.
			return nil
		}
		if len(msg) == 0 {
			if idle++; idle < streamKeepalive {
				continue
			}
			msg = []byte(": keep-alive\n\n")
		}
		idle = 0
		if !c.send(rc, w, msg) {
			return nil
		}
	}
}

// streamState is what a stream remembers between polls: bounded, since
// seen holds only the events within streamLookback of the newest sent,
// at most streamBatch a poll.
type streamState struct {
	filter    switchboard.EventFilter
	after     string // the newest row the page showed, on the first poll
	polled    bool
	watermark time.Time            // the newest event sent's time
	seen      map[string]time.Time // events sent (or shown) lately
}

// stillSignedIn reports whether the stream's session still stands: not
// signed out, not expired.
func (c *Console) stillSignedIn(ctx context.Context, s *session) bool {
	ctx, cancel := context.WithTimeout(ctx, c.o.RequestTimeout)
	defer cancel()
	now := c.now()
	stored, err := c.store.Session(ctx, s.id, now)
	return err == nil && stored.ExpiresAt.After(now)
}

// startAfter starts the stream at the time of the event after, the
// newest the page shows; an event since pruned leaves it at now.
func (c *Console) startAfter(ctx context.Context, st *streamState, after string) error {
	ctx, cancel := context.WithTimeout(ctx, c.o.RequestTimeout)
	defer cancel()
	ev, err := c.store.Event(ctx, after)
	switch {
	case err == nil:
		st.watermark = ev.CreatedAt
	case !errors.Is(err, switchboard.ErrNotFound):
		return fmt.Errorf("stream: read event %s: %w", after, err)
	}
	return nil
}

// poll asks the store for events newer than those sent, and returns them
// as server-sent events, oldest first, so that each is prepended in turn.
func (c *Console) poll(ctx context.Context, st *streamState) ([]byte, error) {
	pctx, cancel := context.WithTimeout(ctx, c.o.RequestTimeout)
	defer cancel()
	f := st.filter
	if from := st.watermark.Add(-streamLookback); f.Since.IsZero() || from.After(f.Since) {
		f.Since = from
	}
	page, err := c.store.ListEvents(pctx, f)
	if err != nil {
		return nil, fmt.Errorf("list new events: %w", err)
	}
	first := !st.polled
	st.polled = true
	rd := c.redactor()
	var out bytes.Buffer
	for i := len(page.Items) - 1; i >= 0; i-- {
		e := page.Items[i]
		if _, ok := st.seen[e.ID]; ok {
			continue
		}
		st.seen[e.ID] = e.CreatedAt
		if first && st.after != "" && e.ID <= st.after {
			continue // on the page already
		}
		if e.CreatedAt.After(st.watermark) {
			st.watermark = e.CreatedAt
		}
		row, err := c.fragment("event-row", rd.eventRow(e))
		if err != nil {
			return nil, err
		}
		// A carriage return ends a line of the stream as a newline does:
		// one in a stored value would start lines of its own (an id, a
		// retry). As a character reference it reads the same in HTML.
		row = bytes.ReplaceAll(row, []byte("\r"), []byte("&#13;"))
		out.WriteString("event: row\nid: " + e.ID + "\n")
		for line := range bytes.SplitSeq(bytes.TrimRight(row, "\n"), []byte("\n")) {
			out.WriteString("data: ")
			out.Write(line)
			out.WriteByte('\n')
		}
		out.WriteByte('\n')
	}
	for id, at := range st.seen {
		if at.Before(st.watermark.Add(-streamLookback)) {
			delete(st.seen, id)
		}
	}
	return out.Bytes(), nil
}

// send writes and flushes msg within streamWriteTimeout, and reports
// whether the browser took it.
func (c *Console) send(rc *http.ResponseController, w http.ResponseWriter, msg []byte) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := w.Write(msg); err != nil {
		return false
	}
	return rc.Flush() == nil
}
