package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/enrich"
	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/cassandra"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/ingest"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/normalize"
	"github.com/rtgraph/rtgraph/schemas"
)

// graphStore is what the process needs of a graph store backend (both
// shipped backends are one).
type graphStore interface {
	graph.Store
	graph.WatermarkStore
}

// backend is an open store: the graph, and the frequency-cap counts that
// share its storage.
type backend struct {
	store  graphStore
	counts graph.CountStore
	rules  *graph.CountRules
	// closeClient, when set, closes what the store runs on (the Cassandra
	// session), after the store.
	closeClient func()
}

// Close closes the counts, then the store they share storage with, then its
// client.
func (b *backend) Close() error {
	err := errors.Join(b.counts.Close(), b.store.Close())
	if b.closeClient != nil {
		b.closeClient()
	}
	return err
}

// loadSchema reads the graph schema from schemas.graph_dir or the built-in files.
func loadSchema(cfg *Config) (*graph.Schema, error) {
	fsys := schemas.GraphSchema()
	if cfg.Schemas.GraphDir != "" {
		fsys = os.DirFS(cfg.Schemas.GraphDir)
	}
	s, err := graph.LoadSchema(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("load graph schema: %w", err)
	}
	return s, nil
}

func mappingsFS(cfg *Config) fs.FS {
	if cfg.Schemas.MappingsDir != "" {
		return os.DirFS(cfg.Schemas.MappingsDir)
	}
	return schemas.MappingFiles()
}

// openBackend opens the configured graph store and its counts.
func openBackend(ctx context.Context, cfg *Config, schema *graph.Schema, log *slog.Logger, reg prometheus.Registerer) (*backend, error) {
	rules, err := graph.NewCountRules(cfg.Counts, schema)
	if err != nil {
		return nil, err
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
		counts, err := cassandra.NewCounts(st, rules, cassandra.CountOptions{Registerer: reg, Logger: log})
		if err != nil {
			err = errors.Join(err, st.Close())
			session.Close()
			return nil, err
		}
		return &backend{store: st, counts: counts, rules: rules, closeClient: session.Close}, nil
	default:
		st, err := embedded.Open(cfg.Embedded, schema, embedded.Deps{Logger: log, Registerer: reg})
		if err != nil {
			return nil, err
		}
		counts, err := embedded.NewCounts(st, rules, embedded.CountOptions{Registerer: reg, Logger: log})
		if err != nil {
			return nil, errors.Join(err, st.Close())
		}
		return &backend{store: st, counts: counts, rules: rules}, nil
	}
}

// storeStage keeps the store open until the stages after it have stopped,
// then closes it.
func storeStage(st *backend) lifecycle.Stage {
	return lifecycle.Stage{Name: "store", Run: func(ctx context.Context) error {
		<-ctx.Done()
		if err := st.Close(); err != nil {
			return fmt.Errorf("close store: %w", err)
		}
		return nil
	}}
}

// pipelineStages builds the enrichment caches, the mapper and the pipeline
// over st, and returns their stages in start order. The pipeline maps
// nothing until the caches are loaded, so joins are deterministic.
func pipelineStages(cfg *Config, schema *graph.Schema, b *backend, log *slog.Logger, reg prometheus.Registerer, ready *lifecycle.Readiness) ([]lifecycle.Stage, error) {
	if len(cfg.Ingest.Topics) == 0 {
		return nil, errors.New("ingest.topics: must name at least one input topic to run the pipeline")
	}
	sc, err := cfg.Kafka.Sarama()
	if err != nil {
		return nil, err
	}
	enr, err := enrich.New(cfg.Enrich, cfg.Kafka.Brokers, sc, reg, log)
	if err != nil {
		return nil, err
	}
	mm, err := mapping.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	mapper, err := mapping.Load(mappingsFS(cfg), schema, enr, mapping.WithMetrics(mm), mapping.WithLogger(log))
	if err != nil {
		return nil, err
	}
	p, err := ingest.NewPipeline(ingest.Options{
		Config:     cfg.Ingest,
		Kafka:      cfg.Kafka,
		Mapper:     &countingMapper{inner: mapper, rules: b.rules, counts: b.counts},
		Writer:     b.store,
		Watermarks: b.store,
		Fold:       mapping.Fold,
		Logger:     log,
		Registerer: reg,
		Readiness:  ready,
	})
	if err != nil {
		return nil, err
	}
	return []lifecycle.Stage{
		{Name: "enrich", Run: func(ctx context.Context) error {
			go func() {
				if enr.WaitLoaded(ctx) == nil {
					ready.Mark(enrich.ReadinessCondition)
				}
			}()
			return enr.Run(ctx)
		}},
		{Name: "pipeline", Run: func(ctx context.Context) error {
			if err := enr.WaitLoaded(ctx); err != nil {
				return nil // stopped before the caches were loaded
			}
			return p.Run(ctx)
		}},
	}, nil
}

// countingMapper records the impressions among an envelope's mutations
// (edges of the counted types, identified by the envelope's idempotency id)
// before handing the mutations on. It runs before a batch is folded, which
// would keep one upsert per edge and lose repeated impressions. Recording is
// idempotent, so a retried or redelivered envelope is counted once; a
// transient count-store error is returned as is, so the pipeline retries.
type countingMapper struct {
	inner  ingest.Mapper
	rules  *graph.CountRules
	counts graph.CountWriter
}

func (m *countingMapper) Map(ctx context.Context, env *normalize.Envelope) ([]graph.Mutation, error) {
	muts, err := m.inner.Map(ctx, env)
	if err != nil {
		return nil, err
	}
	if imps := m.rules.Impressions(env.ID, muts, nil); len(imps) > 0 {
		if _, err := m.counts.RecordImpressions(ctx, imps); err != nil {
			return nil, fmt.Errorf("record impressions: %w", err)
		}
	}
	return muts, nil
}
