// Package bench_test measures Switchboard at scale. Its tests fill a store
// with SQL (far faster than through the API) and time the store's reads;
// they run only when asked, being long.
package bench_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/postgres"
	"github.com/switchboard-dev/switchboard/postgres/pgtest"
	"github.com/switchboard-dev/switchboard/sqlite"
)

// TestConsoleAtScale fills a store with a day of traffic, SWITCHBOARD_BENCH_EVENTS
// webhooks (default 1,000,000: requests, events and attempts over several
// routes, some failing with Twilio codes, some duplicates and rejections)
// and SWITCHBOARD_BENCH_MESSAGES outbound messages (default 1,000,000, over
// four pools, eleven templates and seven countries, with their status
// histories), rolls the day up, and times what the console reads: the
// first page of each listing, filtered as the inspector filters, one event
// with its request and attempts, and the dashboard of the day. Each figure
// is the median of 7 runs after a first one. SQLite runs always,
// PostgreSQL when SWITCHBOARD_TEST_POSTGRES_URL is set:
//
//	SWITCHBOARD_BENCH_CONSOLE=1 SWITCHBOARD_TEST_POSTGRES_URL=postgres://... \
//	  go test ./bench -run ConsoleAtScale -v -timeout 2h
//
// SWITCHBOARD_BENCH_DIR keeps the SQLite file there instead of a temporary
// directory.
func TestConsoleAtScale(t *testing.T) {
	if os.Getenv("SWITCHBOARD_BENCH_CONSOLE") == "" {
		t.Skip("set SWITCHBOARD_BENCH_CONSOLE=1 to fill a store with a day of traffic and time the console's reads")
	}
	sc := scale{events: envInt(t, "SWITCHBOARD_BENCH_EVENTS", 1_000_000), messages: envInt(t, "SWITCHBOARD_BENCH_MESSAGES", 1_000_000)}
	sc.end = time.Now().UTC().Add(-5 * time.Minute).Truncate(time.Second)
	sc.start = sc.end.Add(-24 * time.Hour)
	t.Run("sqlite", func(t *testing.T) {
		dir := os.Getenv("SWITCHBOARD_BENCH_DIR")
		if dir == "" {
			dir = t.TempDir()
		}
		path := filepath.Join(dir, "console-bench.db")
		_ = os.Remove(path)
		st := openSQLite(t, path) // migrates
		st.Close()
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		took := timed(t, func() error { return fillSQLite(db, sc) })
		db.Close()
		t.Logf("sqlite: filled in %s", took.Round(time.Second))
		measure(t, "sqlite", openSQLite(t, path), sc)
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.URL(t)
		st, err := postgres.Open(context.Background(), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		pool, err := pgxpool.New(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		took := timed(t, func() error { return fillPostgres(pool, sc) })
		pool.Close()
		t.Logf("postgres: filled in %s", took.Round(time.Second))
		st, err = postgres.Open(context.Background(), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		measure(t, "postgres", st, sc)
	})
}

// scale is what a fill makes: events webhooks and messages messages, over
// [start, end).
type scale struct {
	events, messages int
	start, end       time.Time
}

// step is the time between two of n rows spread over the day, in
// microseconds.
func (sc scale) step(n int) int64 { return sc.end.Sub(sc.start).Microseconds() / int64(n) }

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 2000 {
		t.Fatalf("%s=%q: want a number of at least 2000", name, v)
	}
	return n
}

func openSQLite(t *testing.T, path string) switchboard.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path, nil, sqlite.WithIntegrityCheck(sqlite.CheckOff))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func timed(t *testing.T, fn func() error) time.Duration {
	t.Helper()
	start := time.Now()
	if err := fn(); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// The shape of the traffic, row x of each kind (the fill's SQL spells the
// same rules):
//
//	webhooks: route by x % 20: /sms 10, /status 6, /voice 3, /fallback 1;
//	          the last 1000 pending; x % 101 = 3 dead after one attempt
//	          that failed to connect (0, Twilio code 11205); x % 17 = 0
//	          delivered at the second attempt, the first answered 502
//	          (11200); the others delivered at the first; a duplicate of
//	          x % 50 = 0, a rejected request beside x % 100 = 7.
//	messages: pool p1..p4 by x % 4; template t0..t9, none for x % 11 = 0;
//	          recipient in the US, Canada, Britain, France, Germany,
//	          Brazil or India by x % 7; by x % 100: delivered below 90,
//	          undelivered (30003, 30005) below 95, refused at send (21211,
//	          21610) below 98, else sent and no further news. A delivered
//	          or undelivered message has a sent then a final status in its
//	          history; one opt-out every 200 messages.

// sqliteFillEvents fills the webhooks: ?1 of them, the first at ?2, ?3 apart
// (microseconds).
const sqliteFillEvents = `
CREATE TEMP TABLE fill AS
WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < ?1 - 1)
SELECT x, ?2 + x * ?3 AS us,
  CASE WHEN x % 20 < 10 THEN '/sms' WHEN x % 20 < 16 THEN '/status' WHEN x % 20 < 19 THEN '/voice' ELSE '/fallback' END AS route,
  CASE WHEN x >= ?1 - 1000 THEN 'pending' WHEN x % 101 = 3 THEN 'dead' ELSE 'delivered' END AS state,
  '+1415' || (2 + x % 8) || printf('%06d', x % 1000000) AS handset
FROM c;

INSERT INTO events (id, request_id, route, account_sid, kind, message_sid, call_sid, idempotency_key, target,
  response_status, response_content_type, response_body, state, attempts, created_at, updated_at,
  next_attempt_at, delivered_at, last_error /*columns*/)
SELECT printf('%08x-%04x-7000-8000-%012x', (us / 1000) >> 16, (us / 1000) & 65535, x),
  printf('%08x-%04x-7000-9000-%012x', (us / 1000) >> 16, (us / 1000) & 65535, x),
  route, 'ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',
  CASE route WHEN '/sms' THEN 'message' WHEN '/status' THEN 'message-status' WHEN '/voice' THEN 'voice' ELSE 'fallback' END,
  CASE WHEN route = '/voice' THEN '' ELSE 'SM' || printf('%032x', x) END,
  CASE WHEN route = '/voice' THEN 'CA' || printf('%032x', x) ELSE '' END,
  'k' || x, '', 200, 'application/xml', '<Response/>', state,
  CASE WHEN state = 'pending' THEN 0 WHEN state = 'delivered' AND x % 17 = 0 THEN 2 ELSE 1 END,
  us, CASE WHEN state = 'pending' THEN us WHEN x % 17 = 0 AND state = 'delivered' THEN us + 60000000 ELSE us + 40000 END,
  CASE WHEN state = 'pending' THEN us END,
  CASE WHEN state = 'delivered' THEN us + 40000 END,
  CASE WHEN state = 'dead' THEN 'connect: connection refused' ELSE '' END /*values*/
FROM fill ORDER BY x;

INSERT INTO requests (id, received_at, route, method, url, header, body, remote_addr, outcome, reason, event_id)
SELECT printf('%08x-%04x-7000-9000-%012x', (us / 1000) >> 16, (us / 1000) & 65535, x), us, route, 'POST',
  'https://hooks.example.com' || route, '{"Content-Type":["application/x-www-form-urlencoded"],"X-Twilio-Signature":["c2lnbmF0dXJl"]}',
  'AccountSid=ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb&Body=hello+' || x || '&From=%2B' || substr(handset, 2) ||
    '&MessageSid=SM' || printf('%032x', x) || '&To=%2B12125550125',
  '127.0.0.1:' || (1024 + x % 60000), 'accepted', '',
  printf('%08x-%04x-7000-8000-%012x', (us / 1000) >> 16, (us / 1000) & 65535, x)
FROM fill ORDER BY x;

INSERT INTO requests (id, received_at, route, method, url, header, body, remote_addr, outcome, reason, event_id)
SELECT printf('%08x-%04x-7000-a000-%012x', ((us + 500000) / 1000) >> 16, ((us + 500000) / 1000) & 65535, x), us + 500000,
  route, 'POST', 'https://hooks.example.com' || route, '{}', '', '127.0.0.1:1', 'duplicate', '',
  printf('%08x-%04x-7000-8000-%012x', (us / 1000) >> 16, (us / 1000) & 65535, x)
FROM fill WHERE x % 50 = 0 ORDER BY x;

INSERT INTO requests (id, received_at, route, method, url, header, body, remote_addr, outcome, reason, event_id)
SELECT printf('%08x-%04x-7000-b000-%012x', ((us + 700000) / 1000) >> 16, ((us + 700000) / 1000) & 65535, x), us + 700000,
  route, 'POST', 'https://hooks.example.com' || route, '{}', '', '203.0.113.9:4444', 'rejected', 'bad signature', NULL
FROM fill WHERE x % 100 = 7 ORDER BY x;

INSERT INTO attempts (event_id, number, started_at, target_url, status_code, latency_us, error_class, twilio_code,
  error, response_header, response_excerpt)
SELECT printf('%08x-%04x-7000-8000-%012x', (us / 1000) >> 16, (us / 1000) & 65535, x), 1, us + 20000,
  'http://127.0.0.1:3900' || route,
  CASE WHEN state = 'dead' THEN 0 WHEN x % 17 = 0 THEN 502 ELSE 200 END,
  1000 + (x * 7919) % 300000,
  CASE WHEN state = 'dead' THEN 'connect' WHEN x % 17 = 0 THEN 'http-status' ELSE '' END,
  CASE WHEN state = 'dead' THEN 11205 WHEN x % 17 = 0 THEN 11200 ELSE 0 END,
  CASE WHEN state = 'dead' THEN 'connect: connection refused' WHEN x % 17 = 0 THEN 'HTTP 502' ELSE '' END, '{}', ''
FROM fill WHERE state <> 'pending' ORDER BY x;

INSERT INTO attempts (event_id, number, started_at, target_url, status_code, latency_us, error_class, twilio_code,
  error, response_header, response_excerpt)
SELECT printf('%08x-%04x-7000-8000-%012x', (us / 1000) >> 16, (us / 1000) & 65535, x), 2, us + 60000000 - 5000,
  'http://127.0.0.1:3900' || route, 200, 5000, '', 0, '', '{}', ''
FROM fill WHERE state = 'delivered' AND x % 17 = 0 ORDER BY x;
DROP TABLE fill;

`

// sqliteFillMessages fills the messages: ?1 of them, the first at ?2, ?3
// apart.
const sqliteFillMessages = `
CREATE TEMP TABLE fill AS
WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < ?1 - 1)
SELECT x, ?2 + x * ?3 AS us,
  CASE x % 7 WHEN 0 THEN '+1415' WHEN 1 THEN '+1416' WHEN 2 THEN '+447700' WHEN 3 THEN '+3361' WHEN 4 THEN '+49151'
    WHEN 5 THEN '+55119' ELSE '+91981' END || (2 + x % 8) || printf('%06d', x % 1000000) AS recipient,
  CASE WHEN x % 100 < 90 THEN 'delivered' WHEN x % 100 < 95 THEN 'undelivered' WHEN x % 100 < 98 THEN 'failed' ELSE 'sent' END AS state,
  (x * 7919) % 30000000 AS took
FROM c;

INSERT INTO messages (id, idempotency_key, account_sid, pool, purpose, from_number, to_number, body, media_urls,
  status_webhook, payload_hash, state, twilio_sid, twilio_status, error_code, attempts, next_attempt_at,
  created_at, updated_at, sent_at, delivered_at, last_error, template)
SELECT printf('%08x-%04x-7000-c000-%012x', (us / 1000) >> 16, (us / 1000) & 65535, x),
  'api:ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:m' || x, 'ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'p' || (1 + x % 4),
  CASE WHEN x % 4 = 0 THEN 'otp' ELSE 'transactional' END, '+1206555' || printf('%04d', x % 4), recipient,
  'Your code is ' || (x % 1000000), '[]', '', 'h' || x, state,
  CASE WHEN state = 'failed' THEN '' ELSE 'SM' || printf('%032x', x) END,
  state, CASE state WHEN 'undelivered' THEN 30003 + 2 * (x % 2) WHEN 'failed' THEN CASE WHEN x % 2 = 0 THEN 21211 ELSE 21610 END ELSE 0 END,
  1, NULL, us,
  CASE state WHEN 'failed' THEN us + 300000 WHEN 'sent' THEN us + 3000000 ELSE us + 1000000 + took END,
  CASE WHEN state <> 'failed' THEN us + 1000000 END,
  CASE WHEN state = 'delivered' THEN us + 1000000 + took END,
  CASE WHEN state = 'failed' THEN 'refused by Twilio' ELSE '' END,
  CASE WHEN x % 11 = 0 THEN '' ELSE 't' || (x % 10) END
FROM fill ORDER BY x;

INSERT INTO message_status (message_id, status, error_code, at, source, applied)
SELECT printf('%08x-%04x-7000-c000-%012x', (us / 1000) >> 16, (us / 1000) & 65535, x), 'sent', 0, us + 3000000, 'callback', 1
FROM fill WHERE state IN ('delivered', 'undelivered') ORDER BY x;

INSERT INTO message_status (message_id, status, error_code, at, source, applied)
SELECT printf('%08x-%04x-7000-c000-%012x', (us / 1000) >> 16, (us / 1000) & 65535, x), state,
  CASE state WHEN 'undelivered' THEN 30003 + 2 * (x % 2) ELSE 0 END, us + 1000000 + took, 'callback', 1
FROM fill WHERE state IN ('delivered', 'undelivered') ORDER BY x;

INSERT INTO suppressions (account_sid, number, reason, created_at)
SELECT 'ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', recipient, 'STOP', us + 5000000 FROM fill WHERE x % 200 = 1
ON CONFLICT DO NOTHING;
DROP TABLE fill;
`

// eventsColumns are the extra columns of events a fill sets when the
// schema has them (the inspector's number and code filters), and their
// values in the fill's SQL.
func eventsColumns(has func(column string) bool) (columns, values string) {
	if has("from_number") {
		columns += ", from_number, to_number"
		values += ", handset, '+12125550125'"
	}
	if has("last_code") {
		columns += ", last_code"
		values += ", CASE WHEN state = 'dead' THEN 11205 ELSE 0 END"
	}
	return columns, values
}

// postgresFillEvents and postgresFillMessages are sqliteFillEvents and
// sqliteFillMessages in PostgreSQL's types.
const postgresFillEvents = `
CREATE TEMP TABLE fill AS
SELECT x, us,
  CASE WHEN x % 20 < 10 THEN '/sms' WHEN x % 20 < 16 THEN '/status' WHEN x % 20 < 19 THEN '/voice' ELSE '/fallback' END AS route,
  CASE WHEN x >= $1 - 1000 THEN 'pending' WHEN x % 101 = 3 THEN 'dead' ELSE 'delivered' END AS state,
  '+1415' || (2 + x % 8) || lpad((x % 1000000)::text, 6, '0') AS handset,
  lpad(to_hex(us / 1000 >> 16), 8, '0') || '-' || lpad(to_hex(us / 1000 & 65535), 4, '0') || '-7000-8000-' || lpad(to_hex(x), 12, '0') AS eid,
  lpad(to_hex(us / 1000 >> 16), 8, '0') || '-' || lpad(to_hex(us / 1000 & 65535), 4, '0') || '-7000-9000-' || lpad(to_hex(x), 12, '0') AS rid
FROM (SELECT x, $2::bigint + x * $3::bigint AS us FROM generate_series(0::bigint, $1::bigint - 1) AS x) t;

INSERT INTO events (id, request_id, route, account_sid, kind, message_sid, call_sid, idempotency_key, target,
  response_status, response_content_type, response_body, state, attempts, created_at, updated_at,
  next_attempt_at, delivered_at, last_error /*columns*/)
SELECT eid, rid, route, 'ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',
  CASE route WHEN '/sms' THEN 'message' WHEN '/status' THEN 'message-status' WHEN '/voice' THEN 'voice' ELSE 'fallback' END,
  CASE WHEN route = '/voice' THEN '' ELSE 'SM' || lpad(to_hex(x), 32, '0') END,
  CASE WHEN route = '/voice' THEN 'CA' || lpad(to_hex(x), 32, '0') ELSE '' END,
  'k' || x, '', 200, 'application/xml', convert_to('<Response/>', 'UTF8'), state,
  CASE WHEN state = 'pending' THEN 0 WHEN state = 'delivered' AND x % 17 = 0 THEN 2 ELSE 1 END,
  to_timestamp(us / 1e6),
  to_timestamp((CASE WHEN state = 'pending' THEN us WHEN x % 17 = 0 AND state = 'delivered' THEN us + 60000000 ELSE us + 40000 END) / 1e6),
  CASE WHEN state = 'pending' THEN to_timestamp(us / 1e6) END,
  CASE WHEN state = 'delivered' THEN to_timestamp((us + 40000) / 1e6) END,
  CASE WHEN state = 'dead' THEN 'connect: connection refused' ELSE '' END /*values*/
FROM fill ORDER BY x;

INSERT INTO requests (id, received_at, route, method, url, header, body, remote_addr, outcome, reason, event_id)
SELECT rid, to_timestamp(us / 1e6), route, 'POST', 'https://hooks.example.com' || route,
  '{"Content-Type":["application/x-www-form-urlencoded"],"X-Twilio-Signature":["c2lnbmF0dXJl"]}',
  convert_to('AccountSid=ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb&Body=hello+' || x || '&From=%2B' || substr(handset, 2) ||
    '&MessageSid=SM' || lpad(to_hex(x), 32, '0') || '&To=%2B12125550125', 'UTF8'),
  '127.0.0.1:' || (1024 + x % 60000), 'accepted', '', eid
FROM fill ORDER BY x;

INSERT INTO requests (id, received_at, route, method, url, header, body, remote_addr, outcome, reason, event_id)
SELECT lpad(to_hex((us + 500000) / 1000 >> 16), 8, '0') || '-' || lpad(to_hex((us + 500000) / 1000 & 65535), 4, '0') ||
    '-7000-a000-' || lpad(to_hex(x), 12, '0'),
  to_timestamp((us + 500000) / 1e6), route, 'POST', 'https://hooks.example.com' || route, '{}', '\x', '127.0.0.1:1',
  'duplicate', '', eid
FROM fill WHERE x % 50 = 0 ORDER BY x;

INSERT INTO requests (id, received_at, route, method, url, header, body, remote_addr, outcome, reason, event_id)
SELECT lpad(to_hex((us + 700000) / 1000 >> 16), 8, '0') || '-' || lpad(to_hex((us + 700000) / 1000 & 65535), 4, '0') ||
    '-7000-b000-' || lpad(to_hex(x), 12, '0'),
  to_timestamp((us + 700000) / 1e6), route, 'POST', 'https://hooks.example.com' || route, '{}', '\x', '203.0.113.9:4444',
  'rejected', 'bad signature', NULL
FROM fill WHERE x % 100 = 7 ORDER BY x;

INSERT INTO attempts (event_id, number, started_at, target_url, status_code, latency_us, error_class, twilio_code,
  error, response_header, response_excerpt)
SELECT eid, 1, to_timestamp((us + 20000) / 1e6), 'http://127.0.0.1:3900' || route,
  CASE WHEN state = 'dead' THEN 0 WHEN x % 17 = 0 THEN 502 ELSE 200 END,
  1000 + (x * 7919) % 300000,
  CASE WHEN state = 'dead' THEN 'connect' WHEN x % 17 = 0 THEN 'http-status' ELSE '' END,
  CASE WHEN state = 'dead' THEN 11205 WHEN x % 17 = 0 THEN 11200 ELSE 0 END,
  CASE WHEN state = 'dead' THEN 'connect: connection refused' WHEN x % 17 = 0 THEN 'HTTP 502' ELSE '' END, '{}', '\x'
FROM fill WHERE state <> 'pending' ORDER BY x;

INSERT INTO attempts (event_id, number, started_at, target_url, status_code, latency_us, error_class, twilio_code,
  error, response_header, response_excerpt)
SELECT eid, 2, to_timestamp((us + 60000000 - 5000) / 1e6), 'http://127.0.0.1:3900' || route, 200, 5000, '', 0, '', '{}', '\x'
FROM fill WHERE state = 'delivered' AND x % 17 = 0 ORDER BY x;
DROP TABLE fill;

`

const postgresFillMessages = `
CREATE TEMP TABLE fill AS
SELECT x, us,
  CASE x % 7 WHEN 0 THEN '+1415' WHEN 1 THEN '+1416' WHEN 2 THEN '+447700' WHEN 3 THEN '+3361' WHEN 4 THEN '+49151'
    WHEN 5 THEN '+55119' ELSE '+91981' END || (2 + x % 8) || lpad((x % 1000000)::text, 6, '0') AS recipient,
  CASE WHEN x % 100 < 90 THEN 'delivered' WHEN x % 100 < 95 THEN 'undelivered' WHEN x % 100 < 98 THEN 'failed' ELSE 'sent' END AS state,
  (x * 7919) % 30000000 AS took,
  lpad(to_hex(us / 1000 >> 16), 8, '0') || '-' || lpad(to_hex(us / 1000 & 65535), 4, '0') || '-7000-c000-' || lpad(to_hex(x), 12, '0') AS mid
FROM (SELECT x, $2::bigint + x * $3::bigint AS us FROM generate_series(0::bigint, $1::bigint - 1) AS x) t;

INSERT INTO messages (id, idempotency_key, account_sid, pool, purpose, from_number, to_number, body, media_urls,
  status_webhook, payload_hash, state, twilio_sid, twilio_status, error_code, attempts, next_attempt_at,
  created_at, updated_at, sent_at, delivered_at, last_error, template)
SELECT mid, 'api:ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:m' || x, 'ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'p' || (1 + x % 4),
  CASE WHEN x % 4 = 0 THEN 'otp' ELSE 'transactional' END, '+1206555' || lpad((x % 4)::text, 4, '0'), recipient,
  'Your code is ' || (x % 1000000), '{}', '', 'h' || x, state,
  CASE WHEN state = 'failed' THEN '' ELSE 'SM' || lpad(to_hex(x), 32, '0') END,
  state, CASE state WHEN 'undelivered' THEN 30003 + 2 * (x % 2) WHEN 'failed' THEN CASE WHEN x % 2 = 0 THEN 21211 ELSE 21610 END ELSE 0 END,
  1, NULL, to_timestamp(us / 1e6),
  to_timestamp((CASE state WHEN 'failed' THEN us + 300000 WHEN 'sent' THEN us + 3000000 ELSE us + 1000000 + took END) / 1e6),
  CASE WHEN state <> 'failed' THEN to_timestamp((us + 1000000) / 1e6) END,
  CASE WHEN state = 'delivered' THEN to_timestamp((us + 1000000 + took) / 1e6) END,
  CASE WHEN state = 'failed' THEN 'refused by Twilio' ELSE '' END,
  CASE WHEN x % 11 = 0 THEN '' ELSE 't' || (x % 10) END
FROM fill ORDER BY x;

INSERT INTO message_status (message_id, status, error_code, at, source, applied)
SELECT mid, 'sent', 0, to_timestamp((us + 3000000) / 1e6), 'callback', true
FROM fill WHERE state IN ('delivered', 'undelivered') ORDER BY x;

INSERT INTO message_status (message_id, status, error_code, at, source, applied)
SELECT mid, state, CASE state WHEN 'undelivered' THEN 30003 + 2 * (x % 2) ELSE 0 END,
  to_timestamp((us + 1000000 + took) / 1e6), 'callback', true
FROM fill WHERE state IN ('delivered', 'undelivered') ORDER BY x;

INSERT INTO suppressions (account_sid, number, reason, created_at)
SELECT 'ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', recipient, 'STOP', to_timestamp((us + 5000000) / 1e6) FROM fill WHERE x % 200 = 1
ON CONFLICT DO NOTHING;
DROP TABLE fill;
`

// statements splits a fill into its statements, each with the arguments
// of the parameters it names (mark followed by 1, 2, 3), the extra event
// columns set.
func statements(fill, mark, columns, values string, args ...any) [][]any {
	fill = strings.ReplaceAll(strings.ReplaceAll(fill, "/*columns*/", columns), "/*values*/", values)
	var out [][]any
	for stmt := range strings.SplitSeq(fill, ";\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		n := 0
		for i := range args {
			if strings.Contains(stmt, mark+strconv.Itoa(i+1)) {
				n = i + 1
			}
		}
		out = append(out, append([]any{stmt}, args[:n]...))
	}
	return out
}

func fillSQLite(db *sql.DB, sc scale) error {
	ctx := context.Background()
	for _, p := range []string{"journal_mode = OFF", "synchronous = OFF", "cache_size = -2000000", "temp_store = MEMORY"} {
		if _, err := db.ExecContext(ctx, "PRAGMA "+p); err != nil {
			return fmt.Errorf("pragma %s: %w", p, err)
		}
	}
	has := func(column string) bool {
		var n int
		_ = db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('events') WHERE name = ?`, column).Scan(&n)
		return n == 1
	}
	columns, values := eventsColumns(has)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmts := statements(sqliteFillEvents, "?", columns, values, sc.events, sc.start.UnixMicro(), sc.step(sc.events))
	stmts = append(stmts, statements(sqliteFillMessages, "?", "", "", sc.messages, sc.start.UnixMicro(), sc.step(sc.messages))...)
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st[0].(string), st[1:]...); err != nil {
			return fmt.Errorf("fill: %w\n%s", err, st[0])
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "PRAGMA journal_mode = WAL")
	return err
}

func fillPostgres(pool *pgxpool.Pool, sc scale) error {
	ctx := context.Background()
	has := func(column string) bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = 'events' AND column_name = $1`, column).Scan(&n)
		return n == 1
	}
	columns, values := eventsColumns(has)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET synchronous_commit = off`); err != nil {
		return err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	stmts := statements(postgresFillEvents, "$", columns, values, sc.events, sc.start.UnixMicro(), sc.step(sc.events))
	stmts = append(stmts, statements(postgresFillMessages, "$", "", "", sc.messages, sc.start.UnixMicro(), sc.step(sc.messages))...)
	for _, st := range stmts {
		if _, err := tx.Exec(ctx, st[0].(string), st[1:]...); err != nil {
			return fmt.Errorf("fill: %w\n%s", err, st[0])
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	// What autovacuum would do soon after such a load.
	_, err = conn.Exec(ctx, `ANALYZE`)
	return err
}

// measure rolls the day up and times the console's reads on st.
func measure(t *testing.T, engine string, st switchboard.Store, sc scale) {
	ctx := context.Background()
	now := sc.end.Add(5 * time.Minute)
	passes := 0
	took := timed(t, func() error {
		for {
			res, err := st.RollUp(ctx, now)
			passes++
			if err != nil || !res.Behind {
				return err
			}
		}
	})
	t.Logf("%s: rolled %s up in %d passes, %s", engine, sc.end.Sub(sc.start), passes, took.Round(time.Millisecond))
	steady := timed(t, func() error { _, err := st.RollUp(ctx, now.Add(time.Minute)); return err })
	t.Logf("%s: a pass once up to date: %s", engine, steady.Round(time.Millisecond))

	// Known rows of the fill, from its rules.
	mid := sc.events / 2
	mid -= mid % 20 // a /sms webhook
	us := sc.start.UnixMicro() + int64(mid)*sc.step(sc.events)
	ms := us / 1000
	eventID := fmt.Sprintf("%08x-%04x-7000-8000-%012x", ms>>16, ms&65535, mid)
	handset := fmt.Sprintf("+1415%d%06d", 2+mid%8, mid%1000000)
	x := 7 * (sc.messages / 14) // a message to the US
	recipient := fmt.Sprintf("+1415%d%06d", 2+x%8, x%1000000)

	type read struct {
		name string
		fn   func() (int, error)
		// applied reports whether the store filtered by what the read asks
		// (a filter a build does not know is ignored); nil: always.
		applied func() bool
	}
	events := func(f switchboard.EventFilter, ok func(*switchboard.Event) bool) (func() (int, error), func() bool) {
		var last *switchboard.Page[*switchboard.Event]
		return func() (int, error) {
				p, err := st.ListEvents(ctx, f)
				last = p
				if err != nil {
					return 0, err
				}
				return len(p.Items), nil
			}, func() bool {
				for _, e := range last.Items {
					if !ok(e) {
						return false
					}
				}
				return true
			}
	}
	messages := func(f switchboard.OutboundFilter, ok func(*switchboard.OutboundMessage) bool) (func() (int, error), func() bool) {
		var last *switchboard.Page[*switchboard.OutboundMessage]
		return func() (int, error) {
				p, err := st.ListOutboundMessages(ctx, f)
				last = p
				if err != nil {
					return 0, err
				}
				return len(p.Items), nil
			}, func() bool {
				for _, m := range last.Items {
					if !ok(m) {
						return false
					}
				}
				return true
			}
	}
	var reads []read
	add := func(name string, fn func() (int, error), applied func() bool) {
		reads = append(reads, read{name, fn, applied})
	}
	fn, ok := events(switchboard.EventFilter{}, func(*switchboard.Event) bool { return true })
	add("ListEvents, no filter", fn, ok)
	fn, ok = events(switchboard.EventFilter{Route: "/voice"}, func(e *switchboard.Event) bool { return e.Route == "/voice" })
	add("ListEvents, route", fn, ok)
	fn, ok = events(switchboard.EventFilter{State: switchboard.StateDead}, func(e *switchboard.Event) bool { return e.State == switchboard.StateDead })
	add("ListEvents, state dead (1%)", fn, ok)
	fn, ok = events(switchboard.EventFilter{Kind: switchboard.KindFallback}, func(e *switchboard.Event) bool { return e.Kind == switchboard.KindFallback })
	add("ListEvents, kind fallback (5%)", fn, ok)
	sid := fmt.Sprintf("SM%032x", mid)
	fn, ok = events(switchboard.EventFilter{SID: sid}, func(e *switchboard.Event) bool { return e.MessageSID == sid })
	add("ListEvents, SID", fn, ok)
	fn, ok = events(switchboard.EventFilter{Number: handset}, func(e *switchboard.Event) bool { return e.From == handset || e.To == handset })
	add("ListEvents, number", fn, ok)
	fn, ok = events(switchboard.EventFilter{TwilioCode: 11205}, func(e *switchboard.Event) bool { return e.LastCode == 11205 })
	add("ListEvents, Twilio code 11205 (1%)", fn, ok)
	fn, ok = events(switchboard.EventFilter{Since: sc.start.Add(6 * time.Hour), Until: sc.start.Add(7 * time.Hour)}, func(e *switchboard.Event) bool {
		return !e.CreatedAt.Before(sc.start.Add(6*time.Hour)) && e.CreatedAt.Before(sc.start.Add(7*time.Hour))
	})
	add("ListEvents, an hour 18 h ago", fn, ok)
	add("Event + Request + Attempts", func() (int, error) {
		e, err := st.Event(ctx, eventID)
		if err != nil {
			return 0, err
		}
		if _, err := st.Request(ctx, e.RequestID); err != nil {
			return 0, err
		}
		a, err := st.Attempts(ctx, eventID)
		return len(a), err
	}, nil)
	add("ListRequests, rejected (1%)", func() (int, error) {
		p, err := st.ListRequests(ctx, switchboard.RequestFilter{Outcome: switchboard.OutcomeRejected})
		if err != nil {
			return 0, err
		}
		return len(p.Items), nil
	}, nil)
	mfn, mok := messages(switchboard.OutboundFilter{}, func(*switchboard.OutboundMessage) bool { return true })
	add("ListOutboundMessages, no filter", mfn, mok)
	mfn, mok = messages(switchboard.OutboundFilter{Pool: "p3"}, func(m *switchboard.OutboundMessage) bool { return m.Pool == "p3" })
	add("ListOutboundMessages, pool", mfn, mok)
	mfn, mok = messages(switchboard.OutboundFilter{State: switchboard.MessageUndelivered}, func(m *switchboard.OutboundMessage) bool {
		return m.State == switchboard.MessageUndelivered
	})
	add("ListOutboundMessages, status undelivered (5%)", mfn, mok)
	mfn, mok = messages(switchboard.OutboundFilter{ErrorCode: 21610}, func(m *switchboard.OutboundMessage) bool { return m.ErrorCode == 21610 })
	add("ListOutboundMessages, error code 21610 (1.5%)", mfn, mok)
	mfn, mok = messages(switchboard.OutboundFilter{To: recipient}, func(m *switchboard.OutboundMessage) bool { return m.To == recipient })
	add("ListOutboundMessages, recipient", mfn, mok)
	mfn, mok = messages(switchboard.OutboundFilter{Number: recipient}, func(m *switchboard.OutboundMessage) bool {
		return m.To == recipient || m.From == recipient
	})
	add("ListOutboundMessages, number", mfn, mok)
	var day *switchboard.Dashboard
	add("Dashboard, 24 h", func() (int, error) {
		d, err := st.Dashboard(ctx, switchboard.DashboardQuery{Since: sc.start, Until: sc.end})
		day = d
		if err != nil {
			return 0, err
		}
		return len(d.Times), nil
	}, nil)

	t.Logf("%s, %d events and %d messages; median of 7 runs after a first:", engine, sc.events, sc.messages)
	for _, r := range reads {
		var times []time.Duration
		var n int
		for i := range 8 {
			start := time.Now()
			got, err := r.fn()
			if err != nil {
				t.Fatalf("%s: %v", r.name, err)
			}
			if i > 0 { // the first warms the caches
				times = append(times, time.Since(start))
			}
			n = got
		}
		slices.Sort(times)
		note := ""
		if r.applied != nil && !r.applied() {
			note = "  (filter not applied by this build)"
		}
		if n == 0 {
			note += "  (nothing found)"
		}
		t.Logf("%s: %-46s %9.2f ms  (%d items)%s", engine, r.name, float64(times[len(times)/2].Microseconds())/1000, n, note)
	}
	if day != nil {
		var sent, attempts int64
		for _, p := range day.Pools {
			sent += p.TotalSent
		}
		for _, r := range day.Routes {
			attempts += r.TotalAttempts
		}
		t.Logf("%s: the dashboard: %d buckets of %s; %d attempts over %d routes, %d messages sent over %d pools, %d countries, %d templates",
			engine, len(day.Times), day.Step, attempts, len(day.Routes), sent, len(day.Pools), len(day.Countries), len(day.Templates))
	}
}
