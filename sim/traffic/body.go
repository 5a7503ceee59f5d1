package load

import (
	"fmt"
	"math/rand/v2"
	"net/url"
)

// place is where a phone number is, as Twilio's geographic parameters
// describe it.
type place struct {
	city, state, zip, areaCode string
}

var places = []place{
	{"SAN FRANCISCO", "CA", "94105", "415"},
	{"NEW YORK", "NY", "10001", "212"},
	{"CHICAGO", "IL", "60601", "312"},
	{"AUSTIN", "TX", "78701", "512"},
	{"SEATTLE", "WA", "98101", "206"},
	{"MIAMI", "FL", "33131", "305"},
	{"DENVER", "CO", "80202", "303"},
	{"BOSTON", "MA", "02108", "617"},
}

// texts are inbound message bodies. Most are not ASCII, so that encoding
// and signing are exercised beyond the easy case; all fit one UCS-2
// segment (70 characters).
var texts = []string{
	"Hi! Is the café open tomorrow? ☕",
	"Grüße aus München, see you at 8",
	"¿Dónde nos vemos? 🙂",
	"Merci, à bientôt !",
	"こんにちは、予約の確認です",
	"Ok 👍 running 5 min late",
	"Привет! Всё в силе?",
	"Yes, confirmed for Tuesday ✅",
	"Can I move my appointment to 3pm?",
	"Thanks & have a great day :)",
}

// generator makes the bodies of a run's requests. Body n depends only on
// the run's options and n, so that a run is reproducible however its
// requests are spread over workers.
type generator struct {
	kind             string
	seed             uint64
	accountSID       string
	serviceSID       string
	number           string // the app's own number: To of inbound messages, From of sent ones
	numberPlace      place
	sidKey1, sidKey2 uint64
}

func newGenerator(opts Options) *generator {
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), 0x5357_4954_4348)) // per-run constants
	g := &generator{
		kind:        opts.Kind,
		seed:        uint64(opts.Seed),
		accountSID:  opts.AccountSID,
		serviceSID:  fmt.Sprintf("MG%016x%016x", rng.Uint64(), rng.Uint64()),
		numberPlace: places[rng.IntN(len(places))],
		sidKey1:     rng.Uint64(),
		sidKey2:     rng.Uint64(),
	}
	if g.accountSID == "" {
		g.accountSID = fmt.Sprintf("AC%016x%016x", rng.Uint64(), rng.Uint64())
	}
	g.number = phone(g.numberPlace, rng)
	return g
}

// phone returns a number in p's area code, in the 555-01xx range reserved
// for fiction so that it cannot be anyone's.
func phone(p place, rng *rand.Rand) string {
	return fmt.Sprintf("+1%s55501%02d", p.areaCode, rng.IntN(100))
}

// messageSID returns the SID of message m, unique among a run's messages:
// each half is a bijection of m.
func (g *generator) messageSID(m int) string {
	return fmt.Sprintf("SM%016x%016x", mix(uint64(m)^g.sidKey1), mix(uint64(m)^g.sidKey2))
}

// mix scrambles x with the finalizer of SplitMix64. Each step is
// invertible, so distinct inputs give distinct outputs.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// body returns the form body of request n.
func (g *generator) body(n int) []byte {
	if g.kind == KindStatus {
		return []byte(g.status(n).Encode())
	}
	return []byte(g.inbound(n).Encode())
}

// inbound returns the parameters of an inbound SMS, each request a new
// message.
func (g *generator) inbound(n int) url.Values {
	rng := rand.New(rand.NewPCG(g.seed, uint64(n)))
	from := places[rng.IntN(len(places))]
	sid := g.messageSID(n)
	return url.Values{
		"MessageSid":          {sid},
		"SmsSid":              {sid},
		"SmsMessageSid":       {sid},
		"AccountSid":          {g.accountSID},
		"MessagingServiceSid": {g.serviceSID},
		"From":                {phone(from, rng)},
		"FromCity":            {from.city},
		"FromState":           {from.state},
		"FromZip":             {from.zip},
		"FromCountry":         {"US"},
		"To":                  {g.number},
		"ToCity":              {g.numberPlace.city},
		"ToState":             {g.numberPlace.state},
		"ToZip":               {g.numberPlace.zip},
		"ToCountry":           {"US"},
		"Body":                {texts[rng.IntN(len(texts))]},
		"NumMedia":            {"0"},
		"NumSegments":         {"1"},
		"SmsStatus":           {"received"},
		"ApiVersion":          {"2010-04-01"},
	}
}

// status returns the parameters of a status callback. Requests come in
// pairs about one message sent by the app, "sent" then "delivered", as
// Twilio reports them; concurrency may deliver them in either order, as
// Twilio may too.
func (g *generator) status(n int) url.Values {
	m := n / 2
	rng := rand.New(rand.NewPCG(g.seed, uint64(m))) // the same for both callbacks of a message
	to := places[rng.IntN(len(places))]
	status := "sent"
	if n%2 == 1 {
		status = "delivered"
	}
	sid := g.messageSID(m)
	return url.Values{
		"MessageSid":    {sid},
		"SmsSid":        {sid},
		"MessageStatus": {status},
		"SmsStatus":     {status},
		"AccountSid":    {g.accountSID},
		"From":          {g.number},
		"To":            {phone(to, rng)},
		"ApiVersion":    {"2010-04-01"},
	}
}
