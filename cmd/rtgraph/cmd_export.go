package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/internal/export"
	"github.com/rtgraph/rtgraph/internal/telemetry"
)

// Consistency texts of the manifest, per backend.
const (
	consistencyEmbedded = "The embedded store is opened by one process at a time, so no write happens during the export: " +
		"it holds exactly the nodes and edges stored when it ran, except that an edge whose TTL ran out during the export may or may not appear."
	consistencyCassandra = "Every node and edge written before the export started and not changed during it is included, exactly once. " +
		"A node or edge written, changed or deleted during the export may or may not appear, in its old or its new state; " +
		"types are read one after another, so an edge may name a node exported in an older or newer state, or not exported."
)

// cmdExport: rtgraph export --out DIR [--node-types a,b] [--edge-types c,d]
// [--format parquet,jsonl] [--parallel N] [--overwrite].
func cmdExport(ctx context.Context, args []string, stderr io.Writer, environ []string) error {
	fs, path := newFlags("export", stderr)
	dir := verticalFlag(fs)
	out := fs.String("out", "", "directory to write to: nodes/<type>.{parquet,jsonl}, edges/<type>.{parquet,jsonl}, manifest.json (required; must be empty or new unless --overwrite)")
	overwrite := fs.Bool("overwrite", false, "write into a non-empty directory: remove its manifest.json and the nodes/ and edges/ files of an earlier export first")
	var nodeTypes, edgeTypes listFlag
	var formats listFlag
	fs.Var(&nodeTypes, "node-types", "node types to export, comma-separated (default: all, unless --edge-types is given)")
	fs.Var(&edgeTypes, "edge-types", "edge types to export, comma-separated (default: all, unless --node-types is given)")
	fs.Var(&formats, "format", "formats to write, comma-separated: parquet, jsonl (default: both)")
	parallel := fs.Int("parallel", 2, "how many types to export at once")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out DIR is required", errUsage)
	}
	if *parallel < 1 {
		return fmt.Errorf("%w: --parallel must be at least 1", errUsage)
	}
	opts := export.Options{Dir: *out, Overwrite: *overwrite, Parallel: *parallel, Progress: stderr}
	if len(formats) > 0 {
		f, err := export.ParseFormats(formats)
		if err != nil {
			return fmt.Errorf("%w: --format: %v", errUsage, err)
		}
		opts.Formats = f
	}
	// Neither --node-types nor --edge-types: every type. Either: exactly
	// the types named (none of the other kind unless it is given too).
	named := false
	fs.Visit(func(f *flag.Flag) { named = named || f.Name == "node-types" || f.Name == "edge-types" })
	if named {
		opts.NodeTypes = append([]string{}, nodeTypes...)
		opts.EdgeTypes = append([]string{}, edgeTypes...)
	}
	cfg, err := loadConfigWith(*path, environ, *dir)
	if err != nil {
		return err
	}
	schema, err := loadSchema(cfg)
	if err != nil {
		return err
	}
	// The export reads the graph only: frequency-cap counts stay closed.
	cfg.countsOff = true
	logCfg := cfg.Log
	if logCfg.Level == "info" || logCfg.Level == "INFO" {
		logCfg.Level = "warn" // stderr is for progress lines
	}
	log := telemetry.NewLogger(stderr, logCfg)
	if cfg.Store.Backend == "embedded" {
		// Opening creates a store: a mistyped directory would export an
		// empty graph without a word.
		if _, err := os.Stat(cfg.Embedded.Dir); err != nil {
			return fmt.Errorf("no embedded store to export in %s (embedded.dir): %w", cfg.Embedded.Dir, err)
		}
	}
	b, err := openBackend(ctx, cfg, schema, log, nil)
	if err != nil {
		if cfg.Store.Backend == "embedded" && errors.Is(err, syscall.EAGAIN) {
			return fmt.Errorf("the embedded store in %s is in use by another process (a running server?): it is opened by one process at a time, stop that process first: %w", cfg.Embedded.Dir, err)
		}
		return fmt.Errorf("open the %s store: %w", cfg.Store.Backend, err)
	}
	opts.Schema, opts.Source, opts.Backend = schema, b.store, cfg.Store.Backend
	opts.Consistency = consistencyEmbedded
	if cfg.Store.Backend == "cassandra" {
		opts.Consistency = consistencyCassandra
	}
	group := cfg.Ingest.GroupID
	ws, err := b.store.Watermarks(ctx)
	if err != nil {
		return errors.Join(fmt.Errorf("read the freshness watermark: %w", err), b.Close())
	}
	if t, ok := graph.CompleteThrough(ws, group); ok {
		t = t.UTC()
		opts.Watermark = &t
		opts.WatermarkNote = fmt.Sprintf("freshness watermark of consumer group %q read at the start, as the API reports it: every event up to it had been ingested", group)
	} else {
		opts.WatermarkNote = fmt.Sprintf("no watermark is recorded for consumer group %q, so ingestion progress is unknown; max_event_time is the newest event time exported", group)
	}
	_, err = export.Run(ctx, opts)
	return errors.Join(err, b.Close())
}
