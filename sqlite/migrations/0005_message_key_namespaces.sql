-- +goose Up
-- Idempotency keys of outbound messages have a space per API and account
-- (switchboard.MessageKey): 'api:{account}:{key}' for the native API and
-- 'twilio:{account}:{key}' for the Twilio-compatible API, which already
-- stored its keys so. Every other key is a native one, stored as its
-- caller gave it: it moves into the native space of its message's
-- account, so that a retry across the upgrade still finds its message.
-- A native key that spelled its own account's Twilio form cannot be told
-- from a Twilio key and stays; one that named another account moves.
--
-- Two steps, through a form that starts with a control character, which
-- no key has (HTTP header values hold none), so that no key moved halfway
-- meets one not moved yet on the unique index.
UPDATE messages SET idempotency_key = char(1) || 'api:' || account_sid || ':' || idempotency_key
    WHERE substr(idempotency_key, 1, length(account_sid) + 8) <> 'twilio:' || account_sid || ':';
UPDATE messages SET idempotency_key = substr(idempotency_key, 2)
    WHERE substr(idempotency_key, 1, 1) = char(1);

-- +goose Down
UPDATE messages SET idempotency_key = char(1) || substr(idempotency_key, length(account_sid) + 6)
    WHERE substr(idempotency_key, 1, length(account_sid) + 5) = 'api:' || account_sid || ':';
UPDATE messages SET idempotency_key = substr(idempotency_key, 2)
    WHERE substr(idempotency_key, 1, 1) = char(1);
