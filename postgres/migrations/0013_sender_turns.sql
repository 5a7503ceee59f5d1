-- +goose Up
-- Each sender's shared token bucket (GCRA, a burst of one), for pacing a
-- sender across replicas (Store.TakeSenderTurn): next_at is the earliest
-- time, on the database's clock, its next turn may start. A take moves it
-- on by the turn's interval; a sender idle long enough has it in the past.
CREATE TABLE sender_turns (
    sender  text PRIMARY KEY,
    next_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE sender_turns;
