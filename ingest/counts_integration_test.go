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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/IBM/sarama"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/cassandra"
	"github.com/rtgraph/rtgraph/internal/testenv"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/normalize"
	"github.com/rtgraph/rtgraph/schemas"
)

// The frequency-cap path end to end, on real Kafka and real Cassandra:
// impression request logs → normalize → mapping (impressed edges to the
// campaign and the creative) → the graph store and the count store.
//
// Impressions reach the count store through fcapMapper, which records the
// impressions of each envelope (graph.CountRules.Impressions with the
// envelope id) before handing its mutations on. That keeps the pipeline's
// guarantee: a record's offset is marked only after its batch is written,
// and by then its impressions are acknowledged too; a redelivery records
// them again, which changes nothing.

const (
	fcapChildEnv    = "RTGRAPH_FCAP_TEST_CHILD"
	fcapRecords     = 200_000
	fcapDupShare    = 10 // percent of records that republish an earlier event
	fcapUsers       = 2000
	fcapCampaigns   = 200
	fcapCreatives   = 4 // per campaign
	fcapPartitions  = 6
	fcapSampleUsers = 300
)

// fcapEvent is one impression request log.
type fcapEvent struct {
	ID       string `json:"id"`
	TS       int64  `json:"ts"` // unix milliseconds
	User     string `json:"user"`
	Campaign string `json:"campaign"`
	Creative string `json:"creative"`
}

// fcapStream draws fcapRecords records: distinct events, and fcapDupShare%
// republications of earlier ones (same id, same body) later in the stream.
// Event times span the last 7 days and a little beyond (those beyond
// retention are dropped by the count store), out of order.
func fcapStream(rng *rand.Rand, now time.Time) []fcapEvent {
	out := make([]fcapEvent, 0, fcapRecords)
	for len(out) < fcapRecords {
		if len(out) > 100 && rng.IntN(100) < fcapDupShare {
			out = append(out, out[rng.IntN(len(out))])
			continue
		}
		var age time.Duration
		switch r := rng.IntN(100); {
		case r < 20: // the last hour
			age = time.Duration(rng.Int64N(int64(time.Hour)))
		case r < 99: // the last 7 days
			age = time.Duration(rng.Int64N(int64(graph.MaxWindow)))
		default: // beyond retention
			age = graph.MaxWindow + 2*time.Hour + time.Duration(rng.Int64N(int64(24*time.Hour)))
		}
		c := rng.IntN(fcapCampaigns)
		out = append(out, fcapEvent{
			ID:       fmt.Sprintf("imp-%07d", len(out)),
			TS:       now.Add(-age).UnixMilli(),
			User:     fmt.Sprintf("u%04d", rng.IntN(fcapUsers)),
			Campaign: fmt.Sprintf("c%03d", c),
			Creative: fmt.Sprintf("c%03d-k%d", c, rng.IntN(fcapCreatives)),
		})
	}
	return out
}

// fcapTopicConfig decodes the impression request logs.
func fcapTopicConfig() normalize.Config {
	return normalize.Config{
		Mapping:    "fcap",
		Format:     normalize.FormatRequestLog,
		EntityType: "impression",
		KeyFields:  []string{"user"},
		RequestLog: normalize.RequestLogConfig{IDField: "id", TimeField: "ts", TimeFormat: normalize.TimeUnixMs},
	}
}

// fcapMappingFile maps an impression to impressed edges from the user to
// the campaign and to the creative (the shipped ads mapping also joins the
// campaigns cache; this one needs no cache).
func fcapMappingFile(topic string) fstest.MapFS {
	yaml := `rules:
  - name: fcap_impression
    select:
      topic: ` + topic + `
      ops: [create]
    emit:
      edges:
        - type: impressed
          from: {type: user, id: attrs.user}
          to: {type: campaign, id: attrs.campaign}
        - type: impressed
          from: {type: user, id: attrs.user}
          to: {type: creative, id: attrs.creative}
`
	return fstest.MapFS{"fcap.yaml": {Data: []byte(yaml)}}
}

