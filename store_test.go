package switchboard

import (
	"errors"
	"testing"
	"time"
)

func TestReplayFilterValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		f    ReplayFilter
		ok   bool
	}{
		{"one event", ReplayFilter{EventID: "e1"}, true},
		{"route", ReplayFilter{Route: "/sms"}, true},
		{"kind", ReplayFilter{Kind: KindVoice}, true},
		{"code", ReplayFilter{TwilioCode: 11200}, true},
		{"dead", ReplayFilter{State: StateDead}, true},
		{"since", ReplayFilter{Since: time.Unix(1, 0)}, true},
		{"empty: would replay everything", ReplayFilter{}, false},
		{"a negative code: would filter nothing", ReplayFilter{TwilioCode: -1}, false},
		{"a negative code with a route", ReplayFilter{Route: "/sms", TwilioCode: -11200}, false},
		{"a waiting state", ReplayFilter{Route: "/sms", State: StateRetrying}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Validate()
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate(%+v) = %v, want ok %v (else ErrInvalid)", tc.f, err, tc.ok)
			}
		})
	}
}
