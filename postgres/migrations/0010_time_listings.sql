-- +goose Up
-- A listing with a time range is read newest first by (time, id), so
-- that a range far from now is sought at its end instead of reached by
-- walking every newer row.
CREATE INDEX events_created ON events (created_at, id);
CREATE INDEX messages_created ON messages (created_at, id);
-- The requests' time index gains the id, between the time and the
-- outcome: it keeps serving the rollups' counts alone, and now the
-- listings' order too, with no index more to write.
DROP INDEX requests_received;
CREATE INDEX requests_received ON requests (received_at, id, outcome);

-- +goose Down
DROP INDEX requests_received;
CREATE INDEX requests_received ON requests (received_at, outcome);
DROP INDEX messages_created;
DROP INDEX events_created;
