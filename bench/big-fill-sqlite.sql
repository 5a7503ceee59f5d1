-- Fills a migrated, empty Switchboard SQLite database with :n delivered inbound-message
-- webhooks, each with its request, its event and one attempt record, shaped as intake and
-- delivery store them for bench/bench.toml's /sms route: bodies and headers of a real
-- inbound message's size, random MessageSids (so random idempotency keys), UUIDv7 ids in
-- time order, times spread over the 7 days that end an hour before the fill. bench/run.sh
-- uses it for the large-store ingest row of docs/benchmarks.md:
--
--   sqlite3 -cmd '.parameter set :n 10000000' switchboard.db < bench/big-fill-sqlite.sql
--
-- Not crash safe (no journal, no fsync): a fill that fails is thrown away and made again.
.bail on
PRAGMA journal_mode=OFF;
PRAGMA synchronous=OFF;
-- The idempotency key and MessageSid indexes take random inserts: keep them in memory.
PRAGMA cache_size=-4000000;

-- The random parts of each webhook are drawn once, here, so that its request, event and
-- attempt agree on them (SQLite evaluates randomblob() again wherever a view's or a CTE's
-- column is used). A UUIDv7 is 48 bits of Unix milliseconds, the version 7, 12 random
-- bits, the variant (8, 9, a or b) and 62 random bits.
CREATE TEMP TABLE fill AS
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < :n),
t(x, us, ms) AS (
  SELECT x, us, printf('%012x', us / 1000) FROM (
    SELECT x, (unixepoch() - 3600 - 7*86400) * 1000000 + x * (7*86400*1000000 / :n) AS us FROM c)
)
SELECT x, us,
  substr(ms, 1, 8) || '-' || substr(ms, 9, 4) || '-7' || substr(lower(hex(randomblob(2))), 2) || '-' ||
    substr('89ab', 1 + abs(random()) % 4, 1) || substr(lower(hex(randomblob(2))), 2) || '-' ||
    lower(hex(randomblob(6))) AS eid,
  substr(ms, 1, 8) || '-' || substr(ms, 9, 4) || '-7' || substr(lower(hex(randomblob(2))), 2) || '-' ||
    substr('89ab', 1 + abs(random()) % 4, 1) || substr(lower(hex(randomblob(2))), 2) || '-' ||
    lower(hex(randomblob(6))) AS rid,
  'SM' || lower(hex(randomblob(16))) AS sid,
  -- the message text, 20 to 138 characters
  lower(hex(randomblob(10 + abs(random()) % 60))) AS txt
FROM t;

BEGIN;
INSERT INTO events (id, request_id, route, account_sid, kind, message_sid, call_sid, idempotency_key,
  target, response_status, response_content_type, response_body, state, attempts, created_at,
  updated_at, next_attempt_at, delivered_at, last_error)
SELECT eid, rid, '/sms', 'ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'message', sid, '',
  'msg:ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:' || sid, '', 200, 'application/xml', '<Response/>',
  'delivered', 1, us, us + 40000, NULL, us + 40000, ''
FROM fill ORDER BY x;

INSERT INTO requests (id, received_at, route, method, url, header, body, remote_addr, outcome, reason, event_id)
SELECT rid, us, '/sms', 'POST', 'https://hooks.example.com/sms',
  '{"Content-Length":["' || length(body) || '"],"Content-Type":["application/x-www-form-urlencoded"],' ||
    '"I-Twilio-Idempotency-Token":["' || lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) ||
    '-4' || substr(lower(hex(randomblob(2))), 2) || '-a' || substr(lower(hex(randomblob(2))), 2) || '-' ||
    lower(hex(randomblob(6))) || '"],"User-Agent":["TwilioProxy/1.1"],"X-Home-Region":["us1"],' ||
    '"X-Twilio-Signature":["' || substr(hex(randomblob(14)), 1, 27) || '="]}',
  body, '127.0.0.1:' || (1024 + x % 60000), 'accepted', '', eid
FROM (
  SELECT x, us, rid, eid,
    'AccountSid=ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb&ApiVersion=2010-04-01&Body=' || txt ||
    '&From=%2B1206555' || printf('%04d', x % 10000) ||
    '&FromCity=SEATTLE&FromCountry=US&FromState=WA&FromZip=98101&MessageSid=' || sid ||
    '&MessagingServiceSid=MGcf27c802e90288ff48e66cfafbce356b&NumMedia=0&NumSegments=1&SmsMessageSid=' || sid ||
    '&SmsSid=' || sid || '&SmsStatus=received&To=%2B12125550125&ToCity=NEW+YORK&ToCountry=US&ToState=NY&ToZip=10001'
    AS body
  FROM fill
) ORDER BY x;

-- One successful attempt each, its Date header the time it was made.
INSERT INTO attempts (event_id, number, started_at, target_url, status_code, latency_us, error_class,
  twilio_code, error, response_header, response_excerpt)
SELECT eid, 1, us + 39000, 'http://127.0.0.1:3900/sms', 204, 300 + abs(random()) % 3000, '', 0, '',
  '{"Date":["' || substr('SunMonTueWedThuFriSat', 1 + 3 * strftime('%w', us / 1000000, 'unixepoch'), 3) ||
    strftime(', %d ', us / 1000000, 'unixepoch') ||
    substr('JanFebMarAprMayJunJulAugSepOctNovDec', 3 * strftime('%m', us / 1000000, 'unixepoch') - 2, 3) ||
    strftime(' %Y %H:%M:%S GMT', us / 1000000, 'unixepoch') || '"]}',
  ''
FROM fill ORDER BY x;
COMMIT;
DROP TABLE fill;
-- Back to the journal mode serve uses.
PRAGMA journal_mode=WAL;
