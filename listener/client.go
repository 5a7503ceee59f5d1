package listener

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Delivery is one request a Client made to the local app, for it to show.
type Delivery struct {
	At      time.Time
	EventID string
	Route   string
	Kind    string
	SID     string
	Attempt int
	Live    bool // a proxy route's request: the answer went back to Twilio
	Status  int  // the app's HTTP status; 0 when it did not answer
	Error   string
	Latency time.Duration
}

// Client is a listener: it connects out to a Switchboard and forwards the
// requests it is sent to the local app.
type Client struct {
	// Server is the base URL of the Switchboard's admin API
	// (http://127.0.0.1:8080).
	Server string
	// Token is the admin token or the listener's own key.
	Token string
	// Listener is the name the routes name.
	Listener string
	// ForwardTo is the local app's URL (see ForwardURL).
	ForwardTo string
	// Kinds, when not empty, are the only kinds of event it takes; the
	// others wait for a listener that takes them.
	Kinds []string
	// HTTP makes the requests to the app; nil: a client that follows no
	// redirect and gives up after Timeout.
	HTTP    *http.Client
	Timeout time.Duration // default 15 s, Twilio's own limit
	// OnEvent, when set, is called after each request made to the app.
	OnEvent func(Delivery)
	// OnConnect, when set, is called on each connection with the routes it
	// serves; OnDisconnect with why a connection ended.
	OnConnect    func(routes []string)
	OnDisconnect func(err error)
	Logger       *slog.Logger
}

// ErrRefused wraps a refusal reconnecting cannot cure (a wrong token, an
// unknown listener): Run returns it.
var ErrRefused = errors.New("refused by the server")

// Run connects and serves until ctx ends (then it returns nil),
// reconnecting with backoff whenever the connection drops. It returns an
// error wrapping ErrRefused when the server refuses the listener.
func (c *Client) Run(ctx context.Context) error {
	return errors.New("listener client: not implemented yet")
}
