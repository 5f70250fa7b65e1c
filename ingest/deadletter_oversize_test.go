package ingest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/internal/testenv"
)

// createTopic creates a topic with configs, deleted when the test ends.
func createTopic(t *testing.T, admin sarama.ClusterAdmin, name string, partitions int32, configs map[string]string) {
	t.Helper()
	entries := map[string]*string{}
	for k, v := range configs {
		entries[k] = &v
	}
	if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: entries}, false); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	t.Cleanup(func() { _ = admin.DeleteTopic(name) })
	waitFor(t, "topic "+name+" to be visible", 30*time.Second, func() bool {
		md, err := admin.DescribeTopics([]string{name})
		return err == nil && len(md) == 1 && errors.Is(md[0].Err, sarama.ErrNoError) && len(md[0].Partitions) == int(partitions)
	})
}

// produceLarge publishes recs in order with a producer that allows records
// up to 16 MiB (the topic decides).
func produceLarge(t *testing.T, kc KafkaConfig, topic string, recs []testRecord) {
	t.Helper()
	sc, err := producerConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.MaxMessageBytes = 16 << 20
	prod, err := sarama.NewSyncProducer(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := 0; i < len(recs); {
		var msgs []*sarama.ProducerMessage
		for ; i < len(recs) && len(msgs) < 200; i++ {
			r := recs[i]
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.key), Value: sarama.ByteEncoder(r.value), Timestamp: r.ts})
			if len(r.value) > 64<<10 {
				i++
				break // a large record goes on its own
			}
		}
		if err := prod.SendMessages(msgs); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// garbage is n bytes that are not JSON.
func garbage(rnd *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(0x80 + rnd.IntN(0x40))
	}
	return b
}

