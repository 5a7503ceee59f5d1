package traffic

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
)

// Content types of the requests Twilio sends.
const (
	formType      = "application/x-www-form-urlencoded"
	voiceFormType = formType + "; charset=UTF-8" // calls say which charset
	jsonType      = "application/json"
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

// clients are the Voice SDK identities client notifications are for.
var clients = []string{"alice", "bob", "carol", "dave", "erin"}

// generator makes the bodies of a run's requests. Body n depends only on
// the run's options and n, so that a run is reproducible however its
// requests are spread over workers.
type generator struct {
	kind        string
	seed        uint64
	accountSID  string
	serviceSID  string
	number      string // the app's own number: To of inbound messages and calls, From of sent messages
	numberPlace place

	messages, calls, notifications, bridges sidKeys
}

func newGenerator(opts Options) *generator {
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), 0x5357_4954_4348)) // per-run constants
	g := &generator{
		kind:        opts.Kind,
		seed:        uint64(opts.Seed),
		accountSID:  opts.AccountSID,
		serviceSID:  fmt.Sprintf("MG%016x%016x", rng.Uint64(), rng.Uint64()),
		numberPlace: places[rng.IntN(len(places))],
		messages:    newSIDKeys(rng),
	}
	if g.accountSID == "" {
		g.accountSID = fmt.Sprintf("AC%016x%016x", rng.Uint64(), rng.Uint64())
	}
	g.number = phone(g.numberPlace, rng)
	// Drawn last, so that the messages of a seed stay what they were
	// before calls were added.
	g.calls, g.notifications, g.bridges = newSIDKeys(rng), newSIDKeys(rng), newSIDKeys(rng)
	return g
}

// phone returns a number in p's area code, in the 555-01xx range reserved
// for fiction so that it cannot be anyone's.
func phone(p place, rng *rand.Rand) string {
	return fmt.Sprintf("+1%s55501%02d", p.areaCode, rng.IntN(100))
}

// sidKeys make the SIDs of one kind of resource in a run.
type sidKeys struct{ k1, k2 uint64 }

func newSIDKeys(rng *rand.Rand) sidKeys {
	return sidKeys{rng.Uint64(), rng.Uint64()}
}

// sid returns the SID of resource m, with the given two-letter prefix. SIDs
// of distinct m are distinct: each half is a bijection of m.
func (k sidKeys) sid(prefix string, m int) string {
	return fmt.Sprintf("%s%016x%016x", prefix, mix(uint64(m)^k.k1), mix(uint64(m)^k.k2))
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

// contentType returns the Content-Type of the run's requests.
func (g *generator) contentType() string {
	switch g.kind {
	case KindVoice:
		return voiceFormType
	case KindClientNotification:
		return jsonType
	default:
		return formType
	}
}

// payload returns the body of request n, encoded as contentType says, and
// for a form body the parameters it encodes.
func (g *generator) payload(n int) (body []byte, form url.Values, err error) {
	switch g.kind {
	case KindClientNotification:
		body, err := json.Marshal(g.clientNotification(n))
		if err != nil {
			return nil, nil, fmt.Errorf("encode client notification %d: %w", n, err)
		}
		return body, nil, nil
	case KindStatus:
		form = g.status(n)
	case KindVoice:
		form = g.voice(n)
	default:
		form = g.inbound(n)
	}
	return []byte(form.Encode()), form, nil
}

// inbound returns the parameters of an inbound SMS, each request a new
// message.
func (g *generator) inbound(n int) url.Values {
	rng := rand.New(rand.NewPCG(g.seed, uint64(n)))
	from := places[rng.IntN(len(places))]
	sid := g.messages.sid("SM", n)
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
	sid := g.messages.sid("SM", m)
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

// voice returns the parameters of an incoming call to the app's number,
// each request a new call, as Twilio sends them when the call rings: the
// caller and the called number, each under two names, with where they are.
func (g *generator) voice(n int) url.Values {
	rng := rand.New(rand.NewPCG(g.seed, uint64(n)))
	from := places[rng.IntN(len(places))]
	caller := phone(from, rng)
	to := g.numberPlace
	return url.Values{
		"CallSid":       {g.calls.sid("CA", n)},
		"AccountSid":    {g.accountSID},
		"From":          {caller},
		"Caller":        {caller},
		"FromCity":      {from.city},
		"FromState":     {from.state},
		"FromZip":       {from.zip},
		"FromCountry":   {"US"},
		"CallerCity":    {from.city},
		"CallerState":   {from.state},
		"CallerZip":     {from.zip},
		"CallerCountry": {"US"},
		"To":            {g.number},
		"Called":        {g.number},
		"ToCity":        {to.city},
		"ToState":       {to.state},
		"ToZip":         {to.zip},
		"ToCountry":     {"US"},
		"CalledCity":    {to.city},
		"CalledState":   {to.state},
		"CalledZip":     {to.zip},
		"CalledCountry": {"US"},
		"CallStatus":    {"ringing"},
		"Direction":     {"inbound"},
		"ApiVersion":    {"2010-04-01"},
	}
}

// clientNotification is the JSON body of a Voice SDK client notification,
// its members in the order they are encoded.
type clientNotification struct {
	AccountSID  string `json:"twi_account_sid"`
	BridgeToken string `json:"twi_bridge_token"`
	CallSID     string `json:"twi_call_sid"`
	From        string `json:"twi_from"`
	To          string `json:"twi_to"`
	MessageID   string `json:"twi_message_id"`
	MessageType string `json:"twi_message_type"`
}

// clientNotification returns the body of the notification that tells a
// Voice SDK client of an incoming call, each request a new call.
func (g *generator) clientNotification(n int) clientNotification {
	rng := rand.New(rand.NewPCG(g.seed, uint64(n)))
	from := places[rng.IntN(len(places))]
	return clientNotification{
		AccountSID:  g.accountSID,
		BridgeToken: g.bridges.sid("BT", n),
		CallSID:     g.calls.sid("CA", n),
		From:        phone(from, rng),
		To:          "client:" + clients[rng.IntN(len(clients))],
		MessageID:   g.notifications.sid("WB", n),
		MessageType: "twilio.voice.call",
	}
}
