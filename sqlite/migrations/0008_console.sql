-- +goose Up
-- What the console's inspector finds events and messages by, and its
-- sign-in sessions.
--
-- from_number and to_number: the webhook's From and To as Twilio sent
-- them (at most 64 bytes; empty when absent or longer). last_code: the
-- Twilio error code of the event's last delivery attempt, 0 when it
-- succeeded or none was made.
ALTER TABLE events ADD COLUMN from_number TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN to_number TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN last_code INTEGER NOT NULL DEFAULT 0;
-- Each listing filter has an index that yields its rows newest first (by
-- id), so that a page reads its own rows, not every row the filter skips:
-- a rare route, kind, number or code is found as fast as a common one.
-- The partial ones hold only the rows that can match; a query repeats
-- their predicate to use them.
CREATE INDEX events_route ON events (route, id);
CREATE INDEX events_kind ON events (kind, id);
CREATE INDEX events_from ON events (from_number, id) WHERE from_number <> '';
CREATE INDEX events_to ON events (to_number, id) WHERE to_number <> '';
CREATE INDEX events_last_code ON events (last_code, id) WHERE last_code <> 0;
CREATE INDEX messages_error_code ON messages (error_code, id) WHERE error_code <> 0;
CREATE INDEX messages_from ON messages (from_number, id) WHERE from_number <> '';
CREATE INDEX messages_template ON messages (template, id) WHERE template <> '';
CREATE INDEX messages_purpose ON messages (purpose, id);

-- Console sessions: id is the hex SHA-256 of the secret in the browser's
-- cookie, never the secret itself. Times are Unix microseconds (UTC).
CREATE TABLE console_sessions (
    id         TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- +goose Down
DROP TABLE console_sessions;
DROP INDEX messages_purpose;
DROP INDEX messages_template;
DROP INDEX messages_from;
DROP INDEX messages_error_code;
DROP INDEX events_last_code;
DROP INDEX events_to;
DROP INDEX events_from;
DROP INDEX events_kind;
DROP INDEX events_route;
ALTER TABLE events DROP COLUMN last_code;
ALTER TABLE events DROP COLUMN to_number;
ALTER TABLE events DROP COLUMN from_number;
