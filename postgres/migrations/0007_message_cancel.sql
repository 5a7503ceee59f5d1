-- +goose Up
-- A message the app cancels before it is sent is 'canceled', which the
-- state's CHECK constraint must allow. The wider constraint is added NOT
-- VALID: it holds for every write from now on, and every row stored holds
-- it already (the narrower one checked it), so no scan of the table under
-- its lock is needed to prove it.
ALTER TABLE messages DROP CONSTRAINT messages_state_check;
ALTER TABLE messages ADD CONSTRAINT messages_state_check CHECK (state IN
    ('queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'canceled', 'read')) NOT VALID;
-- An account's messages newest first, for the Twilio-compatible listing
-- (Store.ListAccountMessages), which pages by creation time and id.
CREATE INDEX messages_account_created ON messages (account_sid, created_at, id);

-- +goose Down
DROP INDEX messages_account_created;
UPDATE messages SET state = 'failed' WHERE state = 'canceled';
ALTER TABLE messages DROP CONSTRAINT messages_state_check;
ALTER TABLE messages ADD CONSTRAINT messages_state_check CHECK (state IN
    ('queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'read')) NOT VALID;
