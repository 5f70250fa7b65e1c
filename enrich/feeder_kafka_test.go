package enrich

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/rtgraph/rtgraph/ingest"
	"github.com/rtgraph/rtgraph/internal/testenv"
)

// broker is a Kafka to run the feeder against: how to reach it and how to
// make a compacted topic there.
type broker struct {
	kafka       ingest.KafkaConfig
	createTopic func(t *testing.T, name string, partitions int32)
}

func kfakeBroker(t *testing.T) broker {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	kc := ingest.DefaultKafkaConfig()
	kc.Brokers = c.ListenAddrs()
	return broker{kafka: kc, createTopic: func(t *testing.T, name string, partitions int32) { adminCreate(t, kc, name, partitions) }}
}

func realBroker(t *testing.T) broker {
	t.Helper()
	kc := ingest.DefaultKafkaConfig()
	kc.Brokers = []string{testenv.Kafka(t)}
	return broker{kafka: kc, createTopic: func(t *testing.T, name string, partitions int32) { adminCreate(t, kc, name, partitions) }}
}

// adminCreate creates a compacted topic and deletes it when the test ends.
func adminCreate(t *testing.T, kc ingest.KafkaConfig, name string, partitions int32) {
	t.Helper()
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdmin(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	compact := "compact"
	if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"cleanup.policy": &compact}}, false); err != nil {
		_ = admin.Close()
		t.Fatalf("create topic %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = admin.DeleteTopic(name)
		_ = admin.Close()
	})
}

func uniqueTopic(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s.%d.%s", prefix, time.Now().UnixNano(), hex.EncodeToString(b))
}

type record struct {
	key   string
	value string // "" is a tombstone
}

// produce writes records with a plain producer, or inside one transaction
// that is committed or aborted.
func produce(t *testing.T, kc ingest.KafkaConfig, topic string, recs []record, txn string, commit bool) {
	t.Helper()
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	if txn != "" {
		sc.Producer.Idempotent = true
		sc.Producer.Transaction.ID = txn
		sc.Net.MaxOpenRequests = 1
	}
	p, err := sarama.NewSyncProducer(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if txn != "" {
		if err := p.BeginTxn(); err != nil {
			t.Fatal(err)
		}
	}
	var msgs []*sarama.ProducerMessage
	for _, r := range recs {
		m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.key)}
		if r.value != "" {
			m.Value = sarama.StringEncoder(r.value)
		}
		msgs = append(msgs, m)
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if txn == "" {
		return
	}
	if commit {
		err = p.CommitTxn()
	} else {
		err = p.AbortTxn()
	}
	if err != nil {
		t.Fatalf("end transaction: %v", err)
	}
}

