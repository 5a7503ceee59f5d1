// Package metrics defines Switchboard's Prometheus metrics. Each server gets
// its own registry, so tests can run many servers in one process.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard-dev/switchboard"
)

// Metrics holds the collectors the components update.
type Metrics struct {
	Registry *prometheus.Registry

	// Requests counts webhook requests by route and outcome: accepted,
	// duplicate, rejected, or error (not stored; answered 503).
	Requests *prometheus.CounterVec
	// AckSeconds is the time from receiving a webhook to answering it.
	AckSeconds *prometheus.HistogramVec
	// CommitBatch is the number of writes (requests or attempt records)
	// stored per group commit.
	CommitBatch prometheus.Histogram
	// CommitSeconds is how long each group commit took, fsync included.
	CommitSeconds prometheus.Histogram
	// Attempts counts delivery attempts by route, result (delivered, retry,
	// dead, circuit_open) and Twilio error code ("0" on success).
	Attempts *prometheus.CounterVec
	// DeliverySeconds is the app's response time per attempt.
	DeliverySeconds *prometheus.HistogramVec
	// ProxyAnswers counts proxied webhooks by route, what Twilio got (app
	// or fallback) and the Twilio code the app's failure would have caused
	// ("0" when it answered well).
	ProxyAnswers *prometheus.CounterVec
	// ProxySeconds is the app's answer time for proxied webhooks.
	ProxySeconds *prometheus.HistogramVec
	// FallbackRequests counts requests Twilio sent to a fallback URL, by
	// route and the ErrorCode Twilio gave.
	FallbackRequests *prometheus.CounterVec
	// Unrecorded counts rejected and duplicate webhook requests, by
	// outcome, that were not recorded because their source, or all sources
	// together, were over the recording limit (they are still counted in
	// Requests, and a duplicate is still answered as one).
	Unrecorded *prometheus.CounterVec
	// OutboundStatus counts the status updates applied to outbound
	// messages (each moves a message on; repeated and out-of-order ones
	// are not counted) by pool, purpose, template (see Template), Twilio's
	// status and the update's Twilio error code ("0" for none).
	OutboundStatus *prometheus.CounterVec
	// OutboundSentSeconds is, by pool, purpose and template, the time from
	// an outbound message's creation to Twilio reporting it sent (handed to
	// the carrier), observed once per message when that status is applied.
	OutboundSentSeconds *prometheus.HistogramVec
	// OutboundDeliveredSeconds is, by pool, purpose and template, the time
	// from an outbound message being sent (accepted by Twilio: its SentAt)
	// to its delivery receipt, observed once per message when it is
	// applied.
	OutboundDeliveredSeconds *prometheus.HistogramVec
	// OutboundSends counts the outcomes of send attempts recorded for
	// outbound messages, by pool and outcome: sent (Twilio accepted it),
	// retry (queued again after a failed or ambiguous attempt) or failed
	// (refused, suppressed, or out of attempts). A send put back for
	// pacing is not an outcome.
	OutboundSends *prometheus.CounterVec
	// Outbound429s counts Twilio's 429 or 20429 answers to sends, by pool.
	Outbound429s *prometheus.CounterVec
	// RetentionPruned counts what retention deleted, by kind (see
	// switchboard.PruneKind): requests, events, messages or sticky
	// senders, not counting the rows that went with them (attempts,
	// history, duplicates' requests).
	RetentionPruned *prometheus.CounterVec
	// RetentionErrors counts retention batches that failed, by kind.
	RetentionErrors *prometheus.CounterVec
	// RetentionLastRun is when the last retention run ended (Unix
	// seconds), and RetentionRunSeconds how long it took; a run that
	// failed for some kind counts too.
	RetentionLastRun    prometheus.Gauge
	RetentionRunSeconds prometheus.Gauge
	// PassThrough counts requests the Twilio-compatible API passed through
	// to a provider (see ObservePassThrough), by method, path class and
	// the status class of the provider's answer.
	PassThrough *prometheus.CounterVec
	// AlertsFiring is, by rule, how many of its alerts (one per key) are
	// firing, as the store held them after this process's last
	// evaluation: every replica reports the same alerts (take the max).
	AlertsFiring *prometheus.GaugeVec
	// ListenersConnected is, by name, how many listeners are connected to
	// this process (0 or 1: a new connection replaces the old).
	ListenersConnected *prometheus.GaugeVec
	// Rescued counts, by kind, the jobs taken over from a stopped process.
	Rescued *prometheus.CounterVec
	// LeaderChanges counts the changes of the leader of River's
	// maintenance this process saw, on PostgreSQL, the first leader it
	// saw included; Leader is 1 while this process is the leader (as of
	// its last beat), 0 otherwise and on SQLite.
	LeaderChanges prometheus.Counter
	Leader        prometheus.Gauge
	// DebuggerAlerts counts the Twilio Debugger alerts stored (routes of
	// kind debugger), duplicates not counted.
	DebuggerAlerts prometheus.Counter
	// OptOuts counts the opt-outs applied from recipients' keywords
	// (STOP and the like).
	OptOuts prometheus.Counter

	templates templateLabels
	paths     templateLabels
}

