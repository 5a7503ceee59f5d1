// Package ingest receives Twilio's webhooks: it verifies the signature,
// stores the request durably (group commit) and only then answers Twilio.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/outbound"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Route is one webhook path as intake sees it.
type Route struct {
	Path       string
	AccountSID string
	Tokens     []string         // every token accepted (rotation)
	Kind       switchboard.Kind // forced kind; empty classifies each request
	Mode       Mode             // default ModeAck
	// TwiML is the answer to messages and voice in ack mode, the fallback
	// in proxy mode, and the answer to every request in static mode.
	TwiML []byte
	// Budget bounds the wait for the app's answer in proxy mode; zero means
	// DefaultVoiceBudget for calls and DefaultBudget for the rest.
	Budget time.Duration
}

// Mode is how a route answers Twilio.
type Mode string

// Route modes.
const (
	// ModeAck answers at once: an empty 200 for callbacks, the route's
	// TwiML for messages and calls; the app gets the event asynchronously.
	ModeAck Mode = "ack"
	// ModeProxy forwards the stored request at once and passes the app's
	// answer to Twilio when Twilio would accept it, the route's TwiML
	// otherwise.
	ModeProxy Mode = "proxy"
	// ModeStatic answers the route's TwiML to every request: a canary that
	// depends on no app.
	ModeStatic Mode = "static"
)

// Proxy budgets when a route sets none.
const (
	DefaultVoiceBudget = 3 * time.Second
	DefaultBudget      = 5 * time.Second
	// safetyNet is how long after a proxy's budget a stored event's first
	// asynchronous delivery is due, in case the process dies before the
	// proxy's outcome is recorded. Recording it makes that job stale.
	safetyNet = 30 * time.Second
)

// Proxier forwards a stored webhook to the app and judges its answer;
// *deliver.Deliverer is one.
type Proxier interface {
	Proxy(ctx context.Context, ev *switchboard.Event, req *switchboard.Request, budget time.Duration, x twilio.Expectation) *deliver.Live
}

// Store is what intake needs of switchboard.Store: storing webhooks and
// their outcomes, reading back status callbacks and their messages, and
// what the outbound.Service it builds when Options.Messages is nil needs.
type Store interface {
	Ingest(ctx context.Context, items []*switchboard.Ingest) error
	IngestFanout(ctx context.Context, events []*switchboard.Event) error
	RecordAttempts(ctx context.Context, results []*switchboard.AttemptResult) error
	ListEvents(ctx context.Context, f switchboard.EventFilter) (*switchboard.Page[*switchboard.Event], error)
	Request(ctx context.Context, id string) (*switchboard.Request, error)
	MessageBySID(ctx context.Context, accountSID, sid string) (*switchboard.OutboundMessage, error)
	MessageHistory(ctx context.Context, messageID string) ([]switchboard.StatusChange, error)
	outbound.ServiceStore
}

// Messages applies what Twilio's webhooks say of outbound messages (see
// outbound.go); *outbound.Service is one.
type Messages interface {
	ApplyStatus(ctx context.Context, u switchboard.StatusUpdate) (*switchboard.OutboundMessage, error)
	ApplyKeyword(ctx context.Context, account, number string, action twilio.OptAction, at time.Time) error
}