// fcapMapper records each envelope's impressions, then returns its
// mutations. A transient count-store error is returned as it is, so the
// pipeline retries the envelope; a permanent one dead-letters the record.
type fcapMapper struct {
	inner  Mapper
	rules  *graph.CountRules
	counts graph.CountWriter
}

func (m *fcapMapper) Map(ctx context.Context, env *normalize.Envelope) ([]graph.Mutation, error) {
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

// fcapSpec is what a child ingest process is given.
type fcapSpec struct {
	Brokers        []string
	Group          string
	Topic, DLQ     string
	CassandraHosts []string
	CassandraPort  int
	Keyspace       string
}

func fcapCassandraConfig(t *testing.T) cassandra.Config {
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
	cfg.Keyspace = "rtgraph_fcap_" + fmt.Sprint(time.Now().UnixNano())
	cfg.Timeout = 30 * time.Second
	return cfg
}

// TestIntegrationCountsExactAfterKill publishes 200k impression request logs
// (10% republished duplicates, out of order, some beyond retention) to real
// Kafka, consumes them into real Cassandra with a child ingest process that
// is SIGKILLed midway (no flush, no commit) and a second one that finishes,
// then compares every default window, as of now and as of 30 minutes ago,
// for a sample of users and every target they saw, with a count of the
// distinct impressions of the stream.
func TestIntegrationCountsExactAfterKill(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	ccfg := fcapCassandraConfig(t)
	ctx := context.Background()
	if _, err := cassandra.Migrate(ctx, ccfg, schemas.CQLMigrations(), nil); err != nil {
		t.Fatalf("migrate %s: %v", ccfg.Keyspace, err)
	}
	t.Cleanup(func() { fcapDropKeyspace(t, ccfg) })
	topic, dlq := uniqueName("fcap_it"), uniqueName("fcap_it_dlq")
	kc := DefaultKafkaConfig()
	kc.Brokers = brokers
	fcapCreateTopics(t, kc, map[string]int32{topic: fcapPartitions, dlq: 1})

	now := time.Now()
	events := fcapStream(rand.New(rand.NewPCG(7, 7)), now)
	recs := make([]testRecord, len(events))
	for i, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = testRecord{key: e.User, value: b, ts: time.UnixMilli(e.TS)}
	}
	produceRecords(t, kc, topic, recs)

	spec := fcapSpec{Brokers: brokers, Group: uniqueName("fcap_g"), Topic: topic, DLQ: dlq,
		CassandraHosts: ccfg.Hosts, CassandraPort: ccfg.Port, Keyspace: ccfg.Keyspace}
	first := fcapStartChild(t, spec, "first")
	// Kill it once it has committed about a third of the stream.
	deadline := time.Now().Add(10 * time.Minute)
	for {
		c, _ := offsets(t, kc, spec.Group, topic)
		var done int64
		for _, o := range c {
			done += max(0, o)
		}
		if done >= fcapRecords/3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first ingest process committed only %d records in 10 minutes", done)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := first.Process.Kill(); err != nil { // SIGKILL: no flush, no commit, no leave
		t.Fatal(err)
	}
	_ = first.Wait()
	atKill, ends := offsets(t, kc, spec.Group, topic)
	t.Logf("killed the first process with committed offsets %v of %v", atKill, ends)

	second := fcapStartChild(t, spec, "second")
	waitCommitted(t, kc, spec.Group, topic, 15*time.Minute)
	fcapStopChild(t, second)
	if dead := readAll(t, kc, dlq); len(dead) != 0 {
		reason := ""
		for _, h := range dead[0].Headers {
			if string(h.Key) == HeaderReason {
				reason = string(h.Value)
			}
		}
		t.Fatalf("%d records dead-lettered, want none; first reason: %s", len(dead), reason)
	}

	// Every impression was written at some time w before the check; the
	// store kept it iff its event time t > w − retention, so every t after
	// asOf − retention was kept (asOf ≥ w), and older ones lie outside every
	// window a valid query can ask for: the reference needs only the former.
	session, err := cassandra.NewSession(ctx, ccfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	schema, err := graph.LoadSchema(schemas.GraphSchema(), ".")
	if err != nil {
		t.Fatal(err)
	}
	st, err := cassandra.New(session, ccfg, schema, cassandra.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rules, err := graph.NewCountRules(graph.DefaultCountConfig(), schema)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := cassandra.NewCounts(st, rules, cassandra.CountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer counts.Close()
	fcapCompare(t, counts, events, rules.Retention())
}

// fcapCompare checks the counts of a sample of users against the events.
func fcapCompare(t *testing.T, counts graph.CountReader, events []fcapEvent, retention time.Duration) {
	t.Helper()
	asOf := time.Now().UTC().Truncate(time.Microsecond)
	type ident struct {
		user, target, id string
		at               int64
	}
	seen := map[ident]bool{}
	times := map[string]map[string][]int64{} // user → target key → event times (µs)
	for _, e := range events {
		at := time.UnixMilli(e.TS).UnixMicro()
		// Older than retention when checked: dropped or invisible to any
		// valid window, and not asked about below.
		if at <= asOf.Add(-retention).UnixMicro() {
			continue
		}
		for _, target := range []string{"campaign:" + e.Campaign, "creative:" + e.Creative} {
			id := ident{e.User, target, e.ID, at}
			if seen[id] {
				continue
			}
			seen[id] = true
			if times[e.User] == nil {
				times[e.User] = map[string][]int64{}
			}
			times[e.User][target] = append(times[e.User][target], at)
		}
	}
	users := make([]string, 0, len(times))
	for u := range times {
		users = append(users, u)
	}
	slices.Sort(users)
	rng := rand.New(rand.NewPCG(3, 3))
	rng.Shuffle(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
	users = users[:min(fcapSampleUsers, len(users))]
	checked := 0
	for _, u := range users {
		var targets []graph.NodeKey
		for k := range times[u] {
			typ, id, _ := strings.Cut(k, ":")
			targets = append(targets, graph.NodeKey{Type: typ, ID: id})
		}
		slices.SortFunc(targets, func(a, b graph.NodeKey) int { return strings.Compare(a.String(), b.String()) })
		for start := 0; start < len(targets); start += graph.MaxCountTargets {
			part := targets[start:min(start+graph.MaxCountTargets, len(targets))]
			for _, at := range []struct {
				asOf    time.Time
				windows []time.Duration
			}{
				{asOf, graph.DefaultWindows()},
				// 30 minutes back, the 7d window still lies in retention.
				{asOf.Add(-30 * time.Minute), graph.DefaultWindows()},
			} {
				res, err := counts.Counts(context.Background(), graph.CountQuery{
					User: graph.NodeKey{Type: "user", ID: u}, EdgeType: "impressed", Targets: part, Windows: at.windows, AsOf: at.asOf})
				if err != nil {
					t.Fatalf("counts of %s: %v", u, err)
				}
				for i, tc := range res.Targets {
					ts := times[u][part[i].String()]
					for j, w := range at.windows {
						var want int64
						for _, x := range ts {
							if x > at.asOf.Add(-w).UnixMicro() && x <= at.asOf.UnixMicro() {
								want++
							}
						}
						if tc.Counts[j] != want {
							t.Fatalf("user %s target %s window %s as of %s: %d, want %d", u, part[i], w, at.asOf, tc.Counts[j], want)
						}
						checked++
					}
				}
			}
		}
	}
	t.Logf("%d counts of %d users equal the reference", checked, len(users))
}

func fcapCreateTopics(t *testing.T, kc KafkaConfig, topics map[string]int32) {
	t.Helper()
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdmin(kc.Brokers, sc)
	if err != nil {
		t.Fatalf("kafka at %v: %v", kc.Brokers, err)
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
	waitFor(t, "the topics to be visible", 30*time.Second, func() bool {
		names := make([]string, 0, len(topics))
		for n := range topics {
			names = append(names, n)
		}
		md, err := admin.DescribeTopics(names)
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
}

func fcapDropKeyspace(t *testing.T, cfg cassandra.Config) {
	admin := cfg
	admin.Keyspace = "system"
	s, err := cassandra.NewSession(context.Background(), admin, nil)
	if err != nil {
		t.Logf("drop keyspace %s: %v", cfg.Keyspace, err)
		return
	}
	defer s.Close()
	if err := s.Query("DROP KEYSPACE IF EXISTS " + cfg.Keyspace).Exec(); err != nil {
		t.Logf("drop keyspace %s: %v", cfg.Keyspace, err)
	}
}

// fcapStartChild runs this test binary as an ingest process: the test
// TestFcapChildProcess, which does nothing unless fcapChildEnv is set.
func fcapStartChild(t *testing.T, spec fcapSpec, name string) *exec.Cmd {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFcapChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), fcapChildEnv+"="+string(b))
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
			if len(out) > 4000 {
				out = out[len(out)-4000:]
			}
			t.Logf("ingest process %s log:\n%s", name, out)
		}
		_ = logf.Close()
	})
	return cmd
}

// fcapStopChild stops a child with SIGTERM and checks it stopped cleanly.
func fcapStopChild(t *testing.T, cmd *exec.Cmd) {
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

// TestFcapChildProcess is the ingest process of
// TestIntegrationCountsExactAfterKill when run as a child (fcapChildEnv
// set); otherwise it returns at once. It exits the process itself, so the
// parent sees its exit code.
func TestFcapChildProcess(t *testing.T) {
	raw := os.Getenv(fcapChildEnv)
	if raw == "" {
		return
	}
	os.Exit(fcapChild(raw))
}

func fcapChild(raw string) int {
	var spec fcapSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child spec:", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	fail := func(what string, err error) int {
		logger.Error(what, "err", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	schema, err := graph.LoadSchema(schemas.GraphSchema(), ".")
	if err != nil {
		return fail("schema", err)
	}
	cfg := cassandra.DefaultConfig()
	cfg.Hosts, cfg.Port, cfg.Keyspace = spec.CassandraHosts, spec.CassandraPort, spec.Keyspace
	session, err := cassandra.NewSession(ctx, cfg, logger)
	if err != nil {
		return fail("cassandra session", err)
	}
	defer session.Close()
	st, err := cassandra.New(session, cfg, schema, cassandra.Options{Logger: logger})
	if err != nil {
		return fail("cassandra store", err)
	}
	defer st.Close()
	rules, err := graph.NewCountRules(graph.DefaultCountConfig(), schema)
	if err != nil {
		return fail("count rules", err)
	}
	counts, err := cassandra.NewCounts(st, rules, cassandra.CountOptions{Logger: logger})
	if err != nil {
		return fail("counts", err)
	}
	defer counts.Close()
	m, err := mapping.Load(fcapMappingFile(spec.Topic), schema, nil)
	if err != nil {
		return fail("mapping", err)
	}
	kc := DefaultKafkaConfig()
	kc.Brokers = spec.Brokers
	pcfg := kafkaTestConfig(spec.Group, spec.Topic, spec.DLQ)
	pcfg.Topics = map[string]normalize.Config{spec.Topic: fcapTopicConfig()}
	pcfg.AutoCommitInterval = time.Second
	p, err := NewPipeline(Options{Config: pcfg, Kafka: kc, Mapper: &fcapMapper{inner: m, rules: rules, counts: counts},
		Writer: st, Logger: logger})
	if err != nil {
		return fail("pipeline", err)
	}
	if err := p.Run(ctx); err != nil {
		logger.Error("pipeline stopped", "err", err)
		return 1
	}
	return 0
}
