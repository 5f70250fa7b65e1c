//go:build cluster

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/internal/demogen"
)

// BenchmarkCluster measures rtgraph on the cluster of make test-cluster (3
// Cassandra nodes at replication factor 3, LOCAL_QUORUM; 3 KRaft brokers,
// topics of replication factor 3 with min.insync.replicas 2 and 6
// partitions), with real `rtgraph ingest` processes fed the built-in
// streaming vertical's generator (internal/demogen: CDC of four tables,
// request logs, ad impressions, 1 % malformed):
//
//   - throughput/ingest=K: K ingest processes in one group, started and in
//     the group before RTGRAPH_BENCH_CLUSTER_EVENTS records (default
//     50,000) are published as fast as Kafka takes them; events/s is
//     measured from the group's committed offsets between 10 % and 90 % of
//     the records, so neither start nor tail counts;
//   - recovery/FAULT: three ingest processes under a steady load of
//     RTGRAPH_BENCH_CLUSTER_RATE records/s (default 250) from the
//     generator; after a warm-up that sets the usual lag, one fault: a
//     Cassandra node killed (SIGKILL) and restarted after
//     RTGRAPH_BENCH_CLUSTER_HOLD (default 30s), the same for one broker, or
//     a rolling restart of the three ingest processes (SIGTERM, start,
//     ready, next). It reports the longest stall of the group's committed
//     offsets, the highest lag, and the recovery time: from the end of the
//     fault (the server answering again, the last process ready) until the
//     lag is back at its warm-up level. At the end the group must catch up
//     with every published record.
//
// Run it with make bench-cluster; make test-cluster runs it once at a tiny
// size so that it keeps working. The figures are in docs/reliability.md.
func BenchmarkCluster(b *testing.B) {
	brokers, hosts, port, infra := clusterEnv(b)
	bin := buildBinary(b)
	events := benchEnvInt(b, "RTGRAPH_BENCH_CLUSTER_EVENTS", 50_000)
	rate := benchEnvInt(b, "RTGRAPH_BENCH_CLUSTER_RATE", 250)
	hold := benchEnvDuration(b, "RTGRAPH_BENCH_CLUSTER_HOLD", 30*time.Second)
	warm := min(hold, 20*time.Second)

	for k := 1; k <= 3; k++ {
		b.Run(fmt.Sprintf("throughput/ingest=%d", k), func(b *testing.B) {
			for range b.N {
				c := newBenchCluster(b, bin, brokers, hosts, port)
				meta, recs := c.generate(events)
				c.publishAll(meta)
				for range k {
					c.start()
				}
				c.waitBalanced()
				pub := time.Now()
				c.publishAll(recs)
				pubTook := time.Since(pub)
				total := c.eventRecords()
				t10, t90, done := c.sampleUntil(total, 30*time.Minute)
				rateK := 0.8 * float64(total) / t90.Sub(t10).Seconds()
				b.ReportMetric(rateK, "events/s")
				b.ReportMetric(rateK/float64(k), "events/s/process")
				b.Logf("%d ingest process(es): %d records (%d of them events) published in %s; %.0f events/s between 10%% and 90%%, all in %s",
					k, len(recs), total, pubTook.Round(time.Millisecond), rateK, done.Sub(pub).Round(time.Millisecond))
				c.stopAll()
			}
		})
	}

	faults := []struct {
		name string
		run  func(c *benchCluster) // the fault; returns when it is over
	}{
		{"broker-kill", func(c *benchCluster) {
			clusterNode(b, infra, "kill", "kafka", 3)
			time.Sleep(hold)
			clusterNode(b, infra, "start", "kafka", 3)
		}},
		{"rolling-restart", func(c *benchCluster) {
			for i := range c.procs {
				c.restart(i)
			}
		}},
		{"cassandra-node-kill", func(c *benchCluster) {
			clusterNode(b, infra, "kill", "cassandra", 2)
			time.Sleep(hold)
			clusterNode(b, infra, "start", "cassandra", 2)
		}},
	}
	for _, f := range faults {
		b.Run("recovery/"+f.name, func(b *testing.B) {
			for range b.N {
				c := newBenchCluster(b, bin, brokers, hosts, port)
				run := c.steady(rate) // the metadata is published now
				for range 3 {
					c.start()
				}
				c.waitBalanced()
				stopGen := run()
				s := c.sampler()
				time.Sleep(warm)
				base := s.maxLag()
				faultAt := time.Now()
				f.run(c)
				endAt := time.Now()
				recovered := s.waitLagAtMost(b, max(base, int64(rate)/2), endAt, 5*time.Minute)
				stall, stallAt, peak := s.stallAndPeak(faultAt)
				stopGen()
				s.stop()
				b.ReportMetric(recovered.Sub(endAt).Seconds(), "s-recovery")
				b.ReportMetric(stall.Seconds(), "s-longest-stall")
				b.ReportMetric(float64(peak), "peak-lag")
				b.Logf("%s at %d records/s: fault %s; longest stall %s, from %s after the fault began; peak lag %d (warm-up %d); back to the warm-up lag %s after the fault ended",
					f.name, rate, endAt.Sub(faultAt).Round(100*time.Millisecond), stall.Round(100*time.Millisecond),
					stallAt.Sub(faultAt).Round(100*time.Millisecond), peak, base, recovered.Sub(endAt).Round(100*time.Millisecond))
				// Nothing lost: the group catches up with every record the
				// generator had acknowledged.
				total := c.eventRecords()
				waitGroupCaughtUp(b, brokers, c.group, c.eventTopics(), 5*time.Minute)
				b.Logf("caught up with all %d event records", total)
				c.stopAll()
			}
		})
	}
}

func benchEnvInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func benchEnvDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		tb.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

// benchCluster is one run's own topics (prefixed), keyspace and consumer
// group on the shared cluster, and its ingest processes.
type benchCluster struct {
	b        *testing.B
	bin      string
	brokers  []string
	prefix   string
	group    string
	cfgFile  string
	vdir     string
	procs    []*demoProcess
	producer sarama.SyncProducer
}

func newBenchCluster(b *testing.B, bin string, brokers, hosts []string, port string) *benchCluster {
	b.Helper()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	c := &benchCluster{b: b, bin: bin, brokers: brokers, prefix: "b" + suffix + ".", group: "rtgraph-cluster-bench-" + suffix}
	keyspace := "rtgraph_cluster_bench_" + suffix
	dlq := "rtgraph.cluster-bench.dlq." + suffix

	topics := append(demogen.EventTopics(), demogen.MetadataTopics()...)
	c.vdir = filepath.Join(b.TempDir(), "streaming")
	copyVerticalWith(b, "../../verticals/streaming", c.vdir, func(sub, s string) string {
		if sub == "graph" {
			return s
		}
		for _, tp := range topics {
			s = regexp.MustCompile(`(^|[\s:\[,])`+regexp.QuoteMeta(tp)+`(:|\s|,|\]|$)`).ReplaceAllString(s, "${1}"+c.prefix+tp+"${2}")
		}
		return s
	})

	sc := clusterSaramaConfig()
	admin, err := sarama.NewClusterAdmin(brokers, sc)
	if err != nil {
		b.Fatal(err)
	}
	minISR := "2"
	compact := "compact"
	for _, tp := range append(topics, "dlq") {
		name, cfg := c.prefix+tp, map[string]*string{"min.insync.replicas": &minISR}
		if tp == "dlq" {
			name = dlq
		}
		parts := int32(6)
		for _, m := range demogen.MetadataTopics() {
			if tp == m {
				cfg["cleanup.policy"], parts = &compact, 1
			}
		}
		if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 3, ConfigEntries: cfg}, false); err != nil {
			b.Fatalf("create topic %s: %v", name, err)
		}
	}
	admin.Close()
	b.Cleanup(func() {
		if a, err := sarama.NewClusterAdmin(brokers, sc); err == nil {
			for _, tp := range topics {
				_ = a.DeleteTopic(c.prefix + tp)
			}
			_ = a.DeleteTopic(dlq)
			a.Close()
		}
		cluster := gocql.NewCluster(hosts...)
		cluster.Port, _ = strconv.Atoi(port)
		cluster.Timeout = 30 * time.Second
		if s, err := cluster.CreateSession(); err == nil {
			_ = s.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec()
			s.Close()
		}
	})

	c.cfgFile = filepath.Join(b.TempDir(), "rtgraph.yaml")
	if err := os.WriteFile(c.cfgFile, []byte(clusterConfig(brokers, hosts, port, keyspace, c.group, dlq)), 0o600); err != nil {
		b.Fatal(err)
	}
	clusterMigrate(b, bin, c.cfgFile, hosts, port)

	pc := sarama.NewConfig()
	pc.Version = sarama.V4_0_0_0
	pc.Producer.RequiredAcks = sarama.WaitForAll
	pc.Producer.Idempotent = true
	pc.Net.MaxOpenRequests = 1
	pc.Producer.Return.Successes = true
	pc.Producer.Retry.Max = 10
	pc.Producer.Flush.Frequency = 5 * time.Millisecond
	pc.Producer.Partitioner = sarama.NewHashPartitioner
	if c.producer, err = sarama.NewSyncProducer(brokers, pc); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.producer.Close() })
	return c
}

