package listener

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Bounds of a server-side connection.
const (
	// maxInFlight bounds the requests waiting for an answer on one
	// connection: the session's one delivery, and the live requests of
	// proxy routes beside it.
	maxInFlight = 64
	// maxRequestBody is the largest request body a frame carries: base64
	// makes it a third larger, and the rest of MaxFrameBytes is left for
	// the headers.
	maxRequestBody = MaxFrameBytes * 5 / 8
	// maxAnswerWait bounds the wait for an answer when the request's
	// context has no deadline of its own: a listener that never answers
	// must not hold a delivery forever.
	maxAnswerWait = 2 * time.Minute
	// maxErrorBytes bounds the error text a listener reports.
	maxErrorBytes = 1024
	// writeTimeout bounds the write of one frame.
	writeTimeout = 10 * time.Second
)

// AppError is what kept the app from answering a request sent through a
// listener (connection refused, timeout, …), as the listener reported it,
// or what kept the request from being sent at all. Its ErrorClass says
// which, for the deliver package to record.
type AppError struct {
	Class twilio.ErrorClass
	Msg   string
	err   error
}

func (e *AppError) Error() string { return "listener: " + e.Msg }

// ErrorClass is the class of the failure.
func (e *AppError) ErrorClass() twilio.ErrorClass { return e.Class }

func (e *AppError) Unwrap() error { return e.err }

// knownClasses are the classes a listener may report; any other is taken
// as a protocol failure (fails closed: a listener cannot invent a class).
var knownClasses = map[twilio.ErrorClass]bool{
	twilio.ClassDNS: true, twilio.ClassConnect: true, twilio.ClassTimeout: true,
	twilio.ClassTLS: true, twilio.ClassProtocol: true,
}

// tunnel is the server side of one listener's connection: it sends
// request frames and pairs the response frames with them.
type tunnel struct {
	conn      *websocket.Conn
	forwardTo string

	nextID atomic.Uint64
	slots  chan struct{} // one per request in flight

	mu      sync.Mutex
	pending map[uint64]chan *Frame

	ready chan struct{} // closed once the hello is sent: requests may follow

	goneOnce sync.Once
	gone     chan struct{} // closed when the connection ended
	goneErr  error         // why; set before gone is closed
}

var _ deliver.Tunnel = (*tunnel)(nil)

func newTunnel(conn *websocket.Conn, forwardTo string) *tunnel {
	return &tunnel{
		conn:      conn,
		forwardTo: forwardTo,
		slots:     make(chan struct{}, maxInFlight),
		pending:   make(map[uint64]chan *Frame),
		ready:     make(chan struct{}),
		gone:      make(chan struct{}),
	}
}

// markReady says the hello is sent; the session calls it once.
func (t *tunnel) markReady() { close(t.ready) }

// isReady reports whether the hello is sent.
func (t *tunnel) isReady() bool {
	select {
	case <-t.ready:
		return true
	default:
		return false
	}
}

// Target is the URL the listener forwards route's events to. Serve
// checked forward_to against every route, so it does not fail.
func (t *tunnel) Target(route string) string {
	u, err := ForwardURL(t.forwardTo, route)
	if err != nil {
		return ""
	}
	return u
}

// fail marks the connection ended for err, unless it already was: every
// request waiting for an answer fails with ErrListenerGone, and the
// session stops. The session closes the connection.
func (t *tunnel) fail(err error) {
	t.goneOnce.Do(func() {
		t.goneErr = err
		close(t.gone)
	})
}

// isGone reports whether the connection ended.
func (t *tunnel) isGone() bool {
	select {
	case <-t.gone:
		return true
	default:
		return false
	}
}

func (t *tunnel) goneError() error {
	return fmt.Errorf("%w: %v", switchboard.ErrListenerGone, t.goneErr)
}

// errProtocol is a listener's frame that breaks the protocol: it closes
// the connection.
var errProtocol = errors.New("protocol violation")

// readLoop reads the listener's frames until the connection ends,
// handing each response to the request waiting for it. A frame that
// breaks the protocol closes the connection.
func (t *tunnel) readLoop(ctx context.Context) {
	for {
		typ, data, err := t.conn.Read(ctx)
		if err != nil {
			t.fail(fmt.Errorf("read: %w", err))
			return
		}
		if err := t.dispatch(typ, data); err != nil {
			t.fail(fmt.Errorf("%w: %v", errProtocol, err))
			return
		}
	}
}

