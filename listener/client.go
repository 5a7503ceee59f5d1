package listener

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/coder/websocket"

	"github.com/switchboard-dev/switchboard/twilio"
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
// unknown listener, another listener of the same name connecting after
// this one): Run returns it.
var ErrRefused = errors.New("refused by the server")

// Client bounds.
const (
	backoffBase = 250 * time.Millisecond
	backoffMax  = 10 * time.Second
	// healthyAfter is how long a connection lasts to count as healthy: the
	// next reconnection starts again from backoffBase.
	healthyAfter = backoffMax
	// maxConcurrent bounds the requests made to the app at once; past it a
	// request is answered busy at once rather than read late, so that the
	// connection keeps answering pings.
	maxConcurrent = 16
	// maxRefusalBytes bounds the server's explanation of a refusal.
	maxRefusalBytes = 512
	dialTimeout     = 30 * time.Second
)

// Run connects and serves until ctx ends (then it returns nil),
// reconnecting with backoff whenever the connection drops. It returns an
// error wrapping ErrRefused when the server refuses the listener.
func (c *Client) Run(ctx context.Context) error {
	origin, err := originOf(c.ForwardTo)
	if err != nil {
		return fmt.Errorf("forward-to: %w", err)
	}
	if _, err := ForwardURL(c.ForwardTo, "/"); err != nil {
		return err
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultAppClient(c.Timeout)
	}
	backoff := backoffBase
	for {
		start := time.Now()
		err := c.connection(ctx, origin, hc)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrRefused) {
			return err
		}
		if c.OnDisconnect != nil {
			c.OnDisconnect(err)
		}
		c.logger().Warn("listener: disconnected", "err", err)
		if time.Since(start) >= healthyAfter {
			backoff = backoffBase
		}
		// Full jitter over the upper half: listeners cut off together do
		// not come back together.
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, backoffMax)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}

func (c *Client) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// defaultAppClient makes requests to the local app: no proxy (the app is
// local; a proxy from the environment would see its traffic), no
// redirect followed (the server follows them as it would for any target),
// and Twilio's own time limit.
func defaultAppClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// dialURL is the listener's WebSocket URL on the server.
func (c *Client) dialURL() (string, error) {
	u, err := url.Parse(strings.TrimSuffix(c.Server, "/") + Path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w: server %q is not an http(s) URL", ErrRefused, c.Server)
	}
	q := url.Values{ParamListener: {c.Listener}, ParamForwardTo: {c.ForwardTo}}
	for _, k := range c.Kinds {
		q.Add(ParamKind, k)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// connection connects once and serves until the connection ends.
func (c *Client) connection(ctx context.Context, origin string, hc *http.Client) error {
	u, err := c.dialURL()
	if err != nil {
		return err
	}
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient: &http.Client{Timeout: dialTimeout},
		HTTPHeader: http.Header{"Authorization": {"Bearer " + c.Token}},
	})
	if err != nil {
		if resp != nil {
			switch resp.StatusCode {
			case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
				// Dial keeps the start of the refusal's body.
				b, _ := io.ReadAll(io.LimitReader(resp.Body, maxRefusalBytes))
				// Control characters dropped: the refusal is printed on a
				// terminal, and escape codes are the server's to show, not
				// to play.
				why := strings.Map(func(r rune) rune {
					if unicode.IsControl(r) {
						return ' '
					}
					return r
				}, string(b))
				return fmt.Errorf("%w: %s: %s", ErrRefused, resp.Status, strings.TrimSpace(why))
			}
		}
		return fmt.Errorf("connect to %s: %w", c.Server, err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(MaxFrameBytes)

	// On the way out: stop the requests in progress (their answers have
	// nowhere to go), then wait for them.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); c.keepAlive(ctx, conn) }()

	l := &clientConn{c: c, conn: conn, origin: origin, hc: hc, slots: make(chan struct{}, maxConcurrent)}
	err = l.serve(ctx, &wg)
	if websocket.CloseStatus(err) == closeReplaced {
		return fmt.Errorf("%w: another listener named %q connected", ErrRefused, c.Listener)
	}
	return err
}

// keepAlive pings the server, so that a server gone without closing is
// noticed; a failed ping closes the connection.
func (c *Client) keepAlive(ctx context.Context, conn *websocket.Conn) {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		err := conn.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				conn.CloseNow()
			}
			return
		}
	}
}

// clientConn is one connection of a Client.
type clientConn struct {
	c      *Client
	conn   *websocket.Conn
	origin string
	hc     *http.Client
	slots  chan struct{}
}

