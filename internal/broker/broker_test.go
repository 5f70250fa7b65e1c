package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// sarama's metrics registry starts one meter ticker shared by all clients, for good.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig(dir string) Config {
	c := DefaultConfig()
	c.Addr = "127.0.0.1:0"
	c.Dir = dir
	c.Topics = []string{"events"}
	c.CompactedTopics = []string{"meta"}
	c.Partitions = 2
	return c
}

func start(t *testing.T, cfg Config) *Broker {
	t.Helper()
	b, err := Start(t.Context(), cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func saramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V4_0_0_0
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Net.MaxOpenRequests = 1
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Offsets.AutoCommit.Enable = false
	sc.Consumer.Return.Errors = true
	sc.Metadata.Retry.Max = 10
	sc.Metadata.Retry.Backoff = 100 * time.Millisecond
	return sc
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error; empty for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"free port", func(c *Config) { c.Addr = "127.0.0.1:0" }, ""},
		{"no port", func(c *Config) { c.Addr = "127.0.0.1" }, "broker.addr"},
		{"no host", func(c *Config) { c.Addr = ":9092" }, "broker.addr"},
		{"zero partitions", func(c *Config) { c.Partitions = 0 }, "broker.partitions"},
		{"zero compaction interval", func(c *Config) { c.CompactionInterval = 0 }, "broker.compaction_interval"},
		{"empty topic", func(c *Config) { c.Topics = []string{""} }, "broker.topics[0]"},
		{"repeated topic", func(c *Config) { c.Topics = []string{"a", "a"} }, "broker.topics[1]"},
		{"compacted and plain", func(c *Config) { c.Topics = []string{"a"}; c.CompactedTopics = []string{"a"} }, "broker.compacted_topics[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig naming %s", err, tt.want)
			}
		})
	}
}

func TestStartRefusesInvalidConfig(t *testing.T) {
	c := testConfig("")
	c.Partitions = -1
	if _, err := Start(t.Context(), c, quietLog()); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Start = %v, want ErrInvalidConfig", err)
	}
}

func TestStartAddressInUse(t *testing.T) {
	first := start(t, testConfig(""))
	c := testConfig("")
	c.Addr = first.Addrs()[0]
	if _, err := Start(t.Context(), c, quietLog()); !errors.Is(err, ErrListen) {
		t.Fatalf("Start on %s = %v, want ErrListen", c.Addr, err)
	}
}

func TestStartDirLocked(t *testing.T) {
	dir := t.TempDir()
	first := start(t, testConfig(dir))
	if _, err := Start(t.Context(), testConfig(dir), quietLog()); !errors.Is(err, ErrDirLocked) {
		t.Fatalf("second Start on %s = %v, want ErrDirLocked", dir, err)
	}
	// Closing the first broker releases the directory.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	start(t, testConfig(dir))
}

