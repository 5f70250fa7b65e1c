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
// share its storage (nil when counts are off).
type backend struct {
	store  graphStore
	counts graph.CountStore  // nil when counts are off
	rules  *graph.CountRules // nil when counts are off
	// closeClient, when set, closes what the store runs on (the Cassandra
	// session), after the store.
	closeClient func()
}

// Close closes the counts, then the store they share storage with, then its
// client.
func (b *backend) Close() error {
	var err error
	if b.counts != nil {
		err = b.counts.Close()
	}
	err = errors.Join(err, b.store.Close())
	if b.closeClient != nil {
		b.closeClient()
	}
	return err
}

// countReader is what the API answers /v1/counts from: nil (404) when
// counts are off.
func (b *backend) countReader() graph.CountReader {
	if b.counts == nil {
		return nil
	}
	return b.counts
}

// countPurger is the counts' purger, or nil (never a typed nil) when
// counts are off.
func (b *backend) countPurger() graph.CountPurger {
	if b.counts == nil {
		return nil
	}
	return b.counts
}

// loadSchema reads the graph schema from the vertical, else
// schemas.graph_dir, else the built-in files.
func loadSchema(cfg *Config) (*graph.Schema, error) {
	if v := cfg.vertical; v != nil {
		s, err := graph.LoadSchema(v.GraphFS(), ".")
		if err != nil {
			return nil, fmt.Errorf("load graph schema of vertical %s (%s): %w", v.Name, v.Source, err)
		}
		return s, nil
	}
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
	if cfg.vertical != nil {
		return cfg.vertical.MappingsFS()
	}
	if cfg.Schemas.MappingsDir != "" {
		return os.DirFS(cfg.Schemas.MappingsDir)
	}
	return schemas.MappingFiles()
}

// openBackend opens the configured graph store and its counts (unless
// they are off).
func openBackend(ctx context.Context, cfg *Config, schema *graph.Schema, log *slog.Logger, reg prometheus.Registerer) (*backend, error) {
	var rules *graph.CountRules
	if !cfg.countsOff {
		var err error
		if rules, err = graph.NewCountRules(cfg.Counts, schema); err != nil {
			return nil, err
		}
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
		if rules == nil {
			return &backend{store: st, closeClient: session.Close}, nil
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
		if rules == nil {
			return &backend{store: st}, nil
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
		if v := cfg.vertical; v != nil {
			return nil, fmt.Errorf("vertical %s (%s): %w", v.Name, v.Source, err)
		}
		return nil, err
	}
	if v := cfg.vertical; v != nil {
		// A rule of a topic the vertical does not declare would never see
		// an event: the folder contradicts itself (rtgraph vertical check
		// says where).
		for _, t := range mapper.Topics() {
			if _, ok := cfg.Ingest.Topics[t]; !ok {
				return nil, fmt.Errorf("vertical %s (%s): the mappings select topic %s, which vertical.yaml does not declare; run rtgraph vertical check", v.Name, v.Source, t)
			}
		}
	}
	var m ingest.Mapper = mapper
	if b.counts != nil {
		m = &countingMapper{inner: mapper, rules: b.rules, counts: b.counts}
	}
	p, err := ingest.NewPipeline(ingest.Options{
		Config:     cfg.Ingest,
		Kafka:      cfg.Kafka,
		Mapper:     m,
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
