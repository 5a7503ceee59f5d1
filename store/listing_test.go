package store

import (
	"testing"
	"time"
)

// A timed cursor reads back as the position it was made of, before 1970
// too; what is not one (an id, a forged or altered cursor) is not taken
// for one.
func TestTimedCursor(t *testing.T) {
	t.Parallel()
	id := "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	for _, at := range []time.Time{
		time.Date(2026, 11, 1, 12, 0, 0, 123456000, time.UTC),
		time.Unix(0, 0).UTC(),
		time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC),
	} {
		c := position{at: at, id: id}.timedCursor()
		got, ok := parseTimed(c)
		if !ok || !got.at.Equal(at) || got.id != id {
			t.Errorf("parseTimed(%q) = %+v, %v; want %v %s", c, got, ok, at, id)
		}
	}
	for _, c := range []string{"", id, "t", "t-", "t1-", "t-1-x", "t+1-x", "t01-x", "tx-y", "u-1-x",
		"t99999999999999999999-x", "T1-x"} {
		if p, ok := parseTimed(c); ok {
			t.Errorf("parseTimed(%q) = %+v, want no timed cursor", c, p)
		}
	}
}
