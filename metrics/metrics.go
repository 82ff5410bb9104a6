// Package metrics holds portrait's Prometheus collectors, registered on a
// registry of their own so that tests can start many servers in one process.
package metrics

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portrait-dev/portrait"
)

// Metrics are the collectors portrait updates.
type Metrics struct {
	Registry *prometheus.Registry

	requests       *prometheus.CounterVec
	lookups        *prometheus.CounterVec
	cache          *prometheus.CounterVec
	cacheHit       prometheus.Counter
	cacheMiss      prometheus.Counter
	processSeconds prometheus.Histogram
	processErrors  prometheus.Counter

	requestCounters sync.Map // requestKey → prometheus.Counter

	enqueued        *prometheus.CounterVec
	dropped         *prometheus.CounterVec
	refusedConns    prometheus.Counter
	deliveries      *prometheus.CounterVec
	attemptSeconds  *prometheus.HistogramVec
	deliverySeconds prometheus.Histogram
}

// New creates and registers the collectors, with the Go runtime and process
// collectors beside them.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portrait_http_requests_total",
			Help: "API requests by GREEN-API method (or route) and HTTP status code.",
		}, []string{"method", "code"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portrait_avatar_lookups_total",
			Help: "Avatar lookups that reached the engine, by outcome.",
		}, []string{"outcome"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portrait_avatar_cache_requests_total",
			Help: "Avatar lookups by cache result (hit or miss).",
		}, []string{"result"}),
		processSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "portrait_picture_process_seconds",
			Help:    "Time to normalise one picture (decode, orient, crop, scale, encode).",
			Buckets: []float64{.005, .01, .025, .05, .1, .2, .35, .5, .75, 1, 2, 5},
		}),
		processErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "portrait_picture_process_errors_total",
			Help: "Pictures the pipeline rejected (empty, unsupported, too many pixels).",
		}),
	}
	m.enqueued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portrait_notifications_enqueued_total",
		Help: "Notifications committed to the queues, by typeWebhook.",
	}, []string{"type"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portrait_webhook_deliveries_total",
		Help: "Webhook delivery attempts by outcome: delivered (HTTP 200), failed (retried later), dropped (older than the retention window).",
	}, []string{"outcome"})
	m.attemptSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "portrait_webhook_attempt_seconds",
		Help:    "Duration of one webhook request, by outcome (delivered or failed).",
		Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 15, 30, 60},
	}, []string{"outcome"})
	m.deliverySeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "portrait_notification_delivery_seconds",
		Help:    "Time from a notification's commit to its delivery to the webhook.",
		Buckets: []float64{.005, .01, .05, .1, .5, 1, 5, 30, 60, 300, 3600, 86400},
	})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portrait_notifications_dropped_total",
		Help: "Notifications dropped from the queues unread or undelivered, by reason: retention (older than --webhook-retention) or cap (past --queue-max).",
	}, []string{"reason"})
	m.refusedConns = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "portrait_connections_refused_total",
		Help: "Connections closed at once because their client address already held --max-conns-per-client.",
	})
	m.Registry.MustRegister(m.enqueued, m.deliveries, m.attemptSeconds, m.deliverySeconds, m.dropped, m.refusedConns)
	m.Registry.MustRegister(m.requests, m.lookups, m.cache, m.processSeconds, m.processErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.cacheHit, m.cacheMiss = m.cache.WithLabelValues("hit"), m.cache.WithLabelValues("miss")
	return m
}

