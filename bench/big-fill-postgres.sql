-- Fills a migrated, empty Switchboard PostgreSQL schema with :n delivered inbound-message
-- webhooks, each with its request, its event and one attempt record: the same rows as
-- bench/big-fill-sqlite.sql (see there), in PostgreSQL's types. bench/run.sh uses it for
-- the large-store ingest row of docs/benchmarks.md:
--
--   PGOPTIONS='-c search_path=SCHEMA' psql -v n=10000000 -f bench/big-fill-postgres.sql URL
\set ON_ERROR_STOP on
-- A fill that fails is thrown away and made again: no need to wait for the WAL's fsyncs.
SET synchronous_commit = off;

-- The random parts of each webhook are drawn once, here, so that its request, event and
-- attempt agree on them. A UUIDv7 is 48 bits of Unix milliseconds, then the version 7
-- and the random bits and variant of a random (version 4) UUID.
CREATE TEMP TABLE fill AS
SELECT x, at,
  substr(ms, 1, 8) || '-' || substr(ms, 9, 4) || '-7' || substr(gen_random_uuid()::text, 16) AS eid,
  substr(ms, 1, 8) || '-' || substr(ms, 9, 4) || '-7' || substr(gen_random_uuid()::text, 16) AS rid,
  'SM' || md5(random()::text) AS sid,
  -- the message text, 20 to 138 characters
  substr(md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text),
    1, 20 + floor(random() * 119)::int) AS txt
FROM (
  SELECT x, at, lpad(to_hex(floor(extract(epoch FROM at) * 1000)::bigint), 12, '0') AS ms
  FROM (
    SELECT x, now() - interval '7 days 1 hour' + x * (interval '7 days' / :n) AS at
    FROM generate_series(1, :n) AS x
  ) t
) h;

BEGIN;
INSERT INTO events (id, request_id, route, account_sid, kind, message_sid, call_sid, idempotency_key,
  target, response_status, response_content_type, response_body, state, attempts, created_at,
  updated_at, next_attempt_at, delivered_at, last_error)
SELECT eid, rid, '/sms', 'ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'message', sid, '',
  'msg:ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:' || sid, '', 200, 'application/xml',
  convert_to('<Response/>', 'UTF8'), 'delivered', 1, at, at + interval '40 ms', NULL,
  at + interval '40 ms', ''
FROM fill ORDER BY x;

INSERT INTO requests (id, received_at, route, method, url, header, body, remote_addr, outcome, reason, event_id)
SELECT rid, at, '/sms', 'POST', 'https://hooks.example.com/sms',
  jsonb_build_object(
    'Content-Length', jsonb_build_array(length(body)::text),
    'Content-Type', jsonb_build_array('application/x-www-form-urlencoded'),
    'I-Twilio-Idempotency-Token', jsonb_build_array(gen_random_uuid()::text),
    'User-Agent', jsonb_build_array('TwilioProxy/1.1'),
    'X-Home-Region', jsonb_build_array('us1'),
    'X-Twilio-Signature', jsonb_build_array(substr(md5(random()::text), 1, 27) || '=')),
  convert_to(body, 'UTF8'), '127.0.0.1:' || (1024 + x % 60000), 'accepted', '', eid
FROM (
  SELECT x, at, rid, eid,
    'AccountSid=ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb&ApiVersion=2010-04-01&Body=' || txt ||
    '&From=%2B1206555' || lpad((x % 10000)::text, 4, '0') ||
    '&FromCity=SEATTLE&FromCountry=US&FromState=WA&FromZip=98101&MessageSid=' || sid ||
    '&MessagingServiceSid=MGcf27c802e90288ff48e66cfafbce356b&NumMedia=0&NumSegments=1&SmsMessageSid=' || sid ||
    '&SmsSid=' || sid || '&SmsStatus=received&To=%2B12125550125&ToCity=NEW+YORK&ToCountry=US&ToState=NY&ToZip=10001'
    AS body
  FROM fill
) b ORDER BY x;

-- One successful attempt each, its Date header the time it was made.
INSERT INTO attempts (event_id, number, started_at, target_url, status_code, latency_us, error_class,
  twilio_code, error, response_header, response_excerpt)
SELECT eid, 1, at + interval '39 ms', 'http://127.0.0.1:3900/sms', 204, 300 + floor(random() * 3000)::int,
  '', 0, '',
  jsonb_build_object('Date', jsonb_build_array(
    to_char((at + interval '39 ms') AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS "GMT"'))),
  ''::bytea
FROM fill ORDER BY x;
COMMIT;
DROP TABLE fill;
-- Statistics for the planner, as autovacuum would gather them in time.
ANALYZE events;
ANALYZE requests;
ANALYZE attempts;
