package api

import (
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rtgraph/rtgraph/api/ui"
	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/traverse"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
)

//go:embed openapi.yaml
var openapiSpec []byte

// OpenAPISpec returns the OpenAPI 3.1 document the API serves at
// /openapi.yaml.
func OpenAPISpec() []byte { return openapiSpec }

// Options are what New needs. Config, Store, Schema and Readiness are
// required; the rest have defaults.
type Options struct {
	Config Config
	// Store is read by every /v1 endpoint; it must be safe for concurrent use.
	Store graph.Reader
	// Schema is the graph schema the store follows.
	Schema *graph.Schema
	// Freshness supplies the watermark; nil reports it unknown.
	Freshness Freshness
	// Counts answers /v1/counts (frequency caps); nil answers them 404.
	// It must be safe for concurrent use.
	Counts graph.CountReader
	// Purger applies node purges (POST /v1/admin/purge); nil answers that
	// route 501. CountPurger, when counts are on, removes the purged
	// node's impressions too. Both must be safe for concurrent use.
	Purger      graph.Writer
	CountPurger graph.CountPurger
	// Readiness answers /readyz.
	Readiness *lifecycle.Readiness
	// Registry registers the API's metrics; Gatherer is what /metrics
	// serves. Both nil: a private registry serves the API's own metrics.
	Registry prometheus.Registerer
	Gatherer prometheus.Gatherer
	// Logger gets warnings and failures; nil discards.
	Logger *slog.Logger
	// Now is the clock default lookbacks count from, rate limits refill by
	// and log sampling follows; nil is time.Now.
	Now func() time.Time
}

// server holds what handlers share. It is immutable after New.
type server struct {
	cfg      Config
	store    graph.Reader
	purger   graph.Writer
	cpurger  graph.CountPurger
	counts   graph.CountReader
	schema   *graph.Schema
	engine   *traverse.Engine
	codec    cursorCodec
	fresh    Freshness
	auth     *authenticator
	m        *metrics
	log      *slog.Logger
	now      func() time.Time
	inFlight chan struct{}
	// proxies are Config.TrustedProxies.
	proxies []netip.Prefix
	// Rate-limit buckets; nil when that limit is off.
	graphLimits, countsLimits, authFails *limiterTable
	// authLog and shedLog sample the lines of failed authentications and
	// shed requests: one per second at most, however many there are.
	authLog, shedLog *logSampler
}

// New builds the API's HTTP handler: /v1 (nodes, edges, traversals),
// /openapi.yaml, /metrics (when Config.Metrics), /livez and /readyz. It
// validates the configuration, reads key and secret files, and registers
// metrics; it starts no goroutine. Serve it from an http.Server whose
// WriteTimeout is at least Config.MinWriteTimeout.
func New(opts Options) (http.Handler, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case opts.Store == nil:
		return nil, errors.New("api: new: nil Store")
	case opts.Schema == nil:
		return nil, errors.New("api: new: nil Schema")
	case opts.Readiness == nil:
		return nil, errors.New("api: new: nil Readiness")
	}
	if err := cfg.checkSchema(opts.Schema); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg, gath := opts.Registry, opts.Gatherer
	if reg == nil && gath == nil {
		r := prometheus.NewRegistry()
		reg, gath = r, r
	}
	if reg == nil || gath == nil {
		return nil, errors.New("api: new: set both Registry and Gatherer, or neither")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("api: new: register metrics: %w", err)
	}
	secret := []byte(cfg.CursorSecret)
	if cfg.CursorSecretFile != "" {
		s, err := readSecret(cfg.CursorSecretFile, "cursor_secret_file")
		if err != nil {
			return nil, err
		}
		if len(s) < 32 {
			return nil, fmt.Errorf("%w: api.cursor_secret_file: the secret must be at least 32 bytes", ErrInvalidConfig)
		}
		secret = []byte(s)
	}
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
		log.Warn("api cursor secret generated", "reason", "no cursor_secret configured; cursors are valid only on this process until it stops")
	}
	auth, err := newAuthenticator(cfg)
	if err != nil {
		return nil, err
	}
	if auth.open {
		log.Warn("api open without authentication", "reason", "no API keys configured; every request is served with every scope")
	}
	proxies, err := parsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, err // Validate has refused it already
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &server{
		cfg:      cfg,
		store:    opts.Store,
		purger:   opts.Purger,
		cpurger:  opts.CountPurger,
		counts:   opts.Counts,
		schema:   opts.Schema,
		engine:   traverse.New(opts.Store, opts.Schema, traverse.Options{Concurrency: cfg.ReadConcurrency, RawProps: true}),
		codec:    cursorCodec{key: secret},
		fresh:    opts.Freshness,
		auth:     auth,
		m:        m,
		log:      log,
		now:      now,
		inFlight: make(chan struct{}, cfg.MaxInFlight),

		proxies:      proxies,
		graphLimits:  newLimiterTable(cfg.RateLimit, cfg.RateLimitClients),
		countsLimits: newLimiterTable(cfg.CountsRateLimit, cfg.RateLimitClients),
		authFails:    newLimiterTable(cfg.AuthFailureLimit, cfg.RateLimitClients),
		authLog:      &logSampler{every: time.Second},
		shedLog:      &logSampler{every: time.Second},
	}
	return s.routes(opts.Readiness, gath), nil
}

