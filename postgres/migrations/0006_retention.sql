-- +goose Up
-- Indexes for retention (Store.Prune), each partial so that intake does not
-- write it: a webhook's commit inserts a pending event and an accepted
-- request, which none of them holds. An event enters events_terminal when
-- it is delivered or dies, a message messages_settled when its send is
-- over.
CREATE INDEX events_terminal ON events (state, updated_at) WHERE state IN ('delivered', 'dead');
-- The fan-out events of a request (Ingest.Fanout): every event with a
-- target. An accepted request's other event is the one its event_id names,
-- so these two say whether any event of a request is left.
CREATE INDEX events_fanout ON events (request_id) WHERE target <> '';
CREATE INDEX requests_rejected ON requests (received_at) WHERE outcome = 'rejected';
CREATE INDEX messages_settled ON messages (updated_at) WHERE state NOT IN ('queued', 'sending');
CREATE INDEX sticky_senders_updated ON sticky_senders (updated_at);

-- +goose Down
DROP INDEX sticky_senders_updated;
DROP INDEX messages_settled;
DROP INDEX requests_rejected;
DROP INDEX events_fanout;
DROP INDEX events_terminal;
