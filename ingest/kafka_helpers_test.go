package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/normalize"
)

// Helpers shared by the tests that run the whole pipeline against a Kafka
// broker: the in-process kfake one, or the real one.

// newKfake starts an in-process Kafka-protocol broker with the input topic
// (partitions partitions) and a one-partition dead-letter topic.
func newKfake(t *testing.T, partitions int32) KafkaConfig {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, testTopicName), kfake.SeedTopics(1, "rtgraph.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	kc := DefaultKafkaConfig()
	kc.Brokers = c.ListenAddrs()
	return kc
}

func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s_%d_%s", prefix, time.Now().UnixMilli(), hex.EncodeToString(b))
}

// kafkaTestConfig is a pipeline configuration tuned for short tests.
func kafkaTestConfig(group, topic, dlq string) Config {
	c := DefaultConfig()
	c.GroupID = group
	c.Topics = map[string]normalize.Config{topic: testTopic()}
	c.DeadLetterTopic = dlq
	c.Batch.Count = 200
	c.Batch.Period = 20 * time.Millisecond
	c.SessionTimeout = 10 * time.Second
	c.HeartbeatInterval = time.Second
	c.RebalanceTimeout = 20 * time.Second
	c.AutoCommitInterval = 100 * time.Millisecond
	c.FetchMaxWait = 100 * time.Millisecond
	c.Retry.Backoff = 10 * time.Millisecond
	c.Retry.BackoffMax = 200 * time.Millisecond
	c.WatermarkInterval = 50 * time.Millisecond
	return c
}

// produceRecords publishes recs to topic, keyed, with their timestamps.
func produceRecords(t testing.TB, kc KafkaConfig, topic string, recs []testRecord) {
	t.Helper()
	sc, err := producerConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.Flush.MaxMessages = 1000
	prod, err := sarama.NewSyncProducer(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const chunk = 2000
	for i := 0; i < len(recs); i += chunk {
		var msgs []*sarama.ProducerMessage
		for _, r := range recs[i:min(i+chunk, len(recs))] {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.key), Value: sarama.ByteEncoder(r.value), Timestamp: r.ts})
		}
		if err := prod.SendMessages(msgs); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// running is a pipeline running in the background.
type running struct {
	p      *Pipeline
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// startPipeline runs a pipeline; stop it with stop.
func startPipeline(t testing.TB, cfg Config, kc KafkaConfig, w Writer, wm WatermarkWriter, mapper Mapper) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := NewPipeline(Options{Config: cfg, Kafka: kc, Mapper: mapper, Writer: w, Watermarks: wm, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	return r
}

// stop cancels the pipeline and returns what Run returned.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("pipeline did not stop within 2 minutes")
		return nil
	}
}

// offsets returns, per partition of topic, the committed offset of group
// (-1 when none) and the high-water mark.
func offsets(t testing.TB, kc KafkaConfig, group, topic string) (committed, hwm map[int32]int64) {
	t.Helper()
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	got, err := groupOffsets(admin, group, map[string][]int32{topic: parts})
	if err != nil {
		t.Fatal(err)
	}
	committed, hwm = got[topic], map[int32]int64{}
	for _, p := range parts {
		if hwm[p], err = client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
			t.Fatal(err)
		}
	}
	return committed, hwm
}

// waitCommitted waits until group has committed the end of every partition.
func waitCommitted(t testing.TB, kc KafkaConfig, group, topic string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c, h := offsets(t, kc, group, topic)
		done := true
		for p, end := range h {
			if c[p] != end {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s has not committed the end of %s within %s: committed %v, ends %v", group, topic, d, c, h)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readAll reads every record of topic up to its current end.
func readAll(t testing.TB, kc KafkaConfig, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	sc.Consumer.Return.Errors = true
	client, err := sarama.NewClient(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		if start >= end {
			continue
		}
		pc, err := cons.ConsumePartition(topic, p, start)
		if err != nil {
			t.Fatal(err)
		}
		for next := start; next < end; {
			select {
			case m := <-pc.Messages():
				out = append(out, m)
				next = m.Offset + 1
			case err := <-pc.Errors():
				t.Fatal(err)
			case <-time.After(30 * time.Second):
				t.Fatalf("reading %s/%d stopped at %d of %d", topic, p, next, end)
			}
		}
		pc.Close()
	}
	return out
}

// memWM is a concurrency-safe WatermarkWriter for whole-pipeline tests.
type memWM struct{ memWatermarks }

func (m *memWM) all() []graph.Watermark {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []graph.Watermark
	for _, w := range m.recs {
		out = append(out, w)
	}
	return out
}

// checkDeadLetters checks that the dead-letter topic holds every bad record
// (identified by value) with the class its fault calls for and a reason,
// and no good record.
func checkDeadLetters(t testing.TB, dead []*sarama.ConsumerMessage, recs []testRecord, topic string) {
	t.Helper()
	badValues := map[string]int{}
	classes := map[string]string{}
	for _, r := range recs {
		if r.bad {
			badValues[string(r.value)]++
			classes[string(r.value)] = r.class
		}
	}
	seen := map[string]bool{} // source coordinates, to count each dead letter once
	got := map[string]int{}
	for _, m := range dead {
		dl, err := ParseDeadLetter(m.Headers)
		if err != nil {
			t.Fatalf("dead letter at %d: %v", m.Offset, err)
		}
		if dl.Topic != topic || dl.Stage == "" || dl.Reason == "" {
			t.Fatalf("dead letter headers incomplete: %+v", dl)
		}
		if want, ok := classes[string(m.Value)]; ok && dl.Class != want {
			t.Errorf("dead letter of %s: class %q (%s), want %q", m.Value, dl.Class, dl.Reason, want)
		}
		k := fmt.Sprintf("%d/%d", dl.Partition, dl.Offset)
		if seen[k] {
			continue // redelivered after a crash: dead-lettered again
		}
		seen[k] = true
		got[string(m.Value)]++
	}
	for v, n := range badValues {
		if got[v] != n {
			t.Errorf("bad record %s: %d dead letters, want %d", v, got[v], n)
		}
	}
	for v := range got {
		if badValues[v] == 0 {
			t.Errorf("good record dead-lettered: %s", v)
		}
	}
}

// newAdmin is a cluster admin on kc, closed when the test ends.
func newAdmin(t testing.TB, kc KafkaConfig) sarama.ClusterAdmin {
	t.Helper()
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdmin(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	return admin
}
