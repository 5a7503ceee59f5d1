package switchboard

import (
	"errors"
	"testing"
	"time"
)

func TestRetentionValidate(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	tests := []struct {
		name string
		r    Retention
		ok   bool
	}{
		{"forever", Retention{}, true},
		{"defaults", Retention{Rejected: 7 * day, Delivered: 30 * day, Dead: 90 * day, Messages: 90 * day, StickySenders: 180 * day}, true},
		{"the minimum", Retention{Delivered: MinRetention, Dead: MinRetention, Messages: MinRetention}, true},
		{"rejects and sticky senders may be short", Retention{Rejected: time.Second, StickySenders: time.Minute}, true},
		{"delivered below the minimum", Retention{Delivered: MinRetention - time.Second}, false},
		{"dead below the minimum", Retention{Dead: time.Hour}, false},
		{"messages below the minimum", Retention{Messages: time.Hour}, false},
		{"negative", Retention{Rejected: -time.Second}, false},
	}
	for _, tc := range tests {
		err := tc.r.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: Validate() = %v, want ok %v (or ErrInvalid)", tc.name, err, tc.ok)
		}
	}
	for _, k := range PruneKinds {
		if !k.Valid() {
			t.Errorf("%s not valid", k)
		}
	}
	if PruneKind("everything").Valid() || (Retention{Delivered: day}).Of("everything") != 0 {
		t.Error("an unknown kind is valid, or has a retention")
	}
}
