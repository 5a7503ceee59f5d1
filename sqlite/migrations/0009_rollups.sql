-- +goose Up
-- Per-minute aggregates behind the dashboard (Store.RollUp and
-- Store.Dashboard), computed from the rows below and kept after retention
-- deletes those rows. minute is the minute's start (Unix microseconds).
-- What n, ok and failed count depends on the series (see store/rollup.go);
-- latency is a switchboard.LatencyHistogram in its stored form.
CREATE TABLE rollups (
    minute  INTEGER NOT NULL,
    series  TEXT NOT NULL,
    key     TEXT NOT NULL,
    n       INTEGER NOT NULL,
    ok      INTEGER NOT NULL,
    failed  INTEGER NOT NULL,
    latency TEXT NOT NULL,
    PRIMARY KEY (minute, series, key)
) WITHOUT ROWID;

-- The first minute of the rollups not final yet (name 'rollups').
CREATE TABLE rollup_marks (
    name   TEXT PRIMARY KEY,
    minute INTEGER NOT NULL
) WITHOUT ROWID;

-- What processes measured of what the store does not hold (ack latency,
-- 429s, queue depth), per minute and process (Store.RecordSamples).
CREATE TABLE samples (
    minute  INTEGER NOT NULL,
    series  TEXT NOT NULL,
    key     TEXT NOT NULL,
    node    TEXT NOT NULL,
    value   REAL NOT NULL,
    latency TEXT NOT NULL,
    PRIMARY KEY (minute, series, key, node)
) WITHOUT ROWID;

-- A pass reads the rows of the last few minutes by their times. Each
-- index is appended to at its end, in time order; messages_sent only once
-- a message is sent, messages_refused only by a message that failed
-- before Twilio accepted it. requests_received holds the outcome too, so
-- that counting requests reads the index alone.
CREATE INDEX requests_received ON requests (received_at, outcome);
CREATE INDEX attempts_started ON attempts (started_at);
CREATE INDEX message_status_at ON message_status (at);
CREATE INDEX messages_sent ON messages (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX messages_refused ON messages (updated_at) WHERE state = 'failed' AND twilio_sid = '';
CREATE INDEX suppressions_created ON suppressions (created_at);

-- +goose Down
DROP INDEX suppressions_created;
DROP INDEX messages_refused;
DROP INDEX messages_sent;
DROP INDEX message_status_at;
DROP INDEX attempts_started;
DROP INDEX requests_received;
DROP TABLE samples;
DROP TABLE rollup_marks;
DROP TABLE rollups;
