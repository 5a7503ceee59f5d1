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
-- meets one not moved yet on the unique index, which is checked row by
-- row.
UPDATE messages SET idempotency_key = chr(1) || 'api:' || account_sid || ':' || idempotency_key
    WHERE NOT starts_with(idempotency_key, 'twilio:' || account_sid || ':');
UPDATE messages SET idempotency_key = substr(idempotency_key, 2)
    WHERE starts_with(idempotency_key, chr(1));

-- +goose Down
UPDATE messages SET idempotency_key = chr(1) || substr(idempotency_key, length(account_sid) + 6)
    WHERE starts_with(idempotency_key, 'api:' || account_sid || ':');
UPDATE messages SET idempotency_key = substr(idempotency_key, 2)
    WHERE starts_with(idempotency_key, chr(1));
