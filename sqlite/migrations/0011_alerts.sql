-- +goose Up
-- Alerts (Store.PutAlertState): one row per rule and key, changed only by
-- compare-and-set on version, so that replicas make each transition once.
-- state is the switchboard.AlertState as JSON; times are Unix
-- microseconds (UTC).
CREATE TABLE alert_states (
    rule       TEXT NOT NULL,
    key        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    state      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (rule, key)
) WITHOUT ROWID;

-- Each alert's history: transitions, acknowledgements and silences. Read
-- per alert newest first (alert_events_alert), trimmed by age
-- (alert_events_at).
CREATE TABLE alert_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    rule     TEXT NOT NULL,
    key      TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    what     TEXT NOT NULL,
    value    REAL NOT NULL,
    at       INTEGER NOT NULL,
    notified INTEGER NOT NULL,
    note     TEXT NOT NULL
);
CREATE INDEX alert_events_alert ON alert_events (rule, key, id);
CREATE INDEX alert_events_at ON alert_events (at);

-- +goose Down
DROP INDEX alert_events_at;
DROP INDEX alert_events_alert;
DROP TABLE alert_events;
DROP TABLE alert_states;