func (t *tunnel) dispatch(typ websocket.MessageType, data []byte) error {
	if typ != websocket.MessageText {
		return errors.New("binary frame")
	}
	var f Frame
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("malformed frame: %w", err)
	}
	if f.Type != TypeResponse {
		return fmt.Errorf("frame of type %q from a listener", f.Type)
	}
	if f.ID == 0 || f.ID > t.nextID.Load() {
		return fmt.Errorf("response to request %d, never sent", f.ID)
	}
	if f.Error == "" && (f.Status < 100 || f.Status > 999) {
		return fmt.Errorf("response %d with status %d", f.ID, f.Status)
	}
	t.mu.Lock()
	ch := t.pending[f.ID]
	delete(t.pending, f.ID)
	t.mu.Unlock()
	// No one waiting: an answer that came after its request gave up, or a
	// second answer to one request; either is dropped.
	if ch != nil {
		ch <- &f // buffered: never blocks
	}
	return nil
}

// RoundTrip sends req to the listener and waits for the app's answer.
func (t *tunnel) RoundTrip(req *http.Request) (*http.Response, error) {
	f, err := t.requestFrame(req)
	if err != nil {
		return nil, err
	}
	select {
	case t.slots <- struct{}{}:
		defer func() { <-t.slots }()
	default:
		return nil, &AppError{Class: twilio.ClassConnect, Msg: fmt.Sprintf("%d requests already waiting for the listener", maxInFlight)}
	}
	if t.isGone() {
		return nil, t.goneError()
	}
	ctx := req.Context()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, maxAnswerWait)
		defer cancel()
	}

	f.ID = t.nextID.Add(1)
	data, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode request frame: %w", err)
	}
	if len(data) > MaxFrameBytes {
		return nil, fmt.Errorf("request of %d bytes is too large for a listener", len(data))
	}
	ch := make(chan *Frame, 1)
	t.mu.Lock()
	t.pending[f.ID] = ch
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.pending, f.ID)
		t.mu.Unlock()
	}()

	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	err = t.conn.Write(wctx, websocket.MessageText, data)
	cancel()
	if err != nil {
		// A write cut short leaves the connection unusable: coder/websocket
		// closes it, and the request may or may not have gone out.
		t.fail(fmt.Errorf("write: %w", err))
		if ctx.Err() != nil {
			return nil, &AppError{Class: twilio.ClassTimeout, Msg: "no answer in time", err: ctx.Err()}
		}
		return nil, t.goneError()
	}

	select {
	case ans := <-ch:
		if ans.Error != "" {
			class := twilio.ErrorClass(ans.Class)
			if !knownClasses[class] {
				class = twilio.ClassProtocol
			}
			msg := ans.Error
			if len(msg) > maxErrorBytes {
				msg = msg[:maxErrorBytes]
			}
			return nil, &AppError{Class: class, Msg: msg}
		}
		return answer(req, ans), nil
	case <-ctx.Done():
		if t.isGone() {
			return nil, t.goneError()
		}
		return nil, &AppError{Class: twilio.ClassTimeout, Msg: "no answer in time", err: ctx.Err()}
	case <-t.gone:
		return nil, t.goneError()
	}
}

// requestFrame is the request frame of req, its ID not yet set.
func (t *tunnel) requestFrame(req *http.Request) (*Frame, error) {
	var body []byte
	if req.Body != nil {
		defer req.Body.Close()
		b, err := io.ReadAll(io.LimitReader(req.Body, maxRequestBody+1))
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		if len(b) > maxRequestBody {
			return nil, fmt.Errorf("request body over %d bytes is too large for a listener", maxRequestBody)
		}
		body = b
	}
	f := &Frame{
		Type:    TypeRequest,
		EventID: req.Header.Get("X-Switchboard-Event-Id"),
		Method:  req.Method,
		URL:     req.URL.String(),
		Header:  req.Header.Clone(),
		Body:    body,
	}
	f.Attempt, _ = strconv.Atoi(req.Header.Get("X-Switchboard-Attempt"))
	tr, _ := deliver.TunnelRequestOf(req.Context())
	if ev := tr.Event; ev != nil {
		f.Route, f.Kind = ev.Route, string(ev.Kind)
		f.SID = ev.MessageSID
		if f.SID == "" {
			f.SID = ev.CallSID
		}
		if f.EventID == "" {
			f.EventID = ev.ID
		}
	}
	f.Live = tr.Live
	return f, nil
}

// answer turns the listener's response frame into req's response.
func answer(req *http.Request, f *Frame) *http.Response {
	body := f.Body
	if len(body) > MaxAnswerBytes {
		body = body[:MaxAnswerBytes]
	}
	header := f.Header
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{
		Status:        strconv.Itoa(f.Status) + " " + http.StatusText(f.Status),
		StatusCode:    f.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