type runningEnricher struct {
	e      *Enricher
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func startEnricher(t *testing.T, kc ingest.KafkaConfig, caches ...CacheConfig) *runningEnricher {
	t.Helper()
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Caches = caches
	cfg.IdleProbe = 100 * time.Millisecond
	reg := prometheus.NewRegistry()
	e, err := New(cfg, kc.Brokers, sc, reg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningEnricher{e: e, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- e.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *runningEnricher) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(time.Minute):
		t.Fatal("enricher did not stop within a minute")
		return nil
	}
}

func (r *runningEnricher) waitLoaded(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.e.WaitLoaded(ctx); err != nil {
		t.Fatalf("WaitLoaded: %v", err)
	}
}

// checkState asserts that the cache holds exactly want (key → value of n).
func checkState(t *testing.T, c *Cache, want map[string]int64, absent ...string) {
	t.Helper()
	if c.Len() != len(want) {
		t.Errorf("cache holds %d documents, want %d", c.Len(), len(want))
	}
	for k, n := range want {
		doc, ok := c.lru.Peek(k)
		if !ok || doc["n"] != n {
			t.Errorf("key %s = %v, %v; want n=%d", k, doc, ok, n)
		}
	}
	for _, k := range absent {
		if _, ok := c.lru.Peek(k); ok {
			t.Errorf("key %s present", k)
		}
	}
}

// feedScenario is the feeder's behaviour on one broker: everything written
// before Run is in the cache the moment Loaded closes (latest value per key,
// tombstones applied, invalid values dropped, committed transactions in,
// aborted ones out, even when the partitions end with transaction markers),
// and later writes are followed.
func feedScenario(t *testing.T, b broker) {
	topic := uniqueTopic("rtgraph.test.titles")
	b.createTopic(t, topic, 3)
	var recs []record
	want := map[string]int64{}
	for i := range 30 {
		k := fmt.Sprintf("k%02d", i)
		recs = append(recs, record{k, fmt.Sprintf(`{"n":%d}`, i)})
		want[k] = int64(i)
	}
	for i := range 10 {
		k := fmt.Sprintf("k%02d", i)
		recs = append(recs, record{k, fmt.Sprintf(`{"n":%d}`, 100+i)})
		want[k] = int64(100 + i)
	}
	recs = append(recs, record{"k20", ""}, record{"k21", ""}, record{"k22", "not json"})
	delete(want, "k20")
	delete(want, "k21")
	delete(want, "k22")
	produce(t, b.kafka, topic, recs, "", false)
	// Transactions last, so that partitions end with commit and abort
	// markers, which a consumer never delivers.
	produce(t, b.kafka, topic, []record{{"tx1", `{"n":1001}`}, {"tx2", `{"n":1002}`}, {"tx3", `{"n":1003}`}}, uniqueTopic("txn-commit"), true)
	want["tx1"], want["tx2"], want["tx3"] = 1001, 1002, 1003
	produce(t, b.kafka, topic, []record{{"ab1", `{"n":-1}`}, {"k00", `{"n":-1}`}}, uniqueTopic("txn-abort"), false)

	r := startEnricher(t, b.kafka, CacheConfig{Name: "titles", Topic: topic})
	r.waitLoaded(t)
	c, _ := r.e.Cache("titles")
	checkState(t, c, want, "k20", "k21", "k22", "ab1")
	if got := testutil.ToFloat64(c.stats.loaded); got != 1 {
		t.Errorf("rtgraph_enrich_loaded = %v, want 1", got)
	}
	if got := testutil.ToFloat64(c.stats.invalid); got != 1 {
		t.Errorf("invalid records = %v, want 1", got)
	}

	// Live updates after loading.
	produce(t, b.kafka, topic, []record{{"k01", `{"n":777}`}, {"k02", ""}, {"new", `{"n":5}`}}, "", false)
	deadline := time.Now().Add(time.Minute)
	for {
		d1, ok1 := c.lru.Peek("k01")
		_, ok2 := c.lru.Peek("k02")
		d3, ok3 := c.lru.Peek("new")
		if ok1 && d1["n"] == int64(777) && !ok2 && ok3 && d3["n"] == int64(5) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live updates not applied within a minute: k01=%v k02 present=%v new=%v", d1, ok2, d3)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestFeederKfake(t *testing.T) { feedScenario(t, kfakeBroker(t)) }

// TestFeederKafka runs the same scenario against the real broker
// (RTGRAPH_TEST_KAFKA).
func TestFeederKafka(t *testing.T) { feedScenario(t, realBroker(t)) }

// TestFeederEmptyTopic: a topic with nothing in it is loaded at once.
func TestFeederEmptyTopic(t *testing.T) {
	b := kfakeBroker(t)
	topic := uniqueTopic("rtgraph.test.empty")
	b.createTopic(t, topic, 2)
	r := startEnricher(t, b.kafka, CacheConfig{Name: "a", Topic: topic})
	r.waitLoaded(t)
	c, _ := r.e.Cache("a")
	if c.Len() != 0 {
		t.Errorf("empty topic gave %d documents", c.Len())
	}
}

// TestFeederOnlyAborted: a partition holding nothing but an aborted
// transaction is loaded (by the probe) and caches nothing.
func TestFeederOnlyAborted(t *testing.T) {
	b := kfakeBroker(t)
	topic := uniqueTopic("rtgraph.test.aborted")
	b.createTopic(t, topic, 1)
	produce(t, b.kafka, topic, []record{{"a", `{"n":1}`}, {"b", `{"n":2}`}}, uniqueTopic("txn"), false)
	r := startEnricher(t, b.kafka, CacheConfig{Name: "a", Topic: topic})
	r.waitLoaded(t)
	c, _ := r.e.Cache("a")
	checkState(t, c, map[string]int64{}, "a", "b")
}

// TestFeederMissingTopic: Run fails with ErrNoTopic, and so does WaitLoaded.
func TestFeederMissingTopic(t *testing.T) {
	b := kfakeBroker(t)
	sc, err := b.kafka.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	sc.Metadata.Retry.Max = 1
	sc.Metadata.Retry.Backoff = 10 * time.Millisecond
	cfg := DefaultConfig()
	cfg.Caches = []CacheConfig{{Name: "a", Topic: "rtgraph.test.does-not-exist"}}
	e, err := New(cfg, b.kafka.Brokers, sc, prometheus.NewRegistry(), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	runErr := e.Run(context.Background())
	if !errors.Is(runErr, ErrNoTopic) {
		t.Fatalf("Run: %v, want ErrNoTopic", runErr)
	}
	if err := e.WaitLoaded(context.Background()); !errors.Is(err, ErrNoTopic) {
		t.Fatalf("WaitLoaded: %v", err)
	}
}

// TestFeederTwoCaches: Loaded waits for every cache.
func TestFeederTwoCaches(t *testing.T) {
	b := kfakeBroker(t)
	t1, t2 := uniqueTopic("rtgraph.test.one"), uniqueTopic("rtgraph.test.two")
	b.createTopic(t, t1, 1)
	b.createTopic(t, t2, 4)
	produce(t, b.kafka, t1, []record{{"x", `{"n":1}`}}, "", false)
	var recs []record
	want := map[string]int64{}
	for i := range 50 {
		recs = append(recs, record{fmt.Sprint("c", i), fmt.Sprintf(`{"n":%d}`, i)})
		want[fmt.Sprint("c", i)] = int64(i)
	}
	produce(t, b.kafka, t2, recs, "", false)
	r := startEnricher(t, b.kafka, CacheConfig{Name: "one", Topic: t1}, CacheConfig{Name: "two", Topic: t2})
	r.waitLoaded(t)
	one, _ := r.e.Cache("one")
	two, _ := r.e.Cache("two")
	checkState(t, one, map[string]int64{"x": 1})
	checkState(t, two, want)
	if d, ok := r.e.Get("two", "c7"); !ok || d["n"] != int64(7) {
		t.Errorf("Get(two, c7) = %v, %v", d, ok)
	}
}
