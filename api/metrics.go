package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus series. Routes are labelled by chi's
// route pattern ("/v1/nodes/{type}/{id}"), never the raw path, so the label
// set stays bounded whatever clients send.
type metrics struct {
	requests    *prometheus.HistogramVec
	stages      *prometheus.HistogramVec
	storeReads  *prometheus.HistogramVec
	truncations *prometheus.CounterVec
	problems    *prometheus.CounterVec
	panics      prometheus.Counter
	inFlight    prometheus.Gauge
	// authFailures counts refused credentials by reason (no_key,
	// invalid_key, throttled); shed counts requests answered 503 at
	// MaxInFlight. Both are counted in full, while their log lines are
	// sampled.
	authFailures *prometheus.CounterVec
	shed         prometheus.Counter
}

// Stages a request is timed in.
const (
	stageValidation = "validation" // parsing, defaults, caps, schema checks
	stageStorage    = "storage"    // store reads (the whole traversal)
	stageTotal      = "total"      // handler start to response written
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	latency := []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rtgraph_api_request_duration_seconds",
			Help:    "HTTP request latency by route pattern, method and status code.",
			Buckets: latency,
		}, []string{"route", "method", "code"}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rtgraph_api_stage_duration_seconds",
			Help:    "Time spent per request stage (validation, storage, total) by route pattern.",
			Buckets: latency,
		}, []string{"route", "stage"}),
		storeReads: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rtgraph_api_store_reads",
			Help:    "Store calls made by one request, by route pattern.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}, []string{"route"}),
		truncations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_api_truncated_hops_total",
			Help: "Traversal hops returned truncated, by reason.",
		}, []string{"reason"}),
		problems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_api_problems_total",
			Help: "Problem responses by problem type.",
		}, []string{"type"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_api_panics_total",
			Help: "Panics recovered while serving requests.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rtgraph_api_requests_in_flight",
			Help: "API requests being served.",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_api_auth_failures_total",
			Help: "Requests refused for their credentials, by reason: no_key, invalid_key, throttled (the client address is over api.auth_failure_limit).",
		}, []string{"reason"}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_api_shed_requests_total",
			Help: "Requests answered 503 because api.max_in_flight requests were being served.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.stages, m.storeReads, m.truncations, m.problems, m.panics, m.inFlight, m.authFailures, m.shed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// routeOf is the route pattern r matched, or "unmatched".
func routeOf(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

func (m *metrics) stage(r *http.Request, stage string, d time.Duration) {
	m.stages.WithLabelValues(routeOf(r), stage).Observe(d.Seconds())
}

// instrument times every request and labels it once routing is done.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww, ok := w.(middleware.WrapResponseWriter)
		if !ok {
			ww = middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		}
		m.inFlight.Inc()
		defer func() {
			m.inFlight.Dec()
			code := ww.Status()
			if code == 0 {
				code = http.StatusOK
			}
			m.requests.WithLabelValues(routeOf(r), r.Method, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(ww, r)
	})
}
