// Package listener carries a route's events to an app on a developer's
// machine through a connection the machine opens out (switchboard listen),
// so it works behind NAT with no inbound port.
//
// The transport is a WebSocket (github.com/coder/websocket) on the admin
// API, GET /api/v1/listen. One connection carries both directions: the
// server sends each request to make, the listener sends back the app's
// answer on the same connection. With server-sent events and a POST per
// answer instead, an answer could reach a different replica behind a load
// balancer than the one waiting for it, and the server would learn of a
// vanished listener only when a write failed; a WebSocket's close or read
// error tells it at once, which is when its in-flight request is known
// lost (switchboard.ErrListenerGone).
//
// Server side, a Hub holds the connected listeners. Each runs a session
// that reads the store for the waiting events of its routes, oldest first
// (switchboard.Store.WaitingEvents), and delivers them one at a time
// through the connection (deliver.Deliverer.DeliverThrough), which records
// each outcome as an attempt under the route's retry policy: the events
// missed while no listener was connected arrive in order, then the live
// ones. Delivery is at least once: an event whose answer was lost with the
// connection is delivered again, with the same X-Switchboard-Event-Id.
//
// Client side, a Client connects, makes each request it is sent to the
// local app and answers with what the app answered, reconnecting with
// backoff when the connection drops.
package listener

import (
	"net/http"
)

// Frame types.
const (
	TypeHello    = "hello"    // server → listener, once: who it is and which routes it serves
	TypeRequest  = "request"  // server → listener: a request to make to the app
	TypeResponse = "response" // listener → server: the app's answer to a request
)

// Frame is one JSON message on a listener's connection. Type says which
// fields are set.
type Frame struct {
	Type string `json:"type"`

	// hello
	Listener string   `json:"listener,omitempty"`
	Routes   []string `json:"routes,omitempty"`

	// request and response: ID pairs a response with its request.
	ID uint64 `json:"id,omitempty"`

	// request: the event, for the listener to show, and the request to
	// make, signed for URL.
	EventID string      `json:"event_id,omitempty"`
	Route   string      `json:"route,omitempty"`
	Kind    string      `json:"kind,omitempty"`
	SID     string      `json:"sid,omitempty"`
	Attempt int         `json:"attempt,omitempty"`
	Live    bool        `json:"live,omitempty"` // a proxy route's request: Twilio waits for the answer
	Method  string      `json:"method,omitempty"`
	URL     string      `json:"url,omitempty"`
	Header  http.Header `json:"header,omitempty"`
	Body    []byte      `json:"body,omitempty"`

	// response: the app's answer (Status, Header, Body cut to
	// MaxAnswerBytes), or what kept it from answering (Error and its
	// Class, a twilio.ErrorClass name: connect, timeout, …).
	Status    int    `json:"status,omitempty"`
	Error     string `json:"error,omitempty"`
	Class     string `json:"class,omitempty"`
	LatencyMS int64  `json:"latency_ms,omitempty"`
}

// Limits of the connection. A frame larger than MaxFrameBytes closes it.
const (
	// MaxAnswerBytes is the most of an app's answer a listener sends
	// back: more than the largest TwiML Twilio takes (64 KB), so an
	// oversized answer is still seen as one.
	MaxAnswerBytes = 128 << 10
	// MaxFrameBytes bounds one frame either way: a webhook's body (at
	// most 1 MiB at intake), its headers and base64's growth.
	MaxFrameBytes = 2 << 20
)

// Path is where the admin API serves listeners.
const Path = "/api/v1/listen"

// Query parameters of Path.
const (
	ParamListener  = "listener"   // the listener's name (switchboard.ValidListenerName)
	ParamForwardTo = "forward_to" // the local URL it forwards to (see ForwardURL)
	ParamKind      = "kind"       // repeated: the kinds it takes; none: all
)
