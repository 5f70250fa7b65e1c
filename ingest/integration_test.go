package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/cassandra"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/internal/testenv"
	"github.com/rtgraph/rtgraph/schemas"
)

// Integration tests against the real Kafka broker (and real Cassandra):
// `make test` starts them; see internal/testenv.

// itTimeout bounds each wait of the integration tests. They process their
// records in a minute or two on two idle cores with the race detector; the
// bound leaves room for a machine shared with other work.
const itTimeout = 15 * time.Minute

// recent is the start time of the records published to the real broker.
// Their Kafka timestamps must stay well within the broker's retention for
// the whole test (deploy/local keeps one hour), or the broker deletes them
// under the test's feet.
func recent() time.Time { return time.Now().Add(-2 * time.Minute).UTC().Truncate(time.Millisecond) }

// recordsForTest is the number of records an integration test publishes:
// def, or RTGRAPH_INGEST_IT_RECORDS when set (at least 1000).
func recordsForTest(t *testing.T, def int) int {
	t.Helper()
	v := os.Getenv("RTGRAPH_INGEST_IT_RECORDS")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1000 {
		t.Fatalf("RTGRAPH_INGEST_IT_RECORDS=%q: want an integer of at least 1000", v)
	}
	return n
}

// realKafka returns the connection to the real broker and creates the
// named topics (deleted when the test ends).
func realKafka(t testing.TB, topics map[string]int32) KafkaConfig {
	t.Helper()
	kc := DefaultKafkaConfig()
	kc.Brokers = []string{testenv.Kafka(t)}
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	sc.Metadata.Retry.Max = 20
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	admin, err := sarama.NewClusterAdmin(kc.Brokers, sc)
	if err != nil {
		t.Fatalf("kafka at %s: %v", kc.Brokers[0], err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	for name, n := range topics {
		if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: n, ReplicationFactor: 1}, false); err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
		t.Cleanup(func() {
			if err := admin.DeleteTopic(name); err != nil {
				t.Logf("delete topic %s: %v", name, err)
			}
		})
	}
	// Topic metadata reaches every broker shortly after creation.
	waitFor(t, "the topics to be visible", 30*time.Second, func() bool {
		md, err := admin.DescribeTopics(mapsKeysOf(topics))
		if err != nil {
			return false
		}
		for _, m := range md {
			if !errors.Is(m.Err, sarama.ErrNoError) || len(m.Partitions) != int(topics[m.Name]) {
				return false
			}
		}
		return true
	})
	return kc
}