// Options configure a Handler.
type Options struct {
	Store  Store
	Routes []Route
	// PublicURL is the scheme, host and optional path prefix Twilio uses;
	// the signed URL is PublicURL + the request's raw path and query.
	PublicURL string
	// TrustForwarded builds the public URL from X-Forwarded-Proto and
	// X-Forwarded-Host when PublicURL is empty.
	TrustForwarded bool
	MaxBodyBytes   int64
	// MaxBodyMemory bounds the body bytes of all webhooks held in memory
	// at once; a request that cannot reserve its share within BodyWait is
	// answered 503. Zero means DefaultMaxBodyMemory.
	MaxBodyMemory int64
	// BodyWait is how long a request waits for its share of
	// MaxBodyMemory; zero means DefaultBodyWait.
	BodyWait time.Duration
	// BodyReadTimeout bounds the reading of one body; zero means
	// DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	// RecordPerSecond and RecordPerSource bound how many rejected
	// requests, and separately how many duplicates, are recorded per
	// second, in all and from one source address; the rest are only
	// counted. Zero means DefaultRecordPerSecond and
	// DefaultRecordPerSource.
	RecordPerSecond float64
	RecordPerSource float64
	// AckTimeout bounds the wait for storage; past it the answer is 503.
	AckTimeout time.Duration
	Metrics    *metrics.Metrics
	Logger     *slog.Logger
	Now        func() time.Time
	// Proxy serves proxy-mode routes; required when a route has that mode.
	Proxy Proxier
	// Outbound, when true, makes intake act for outbound messages on what
	// it stores, after answering: a message status callback updates the
	// outbound message with that Twilio SID, and an inbound opt-out or
	// opt-in keyword suppresses or unsuppresses its sender (see
	// outbound.go). Off, intake does neither.
	Outbound bool
	// Messages applies those; nil means an outbound.Service over Store
	// counting in Metrics.
	Messages Messages
	// StatusRetry is how long, in summed backoff, a status callback whose
	// MessageSid is not stored yet keeps being retried (Twilio can call
	// back before the send path has recorded the SID from its answer).
	// Zero means DefaultStatusRetry; negative means no retry.
	StatusRetry time.Duration
	// After waits between those retries; default time.After. Tests
	// replace it to run the retries without waiting.
	After func(time.Duration) <-chan time.Time
	// StatusWebhookLookup bounds the look-up, before a status callback is
	// stored, of the outbound message it is about, whose status webhook
	// gets the callback too (with Outbound; see outbound.go). It adds to
	// the callback's answer time, on top of AckTimeout. Zero means
	// DefaultStatusWebhookLookup.
	StatusWebhookLookup time.Duration
	// Samples, when set, gathers per minute what the dashboard learns
	// only from the process: each answer's time and the webhooks not
	// recorded (see package rollup).
	Samples Samples
}

// Samples is what intake tells the dashboard's samples (rollup.Sampler).
type Samples interface {
	// ObserveAck counts a webhook answered at at, took after it arrived.
	ObserveAck(at time.Time, took time.Duration)
	// Unrecorded counts a duplicate or rejected webhook not recorded.
	Unrecorded(at time.Time, outcome switchboard.Outcome)
}

// noSamples gathers nothing.
type noSamples struct{}

func (noSamples) ObserveAck(time.Time, time.Duration)       {}
func (noSamples) Unrecorded(time.Time, switchboard.Outcome) {}

// Handler is the webhook endpoint for every configured route.
type Handler struct {
	routes    map[string]Route
	publicURL string
	trustFwd  bool
	maxBody   int64
	bodies    *bodyBudget
	bodyRead  time.Duration
	ackWait   time.Duration
	store     Store
	messages  Messages
	metrics   *metrics.Metrics
	samples   Samples
	logger    *slog.Logger
	now       func() time.Time
	proxy     Proxier
	recording sync.WaitGroup // proxy outcomes and outbound follow-ups under way
	outbound  bool
	retryFor  time.Duration
	after     func(time.Duration) <-chan time.Time
	lookup    time.Duration // bounds the status webhook look-up
	// rejections and duplicates limit the rejected requests and the
	// duplicates recorded; rejectLog summarises rejections not recorded.
	rejections *recordLimiter
	duplicates *recordLimiter
	rejectLog  summaryLog
	// giveUp, once closed, ends every status callback retry at its next
	// wait (WaitContext).
	giveUp     chan struct{}
	giveUpOnce sync.Once
}

// Wait waits until the outcomes of proxied webhooks already answered are
// recorded, and their outbound follow-ups (Options.Outbound) applied,
// retries of status callbacks included. Call it after the HTTP server has
// stopped, before closing the store.
func (h *Handler) Wait() { _ = h.WaitContext(context.Background()) }