// clusterConfig is the configuration of every rtgraph process on the
// cluster: replication factor 3, LOCAL_QUORUM both ways.
func clusterConfig(brokers, hosts []string, port, keyspace, group, dlq string) string {
	quoted := func(xs []string) string {
		q := make([]string, len(xs))
		for i, x := range xs {
			q[i] = strconv.Quote(x)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return fmt.Sprintf(`store:
  backend: cassandra
kafka:
  brokers: %s
cassandra:
  hosts: %s
  port: %s
  keyspace: %s
  replication: {class: SimpleStrategy, replication_factor: 3}
  consistency: {read: LOCAL_QUORUM, write: LOCAL_QUORUM}
ingest:
  group_id: %s
  dead_letter_topic: %s
api:
  rate_limit: {requests_per_second: 0}
  # Three Cassandra nodes, three brokers and several rtgraph processes share
  # two cores here: reads get the largest budget, not the default 1 s.
  default_time_budget: 10s
`, quoted(brokers), quoted(hosts), port, keyspace, group, dlq)
}

func (c *benchCluster) eventTopics() []string {
	var out []string
	for _, tp := range demogen.EventTopics() {
		out = append(out, c.prefix+tp)
	}
	return out
}

// start starts one more ingest process and waits until it is ready (store
// open, caches loaded, in the group).
func (c *benchCluster) start() {
	c.procs = append(c.procs, startRole(c.b, c.bin, "ingest", 180*time.Second, "--config", c.cfgFile, "--vertical", c.vdir))
}

// restart stops ingest process i (SIGTERM, a clean stop) and starts its
// replacement, ready, in its place.
func (c *benchCluster) restart(i int) {
	d := c.procs[i]
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.b.Fatalf("stop ingest %d: %v", i, err)
	}
	<-d.exited
	c.procs[i] = startRole(c.b, c.bin, "ingest", 180*time.Second, "--config", c.cfgFile, "--vertical", c.vdir)
}

var assignedPartitions = regexp.MustCompile(`(?m)^rtgraph_ingest_assigned_partitions (\S+)$`)

// waitBalanced waits until the group's rebalances are over: every process
// owns some partitions and together they own every partition of the event
// topics.
func (c *benchCluster) waitBalanced() {
	want := 6 * len(demogen.EventTopics())
	c.procs[0].waitFor(fmt.Sprintf("%d processes owning the %d partitions", len(c.procs), want), 120*time.Second, func() bool {
		total := 0
		for _, d := range c.procs {
			_, body := d.get("/metrics")
			m := assignedPartitions.FindSubmatch(body)
			if m == nil {
				return false
			}
			n, err := strconv.Atoi(string(m[1]))
			if err != nil || n == 0 {
				return false
			}
			total += n
		}
		return total == want
	})
}

func (c *benchCluster) stopAll() {
	for _, d := range c.procs {
		d.stop()
	}
	c.procs = nil
}

// prefixed is a demogen.Producer that sends to this run's topics, or keeps
// the messages (when keep is set) instead of sending them.
type prefixed struct {
	c    *benchCluster
	mu   sync.Mutex
	keep *[]*sarama.ProducerMessage
}

func (p *prefixed) SendMessages(msgs []*sarama.ProducerMessage) error {
	for _, m := range msgs {
		// The generator sends a failed message again as it is: prefix once.
		if !strings.HasPrefix(m.Topic, p.c.prefix) {
			m.Topic = p.c.prefix + m.Topic
		}
	}
	if p.keep != nil {
		p.mu.Lock()
		*p.keep = append(*p.keep, msgs...)
		p.mu.Unlock()
		return nil
	}
	return p.c.producer.SendMessages(msgs)
}

// events is the number of kept records that are not metadata.
func (p *prefixed) events() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, m := range *p.keep {
		if !p.c.isMetadata(m.Topic) {
			n++
		}
	}
	return n
}

