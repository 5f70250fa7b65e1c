package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rtgraph/rtgraph/internal/broker"
	"github.com/rtgraph/rtgraph/internal/demogen"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
	"github.com/rtgraph/rtgraph/internal/telemetry"
	"github.com/rtgraph/rtgraph/vertical"
)

// cmdDemo runs the whole system in one process on the embedded default: an
// in-process Kafka-protocol broker, the Pebble store, the real pipeline
// (consuming through sarama as in production), the API and a generator of
// the built-in vertical's events. With --vertical DIR it runs that vertical
// instead, without a generator: it ingests whatever is published to the
// broker.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	fs, path := newFlags("demo", stderr)
	dataDir := fs.String("data-dir", "data", "where the broker, the store and the generator keep their state")
	kafkaAddr := fs.String("kafka-addr", "127.0.0.1:9092", "address of the embedded Kafka-protocol broker")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "address of the API")
	rate := fs.Float64("rate", 300, "demo events published per second (0: none, bring your own); built-in vertical only")
	progress := fs.Duration("progress", 5*time.Second, "interval of the progress line (0: none)")
	dir := verticalFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rate < 0 {
		return fmt.Errorf("%w: --rate must not be negative", errUsage)
	}
	var cfg *Config
	var err error
	if *dir != "" {
		rateSet := false
		fs.Visit(func(f *flag.Flag) { rateSet = rateSet || f.Name == "rate" })
		if rateSet {
			return fmt.Errorf("%w: --rate drives the built-in vertical's generator; with --vertical nothing is generated: publish your own records (rtgraph produce)", errUsage)
		}
		if cfg, err = loadConfigWith(*path, environ, *dir); err != nil {
			return err
		}
	} else if cfg, err = builtinDemoConfig(*path, environ); err != nil {
		return err
	}
	v := cfg.vertical
	cfg.Store.Backend = "embedded"
	cfg.Embedded.Dir = filepath.Join(*dataDir, "graph")
	cfg.Kafka.Brokers = []string{*kafkaAddr}
	cfg.HTTP.Addr = *httpAddr
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}

	log := telemetry.NewLogger(stderr, cfg.Log)
	reg := telemetry.NewRegistry()

	bcfg := broker.DefaultConfig()
	bcfg.Addr = *kafkaAddr
	bcfg.Dir = filepath.Join(*dataDir, "kafka")
	bcfg.Topics = append(v.TopicNames(), cfg.Ingest.DeadLetterTopic)
	bcfg.CompactedTopics = v.CacheTopics()
	brk, err := broker.Start(ctx, bcfg, log)
	if err != nil {
		return err
	}
	// The broker may have picked the port (":0"); the pipeline uses the
	// address it really listens on.
	cfg.Kafka.Brokers = brk.Addrs()

	if *dir != "" {
		printVerticalBanner(stdout, *httpAddr, brk.Addrs()[0], *dataDir, *dir, v)
		fmt.Fprintf(stderr, "rtgraph demo: vertical %s has no generator: ingesting whatever is published to %s; publish to its topics %s",
			v.Name, brk.Addrs()[0], strings.Join(v.TopicNames(), ", "))
		if ct := v.CacheTopics(); len(ct) > 0 {
			fmt.Fprintf(stderr, ", and its caches' documents to %s (before the events that join them)", strings.Join(ct, ", "))
		}
		fmt.Fprintln(stderr)
		var extra []lifecycle.Stage
		if *progress > 0 {
			extra = append(extra, lifecycle.Stage{Name: "progress", Run: func(ctx context.Context) error {
				reportProgress(ctx, stdout, *progress, nil, reg)
				return nil
			}})
		}
		return serveWith(ctx, cfg, process{name: "serve", pipeline: true}, log, reg,
			[]lifecycle.Stage{{Name: "broker", Run: brk.Run}}, extra)
	}

	producer, err := demogen.NewProducer(cfg.Kafka)
	if err != nil {
		return errors.Join(err, brk.Close())
	}
	gcfg := demogen.DefaultConfig()
	gcfg.Rate = *rate
	gcfg.StateFile = filepath.Join(*dataDir, "demogen.json")
	gen, err := demogen.New(gcfg, producer, log, reg)
	if err != nil {
		return errors.Join(err, producer.Close(), brk.Close())
	}
	// Metadata first, so the enrichment caches hold it before the first
	// event that joins it.
	if err := gen.SeedMetadata(ctx); err != nil {
		return errors.Join(err, producer.Close(), brk.Close())
	}

	printBanner(stdout, *httpAddr, brk.Addrs()[0], *dataDir, *rate)
	extra := []lifecycle.Stage{
		{Name: "generator", Run: func(ctx context.Context) error {
			err := gen.Run(ctx)
			return errors.Join(err, producer.Close())
		}},
	}
	if *progress > 0 {
		extra = append(extra, lifecycle.Stage{Name: "progress", Run: func(ctx context.Context) error {
			reportProgress(ctx, stdout, *progress, gen, reg)
			return nil
		}})
	}
	return serveWith(ctx, cfg, process{name: "serve", pipeline: true}, log, reg,
		[]lifecycle.Stage{{Name: "broker", Run: brk.Run}}, extra)
}

