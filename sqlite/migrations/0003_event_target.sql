-- +goose Up
-- target: where a fan-out event is delivered instead of its route's target
-- (a message status callback for the message's status webhook); empty for
-- an event delivered to its route's target.
ALTER TABLE events ADD COLUMN target TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE events DROP COLUMN target;
