package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/jobs"
)

// Outbound writes run in plain transactions, not the group committer: they
// are API calls, not webhooks waiting on a commit. Writes that read a
// message first hold it (ForUpdate), so concurrent writes of one message,
// from any replica, apply one after the other. Status updates and send
// results are the exceptions: one comes with every status callback, and
// two or three with every send, so each has a group committer of its own
// (status.go, send.go).

// CreateMessage stores a new message and schedules its first send, or finds
// the message already stored with its key.
func (s *Store) CreateMessage(ctx context.Context, m *switchboard.OutboundMessage) (bool, error) {
	if err := m.ValidateNew(); err != nil {
		return false, err
	}
	row := *m
	if row.CreatedAt.IsZero() {
		row.CreatedAt = s.now()
	}
	if row.NextAttemptAt.IsZero() {
		row.NextAttemptAt = row.CreatedAt
	}
	if row.MediaURLs == nil {
		row.MediaURLs = []string{}
	}
	var (
		stored  *switchboard.OutboundMessage
		created bool
	)
	err := s.driver.InTx(ctx, func(tx Tx) error {
		var err error
		if created, err = tx.InsertMessage(ctx, &row); err != nil {
			return fmt.Errorf("store message %s: %w", m.ID, err)
		}
		if created {
			if err := tx.InsertSendJob(ctx, jobs.SendArgs{MessageID: m.ID}, m.NextAttemptAt); err != nil {
				return err
			}
		}
		// The new message as stored, or the one that holds its key.
		stored, err = message(ctx, tx, keyed(m.IdempotencyKey), "message with key "+m.IdempotencyKey)
		return err
	})
	if err != nil {
		return false, err
	}
	if !created && stored.PayloadHash != m.PayloadHash {
		return false, fmt.Errorf("create message with key %s: %w: the key was used for another payload (message %s)",
			m.IdempotencyKey, switchboard.ErrConflict, stored.ID)
	}
	*m = *stored
	return created, nil
}

// message returns the one message q selects, or ErrNotFound; what names
// it in errors.
func message(ctx context.Context, r Reader, q Query, what string) (*switchboard.OutboundMessage, error) {
	messages, err := r.Messages(ctx, q)
	return first(messages, err, what)
}

// keyed selects the message with an idempotency key.
func keyed(key string) Query { return Query{Where: []Cond{Eq("idempotency_key", key)}, Limit: 1} }

// OutboundMessage returns one message, or an error wrapping
// switchboard.ErrNotFound.
func (s *Store) OutboundMessage(ctx context.Context, id string) (*switchboard.OutboundMessage, error) {
	return message(ctx, s.driver.Read(), byID(id), "message "+id)
}

// OutboundMessageByKey returns the message with an idempotency key, or an
// error wrapping switchboard.ErrNotFound.
func (s *Store) OutboundMessageByKey(ctx context.Context, key string) (*switchboard.OutboundMessage, error) {
	return message(ctx, s.driver.Read(), keyed(key), "message with key "+key)
}

// withSIDs selects the messages with the given Twilio SIDs. The term on
// the empty SID implies the predicate of the partial index on twilio_sid,
// which lets the engines use the index: without it, every look-up would
// scan the whole table.
func withSIDs(where ...Cond) []Cond { return append(where, NotEmpty("twilio_sid")) }

// OutboundMessageBySID returns the message of an account with a Twilio
// SID, or an error wrapping switchboard.ErrNotFound, also for another
// account's: an SID, which anyone may name, never reaches across accounts.
func (s *Store) OutboundMessageBySID(ctx context.Context, accountSID, twilioSID string) (*switchboard.OutboundMessage, error) {
	if accountSID == "" {
		return nil, fmt.Errorf("%w: look-up of message %q without an account", switchboard.ErrInvalid, twilioSID)
	}
	what := fmt.Sprintf("message with Twilio SID %s of account %s", twilioSID, accountSID)
	if twilioSID == "" || !isText(twilioSID) || !isText(accountSID) { // the empty SID of unsent messages is nobody's
		return nil, fmt.Errorf("%s: %w", what, switchboard.ErrNotFound)
	}
	q := Query{Where: withSIDs(Eq("twilio_sid", twilioSID), Eq("account_sid", accountSID)), Limit: 1}
	return message(ctx, s.driver.Read(), q, what)
}

