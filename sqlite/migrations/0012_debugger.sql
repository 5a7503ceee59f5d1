-- +goose Up
-- Twilio's Debugger webhooks (routes of kind debugger): one row per
-- alert, stored with the event of the webhook that carried it and
-- deleted with that event. id is that event's id; (account_sid, sid) is
-- Twilio's name of the alert, what its retries share. occurred_at is
-- Twilio's Timestamp, received_at when Switchboard stored it; times are
-- Unix microseconds (UTC). payload is the Payload field as received.
CREATE TABLE debugger_alerts (
    id           TEXT PRIMARY KEY,
    account_sid  TEXT NOT NULL,
    sid          TEXT NOT NULL,
    level        TEXT NOT NULL,
    occurred_at  INTEGER NOT NULL,
    payload_type TEXT NOT NULL,
    resource_sid TEXT NOT NULL DEFAULT '',
    error_code   INTEGER NOT NULL DEFAULT 0,
    method       TEXT NOT NULL DEFAULT '',
    url          TEXT NOT NULL DEFAULT '',
    status       INTEGER NOT NULL DEFAULT 0,
    more_info    TEXT NOT NULL DEFAULT '',
    payload      BLOB NOT NULL,
    received_at  INTEGER NOT NULL,
    UNIQUE (account_sid, sid)
) WITHOUT ROWID;
-- The listings: by time (and the rollups' count by minute), by resource
-- (a message's or call's alerts), by code over time.
CREATE INDEX debugger_alerts_received ON debugger_alerts (received_at, id);
CREATE INDEX debugger_alerts_resource ON debugger_alerts (resource_sid, id) WHERE resource_sid <> '';
CREATE INDEX debugger_alerts_code ON debugger_alerts (error_code, received_at, id);

-- +goose Down
DROP TABLE debugger_alerts;
