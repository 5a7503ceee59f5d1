package storetest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
)

// The console's listings at scale. An engine's scale test fills a store
// with ScaleRows events and as many messages, laid out as below, straight
// in SQL (a million rows through the use cases would take far longer),
// then calls TimeListings, which logs how long each page takes to read.
// Nothing is asserted on time: the figures are for reading (see
// docs/benchmarks.md), the plans are asserted elsewhere.
//
// Row n (1..N) of each table is created at ScaleTime(now, n, N): spread
// evenly over the 30 days before now, in id order. Its id is a UUIDv7
// whose time is its creation's millisecond and whose last 12 hex digits
// are n, so that ids sort as rows do. An event of row n:
//
//	route, kind  by n % 1000: 0 "/rare" other; 1-9 "/fallback" fallback;
//	             10-99 "/voice" voice; 100-399 "/status" message-status;
//	             else "/sms" message
//	state        by n % 200: 0-3 dead (last_code 11200), 4 retrying
//	             (last_code 11205, or 12300 when n % 10000 == 4),
//	             5 pending, else delivered
//	message_sid  "SM" and n in 32 hex digits (call_sid "CA"..., for voice)
//	numbers      a customer, ScaleCustomer(n), and a business number,
//	             ScaleBusiness(n): from the customer to the business, the
//	             other way round for a status event
//
// and a message of row n:
//
//	pool         "marketing" when n % 10 == 0 (purpose marketing), else
//	             "default": purpose otp when n % 10 is 1 or 2, else
//	             transactional
//	template     "rare" when n % 1000 == 0, "otp" for otp, else "welcome"
//	to, from     ScaleCustomer(n), ScaleBusiness(n) ("" when queued)
//	state        by n % 100: 0-2 failed (error_code 30003, or 21610 when
//	             n % 1000 == 1), 3 undelivered (30005), 4 queued, else
//	             delivered
//	twilio_sid   "SM" and n in 32 hex digits, "" when queued
const (
	ScaleCustomers = 100_000 // so each customer has ScaleRows/100000 events and messages
	ScaleSpan      = 30 * 24 * time.Hour
)

