package ingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/cassandra"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/graph/embedded/embeddedtest"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/normalize"
	"github.com/rtgraph/rtgraph/schemas"
	"github.com/rtgraph/rtgraph/schemas/demo"
)

// BenchmarkIngest measures the pipeline end to end on real Kafka with the
// demo vertical's real decoders, mapping rules (Fold included) and graph
// schema, into the embedded store or real Cassandra. One iteration is the
// whole scenario; run it with -benchtime 1x (make bench-ingest):
//
//  1. throughput: RTGRAPH_BENCH_EVENTS (default 1,000,000) records are
//     published first (half Debezium changes of the profiles table, half
//     login request logs, 1% malformed), then one pipeline consumes them all
//     from a new group, timed from the moment it owns its partitions:
//     events/s, mutations/s, CPU seconds of this process per million
//     events, peak RSS of this process during the phase;
//  2. freshness: with the pipeline caught up, records are published at a
//     quarter of the measured throughput (at most 5,000/s) for 15s, stamped with their
//     publication time as event time; freshness is the time from event time
//     to the store acknowledging the mutation: p50 and p99;
//  3. ceilings: a sarama consumer group that only marks offsets, over the
//     same records; and, for the embedded store, a bare Pebble database
//     with the store's options committing blind the exact batches a store
//     commits for the mutations of the same records (decoded, mapped and
//     captured beforehand, untimed), one commit per batch, fsynced like the
//     store's, from as many writers as there are partitions (see
//     pebbleCeiling). Cassandra has no raw ceiling here: its line is the
//     rtgraph store alone applying the same mutations (storeAlone);
//  4. ratio: pipeline events/s over the lower of the two figures.
//
// docs/bench-ingest.md records the figures.
func BenchmarkIngest(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		open := func(b *testing.B) (benchStore, func()) {
			cfg := embedded.DefaultConfig()
			cfg.Dir = b.TempDir()
			s, err := embedded.Open(cfg, demoSchema(b), embedded.Deps{})
			if err != nil {
				b.Fatal(err)
			}
			return s, func() { _ = s.Close() }
		}
		for range b.N {
			runIngestBench(b, open, storeBaseline{
				label:  "raw Pebble ceiling (same batches, blind)",
				metric: "ceil-pebble-events/s",
				run:    pebbleCeiling,
			})
		}
	})
	b.Run("cassandra", func(b *testing.B) {
		open := func(b *testing.B) (benchStore, func()) {
			cfg := cassandraForTest(b)
			session, err := cassandra.NewSession(context.Background(), cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			s, err := cassandra.New(session, cfg, demoSchema(b), cassandra.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return s, func() { _ = s.Close(); session.Close() }
		}
		for range b.N {
			runIngestBench(b, open, storeBaseline{
				label:  "rtgraph store alone (not a raw ceiling)",
				metric: "store-alone-events/s",
				run:    storeAlone(open),
			})
		}
	})
}

// storeBaseline is what the pipeline's store side is compared with: run
// writes the mutations of records 0..n-1, folded per batch of batchCount
// records, from writers concurrent writers, and returns events/s and
// mutations/s.
type storeBaseline struct {
	label, metric string
	run           func(b *testing.B, tp benchTopics, n, batchCount, writers int) (float64, float64)
}

type benchStore interface {
	Writer
	WatermarkWriter
}

func demoSchema(tb testing.TB) *graph.Schema {
	s, err := graph.LoadSchema(schemas.GraphSchema(), ".")
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// benchTopics are the demo topics the workload uses, and the names the
// benchmark gives them (unique per run, on a broker shared with other work).
type benchTopics struct {
	profiles, login, dlq string
}

// benchMapper loads the demo's mapping files for the profiles and login
// topics, renamed to the run's topics.
func benchMapper(tb testing.TB, tp benchTopics) *mapping.Mapper {
	files := map[string]string{
		"streaming_profiles.yaml": "streaming.public.profiles",
		"requests_login.yaml":     "requests.login",
	}
	fsys := fstest.MapFS{}
	for file, topic := range files {
		b, err := fs.ReadFile(schemas.MappingFiles(), file)
		if err != nil {
			tb.Fatal(err)
		}
		to := tp.profiles
		if topic == "requests.login" {
			to = tp.login
		}
		fsys[file] = &fstest.MapFile{Data: bytes.ReplaceAll(b, []byte(topic), []byte(to))}
	}
	m, err := mapping.Load(fsys, demoSchema(tb), mapping.MapLookup{})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// benchDecoders are the demo's decoder configurations of the two topics.
func benchDecoders(tb testing.TB, tp benchTopics) map[string]normalize.Config {
	v, err := demo.Load()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]normalize.Config{}
	for _, t := range v.Topics {
		switch t.Topic {
		case "streaming.public.profiles":
			out[tp.profiles] = t.Decoder
		case "requests.login":
			out[tp.login] = t.Decoder
		}
	}
	if len(out) != 2 {
		tb.Fatalf("demo vertical lacks the profiles or login topic: %v", out)
	}
	return out
}

// benchRecord returns record i of the workload, with event time at.
// Profiles: 200,000 profiles over 50,000 accounts, created then updated;
// logins: 100,000 devices, 50,000 accounts, 80,000 ad users.
func benchRecord(tp benchTopics, i int, at time.Time) *sarama.ProducerMessage {
	if i%100 == 99 {
		return &sarama.ProducerMessage{Topic: tp.login, Key: sarama.StringEncoder("bad"), Value: sarama.StringEncoder(`{"request_id": "req-` + strconv.Itoa(i))}
	}
	n := i / 2
	if i%2 == 0 {
		p := n % 200_000
		op, before := "c", "null"
		if n >= 200_000 {
			op = "u"
			before = fmt.Sprintf(`{"profile_id":"p-%d","account_id":%d}`, p, 1000+p%50_000)
		}
		us := at.UnixMicro()
		v := fmt.Sprintf(`{"before":%s,"after":{"profile_id":"p-%d","account_id":%d,"name":"name %d","kids":%t,"language":"en","maturity_level":%d,"is_primary":%t,"created_at":"2023-02-14T18:21:00Z"},`+
			`"source":{"version":"2.7.3.Final","connector":"postgresql","name":"streaming","ts_ms":%d,"ts_us":%d,"snapshot":"false","db":"streaming","sequence":null,"schema":"public","table":"profiles","txId":%d,"lsn":%d,"xmin":null},`+
			`"op":"%s","ts_ms":%d,"transaction":null}`,
			before, p, 1000+p%50_000, n%997, p%5 == 0, 7+n%12, p%3 == 0, us/1000, us, 700+n, 24_000_000+int64(i)*8, op, us/1000)
		return &sarama.ProducerMessage{Topic: tp.profiles, Key: sarama.StringEncoder(fmt.Sprintf(`{"profile_id":"p-%d"}`, p)), Value: sarama.StringEncoder(v), Timestamp: at}
	}
	dev := fmt.Sprintf("d-%d", n%100_000)
	v := fmt.Sprintf(`{"request_id":"req-%d","ts":%q,"event":"login","account_id":%d,"device_id":%q,"ad_user_id":"u-%d","outcome":"success","ip_country":"NL","latency_ms":%d}`,
		i, at.UTC().Format(time.RFC3339Nano), 1000+(n*7)%50_000, dev, n%80_000, 20+n%200)
	return &sarama.ProducerMessage{Topic: tp.login, Key: sarama.StringEncoder(dev), Value: sarama.StringEncoder(v), Timestamp: at}
}

// freshnessWriter records, while armed, the age of every mutation's event
// time when the store acknowledges it.
type freshnessWriter struct {
	w     Writer
	armed atomic.Bool
	mu    sync.Mutex
	ages  []time.Duration
}

func (f *freshnessWriter) Apply(ctx context.Context, muts []graph.Mutation) error {
	if err := f.w.Apply(ctx, muts); err != nil {
		return err
	}
	if f.armed.Load() {
		now := time.Now()
		f.mu.Lock()
		for i := range muts {
			f.ages = append(f.ages, now.Sub(muts[i].EventTime))
		}
		f.mu.Unlock()
	}
	return nil
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS starts a new peak-RSS measurement (Linux: clear_refs 5).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is the process's peak resident set since resetPeakRSS, in bytes.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func benchEvents(tb testing.TB) int {
	v := os.Getenv("RTGRAPH_BENCH_EVENTS")
	if v == "" {
		return 1_000_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 10_000 {
		tb.Fatalf("RTGRAPH_BENCH_EVENTS=%q: want an integer of at least 10000", v)
	}
	return n
}

func runIngestBench(b *testing.B, open func(*testing.B) (benchStore, func()), base storeBaseline) {
	b.StopTimer()
	n := benchEvents(b)
	tp := benchTopics{profiles: uniqueName("bench_profiles"), login: uniqueName("bench_login"), dlq: uniqueName("bench_dlq")}
	const partitions = 6
	kc := realKafka(b, map[string]int32{tp.profiles: partitions, tp.login: partitions, tp.dlq: 1})
	store, closeStore := open(b)
	defer closeStore()

	// Publish the backlog.
	start := time.Now()
	publish(b, kc, n, func(i int) *sarama.ProducerMessage { return benchRecord(tp, i, time.Now()) })
	b.Logf("published %d records in %s", n, time.Since(start).Round(time.Millisecond))

	// 1. Throughput.
	cfg := DefaultConfig()
	cfg.GroupID = uniqueName("bench")
	cfg.Topics = benchDecoders(b, tp)
	cfg.DeadLetterTopic = tp.dlq
	fw := &freshnessWriter{w: store}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := NewPipeline(Options{Config: cfg, Kafka: kc, Mapper: benchMapper(b, tp), Writer: fw, Watermarks: store, Fold: mapping.Fold, Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	acked := func() int {
		total := 0.0
		for t := range cfg.Topics {
			total += testutil.ToFloat64(p.m.messages.WithLabelValues(t, outcomeWritten)) +
				testutil.ToFloat64(p.m.messages.WithLabelValues(t, outcomeDeadLettered))
		}
		return int(total)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	resetPeakRSS()
	joinStart := time.Now()
	go func() { done <- p.Run(ctx) }()
	// Joining a new group waits for the broker's initial rebalance delay
	// (3s by default); the throughput clock starts once partitions are owned.
	waitFor(b, "the group to be joined", time.Minute, func() bool { return testutil.ToFloat64(p.m.assigned) > 0 })
	join := time.Since(joinStart)
	cpu0 := cpuNow()
	start = time.Now()
	b.StartTimer()
	waitFor(b, "the backlog to be written", time.Hour, func() bool {
		select {
		case err := <-done:
			b.Fatalf("pipeline stopped: %v", err)
		default:
		}
		return acked() >= n
	})
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := cpuNow() - cpu0
	rss := peakRSS()
	muts := testutil.ToFloat64(p.m.mutations)
	rate := float64(n) / elapsed.Seconds()

	// 2. Freshness at a steady rate.
	fresh := min(rate/4, 5_000)
	const freshFor = 15 * time.Second
	fw.armed.Store(true)
	sent := steadyPublish(b, kc, tp, n, fresh, freshFor)
	waitFor(b, "the steady records to be written", 10*time.Minute, func() bool { return acked() >= n+sent })
	fw.armed.Store(false)
	cancel()
	if err := <-done; err != nil {
		b.Fatalf("pipeline: %v", err)
	}
	fw.mu.Lock()
	ages := slices.Clone(fw.ages)
	fw.mu.Unlock()
	slices.Sort(ages)
	quantile := func(q float64) time.Duration {
		if len(ages) == 0 {
			return 0
		}
		return ages[min(len(ages)-1, int(q*float64(len(ages))))]
	}

	// 3. Ceilings.
	kafkaRate := consumerCeiling(b, kc, []string{tp.profiles, tp.login}, n+sent)
	storeRate, storeMuts := base.run(b, tp, n, cfg.Batch.Count, 2*partitions)

	ceiling := min(kafkaRate, storeRate)
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(muts/elapsed.Seconds(), "mutations/s")
	b.ReportMetric(cpu.Seconds()/(float64(n)/1e6), "cpu-s/Mevents")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(quantile(0.5).Microseconds())/1000, "fresh-p50-ms")
	b.ReportMetric(float64(quantile(0.99).Microseconds())/1000, "fresh-p99-ms")
	b.ReportMetric(kafkaRate, "ceil-kafka-events/s")
	b.ReportMetric(storeRate, base.metric)
	b.ReportMetric(rate/ceiling, "ratio")
	b.Logf("pipeline: joined the group in %s, then %d events in %s = %.0f events/s, %.0f mutations/s (%.2f per event after fold), %.1f CPU s per million events, peak RSS %.0f MiB",
		join.Round(time.Millisecond), n, elapsed.Round(time.Millisecond), rate, muts/elapsed.Seconds(), muts/float64(n), cpu.Seconds()/(float64(n)/1e6), float64(rss)/(1<<20))
	b.Logf("freshness at %.0f events/s for %s: p50 %s, p99 %s over %d mutations", fresh, freshFor, quantile(0.5), quantile(0.99), len(ages))
	b.Logf("ceilings: no-op consumer group %.0f events/s; %s %.0f events/s (%.0f mutations/s); ratio %.2f", kafkaRate, base.label, storeRate, storeMuts, rate/ceiling)
}

// publish sends records 0..n-1 in batches.
func publish(tb testing.TB, kc KafkaConfig, n int, rec func(i int) *sarama.ProducerMessage) {
	sc, err := producerConfig(kc)
	if err != nil {
		tb.Fatal(err)
	}
	sc.Producer.Flush.MaxMessages = 1000
	prod, err := sarama.NewSyncProducer(kc.Brokers, sc)
	if err != nil {
		tb.Fatal(err)
	}
	defer prod.Close()
	const chunk = 5000
	for i := 0; i < n; i += chunk {
		msgs := make([]*sarama.ProducerMessage, 0, chunk)
		for j := i; j < min(i+chunk, n); j++ {
			msgs = append(msgs, rec(j))
		}
		if err := prod.SendMessages(msgs); err != nil {
			tb.Fatalf("publish: %v", err)
		}
	}
}

// steadyPublish publishes at rate records per second for d, each stamped
// with the time it is sent; it returns how many it sent.
func steadyPublish(tb testing.TB, kc KafkaConfig, tp benchTopics, from int, rate float64, d time.Duration) int {
	sc, err := producerConfig(kc)
	if err != nil {
		tb.Fatal(err)
	}
	prod, err := sarama.NewSyncProducer(kc.Brokers, sc)
	if err != nil {
		tb.Fatal(err)
	}
	defer prod.Close()
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	sent := 0
	for now := range t.C {
		if now.Sub(start) >= d {
			break
		}
		due := int(rate*now.Sub(start).Seconds()) - sent
		if due <= 0 {
			continue
		}
		msgs := make([]*sarama.ProducerMessage, 0, due)
		for j := range due {
			msgs = append(msgs, benchRecord(tp, from+sent+j, time.Now()))
		}
		if err := prod.SendMessages(msgs); err != nil {
			tb.Fatalf("publish: %v", err)
		}
		sent += due
	}
	return sent
}

// ceilingHandler is a consumer group handler that only marks offsets.
type ceilingHandler struct{ seen atomic.Int64 }

func (h *ceilingHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *ceilingHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *ceilingHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		s.MarkMessage(m, "")
		h.seen.Add(1)
	}
	return nil
}

// consumerCeiling is the rate at which a sarama consumer group, configured
// as the pipeline's, reads total records and does nothing with them.
func consumerCeiling(tb testing.TB, kc KafkaConfig, topics []string, total int) float64 {
	cfg := DefaultConfig()
	sc, err := cfg.consumerConfig(kc)
	if err != nil {
		tb.Fatal(err)
	}
	g, err := sarama.NewConsumerGroup(kc.Brokers, uniqueName("bench_ceiling"), sc)
	if err != nil {
		tb.Fatal(err)
	}
	defer g.Close()
	go func() {
		for range g.Errors() {
		}
	}()
	h := &ceilingHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_ = g.Consume(ctx, topics, h)
		}
	}()
	waitFor(tb, "the no-op consumer", time.Hour, func() bool { return h.seen.Load() >= int64(total) })
	elapsed := time.Since(start)
	cancel()
	<-done
	return float64(total) / elapsed.Seconds()
}

// mappedChunks decodes, maps and folds records 0..n-1 (untimed), a chunk
// of 100,000 records at a time, into folded batches of batchCount records,
// each cut into Apply calls of at most 5,000 mutations; it calls fn with
// every chunk's batches and their number of mutations.
func mappedChunks(b *testing.B, tp benchTopics, n, batchCount int, fn func(batches [][][]graph.Mutation, muts int)) {
	decs := map[string]normalize.Decoder{}
	for t, c := range benchDecoders(b, tp) {
		d, err := normalize.New(c)
		if err != nil {
			b.Fatal(err)
		}
		decs[t] = d
	}
	m := benchMapper(b, tp)
	const chunk = 100_000
	at := time.Now()
	for from := 0; from < n; from += chunk {
		var folded [][]graph.Mutation
		var cur []graph.Mutation
		inBatch := 0
		for i := from; i < min(from+chunk, n); i++ {
			// Distinct, increasing event times, as publication gives the
			// pipeline's records: updates then really replace what they update.
			ev := at.Add(time.Duration(i) * time.Microsecond)
			pm := benchRecord(tp, i, ev)
			v, _ := pm.Value.Encode()
			k, _ := pm.Key.Encode()
			envs, err := decs[pm.Topic].Decode(normalize.Message{Topic: pm.Topic, Offset: int64(i), Key: k, Value: v, Timestamp: ev})
			if err == nil {
				for j := range envs {
					if muts, err := m.Map(context.Background(), &envs[j]); err == nil {
						cur = append(cur, muts...)
					}
				}
			}
			if inBatch++; inBatch == batchCount {
				folded = append(folded, mapping.Fold(cur))
				cur, inBatch = nil, 0
			}
		}
		if len(cur) > 0 {
			folded = append(folded, mapping.Fold(cur))
		}
		batches := make([][][]graph.Mutation, len(folded))
		total := 0
		for i, bt := range folded {
			total += len(bt)
			for off := 0; off < len(bt); off += 5000 {
				batches[i] = append(batches[i], bt[off:min(off+5000, len(bt))])
			}
		}
		fn(batches, total)
	}
}

// applyChunk applies batches to store from writers concurrent writers,
// each taking the next folded batch and applying its calls in order.
func applyChunk(b *testing.B, store Writer, batches [][][]graph.Mutation, writers int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(batches) {
					return
				}
				for _, call := range batches[i] {
					if err := store.Apply(context.Background(), call); err != nil {
						b.Errorf("store apply: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// storeAlone times a fresh rtgraph store applying the mutations of the
// records, with no Kafka: the store's own speed, not a raw ceiling.
func storeAlone(open func(*testing.B) (benchStore, func())) func(b *testing.B, tp benchTopics, n, batchCount, writers int) (float64, float64) {
	return func(b *testing.B, tp benchTopics, n, batchCount, writers int) (float64, float64) {
		store, closeStore := open(b)
		defer closeStore()
		var elapsed time.Duration
		total := 0
		mappedChunks(b, tp, n, batchCount, func(batches [][][]graph.Mutation, muts int) {
			total += muts
			start := time.Now()
			applyChunk(b, store, batches, writers)
			elapsed += time.Since(start)
		})
		return float64(n) / elapsed.Seconds(), float64(total) / elapsed.Seconds()
	}
}

// pebbleCeiling is the raw ceiling of the embedded store's side: a bare
// Pebble database, opened with the options embedded.Open derives from the
// same configuration, committing blind (no reads) the exact batches the
// store commits for the mutations of the records, one commit per batch,
// fsynced as the store's are, from as many writers. Per chunk of records,
// untimed: a capture store (its own database, kept across chunks so that
// its writes follow from everything written before, reopened per chunk)
// applies the chunk's Apply calls from the same writers with
// embedded.Deps.CommitHook recording every batch it commits, then is
// closed, which waits for its flushes and compactions. Timed: the replay of
// those batches, each writer taking the next in commit order. The flushes
// and compactions of the bare database still running when a chunk's
// commits end finish outside the clock, so the ceiling errs high.
func pebbleCeiling(b *testing.B, tp benchTopics, n, batchCount, writers int) (float64, float64) {
	cfg := embedded.DefaultConfig()
	capCfg := cfg
	capCfg.Dir = b.TempDir()
	db := embeddedtest.OpenBare(b, cfg, b.TempDir())
	var elapsed time.Duration
	total := 0
	var capt embeddedtest.Capture
	mappedChunks(b, tp, n, batchCount, func(batches [][][]graph.Mutation, muts int) {
		total += muts
		cs, err := embedded.Open(capCfg, demoSchema(b), embedded.Deps{CommitHook: capt.Hook})
		if err != nil {
			b.Fatal(err)
		}
		applyChunk(b, cs, batches, writers)
		if err := cs.Close(); err != nil {
			b.Fatal(err)
		}
		raw := capt.Take(b)
		runtime.GC()
		start := time.Now()
		if _, err := embeddedtest.Replay(db, raw, writers, cfg.Sync); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		embeddedtest.WaitQuiet(db)
	})
	return float64(n) / elapsed.Seconds(), float64(total) / elapsed.Seconds()
}
