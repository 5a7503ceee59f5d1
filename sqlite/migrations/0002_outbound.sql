-- +goose Up
-- Outbound messages, stored before they are sent. Ids are UUIDv7, so id
-- order is creation order and listings walk the primary key (or the index
-- of the filter). Times are Unix microseconds (UTC); media_urls is a JSON
-- array of strings.
CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    account_sid     TEXT NOT NULL,
    pool            TEXT NOT NULL,
    purpose         TEXT NOT NULL CHECK (purpose IN ('otp', 'transactional', 'marketing')),
    from_number     TEXT NOT NULL DEFAULT '',
    to_number       TEXT NOT NULL,
    body            TEXT NOT NULL,
    media_urls      TEXT NOT NULL,
    status_webhook  TEXT NOT NULL DEFAULT '',
    payload_hash    TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN
                        ('queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'read')),
    twilio_sid      TEXT NOT NULL DEFAULT '',
    twilio_status   TEXT NOT NULL DEFAULT '',
    error_code      INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    delivered_at    INTEGER,
    last_error      TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX messages_twilio_sid ON messages (twilio_sid) WHERE twilio_sid <> '';
CREATE INDEX messages_state ON messages (state, id);
CREATE INDEX messages_pool ON messages (pool, id);
CREATE INDEX messages_to ON messages (to_number, id);

-- Every status update of a message, applied or not, in arrival order.
CREATE TABLE message_status (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL REFERENCES messages (id),
    status     TEXT NOT NULL,
    error_code INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    source     TEXT NOT NULL,
    applied    INTEGER NOT NULL CHECK (applied IN (0, 1))
);
CREATE INDEX message_status_message ON message_status (message_id, id);

-- Opt-outs, per account.
CREATE TABLE suppressions (
    account_sid TEXT NOT NULL,
    number      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (account_sid, number)
) WITHOUT ROWID;

-- The sender each recipient last got in a pool.
CREATE TABLE sticky_senders (
    pool        TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    from_number TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (pool, recipient)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE sticky_senders;
DROP TABLE suppressions;
DROP TABLE message_status;
DROP TABLE messages;
