package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard"
)

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := switchboard.EventFilter{
		Route:  q.Get("route"),
		Kind:   switchboard.Kind(q.Get("kind")),
		State:  switchboard.State(q.Get("state")),
		SID:    q.Get("sid"),
		Cursor: q.Get("cursor"),
	}
	if f.Kind != "" && !f.Kind.Valid() {
		return fmt.Errorf("%w: kind %q", switchboard.ErrInvalid, f.Kind)
	}
	if f.State != "" && !f.State.Valid() {
		return fmt.Errorf("%w: state %q", switchboard.ErrInvalid, f.State)
	}
	var err error
	if f.Since, f.Until, f.Limit, err = rangeAndLimit(q); err != nil {
		return err
	}
	page, err := s.store.ListEvents(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.renderer().Events(page))
	return nil
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) error {
	ev, err := s.store.Event(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	req, err := s.store.Request(r.Context(), ev.RequestID)
	if err != nil {
		return err
	}
	atts, err := s.store.Attempts(r.Context(), ev.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.renderer().EventDetail(ev, req, atts))
	return nil
}

func (s *Server) replayEvent(w http.ResponseWriter, r *http.Request) error {
	n, err := s.store.Replay(r.Context(), switchboard.ReplayFilter{EventID: r.PathValue("id")})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, ReplayJSON{Scheduled: n})
	return nil
}

// ReplayRequestJSON is the body of POST /api/v1/replay.
type ReplayRequestJSON struct {
	Route string    `json:"route,omitempty"`
	State string    `json:"state,omitempty"`
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

func (s *Server) replayBulk(w http.ResponseWriter, r *http.Request) error {
	var body ReplayRequestJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return fmt.Errorf("%w: replay body: %v", switchboard.ErrInvalid, err)
	}
	// A second value would be ignored by Decode: refuse it rather than
	// replay with half of what the caller wrote.
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: replay body: unexpected data after the JSON object", switchboard.ErrInvalid)
	}
	n, err := s.store.Replay(r.Context(), switchboard.ReplayFilter{
		Route: body.Route, State: switchboard.State(body.State), Since: body.Since, Until: body.Until,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, ReplayJSON{Scheduled: n})
	return nil
}

func (s *Server) listRequests(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := switchboard.RequestFilter{
		Route:   q.Get("route"),
		Outcome: switchboard.Outcome(q.Get("outcome")),
		EventID: q.Get("event_id"),
		Cursor:  q.Get("cursor"),
	}
	// Shorthands for the two outcomes an operator looks for most; they
	// must not contradict each other or outcome=.
	for param, outcome := range map[string]switchboard.Outcome{"rejected": switchboard.OutcomeRejected, "duplicate": switchboard.OutcomeDuplicate} {
		if q.Get(param) != "true" {
			continue
		}
		if f.Outcome != "" && f.Outcome != outcome {
			return fmt.Errorf("%w: %s=true conflicts with outcome %q", switchboard.ErrInvalid, param, f.Outcome)
		}
		f.Outcome = outcome
	}
	switch f.Outcome {
	case "", switchboard.OutcomeAccepted, switchboard.OutcomeDuplicate, switchboard.OutcomeRejected:
	default:
		return fmt.Errorf("%w: outcome %q", switchboard.ErrInvalid, f.Outcome)
	}
	var err error
	if f.Since, f.Until, f.Limit, err = rangeAndLimit(q); err != nil {
		return err
	}
	page, err := s.store.ListRequests(r.Context(), f)
	if err != nil {
		return err
	}
	out := Page[RequestJSON]{Items: make([]RequestJSON, len(page.Items)), Next: page.Next}
	for i, req := range page.Items {
		out.Items[i] = s.requestJSON(req)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getRequest(w http.ResponseWriter, r *http.Request) error {
	req, err := s.store.Request(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.requestJSON(req))
	return nil
}

// rangeAndLimit reads since, until (RFC 3339) and limit.
func rangeAndLimit(q url.Values) (since, until time.Time, limit int, err error) {
	parse := func(name string) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %s: want RFC 3339, like 2026-01-02T15:04:05Z", switchboard.ErrInvalid, name)
		}
		return t, nil
	}
	if since, err = parse("since"); err != nil {
		return
	}
	if until, err = parse("until"); err != nil {
		return
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return since, until, 0, fmt.Errorf("%w: limit: want a positive number", switchboard.ErrInvalid)
		}
	}
	return since, until, limit, nil
}
