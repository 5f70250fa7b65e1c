package ingest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/rtgraph/rtgraph/normalize"
)

// Config is the pipeline's own configuration, the `ingest:` section; the
// connection settings are KafkaConfig. Names follow the Java client's
// settings where one exists (given in brackets); durations are Go durations
// rather than milliseconds.
type Config struct {
	// GroupID is the consumer group every ingest process of one deployment
	// joins [group.id]. Default "rtgraph".
	GroupID string `yaml:"group_id"`
	// Topics maps each input topic to the decoder configuration of its
	// records (normalize.Config). At least one is required.
	Topics map[string]normalize.Config `yaml:"topics"`
	// DeadLetterTopic receives the records that cannot become graph
	// mutations, with the reason in headers. It must not be an input topic;
	// a missing one is created at start (DeadLetterCreate). Default
	// "rtgraph.dlq".
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// DeadLetterCreate says whether and how the pipeline creates a missing
	// dead-letter topic at start.
	DeadLetterCreate DeadLetterCreateConfig `yaml:"dead_letter_create"`
	// DeadLetterMaxMessageBytes is the largest dead-letter record the
	// pipeline produces [max.request.size]. 0 (the default) takes the
	// dead-letter topic's max.message.bytes, read at start. A value above
	// the topic's max.message.bytes is a start-up error. A dead letter that
	// would be larger is produced without the source value (and, if need
	// be, key and headers), with the value's size and SHA-256 in headers:
	// `rtgraph dlq replay` fetches it from the source topic.
	DeadLetterMaxMessageBytes int `yaml:"dead_letter_max_message_bytes"`
	// Batch bounds what a partition worker accumulates before writing.
	Batch BatchConfig `yaml:"batch"`
	// MaxApplyMutations bounds one Writer.Apply call; a batch that maps to
	// more is written in several calls, all acknowledged before any of its
	// offsets is marked. Keep it at or below the store's own limit
	// (embedded.max_batch). Default 5000.
	MaxApplyMutations int `yaml:"max_apply_mutations"`
	// Retry is the backoff between attempts when the store, the mapper or
	// the dead-letter topic fails transiently. Attempts never stop: the
	// partition stalls (and stops fetching) until the write succeeds or the
	// partition is given up.
	Retry RetryConfig `yaml:"retry"`
	// InstanceID makes this process a static member of the group
	// [group.instance.id]: a process restarted with the same id (after a
	// crash or kill -9) gets its partitions back at once instead of waiting
	// for its old session to time out, and a restart causes no rebalance.
	// It must be unique per process and stable across its restarts (a pod
	// or host name); letters, digits, '.', '_' and '-', at most 249. A
	// static member that stops leaves its partitions unconsumed until
	// SessionTimeout passes, as Kafka does. Default empty: a dynamic member.
	InstanceID string `yaml:"instance_id"`
	// SessionTimeout: a member that sends no heartbeat for this long is
	// removed from the group [session.timeout.ms]. Default 45s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// HeartbeatInterval [heartbeat.interval.ms]. Default 3s; at most a third
	// of SessionTimeout.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// RebalanceTimeout is how long a rebalance waits for members to give up
	// revoked partitions, flush included [max.poll.interval.ms, which the
	// Java client sends as the rebalance timeout]. Default 60s.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	// AutoCommitInterval is how often marked offsets are committed
	// [auto.commit.interval.ms]; offsets are also committed when a partition
	// is revoked and on shutdown. Default 1s.
	AutoCommitInterval time.Duration `yaml:"auto_commit_interval"`
	// FetchMaxWait bounds how long the broker holds a fetch waiting for data
	// [fetch.max.wait.ms]. Default 250ms.
	FetchMaxWait time.Duration `yaml:"fetch_max_wait"`
	// MaxPartitionFetchBytes is the most record bytes one fetch asks per
	// partition [max.partition.fetch.bytes]. Default 1 MiB.
	MaxPartitionFetchBytes int32 `yaml:"max_partition_fetch_bytes"`
	// PartitionBuffer is how many fetched records may wait per partition for
	// its worker. When a worker stalls its buffer fills and fetching for that
	// partition stops: this is the pipeline's backpressure. Default 512.
	PartitionBuffer int `yaml:"partition_buffer"`
	// DrainTimeout bounds the final flush when the pipeline stops. A flush
	// that cannot finish in time (the store is down) is abandoned without
	// committing: its records are delivered again. Default 20s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// StallTimeout: a partition whose worker has retried a failing
	// dependency (store, mapper, dead-letter topic) for this long is
	// reported as stalled in /readyz. Every stall is in the metrics and the
	// log from its start. Default 30s.
	StallTimeout time.Duration `yaml:"stall_timeout"`
	// WatermarkInterval is the least time between two watermark records of
	// one partition (the last one is always recorded on a clean stop or
	// revocation). Default 1s.
	WatermarkInterval time.Duration `yaml:"watermark_interval"`
}

