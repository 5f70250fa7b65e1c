package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/rtgraph/rtgraph/api"
	"github.com/rtgraph/rtgraph/graph"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rtgraph/rtgraph/enrich"
	"github.com/rtgraph/rtgraph/ingest"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
	"github.com/rtgraph/rtgraph/internal/telemetry"
)

// Readiness condition of the store being open.
const condStore = "store"

// process says which parts a long-running command runs: serve runs the
// query API and, when topics are set, the pipeline; ingest the pipeline
// alone; api the query API alone, so queries and ingestion scale apart.
type process struct {
	name     string
	pipeline bool // consume ingest.topics (always for `ingest`; for `serve` when topics are set; never for `api`)
}

// queries reports whether the process serves the query API.
func (p process) queries() bool { return p.name != "ingest" }

func cmdServe(ctx context.Context, args []string, stderr io.Writer, environ []string) error {
	return runProcess(ctx, "serve", args, stderr, environ)
}

func cmdIngest(ctx context.Context, args []string, stderr io.Writer, environ []string) error {
	return runProcess(ctx, "ingest", args, stderr, environ)
}

func cmdAPI(ctx context.Context, args []string, stderr io.Writer, environ []string) error {
	return runProcess(ctx, "api", args, stderr, environ)
}

func runProcess(ctx context.Context, name string, args []string, stderr io.Writer, environ []string) error {
	fs, path := newFlags(name, stderr)
	dir := verticalFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfigWith(*path, environ, *dir)
	if err != nil {
		return err
	}
	if name == "ingest" && len(cfg.Ingest.Topics) == 0 {
		return fmt.Errorf("ingest.topics: must name at least one input topic to run the pipeline")
	}
	p := process{name: name, pipeline: name != "api" && len(cfg.Ingest.Topics) > 0}
	log := telemetry.NewLogger(stderr, cfg.Log)
	return serveWith(ctx, cfg, p, log, telemetry.NewRegistry(), nil, nil)
}

// serveWith runs one process: HTTP (health, metrics and, for serve, the
// API), the store and, when configured, the pipeline; then stops them in
// reverse order. first start before everything (and stop after it), last
// after everything (and stop first).
func serveWith(ctx context.Context, cfg *Config, p process, log *slog.Logger, reg *prometheus.Registry, first, last []lifecycle.Stage) error {
	conds := []string{condStore}
	if p.pipeline {
		conds = append(conds, enrich.ReadinessCondition, ingest.ReadinessCondition)
	}
	ready := lifecycle.NewReadiness(conds...)
	if err := ready.Register(reg); err != nil {
		return err
	}

	if p.queries() {
		// Before listening: an open API must not be reachable, even briefly.
		if err := cfg.API.CheckListen(cfg.HTTP.Addr); err != nil {
			return err
		}
	}
	// Listen first so a port clash fails fast.
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on http.addr %s: %w", cfg.HTTP.Addr, err)
	}
	if cfg.HTTP.TLS.Enabled() {
		tc, err := api.NewServerTLS(cfg.HTTP.TLS, log)
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, tc)
	}
	schema, err := loadSchema(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	b, err := openBackend(ctx, cfg, schema, log, reg)
	if err != nil {
		ln.Close()
		return err
	}
	ready.Mark(condStore)
	log.Info("store open", "backend", cfg.Store.Backend)
	if v := cfg.vertical; v != nil {
		log.Info("vertical", "name", v.Name, "source", v.Source, "topics", v.TopicNames(), "cache_topics", v.CacheTopics())
	}
	if cfg.countsOff {
		log.Info("frequency-cap counts off: the vertical counts no edge type (vertical.yaml counts.edge_types)")
	}

	fresh := graph.NewFreshnessCache(b.store, cfg.Ingest.GroupID, time.Second, log)
	if err := fresh.Register(reg); err != nil {
		ln.Close()
		return errors.Join(err, b.Close())
	}
	handler, err := httpHandler(cfg, p, schema, b, fresh, ready, log, reg)
	if err != nil {
		ln.Close()
		return errors.Join(err, b.Close())
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("http listening", "addr", ln.Addr().String(), "command", p.name, "tls", cfg.HTTP.TLS.Enabled())

	stages := append(first,
		lifecycle.HTTPStage("http", srv, ln, cfg.ShutdownTimeout),
		storeStage(b),
		lifecycle.Stage{Name: "freshness", Run: fresh.Run},
	)
	if p.pipeline {
		ps, err := pipelineStages(cfg, schema, b, log, reg, ready)
		if err != nil {
			ln.Close()
			return errors.Join(err, b.Close())
		}
		stages = append(stages, ps...)
	}
	stages = append(stages, last...)
	return lifecycle.Run(ctx, log, ready, cfg.ShutdownTimeout, stages...)
}

// httpHandler is the query API for `serve` and `api`, and health and
// metrics alone for `ingest`.
func httpHandler(cfg *Config, p process, schema *graph.Schema, b *backend, fresh *graph.FreshnessCache,
	ready *lifecycle.Readiness, log *slog.Logger, reg *prometheus.Registry) (http.Handler, error) {
	if p.queries() {
		return api.New(api.Options{
			Config: cfg.API, Store: b.store, Purger: b.store, CountPurger: b.countPurger(), Counts: b.countReader(), Schema: schema, Freshness: fresh,
			Readiness: ready, Registry: reg, Gatherer: reg, Logger: log,
		})
	}
	mux := http.NewServeMux()
	mux.Handle("GET /livez", lifecycle.LiveHandler())
	mux.Handle("GET /readyz", lifecycle.ReadyHandler(ready))
	if cfg.API.Metrics {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	}
	return mux, nil
}
