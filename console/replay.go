package console

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
)

// replayPage is the replay of the inspector's filters: how many events
// match, and a confirmation that replays them.
type replayPage struct {
	Query *eventQuery
	// Fields are the filters, carried by the confirmation form.
	Fields []field
	// Why says why these filters cannot be replayed; Count is how many
	// events a replay would schedule now.
	Why   string
	Count int
	// Done is set once replayed, with how many were Scheduled.
	Done      bool
	Scheduled int
	BackURL   string
}

func (c *Console) replayForm(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.replay(w, r, s, false)
}

func (c *Console) replayFilter(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.replay(w, r, s, true)
}

func (c *Console) replay(w http.ResponseWriter, r *http.Request, s *session, confirmed bool) error {
	params := r.URL.Query()
	if confirmed {
		params = r.PostForm
	}
	q, err := parseEventQuery(params)
	if err != nil {
		return err
	}
	v := q.values()
	v.Del("limit")
	p := replayPage{Query: q, BackURL: listURL("events", v)}
	for _, k := range slices.Sorted(maps.Keys(v)) {
		p.Fields = append(p.Fields, field{Name: k, Value: v.Get(k)})
	}
	rf, why := q.replayFilter()
	status := http.StatusOK
	switch {
	case why != "":
		p.Why = why
		if confirmed {
			status = http.StatusBadRequest
		}
	case confirmed:
		if p.Scheduled, err = c.store.Replay(r.Context(), rf); err != nil {
			return fmt.Errorf("replay by filter: %w", err)
		}
		p.Done = true
		c.logger.Info("console: events replayed by filter", "route", rf.Route, "kind", rf.Kind, "state", rf.State,
			"code", rf.TwilioCode, "since", rf.Since, "until", rf.Until, "scheduled", p.Scheduled)
	default:
		if p.Count, err = c.store.ReplayCount(r.Context(), rf); err != nil {
			return fmt.Errorf("count events to replay: %w", err)
		}
	}
	return c.render(w, s, status, "replay", "Replay", p)
}