// BatchConfig is the batch policy of a partition worker: a batch is written
// when it reaches Count records or Bytes bytes, Period after its first
// record, or, with Linger set, Linger after its last record (the partition
// went quiet), whichever comes first.
type BatchConfig struct {
	// Count is the most records in one batch [max.poll.records]. Default 1000.
	Count int `yaml:"count"`
	// Bytes is the most record bytes (keys and values) in one batch.
	// Default 4 MiB.
	Bytes int `yaml:"bytes"`
	// Period is how long a batch waits for more records after its first
	// one. It bounds the freshness a quiet partition adds. Default 100ms.
	Period time.Duration `yaml:"period"`
	// Linger, when positive, writes a batch once no record has arrived for
	// that long: a trickle of changes is written at once instead of
	// waiting out Period, while a busy partition, whose records follow each
	// other closely, and a backlog still fill their batches. 0 turns it
	// off. Default 5ms.
	Linger time.Duration `yaml:"linger"`
}

// RetryConfig is an exponential backoff with jitter.
type RetryConfig struct {
	// Backoff is the first wait [retry.backoff.ms]. Default 100ms.
	Backoff time.Duration `yaml:"backoff"`
	// BackoffMax caps the wait [retry.backoff.max.ms]. Default 10s.
	BackoffMax time.Duration `yaml:"backoff_max"`
}

// DeadLetterCreateConfig is how a missing dead-letter topic is created.
type DeadLetterCreateConfig struct {
	// Enabled creates the topic when it does not exist; false makes a
	// missing topic a start-up error (ErrNoDeadLetterTopic), for clusters
	// where topics are provisioned. Default true.
	Enabled bool `yaml:"enabled"`
	// Partitions of the created topic. Default 1: dead letters are rare
	// and read in order by `rtgraph dlq replay`.
	Partitions int32 `yaml:"partitions"`
	// ReplicationFactor of the created topic; -1 (the default) takes the
	// broker's default.replication.factor.
	ReplicationFactor int16 `yaml:"replication_factor"`
	// Retention of the created topic [retention.ms]: dead letters older
	// than this are removed. Default 0: the broker's log.retention.hours;
	// otherwise whole milliseconds, at least 1h.
	Retention time.Duration `yaml:"retention"`
}

// DefaultConfig returns the defaults. Topics is empty: a deployment names
// its inputs.
func DefaultConfig() Config {
	return Config{
		GroupID:                "rtgraph",
		DeadLetterTopic:        "rtgraph.dlq",
		DeadLetterCreate:       DeadLetterCreateConfig{Enabled: true, Partitions: 1, ReplicationFactor: -1},
		Batch:                  BatchConfig{Count: 1000, Bytes: 4 << 20, Period: 100 * time.Millisecond, Linger: 5 * time.Millisecond},
		MaxApplyMutations:      5000,
		Retry:                  RetryConfig{Backoff: 100 * time.Millisecond, BackoffMax: 10 * time.Second},
		SessionTimeout:         45 * time.Second,
		HeartbeatInterval:      3 * time.Second,
		RebalanceTimeout:       60 * time.Second,
		AutoCommitInterval:     time.Second,
		FetchMaxWait:           250 * time.Millisecond,
		MaxPartitionFetchBytes: 1 << 20,
		PartitionBuffer:        512,
		DrainTimeout:           20 * time.Second,
		WatermarkInterval:      time.Second,
		StallTimeout:           30 * time.Second,
	}
}

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("ingest: invalid config")