// oversizeScenario is the finding of a partition stopped for good by one
// record: values larger than the dead-letter producer allows (2 MiB, 5 MiB)
// and larger than the dead-letter topic allows (a topic limit lowered while
// the pipeline runs) are dead-lettered without their value, with their
// class, and every record behind them is consumed. It runs on kfake and on
// real Kafka.
func oversizeScenario(t *testing.T, kc KafkaConfig) {
	admin := newAdmin(t, kc)
	topic, dlq := uniqueName("oversize"), uniqueName("oversize_dlq")
	createTopic(t, admin, topic, 1, map[string]string{"max.message.bytes": strconv.Itoa(8 << 20)})
	createTopic(t, admin, dlq, 1, map[string]string{"max.message.bytes": strconv.Itoa(4 << 20)})
	store := memstore.New(testSchema(t), memstore.Options{})
	cfg := kafkaTestConfig(uniqueName("g_oversize"), topic, dlq)

	// A producer limit above the topic's is refused at start, naming both.
	cfg.DeadLetterMaxMessageBytes = 8 << 20
	p, err := NewPipeline(Options{Config: cfg, Kafka: kc, Mapper: &testMapper{}, Writer: store})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Run(context.Background())
	if !errors.Is(err, ErrDeadLetterLimit) || !strings.Contains(err.Error(), "ingest.dead_letter_max_message_bytes is 8388608") ||
		!strings.Contains(err.Error(), "max.message.bytes of topic "+dlq+" is 4194304") {
		t.Fatalf("Run with a limit above the topic's = %v, want ErrDeadLetterLimit naming both settings", err)
	}

	cfg.DeadLetterMaxMessageBytes = 1 << 20
	rnd := rand.New(rand.NewPCG(7, 7))
	const users, items = 20, 20
	good := mixedRecords(rnd, 400, users, items, recent())
	var first []testRecord
	first = append(first, good[:100]...)
	first = append(first, testRecord{key: "big", value: garbage(rnd, 2<<20), ts: recent(), bad: true, class: "malformed_json"})
	first = append(first, good[100:200]...)
	first = append(first, testRecord{key: "huge", value: garbage(rnd, 5<<20), ts: recent(), bad: true, class: "malformed_json"})
	first = append(first, good[200:250]...)
	produceLarge(t, kc, topic, first)

	r := startPipeline(t, cfg, kc, store, nil, &testMapper{})
	defer r.cancel()
	waitCommitted(t, kc, cfg.GroupID, topic, itTimeout)

	// The operator lowers the dead-letter topic's limit below the
	// producer's: the broker now refuses a 600 KiB dead letter.
	low := strconv.Itoa(300 << 10)
	if err := admin.AlterConfig(sarama.TopicResource, dlq, map[string]*string{"max.message.bytes": &low}, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lowered limit", 30*time.Second, func() bool {
		rs, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: dlq, ConfigNames: []string{"max.message.bytes"}}},
			sarama.DescribeConfigsOptions{})
		return err == nil && len(rs) == 1 && len(rs[0].Configs) == 1 && rs[0].Configs[0].Value == low
	})
	var second []testRecord
	second = append(second, testRecord{key: "mid", value: garbage(rnd, 600<<10), ts: recent(), bad: true, class: "malformed_json"})
	second = append(second, good[250:]...)
	produceLarge(t, kc, topic, second)
	waitCommitted(t, kc, cfg.GroupID, topic, itTimeout)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}

	all := append(first, second...)
	if got, want := dumpState(t, store, names("u", users), names("i", items)), referenceState(t, all, users, items); got != want {
		t.Fatal("graph differs from the reference: records behind the large ones were not all written")
	}
	dead := readAll(t, kc, dlq)
	sizes := map[int]DeadLetter{}
	wantBad := 0
	for _, rec := range all {
		if rec.bad {
			wantBad++
		}
	}
	if len(dead) != wantBad {
		t.Fatalf("dead letters = %d, want %d (each bad record once)", len(dead), wantBad)
	}
	for _, m := range dead {
		dl, err := ParseDeadLetter(m.Headers)
		if err != nil {
			t.Fatal(err)
		}
		if dl.ValueOmitted {
			sizes[dl.ValueBytes] = dl
			if m.Value != nil || dl.Class != "malformed_json" || dl.Topic != topic {
				t.Errorf("omitted dead letter %+v: value %d bytes", dl, len(m.Value))
			}
		}
	}
	for _, n := range []int{2 << 20, 5 << 20, 600 << 10} {
		dl, ok := sizes[n]
		if !ok {
			t.Errorf("no dead letter without value for the %d-byte record (have %v)", n, sizes)
			continue
		}
		if dl.ValueWhy != OmitTooLarge || len(dl.ValueSHA256) != 64 {
			t.Errorf("%d-byte record: %+v", n, dl)
		}
	}
	if dl := sizes[600<<10]; dl.ValueOmitted && !bytes.Contains([]byte(headerOf(dead, dl.Offset, HeaderOmitError)), []byte("too large")) {
		t.Errorf("the broker's refusal is not recorded: %q", headerOf(dead, dl.Offset, HeaderOmitError))
	}
	// The others carry their value, as always.
	var whole []*sarama.ConsumerMessage
	var small []testRecord
	for _, m := range dead {
		if m.Value != nil {
			whole = append(whole, m)
		}
	}
	for _, rec := range all {
		if len(rec.value) < 64<<10 {
			small = append(small, rec)
		}
	}
	checkDeadLetters(t, whole, small, topic)
	if got := testutil.ToFloat64(r.p.m.deadLetters.WithLabelValues(topic, StageDecode, "malformed_json")); int(got) != countClass(all, "malformed_json") {
		t.Errorf("dead_letters_total{malformed_json} = %v, want %d", got, countClass(all, "malformed_json"))
	}
	if got := testutil.ToFloat64(r.p.m.omitted.WithLabelValues(OmitTooLarge)); got != 3 {
		t.Errorf("values omitted = %v, want 3", got)
	}
}

func headerOf(dead []*sarama.ConsumerMessage, srcOffset int64, key string) string {
	for _, m := range dead {
		if dl, err := ParseDeadLetter(m.Headers); err == nil && dl.Offset == srcOffset {
			for _, h := range m.Headers {
				if string(h.Key) == key {
					return string(h.Value)
				}
			}
		}
	}
	return ""
}

func countClass(recs []testRecord, class string) int {
	n := 0
	for _, r := range recs {
		if r.bad && r.class == class {
			n++
		}
	}
	return n
}

func TestPipelineOversizeDeadLettersMoveOn(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kc := DefaultKafkaConfig()
	kc.Brokers = c.ListenAddrs()
	oversizeScenario(t, kc)
}

// TestIntegrationOversizeDeadLettersMoveOn is the same on real Kafka.
func TestIntegrationOversizeDeadLettersMoveOn(t *testing.T) {
	// The scenario creates its own topics, with configs.
	kc := DefaultKafkaConfig()
	kc.Brokers = []string{testenv.Kafka(t)}
	oversizeScenario(t, kc)
}
