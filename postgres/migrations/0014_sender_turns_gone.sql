-- +goose Up
-- When the last request of a sender that went allows the next to go, on
-- the database's clock (Store.GoSenderTurn): a turn taken ahead is used
-- only once the request before it went, however late that one was.
ALTER TABLE sender_turns ADD COLUMN gone_until timestamptz;

-- +goose Down
ALTER TABLE sender_turns DROP COLUMN gone_until;
