package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard"
)

// The use cases of one account's messages that the Twilio-compatible API
// offers besides create and fetch: list, cancel, redact and delete. Each
// selects the message by its id and its account together, so another
// account's message is never read, held or changed: it is ErrNotFound, as
// an unknown id is.

// ListAccountMessages returns a page of an account's messages, newest
// first by creation time and id, read by keyset from f's position.
func (s *Store) ListAccountMessages(ctx context.Context, f switchboard.AccountFilter) (*switchboard.AccountPage, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if !isText(f.AccountSID) || !isText(f.To) || !isText(f.From) {
		return &switchboard.AccountPage{}, nil
	}
	where := []Cond{Eq("account_sid", f.AccountSID)}
	where = eq(where, "to_number", f.To)
	where = eq(where, "from_number", f.From)
	where = since(where, "sent_at", f.SentSince, f.SentBefore)
	order := NewestCreatedFirst
	switch {
	case f.After != nil:
		// The redundant bound on created_at alone lets the engines start
		// the index scan at the position instead of filtering up to it.
		p := f.After
		where = append(where, Le("created_at", p.CreatedAt),
			Any([]Cond{Lt("created_at", p.CreatedAt)}, []Cond{Eq("created_at", p.CreatedAt), Lt("id", p.ID)}))
	case f.Before != nil:
		p := f.Before
		where = append(where, Ge("created_at", p.CreatedAt),
			Any([]Cond{Gt("created_at", p.CreatedAt)}, []Cond{Eq("created_at", p.CreatedAt), Gt("id", p.ID)}))
		order = OldestCreatedFirst
	}
	messages, err := s.driver.Read().Messages(ctx, Query{Where: where, Order: order, Limit: f.Limit + 1})
	if err != nil {
		return nil, fmt.Errorf("list messages of account %s: %w", f.AccountSID, err)
	}
	page := &switchboard.AccountPage{Items: messages}
	if len(messages) > f.Limit {
		page.Items, page.More = messages[:f.Limit], true
	}
	if order == OldestCreatedFirst {
		slices.Reverse(page.Items)
	}
	return page, nil
}

// ofAccount selects message id of account, held for a read-modify-write.
func ofAccount(account, id string) Query {
	return Query{Where: []Cond{Eq("id", id), Eq("account_sid", account)}, Limit: 1, Lock: ForUpdate}
}

// heldOfAccount loads message id of account in tx, held; an empty account
// is ErrInvalid, another account's message ErrNotFound.
func heldOfAccount(ctx context.Context, tx Tx, account, id, what string) (*switchboard.OutboundMessage, error) {
	if account == "" {
		return nil, fmt.Errorf("%w: %s without an account", switchboard.ErrInvalid, what)
	}
	return message(ctx, tx, ofAccount(account, id), fmt.Sprintf("%s of account %s", what, account))
}

// CancelMessage cancels a queued message and records it in its history.
func (s *Store) CancelMessage(ctx context.Context, accountSID, id string) (*switchboard.OutboundMessage, error) {
	var m *switchboard.OutboundMessage
	err := s.driver.InTx(ctx, func(tx Tx) error {
		var err error
		if m, err = heldOfAccount(ctx, tx, accountSID, id, "cancel message "+id); err != nil {
			return err
		}
		if m.State == switchboard.MessageCanceled {
			return nil
		}
		now := micro(s.now())
		if err := m.Cancel(now); err != nil {
			return fmt.Errorf("cancel message %s: %w", id, err)
		}
		if err := tx.UpdateMessages(ctx, []*switchboard.OutboundMessage{m}); err != nil {
			return fmt.Errorf("cancel message %s: %w", id, err)
		}
		canceled := switchboard.StatusUpdate{Status: switchboard.StatusCanceled, At: now, Source: switchboard.SourceAPI}
		if err := tx.InsertHistory(ctx, []StatusRow{{MessageID: m.ID, Update: canceled, Applied: true}}); err != nil {
			return fmt.Errorf("record cancel of message %s: %w", id, err)
		}
		// Its send job stays: when it runs, it finds the message canceled
		// and sends nothing.
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// RedactMessage empties a settled message's body.
func (s *Store) RedactMessage(ctx context.Context, accountSID, id string) (*switchboard.OutboundMessage, error) {
	var m *switchboard.OutboundMessage
	err := s.driver.InTx(ctx, func(tx Tx) error {
		var err error
		if m, err = heldOfAccount(ctx, tx, accountSID, id, "redact message "+id); err != nil {
			return err
		}
		had := m.Body != ""
		if err := m.Redact(micro(s.now())); err != nil {
			return fmt.Errorf("redact message %s: %w", id, err)
		}
		if !had {
			return nil
		}
		if err := tx.RedactMessage(ctx, m.ID, m.UpdatedAt); err != nil {
			return fmt.Errorf("redact message %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// DeleteMessage deletes a settled message with its history.
func (s *Store) DeleteMessage(ctx context.Context, accountSID, id string) error {
	return s.driver.InTx(ctx, func(tx Tx) error {
		m, err := heldOfAccount(ctx, tx, accountSID, id, "delete message "+id)
		if err != nil {
			return err
		}
		if !m.CanDelete() {
			return fmt.Errorf("delete message %s: %w: it is %s", id, switchboard.ErrNotSettled, m.State)
		}
		if err := tx.DeleteMessage(ctx, m.ID); err != nil {
			return fmt.Errorf("delete message %s: %w", id, err)
		}
		return nil
	})
}

// isText reports whether v can equal a stored value: valid UTF-8 without
// a NUL. PostgreSQL refuses to compare anything else with text (an error
// where a client's value should simply match nothing) and SQLite compares
// it; no stored account, number or SID is such a value, so a look-up by
// one finds nothing on every engine (fails closed: not found, an empty
// page).
func isText(v string) bool { return utf8.ValidString(v) && !strings.ContainsRune(v, 0) }

// allText reports whether every one of vs is text (isText).
func allText(vs ...string) bool {
	for _, v := range vs {
		if !isText(v) {
			return false
		}
	}
	return true
}