// MessageBySID returns the message of an account that sid names: the one
// whose Switchboard SID it is, else the one Twilio knows by it. Another
// account's message is an error wrapping switchboard.ErrNotFound on either
// path, as an unknown one is, so neither SID reaches across accounts.
func (s *Store) MessageBySID(ctx context.Context, accountSID, sid string) (*switchboard.OutboundMessage, error) {
	if id, ok := switchboard.MessageIDOfSID(sid); ok && accountSID != "" {
		m, err := s.OutboundMessage(ctx, id)
		switch {
		case err == nil && m.AccountSID == accountSID:
			return m, nil
		case err != nil && !errors.Is(err, switchboard.ErrNotFound):
			return nil, err
		}
	}
	return s.OutboundMessageBySID(ctx, accountSID, sid)
}

// ListOutboundMessages returns a page of messages, newest first: by id,
// or, with a time range, by creation time and id (see listing). A filter
// value no stored text can equal matches nothing, as in ListEvents.
func (s *Store) ListOutboundMessages(ctx context.Context, f switchboard.OutboundFilter) (*switchboard.Page[*switchboard.OutboundMessage], error) {
	if !allText(f.Pool, string(f.Purpose), string(f.State), f.To, f.Template, f.Number, f.Cursor) {
		return &switchboard.Page[*switchboard.OutboundMessage]{}, nil
	}
	var where []Cond
	where = eq(where, "pool", f.Pool)
	where = eq(where, "purpose", f.Purpose)
	where = eq(where, "state", f.State)
	where = eq(where, "to_number", f.To)
	if f.Template != "" {
		// With its partial index's predicate, which it implies.
		where = append(where, Eq("template", f.Template), NotEmpty("template"))
	}
	where = code(where, "error_code", f.ErrorCode)
	where = since(where, "created_at", f.Since, f.Until)
	r := s.driver.Read()
	return listed[*switchboard.OutboundMessage]{what: "list messages", index: messagesByTime,
		list: func(q Query) ([]*switchboard.OutboundMessage, error) { return r.Messages(ctx, q) },
		at:   func(m *switchboard.OutboundMessage) time.Time { return m.CreatedAt },
		id:   func(m *switchboard.OutboundMessage) string { return m.ID },
	}.page(ctx, r, where, f.Number, f.Since, f.Until, f.Cursor, f.Limit)
}

// held selects the message with id for a read-modify-write.
func held(id string) Query { q := byID(id); q.Lock = ForUpdate; return q }