// WaitContext is Wait bounded by ctx: when ctx is done first, status
// callbacks still retrying for an unknown MessageSid stop at once (their
// messages keep the status they had; see applyStatus), and it returns
// ctx's error once the follow-ups under way have ended, each within the
// store's own bound (Options.AckTimeout). It returns nil when everything
// finished before ctx was done.
func (h *Handler) WaitContext(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		h.recording.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.giveUpOnce.Do(func() { close(h.giveUp) })
	<-done
	return fmt.Errorf("wait for intake's follow-ups: %w", ctx.Err())
}

// New returns a Handler storing into o.Store, whose group commit lets
// concurrent requests share transactions.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StatusRetry == 0 {
		o.StatusRetry = DefaultStatusRetry
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.StatusWebhookLookup <= 0 {
		o.StatusWebhookLookup = DefaultStatusWebhookLookup
	}
	if o.MaxBodyMemory <= 0 {
		o.MaxBodyMemory = DefaultMaxBodyMemory
	}
	if o.BodyWait <= 0 {
		o.BodyWait = DefaultBodyWait
	}
	if o.BodyReadTimeout <= 0 {
		o.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if o.RecordPerSecond <= 0 {
		o.RecordPerSecond = DefaultRecordPerSecond
	}
	if o.RecordPerSource <= 0 {
		o.RecordPerSource = DefaultRecordPerSource
	}
	if o.Messages == nil {
		o.Messages = outbound.NewService(o.Store, outbound.ServiceOptions{Metrics: o.Metrics})
	}
	if o.Samples == nil {
		o.Samples = noSamples{}
	}
	h := &Handler{
		routes:    map[string]Route{},
		publicURL: strings.TrimSuffix(o.PublicURL, "/"),
		trustFwd:  o.TrustForwarded,
		maxBody:   o.MaxBodyBytes,
		bodies:    newBodyBudget(max(o.MaxBodyMemory, o.MaxBodyBytes), o.BodyWait),
		bodyRead:  o.BodyReadTimeout,
		ackWait:   o.AckTimeout,
		store:     o.Store,
		messages:  o.Messages,
		metrics:   o.Metrics,
		samples:   o.Samples,
		logger:    o.Logger,
		now:       o.Now,
		proxy:     o.Proxy,
		outbound:  o.Outbound,
		retryFor:  max(o.StatusRetry, 0),
		after:     o.After,
		lookup:    o.StatusWebhookLookup,
		giveUp:    make(chan struct{}),

		rejections: newRecordLimiter(o.RecordPerSecond, o.RecordPerSource),
		duplicates: newRecordLimiter(o.RecordPerSecond, o.RecordPerSource),
		rejectLog:  summaryLog{interval: time.Second},
	}
	for _, r := range o.Routes {
		if r.Mode == "" || (r.Kind == switchboard.KindDebugger && r.Mode == ModeProxy) {
			r.Mode = ModeAck // a Debugger webhook's answer is always an empty 200
		}
		h.routes[r.Path] = r
	}
	return h
}

// rejection is a request refused before it became an event. Its reason is
// recorded with the request and is safe to show the caller.
type rejection struct {
	status int
	reason string
}

func (r *rejection) Error() string { return r.reason }

func reject(status int, format string, a ...any) error {
	return &rejection{status: status, reason: fmt.Sprintf(format, a...)}
}