// Validate reports every unacceptable field, each named ingest.<field>.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: ingest.%s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.GroupID == "" {
		bad("group_id", "must not be empty")
	}
	if len(c.Topics) == 0 {
		bad("topics", "must name at least one input topic")
	}
	for _, t := range sortedTopics(c.Topics) {
		if err := checkTopicName(t); err != nil {
			bad("topics", "%v", err)
			continue
		}
		dc := c.Topics[t]
		if err := dc.Validate(); err != nil {
			bad("topics."+t, "%v", err)
		}
	}
	if err := checkTopicName(c.DeadLetterTopic); err != nil {
		bad("dead_letter_topic", "%v", err)
	} else if _, ok := c.Topics[c.DeadLetterTopic]; ok {
		bad("dead_letter_topic", "%q is also an input topic", c.DeadLetterTopic)
	}
	if c.DeadLetterCreate.Partitions < 1 || c.DeadLetterCreate.Partitions > 10_000 {
		bad("dead_letter_create.partitions", "must be between 1 and 10000")
	}
	if c.DeadLetterCreate.ReplicationFactor == 0 || c.DeadLetterCreate.ReplicationFactor < -1 {
		bad("dead_letter_create.replication_factor", "must be -1 (the broker's default) or positive")
	}
	if r := c.DeadLetterCreate.Retention; r != 0 && (r < time.Hour || r%time.Millisecond != 0) {
		bad("dead_letter_create.retention", "%s: must be 0 (the broker's default) or whole milliseconds of at least 1h", r)
	}
	if c.Batch.Count < 1 || c.Batch.Count > 100_000 {
		bad("batch.count", "must be between 1 and 100000")
	}
	if c.Batch.Bytes < 1<<10 || c.Batch.Bytes > 256<<20 {
		bad("batch.bytes", "must be between 1 KiB and 256 MiB")
	}
	if c.Batch.Period <= 0 {
		bad("batch.period", "must be positive")
	}
	if c.Batch.Linger < 0 {
		bad("batch.linger", "must not be negative")
	}
	if c.MaxApplyMutations < 1 {
		bad("max_apply_mutations", "must be positive")
	}
	if c.Retry.Backoff <= 0 {
		bad("retry.backoff", "must be positive")
	}
	if c.Retry.BackoffMax < c.Retry.Backoff {
		bad("retry.backoff_max", "must be at least retry.backoff")
	}
	if c.InstanceID != "" && !validInstanceID(c.InstanceID) {
		bad("instance_id", "%q: use letters, digits, '.', '_' and '-', at most 249", c.InstanceID)
	}
	if c.SessionTimeout <= 0 {
		bad("session_timeout", "must be positive")
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval*3 > c.SessionTimeout {
		bad("heartbeat_interval", "must be positive and at most a third of session_timeout")
	}
	if c.RebalanceTimeout <= 0 {
		bad("rebalance_timeout", "must be positive")
	}
	if c.AutoCommitInterval <= 0 {
		bad("auto_commit_interval", "must be positive")
	}
	if c.FetchMaxWait <= 0 {
		bad("fetch_max_wait", "must be positive")
	}
	if c.MaxPartitionFetchBytes < 1<<10 {
		bad("max_partition_fetch_bytes", "must be at least 1 KiB")
	}
	if c.PartitionBuffer < 1 || c.PartitionBuffer > 100_000 {
		bad("partition_buffer", "must be between 1 and 100000")
	}
	if c.DrainTimeout <= 0 {
		bad("drain_timeout", "must be positive")
	}
	if c.WatermarkInterval <= 0 {
		bad("watermark_interval", "must be positive")
	}
	if c.StallTimeout <= 0 {
		bad("stall_timeout", "must be positive")
	}
	if m := c.DeadLetterMaxMessageBytes; m != 0 && (m < minDeadLetterBytes || m >= int(sarama.MaxRequestSize)) {
		bad("dead_letter_max_message_bytes", "must be 0 (the topic's max.message.bytes) or between %d and %d", minDeadLetterBytes, sarama.MaxRequestSize-1)
	}
	return errors.Join(errs...)
}

// minDeadLetterBytes is the least dead_letter_max_message_bytes: room for
// the pipeline's headers (the reason is at most MaxReasonBytes) with the key
// and value left out.
const minDeadLetterBytes = 8 << 10

// checkTopicName applies Kafka's rule: 1-249 characters of [a-zA-Z0-9._-],
// and not "." or "..".
func checkTopicName(t string) error {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return fmt.Errorf("%q is not a valid topic name", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)) {
			return fmt.Errorf("%q is not a valid topic name (only [a-zA-Z0-9._-])", t)
		}
	}
	return nil
}

func sortedTopics(m map[string]normalize.Config) []string {
	ts := make([]string, 0, len(m))
	for t := range m {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// consumerConfig is the sarama configuration of the pipeline's consumer
// group: the connection settings, then every consumer default rtgraph does
// not accept as sarama ships it.
func (c Config) consumerConfig(k KafkaConfig) (*sarama.Config, error) {
	sc, err := k.Sarama()
	if err != nil {
		return nil, err
	}
	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	// Offsets are marked only after the store acknowledged what they cover;
	// committing marked offsets periodically is then safe.
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = c.AutoCommitInterval
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyCooperativeSticky()}
	sc.Consumer.Group.Rebalance.Timeout = c.RebalanceTimeout
	sc.Consumer.Group.Session.Timeout = c.SessionTimeout
	sc.Consumer.Group.InstanceId = c.InstanceID
	sc.Consumer.Group.Heartbeat.Interval = c.HeartbeatInterval
	sc.Consumer.MaxWaitTime = c.FetchMaxWait
	sc.Consumer.Fetch.Default = c.MaxPartitionFetchBytes
	sc.ChannelBufferSize = c.PartitionBuffer
	// A new broker creates __consumer_offsets on the first group request.
	sc.Metadata.Retry.Max = 10
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	// A missing topic is an operator's mistake to report, not one for the
	// broker to paper over with a topic of default partitions.
	sc.Metadata.AllowAutoTopicCreation = false
	return sc, nil
}

// producerConfig is the sarama configuration of the dead-letter and replay
// producers: idempotent, acknowledged by every in-sync replica.
func producerConfig(k KafkaConfig) (*sarama.Config, error) {
	sc, err := k.Sarama()
	if err != nil {
		return nil, err
	}
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Retry.Max = 10
	sc.Producer.Retry.Backoff = 250 * time.Millisecond
	sc.Net.MaxOpenRequests = 1 // required by the idempotent producer
	sc.Metadata.Retry.Max = 10
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	sc.Metadata.AllowAutoTopicCreation = false
	return sc, nil
}

// validInstanceID is Kafka's rule for group.instance.id (that of topic
// names).
func validInstanceID(id string) bool {
	if len(id) == 0 || len(id) > 249 || id == "." || id == ".." {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