// ScaleRows is how many rows a scale test stores: SWITCHBOARD_SCALE_ROWS,
// or 0 (the test is skipped) when unset.
func ScaleRows(t *testing.T) int {
	t.Helper()
	v := os.Getenv("SWITCHBOARD_SCALE_ROWS")
	if v == "" {
		t.Skip("SWITCHBOARD_SCALE_ROWS is not set; set it to a number of rows (1000000) to time the listings at scale")
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < ScaleCustomers {
		t.Fatalf("SWITCHBOARD_SCALE_ROWS=%q: want a number of rows, at least %d", v, ScaleCustomers)
	}
	return n
}

// ScaleCustomer is the customer's number of row n.
func ScaleCustomer(n int) string { return fmt.Sprintf("+1555%07d", n%ScaleCustomers) }

// ScaleBusiness is the business number of row n: one of three.
func ScaleBusiness(n int) string { return fmt.Sprintf("+1800555000%d", n%3) }

// ScaleTime is the creation time of row n of rows, in microseconds since
// the epoch.
func ScaleTime(now time.Time, n, rows int) int64 {
	start := now.Add(-ScaleSpan).UnixMicro()
	return start + int64(n)*ScaleSpan.Microseconds()/int64(rows)
}

// scaleCase is one page to time.
type scaleCase struct {
	name string
	read func(ctx context.Context) (int, error)
}

// TimeListings times the console's listing pages on a store filled as
// described above, with rows rows created up to now, and logs, for each,
// the rows it found and the median of a few reads. Every page reads at
// most one page of rows when its filter has an index: a rare value is as
// fast as a common one.
func TimeListings(t *testing.T, s switchboard.Store, now time.Time, rows int) {
	t.Helper()
	ctx := context.Background()
	hourAgo, dayAgo := now.Add(-time.Hour), now.Add(-24*time.Hour)
	oldFrom, oldUntil := now.Add(-15*24*time.Hour), now.Add(-15*24*time.Hour+time.Hour)
	from18h, until17h := now.Add(-18*time.Hour), now.Add(-17*time.Hour)
	weekAgo := now.Add(-7 * 24 * time.Hour)
	customer, business := ScaleCustomer(12345), ScaleBusiness(0)
	sid := fmt.Sprintf("SM%032x", rows/2+500) // an /sms event's

	events := func(f switchboard.EventFilter) func(ctx context.Context) (int, error) {
		return func(ctx context.Context) (int, error) {
			p, err := s.ListEvents(ctx, f)
			if err != nil {
				return 0, err
			}
			return len(p.Items), nil
		}
	}
	messages := func(f switchboard.OutboundFilter) func(ctx context.Context) (int, error) {
		return func(ctx context.Context) (int, error) {
			p, err := s.ListOutboundMessages(ctx, f)
			if err != nil {
				return 0, err
			}
			return len(p.Items), nil
		}
	}
	replayCount := func(f switchboard.ReplayFilter) func(ctx context.Context) (int, error) {
		return func(ctx context.Context) (int, error) { return s.ReplayCount(ctx, f) }
	}
	// A cursor halfway down: deep pages cost what the first does.
	middle, err := s.ListEvents(ctx, switchboard.EventFilter{Until: now.Add(-ScaleSpan / 2), Limit: 1})
	if err != nil || len(middle.Items) == 0 {
		t.Fatalf("no event halfway: %v", err)
	}
	cursor := middle.Items[0].ID
	// The second page of an old hour: a timed cursor.
	old, err := s.ListEvents(ctx, switchboard.EventFilter{Since: oldFrom, Until: oldUntil})
	if err != nil || old.Next == "" {
		t.Fatalf("no second page of an old hour: %v", err)
	}

	cases := []scaleCase{
		{"events: no filter", events(switchboard.EventFilter{})},
		{"events: no filter, page halfway down", events(switchboard.EventFilter{Cursor: cursor})},
		{"events: route, common (60%)", events(switchboard.EventFilter{Route: "/sms"})},
		{"events: route, rare (0.1%)", events(switchboard.EventFilter{Route: "/rare"})},
		{"events: route, none", events(switchboard.EventFilter{Route: "/nope"})},
		{"events: kind, rare (0.9%)", events(switchboard.EventFilter{Kind: switchboard.KindFallback})},
		{"events: kind, none", events(switchboard.EventFilter{Kind: switchboard.KindClientNotification})},
		{"events: state dead (2%)", events(switchboard.EventFilter{State: switchboard.StateDead})},
		{"events: SID", events(switchboard.EventFilter{SID: sid})},
		{"events: number, customer", events(switchboard.EventFilter{Number: customer})},
		{"events: number, business (1/3)", events(switchboard.EventFilter{Number: business})},
		{"events: number, none", events(switchboard.EventFilter{Number: "+15559999999"})},
		{"events: code 11200 (2%)", events(switchboard.EventFilter{TwilioCode: 11200})},
		{"events: code 12300 (0.01%)", events(switchboard.EventFilter{TwilioCode: 12300})},
		{"events: code, none", events(switchboard.EventFilter{TwilioCode: 99999})},
		{"events: last hour", events(switchboard.EventFilter{Since: hourAgo})},
		{"events: an hour 15 days ago", events(switchboard.EventFilter{Since: oldFrom, Until: oldUntil})},
		{"events: an hour 15 days ago, second page", events(switchboard.EventFilter{Since: oldFrom, Until: oldUntil, Cursor: old.Next})},
		{"events: since 18h until 17h ago", events(switchboard.EventFilter{Since: from18h, Until: until17h})},
		{"events: until 15 days ago", events(switchboard.EventFilter{Until: oldFrom})},
		{"events: route common, last 24h", events(switchboard.EventFilter{Route: "/sms", Since: dayAgo})},
		{"events: route rare, last 24h", events(switchboard.EventFilter{Route: "/rare", Since: dayAgo})},
		{"events: route common, an hour 15 days ago", events(switchboard.EventFilter{Route: "/sms", Since: oldFrom, Until: oldUntil})},
		{"events: route rare, an hour 15 days ago", events(switchboard.EventFilter{Route: "/rare", Since: oldFrom, Until: oldUntil})},
		{"events: route common, since 18h until 17h ago", events(switchboard.EventFilter{Route: "/sms", Since: from18h, Until: until17h})},
		{"events: route rare, last 7 days", events(switchboard.EventFilter{Route: "/rare", Since: weekAgo})},
		{"events: kind fallback, an hour 15 days ago", events(switchboard.EventFilter{Kind: switchboard.KindFallback, Since: oldFrom, Until: oldUntil})},
		{"events: state dead, an hour 15 days ago", events(switchboard.EventFilter{State: switchboard.StateDead, Since: oldFrom, Until: oldUntil})},
		{"events: number business, an hour 15 days ago", events(switchboard.EventFilter{Number: business, Since: oldFrom, Until: oldUntil})},
		{"events: number customer, an hour 15 days ago", events(switchboard.EventFilter{Number: customer, Since: oldFrom, Until: oldUntil})},
		{"events: code 12300, last 24h", events(switchboard.EventFilter{TwilioCode: 12300, Since: dayAgo})},
		{"events: state dead, last 24h", events(switchboard.EventFilter{State: switchboard.StateDead, Since: dayAgo})},
		{"events: number business, last 24h", events(switchboard.EventFilter{Number: business, Since: dayAgo})},
		{"events: number customer, last 24h", events(switchboard.EventFilter{Number: customer, Since: dayAgo})},
		{"events: code 11200, last 24h", events(switchboard.EventFilter{TwilioCode: 11200, Since: dayAgo})},
		{"events: code 11200, an hour 15 days ago", events(switchboard.EventFilter{TwilioCode: 11200, Since: oldFrom, Until: oldUntil})},
		{"events: route and state", events(switchboard.EventFilter{Route: "/sms", State: switchboard.StateDead})},

		{"messages: no filter", messages(switchboard.OutboundFilter{})},
		{"messages: pool marketing (10%)", messages(switchboard.OutboundFilter{Pool: "marketing"})},
		{"messages: state failed (3%)", messages(switchboard.OutboundFilter{State: switchboard.MessageFailed})},
		{"messages: to, customer", messages(switchboard.OutboundFilter{To: customer})},
		{"messages: number, customer", messages(switchboard.OutboundFilter{Number: customer})},
		{"messages: number, business (1/3)", messages(switchboard.OutboundFilter{Number: business})},
		{"messages: number, none", messages(switchboard.OutboundFilter{Number: "+15559999999"})},
		{"messages: error 30003 (2.7%)", messages(switchboard.OutboundFilter{ErrorCode: 30003})},
		{"messages: error 21610 (0.1%)", messages(switchboard.OutboundFilter{ErrorCode: 21610})},
		{"messages: error, none", messages(switchboard.OutboundFilter{ErrorCode: 99999})},
		{"messages: template, rare (0.1%)", messages(switchboard.OutboundFilter{Template: "rare"})},
		{"messages: template, none", messages(switchboard.OutboundFilter{Template: "nope"})},
		{"messages: purpose otp (20%)", messages(switchboard.OutboundFilter{Purpose: switchboard.PurposeOTP})},
		{"messages: purpose marketing, pool default (none)", messages(switchboard.OutboundFilter{Purpose: switchboard.PurposeMarketing, Pool: "default"})},
		{"messages: last hour", messages(switchboard.OutboundFilter{Since: hourAgo})},
		{"messages: error 30003, last 24h", messages(switchboard.OutboundFilter{ErrorCode: 30003, Since: dayAgo})},
		{"messages: number business, last 24h", messages(switchboard.OutboundFilter{Number: business, Since: dayAgo})},
		{"messages: an hour 15 days ago", messages(switchboard.OutboundFilter{Since: oldFrom, Until: oldUntil})},
		{"messages: since 18h until 17h ago", messages(switchboard.OutboundFilter{Since: from18h, Until: until17h})},
		{"messages: pool marketing, an hour 15 days ago", messages(switchboard.OutboundFilter{Pool: "marketing", Since: oldFrom, Until: oldUntil})},
		{"messages: template rare, an hour 15 days ago", messages(switchboard.OutboundFilter{Template: "rare", Since: oldFrom, Until: oldUntil})},
		{"messages: number customer, last 24h", messages(switchboard.OutboundFilter{Number: customer, Since: dayAgo})},
		{"messages: error 21610, last 24h", messages(switchboard.OutboundFilter{ErrorCode: 21610, Since: dayAgo})},
		{"messages: state failed, an hour 15 days ago", messages(switchboard.OutboundFilter{State: switchboard.MessageFailed, Since: oldFrom, Until: oldUntil})},

		{"replay count: route rare", replayCount(switchboard.ReplayFilter{Route: "/rare"})},
		{"replay count: code 11200", replayCount(switchboard.ReplayFilter{TwilioCode: 11200})},
		{"replay count: kind fallback", replayCount(switchboard.ReplayFilter{Kind: switchboard.KindFallback})},
		{"replay count: route common, last 24h", replayCount(switchboard.ReplayFilter{Route: "/sms", Since: dayAgo})},
		{"replay count: state dead", replayCount(switchboard.ReplayFilter{State: switchboard.StateDead})},
	}
	const runs = 5
	for _, c := range cases {
		times := make([]time.Duration, runs)
		var found int
		for i := range runs {
			start := time.Now()
			n, err := c.read(ctx)
			times[i] = time.Since(start)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			found = n
		}
		first := times[0]
		slices.Sort(times)
		t.Logf("%-48s %7d rows  median %8.2f ms  first %8.2f ms", c.name, found,
			float64(times[runs/2].Microseconds())/1000, float64(first.Microseconds())/1000)
	}
}
