package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// ReplayOptions select what ReplayDLQ re-publishes.
type ReplayOptions struct {
	// Group records how far replay has got in the dead-letter topic (as a
	// consumer group's committed offsets), so a later replay starts after
	// the dead letters an earlier one handled. Default "<topic>.replay".
	Group string
	// FromStart replays from the oldest dead letter still in the topic,
	// whatever Group recorded.
	FromStart bool
	// Classes, when set, replays only dead letters of these error classes;
	// Topics, only those from these source topics. The others are passed
	// over, and Group's progress moves past them too: replay them later with
	// FromStart.
	Classes []string
	Topics  []string
	// BatchSize is how many records are sent before progress is recorded.
	// Default 500.
	BatchSize int
	// Logger receives replay events; nil discards them.
	Logger *slog.Logger
}

// ReplayStats counts what ReplayDLQ did.
type ReplayStats struct {
	// Replayed dead letters were published back to their source partition.
	Replayed int
	// Skipped ones did not match Classes or Topics.
	Skipped int
	// Unreplayable ones lack their value (HeaderValueOmitted) or are not
	// dead letters (no source headers); they are logged.
	Unreplayable int
}

// idleWarn is how long replay waits for the next record of a partition
// before it says so in the log. It never gives up on its own: the pipeline
// writes dead letters without transactions, so every offset below the end
// holds a record, and deciding otherwise could skip one. Cancel ctx to stop.
const idleWarn = 30 * time.Second

// ReplayDLQ publishes the dead letters of topic, from where the replay group
// stopped (or the oldest, with FromStart) up to the end the topic had when
// the call began, back to the topic and partition they came from, with
// their key, value and original headers. Run it after fixing what made them
// fail: the pipeline then processes them again, and writes being
// idempotent, a record that was already half-handled is harmless. Those that
// fail again are dead-lettered again, after the end this call stops at.
// Progress is committed after each batch is acknowledged, so an interrupted
// replay resumes where it stopped (at most one batch is published twice).
func ReplayDLQ(ctx context.Context, kc KafkaConfig, topic string, opts ReplayOptions) (ReplayStats, error) {
	var st ReplayStats
	if opts.Group == "" {
		opts.Group = topic + ".replay"
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sc, err := producerConfig(kc)
	if err != nil {
		return st, err
	}
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Consumer.Return.Errors = true
	client, err := sarama.NewClient(kc.Brokers, sc)
	if err != nil {
		return st, fmt.Errorf("ingest: replay: connect to kafka: %w", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return st, fmt.Errorf("ingest: replay: %w", err)
	}
	defer func() { _ = admin.Close() }() // closes client too
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return st, fmt.Errorf("ingest: replay: producer: %w", err)
	}
	defer func() { _ = prod.Close() }()
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return st, fmt.Errorf("ingest: replay: consumer: %w", err)
	}
	defer func() { _ = cons.Close() }()

	parts, err := client.Partitions(topic)
	if err != nil {
		return st, fmt.Errorf("ingest: replay: topic %s: %w", topic, err)
	}
	committed, err := groupOffsets(admin, opts.Group, map[string][]int32{topic: parts})
	if err != nil {
		return st, fmt.Errorf("ingest: replay: progress of %s: %w", opts.Group, err)
	}
	r := &replayer{
		ctx: ctx, client: client, admin: admin, prod: prod, cons: cons, topic: topic, opts: opts, log: logger,
		sources: map[string][]int32{},
	}
	for _, p := range parts {
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return st, fmt.Errorf("ingest: replay: start of %s/%d: %w", topic, p, err)
		}
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return st, fmt.Errorf("ingest: replay: end of %s/%d: %w", topic, p, err)
		}
		start := oldest
		if c := committed[topic][p]; !opts.FromStart && c > oldest {
			start = c
		}
		if start >= end {
			continue
		}
		if err := r.partition(p, start, end, &st); err != nil {
			return st, err
		}
	}
	logger.Info("dead letters replayed", "topic", topic, "replayed", st.Replayed, "skipped", st.Skipped, "unreplayable", st.Unreplayable)
	return st, nil
}

type replayer struct {
	ctx     context.Context
	client  sarama.Client
	admin   sarama.ClusterAdmin
	prod    sarama.SyncProducer
	cons    sarama.Consumer
	topic   string
	opts    ReplayOptions
	log     *slog.Logger
	sources map[string][]int32 // partitions of source topics, cached
}

