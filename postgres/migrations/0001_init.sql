-- +goose Up
-- Indexes are few on purpose: every one is written by each webhook's commit.
-- Ids are UUIDv7, so id order is time order and listings walk the primary
-- key; route, kind and time filters are applied along that walk.
-- Ids are UUIDv7 strings compared bytewise (COLLATE "C"), so that ordering by
-- id is ordering by time whatever the database's locale. Headers are JSON
-- objects of string lists.
CREATE TABLE requests (
    id          text COLLATE "C" PRIMARY KEY,
    received_at timestamptz NOT NULL,
    route       text NOT NULL,
    method      text NOT NULL,
    url         text NOT NULL,
    header      jsonb NOT NULL,
    body        bytea NOT NULL,
    remote_addr text NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('accepted', 'duplicate', 'rejected')),
    reason      text NOT NULL DEFAULT '',
    event_id    text COLLATE "C"
);
CREATE INDEX requests_outcome ON requests (outcome, id);
CREATE INDEX requests_event ON requests (event_id);

CREATE TABLE events (
    id                    text COLLATE "C" PRIMARY KEY,
    request_id            text COLLATE "C" NOT NULL,
    route                 text NOT NULL,
    account_sid           text NOT NULL,
    kind                  text NOT NULL,
    message_sid           text NOT NULL DEFAULT '',
    call_sid              text NOT NULL DEFAULT '',
    idempotency_key       text NOT NULL UNIQUE,
    response_status       integer NOT NULL,
    response_content_type text NOT NULL,
    response_body         bytea NOT NULL,
    state                 text NOT NULL CHECK (state IN ('pending', 'retrying', 'delivered', 'dead')),
    attempts              integer NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    next_attempt_at       timestamptz,
    delivered_at          timestamptz,
    last_error            text NOT NULL DEFAULT ''
);
CREATE INDEX events_state ON events (state, id);
CREATE INDEX events_message_sid ON events (message_sid) WHERE message_sid <> '';
CREATE INDEX events_call_sid ON events (call_sid) WHERE call_sid <> '';
CREATE INDEX events_due ON events (next_attempt_at) WHERE state IN ('pending', 'retrying');

CREATE TABLE attempts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         text COLLATE "C" NOT NULL REFERENCES events (id),
    number           integer NOT NULL,
    started_at       timestamptz NOT NULL,
    target_url       text NOT NULL,
    status_code      integer NOT NULL,
    latency_us       bigint NOT NULL,
    error_class      text NOT NULL,
    twilio_code      integer NOT NULL,
    error            text NOT NULL,
    response_header  jsonb NOT NULL,
    response_excerpt bytea NOT NULL
);
CREATE INDEX attempts_event ON attempts (event_id, id);

-- +goose Down
DROP TABLE attempts;
DROP TABLE events;
DROP TABLE requests;
