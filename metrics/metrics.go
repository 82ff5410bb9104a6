// Package metrics holds portrait's Prometheus collectors, registered on a
// registry of their own so that tests can start many servers in one process.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portrait-dev/portrait/avatar"
)

// Metrics are the collectors portrait updates.
type Metrics struct {
	Registry *prometheus.Registry

	requests       *prometheus.CounterVec
	lookups        *prometheus.CounterVec
	cache          *prometheus.CounterVec
	processSeconds prometheus.Histogram
	processErrors  prometheus.Counter
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
	m.Registry.MustRegister(m.requests, m.lookups, m.cache, m.processSeconds, m.processErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Request counts one API request.
func (m *Metrics) Request(method string, code int) {
	m.requests.WithLabelValues(method, strconv.Itoa(code)).Inc()
}

// Avatar returns the hooks the avatar service reports through.
func (m *Metrics) Avatar() avatar.Metrics {
	hit, miss := m.cache.WithLabelValues("hit"), m.cache.WithLabelValues("miss")
	return avatar.Metrics{
		Lookup: func(o avatar.Outcome) { m.lookups.WithLabelValues(string(o)).Inc() },
		Cache: func(h bool) {
			if h {
				hit.Inc()
			} else {
				miss.Inc()
			}
		},
		Process: func(d time.Duration, err error) {
			if err != nil {
				m.processErrors.Inc()
				return
			}
			m.processSeconds.Observe(d.Seconds())
		},
	}
}