// ReplayMessage queues a failed, never accepted message for a fresh run of
// sends.
func (s *Store) ReplayMessage(ctx context.Context, id string) (*switchboard.OutboundMessage, error) {
	var m *switchboard.OutboundMessage
	err := s.driver.InTx(ctx, func(tx Tx) error {
		var err error
		if m, err = message(ctx, tx, held(id), "replay message "+id); err != nil {
			return err
		}
		now := micro(s.now())
		if err := m.Replay(now); err != nil {
			return fmt.Errorf("replay message %s: %w", id, err)
		}
		if err := tx.UpdateMessages(ctx, []*switchboard.OutboundMessage{m}); err != nil {
			return fmt.Errorf("replay message %s: %w", id, err)
		}
		replayed := switchboard.StatusUpdate{Status: switchboard.StatusReplayed, At: now, Source: switchboard.SourceReplay}
		if err := tx.InsertHistory(ctx, []StatusRow{{MessageID: m.ID, Update: replayed, Applied: true}}); err != nil {
			return fmt.Errorf("record replay of message %s: %w", m.ID, err)
		}
		return tx.InsertSendJob(ctx, jobs.SendArgs{MessageID: m.ID}, time.Time{})
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// EarlierUnsent returns the oldest unsent message to a recipient in a pool
// created before another, of one of purposes.
func (s *Store) EarlierUnsent(ctx context.Context, pool, recipient, beforeID string, purposes []switchboard.Purpose) (*switchboard.OutboundMessage, error) {
	names := make([]string, len(purposes))
	for i, p := range purposes {
		names[i] = string(p)
	}
	q := Query{Where: []Cond{Eq("pool", pool), Eq("to_number", recipient), Lt("id", beforeID), unsent, In("purpose", names)},
		Order: OldestFirst, Limit: 1}
	return message(ctx, s.driver.Read(), q, "earlier unsent message of pool "+pool)
}

// SendView returns a message with what a send attempt of it reads
// besides, in one read, or an error wrapping switchboard.ErrNotFound.
func (s *Store) SendView(ctx context.Context, id string) (*switchboard.SendView, error) {
	v, err := s.driver.Read().SendView(ctx, id)
	if err == nil && v == nil {
		err = switchboard.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("message %s as its send reads it: %w", id, err)
	}
	return v, nil
}

// NewSendView is what an engine's SendView primitive returns: m, its
// recipient's suppression reason (when suppressed), its sticky sender
// (empty for none), and earlier, the purposes of the earlier unsent
// messages to it as the engine aggregates them: joined by commas, empty for
// none.
func NewSendView(m *switchboard.OutboundMessage, suppression string, suppressed bool, sticky, earlier string) *switchboard.SendView {
	v := &switchboard.SendView{Message: m, Suppressed: suppressed, Suppression: suppression, Sticky: sticky}
	if earlier != "" {
		for p := range strings.SplitSeq(earlier, ",") {
			v.EarlierUnsent = append(v.EarlierUnsent, switchboard.Purpose(p))
		}
	}
	return v
}

// SenderHeartbeat records a sending process as alive and counts the live
// ones.
func (s *Store) SenderHeartbeat(ctx context.Context, node string, at time.Time, ttl time.Duration) (int, error) {
	var alive int
	err := s.driver.InTx(ctx, func(tx Tx) error {
		var err error
		alive, err = tx.Heartbeat(ctx, node, at, ttl)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("heartbeat of %s: %w", node, err)
	}
	return alive, nil
}

// MessageHistory returns a message's status updates in the order recorded;
// none for an unknown message.
func (s *Store) MessageHistory(ctx context.Context, messageID string) ([]switchboard.StatusChange, error) {
	history, err := s.driver.Read().History(ctx, messageID)
	if err != nil {
		return nil, fmt.Errorf("history of message %s: %w", messageID, err)
	}
	return history, nil
}

// Suppress adds number to accountSID's suppression list with reason, or
// replaces the reason of its entry; an opt-out (any reason but a
// switchboard.RefusalReason) leaves a refusal's entry as it is. The rule
// is the statement's own, so that an opt-out racing a refusal cannot
// replace it.
func (s *Store) Suppress(ctx context.Context, accountSID, number, reason string) error {
	keep := switchboard.RefusalPrefix()
	if _, refusal := switchboard.RefusalCode(reason); refusal {
		keep = "" // a refusal replaces whatever is there
	}
	err := s.driver.InTx(ctx, func(tx Tx) error { return tx.Suppress(ctx, accountSID, number, reason, s.now(), keep) })
	if err != nil {
		return fmt.Errorf("suppress %s for %s: %w", number, accountSID, err)
	}
	return nil
}

// Unsuppress removes number's opt-out from accountSID's suppression list;
// a refusal's entry stays.
func (s *Store) Unsuppress(ctx context.Context, accountSID, number string) error {
	err := s.driver.InTx(ctx, func(tx Tx) error { return tx.Unsuppress(ctx, accountSID, number, switchboard.RefusalPrefix()) })
	if err != nil {
		return fmt.Errorf("unsuppress %s for %s: %w", number, accountSID, err)
	}
	return nil
}

// Suppressed reports whether a number is on an account's suppression list.
func (s *Store) Suppressed(ctx context.Context, accountSID, number string) (bool, error) {
	found, err := s.driver.Read().Exists(ctx, TableSuppressions,
		Query{Where: []Cond{Eq("account_sid", accountSID), Eq("number", number)}})
	if err != nil {
		return false, fmt.Errorf("check suppression of %s for %s: %w", number, accountSID, err)
	}
	return found, nil
}

// Suppression returns the reason a number is on an account's suppression
// list, or an error wrapping switchboard.ErrNotFound.
func (s *Store) Suppression(ctx context.Context, accountSID, number string) (string, error) {
	// (account_sid, number) is the table's key: grouped by reason, the
	// entry is at most one group.
	reasons, err := s.driver.Read().Counts(ctx, TableSuppressions, "reason",
		[]Cond{Eq("account_sid", accountSID), Eq("number", number)})
	if err == nil && len(reasons) == 0 {
		err = switchboard.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("suppression of %s for %s: %w", number, accountSID, err)
	}
	var reason string
	for r := range reasons {
		reason = r
	}
	return reason, nil
}

// StickySender returns a recipient's sender in a pool, or an error wrapping
// switchboard.ErrNotFound.
func (s *Store) StickySender(ctx context.Context, pool, recipient string) (string, error) {
	from, ok, err := s.driver.Read().StickySender(ctx, pool, recipient)
	if err == nil && !ok {
		err = switchboard.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("sticky sender of %s in pool %s: %w", recipient, pool, err)
	}
	return from, nil
}

// SetStickySender sets a recipient's sender in a pool.
func (s *Store) SetStickySender(ctx context.Context, pool, recipient, from string) error {
	err := s.driver.InTx(ctx, func(tx Tx) error {
		return tx.SetStickySenders(ctx, []StickyWrite{{Pool: pool, Recipient: recipient, From: from, At: s.now()}})
	})
	if err != nil {
		return fmt.Errorf("set sticky sender of %s in pool %s: %w", recipient, pool, err)
	}
	return nil
}