// ServeHTTP is the one place that turns the outcome of a webhook into an
// HTTP answer, a metric and a log line.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	route, known := h.routes[r.URL.Path]
	label := route.Path
	if !known {
		label = "unknown"
	}
	item, form, release, err := h.receive(w, r, route, known, start)
	defer release() // the body's memory, once the answer is written

	var rej *rejection
	switch {
	case err == nil:
		var record func()
		if route.Mode == ModeProxy && !item.Duplicate {
			record = h.proxyAnswer(r.Context(), route, item)
		}
		var follow func()
		if h.outbound && !item.Duplicate {
			follow = h.outboundFollowUp(r.Context(), item, form)
		}
		writeResponse(w, item.Event.Response)
		if record != nil {
			// The outcome is recorded after the answer, off its path, and
			// outside the handler, which would otherwise hold Twilio's
			// keep-alive connection until the commit. Wait waits for it.
			h.recording.Go(record)
		}
		if follow != nil {
			h.recording.Go(follow) // likewise
		}
		h.metrics.Requests.WithLabelValues(label, string(item.Request.Outcome)).Inc()
		if item.Debugger != nil && !item.Duplicate {
			h.metrics.DebuggerAlerts.Inc()
		}
		// Debug only, and duplicates too: replays of one captured request
		// must not flood the log (they are counted in
		// switchboard_requests_total{outcome="duplicate"}). The check
		// first: formatting the attributes costs more than the rest of
		// the answer.
		if h.logger.Enabled(r.Context(), slog.LevelDebug) {
			ev := item.Event
			msg := "webhook stored"
			if item.Duplicate {
				msg = "duplicate webhook answered with the original response"
			}
			h.logger.Debug(msg, "request", item.Request.ID, "event", ev.ID, "route", ev.Route, "kind", ev.Kind,
				"message_sid", ev.MessageSID, "call_sid", ev.CallSID)
		}
	case errors.As(err, &rej):
		if rej.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "GET, POST")
		}
		http.Error(w, rej.reason, rej.status)
		h.metrics.Requests.WithLabelValues(label, string(switchboard.OutcomeRejected)).Inc()
		// Logged when recorded (recordRejection): a flood of forged
		// requests must not become a flood of log lines either.
	case errors.Is(err, errBusy):
		w.Header().Set("Retry-After", "1")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		h.metrics.Requests.WithLabelValues(label, "busy").Inc()
		h.rejectLog.note(h.now(), func(n int) {
			h.logger.Warn("webhooks answered 503: body memory budget exhausted", "count", n, "route", label)
		})
	default:
		// Not stored, so not acknowledged: a 503 makes Twilio retry or use
		// its fallback URL rather than believe the request was taken.
		w.Header().Set("Retry-After", "1")
		http.Error(w, "temporarily unable to store the request", http.StatusServiceUnavailable)
		h.metrics.Requests.WithLabelValues(label, "error").Inc()
		h.logger.Error("webhook not stored; answered 503", "route", label, "err", err)
	}
	end := h.now()
	h.metrics.AckSeconds.WithLabelValues(label).Observe(end.Sub(start).Seconds())
	h.samples.ObserveAck(end, end.Sub(start))
}

