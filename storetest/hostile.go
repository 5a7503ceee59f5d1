package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/switchboard-dev/switchboard"
)

// hostileValues are filter values an attacker might send through the
// admin API's query string or the compatible API's paths: each must be
// compared as a value, matching nothing here, never read as SQL.
var hostileValues = []string{
	`x' OR '1'='1`,
	`x" OR 1=1 --`,
	`'; DELETE FROM events; --`,
	`%`,
	`_`,
	`*`,
	`["SM1"]`,
	`") OR 1=1 OR ("`,
	`$1`,
	`?`,
}

// untextValues are values no stored text equals: a NUL, bytes that are
// not UTF-8. PostgreSQL cannot even compare them with text; the look-ups
// of the Twilio-compatible API, which a token holder reaches, must find
// nothing by them on every engine, not fail.
var untextValues = []string{"SM\x00", "\x00", "+15550100\x00", "\xff", "SM\xc3", "+1555\xed\xa0\x80"}

// testHostileFilters: every filter and look-up takes its values as values.
// Nothing matches a hostile value, nothing fails, and the rows stay.
func testHostileFilters(t *testing.T, o Opened) {
	ctx := context.Background()
	s := o.Store
	ingest(t, s, NewItem("/sms", "hostile-1", base))
	m := NewMessage("hostile-m", "+15550100", base)
	createMessage(t, s, m)
	if err := s.Suppress(ctx, "AC1", "+15550100", "STOP"); err != nil {
		t.Fatal(err)
	}
	for _, v := range hostileValues {
		events, err := s.ListEvents(ctx, switchboard.EventFilter{Route: v})
		expectNone(t, "ListEvents route", v, len(pageItems(events)), err)
		events, err = s.ListEvents(ctx, switchboard.EventFilter{SID: v})
		expectNone(t, "ListEvents sid", v, len(pageItems(events)), err)
		events, err = s.ListEvents(ctx, switchboard.EventFilter{Number: v})
		expectNone(t, "ListEvents number", v, len(pageItems(events)), err)
		requests, err := s.ListRequests(ctx, switchboard.RequestFilter{EventID: v})
		expectNone(t, "ListRequests event", v, len(pageItems(requests)), err)
		messages, err := s.ListOutboundMessages(ctx, switchboard.OutboundFilter{To: v})
		expectNone(t, "ListOutboundMessages to", v, len(pageItems(messages)), err)
		messages, err = s.ListOutboundMessages(ctx, switchboard.OutboundFilter{Pool: v, Template: v})
		expectNone(t, "ListOutboundMessages pool", v, len(pageItems(messages)), err)
		messages, err = s.ListOutboundMessages(ctx, switchboard.OutboundFilter{Number: v})
		expectNone(t, "ListOutboundMessages number", v, len(pageItems(messages)), err)
		if found, err := s.Suppressed(ctx, "AC1", v); err != nil || found {
			t.Errorf("Suppressed(AC1, %q) = %v, %v; want false, nil", v, found, err)
		}
		if found, err := s.Suppressed(ctx, v, "+15550100"); err != nil || found {
			t.Errorf("Suppressed(%q, +15550100) = %v, %v; want false, nil", v, found, err)
		}
		if _, err := s.OutboundMessageBySID(ctx, v, v); !errIsNotFound(err) {
			t.Errorf("OutboundMessageBySID(%q) = %v, want ErrNotFound", v, err)
		}
		if _, err := s.EarlierUnsent(ctx, "default", "+15550100", "~", []switchboard.Purpose{switchboard.Purpose(v)}); !errIsNotFound(err) {
			t.Errorf("EarlierUnsent with purpose %q = %v, want ErrNotFound", v, err)
		}
		if n, err := s.Replay(ctx, switchboard.ReplayFilter{Route: v}); err != nil || n != 0 {
			t.Errorf("Replay route %q = %d, %v; want 0, nil", v, n, err)
		}
	}
	// Values no stored text equals find nothing, on every engine, and
	// fail nothing: PostgreSQL cannot compare them with text at all.
	for _, v := range untextValues {
		for _, f := range []switchboard.EventFilter{{Number: v}, {SID: v}, {Route: v}, {Kind: switchboard.Kind(v)},
			{State: switchboard.State(v)}, {Cursor: v}, {Number: v, TwilioCode: 11200}} {
			events, err := s.ListEvents(ctx, f)
			expectNone(t, fmt.Sprintf("ListEvents %+v", f), v, len(pageItems(events)), err)
		}
		for _, f := range []switchboard.OutboundFilter{{Number: v}, {To: v}, {Pool: v}, {Template: v},
			{Purpose: switchboard.Purpose(v)}, {State: switchboard.MessageState(v)}, {Cursor: v}, {Number: v, ErrorCode: 21610}} {
			messages, err := s.ListOutboundMessages(ctx, f)
			expectNone(t, fmt.Sprintf("ListOutboundMessages %+v", f), v, len(pageItems(messages)), err)
		}
		for _, f := range []switchboard.ReplayFilter{{Route: v}, {Kind: switchboard.Kind(v)}} {
			if n, err := s.ReplayCount(ctx, f); err != nil || n != 0 {
				t.Errorf("ReplayCount(%+v) = %d, %v; want 0, nil", f, n, err)
			}
			if n, err := s.Replay(ctx, f); err != nil || n != 0 {
				t.Errorf("Replay(%+v) = %d, %v; want 0, nil", f, n, err)
			}
		}
	}
	// The rows are all still there, and found by their own values.
	events, err := s.ListEvents(ctx, switchboard.EventFilter{Route: "/sms"})
	if err != nil || len(events.Items) != 1 {
		t.Fatalf("ListEvents /sms after the hostile filters = %v, %v; want the one event", events, err)
	}
	if found, err := s.Suppressed(ctx, "AC1", "+15550100"); err != nil || !found {
		t.Errorf("Suppressed(AC1, +15550100) = %v, %v; want true", found, err)
	}
	if _, err := s.EarlierUnsent(ctx, "default", "+15550100", "~", []switchboard.Purpose{switchboard.PurposeTransactional}); err != nil {
		t.Errorf("EarlierUnsent of the stored message: %v", err)
	}
}

func pageItems[T any](p *switchboard.Page[T]) []T {
	if p == nil {
		return nil
	}
	return p.Items
}

func expectNone(t *testing.T, what, value string, n int, err error) {
	t.Helper()
	if err != nil || n != 0 {
		t.Errorf("%s %q: %d items, error %v; want none and no error", what, value, n, err)
	}
}

func errIsNotFound(err error) bool { return errors.Is(err, switchboard.ErrNotFound) }