// partition replays offsets [start, end) of one dead-letter partition.
func (r *replayer) partition(p int32, start, end int64, st *ReplayStats) error {
	pc, err := r.cons.ConsumePartition(r.topic, p, start)
	if err != nil {
		return fmt.Errorf("ingest: replay: read %s/%d: %w", r.topic, p, err)
	}
	defer func() { _ = pc.Close() }()
	batch := make([]*sarama.ProducerMessage, 0, r.opts.BatchSize)
	next := start
	flush := func() error {
		if len(batch) > 0 {
			if err := r.prod.SendMessages(batch); err != nil {
				return fmt.Errorf("ingest: replay: publish: %w", err)
			}
			st.Replayed += len(batch)
			batch = batch[:0]
		}
		resp, err := r.admin.AlterConsumerGroupOffsets(r.opts.Group,
			map[string]map[int32]sarama.OffsetAndMetadata{r.topic: {p: {Offset: next, LeaderEpoch: -1}}}, nil)
		if err != nil {
			return fmt.Errorf("ingest: replay: record progress: %w", err)
		}
		if kerr := resp.Errors[r.topic][p]; !errors.Is(kerr, sarama.ErrNoError) {
			return fmt.Errorf("ingest: replay: record progress of %s/%d: %w", r.topic, p, kerr)
		}
		return nil
	}
	idle := time.NewTimer(idleWarn)
	defer idle.Stop()
	for next < end {
		select {
		case <-r.ctx.Done():
			return r.ctx.Err()
		case err := <-pc.Errors():
			return fmt.Errorf("ingest: replay: read %s/%d: %w", r.topic, p, err)
		case <-idle.C:
			r.log.Warn("replay waiting for dead letters", "topic", r.topic, "partition", p, "next_offset", next, "end_offset", end)
			idle.Reset(idleWarn)
		case msg := <-pc.Messages():
			idle.Reset(idleWarn)
			if msg.Offset >= end {
				next = end
				continue
			}
			next = msg.Offset + 1
			pm, err := r.message(msg, st)
			if err != nil {
				return err
			}
			if pm != nil {
				batch = append(batch, pm)
			}
			if len(batch) >= r.opts.BatchSize {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// message turns a dead letter back into its source record, or nil when it
// is skipped or cannot be replayed.
func (r *replayer) message(msg *sarama.ConsumerMessage, st *ReplayStats) (*sarama.ProducerMessage, error) {
	dl, err := ParseDeadLetter(msg.Headers)
	if err != nil {
		st.Unreplayable++
		r.log.Warn("dead-letter record without source headers", "topic", r.topic, "partition", msg.Partition, "offset", msg.Offset, "err", err)
		return nil, nil
	}
	if (len(r.opts.Classes) > 0 && !slices.Contains(r.opts.Classes, dl.Class)) ||
		(len(r.opts.Topics) > 0 && !slices.Contains(r.opts.Topics, dl.Topic)) {
		st.Skipped++
		return nil, nil
	}
	if dl.ValueOmitted {
		st.Unreplayable++
		r.log.Warn("dead letter without its value: replay it from the source topic", "source_topic", dl.Topic,
			"source_partition", dl.Partition, "source_offset", dl.Offset)
		return nil, nil
	}
	ps, ok := r.sources[dl.Topic]
	if !ok {
		if ps, err = r.client.Partitions(dl.Topic); err != nil {
			return nil, fmt.Errorf("ingest: replay: source topic %s: %w", dl.Topic, err)
		}
		r.sources[dl.Topic] = ps
	}
	if !slices.Contains(ps, dl.Partition) {
		return nil, fmt.Errorf("ingest: replay: source partition %s/%d does not exist", dl.Topic, dl.Partition)
	}
	pm := &sarama.ProducerMessage{Topic: dl.Topic, Partition: dl.Partition, Timestamp: msg.Timestamp}
	if msg.Key != nil {
		pm.Key = sarama.ByteEncoder(msg.Key)
	}
	if msg.Value != nil {
		pm.Value = sarama.ByteEncoder(msg.Value)
	}
	for _, h := range msg.Headers {
		if h != nil && !strings.HasPrefix(string(h.Key), headerPrefix) {
			pm.Headers = append(pm.Headers, *h)
		}
	}
	return pm, nil
}
