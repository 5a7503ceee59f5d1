package switchboard_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
)

func TestMessageSIDRoundTrips(t *testing.T) {
	id := uuid.Must(uuid.NewV7()).String()
	m := &switchboard.OutboundMessage{ID: id}
	sid := m.SID()
	if len(sid) != 34 || sid[:2] != "SM" {
		t.Fatalf("SID() = %q, want SM and 32 hex digits", sid)
	}
	got, ok := switchboard.MessageIDOfSID(sid)
	if !ok || got != id {
		t.Errorf("MessageIDOfSID(%q) = %q, %v; want %q", sid, got, ok, id)
	}
}

func TestMessageIDOfSIDRefusesOtherShapes(t *testing.T) {
	for _, sid := range []string{
		"", "SM", "SMnot-hex-at-all-00000000000000000", "MM0123456789abcdef0123456789abcdef",
		"SM0123456789ABCDEF0123456789ABCDEF", // Twilio's SIDs are lower case; so are ours
		"SM0123456789abcdef0123456789abcdef0", "SM0123456789abcdef0123456789abcde",
		"SM0123456789abcdef0123456789abcdef\n", "SM01234567-89ab-cdef-0123-456789abcdef",
	} {
		if id, ok := switchboard.MessageIDOfSID(sid); ok {
			t.Errorf("MessageIDOfSID(%q) = %q, true; want refused", sid, id)
		}
	}
}

func TestStatusCallbackURLCarriesTheSID(t *testing.T) {
	m := &switchboard.OutboundMessage{ID: uuid.Must(uuid.NewV7()).String()}
	for _, base := range []string{"https://hooks.example.com/status", "https://hooks.example.com/status?route=a&b=%2F"} {
		u := m.StatusCallbackURL(base)
		sid, ok := switchboard.SIDOfCallbackURL(u)
		if !ok || sid != m.SID() {
			t.Errorf("SIDOfCallbackURL(%q) = %q, %v; want %q", u, sid, ok, m.SID())
		}
	}
	if u := m.StatusCallbackURL(""); u != "" {
		t.Errorf("StatusCallbackURL(\"\") = %q, want none", u)
	}
}

func TestSIDOfCallbackURLRefusesWhatIsNotOneSID(t *testing.T) {
	const sid = "SM0123456789abcdef0123456789abcdef"
	for _, u := range []string{
		"https://h.example.com/status",
		"https://h.example.com/status?SwitchboardSid=",
		"https://h.example.com/status?SwitchboardSid=SMnot",
		"https://h.example.com/status?SwitchboardSid=" + sid + "&SwitchboardSid=" + sid,
		"https://h.example.com/status?switchboardsid=" + sid,
		"https://h.example.com/status?SwitchboardSid=" + sid + "%00",
		"https://h.example.com/status?x=%zz&SwitchboardSid=" + sid,
		"://bad",
	} {
		if got, ok := switchboard.SIDOfCallbackURL(u); ok {
			t.Errorf("SIDOfCallbackURL(%q) = %q, true; want refused", u, got)
		}
	}
}