func benchGenConfig(rate float64) demogen.Config {
	g := demogen.DefaultConfig()
	g.Rate = rate
	g.Seed = uint64(time.Now().UnixNano())
	g.Accounts, g.AnonymousUsers, g.Titles, g.Campaigns = 20000, 50000, 2000, 100
	return g
}

// generate returns the metadata and then about n records of the
// generator, unsent.
func (c *benchCluster) generate(n int) (meta, events []*sarama.ProducerMessage) {
	var kept []*sarama.ProducerMessage
	p := &prefixed{c: c, keep: &kept}
	gen, err := demogen.New(benchGenConfig(20000), p, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		c.b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gen.Run(ctx) }()
	for p.events() < n {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		c.b.Fatal(err)
	}
	for _, m := range kept {
		if c.isMetadata(m.Topic) {
			meta = append(meta, m)
		} else {
			events = append(events, m)
		}
	}
	return meta, events
}

func (c *benchCluster) isMetadata(topic string) bool {
	for _, m := range demogen.MetadataTopics() {
		if topic == c.prefix+m {
			return true
		}
	}
	return false
}

// publishAll publishes msgs in large batches.
func (c *benchCluster) publishAll(msgs []*sarama.ProducerMessage) {
	const batch = 2000
	for from := 0; from < len(msgs); from += batch {
		if err := c.producer.SendMessages(msgs[from:min(from+batch, len(msgs))]); err != nil {
			c.b.Fatalf("publish: %v", err)
		}
	}
}

// steady publishes the generator's metadata into this run's topics and
// returns run, which starts the generator at rate records/s and returns
// stop.
func (c *benchCluster) steady(rate int) (run func() (stop func())) {
	gen, err := demogen.New(benchGenConfig(float64(rate)), &prefixed{c: c}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		c.b.Fatal(err)
	}
	if err := gen.SeedMetadata(context.Background()); err != nil {
		c.b.Fatal(err)
	}
	return func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- gen.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				c.b.Error(err)
			}
			st := gen.Stats()
			c.b.Logf("generator: %d records acknowledged, %d send failures (retried)", st.Records, st.SendFailures)
		}
	}
}

// eventRecords is the number of records in the event topics (their end
// offsets summed).
func (c *benchCluster) eventRecords() int64 {
	client, err := sarama.NewClient(c.brokers, clusterSaramaConfig())
	if err != nil {
		c.b.Fatal(err)
	}
	defer client.Close()
	var n int64
	for _, tp := range c.eventTopics() {
		ps, err := client.Partitions(tp)
		if err != nil {
			c.b.Fatal(err)
		}
		for _, p := range ps {
			end, err := client.GetOffset(tp, p, sarama.OffsetNewest)
			if err != nil {
				c.b.Fatal(err)
			}
			n += end
		}
	}
	return n
}

func clusterSaramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V4_0_0_0
	return sc
}

