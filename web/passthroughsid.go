package web

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/switchboard-dev/switchboard"
)

// What the pass-through does with message SIDs. A message has one SID for
// its app, Switchboard's (see switchboard.OutboundMessage.SID), which
// Twilio has never heard of; Twilio's requests about a message are made
// with Twilio's SID for it.

// pathMessage returns the message of account that r's path names
// (…/Messages/{Sid}.json). A message Switchboard does not hold (one sent
// before Switchboard stood in front of the account, or around it) is
// Twilio's to answer for: r is passed through to the account's provider as
// it came, passed is true, and err is the pass-through's. Without a
// pass-through such a message is ErrNotFound.
func (s *Server) pathMessage(w http.ResponseWriter, r *http.Request, account string) (m *switchboard.OutboundMessage, passed bool, err error) {
	sid, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	if !ok {
		return nil, false, switchboard.ErrNotFound
	}
	m, err = s.messageBySID(r, account, sid)
	if errors.Is(err, switchboard.ErrNotFound) && s.passThrough != nil {
		return nil, true, s.passThroughRequest(w, r)
	}
	return m, false, err
}

// withTwilioSID is p with the SID of a message's subresource path
// (/2010-04-01/Accounts/{AC}/Messages/{Sid}/Media…, Feedback…) replaced by
// Twilio's, when {Sid} is the Switchboard SID of a message of account that
// Twilio accepted. Anything else, a store error included, goes as it came:
// Twilio then answers for a SID it does not know (404), which fails toward
// an error the app sees, never toward another message's data.
func (s *Server) withTwilioSID(ctx context.Context, account string, p passThroughPath) passThroughPath {
	if p.host != "" && p.host != apiHost {
		return p
	}
	segs := strings.Split(p.path, "/") // "", "2010-04-01", "Accounts", AC, "Messages", Sid, subresource…
	if len(segs) < 7 || segs[4] != "Messages" || !strings.EqualFold(segs[2], "Accounts") {
		return p
	}
	sid := segs[5]
	if _, ok := switchboard.MessageIDOfSID(sid); !ok {
		return p
	}
	m, err := s.store.MessageBySID(ctx, account, sid)
	if err != nil || m.TwilioSID == "" || m.SID() != sid {
		return p
	}
	segs[5] = m.TwilioSID
	p.path = strings.Join(segs, "/")
	raw := strings.Split(p.rawPath, "/")
	if len(raw) == len(segs) && raw[5] == sid {
		raw[5] = m.TwilioSID
		p.rawPath = strings.Join(raw, "/")
	} else {
		p.rawPath = "" // escapes elsewhere in the path: let the URL spell it
	}
	return p
}
