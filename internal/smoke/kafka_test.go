package smoke

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/rtgraph/rtgraph/internal/testenv"
)

// unique returns prefix followed by the time and random hex, valid as a Kafka topic, a group id and
// (with an underscore prefix) a Cassandra keyspace name (<= 48 characters).
func unique(prefix string) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%s_%d_%s", prefix, time.Now().UnixMilli(), hex.EncodeToString(b))
}

func kafkaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0 // Kafka 4.x rejects protocol versions older than 2.1
	cfg.ClientID = "rtgraph-smoke"
	// A fresh broker creates __consumer_offsets on the first group request: allow for it.
	cfg.Metadata.Retry.Max = 20
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 20
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest // a group without a committed offset starts at 0
	cfg.Consumer.Offsets.AutoCommit.Enable = false     // commits happen only when the test says so
	cfg.Consumer.Return.Errors = true
	return cfg
}

// TestKafkaProduceConsumeGroupResume creates a topic, produces to it, consumes part of it through a
// consumer group that commits its offset, and checks that a second session of the same group resumes
// right after the committed offset.
func TestKafkaProduceConsumeGroupResume(t *testing.T) {
	addr := testenv.Kafka(t)
	brokers := []string{addr}
	topic := unique("smoke")
	group := topic + "_group"
	const total, firstBatch = 10, 6

	admin, err := sarama.NewClusterAdmin(brokers, kafkaConfig())
	if err != nil {
		t.Fatalf("admin client for %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = admin.Close() }) // registered first, so it runs after the deletions below
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	t.Cleanup(func() {
		_ = admin.DeleteConsumerGroup(group)
		if err := admin.DeleteTopic(topic); err != nil {
			t.Logf("delete topic %s: %v", topic, err)
		}
	})

	// Produce.
	producer, err := sarama.NewSyncProducer(brokers, kafkaConfig())
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	for i := range total {
		p, off, err := producer.SendMessage(&sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("k%d", i)),
			Value: sarama.StringEncoder(fmt.Sprintf("v%d", i)),
		})
		if err != nil {
			t.Fatalf("produce message %d: %v", i, err)
		}
		if p != 0 || off != int64(i) {
			t.Fatalf("message %d stored at partition %d offset %d, want 0/%d", i, p, off, i)
		}
	}
	if err := producer.Close(); err != nil {
		t.Fatalf("close producer: %v", err)
	}

	// First session: consume firstBatch messages, mark them and commit.
	first := consumeGroup(t, brokers, group, topic, firstBatch)
	for i, m := range first {
		if m.Offset != int64(i) || string(m.Value) != fmt.Sprintf("v%d", i) {
			t.Fatalf("first session message %d: offset %d value %q", i, m.Offset, m.Value)
		}
	}

	// The committed offset is the next one to read.
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
	if err != nil {
		t.Fatalf("list offsets of group %s: %v", group, err)
	}
	block := resp.GetBlock(topic, 0)
	if block == nil || block.Err != sarama.ErrNoError || block.Offset != firstBatch {
		t.Fatalf("committed offset of group %s: %+v, want %d", group, block, firstBatch)
	}

	// Second session of the same group: resumes at the committed offset, sees only the rest.
	second := consumeGroup(t, brokers, group, topic, total-firstBatch)
	for i, m := range second {
		want := int64(firstBatch + i)
		if m.Offset != want || string(m.Value) != fmt.Sprintf("v%d", want) {
			t.Fatalf("second session message %d: offset %d value %q, want offset %d (resume after commit)",
				i, m.Offset, m.Value, want)
		}
	}
}

// consumeGroup joins group, reads n messages of topic, marks and commits them, and leaves the group.
func consumeGroup(t *testing.T, brokers []string, group, topic string, n int) []*sarama.ConsumerMessage {
	t.Helper()
	cg, err := sarama.NewConsumerGroup(brokers, group, kafkaConfig())
	if err != nil {
		t.Fatalf("consumer group %s: %v", group, err)
	}
	defer func() {
		if err := cg.Close(); err != nil {
			t.Errorf("close consumer group: %v", err)
		}
	}()
	go func() {
		for err := range cg.Errors() {
			t.Logf("consumer group %s: %v", group, err)
		}
	}()

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	h := &collector{want: n, done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		for ctx.Err() == nil && !h.finished() {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	select {
	case <-h.done:
	case err := <-errc:
		if err != nil {
			t.Fatalf("consume: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("consumer group %s got %d of %d messages before timeout", group, len(h.messages()), n)
	}
	cancel()
	<-errc
	return h.messages()
}

// collector is a sarama.ConsumerGroupHandler that keeps the first want messages, marks each one, and
// commits synchronously once it has them all.
type collector struct {
	want int
	done chan struct{}
	mu   sync.Mutex
	got  []*sarama.ConsumerMessage
}

func (c *collector) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *collector) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (c *collector) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			c.mu.Lock()
			if len(c.got) >= c.want {
				c.mu.Unlock()
				return nil
			}
			c.got = append(c.got, m)
			full := len(c.got) == c.want
			c.mu.Unlock()
			sess.MarkMessage(m, "") // commits offset m.Offset+1
			if full {
				sess.Commit() // synchronous; a failure reaches Errors() and shows in the offset check
				close(c.done)
				return nil
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

func (c *collector) finished() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got) >= c.want
}

func (c *collector) messages() []*sarama.ConsumerMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*sarama.ConsumerMessage(nil), c.got...)
}
