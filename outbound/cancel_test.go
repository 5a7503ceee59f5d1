package outbound_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/outbound"
	"github.com/switchboard-dev/switchboard/sqlite"
	"github.com/switchboard-dev/switchboard/storetest"
	"github.com/switchboard-dev/switchboard/twilio"
)

// countingClient is a Twilio that accepts every message and counts them.
type countingClient struct{ creates atomic.Int64 }

func (c *countingClient) Create(_ context.Context, p twilio.CreateParams) (*twilio.RestMessage, error) {
	n := c.creates.Add(1)
	return &twilio.RestMessage{SID: "SM" + string(rune('a'+n)), From: p.From, To: p.To, Status: "queued"}, nil
}

func (c *countingClient) List(context.Context, twilio.ListParams) ([]twilio.RestMessage, error) {
	return nil, errors.New("no lookups here")
}

// cancelingStore cancels each message just before the sender's claim of
// it reaches the store: the cancel wins the race the sender runs after
// loading the message queued.
type cancelingStore struct {
	*sqlite.Store
	t *testing.T
}

func (s cancelingStore) RecordSend(ctx context.Context, r switchboard.SendResult) error {
	if r.State == switchboard.MessageSending {
		if _, err := s.CancelMessage(ctx, acct, r.MessageID); err != nil {
			s.t.Errorf("cancel before the claim: %v", err)
		}
	}
	return s.Store.RecordSend(ctx, r)
}

// A canceled message is never sent: not when it was canceled before its
// send job ran, nor when the cancel lands between the job loading it and
// claiming it.
func TestCanceledMessageIsNeverSent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		store     func(*sqlite.Store) outbound.Store
		cancelNow bool
	}{
		{"canceled before the job", func(s *sqlite.Store) outbound.Store { return s }, true},
		{"canceled before the claim", func(s *sqlite.Store) outbound.Store { return cancelingStore{Store: s, t: t} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sb.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			client := &countingClient{}
			sender, err := outbound.New(tc.store(st), outbound.Options{Client: client,
				Pools: []outbound.Pool{{Name: pool, Senders: []string{senderA}, Rate: 1000}}})
			if err != nil {
				t.Fatal(err)
			}
			m := storetest.NewMessage("cancel-"+tc.name, "+15557770001", time.Now())
			m.AccountSID, m.Pool, m.MediaURLs = acct, pool, nil
			m.PayloadHash = switchboard.Payload{To: m.To, Body: m.Body, Pool: m.Pool, Purpose: m.Purpose}.Hash()
			if _, err := st.CreateMessage(ctx, m); err != nil {
				t.Fatal(err)
			}
			if tc.cancelNow {
				if _, err := st.CancelMessage(ctx, acct, m.ID); err != nil {
					t.Fatal(err)
				}
			}
			if err := sender.Send(ctx, m.ID, 0); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if n := client.creates.Load(); n != 0 {
				t.Errorf("%d requests to Twilio, want none", n)
			}
			got, err := st.OutboundMessage(ctx, m.ID)
			if err != nil || got.State != switchboard.MessageCanceled || got.Attempts != 0 {
				t.Errorf("message = %+v, %v; want canceled without attempts", got, err)
			}
		})
	}
}
