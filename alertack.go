package switchboard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxSilence is how far ahead a silence may run: long enough for a
// planned outage, short enough that a forgotten silence ends.
const MaxSilence = 30 * 24 * time.Hour

// AlertAllKeys is the Key of the state that holds a silence of every key
// of a rule. It is no alert of its own: the evaluator consults it through
// SilencedUntil and never evaluates or fires it.
const AlertAllKeys = "*"

// maxAlertBy bounds who acted on an alert, as stored in its history.
const maxAlertBy = 200

// MaxAlertKey bounds the key an operator names when acting on an alert.
const MaxAlertKey = 512

// alertBy is who acted, bounded: control characters (a forged log line,
// a NUL PostgreSQL refuses) removed, trimmed and cut to maxAlertBy
// characters. Empty names "someone", so the history always says who.
func alertBy(by string) string {
	by = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, strings.ToValidUTF8(by, ""))
	by = strings.TrimSpace(by)
	if r := []rune(by); len(r) > maxAlertBy {
		by = strings.TrimSpace(string(r[:maxAlertBy]))
	}
	if by == "" {
		return "someone"
	}
	return by
}

// Acknowledge records that by has seen the current firing: the alert
// keeps firing (and resolves on its own), but the console and API show
// it as taken. It returns the history entry to store with the state.
//
// An alert never stored is ErrNotFound; one that is not firing is
// ErrInvalid (there is nothing to acknowledge); one already acknowledged
// in this firing is ErrConflict (someone took it first, and their name
// stays). A new firing clears the acknowledgement.
func (st *AlertState) Acknowledge(by string, now time.Time) (*AlertEvent, error) {
	switch {
	case st.Version == 0:
		return nil, fmt.Errorf("%w: alert %s %q", ErrNotFound, st.Rule, st.Key)
	case st.Status != AlertFiring:
		return nil, fmt.Errorf("%w: alert %s %q is not firing: only a firing alert can be acknowledged", ErrInvalid, st.Rule, st.Key)
	case !st.AckedAt.IsZero():
		return nil, fmt.Errorf("%w: alert %s %q was already acknowledged by %s", ErrConflict, st.Rule, st.Key, st.AckedBy)
	}
	by = alertBy(by)
	st.AckedAt, st.AckedBy, st.UpdatedAt = now, by, now
	return &AlertEvent{Rule: st.Rule, Key: st.Key, Seq: st.Seq, What: "acknowledged", Value: st.Value, At: now, Note: by}, nil
}

// Silence holds back the alert's notifications until then (transitions
// are still recorded), whatever its status, and for an alert never
// stored too (a route about to be worked on). A zero until, or one not
// after now, ends a silence ("unsilenced"); ending none is no change, and
// returns a nil event. until more than MaxSilence ahead is ErrInvalid.
// Call it on the AlertAllKeys state to silence every key of a rule.
func (st *AlertState) Silence(until, now time.Time, by string) (*AlertEvent, error) {
	if until.After(now.Add(MaxSilence)) {
		return nil, fmt.Errorf("%w: silence until %s: at most %s ahead", ErrInvalid, until.UTC().Format(time.RFC3339), MaxSilence)
	}
	by = alertBy(by)
	if st.Status == "" {
		st.Status = AlertOK
	}
	ev := &AlertEvent{Rule: st.Rule, Key: st.Key, Seq: st.Seq, Value: st.Value, At: now}
	if !until.After(now) {
		if !st.SilencedUntil.After(now) {
			return nil, nil
		}
		st.SilencedUntil, st.UpdatedAt = time.Time{}, now
		ev.What, ev.Note = "unsilenced", by
		return ev, nil
	}
	until = until.UTC().Truncate(time.Second)
	st.SilencedUntil, st.UpdatedAt = until, now
	ev.What, ev.Note = "silenced", "until "+until.Format(time.RFC3339)+" by "+by
	return ev, nil
}

