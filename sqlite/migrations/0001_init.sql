-- +goose Up
-- Indexes are few on purpose: every one is written by each webhook's commit.
-- Ids are UUIDv7, so id order is time order and listings walk the primary
-- key; route, kind and time filters are applied along that walk.
-- Times are Unix microseconds (UTC). Headers are JSON objects of string lists.
CREATE TABLE requests (
    id          TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL,
    route       TEXT NOT NULL,
    method      TEXT NOT NULL,
    url         TEXT NOT NULL,
    header      TEXT NOT NULL,
    body        BLOB NOT NULL,
    remote_addr TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('accepted', 'duplicate', 'rejected')),
    reason      TEXT NOT NULL DEFAULT '',
    event_id    TEXT
);
CREATE INDEX requests_outcome ON requests (outcome, id);
CREATE INDEX requests_event ON requests (event_id);

CREATE TABLE events (
    id                    TEXT PRIMARY KEY,
    request_id            TEXT NOT NULL,
    route                 TEXT NOT NULL,
    account_sid           TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    message_sid           TEXT NOT NULL DEFAULT '',
    call_sid              TEXT NOT NULL DEFAULT '',
    idempotency_key       TEXT NOT NULL UNIQUE,
    response_status       INTEGER NOT NULL,
    response_content_type TEXT NOT NULL,
    response_body         BLOB NOT NULL,
    state                 TEXT NOT NULL CHECK (state IN ('pending', 'retrying', 'delivered', 'dead')),
    attempts              INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    next_attempt_at       INTEGER,
    delivered_at          INTEGER,
    last_error            TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_state ON events (state, id);
CREATE INDEX events_message_sid ON events (message_sid) WHERE message_sid <> '';
CREATE INDEX events_call_sid ON events (call_sid) WHERE call_sid <> '';
CREATE INDEX events_due ON events (next_attempt_at) WHERE state IN ('pending', 'retrying');

CREATE TABLE attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id         TEXT NOT NULL REFERENCES events (id),
    number           INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    target_url       TEXT NOT NULL,
    status_code      INTEGER NOT NULL,
    latency_us       INTEGER NOT NULL,
    error_class      TEXT NOT NULL,
    twilio_code      INTEGER NOT NULL,
    error            TEXT NOT NULL,
    response_header  TEXT NOT NULL,
    response_excerpt BLOB NOT NULL
);
CREATE INDEX attempts_event ON attempts (event_id, id);

-- +goose Down
DROP TABLE attempts;
DROP TABLE events;
DROP TABLE requests;
