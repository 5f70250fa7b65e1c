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
	// FromSource ones were dead-lettered without their value (too large
	// or refused by the dead-letter topic) and were read back from their
	// source topic, checked against the recorded size and SHA-256, and
	// republished; they are counted in Replayed too.
	FromSource int
	// Unreplayable ones are not dead letters (no source headers), or lack
	// their value and the source no longer has the same record (retention
	// or compaction removed it); they are logged.
	Unreplayable int
}

// sourceReadTimeout bounds the read of one source record whose value a
// dead letter left out.
const sourceReadTimeout = 30 * time.Second

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
		sources: map[string][]int32{}, kc: kc,
	}
	defer r.closeLarge()
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
	kc      KafkaConfig
	// large publishes the records read back from their source, one at a
	// time, with no client-side size limit below Kafka's request size: the
	// source topic accepted them once. Made on first use.
	large sarama.SyncProducer
}

func (r *replayer) closeLarge() {
	if r.large != nil {
		_ = r.large.Close()
	}
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
			pm, fromSource, err := r.message(msg, st)
			if err != nil {
				return err
			}
			switch {
			case pm == nil:
			case fromSource:
				// Keep the order: what is batched goes first.
				if len(batch) > 0 {
					if err := r.prod.SendMessages(batch); err != nil {
						return fmt.Errorf("ingest: replay: publish: %w", err)
					}
					st.Replayed += len(batch)
					batch = batch[:0]
				}
				if err := r.publishLarge(pm); err != nil {
					return err
				}
				st.Replayed++
				st.FromSource++
			default:
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
// is skipped or cannot be replayed. fromSource says the record was read back
// from the source topic because the dead letter left its value out.
func (r *replayer) message(msg *sarama.ConsumerMessage, st *ReplayStats) (pm *sarama.ProducerMessage, fromSource bool, err error) {
	dl, err := ParseDeadLetter(msg.Headers)
	if err != nil {
		st.Unreplayable++
		r.log.Warn("dead-letter record without source headers", "topic", r.topic, "partition", msg.Partition, "offset", msg.Offset, "err", err)
		return nil, false, nil
	}
	if (len(r.opts.Classes) > 0 && !slices.Contains(r.opts.Classes, dl.Class)) ||
		(len(r.opts.Topics) > 0 && !slices.Contains(r.opts.Topics, dl.Topic)) {
		st.Skipped++
		return nil, false, nil
	}
	ps, ok := r.sources[dl.Topic]
	if !ok {
		if ps, err = r.client.Partitions(dl.Topic); err != nil {
			return nil, false, fmt.Errorf("ingest: replay: source topic %s: %w", dl.Topic, err)
		}
		r.sources[dl.Topic] = ps
	}
	if !slices.Contains(ps, dl.Partition) {
		return nil, false, fmt.Errorf("ingest: replay: source partition %s/%d does not exist", dl.Topic, dl.Partition)
	}
	if dl.ValueOmitted || dl.KeyOmitted || dl.HeadersOmitted {
		src, why, err := r.readSource(dl)
		if err != nil {
			return nil, false, err
		}
		if src == nil {
			st.Unreplayable++
			r.log.Warn("dead letter without its value, and the source no longer has it", "source_topic", dl.Topic,
				"source_partition", dl.Partition, "source_offset", dl.Offset, "why", why)
			return nil, false, nil
		}
		pm := &sarama.ProducerMessage{Topic: dl.Topic, Partition: dl.Partition, Timestamp: src.Timestamp}
		if src.Key != nil {
			pm.Key = sarama.ByteEncoder(src.Key)
		}
		if src.Value != nil {
			pm.Value = sarama.ByteEncoder(src.Value)
		}
		for _, h := range src.Headers {
			if h != nil {
				pm.Headers = append(pm.Headers, *h)
			}
		}
		return pm, true, nil
	}
	pm = &sarama.ProducerMessage{Topic: dl.Topic, Partition: dl.Partition, Timestamp: msg.Timestamp}
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
	return pm, false, nil
}

// readSource reads the record a dead letter points at from its source
// topic. It returns nil and why when the source no longer holds that record
// (deleted by retention, removed by compaction) or holds different bytes
// than the dead letter recorded; an error only when the read itself fails.
func (r *replayer) readSource(dl DeadLetter) (*sarama.ConsumerMessage, string, error) {
	oldest, err := r.client.GetOffset(dl.Topic, dl.Partition, sarama.OffsetOldest)
	if err != nil {
		return nil, "", fmt.Errorf("ingest: replay: start of %s/%d: %w", dl.Topic, dl.Partition, err)
	}
	if dl.Offset < oldest {
		return nil, fmt.Sprintf("offset below the partition's start %d (retention)", oldest), nil
	}
	newest, err := r.client.GetOffset(dl.Topic, dl.Partition, sarama.OffsetNewest)
	if err != nil {
		return nil, "", fmt.Errorf("ingest: replay: end of %s/%d: %w", dl.Topic, dl.Partition, err)
	}
	if dl.Offset >= newest {
		return nil, fmt.Sprintf("offset at or past the partition's end %d (topic recreated?)", newest), nil
	}
	pc, err := r.cons.ConsumePartition(dl.Topic, dl.Partition, dl.Offset)
	if err != nil {
		return nil, "", fmt.Errorf("ingest: replay: read source %s/%d@%d: %w", dl.Topic, dl.Partition, dl.Offset, err)
	}
	defer func() { _ = pc.Close() }()
	t := time.NewTimer(sourceReadTimeout)
	defer t.Stop()
	var src *sarama.ConsumerMessage
	select {
	case <-r.ctx.Done():
		return nil, "", r.ctx.Err()
	case err := <-pc.Errors():
		return nil, "", fmt.Errorf("ingest: replay: read source %s/%d@%d: %w", dl.Topic, dl.Partition, dl.Offset, err)
	case <-t.C:
		return nil, "", fmt.Errorf("ingest: replay: read source %s/%d@%d: nothing within %s", dl.Topic, dl.Partition, dl.Offset, sourceReadTimeout)
	case src = <-pc.Messages():
	}
	switch {
	case src.Offset != dl.Offset:
		return nil, fmt.Sprintf("offset %d is gone (compacted); the next record is at %d", dl.Offset, src.Offset), nil
	case dl.ValueOmitted && !sameBytes(src.Value, dl.ValueBytes, dl.ValueSHA256):
		return nil, "the source value differs from the one dead-lettered (size or SHA-256)", nil
	case dl.KeyOmitted && !sameBytes(src.Key, dl.KeyBytes, dl.KeySHA256):
		return nil, "the source key differs from the one dead-lettered (size or SHA-256)", nil
	}
	return src, "", nil
}

// sameBytes reports whether b has the recorded size and SHA-256 (an empty
// record of either is not checked: older dead letters lack them).
func sameBytes(b []byte, size int, sum string) bool {
	if sum != "" && sha256Hex(b) != sum {
		return false
	}
	return size == 0 || len(b) == size
}

// publishLarge sends one record read back from its source.
func (r *replayer) publishLarge(pm *sarama.ProducerMessage) error {
	if r.large == nil {
		sc, err := producerConfig(r.kc)
		if err != nil {
			return err
		}
		sc.Producer.Partitioner = sarama.NewManualPartitioner
		sc.Producer.MaxMessageBytes = int(sarama.MaxRequestSize) - 1
		p, err := sarama.NewSyncProducer(r.kc.Brokers, sc)
		if err != nil {
			return fmt.Errorf("ingest: replay: producer: %w", err)
		}
		r.large = p
	}
	if _, _, err := r.large.SendMessage(pm); err != nil {
		return fmt.Errorf("ingest: replay: publish %s/%d: %w", pm.Topic, pm.Partition, err)
	}
	return nil
}