// SilencedUntil is when the silence of the alert of rule and key ends,
// from the stored states: the later of its own silence and its rule's
// (the AlertAllKeys state). Zero, or a time past, means not silenced.
func SilencedUntil(states []AlertState, rule, key string) time.Time {
	var until time.Time
	for i := range states {
		s := &states[i]
		if s.Rule == rule && (s.Key == key || s.Key == AlertAllKeys) && s.SilencedUntil.After(until) {
			until = s.SilencedUntil
		}
	}
	return until
}

// checkAlertKey refuses a key no alert has: overlong, or not printable
// UTF-8.
func checkAlertKey(key string) error {
	if len(key) > MaxAlertKey || !utf8.ValidString(key) || strings.ContainsFunc(key, unicode.IsControl) {
		return fmt.Errorf("%w: alert key: want at most %d bytes of printable text", ErrInvalid, MaxAlertKey)
	}
	return nil
}

// AlertActions is what acting on an alert needs of the store.
type AlertActions interface {
	AlertStates(ctx context.Context) ([]AlertState, error)
	PutAlertState(ctx context.Context, st *AlertState, ev *AlertEvent) error
}

// alertActTries bounds how often ActOnAlert reads the state again after
// another writer (a replica's evaluation) changed it first.
const alertActTries = 5

// ActOnAlert applies act to the stored state of rule and key (a new
// AlertState when none is stored) and stores the result with the event
// act returns, by compare-and-set: when the state changed in between, it
// reads it again and applies act to the new one, a few times, so an
// action is never applied to a state that has moved on. An error act
// returns is returned as is; act returning a nil event means no change,
// and the state is returned as read. It returns the state as stored.
func ActOnAlert(ctx context.Context, store AlertActions, rule, key string, act func(*AlertState) (*AlertEvent, error)) (*AlertState, error) {
	if err := checkAlertKey(key); err != nil {
		return nil, err
	}
	for range alertActTries {
		states, err := store.AlertStates(ctx)
		if err != nil {
			return nil, fmt.Errorf("read alert %s %q: %w", rule, key, err)
		}
		st := &AlertState{Rule: rule, Key: key}
		for i := range states {
			if states[i].Rule == rule && states[i].Key == key {
				*st = states[i]
				break
			}
		}
		ev, err := act(st)
		if err != nil {
			return nil, err
		}
		if ev == nil {
			return st, nil
		}
		version := st.Version
		switch err := store.PutAlertState(ctx, st, ev); {
		case errors.Is(err, ErrConflict):
			continue
		case err != nil:
			return nil, fmt.Errorf("store alert %s %q: %w", rule, key, err)
		}
		// Whether or not the store wrote it back into st.
		st.Version = version + 1
		return st, nil
	}
	return nil, fmt.Errorf("%w: alert %s %q kept changing; try again", ErrConflict, rule, key)
}

// AcknowledgeAlert acknowledges the current firing of the alert of rule
// and key on behalf of by (see AlertState.Acknowledge).
func AcknowledgeAlert(ctx context.Context, store AlertActions, rule, key, by string, now time.Time) (*AlertState, error) {
	return ActOnAlert(ctx, store, rule, key, func(st *AlertState) (*AlertEvent, error) { return st.Acknowledge(by, now) })
}

// SilenceAlert silences the alert of rule and key until then, or ends its
// silence (zero until; see AlertState.Silence). Key "" (or AlertAllKeys)
// silences every key of the rule.
func SilenceAlert(ctx context.Context, store AlertActions, rule, key string, until time.Time, by string, now time.Time) (*AlertState, error) {
	if key == "" {
		key = AlertAllKeys
	}
	return ActOnAlert(ctx, store, rule, key, func(st *AlertState) (*AlertEvent, error) { return st.Silence(until, now, by) })
}

// CompareAlertListing orders alerts (or rules) as they are listed: firing
// first, then critical, then by name (a rule's name or an alert's key).
func CompareAlertListing(aFiring bool, aSeverity, aName string, bFiring bool, bSeverity, bName string) int {
	firstIf := func(a, b bool) int {
		switch {
		case a == b:
			return 0
		case a:
			return -1
		}
		return 1
	}
	return cmp.Or(firstIf(aFiring, bFiring), firstIf(aSeverity == "critical", bSeverity == "critical"), cmp.Compare(aName, bName))
}