func mapsKeysOf(m map[string]int32) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func openEmbedded(t testing.TB, dir string) *embedded.Store {
	t.Helper()
	cfg := embedded.DefaultConfig()
	cfg.Dir = dir
	s, err := embedded.Open(cfg, testSchema(t), embedded.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestIntegrationPipeline publishes 100k mixed records (about 15% bad) to
// real Kafka, then:
//   - runs the pipeline uninterrupted into a Pebble store and checks every
//     node and edge against the reference and every bad record in the
//     dead-letter topic with its class and reason;
//   - rewinds that group to the middle of the records (RewindGroup, by
//     timestamp), runs it again, and checks that exactly the rewound records
//     were processed and the graph is the single pass's;
//   - runs it again under another group in child processes, killing the
//     first with SIGKILL midway (no flush, no commit) and restarting it,
//     and checks the final state is identical to the uninterrupted run's.
func TestIntegrationPipeline(t *testing.T) {
	topic, dlq := uniqueName("ingest_it"), uniqueName("ingest_it_dlq")
	kc := realKafka(t, map[string]int32{topic: 6, dlq: 2})
	n := recordsForTest(t, 100_000)
	const users, items = 2000, 3000
	recs := mixedRecords(rand.New(rand.NewPCG(10, 10)), n, users, items, recent())
	produceRecords(t, kc, topic, recs)
	want := referenceState(t, recs, users, items)

	var uninterrupted string
	onceDir := t.TempDir()
	cfg := kafkaTestConfig(uniqueName("g_once"), topic, dlq)
	t.Run("uninterrupted", func(t *testing.T) {
		store := openEmbedded(t, onceDir)
		defer store.Close()
		r := startPipeline(t, cfg, kc, store, store, &testMapper{})
		waitCommitted(t, kc, cfg.GroupID, topic, itTimeout)
		if err := r.stop(t); err != nil {
			t.Fatalf("Run = %v", err)
		}
		uninterrupted = dumpState(t, store, names("u", users), names("i", items))
		if uninterrupted != want {
			t.Fatalf("graph differs from the reference (%d vs %d bytes)", len(uninterrupted), len(want))
		}
		checkDeadLetters(t, readAll(t, kc, dlq), recs, topic)
		ws, err := store.Watermarks(context.Background())
		if err != nil || len(ws) != 6 {
			t.Fatalf("watermarks = %+v, %v", ws, err)
		}
		for _, w := range ws {
			if w.Lag() != 0 || w.Source.Group != cfg.GroupID {
				t.Errorf("watermark %+v after catching up", w)
			}
		}
	})
	if uninterrupted == "" {
		t.Fatal("no uninterrupted run to compare with")
	}

	t.Run("rewound and re-derived", func(t *testing.T) {
		to := recs[n/2].ts
		rw, err := RewindGroup(context.Background(), kc, cfg.GroupID, []string{topic}, to)
		if err != nil {
			t.Fatal(err)
		}
		rewound := int64(0)
		for _, x := range rw {
			if x.To >= x.From {
				t.Errorf("partition %d not rewound: %+v", x.Partition, x)
			}
			rewound += x.From - x.To
		}
		if rewound < int64(n/3) || rewound > int64(2*n/3) {
			t.Errorf("rewound %d records to %s, want about half of %d", rewound, to, n)
		}
		store := openEmbedded(t, onceDir)
		defer store.Close()
		r := startPipeline(t, cfg, kc, store, store, &testMapper{})
		waitCommitted(t, kc, cfg.GroupID, topic, itTimeout)
		if err := r.stop(t); err != nil {
			t.Fatalf("Run = %v", err)
		}
		processed := testutil.ToFloat64(r.p.m.messages.WithLabelValues(topic, outcomeWritten)) +
			testutil.ToFloat64(r.p.m.messages.WithLabelValues(topic, outcomeDeadLettered))
		if int64(processed) != rewound {
			t.Errorf("re-derivation processed %v records, want the %d rewound", processed, rewound)
		}
		if got := dumpState(t, store, names("u", users), names("i", items)); got != uninterrupted {
			t.Fatalf("graph after rewind and re-derivation differs from the single pass")
		}
	})

	t.Run("killed and restarted", func(t *testing.T) {
		dir := t.TempDir()
		spec := childSpec{Brokers: kc.Brokers, Group: uniqueName("g_kill"), Topic: topic, DLQ: dlq, Store: "embedded", Dir: dir}
		child := startChild(t, spec, "first")
		waitFor(t, "the first process to commit a third of the records", itTimeout, func() bool {
			c, _ := offsets(t, kc, spec.Group, topic)
			sum := int64(0)
			for _, o := range c {
				sum += max(0, o)
			}
			return sum > int64(n/3)
		})
		if err := child.Process.Kill(); err != nil { // SIGKILL: no flush, no commit, no leave
			t.Fatal(err)
		}
		_ = child.Wait()
		committed, _ := offsets(t, kc, spec.Group, topic)
		child = startChild(t, spec, "restarted")
		waitCommitted(t, kc, spec.Group, topic, itTimeout)
		stopChild(t, child)

		store := openEmbedded(t, dir)
		defer store.Close()
		if got := dumpState(t, store, names("u", users), names("i", items)); got != uninterrupted {
			t.Fatalf("state after a kill and restart differs from the uninterrupted run (%d vs %d bytes); committed at kill: %v",
				len(got), len(uninterrupted), committed)
		}
	})
}

// TestIntegrationTwoProcessesOneKilled runs two ingest processes in one
// group writing to real Cassandra, kills one with SIGKILL midway, publishes
// more, and checks that the survivor takes over and nothing is lost.
func TestIntegrationTwoProcessesOneKilled(t *testing.T) {
	topic, dlq := uniqueName("ingest_2p"), uniqueName("ingest_2p_dlq")
	kc := realKafka(t, map[string]int32{topic: 6, dlq: 1})
	ccfg := cassandraForTest(t)
	const n, users, items = 30_000, 500, 500
	recs := mixedRecords(rand.New(rand.NewPCG(11, 11)), n, users, items, recent())
	produceRecords(t, kc, topic, recs[:20_000])

	spec := childSpec{Brokers: kc.Brokers, Group: uniqueName("g_2p"), Topic: topic, DLQ: dlq, Store: "cassandra",
		CassandraHosts: ccfg.Hosts, CassandraPort: ccfg.Port, Keyspace: ccfg.Keyspace}
	a := startChild(t, spec, "a")
	b := startChild(t, spec, "b")
	waitFor(t, "a third of the records to be committed", itTimeout, func() bool {
		c, _ := offsets(t, kc, spec.Group, topic)
		sum := int64(0)
		for _, o := range c {
			sum += max(0, o)
		}
		return sum > 20_000/3
	})
	if err := a.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = a.Wait()
	produceRecords(t, kc, topic, recs[20_000:])
	// The survivor gets the dead member's partitions once its session times out.
	waitCommitted(t, kc, spec.Group, topic, itTimeout)
	stopChild(t, b)

	session, err := cassandra.NewSession(context.Background(), ccfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	store, err := cassandra.New(session, ccfg, testSchema(t), cassandra.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if got, want := dumpState(t, store, names("u", users), names("i", items)), referenceState(t, recs, users, items); got != want {
		t.Fatalf("graph in Cassandra differs from the reference (%d vs %d bytes)", len(got), len(want))
	}
	checkDeadLetters(t, readAll(t, kc, dlq), recs, topic)
	ws, err := store.Watermarks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, hwm := offsets(t, kc, spec.Group, topic)
	found := 0
	for _, w := range ws {
		if w.Source.Group == spec.Group {
			found++
			if w.Offset != hwm[w.Source.Partition] {
				t.Errorf("watermark %+v, want offset %d", w, hwm[w.Source.Partition])
			}
		}
	}
	if found != 6 {
		t.Errorf("%d watermarks for the group, want 6", found)
	}
}

// TestIntegrationStaticMemberRestart: a static member killed with kill -9
// and started again under the same instance id gets its partitions back
// without waiting for its old incarnation: the records published meanwhile
// are committed within 45 s, where a new dynamic member would wait for the
// dead one to rejoin for the 90 s rebalance timeout (or its 2-minute
// session to expire) first.
func TestIntegrationStaticMemberRestart(t *testing.T) {
	topic, dlq := uniqueName("ingest_static"), uniqueName("ingest_static_dlq")
	kc := realKafka(t, map[string]int32{topic: 3, dlq: 1})
	const n, users, items = 3_000, 50, 50
	recs := mixedRecords(rand.New(rand.NewPCG(13, 13)), n, users, items, recent())
	produceRecords(t, kc, topic, recs[:n/2])
	spec := childSpec{Brokers: kc.Brokers, Group: uniqueName("g_static"), Topic: topic, DLQ: dlq, Store: "embedded",
		Dir: t.TempDir(), InstanceID: "ingest-static-1", SessionTimeout: 2 * time.Minute, RebalanceTimeout: 90 * time.Second}
	a := startChild(t, spec, "a")
	waitCommitted(t, kc, spec.Group, topic, itTimeout)
	if err := a.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = a.Wait()
	killed := time.Now()
	produceRecords(t, kc, topic, recs[n/2:])
	b := startChild(t, spec, "b")
	waitCommitted(t, kc, spec.Group, topic, 45*time.Second)
	t.Logf("restarted static member committed everything %s after the kill", time.Since(killed).Round(time.Second))
	stopChild(t, b)
}

// cassandraForTest migrates a keyspace of its own on the real Cassandra and
// drops it when the test ends.
func cassandraForTest(t testing.TB) cassandra.Config {
	t.Helper()
	host, port, err := net.SplitHostPort(testenv.Cassandra(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := cassandra.DefaultConfig()
	cfg.Hosts = []string{host}
	if cfg.Port, err = strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	cfg.Keyspace = "rtgraph_ingest_" + uniqueName("t")[len("t_"):]
	cfg.Keyspace = cfg.Keyspace[:min(len(cfg.Keyspace), 48)]
	cfg.Timeout = 30 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s, err := cassandra.NewSession(ctx, cfg, nil)
		if err != nil {
			t.Logf("drop keyspace %s: %v", cfg.Keyspace, err)
			return
		}
		defer s.Close()
		if err := s.Query("DROP KEYSPACE IF EXISTS " + cfg.Keyspace).ExecContext(ctx); err != nil {
			t.Logf("drop keyspace %s: %v", cfg.Keyspace, err)
		}
	})
	if _, err := cassandra.Migrate(ctx, cfg, schemas.CQLMigrations(), nil); err != nil {
		t.Fatalf("migrate %s: %v", cfg.Keyspace, err)
	}
	return cfg
}

// childSpec tells a child process which pipeline to run.
type childSpec struct {
	Brokers        []string
	Group          string
	Topic, DLQ     string
	Store          string // embedded or cassandra
	Dir            string
	CassandraHosts []string
	CassandraPort  int
	Keyspace       string
	InstanceID     string        // static group membership when set
	SessionTimeout time.Duration // 0: the test default
	// RebalanceTimeout 0: the test default.
	RebalanceTimeout time.Duration
}

const childEnv = "RTGRAPH_INGEST_TEST_CHILD"

// startChild runs this test binary as an ingest process (see childMain).
func startChild(t *testing.T, spec childSpec, name string) *exec.Cmd {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("process %s log:\n%s", name, tail(out, 4000))
		}
		_ = logf.Close()
	})
	return cmd
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// stopChild asks a child to stop (SIGTERM) and checks it stopped cleanly.
func stopChild(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ingest process exited with %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("ingest process did not stop within 2 minutes")
	}
}

// childMain is an ingest process: a pipeline over the spec's topic into the
// spec's store, until SIGTERM. It returns the exit code.
func childMain(raw string) int {
	var spec childSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child spec:", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	schema, err := graph.LoadSchema(os.DirFS("testdata/schema"), ".")
	if err != nil {
		logger.Error("schema", "err", err)
		return 2
	}
	var store interface {
		Writer
		WatermarkWriter
		Close() error
	}
	switch spec.Store {
	case "embedded":
		cfg := embedded.DefaultConfig()
		cfg.Dir = spec.Dir
		s, err := embedded.Open(cfg, schema, embedded.Deps{Logger: logger})
		if err != nil {
			logger.Error("open store", "err", err)
			return 2
		}
		store = s
	case "cassandra":
		cfg := cassandra.DefaultConfig()
		cfg.Hosts, cfg.Port, cfg.Keyspace = spec.CassandraHosts, spec.CassandraPort, spec.Keyspace
		session, err := cassandra.NewSession(ctx, cfg, logger)
		if err != nil {
			logger.Error("cassandra session", "err", err)
			return 2
		}
		defer session.Close()
		s, err := cassandra.New(session, cfg, schema, cassandra.Options{Logger: logger})
		if err != nil {
			logger.Error("cassandra store", "err", err)
			return 2
		}
		store = s
	default:
		logger.Error("unknown store", "store", spec.Store)
		return 2
	}
	defer store.Close()
	kc := DefaultKafkaConfig()
	kc.Brokers = spec.Brokers
	cfg := kafkaTestConfig(spec.Group, spec.Topic, spec.DLQ)
	cfg.AutoCommitInterval = time.Second
	cfg.InstanceID = spec.InstanceID
	if spec.SessionTimeout > 0 {
		cfg.SessionTimeout = spec.SessionTimeout
	}
	if spec.RebalanceTimeout > 0 {
		cfg.RebalanceTimeout = spec.RebalanceTimeout
	}
	p, err := NewPipeline(Options{Config: cfg, Kafka: kc, Mapper: &testMapper{}, Writer: store, Watermarks: store, Logger: logger})
	if err != nil {
		logger.Error("pipeline", "err", err)
		return 2
	}
	if err := p.Run(ctx); err != nil {
		logger.Error("pipeline stopped", "err", err)
		return 1
	}
	return 0
}