// serve reads the server's frames until the connection ends: a hello
// first, then requests, each made in its own goroutine.
func (l *clientConn) serve(ctx context.Context, wg *sync.WaitGroup) error {
	f, err := l.read(ctx)
	if err != nil {
		return err
	}
	if f.Type != TypeHello {
		l.conn.Close(websocket.StatusPolicyViolation, "expected hello")
		return fmt.Errorf("server sent %q before hello", f.Type)
	}
	if l.c.OnConnect != nil {
		l.c.OnConnect(f.Routes)
	}
	l.c.logger().Info("listener: connected", "routes", f.Routes)
	for {
		f, err := l.read(ctx)
		if err != nil {
			return err
		}
		if f.Type != TypeRequest || f.ID == 0 {
			l.conn.Close(websocket.StatusPolicyViolation, "expected a request")
			return fmt.Errorf("server sent a frame of type %q, id %d", f.Type, f.ID)
		}
		select {
		case l.slots <- struct{}{}:
		default:
			l.send(ctx, &Frame{Type: TypeResponse, ID: f.ID, Class: string(twilio.ClassConnect),
				Error: fmt.Sprintf("listener busy: %d requests in progress", maxConcurrent)})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-l.slots }()
			l.handle(ctx, f)
		}()
	}
}

func (l *clientConn) read(ctx context.Context) (*Frame, error) {
	typ, data, err := l.conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	var f Frame
	if typ != websocket.MessageText || json.Unmarshal(data, &f) != nil {
		l.conn.Close(websocket.StatusPolicyViolation, "malformed frame")
		return nil, errors.New("server sent a malformed frame")
	}
	return &f, nil
}

func (l *clientConn) send(ctx context.Context, f *Frame) {
	data, err := json.Marshal(f)
	if err != nil {
		return
	}
	if len(data) > MaxFrameBytes {
		// The server would close the connection on it, and be sent the
		// same answer again on the next: an app's failure instead.
		data, err = json.Marshal(&Frame{Type: TypeResponse, ID: f.ID, Class: string(twilio.ClassProtocol), LatencyMS: f.LatencyMS,
			Error: fmt.Sprintf("the app's answer (status %d) is over %d bytes with its headers", f.Status, MaxFrameBytes)})
		if err != nil {
			return
		}
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	// A failed write closes the connection; serve's read then returns.
	_ = l.conn.Write(wctx, websocket.MessageText, data)
}

// handle makes request f to the app and sends back its answer.
func (l *clientConn) handle(ctx context.Context, f *Frame) {
	ans := l.makeRequest(ctx, f)
	l.send(ctx, ans)
	if l.c.OnEvent != nil {
		l.c.OnEvent(Delivery{At: time.Now(), EventID: f.EventID, Route: f.Route, Kind: f.Kind, SID: f.SID,
			Attempt: f.Attempt, Live: f.Live, Status: ans.Status, Error: ans.Error,
			Latency: time.Duration(ans.LatencyMS) * time.Millisecond})
	}
}

// makeRequest makes request f to the app and returns the response frame.
//
// Only URLs of ForwardTo's origin are fetched: whoever can send this
// listener requests (the server, or anyone holding its admin token) must
// not be able to make this machine fetch arbitrary URLs on its network.
// The check fails closed: a URL that does not parse, or whose scheme,
// host or port differ, is answered with a protocol error and not fetched.
func (l *clientConn) makeRequest(ctx context.Context, f *Frame) *Frame {
	ans := &Frame{Type: TypeResponse, ID: f.ID}
	if o, err := originOf(f.URL); err != nil || o != l.origin {
		ans.Error, ans.Class = fmt.Sprintf("refused: %q is not on the forward-to origin %s", f.URL, l.origin), string(twilio.ClassProtocol)
		return ans
	}
	req, err := http.NewRequestWithContext(ctx, f.Method, f.URL, bytes.NewReader(f.Body))
	if err != nil {
		ans.Error, ans.Class = "build request: "+err.Error(), string(twilio.ClassProtocol)
		return ans
	}
	if len(f.Body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range f.Header {
		req.Header[k] = v
	}
	start := time.Now()
	resp, err := l.hc.Do(req)
	if err == nil {
		defer resp.Body.Close()
		ans.Body, err = io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes))
		ans.Status, ans.Header = resp.StatusCode, resp.Header
	}
	ans.LatencyMS = time.Since(start).Milliseconds()
	if err != nil {
		ans.Status, ans.Header, ans.Body = 0, nil, nil
		ans.Error, ans.Class = err.Error(), string(twilio.ClassifyError(err))
	}
	return ans
}

// originOf is rawURL's scheme, host and port, the port made explicit, in
// lower case; an error when rawURL is not an absolute http(s) URL.
func originOf(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Hostname() == "" || u.User != nil {
		return "", fmt.Errorf("%q is not an http(s) URL with a host", rawURL)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port), nil
}