// writeResponse writes an answer with its length, so that the client has
// all of it as soon as it is flushed.
func writeResponse(w http.ResponseWriter, resp switchboard.Response) {
	if resp.ContentType != "" {
		w.Header().Set("Content-Type", resp.ContentType)
	} else {
		w.Header()["Content-Type"] = nil // what the app sent: none, not a sniffed guess
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

// receive checks, stores and classifies one request, and returns it with
// its parameters (nil for a JSON body) and the function that gives back
// its body's memory (never nil). A rejected request is recorded before its
// rejection is returned.
func (h *Handler) receive(w http.ResponseWriter, r *http.Request, route Route, known bool, start time.Time) (*switchboard.Ingest, url.Values, func(), error) {
	req := switchboard.Request{
		ID:         newID(),
		ReceivedAt: start.UTC(),
		Route:      r.URL.Path,
		Method:     r.Method,
		URL:        h.fullURL(r),
		Header:     r.Header.Clone(),
		RemoteAddr: r.RemoteAddr,
	}
	release := func() {}
	item, form, err := h.check(w, r, route, known, &req, &release)
	if err != nil {
		var rej *rejection
		if errors.As(err, &rej) {
			h.recordRejection(r.Context(), req, rej.reason, rej.status)
		}
		return nil, nil, release, err
	}
	if h.outbound {
		// Before storing, so that the callback's copy for the message's
		// status webhook is committed with it.
		h.addStatusWebhook(r.Context(), item)
	}
	// A duplicate is answered as one whatever, but recorded only within
	// the recording limits: replays of one captured request cannot fill
	// the disk.
	item.RecordDuplicate = func() bool {
		now := h.now()
		if h.duplicates.allow(req.RemoteAddr, now) {
			return true
		}
		h.metrics.Unrecorded.WithLabelValues(string(switchboard.OutcomeDuplicate)).Inc()
		h.samples.Unrecorded(now, switchboard.OutcomeDuplicate)
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.ackWait)
	defer cancel()
	if err := h.store.Ingest(ctx, []*switchboard.Ingest{item}); err != nil {
		return nil, nil, release, fmt.Errorf("store request %s: %w", req.ID, err)
	}
	return item, form, release, nil
}

// check validates the request and builds its event; it fills req.Body,
// sets *release to give back the body's memory, and returns the parameters
// it classified the request by.
func (h *Handler) check(w http.ResponseWriter, r *http.Request, route Route, known bool, req *switchboard.Request, release *func()) (*switchboard.Ingest, url.Values, error) {
	if strings.Contains(r.RequestURI, "#") {
		// Twilio never sends a fragment and never signs one: a request
		// target carrying one was made by someone else, and the fragment
		// must not reach the stored URL, the key or the app.
		return nil, nil, reject(http.StatusBadRequest, "request target carries a fragment, which Twilio never sends")
	}
	if !known {
		return nil, nil, reject(http.StatusNotFound, "no route for path %q", excerpt(r.URL.Path))
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return nil, nil, reject(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
	body, giveBack, err := h.readBody(w, r)
	*release = giveBack
	if err != nil {
		return nil, nil, err
	}
	req.Body = body

	contentType := r.Header.Get("Content-Type")
	mediaType, _, _ := mime.ParseMediaType(contentType)
	// Only what the signature covered is accepted (twilio.Verify): a GET
	// with a body, or a body that is neither a form nor hashed in the URL,
	// is refused, since delivery signs what it forwards again and would
	// otherwise vouch for content Twilio never signed. The form parsed for
	// the signature is the one classified below: a body is parsed once.
	verified, err := twilio.Verify(route.Tokens, twilio.Request{Method: r.Method, URL: req.URL, ContentType: contentType, Body: body},
		r.Header.Get("X-Twilio-Signature"))
	switch {
	case errors.Is(err, twilio.ErrMalformedForm):
		return nil, nil, reject(http.StatusBadRequest, "%v", err)
	case errors.Is(err, twilio.ErrUnsignedContent):
		return nil, nil, reject(http.StatusForbidden, "refused: %v", err)
	case err != nil:
		return nil, nil, reject(http.StatusForbidden, "signature check failed: %v", err)
	}

	form := verified.Form
	var jsonBody []byte
	switch {
	case r.Method == http.MethodGet:
		if form, err = twilio.ParseForm([]byte(r.URL.RawQuery)); err != nil {
			return nil, nil, reject(http.StatusBadRequest, "query: %v", err)
		}
	case mediaType == "application/json":
		jsonBody = body
	}
	kind, fields := twilio.Classify(mediaType, form, jsonBody)
	eventSID := fields.MessageSID
	if sid, ok := switchboard.SIDOfCallbackURL(req.URL); ok && kind == switchboard.KindMessageStatus {
		// A callback of a message sent through Switchboard names it, in
		// its signed URL, by the SID its app knows it by: the event
		// carries that one (see switchboard.SIDParam). The body keeps
		// Twilio's, which status updates go by.
		eventSID = sid
	}
	if fields.AccountSID != "" && fields.AccountSID != route.AccountSID {
		// The account is the one whose token verified the signature. A
		// body naming another must not act on that account's data (its
		// opt-outs, its messages' statuses): refused, fail closed.
		return nil, nil, reject(http.StatusForbidden, "request names account %s but was signed with the token of route %s's account %s",
			excerpt(fields.AccountSID), route.Path, route.AccountSID)
	}
	fields.AccountSID = route.AccountSID
	if kind == switchboard.KindFallback {
		// Counted as Twilio sent it, whatever kind the route forces.
		h.metrics.FallbackRequests.WithLabelValues(route.Path, form.Get("ErrorCode")).Inc()
	}
	// Keyed by the kind Twilio's parameters give, not the one a route
	// forces: a forced kind must not merge distinct requests.
	key := twilio.Webhook{Account: route.AccountSID, Route: route.Path, Kind: kind, Fields: fields, Form: form,
		JSONBody: jsonBody, Digest: verified.Digest}.IdempotencyKey()
	if route.Kind != "" {
		kind = route.Kind
	}

	var alert *switchboard.DebuggerAlert
	if kind == switchboard.KindDebugger {
		if alert, err = debuggerAlert(r, mediaType, form, route); err != nil {
			return nil, nil, err
		}
		// Twilio gives every Debugger event its own Sid and sends it
		// again with that Sid: it alone names it.
		key = twilio.DebuggerKey(route.AccountSID, alert.Sid)
		eventSID, fields.CallSID = resourceSIDs(alert.ResourceSID)
	}

	response := ackResponse(kind, route.TwiML)
	var firstDelivery time.Time
	switch route.Mode {
	case ModeStatic:
		response = switchboard.Response{Status: http.StatusOK, ContentType: "application/xml", Body: route.TwiML}
	case ModeProxy:
		// Until the proxy's outcome replaces it, a duplicate gets the
		// fallback, and the first delivery waits out the proxy.
		response = fallbackResponse(kind, route.TwiML)
		firstDelivery = req.ReceivedAt.Add(budget(route, kind) + safetyNet)
	}

	if alert != nil {
		// Twilio reads nothing of the answer: an empty 200, whatever the
		// route's mode (configuration refuses proxy).
		response, firstDelivery = switchboard.Response{Status: http.StatusOK}, time.Time{}
	}

	req.Outcome = switchboard.OutcomeAccepted
	return &switchboard.Ingest{
		Debugger: alert,
		Request:  *req,
		Event: &switchboard.Event{
			ID:             newID(),
			RequestID:      req.ID,
			Route:          route.Path,
			AccountSID:     fields.AccountSID,
			Kind:           kind,
			MessageSID:     eventSID,
			CallSID:        fields.CallSID,
			From:           number(form.Get("From")),
			To:             number(form.Get("To")),
			IdempotencyKey: key,
			Response:       response,
			State:          switchboard.StatePending,
			CreatedAt:      req.ReceivedAt,
			NextAttemptAt:  firstDelivery,
		},
	}, form, nil
}

// maxNumberBytes bounds the From and To an event keeps: a phone number
// in E.164 is at most 16 bytes, and a client or WhatsApp address a few
// more.
const maxNumberBytes = 64

// number is a webhook's From or To as its event keeps it, to be found by:
// empty when it is longer than maxNumberBytes, or not text (a NUL, bytes
// that are not UTF-8), which no search can name and PostgreSQL would not
// store.
func number(v string) string {
	if len(v) > maxNumberBytes || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return ""
	}
	return v
}

// ackResponse is what Twilio gets in ack mode: an empty 200 for callbacks
// whose body Twilio ignores, the route's TwiML for everything that may be
// read as instructions.
func ackResponse(kind switchboard.Kind, twiml []byte) switchboard.Response {
	if kind.IsStatus() || kind == switchboard.KindClientNotification {
		return switchboard.Response{Status: http.StatusOK}
	}
	return switchboard.Response{Status: http.StatusOK, ContentType: "application/xml", Body: twiml}
}

// fullURL is the URL Twilio called: the public base and the raw request
// target exactly as received, since re-encoding would change the signature.
func (h *Handler) fullURL(r *http.Request) string {
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		target = r.URL.RequestURI()
	}
	if h.publicURL != "" {
		return h.publicURL + target
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if h.trustFwd {
		if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
			scheme = p
		}
		if fh := firstValue(r.Header.Get("X-Forwarded-Host")); fh != "" {
			host = fh
		}
	}
	return scheme + "://" + host + target
}

func firstValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
