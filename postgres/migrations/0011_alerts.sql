-- +goose Up
-- Alerts (Store.PutAlertState): one row per rule and key, changed only by
-- compare-and-set on version, so that replicas make each transition once.
-- state is the switchboard.AlertState as JSON.
CREATE TABLE alert_states (
    rule       text NOT NULL,
    key        text NOT NULL,
    version    bigint NOT NULL,
    state      text NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (rule, key)
);

-- Each alert's history: transitions, acknowledgements and silences. Read
-- per alert newest first (alert_events_alert), trimmed by age
-- (alert_events_at).
CREATE TABLE alert_events (
    id       bigserial PRIMARY KEY,
    rule     text NOT NULL,
    key      text NOT NULL,
    seq      bigint NOT NULL,
    what     text NOT NULL,
    value    double precision NOT NULL,
    at       timestamptz NOT NULL,
    notified boolean NOT NULL,
    note     text NOT NULL
);
CREATE INDEX alert_events_alert ON alert_events (rule, key, id);
CREATE INDEX alert_events_at ON alert_events (at);

-- +goose Down
DROP INDEX alert_events_at;
DROP INDEX alert_events_alert;
DROP TABLE alert_events;
DROP TABLE alert_states;