// sampleUntil samples the group's committed offsets until they reach total
// and returns when they passed 10 % and 90 % of it, and when they reached it.
func (c *benchCluster) sampleUntil(total int64, limit time.Duration) (t10, t90, done time.Time) {
	client, err := sarama.NewClient(c.brokers, clusterSaramaConfig())
	if err != nil {
		c.b.Fatal(err)
	}
	defer client.Close()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		lag, _, err := lagOf(client, c.group, c.eventTopics())
		now := time.Now()
		if err == nil {
			committed := total - lag
			if t10.IsZero() && committed*10 >= total {
				t10 = now
			}
			if t90.IsZero() && committed*10 >= total*9 {
				t90 = now
			}
			if lag == 0 {
				if t10.Equal(t90) { // too few records to tell apart
					c.b.Logf("every record committed between two samples: the figure is a lower bound")
					t10 = t90.Add(-250 * time.Millisecond)
				}
				return t10, t90, now
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.b.Fatalf("group %s did not commit %d records in %s", c.group, total, limit)
	return
}

// lagSampler records the group's lag and committed total every 250 ms.
type lagSampler struct {
	mu      sync.Mutex
	samples []lagSample
	quit    chan struct{}
	done    chan struct{}
}

type lagSample struct {
	at        time.Time
	lag       int64
	committed int64
}

func (c *benchCluster) sampler() *lagSampler {
	s := &lagSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		client, err := sarama.NewClient(c.brokers, clusterSaramaConfig())
		if err != nil {
			c.b.Error(err)
			return
		}
		defer func() { client.Close() }()
		for {
			select {
			case <-s.quit:
				return
			case <-time.After(250 * time.Millisecond):
			}
			lag, committed, err := lagOf(client, c.group, c.eventTopics())
			if err != nil {
				// A broker down: reconnect on the next sample.
				client.Close()
				if client, err = sarama.NewClient(c.brokers, clusterSaramaConfig()); err != nil {
					return
				}
				continue
			}
			s.mu.Lock()
			s.samples = append(s.samples, lagSample{time.Now(), lag, committed})
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *lagSampler) stop() {
	close(s.quit)
	<-s.done
}

func (s *lagSampler) maxLag() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m int64
	for _, x := range s.samples {
		m = max(m, x.lag)
	}
	return m
}

// waitLagAtMost waits until three samples in a row taken after from have a
// lag of at most limit, and returns the time of the first of them.
func (s *lagSampler) waitLagAtMost(tb testing.TB, limit int64, from time.Time, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		run, first := 0, time.Time{}
		for _, x := range s.samples {
			if x.at.Before(from) {
				continue
			}
			if x.lag <= limit {
				if run == 0 {
					first = x.at
				}
				run++
			} else {
				run = 0
			}
		}
		s.mu.Unlock()
		if run >= 3 {
			return first
		}
		time.Sleep(250 * time.Millisecond)
	}
	tb.Fatalf("lag not back to %d within %s of the fault's end", limit, timeout)
	return time.Time{}
}

// stallAndPeak returns, from the samples taken since from, the longest time
// the committed total did not move while there was lag and when it began,
// and the highest lag.
func (s *lagSampler) stallAndPeak(from time.Time) (time.Duration, time.Time, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var longest time.Duration
	var longestAt time.Time
	var peak int64
	var since time.Time
	var last int64 = -1
	for _, x := range s.samples {
		if x.at.Before(from) {
			continue
		}
		peak = max(peak, x.lag)
		switch {
		case x.committed != last || x.lag == 0:
			since, last = x.at, x.committed
		case x.at.Sub(since) > longest:
			longest, longestAt = x.at.Sub(since), since
		}
	}
	return longest, longestAt, peak
}

// lagOf is the group's lag over topics and its committed total, read with
// an open client.
func lagOf(client sarama.Client, group string, topics []string) (lag, committed int64, err error) {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return 0, 0, err
	}
	parts := map[string][]int32{}
	for _, tp := range topics {
		ps, err := client.Partitions(tp)
		if err != nil {
			return 0, 0, err
		}
		parts[tp] = ps
	}
	offs, err := admin.ListConsumerGroupOffsets(group, parts)
	if err != nil {
		return 0, 0, err
	}
	for tp, ps := range parts {
		for _, p := range ps {
			end, err := client.GetOffset(tp, p, sarama.OffsetNewest)
			if err != nil {
				return 0, 0, err
			}
			var done int64
			if blk := offs.GetBlock(tp, p); blk != nil && blk.Offset > 0 {
				done = blk.Offset
			}
			lag += max(0, end-done)
			committed += done
		}
	}
	return lag, committed, nil
}

// clusterMigrate runs `rtgraph migrate` once the cluster agrees on its
// schema. A Cassandra node restarted a moment ago can hold an older schema
// for a while (it pulls the changes it missed, such as the previous run's
// DROP KEYSPACE, through gossip); a schema change then fails with "cluster
// schema versions not consistent" until they converge, as it would for an
// operator. The wait is the test's, not rtgraph's.
func clusterMigrate(tb testing.TB, bin, cfgFile string, hosts []string, port string) {
	tb.Helper()
	cluster := gocql.NewCluster(hosts...)
	cluster.Port, _ = strconv.Atoi(port)
	cluster.Timeout = 30 * time.Second
	cluster.MaxWaitSchemaAgreement = 3 * time.Minute
	s, err := cluster.CreateSession()
	if err != nil {
		tb.Fatalf("session for the schema agreement: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	if err := s.AwaitSchemaAgreement(ctx); err != nil {
		tb.Logf("no schema agreement after %s: %v", time.Since(began).Round(time.Second), err)
	} else if d := time.Since(began); d > time.Second {
		tb.Logf("the cluster agreed on its schema after %s", d.Round(100*time.Millisecond))
	}
	s.Close()
	if out, err := exec.Command(bin, "migrate", "--config", cfgFile).CombinedOutput(); err != nil {
		tb.Fatalf("migrate: %v\n%s", err, out)
	}
}
