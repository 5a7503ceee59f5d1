package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/storetest"
)

// The columns of row n (r.n) common to events and messages, laid out as
// storetest describes: its creation time (at, Unix microseconds), its id,
// its customer's and business number.
const scaleRows = `WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < ?1),
    t(n, at) AS (SELECT n, ?2 + n * ?3 / ?1 FROM r),
    rows(n, at, id, customer, business) AS (SELECT n, at,
        printf('%08x-%04x-7000-8000-%012x', (at / 1000) >> 16, (at / 1000) & 65535, n),
        printf('+1555%07d', n % 100000), '+1800555000' || (n % 3) FROM t)`

const scaleEvents = `INSERT INTO events (id, request_id, route, account_sid, kind, message_sid, call_sid,
    idempotency_key, response_status, response_content_type, response_body, state, attempts, created_at,
    updated_at, next_attempt_at, delivered_at, last_error, last_code, from_number, to_number)
    ` + scaleRows + `,
    e(n, at, id, customer, business, m, s) AS (SELECT n, at, id, customer, business, n % 1000, n % 200 FROM rows)
    SELECT id, 'r' || n,
        CASE WHEN m = 0 THEN '/rare' WHEN m < 10 THEN '/fallback' WHEN m < 100 THEN '/voice'
             WHEN m < 400 THEN '/status' ELSE '/sms' END, 'AC1',
        CASE WHEN m = 0 THEN 'other' WHEN m < 10 THEN 'fallback' WHEN m < 100 THEN 'voice'
             WHEN m < 400 THEN 'message-status' ELSE 'message' END,
        CASE WHEN m >= 10 AND m < 100 THEN '' ELSE printf('SM%032x', n) END,
        CASE WHEN m >= 10 AND m < 100 THEN printf('CA%032x', n) ELSE '' END,
        'k' || n, 200, 'application/xml', X'',
        CASE WHEN s < 4 THEN 'dead' WHEN s = 4 THEN 'retrying' WHEN s = 5 THEN 'pending' ELSE 'delivered' END,
        CASE WHEN s = 5 THEN 0 ELSE 1 END, at, at,
        CASE WHEN s IN (4, 5) THEN at + 60000000 END,
        CASE WHEN s > 5 THEN at END,
        CASE WHEN s < 5 THEN 'HTTP 502' ELSE '' END,
        CASE WHEN s < 4 THEN 11200 WHEN s = 4 THEN CASE WHEN n % 10000 = 4 THEN 12300 ELSE 11205 END ELSE 0 END,
        CASE WHEN m >= 100 AND m < 400 THEN business ELSE customer END,
        CASE WHEN m >= 100 AND m < 400 THEN customer ELSE business END
    FROM e`

const scaleMessages = `INSERT INTO messages (id, idempotency_key, account_sid, pool, purpose, from_number, to_number,
    body, media_urls, payload_hash, state, twilio_sid, error_code, attempts, created_at, updated_at, template)
    ` + scaleRows + `,
    m(n, at, id, customer, business, p, s) AS (SELECT n, at, id, customer, business, n % 10, n % 100 FROM rows)
    SELECT id, 'k' || n, 'AC1', CASE WHEN p = 0 THEN 'marketing' ELSE 'default' END,
        CASE WHEN p = 0 THEN 'marketing' WHEN p IN (1, 2) THEN 'otp' ELSE 'transactional' END,
        CASE WHEN s = 4 THEN '' ELSE business END, customer, 'hello', '[]', 'h',
        CASE WHEN s < 3 THEN 'failed' WHEN s = 3 THEN 'undelivered' WHEN s = 4 THEN 'queued' ELSE 'delivered' END,
        CASE WHEN s = 4 THEN '' ELSE printf('SM%032x', n) END,
        CASE WHEN s < 3 THEN CASE WHEN n % 1000 = 1 THEN 21610 ELSE 30003 END WHEN s = 3 THEN 30005 ELSE 0 END,
        CASE WHEN s = 4 THEN 0 ELSE 1 END, at, at,
        CASE WHEN n % 1000 = 0 THEN 'rare' WHEN p IN (1, 2) THEN 'otp' ELSE 'welcome' END
    FROM m`

// TestScaleListings times the console's listings on a million events and
// messages (SWITCHBOARD_SCALE_ROWS): see storetest.TimeListings.
func TestScaleListings(t *testing.T) {
	rows := storetest.ScaleRows(t)
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	now := time.Now().UTC()
	start, span := now.Add(-storetest.ScaleSpan).UnixMicro(), storetest.ScaleSpan.Microseconds()
	for _, q := range []string{scaleEvents, scaleMessages} {
		began := time.Now()
		if _, err := s.write.ExecContext(ctx, q, rows, start, span); err != nil {
			t.Fatal(err)
		}
		t.Logf("filled in %s", time.Since(began).Round(time.Millisecond))
	}
	storetest.TimeListings(t, s, now, rows)
}