// MaxTemplates is how many distinct message templates one process labels
// its outbound metrics with; later ones share the label OtherTemplate.
const MaxTemplates = 100

// OtherTemplate is the template label of templates past MaxTemplates.
const OtherTemplate = "other"

// templateLabels bounds a label's values (templates, pass-through paths):
// they come from apps, and every value is a time series kept for the
// process's life.
type templateLabels struct {
	mu   sync.Mutex
	seen map[string]bool
}

// Template is the label value of an outbound message's template: the
// template itself, "" for none, or OtherTemplate once MaxTemplates others
// have been seen.
func (m *Metrics) Template(template string) string {
	if template == "" {
		return ""
	}
	return m.templates.bound(template, MaxTemplates, OtherTemplate)
}

// bound returns v while fewer than limit values have been seen, or v was
// one of them, and other after that.
func (t *templateLabels) bound(v string, limit int, other string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen[v] {
		return v
	}
	if len(t.seen) >= limit {
		return other
	}
	if t.seen == nil {
		t.seen = map[string]bool{}
	}
	t.seen[v] = true
	return v
}

// MaxPassThroughPaths is how many distinct path classes one process labels
// PassThrough with; later ones share the label OtherPath.
const MaxPassThroughPaths = 100

// OtherPath is the path label of path classes past MaxPassThroughPaths.
const OtherPath = "other"

// passThroughMethods are the methods PassThrough names; any other is
// counted as "other".
var passThroughMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// ObservePassThrough counts a request passed through to a provider: its
// method, its path class (a path with its identifiers replaced, which the
// caller makes free of SIDs, phone numbers and other values; at most
// MaxPassThroughPaths distinct ones are labelled) and the provider's
// status, 0 when no answer came (unreachable, timed out, the request
// refused midway). A nil m counts nothing.
func (m *Metrics) ObservePassThrough(method, pathClass string, status int) {
	if m == nil {
		return
	}
	if !passThroughMethods[method] {
		method = "other"
	}
	class := "error"
	if status >= 100 && status <= 599 {
		class = strconv.Itoa(status/100) + "xx"
	}
	m.PassThrough.WithLabelValues(method, m.paths.bound(pathClass, MaxPassThroughPaths, OtherPath), class).Inc()
}

