package ingest

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
	"github.com/rtgraph/rtgraph/normalize"
)

// Hermetic tests of the whole pipeline against kfake, an in-process
// Kafka-protocol broker.

func TestPipelineOptionsValidation(t *testing.T) {
	store := memstore.New(testSchema(t), memstore.Options{})
	good := func() Options {
		return Options{Config: testConfig(), Kafka: DefaultKafkaConfig(), Mapper: &testMapper{}, Writer: store}
	}
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"no mapper", func(o *Options) { o.Mapper = nil }, "nil Mapper"},
		{"no writer", func(o *Options) { o.Writer = nil }, "nil Writer"},
		{"bad ingest config", func(o *Options) { o.Config.GroupID = "" }, "ingest.group_id"},
		{"bad kafka config", func(o *Options) { o.Kafka.Brokers = nil }, "kafka.brokers"},
		{"bad decoder config", func(o *Options) {
			o.Config.Topics = map[string]normalize.Config{"t": {Format: "avro"}}
		}, "ingest.topics.t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good()
			tt.mod(&o)
			if _, err := NewPipeline(o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %q", err, tt.want)
			}
		})
	}
	if _, err := NewPipeline(good()); err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
}

func TestPipelineRunsAgainstBroker(t *testing.T) {
	kc := newKfake(t, 3)
	const users, items = 20, 30
	recs := mixedRecords(rand.New(rand.NewPCG(1, 1)), 1500, users, items, base)
	produceRecords(t, kc, testTopicName, recs)

	store := memstore.New(testSchema(t), memstore.Options{})
	wm := &memWM{}
	ready := lifecycle.NewReadiness(ReadinessCondition)
	cfg := kafkaTestConfig("g1", testTopicName, "rtgraph.dlq")
	reg := prometheus.NewRegistry()
	p, err := NewPipeline(Options{Config: cfg, Kafka: kc, Mapper: &testMapper{}, Writer: store, Watermarks: wm, Registerer: reg, Readiness: ready})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "readiness", 30*time.Second, func() bool { ok, _ := ready.Ready(); return ok })
	waitCommitted(t, kc, "g1", testTopicName, time.Minute)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after a clean stop = %v", err)
	}
	if ok, _ := ready.Ready(); ok {
		t.Error("still ready after stopping")
	}
	if err := p.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Error("a second Run is not refused")
	}

	if got, want := dumpState(t, store, names("u", users), names("i", items)), referenceState(t, recs, users, items); got != want {
		t.Fatalf("graph differs from the reference:\n got:\n%s\nwant:\n%s", got, want)
	}
	checkDeadLetters(t, readAll(t, kc, "rtgraph.dlq"), recs, testTopicName)
	_, hwm := offsets(t, kc, "g1", testTopicName)
	ws := wm.all()
	if len(ws) != 3 {
		t.Fatalf("watermarks = %+v, want one per partition", ws)
	}
	for _, w := range ws {
		if w.Offset != hwm[w.Source.Partition] || w.Lag() != 0 || w.EventTime.IsZero() || w.Source.Group != "g1" {
			t.Errorf("watermark %+v, want offset %d and no lag", w, hwm[w.Source.Partition])
		}
	}
	if _, ok := graph.CompleteThrough(ws, "g1"); !ok {
		t.Error("no CompleteThrough for the group")
	}
	total := testutil.ToFloat64(p.m.messages.WithLabelValues(testTopicName, outcomeWritten)) +
		testutil.ToFloat64(p.m.messages.WithLabelValues(testTopicName, outcomeDeadLettered))
	if total != float64(len(recs)) {
		t.Errorf("messages_total = %v, want %d", total, len(recs))
	}
}

