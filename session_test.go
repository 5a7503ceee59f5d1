package switchboard

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConsoleSessionValidate(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	id := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		name string
		s    ConsoleSession
		ok   bool
	}{
		{"valid", ConsoleSession{ID: id, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}, true},
		{"empty id", ConsoleSession{CreatedAt: at, ExpiresAt: at.Add(time.Hour)}, false},
		{"short id", ConsoleSession{ID: id[1:], CreatedAt: at, ExpiresAt: at.Add(time.Hour)}, false},
		{"long id", ConsoleSession{ID: id + "0", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}, false},
		{"upper-case id", ConsoleSession{ID: strings.ToUpper(id), CreatedAt: at, ExpiresAt: at.Add(time.Hour)}, false},
		{"not hex", ConsoleSession{ID: id[:63] + "g", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}, false},
		{"a NUL", ConsoleSession{ID: id[:63] + "\x00", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}, false},
		{"expires at its creation", ConsoleSession{ID: id, CreatedAt: at, ExpiresAt: at}, false},
		{"expires before", ConsoleSession{ID: id, CreatedAt: at, ExpiresAt: at.Add(-time.Second)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate(%+v) = %v, want ok %v (else ErrInvalid)", tc.s, err, tc.ok)
			}
			if ValidSessionID(tc.s.ID) != (tc.s.ID == id) {
				t.Errorf("ValidSessionID(%q) = %v", tc.s.ID, !(tc.s.ID == id))
			}
		})
	}
}
