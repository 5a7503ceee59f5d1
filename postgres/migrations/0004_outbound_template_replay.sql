-- +goose Up
-- template: the app's name for a message's content, for breakdowns.
-- replayed_at: when a failed message was last replayed; its age for
-- max_age counts from then.
ALTER TABLE messages ADD COLUMN template text NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN replayed_at timestamptz;
-- Unsent messages by recipient and pool, for FIFO per recipient.
CREATE INDEX messages_unsent_to ON messages (pool, to_number, id) WHERE state IN ('queued', 'sending');

-- Processes sending messages, for sharing each sender's rate among them.
CREATE TABLE sender_nodes (
    node    text PRIMARY KEY,
    seen_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE sender_nodes;
DROP INDEX messages_unsent_to;
ALTER TABLE messages DROP COLUMN replayed_at;
ALTER TABLE messages DROP COLUMN template;
