-- Fills a migrated, empty Switchboard SQLite database with 500,000 delivered webhooks
-- (request, event, one attempt each; about 1 GB) to measure the integrity check at start
-- (docs/benchmarks.md). Run: sqlite3 switchboard.db < bench/integrity-fill.sql
PRAGMA journal_mode=WAL;
PRAGMA synchronous=OFF;
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 500000)
INSERT INTO requests (id, received_at, route, method, url, header, body, remote_addr, outcome, reason, event_id)
SELECT printf('01a2%032d', x), 1764900000000000 + x*1000, '/sms', 'POST', 'https://hooks.example.com/sms',
  '{"Content-Type":["application/x-www-form-urlencoded"],"I-Twilio-Idempotency-Token":["' || lower(hex(randomblob(16))) || '"],"User-Agent":["TwilioProxy/1.1"],"X-Twilio-Signature":["' || lower(hex(randomblob(20))) || '"],"X-Home-Region":["us1"],"Accept":["*/*"],"Cache-Control":["max-age=259200"]}',
  'ToCountry=US&ToState=CA&SmsMessageSid=SM' || lower(hex(randomblob(16))) || '&NumMedia=0&ToCity=SAN+FRANCISCO&FromZip=94105&SmsSid=SM' || lower(hex(randomblob(16))) || '&FromState=CA&SmsStatus=received&FromCity=SAN+FRANCISCO&Body=' || lower(hex(randomblob(60))) || '&FromCountry=US&To=%2B14155550199&ToZip=94105&NumSegments=1&MessageSid=SM' || lower(hex(randomblob(16))) || '&AccountSid=AC' || lower(hex(randomblob(16))) || '&From=%2B14155550100&ApiVersion=2010-04-01',
  '127.0.0.1:5555', 'accepted', '', printf('01a3%032d', x)
FROM c;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 500000)
INSERT INTO events (id, request_id, route, account_sid, kind, message_sid, call_sid, idempotency_key, target,
  response_status, response_content_type, response_body, state, attempts, created_at, updated_at, next_attempt_at, delivered_at, last_error)
SELECT printf('01a3%032d', x), printf('01a2%032d', x), '/sms', 'AC00000000000000000000000000000001', 'message',
  'SM' || lower(hex(randomblob(16))), '', 'tok-' || lower(hex(randomblob(16))), 'http://127.0.0.1:3000/sms',
  200, 'application/xml', '<Response/>', 'delivered', 1, 1764900000000000 + x*1000, 1764900000000000 + x*1000, NULL, 1764900000000000 + x*1000, ''
FROM c;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 500000)
INSERT INTO attempts (event_id, number, started_at, target_url, status_code, latency_us, error_class, twilio_code, error, response_header, response_excerpt)
SELECT printf('01a3%032d', x), 1, 1764900000000000 + x*1000, 'http://127.0.0.1:3000/sms', 204, 1500, '', 0, '',
  '{"Date":["Fri, 05 Dec 2026 14:00:00 GMT"],"Content-Type":["text/plain"]}', ''
FROM c;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