// Handler serves the registry in the Prometheus text format; with a token,
// only to requests that carry it as "Authorization: Bearer <token>".
func (m *Metrics) Handler(token string) http.Handler {
	h := m.handler()
	if token == "" {
		return h
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(want[:], sum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="portrait metrics"`)
			http.Error(w, "401 Unauthorized: /metrics needs the metrics token (PORTRAIT_METRICS_TOKEN) as a Bearer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// handler serves the registry in the Prometheus text format.
func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

type requestKey struct {
	method string
	code   int
}

// Request counts one API request. The counter of each method and status
// is looked up once and kept: this runs on every request.
func (m *Metrics) Request(method string, code int) {
	k := requestKey{method, code}
	c, ok := m.requestCounters.Load(k)
	if !ok {
		c, _ = m.requestCounters.LoadOrStore(k, m.requests.WithLabelValues(method, strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
}

// Lookup counts an avatar lookup that reached the engine, by outcome (the
// avatar service's Metrics.Lookup).
func (m *Metrics) Lookup(outcome string) { m.lookups.WithLabelValues(outcome).Inc() }

// CacheResult counts an avatar lookup by whether the cache answered it.
func (m *Metrics) CacheResult(hit bool) {
	if hit {
		m.cacheHit.Inc()
	} else {
		m.cacheMiss.Inc()
	}
}

// Processed records one run of the picture pipeline: its time, or that it
// failed.
func (m *Metrics) Processed(d time.Duration, err error) {
	if err != nil {
		m.processErrors.Inc()
		return
	}
	m.processSeconds.Observe(d.Seconds())
}

// Enqueued counts a committed notification by its typeWebhook.
func (m *Metrics) Enqueued(typeWebhook string) { m.enqueued.WithLabelValues(typeWebhook).Inc() }

// ConnectionRefused counts a connection closed for being over the
// per-client limit.
func (m *Metrics) ConnectionRefused() { m.refusedConns.Inc() }

// Dropped counts notifications trimmed from the queues, by reason.
func (m *Metrics) Dropped(reason string, n int64) { m.dropped.WithLabelValues(reason).Add(float64(n)) }

// Delivered records one webhook delivery attempt: its outcome
// ("delivered", "failed", "dropped"), how long the attempt took and, once
// delivered, how long after its commit.
func (m *Metrics) Delivered(outcome string, attemptSeconds, sinceCommitSeconds float64) {
	m.deliveries.WithLabelValues(outcome).Inc()
	if outcome != "dropped" {
		m.attemptSeconds.WithLabelValues(outcome).Observe(attemptSeconds)
	}
	if outcome == "delivered" {
		m.deliverySeconds.Observe(sinceCommitSeconds)
	}
}

// Instances registers the gauge of instances by state, engine and type,
// read from list at scrape time.
func (m *Metrics) Instances(list func(ctx context.Context) ([]portrait.Handle, error)) {
	m.Registry.MustRegister(instanceGauge{list: list,
		desc: prometheus.NewDesc("portrait_instances",
			"Instances by state (stateInstance; \"unavailable\" when the engine cannot serve it), engine and type.",
			[]string{"state", "engine", "type"}, nil),
	})
}

type instanceGauge struct {
	list func(ctx context.Context) ([]portrait.Handle, error)
	desc *prometheus.Desc
}

func (g instanceGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g instanceGauge) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := g.list(ctx)
	if err != nil {
		return
	}
	type key struct{ state, engine, typ string }
	counts := map[key]int{}
	for _, h := range all {
		st := string(h.State())
		if h.Err() != nil {
			st = "unavailable"
		}
		counts[key{st, h.Engine(), string(h.Type())}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(n), k.state, k.engine, k.typ)
	}
}

// QueueDepth registers gauges read at scrape time, from one reading of
// depths: the notifications waiting in every queue and the instances that
// have any (both -1 when the store cannot be read).
func (m *Metrics) QueueDepth(depths func(ctx context.Context) (map[portrait.InstanceID]int64, error)) {
	m.Registry.MustRegister(queueDepth{depths: depths,
		total: prometheus.NewDesc("portrait_notification_queue_depth",
			"Notifications waiting in the queues of all instances (-1 when the store cannot be read).", nil, nil),
		nonEmpty: prometheus.NewDesc("portrait_notification_queues_nonempty",
			"Instances with at least one notification waiting.", nil, nil),
	})
}

type queueDepth struct {
	depths          func(ctx context.Context) (map[portrait.InstanceID]int64, error)
	total, nonEmpty *prometheus.Desc
}

func (q queueDepth) Describe(ch chan<- *prometheus.Desc) { ch <- q.total; ch <- q.nonEmpty }

func (q queueDepth) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	total, instances := -1.0, -1.0
	if d, err := q.depths(ctx); err == nil {
		total, instances = 0, float64(len(d))
		for _, n := range d {
			total += float64(n)
		}
	}
	ch <- prometheus.MustNewConstMetric(q.total, prometheus.GaugeValue, total)
	ch <- prometheus.MustNewConstMetric(q.nonEmpty, prometheus.GaugeValue, instances)
}
