package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/rtgraph/rtgraph/normalize"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Topics = map[string]normalize.Config{"orders": {Format: normalize.FormatDebezium}}
		return c
	}
	mod := func(f func(*Config)) Config {
		c := valid()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		want string // "" = valid
	}{
		{"valid", valid(), ""},
		{"defaults have no topics", DefaultConfig(), "ingest.topics: must name at least one"},
		{"group", mod(func(c *Config) { c.GroupID = "" }), "ingest.group_id"},
		{"topic name", mod(func(c *Config) { c.Topics["bad topic"] = normalize.Config{Format: normalize.FormatDebezium} }), "ingest.topics: \"bad topic\""},
		{"decoder config", mod(func(c *Config) { c.Topics["orders"] = normalize.Config{Format: "avro"} }), "ingest.topics.orders"},
		{"dead-letter topic name", mod(func(c *Config) { c.DeadLetterTopic = ".." }), "ingest.dead_letter_topic"},
		{"dead-letter topic is an input", mod(func(c *Config) { c.DeadLetterTopic = "orders" }), "ingest.dead_letter_topic: \"orders\" is also an input topic"},
		{"dead-letter partitions", mod(func(c *Config) { c.DeadLetterCreate.Partitions = 0 }), "ingest.dead_letter_create.partitions"},
		{"dead-letter replication", mod(func(c *Config) { c.DeadLetterCreate.ReplicationFactor = 0 }), "ingest.dead_letter_create.replication_factor"},
		{"dead-letter retention", mod(func(c *Config) { c.DeadLetterCreate.Retention = time.Minute }), "ingest.dead_letter_create.retention"},
		{"dead-letter retention negative", mod(func(c *Config) { c.DeadLetterCreate.Retention = -time.Hour }), "ingest.dead_letter_create.retention"},
		{"instance id", mod(func(c *Config) { c.InstanceID = "pod 1/a" }), `ingest.instance_id: "pod 1/a"`},
		{"instance id ok", mod(func(c *Config) { c.InstanceID = "ingest-0.rtgraph_a" }), ""},
		{"batch count", mod(func(c *Config) { c.Batch.Count = 0 }), "ingest.batch.count"},
		{"batch count too large", mod(func(c *Config) { c.Batch.Count = 100_001 }), "ingest.batch.count"},
		{"batch bytes", mod(func(c *Config) { c.Batch.Bytes = 100 }), "ingest.batch.bytes"},
		{"batch period", mod(func(c *Config) { c.Batch.Period = 0 }), "ingest.batch.period"},
		{"batch linger", mod(func(c *Config) { c.Batch.Linger = -time.Millisecond }), "ingest.batch.linger"},
		{"max apply", mod(func(c *Config) { c.MaxApplyMutations = 0 }), "ingest.max_apply_mutations"},
		{"backoff", mod(func(c *Config) { c.Retry.Backoff = 0 }), "ingest.retry.backoff"},
		{"backoff max", mod(func(c *Config) { c.Retry.BackoffMax = time.Millisecond }), "ingest.retry.backoff_max"},
		{"session timeout", mod(func(c *Config) { c.SessionTimeout = 0 }), "ingest.session_timeout"},
		{"heartbeat", mod(func(c *Config) { c.HeartbeatInterval = 20 * time.Second }), "ingest.heartbeat_interval"},
		{"rebalance timeout", mod(func(c *Config) { c.RebalanceTimeout = 0 }), "ingest.rebalance_timeout"},
		{"auto commit", mod(func(c *Config) { c.AutoCommitInterval = 0 }), "ingest.auto_commit_interval"},
		{"fetch wait", mod(func(c *Config) { c.FetchMaxWait = 0 }), "ingest.fetch_max_wait"},
		{"fetch bytes", mod(func(c *Config) { c.MaxPartitionFetchBytes = 10 }), "ingest.max_partition_fetch_bytes"},
		{"buffer", mod(func(c *Config) { c.PartitionBuffer = 0 }), "ingest.partition_buffer"},
		{"drain", mod(func(c *Config) { c.DrainTimeout = 0 }), "ingest.drain_timeout"},
		{"watermark interval", mod(func(c *Config) { c.WatermarkInterval = 0 }), "ingest.watermark_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig naming %q", err, tt.want)
			}
		})
	}
}

// TestConsumerConfig: the sarama defaults rtgraph does not accept are
// replaced, and the Java-named settings reach sarama.
func TestConsumerConfig(t *testing.T) {
	c := DefaultConfig()
	c.SessionTimeout, c.HeartbeatInterval, c.RebalanceTimeout = 30*time.Second, 2*time.Second, 50*time.Second
	c.AutoCommitInterval, c.FetchMaxWait, c.MaxPartitionFetchBytes, c.PartitionBuffer = 2*time.Second, 300*time.Millisecond, 2<<20, 64
	sc, err := c.consumerConfig(DefaultKafkaConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Validate(); err != nil {
		t.Fatalf("sarama refuses the config: %v", err)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"version at least 4.0", sc.Version.IsAtLeast(sarama.V4_0_0_0)},
		{"errors returned", sc.Consumer.Return.Errors},
		{"oldest offset for new groups", sc.Consumer.Offsets.Initial == sarama.OffsetOldest},
		{"cooperative-sticky only", len(sc.Consumer.Group.Rebalance.GroupStrategies) == 1 &&
			sc.Consumer.Group.Rebalance.GroupStrategies[0].Name() == sarama.CooperativeStickyBalanceStrategyName},
		{"auto commit of marked offsets", sc.Consumer.Offsets.AutoCommit.Enable && sc.Consumer.Offsets.AutoCommit.Interval == 2*time.Second},
		{"session timeout", sc.Consumer.Group.Session.Timeout == 30*time.Second},
		{"heartbeat", sc.Consumer.Group.Heartbeat.Interval == 2*time.Second},
		{"rebalance timeout", sc.Consumer.Group.Rebalance.Timeout == 50*time.Second},
		{"fetch wait", sc.Consumer.MaxWaitTime == 300*time.Millisecond},
		{"fetch bytes", sc.Consumer.Fetch.Default == 2<<20},
		{"partition buffer", sc.ChannelBufferSize == 64},
		{"no topic auto-creation", !sc.Metadata.AllowAutoTopicCreation},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("consumer config: %s not set", ch.name)
		}
	}
	pc, err := producerConfig(DefaultKafkaConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Validate(); err != nil {
		t.Fatalf("sarama refuses the producer config: %v", err)
	}
	if !pc.Producer.Idempotent || pc.Producer.RequiredAcks != sarama.WaitForAll || !pc.Producer.Return.Successes || pc.Metadata.AllowAutoTopicCreation {
		t.Errorf("producer config: idempotent=%v acks=%v successes=%v", pc.Producer.Idempotent, pc.Producer.RequiredAcks, pc.Producer.Return.Successes)
	}
	bad := DefaultKafkaConfig()
	bad.Version = "2.8.0"
	if _, err := c.consumerConfig(bad); err == nil {
		t.Error("a protocol version older than 4.0 was accepted")
	}
}
