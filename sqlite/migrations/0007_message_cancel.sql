-- +goose NO TRANSACTION
-- +goose Up
-- A message the app cancels before it is sent is 'canceled', which the
-- state's CHECK constraint must allow. SQLite cannot change a constraint
-- in place, so the table is rebuilt (SQLite's documented procedure:
-- foreign keys off, then in one transaction a new table, the rows copied,
-- the old table dropped and the new one renamed, its indexes made again).
-- The write connection is the only one, so the pragmas apply to the
-- statements between them. Run again after the transaction committed but
-- before the migration was recorded, it rebuilds the table once more, to
-- the same result.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE messages_new (
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
                        ('queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'canceled', 'read')),
    twilio_sid      TEXT NOT NULL DEFAULT '',
    twilio_status   TEXT NOT NULL DEFAULT '',
    error_code      INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    delivered_at    INTEGER,
    last_error      TEXT NOT NULL DEFAULT '',
    template        TEXT NOT NULL DEFAULT '',
    replayed_at     INTEGER
);
INSERT INTO messages_new (id, idempotency_key, account_sid, pool, purpose, from_number, to_number, body,
    media_urls, status_webhook, payload_hash, state, twilio_sid, twilio_status, error_code, attempts,
    next_attempt_at, created_at, updated_at, sent_at, delivered_at, last_error, template, replayed_at)
SELECT id, idempotency_key, account_sid, pool, purpose, from_number, to_number, body,
    media_urls, status_webhook, payload_hash, state, twilio_sid, twilio_status, error_code, attempts,
    next_attempt_at, created_at, updated_at, sent_at, delivered_at, last_error, template, replayed_at
FROM messages;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE UNIQUE INDEX messages_twilio_sid ON messages (twilio_sid) WHERE twilio_sid <> '';
CREATE INDEX messages_state ON messages (state, id);
CREATE INDEX messages_pool ON messages (pool, id);
CREATE INDEX messages_to ON messages (to_number, id);
CREATE INDEX messages_unsent_to ON messages (pool, to_number, id) WHERE state IN ('queued', 'sending');
CREATE INDEX messages_settled ON messages (updated_at) WHERE state NOT IN ('queued', 'sending');
-- An account's messages newest first, for the Twilio-compatible listing
-- (Store.ListAccountMessages), which pages by creation time and id.
CREATE INDEX messages_account_created ON messages (account_sid, created_at, id);
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
-- The wider constraint stays: every state the narrower one allowed is
-- still allowed. Canceled messages become failed, as they were never sent.
UPDATE messages SET state = 'failed' WHERE state = 'canceled';
DROP INDEX messages_account_created;