func TestPipelineRefusesMissingDeadLetterTopic(t *testing.T) {
	kc := newKfake(t, 1)
	store := memstore.New(testSchema(t), memstore.Options{})
	cfg := kafkaTestConfig("g1", testTopicName, "no.such.dlq")
	cfg.DeadLetterCreate.Enabled = false
	p, err := NewPipeline(Options{Config: cfg, Kafka: kc, Mapper: &testMapper{}, Writer: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); !errors.Is(err, ErrNoDeadLetterTopic) {
		t.Fatalf("Run = %v, want ErrNoDeadLetterTopic", err)
	}
}

// TestPipelineCreatesMissingDeadLetterTopic: by default a missing
// dead-letter topic is created at start, with the configured partitions,
// and receives the dead letters.
func TestPipelineCreatesMissingDeadLetterTopic(t *testing.T) {
	kc := newKfake(t, 1)
	recs := mixedRecords(rand.New(rand.NewPCG(5, 5)), 200, 5, 5, base)
	produceRecords(t, kc, testTopicName, recs)
	store := memstore.New(testSchema(t), memstore.Options{})
	cfg := kafkaTestConfig("g1", testTopicName, "made.dlq")
	cfg.DeadLetterCreate.Partitions = 2
	cfg.DeadLetterCreate.Retention = 14 * 24 * time.Hour
	r := startPipeline(t, cfg, kc, store, nil, &testMapper{})
	waitCommitted(t, kc, "g1", testTopicName, time.Minute)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	metas, err := newAdmin(t, kc).DescribeTopics([]string{"made.dlq"})
	if err != nil || len(metas) != 1 || metas[0].Err != sarama.ErrNoError || len(metas[0].Partitions) != 2 {
		t.Fatalf("dead-letter topic after start: %+v, %v; want it with 2 partitions", metas, err)
	}
	results, err := newAdmin(t, kc).DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: "made.dlq", ConfigNames: []string{"retention.ms"}}}, sarama.DescribeConfigsOptions{})
	if err != nil || len(results) != 1 || len(results[0].Configs) != 1 || results[0].Configs[0].Value != "1209600000" {
		t.Fatalf("retention.ms of the created topic: %+v, %v; want 1209600000 (14 days)", results, err)
	}
	checkDeadLetters(t, readAll(t, kc, "made.dlq"), recs, testTopicName)
}

// TestPipelineTwoMembersOneStops: two processes share the group; one stops
// halfway; the other takes its partitions over and nothing is lost.
func TestPipelineTwoMembersOneStops(t *testing.T) {
	kc := newKfake(t, 6)
	const users, items = 30, 30
	recs := mixedRecords(rand.New(rand.NewPCG(2, 2)), 6000, users, items, base)
	store := memstore.New(testSchema(t), memstore.Options{})
	// A slow store keeps both members busy long enough to stop one midway.
	slow := &slowWriter{w: store, delay: 5 * time.Millisecond}
	cfg := kafkaTestConfig("g2", testTopicName, "rtgraph.dlq")
	cfg.Batch.Count = 20
	a := startPipeline(t, cfg, kc, slow, nil, &testMapper{})
	b := startPipeline(t, cfg, kc, slow, nil, &testMapper{})
	waitFor(t, "both members to own partitions", time.Minute, func() bool {
		na, nb := testutil.ToFloat64(a.p.m.assigned), testutil.ToFloat64(b.p.m.assigned)
		return na > 0 && nb > 0 && na+nb == 6
	})
	produceRecords(t, kc, testTopicName, recs[:4000])
	waitFor(t, "both members to write", time.Minute, func() bool {
		return written(a) > 100 && written(b) > 100
	})
	if err := a.stop(t); err != nil {
		t.Fatalf("stopping a member: %v", err)
	}
	produceRecords(t, kc, testTopicName, recs[4000:])
	waitCommitted(t, kc, "g2", testTopicName, 2*time.Minute)
	if err := b.stop(t); err != nil {
		t.Fatalf("stopping the other member: %v", err)
	}
	if got, want := dumpState(t, store, names("u", users), names("i", items)), referenceState(t, recs, users, items); got != want {
		t.Fatalf("graph differs from the reference:\n got:\n%s\nwant:\n%s", got, want)
	}
	checkDeadLetters(t, readAll(t, kc, "rtgraph.dlq"), recs, testTopicName)
	if ev := testutil.ToFloat64(b.p.m.partitionEvents.WithLabelValues("assigned")); ev <= 3 {
		t.Errorf("the remaining member was assigned %v partitions in all, want more than its first share", ev)
	}
}

func written(r *running) float64 {
	return testutil.ToFloat64(r.p.m.messages.WithLabelValues(testTopicName, outcomeWritten))
}

// slowWriter delays every Apply.
type slowWriter struct {
	w     Writer
	delay time.Duration
}

func (s *slowWriter) Apply(ctx context.Context, muts []graph.Mutation) error {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return &graph.RetryableError{Op: "apply", Err: ctx.Err()}
	}
	return s.w.Apply(ctx, muts)
}