// builtinDemoConfig is the configuration of the demo of the built-in
// vertical: its topics, caches, schema and mappings. A configuration that
// names its own would be silently replaced, so it is refused.
func builtinDemoConfig(path string, environ []string) (*Config, error) {
	cfg, err := loadConfig(path, environ)
	if err != nil {
		return nil, err
	}
	var own []string
	if len(cfg.Ingest.Topics) > 0 {
		own = append(own, "ingest.topics")
	}
	if len(cfg.Enrich.Caches) > 0 {
		own = append(own, "enrich.caches")
	}
	if cfg.Schemas.GraphDir != "" {
		own = append(own, "schemas.graph_dir")
	}
	if cfg.Schemas.MappingsDir != "" {
		own = append(own, "schemas.mappings_dir")
	}
	if len(own) > 0 {
		return nil, fmt.Errorf("%w: rtgraph demo runs the built-in demo vertical and would ignore %s of the configuration; "+
			"remove them, or run your own vertical folder with rtgraph demo --vertical DIR (or your own topics with rtgraph serve)", errUsage, joinAnd(own))
	}
	v, err := vertical.Builtin()
	if err != nil {
		return nil, err
	}
	cfg.Ingest.Topics = v.TopicConfigs()
	cfg.Enrich.Caches = v.Enrich.Caches
	cfg.vertical = v
	return cfg, nil
}

// printVerticalBanner says where to look, and how to publish the
// vertical's samples, for the demo of a vertical folder.
func printVerticalBanner(w io.Writer, httpAddr, kafkaAddr, dataDir, dir string, v *vertical.Vertical) {
	base := "http://" + httpAddr
	fmt.Fprintf(w, `rtgraph demo — vertical %[5]s (%[6]s)
  API        %[1]s  (spec: %[1]s/openapi.yaml)
  metrics    %[1]s/metrics
  Kafka      %[2]s
  data       %[3]s
  generator  none: publish your own records to %[4]s

`, base, kafkaAddr, dataDir, strings.Join(v.TopicNames(), ", "), v.Name, dir)
	var cmds []string
	for _, t := range append(v.CacheTopics(), v.TopicNames()...) {
		if _, err := v.Samples(t); err == nil {
			cmds = append(cmds, fmt.Sprintf("  rtgraph produce --brokers %s --topic %s --file %s", kafkaAddr, t, filepath.Join(dir, vertical.SamplesDir, t+".jsonl")))
		}
	}
	if len(cmds) > 0 {
		fmt.Fprintf(w, "Publish the samples (caches first):\n%s\n\n", strings.Join(cmds, "\n"))
	}
	fmt.Fprintf(w, "Then query, e.g.:\n  curl -s %s/v1/nodes/TYPE/ID\n\n", base)
}

func printBanner(w io.Writer, httpAddr, kafkaAddr, dataDir string, rate float64) {
	base := "http://" + httpAddr
	fmt.Fprintf(w, `rtgraph demo
  API        %[1]s  (spec: %[1]s/openapi.yaml)
  metrics    %[1]s/metrics
  Kafka      %[2]s  (publish your own events: rtgraph produce --brokers %[2]s --topic T --file F)
  data       %[3]s
  generator  %[4]g events/s

Try:
  curl -s %[1]s/v1/nodes/account/1001
  curl -s -X POST %[1]s/v1/traversals -H 'Content-Type: application/json' \
    -d '{"start":[{"type":"account","id":"1001"}],"hops":[{"edge_types":["has_profile"],"direction":"out"},{"edge_types":["viewed_title"],"direction":"out"}]}'
  curl -s '%[1]s/v1/counts/user/u-9001?edge_type=impressed&target=campaign:c-500&target=campaign:c-501&windows=1m,1h,1d'

`, base, kafkaAddr, dataDir, rate)
}

// reportProgress prints one line every interval from the generator's stats
// (gen nil: there is no generator) and the process's own metrics.
func reportProgress(ctx context.Context, w io.Writer, every time.Duration, gen *demogen.Generator, g prometheus.Gatherer) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var last uint64
	if gen != nil {
		last = gen.Stats().Records
	}
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			published := ""
			if gen != nil {
				sent := gen.Stats().Records
				rate := float64(sent-last) / now.Sub(lastAt).Seconds()
				last, lastAt = sent, now
				published = fmt.Sprintf("published %.0f/s (%d total)  ", rate, sent)
			}
			m := gatherSums(g)
			fmt.Fprintf(w, "progress: %sconsumed %.0f  lag %.0f  node writes %.0f  edge writes %.0f  dead letters %.0f\n",
				published, m["rtgraph_ingest_messages_total"], m["rtgraph_ingest_consumer_lag"],
				m["rtgraph_embedded_mutations_applied_total{op=upsert_node}"], m["rtgraph_embedded_mutations_applied_total{op=upsert_edge}"],
				m["rtgraph_ingest_dead_letters_total"])
		}
	}
}

// gatherSums sums every counter and gauge by name, and by name{op=…} for
// series with an op label.
func gatherSums(g prometheus.Gatherer) map[string]float64 {
	out := map[string]float64{}
	mfs, err := g.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "rtgraph_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := value(m)
			out[mf.GetName()] += v
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" {
					out[mf.GetName()+"{op="+l.GetValue()+"}"] += v
				}
			}
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}