func (s *server) routes(ready *lifecycle.Readiness, gath prometheus.Gatherer) http.Handler {
	r := chi.NewRouter()
	// GetHead answers HEAD on every GET route (net/http drops the body), as
	// HTTP asks of a server; the handlers need not know.
	r.Use(requestID, s.m.instrument, s.recoverer, middleware.GetHead)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeProblem(w, r, apiErr(kindNotFound, "", "no route for %s", r.URL.Path))
	})
	root := r
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		allow := allowedMethods(root, r)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeProblem(w, r, apiErr(kindMethodNotAllowed, "", "%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
	})
	r.Method(http.MethodGet, "/livez", lifecycle.LiveHandler())
	r.Method(http.MethodGet, "/readyz", lifecycle.ReadyHandler(ready))
	r.Get("/openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(openapiSpec)
	})
	// The explorer page (api/ui): static files embedded in the binary; its
	// calls to /v1 carry the key the user types, as any client's do.
	uiHandler := ui.Handler()
	r.Handle("/ui", uiHandler)
	r.Handle("/ui/*", uiHandler)
	if s.cfg.Metrics {
		h := promhttp.HandlerFor(gath, promhttp.HandlerOpts{})
		if s.cfg.MetricsRequireKey {
			r.With(s.identify, s.requireScope(ScopeAdmin)).Method(http.MethodGet, "/metrics", h)
		} else {
			r.Method(http.MethodGet, "/metrics", h)
		}
	}
	// Order matters: the watermark is stamped only once the caller is
	// authenticated, holds the scope and is within its rate, so that 401,
	// 403 and 429 answers say nothing about the graph; the in-flight limit
	// comes last so that refused requests never hold a slot.
	r.Route("/v1", func(r chi.Router) {
		r.Use(s.identify)
		graphRead := chi.Chain(s.requireScope(ScopeGraphRead), s.limitRate(s.graphLimits), s.stampWatermark, s.limitInFlight)
		countsRead := chi.Chain(s.requireScope(ScopeCountsRead), s.limitRate(s.countsLimits), s.stampWatermark, s.limitInFlight)
		r.With(graphRead...).Get("/schema", s.getSchema)
		r.With(graphRead...).Get("/nodes/{type}", s.listNodes)
		r.With(graphRead...).Get("/nodes/{type}/{id}", s.getNode)
		r.With(graphRead...).Get("/nodes/{type}/{id}/degree", s.getDegree)
		r.With(graphRead...).Get("/nodes/{type}/{id}/edges", s.getEdges)
		r.With(graphRead...).Post("/traversals", s.postTraversal)
		r.With(countsRead...).Get("/counts/{type}/{id}", s.getCounts)
		r.With(countsRead...).Post("/counts:batch", s.postCountsBatch)
		r.With(s.requireScope(ScopeAdmin), s.limitInFlight).Post("/admin/purge", s.postPurge)
	})
	return r
}

// allowedMethods lists the methods routes serves for r's path, for the
// Allow header a 405 must carry (RFC 9110): chi does not hand them to a
// custom handler. HEAD goes with GET.
func allowedMethods(routes chi.Routes, r *http.Request) []string {
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if routes.Match(chi.NewRouteContext(), m, path) {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	return allow
}

// recoverer turns a panic in a handler into a 500 problem, logged with the
// request id and stack. http.ErrAbortHandler keeps its meaning.
func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.m.panics.Inc()
			id := requestIDFrom(r.Context())
			s.log.Error("api panic recovered", "request_id", id, "route", routeOf(r), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if ww, ok := w.(middleware.WrapResponseWriter); ok && ww.Status() != 0 {
				return // the answer was under way; the client sees it cut
			}
			s.writeProblem(w, r, apiErr(kindInternal, "", "an internal error occurred; quote request id %s", id))
		}()
		next.ServeHTTP(w, r)
	})
}

// limitInFlight answers 503 when MaxInFlight requests are being served
// rather than queueing without bound. Every shed request is counted; the
// log says so at most once per second, with how many it stands for, as
// shedding comes in floods.
func (s *server) limitInFlight(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.inFlight <- struct{}{}:
			defer func() { <-s.inFlight }()
			next.ServeHTTP(w, r)
		default:
			s.m.shed.Inc()
			if suppressed, ok := s.shedLog.sample(s.now()); ok {
				s.log.Warn("api request shed", "max_in_flight", cap(s.inFlight), "route", routeOf(r),
					"request_id", requestIDFrom(r.Context()), "suppressed", suppressed)
			}
			e := apiErr(kindUnavailable, "", "the server is serving %d requests, its limit; retry later", cap(s.inFlight))
			e.RetryAfter = 1
			s.writeProblem(w, r, e)
		}
	})
}