// New registers Switchboard's collectors, plus Go and process collectors, in
// a fresh registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_requests_total", Help: "Webhook requests by route and outcome.",
		}, []string{"route", "outcome"}),
		AckSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_ack_seconds", Help: "Time from receiving a webhook to answering Twilio.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		CommitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "switchboard_commit_batch_size", Help: "Writes (requests or attempt records) stored per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		CommitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "switchboard_commit_seconds", Help: "Time each group commit took, fsync included.",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1},
		}),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_attempts_total", Help: "Delivery attempts by route, result and Twilio error code.",
		}, []string{"route", "result", "code"}),
		DeliverySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_delivery_seconds", Help: "App response time per delivery attempt.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	m.ProxyAnswers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_proxy_answers_total", Help: "Proxied webhooks by route, answer (app or fallback) and the Twilio code of the app's failure.",
	}, []string{"route", "answer", "code"})
	m.ProxySeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "switchboard_proxy_app_seconds", Help: "The app's answer time for proxied webhooks.",
		Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2, 3, 5, 10},
	}, []string{"route"})
	m.FallbackRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_fallback_requests_total", Help: "Requests Twilio sent to a fallback URL, by route and Twilio's ErrorCode.",
	}, []string{"route", "error_code"})
	m.Unrecorded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_unrecorded_total", Help: "Rejected or duplicate webhook requests not recorded, by outcome: over the recording limit.",
	}, []string{"outcome"})
	m.OutboundStatus = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_outbound_status_total", Help: "Status updates applied to outbound messages, by pool, purpose, template, Twilio status and Twilio error code.",
	}, []string{"pool", "purpose", "template", "status", "code"})
	// From seconds (an idle pool) to hours (a backlog, a slow carrier).
	latency := []float64{.1, .25, .5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600}
	m.OutboundSentSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "switchboard_outbound_sent_seconds", Help: "Time from an outbound message's creation to Twilio reporting it sent, by pool, purpose and template.",
		Buckets: latency,
	}, []string{"pool", "purpose", "template"})
	m.OutboundDeliveredSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "switchboard_outbound_delivered_seconds", Help: "Time from an outbound message being accepted by Twilio to its delivery receipt, by pool, purpose and template.",
		Buckets: latency,
	}, []string{"pool", "purpose", "template"})
	m.OutboundSends = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_outbound_sends_total", Help: "Send attempt outcomes of outbound messages, by pool and outcome (sent, retry, failed).",
	}, []string{"pool", "outcome"})
	m.Outbound429s = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_outbound_429_total", Help: "Twilio's 429 or 20429 answers to sends, by pool.",
	}, []string{"pool"})
	m.RetentionPruned = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_retention_pruned_total", Help: "Items deleted by retention, by kind (rejected, delivered, dead, messages, sticky_senders).",
	}, []string{"kind"})
	m.RetentionErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_retention_errors_total", Help: "Retention batches that failed, by kind.",
	}, []string{"kind"})
	m.RetentionLastRun = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchboard_retention_last_run_timestamp_seconds", Help: "When the last retention run ended, in Unix seconds; 0 before the first.",
	})
	m.RetentionRunSeconds = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchboard_retention_last_run_seconds", Help: "How long the last retention run took.",
	})
	reg.MustRegister(m.Requests, m.AckSeconds, m.CommitBatch, m.CommitSeconds, m.Attempts, m.DeliverySeconds,
		m.ProxyAnswers, m.ProxySeconds, m.FallbackRequests, m.OutboundStatus, m.OutboundSentSeconds, m.OutboundDeliveredSeconds,
		m.OutboundSends, m.Outbound429s, m.Unrecorded)
	m.PassThrough = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_passthrough_requests_total",
		Help: "Requests of the Twilio-compatible API passed through to a provider, by method, path class and status class (2xx..5xx, or error when none came).",
	}, []string{"method", "path", "status"})
	m.OptOuts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_opt_outs_total", Help: "Opt-outs applied from recipients' keywords (STOP and the like).",
	})
	reg.MustRegister(m.RetentionPruned, m.RetentionErrors, m.RetentionLastRun, m.RetentionRunSeconds, m.PassThrough, m.OptOuts)
	m.AlertsFiring = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "switchboard_alerts_firing", Help: "Alerts firing, by rule, as the store held them after the last evaluation.",
	}, []string{"rule"})
	m.DebuggerAlerts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_debugger_alerts_total", Help: "Twilio Debugger alerts stored (duplicates not counted).",
	})
	reg.MustRegister(m.AlertsFiring, m.DebuggerAlerts)
	m.ListenersConnected = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "switchboard_listeners_connected", Help: "Listeners (switchboard listen) connected to this process, by name.",
	}, []string{"listener"})
	reg.MustRegister(m.ListenersConnected)
	m.Rescued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_rescued_total", Help: "Jobs this process took over from a process that stopped while running them, by kind (delivery, send).",
	}, []string{"kind"})
	m.LeaderChanges = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_leader_changes_total", Help: "Changes of the leader of River's maintenance this process saw (PostgreSQL), the first leader it saw included.",
	})
	m.Leader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchboard_leader", Help: "1 while this process leads River's maintenance (PostgreSQL), as of its last beat; 0 otherwise.",
	})
	reg.MustRegister(m.Rescued, m.LeaderChanges, m.Leader)
	return m
}

