package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-dev/switchboard/postgres/pgtest"
	"github.com/switchboard-dev/switchboard/storetest"
)

// The columns of row n common to events and messages, laid out as
// storetest describes: its creation time (at), its id, its customer's
// and business number. $1 is the number of rows, $2 the first row's
// time (Unix microseconds) and $3 the span they cover (microseconds).
const scaleRows = `WITH t AS (SELECT n, $2::bigint + n * $3::bigint / $1::bigint AS us FROM generate_series(1, $1::bigint) n),
    r AS (SELECT n, to_timestamp(us / 1e6) AS at,
        lpad(to_hex((us / 1000) >> 16), 8, '0') || '-' || lpad(to_hex((us / 1000) & 65535), 4, '0') || '-7000-8000-' ||
            lpad(to_hex(n), 12, '0') AS id,
        '+1555' || lpad((n % 100000)::text, 7, '0') AS customer, '+1800555000' || (n % 3) AS business FROM t)`

const scaleEvents = scaleRows + `,
    e AS (SELECT r.*, n % 1000 AS m, n % 200 AS s FROM r)
    INSERT INTO events (id, request_id, route, account_sid, kind, message_sid, call_sid,
        idempotency_key, response_status, response_content_type, response_body, state, attempts, created_at,
        updated_at, next_attempt_at, delivered_at, last_error, last_code, from_number, to_number)
    SELECT id, 'r' || n,
        CASE WHEN m = 0 THEN '/rare' WHEN m < 10 THEN '/fallback' WHEN m < 100 THEN '/voice'
             WHEN m < 400 THEN '/status' ELSE '/sms' END, 'AC1',
        CASE WHEN m = 0 THEN 'other' WHEN m < 10 THEN 'fallback' WHEN m < 100 THEN 'voice'
             WHEN m < 400 THEN 'message-status' ELSE 'message' END,
        CASE WHEN m >= 10 AND m < 100 THEN '' ELSE 'SM' || lpad(to_hex(n), 32, '0') END,
        CASE WHEN m >= 10 AND m < 100 THEN 'CA' || lpad(to_hex(n), 32, '0') ELSE '' END,
        'k' || n, 200, 'application/xml', ''::bytea,
        CASE WHEN s < 4 THEN 'dead' WHEN s = 4 THEN 'retrying' WHEN s = 5 THEN 'pending' ELSE 'delivered' END,
        CASE WHEN s = 5 THEN 0 ELSE 1 END, at, at,
        CASE WHEN s IN (4, 5) THEN at + interval '1 minute' END,
        CASE WHEN s > 5 THEN at END,
        CASE WHEN s < 5 THEN 'HTTP 502' ELSE '' END,
        CASE WHEN s < 4 THEN 11200 WHEN s = 4 THEN CASE WHEN n % 10000 = 4 THEN 12300 ELSE 11205 END ELSE 0 END,
        CASE WHEN m >= 100 AND m < 400 THEN business ELSE customer END,
        CASE WHEN m >= 100 AND m < 400 THEN customer ELSE business END
    FROM e`

const scaleMessages = scaleRows + `,
    m AS (SELECT r.*, n % 10 AS p, n % 100 AS s FROM r)
    INSERT INTO messages (id, idempotency_key, account_sid, pool, purpose, from_number, to_number,
        body, media_urls, payload_hash, state, twilio_sid, error_code, attempts, created_at, updated_at, template)
    SELECT id, 'k' || n, 'AC1', CASE WHEN p = 0 THEN 'marketing' ELSE 'default' END,
        CASE WHEN p = 0 THEN 'marketing' WHEN p IN (1, 2) THEN 'otp' ELSE 'transactional' END,
        CASE WHEN s = 4 THEN '' ELSE business END, customer, 'hello', '{}', 'h',
        CASE WHEN s < 3 THEN 'failed' WHEN s = 3 THEN 'undelivered' WHEN s = 4 THEN 'queued' ELSE 'delivered' END,
        CASE WHEN s = 4 THEN '' ELSE 'SM' || lpad(to_hex(n), 32, '0') END,
        CASE WHEN s < 3 THEN CASE WHEN n % 1000 = 1 THEN 21610 ELSE 30003 END WHEN s = 3 THEN 30005 ELSE 0 END,
        CASE WHEN s = 4 THEN 0 ELSE 1 END, at, at,
        CASE WHEN n % 1000 = 0 THEN 'rare' WHEN p IN (1, 2) THEN 'otp' ELSE 'welcome' END
    FROM m`

// TestScaleListings times the console's listings on a million events and
// messages (SWITCHBOARD_SCALE_ROWS): see storetest.TimeListings. The
// tables are analyzed after the fill, as autovacuum would.
func TestScaleListings(t *testing.T) {
	rows := storetest.ScaleRows(t)
	ctx := context.Background()
	url := pgtest.URL(t)
	s := open(t, url)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	now := time.Now().UTC()
	start, span := now.Add(-storetest.ScaleSpan).UnixMicro(), storetest.ScaleSpan.Microseconds()
	for _, q := range []string{scaleEvents, scaleMessages, `ANALYZE events`, `ANALYZE messages`} {
		began := time.Now()
		var args []any
		if q == scaleEvents || q == scaleMessages {
			args = []any{rows, start, span}
		}
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
		t.Logf("%.30s: %s", q, time.Since(began).Round(time.Millisecond))
	}
	storetest.TimeListings(t, s, now, rows)
}
