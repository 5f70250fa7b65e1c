package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/cassandra"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
	"github.com/rtgraph/rtgraph/internal/telemetry"
	"github.com/rtgraph/rtgraph/schemas"
)

// Readiness conditions of `rtgraph serve`.
const condStore = "store"

func cmdServe(ctx context.Context, args []string, stderr io.Writer, environ []string) error {
	fs, path := newFlags("serve", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, environ)
	if err != nil {
		return err
	}
	log := telemetry.NewLogger(stderr, cfg.Log)
	reg := telemetry.NewRegistry()
	ready := lifecycle.NewReadiness(condStore)

	// Listen before opening the store so /livez and /readyz answer (503)
	// while the store opens, and a port clash fails fast.
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on http.addr %s: %w", cfg.HTTP.Addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /livez", lifecycle.LiveHandler())
	mux.Handle("GET /readyz", lifecycle.ReadyHandler(ready))
	if cfg.HTTP.Metrics {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("http listening", "addr", ln.Addr().String())

	stages := []lifecycle.Stage{
		lifecycle.HTTPStage("http", srv, ln, cfg.ShutdownTimeout),
		{Name: "store", Run: func(ctx context.Context) error {
			store, err := openStore(ctx, cfg, log, reg)
			if err != nil {
				return err
			}
			ready.Mark(condStore)
			log.Info("store open", "backend", cfg.Store.Backend)
			<-ctx.Done()
			if err := store.Close(); err != nil {
				return fmt.Errorf("close store: %w", err)
			}
			return nil
		}},
	}
	return lifecycle.Run(ctx, log, ready, cfg.ShutdownTimeout, stages...)
}

// openStore opens the configured graph store backend.
func openStore(ctx context.Context, cfg *Config, log *slog.Logger, reg prometheus.Registerer) (graph.Store, error) {
	schema, err := graph.LoadSchema(schemas.Graph, "graph")
	if err != nil {
		return nil, fmt.Errorf("load graph schema: %w", err)
	}
	switch cfg.Store.Backend {
	case "cassandra":
		session, err := cassandra.NewSession(ctx, cfg.Cassandra, log)
		if err != nil {
			return nil, fmt.Errorf("connect to cassandra: %w", err)
		}
		st, err := cassandra.New(session, cfg.Cassandra, schema, cassandra.Options{Registerer: reg, Logger: log})
		if err != nil {
			session.Close()
			return nil, err
		}
		return st, nil
	default:
		st, err := embedded.Open(cfg.Embedded, schema, embedded.Deps{Logger: log, Registerer: reg})
		if err != nil {
			return nil, err
		}
		return st, nil
	}
}