// RescuedSoFar returns, by kind, how many jobs this process has taken
// over from stopped processes (Rescued) since it started; kinds it has
// not rescued any of are absent.
func (m *Metrics) RescuedSoFar() map[string]int64 {
	ch := make(chan prometheus.Metric)
	go func() {
		m.Rescued.Collect(ch)
		close(ch)
	}()
	out := map[string]int64{}
	for c := range ch {
		var d dto.Metric
		if c.Write(&d) != nil {
			continue
		}
		for _, l := range d.GetLabel() {
			if l.GetName() == "kind" {
				out[l.GetValue()] = int64(d.GetCounter().GetValue())
			}
		}
	}
	return out
}

// StatsStore is what WatchStore needs of switchboard.Store.
type StatsStore interface {
	Stats(ctx context.Context) (*switchboard.Stats, error)
}

// WatchStore adds gauges read from the store at each scrape: events by
// state, queue depth and queue lag, and the outbound queue depth of each
// pool (pools, reported as 0 when empty, and any other pool with messages
// waiting).
func (m *Metrics) WatchStore(store StatsStore, logger *slog.Logger, pools ...string) {
	m.Registry.MustRegister(&storeCollector{store: store, logger: logger, pools: pools})
}

// Handler serves the registry in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

var (
	eventsDesc   = prometheus.NewDesc("switchboard_events", "Events by delivery state.", []string{"state"}, nil)
	depthDesc    = prometheus.NewDesc("switchboard_queue_depth", "Events waiting for delivery (pending or retrying).", nil, nil)
	lagDesc      = prometheus.NewDesc("switchboard_queue_lag_seconds", "Age of the oldest delivery that is due and not yet made.", nil, nil)
	outDepthDesc = prometheus.NewDesc("switchboard_outbound_queue_depth", "Outbound messages waiting to be sent or being sent, by pool.", []string{"pool"}, nil)
)

type storeCollector struct {
	store  StatsStore
	logger *slog.Logger
	pools  []string
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- eventsDesc
	ch <- depthDesc
	ch <- lagDesc
	ch <- outDepthDesc
}

// Collect reads the store. A store that does not answer in time leaves the
// gauges out of this scrape rather than reporting stale or zero values.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.store.Stats(ctx)
	if err != nil {
		c.logger.Warn("metrics: read store stats", "err", err)
		return
	}
	for _, s := range switchboard.States {
		ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.GaugeValue, float64(st.EventsByState[s]), string(s))
	}
	depth := st.EventsByState[switchboard.StatePending] + st.EventsByState[switchboard.StateRetrying]
	ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(depth))
	lag := 0.0
	if !st.OldestDue.IsZero() {
		lag = max(time.Since(st.OldestDue).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag)
	seen := map[string]bool{}
	for _, p := range c.pools {
		if !seen[p] {
			seen[p] = true
			ch <- prometheus.MustNewConstMetric(outDepthDesc, prometheus.GaugeValue, float64(st.OutboundQueued[p]), p)
		}
	}
	for p, n := range st.OutboundQueued {
		if !seen[p] { // a pool no longer configured, with messages left
			ch <- prometheus.MustNewConstMetric(outDepthDesc, prometheus.GaugeValue, float64(n), p)
		}
	}
}
