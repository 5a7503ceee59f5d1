-- +goose Up
-- Outbound messages, stored before they are sent. Ids are UUIDv7 strings
-- compared bytewise (COLLATE "C"), so id order is creation order and
-- listings walk the primary key (or the index of the filter).
CREATE TABLE messages (
    id              text COLLATE "C" PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    account_sid     text NOT NULL,
    pool            text NOT NULL,
    purpose         text NOT NULL CHECK (purpose IN ('otp', 'transactional', 'marketing')),
    from_number     text NOT NULL DEFAULT '',
    to_number       text NOT NULL,
    body            text NOT NULL,
    media_urls      text[] NOT NULL,
    status_webhook  text NOT NULL DEFAULT '',
    payload_hash    text NOT NULL,
    state           text NOT NULL CHECK (state IN
                        ('queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'read')),
    twilio_sid      text NOT NULL DEFAULT '',
    twilio_status   text NOT NULL DEFAULT '',
    error_code      integer NOT NULL DEFAULT 0,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    sent_at         timestamptz,
    delivered_at    timestamptz,
    last_error      text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX messages_twilio_sid ON messages (twilio_sid) WHERE twilio_sid <> '';
CREATE INDEX messages_state ON messages (state, id);
CREATE INDEX messages_pool ON messages (pool, id);
CREATE INDEX messages_to ON messages (to_number, id);

-- Every status update of a message, applied or not, in arrival order.
CREATE TABLE message_status (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id text COLLATE "C" NOT NULL REFERENCES messages (id),
    status     text NOT NULL,
    error_code integer NOT NULL,
    at         timestamptz NOT NULL,
    source     text NOT NULL,
    applied    boolean NOT NULL
);
CREATE INDEX message_status_message ON message_status (message_id, id);

-- Opt-outs, per account.
CREATE TABLE suppressions (
    account_sid text NOT NULL,
    number      text NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (account_sid, number)
);

-- The sender each recipient last got in a pool.
CREATE TABLE sticky_senders (
    pool        text NOT NULL,
    recipient   text NOT NULL,
    from_number text NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (pool, recipient)
);

-- +goose Down
DROP TABLE sticky_senders;
DROP TABLE suppressions;
DROP TABLE message_status;
DROP TABLE messages;