func TestRunClosesOnCancel(t *testing.T) {
	b, err := Start(t.Context(), testConfig(t.TempDir()), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	// Closed: the address no longer accepts Kafka clients.
	if _, err := sarama.NewClient(b.Addrs(), oneShot()); err == nil {
		t.Fatal("a client connected to a closed broker")
	}
}

func oneShot() *sarama.Config {
	sc := saramaConfig()
	sc.Metadata.Retry.Max = 0
	sc.Net.DialTimeout = time.Second
	return sc
}

type record struct {
	partition int32
	offset    int64
	key       string
	value     string
}

func produce(t *testing.T, addrs []string, topic string, partitions int32, perPartition int) []record {
	t.Helper()
	p, err := sarama.NewSyncProducer(addrs, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var out []record
	for part := range partitions {
		for i := range perPartition {
			r := record{partition: part, key: fmt.Sprintf("k-%d-%d", part, i), value: fmt.Sprintf(`{"n":%d}`, i)}
			msg := &sarama.ProducerMessage{Topic: topic, Partition: part, Key: sarama.StringEncoder(r.key), Value: sarama.StringEncoder(r.value)}
			if _, r.offset, err = p.SendMessage(msg); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
	}
	return out
}

// readAll reads every record of topic's partitions from the oldest offset
// up to the high watermark.
func readAll(t *testing.T, addrs []string, topic string) []record {
	t.Helper()
	client, err := sarama.NewClient(addrs, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []record
	for _, part := range parts {
		hw, err := client.GetOffset(topic, part, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if hw == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, part, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for msg := range pc.Messages() {
			out = append(out, record{partition: part, offset: msg.Offset, key: string(msg.Key), value: string(msg.Value)})
			if msg.Offset == hw-1 {
				break
			}
		}
		pc.AsyncClose()
		for range pc.Messages() {
		}
	}
	return out
}

// groupHandler marks and commits every record whose offset is below upTo,
// and records the first offset it sees per partition. It closes done once
// every one of partitions partitions has had wantPer records committed.
type groupHandler struct {
	upTo, wantPer int64
	partitions    int
	done          chan struct{}

	mu     sync.Mutex // ConsumeClaim runs once per partition, concurrently
	first  map[int32]int64
	counts map[int32]int64
	closed bool
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		if msg.Offset < h.upTo {
			sess.MarkMessage(msg, "")
			sess.Commit()
		}
		h.mu.Lock()
		if _, ok := h.first[msg.Partition]; !ok {
			h.first[msg.Partition] = msg.Offset
		}
		if msg.Offset < h.upTo {
			h.counts[msg.Partition]++
		}
		complete := len(h.counts) == h.partitions
		for _, n := range h.counts {
			complete = complete && n >= h.wantPer
		}
		if complete && !h.closed {
			h.closed = true
			close(h.done)
		}
		h.mu.Unlock()
	}
	return nil
}

// consumeGroup joins group on topic until wantPer records of each of its
// partitions are committed (those below upTo are), then leaves. It returns
// the first offset the group got on each partition.
func consumeGroup(t *testing.T, addrs []string, group, topic string, partitions int, upTo, wantPer int64) map[int32]int64 {
	t.Helper()
	cg, err := sarama.NewConsumerGroup(addrs, group, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	h := &groupHandler{upTo: upTo, wantPer: wantPer, partitions: partitions, done: make(chan struct{}),
		first: map[int32]int64{}, counts: map[int32]int64{}}
	errc := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	select {
	case <-h.done:
	case err := <-errc:
		t.Fatalf("consume: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("consume: %d records of each partition of %s never arrived", wantPer, topic)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := cg.Close(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.first
}

func committed(t *testing.T, addrs []string, group, topic string, partitions int32) map[int32]int64 {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(addrs, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var parts []int32
	for p := range partitions {
		parts = append(parts, p)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for p, b := range resp.Blocks[topic] {
		if b.Err != sarama.ErrNoError {
			t.Fatalf("offset of %s/%d: %v", topic, p, b.Err)
		}
		out[p] = b.Offset
	}
	return out
}

func topicConfig(t *testing.T, addrs []string, topic, name string) (string, bool) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(addrs, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	results, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{name}}}, sarama.DescribeConfigsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.ErrorCode != sarama.ErrNoError {
			t.Fatalf("describe %s: %v %s", topic, r.ErrorCode, r.ErrorMsg)
		}
		for _, e := range r.Configs {
			if e.Name == name {
				return e.Value, true
			}
		}
	}
	return "", false
}

func topicPartitions(t *testing.T, addrs []string) map[string]int {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(addrs, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for name, d := range topics {
		out[name] = int(d.NumPartitions)
	}
	return out
}

// TestRestartKeepsRecordsAndOffsets is the demo's restart promise: records,
// topics and a group's committed offsets survive Close and Start on the same
// directory, and the group resumes where it committed.
func TestRestartKeepsRecordsAndOffsets(t *testing.T) {
	dir := t.TempDir()
	const perPartition, upTo = 10, 6
	b1, err := Start(t.Context(), testConfig(dir), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	produced := produce(t, b1.Addrs(), "events", 2, perPartition)
	produce(t, b1.Addrs(), "meta", 1, 1)
	// The group sees upTo records per partition and commits each.
	consumeGroup(t, b1.Addrs(), "g1", "events", 2, upTo, upTo)
	if got := committed(t, b1.Addrs(), "g1", "events", 2); got[0] != upTo || got[1] != upTo {
		t.Fatalf("committed before restart = %v, want %d on both partitions", got, upTo)
	}
	if err := b1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	cfg := testConfig(dir)
	cfg.Topics = append(cfg.Topics, "added-later")
	b2 := start(t, cfg)
	addrs := b2.Addrs()

	if got, want := topicPartitions(t, addrs), map[string]int{"events": 2, "meta": 2, "added-later": 2}; !mapsContain(got, want) {
		t.Fatalf("topics after restart = %v, want at least %v", got, want)
	}
	if v, _ := topicConfig(t, addrs, "meta", "cleanup.policy"); v != "compact" {
		t.Fatalf("meta cleanup.policy after restart = %q, want compact", v)
	}
	got := readAll(t, addrs, "events")
	sortRecords(got)
	sortRecords(produced)
	if !slices.Equal(got, produced) {
		t.Fatalf("records after restart:\n got %v\nwant %v", got, produced)
	}
	if got := committed(t, addrs, "g1", "events", 2); got[0] != upTo || got[1] != upTo {
		t.Fatalf("committed after restart = %v, want %d on both partitions", got, upTo)
	}
	// The group resumes at the committed offsets: the first record it gets
	// on each partition is the first it did not commit.
	first := consumeGroup(t, addrs, "g1", "events", 2, perPartition, perPartition-upTo)
	if first[0] != upTo || first[1] != upTo {
		t.Fatalf("group resumed at %v, want %d on both partitions", first, upTo)
	}
	// New records are appended after the old ones.
	more := produce(t, addrs, "events", 1, 1)
	if more[0].offset != perPartition {
		t.Fatalf("offset of the first record after restart = %d, want %d", more[0].offset, perPartition)
	}
}

// TestInMemoryForgets shows what Dir buys: without it a restart starts empty.
func TestInMemoryForgets(t *testing.T) {
	b1 := start(t, testConfig(""))
	produce(t, b1.Addrs(), "events", 1, 3)
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := start(t, testConfig(""))
	if got := readAll(t, b2.Addrs(), "events"); len(got) != 0 {
		t.Fatalf("in-memory broker kept %d records across a restart", len(got))
	}
}

// TestCompaction shows that kfake compacts topics created as compacted: the
// older value of a key goes, the newest batch stays.
func TestCompaction(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Partitions = 1
	cfg.CompactionInterval = 20 * time.Millisecond
	b := start(t, cfg)
	p, err := sarama.NewSyncProducer(b.Addrs(), saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Three sends make three batches: compaction never touches the last.
	for _, kv := range [][2]string{{"t-1", "old"}, {"t-1", "new"}, {"t-2", "only"}} {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "meta", Key: sarama.StringEncoder(kv[0]), Value: sarama.StringEncoder(kv[1])}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var values []string
		for _, r := range readAll(t, b.Addrs(), "meta") {
			values = append(values, r.key+"="+r.value)
		}
		if slices.Equal(values, []string{"t-1=new", "t-2=only"}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("meta never compacted: %v", values)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sortRecords(rs []record) {
	slices.SortFunc(rs, func(a, b record) int {
		if a.partition != b.partition {
			return int(a.partition - b.partition)
		}
		return int(a.offset - b.offset)
	})
}

func mapsContain(got, want map[string]int) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
