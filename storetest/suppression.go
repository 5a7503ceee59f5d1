package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/switchboard-dev/switchboard"
)

// testSuppressionReasons: the entry's reason comes back, an opt-out never
// replaces nor removes a refusal, a refusal replaces an opt-out, and each
// account's entries are its own.
func testSuppressionReasons(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	reason := func(account, number string) string {
		t.Helper()
		r, err := s.Suppression(ctx, account, number)
		if errors.Is(err, switchboard.ErrNotFound) {
			return "(none)"
		}
		if err != nil {
			t.Fatalf("Suppression(%s, %s): %v", account, number, err)
		}
		return r
	}
	notMobile, invalid := switchboard.RefusalReason(21614), switchboard.RefusalReason(21211)
	const a, b = "+15550001", "+15550002"
	steps := []struct {
		name   string
		do     func() error
		number string
		want   string
	}{
		{"opt-out", func() error { return s.Suppress(ctx, "AC1", a, "STOP") }, a, "STOP"},
		{"another opt-out replaces it", func() error { return s.Suppress(ctx, "AC1", a, "21610") }, a, "21610"},
		{"a refusal replaces an opt-out", func() error { return s.Suppress(ctx, "AC1", a, notMobile) }, a, notMobile},
		{"an opt-out leaves a refusal", func() error { return s.Suppress(ctx, "AC1", a, "STOP") }, a, notMobile},
		{"an opt-in leaves a refusal", func() error { return s.Unsuppress(ctx, "AC1", a) }, a, notMobile},
		{"a refusal replaces a refusal", func() error { return s.Suppress(ctx, "AC1", a, invalid) }, a, invalid},
		{"a refusal first", func() error { return s.Suppress(ctx, "AC1", b, notMobile) }, b, notMobile},
		{"then an opt-out", func() error { return s.Suppress(ctx, "AC1", b, "STOP") }, b, notMobile},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := reason("AC1", st.number); got != st.want {
			t.Errorf("%s: reason %q, want %q", st.name, got, st.want)
		}
		// Another account's list is untouched, whatever AC1's holds.
		if got := reason("AC2", st.number); got != "(none)" {
			t.Errorf("%s: AC2's reason %q, want none", st.name, got)
		}
		if found, err := s.Suppressed(ctx, "AC1", st.number); err != nil || !found {
			t.Errorf("%s: Suppressed = %v, %v; want true", st.name, found, err)
		}
	}

	// An opt-out of another account, and its opt-in, leave AC1's refusal.
	if err := s.Suppress(ctx, "AC2", a, "STOP"); err != nil {
		t.Fatal(err)
	}
	if got := reason("AC2", a); got != "STOP" {
		t.Errorf("AC2's opt-out: %q", got)
	}
	if err := s.Unsuppress(ctx, "AC2", a); err != nil {
		t.Fatal(err)
	}
	if got, gotOther := reason("AC2", a), reason("AC1", a); got != "(none)" || gotOther != invalid {
		t.Errorf("after AC2's opt-in: AC2 %q, AC1 %q; want none and %q", got, gotOther, invalid)
	}

	// An opt-in removes an opt-out.
	const c = "+15550003"
	if err := s.Suppress(ctx, "AC1", c, "STOP"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unsuppress(ctx, "AC1", c); err != nil {
		t.Fatal(err)
	}
	if got := reason("AC1", c); got != "(none)" {
		t.Errorf("after the opt-in: %q, want none", got)
	}

	// Hostile values are only values: they match no entry, and an opt-in
	// of one removes nothing.
	for _, v := range hostileValues {
		if got := reason("AC1", v); got != "(none)" {
			t.Errorf("Suppression(AC1, %q) = %q, want none", v, got)
		}
		if got := reason(v, a); got != "(none)" {
			t.Errorf("Suppression(%q, %s) = %q, want none", v, a, got)
		}
		if err := s.Unsuppress(ctx, "AC1", v); err != nil {
			t.Errorf("Unsuppress(AC1, %q): %v", v, err)
		}
	}
	if got := reason("AC1", a); got != invalid {
		t.Errorf("after the hostile values: %q, want %q", got, invalid)
	}
}

// testOptOutsRacingRefusals: opt-outs, opt-ins and a refusal of one number
// at once leave the refusal, in whatever order they commit.
func testOptOutsRacingRefusals(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	refusal := switchboard.RefusalReason(21614)
	for round := range 5 {
		number := fmt.Sprintf("+1555000900%d", round)
		if err := s.Suppress(ctx, "AC1", number, "STOP"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 9)
		start := make(chan struct{})
		for i := range 8 {
			wg.Go(func() {
				<-start
				if i%2 == 0 {
					errs <- s.Suppress(ctx, "AC1", number, "STOP")
				} else {
					errs <- s.Unsuppress(ctx, "AC1", number)
				}
			})
		}
		wg.Go(func() {
			<-start
			errs <- s.Suppress(ctx, "AC1", number, refusal)
		})
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if got, err := s.Suppression(ctx, "AC1", number); err != nil || got != refusal {
			t.Fatalf("round %d: reason %q, %v; want %q", round, got, err, refusal)
		}
	}
}
