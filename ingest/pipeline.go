package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
	"github.com/rtgraph/rtgraph/normalize"
)

// Decoder turns one Kafka record into envelopes. normalize.New builds one
// per topic. Decode is called from one goroutine per partition, so it must
// be safe for concurrent use; its errors are permanent (the record is
// dead-lettered), see normalize.Decoder.
type Decoder interface {
	Decode(msg normalize.Message) ([]normalize.Envelope, error)
}

// Mapper turns one envelope into graph mutations (the mapping package's
// Mapper). Map is called from one goroutine per partition, so it must be safe
// for concurrent use. It may return no mutations (the event maps to
// nothing). An error that wraps a *graph.RetryableError, or a context error
// while ctx is live, is transient: the pipeline retries the same envelope
// with backoff and stops consuming the partition meanwhile. Any other error
// is permanent: the record goes to the dead-letter topic, classified by
// ClassifiedError when the error implements it. Cancelling ctx abandons the
// call.
type Mapper interface {
	Map(ctx context.Context, env *normalize.Envelope) ([]graph.Mutation, error)
}

// Writer applies mutations: graph.Writer, whose contract applies (Apply is
// idempotent; nil means durably acknowledged; *graph.RetryableError is
// transient). A permanent error wrapping graph.ErrNonConforming makes the
// pipeline find and dead-letter the records at fault; any other permanent
// error stops the pipeline.
type Writer interface {
	Apply(ctx context.Context, muts []graph.Mutation) error
}

// WatermarkWriter records watermarks; every graph.WatermarkStore is one.
type WatermarkWriter interface {
	SetWatermarks(ctx context.Context, ws []graph.Watermark) error
}

// producer sends records synchronously; sarama.SyncProducer is one. Tests
// substitute it.
type producer interface {
	SendMessages(msgs []*sarama.ProducerMessage) error
	Close() error
}

// ReadinessCondition is the readiness condition the pipeline marks while it
// is a member of its consumer group (pass it to lifecycle.NewReadiness).
const ReadinessCondition = "ingest_consuming"

// Options are a pipeline's configuration and collaborators.
type Options struct {
	Config Config
	Kafka  KafkaConfig
	// Mapper and Writer are required.
	Mapper Mapper
	Writer Writer
	// Watermarks, when set, receives the watermark of every partition after
	// its writes are acknowledged (see graph.Watermark).
	Watermarks WatermarkWriter
	// Fold, when set, reduces the mutations of one batch before they are
	// written (mapping.Fold: later writes of the same item replace earlier
	// ones). It must keep the store's final state unchanged.
	Fold func([]graph.Mutation) []graph.Mutation
	// Decoders overrides the decoder of a topic; topics not named here get
	// normalize.New(Config.Topics[topic]).
	Decoders map[string]Decoder
	// Logger receives the pipeline's events; nil discards them.
	Logger *slog.Logger
	// Registerer receives the pipeline's metrics; nil keeps them private.
	Registerer prometheus.Registerer
	// Readiness, when set, has ReadinessCondition marked while the pipeline
	// is in its consumer group.
	Readiness *lifecycle.Readiness
	// Now is the clock for freshness, watermarks and dead-letter times; nil
	// means time.Now.
	Now func() time.Time
}

// Errors of the pipeline.
var (
	// ErrDrainIncomplete: the pipeline stopped but a partition's last batch
	// could not be written within DrainTimeout; its offsets were not
	// committed, so its records will be delivered again.
	ErrDrainIncomplete = errors.New("ingest: drain incomplete")
	// ErrAlreadyRunning: Run was called on a pipeline that runs or ran.
	ErrAlreadyRunning = errors.New("ingest: pipeline already ran")
	// ErrNoDeadLetterTopic: the dead-letter topic does not exist.
	ErrNoDeadLetterTopic = errors.New("ingest: dead-letter topic does not exist")
	// ErrDeadLetterLimit: ingest.dead_letter_max_message_bytes exceeds the
	// dead-letter topic's max.message.bytes.
	ErrDeadLetterLimit = errors.New("ingest: dead-letter record limit above the topic's")
)

// kafkaDefaultMaxMessageBytes is Kafka's default message.max.bytes, used
// when the dead-letter topic's own limit cannot be read.
const kafkaDefaultMaxMessageBytes = 1048588

// deadLetterLimit is the largest dead-letter record batch the pipeline
// produces: ingest.dead_letter_max_message_bytes, checked against the
// dead-letter topic's max.message.bytes (read with DescribeConfigs), or
// that limit when the setting is 0. A topic limit that cannot be read (no
// DescribeConfigs permission) is logged and Kafka's default assumed: a
// record the topic still refuses as too large goes without its value.
func (p *Pipeline) deadLetterLimit(sc *sarama.Config) (int, error) {
	want := p.cfg.DeadLetterMaxMessageBytes
	topicMax, err := describeMaxMessageBytes(p.kafka.Brokers, sc, p.cfg.DeadLetterTopic)
	switch {
	case errors.Is(err, sarama.ErrUnknownTopicOrPartition):
		return 0, fmt.Errorf("%w: %s", ErrNoDeadLetterTopic, p.cfg.DeadLetterTopic)
	case err != nil:
		fallback := want
		if fallback == 0 {
			fallback = kafkaDefaultMaxMessageBytes
		}
		p.log.Warn("dead-letter topic limit unknown", "topic", p.cfg.DeadLetterTopic, "err", err, "max_message_bytes", fallback)
		return fallback, nil
	case want == 0:
		return max(topicMax, minDeadLetterBytes), nil
	case want > topicMax:
		return 0, fmt.Errorf("%w: ingest.dead_letter_max_message_bytes is %d but max.message.bytes of topic %s is %d: lower the setting (or set 0 to follow the topic), or raise the topic's max.message.bytes",
			ErrDeadLetterLimit, want, p.cfg.DeadLetterTopic, topicMax)
	}
	return want, nil
}

// ensureDeadLetterTopic creates the dead-letter topic when the cluster
// does not have it. Another process creating it at the same time is not an
// error.
func (p *Pipeline) ensureDeadLetterTopic(sc *sarama.Config) error {
	admin, err := sarama.NewClusterAdmin(p.kafka.Brokers, sc)
	if err != nil {
		return fmt.Errorf("ingest: connect to kafka: %w", err)
	}
	defer func() { _ = admin.Close() }()
	topic := p.cfg.DeadLetterTopic
	metas, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		return fmt.Errorf("ingest: describe dead-letter topic %s: %w", topic, err)
	}
	if len(metas) == 1 && !errors.Is(metas[0].Err, sarama.ErrUnknownTopicOrPartition) {
		return nil // it exists, or an error the checks after this report
	}
	dc := p.cfg.DeadLetterCreate
	detail := &sarama.TopicDetail{NumPartitions: dc.Partitions, ReplicationFactor: dc.ReplicationFactor}
	if dc.Retention > 0 {
		ms := strconv.FormatInt(dc.Retention.Milliseconds(), 10)
		detail.ConfigEntries = map[string]*string{"retention.ms": &ms}
	}
	err = admin.CreateTopic(topic, detail, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("%w: %s: creating it failed: %w", ErrNoDeadLetterTopic, topic, err)
	}
	if err == nil {
		p.log.Info("dead-letter topic created", "topic", topic, "partitions", dc.Partitions, "replication_factor", dc.ReplicationFactor, "retention", dc.Retention)
	}
	return nil
}

// describeMaxMessageBytes reads a topic's effective max.message.bytes.
func describeMaxMessageBytes(brokers []string, sc *sarama.Config, topic string) (int, error) {
	admin, err := sarama.NewClusterAdmin(brokers, sc)
	if err != nil {
		return 0, fmt.Errorf("ingest: connect to kafka: %w", err)
	}
	defer func() { _ = admin.Close() }()
	results, err := admin.DescribeConfigs([]*sarama.ConfigResource{{
		Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"max.message.bytes"},
	}}, sarama.DescribeConfigsOptions{})
	if err != nil {
		return 0, err
	}
	for _, r := range results {
		if r.Name != topic {
			continue
		}
		if r.ErrorCode != sarama.ErrNoError {
			return 0, fmt.Errorf("describe %s: %w: %s", topic, r.ErrorCode, r.ErrorMsg)
		}
		for _, e := range r.Configs {
			if e.Name == "max.message.bytes" {
				n, err := strconv.Atoi(e.Value)
				if err != nil || n <= 0 {
					return 0, fmt.Errorf("max.message.bytes of %s is %q", topic, e.Value)
				}
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("max.message.bytes of %s not described", topic)
}

// Pipeline consumes the configured topics as one member of the consumer
// group and writes what they map to into the store. See the package doc.
type Pipeline struct {
	cfg      Config
	kafka    KafkaConfig
	mapper   Mapper
	writer   Writer
	wm       WatermarkWriter
	fold     func([]graph.Mutation) []graph.Mutation
	decoders map[string]Decoder
	mappings map[string]string // topic -> mapping name, for dead-letter headers
	topics   []string
	log      *slog.Logger
	m        *metrics
	ready    *lifecycle.Readiness
	now      func() time.Time

	ran atomic.Bool

	// run is the state of the current Run; set before any worker starts.
	run *runState
}

// runState is what the workers of one Run share.
type runState struct {
	dlq producer
	// dlqMaxBytes is the dead-letter producer's Producer.MaxMessageBytes.
	dlqMaxBytes int
	// consumeCtx ends when the pipeline stops (Run's ctx, or a fatal
	// error); a worker whose session ends while consumeCtx is done is
	// stopping cleanly, not losing its partition.
	consumeCtx context.Context
	stop       context.CancelCauseFunc
	// hardCtx ends DrainTimeout after consumeCtx: the bound of the final
	// flush.
	hardCtx context.Context

	mu         sync.Mutex
	fatal      error
	incomplete bool
}

// fail stops the pipeline because of err (the first one wins).
func (r *runState) fail(err error) {
	r.mu.Lock()
	if r.fatal == nil {
		r.fatal = err
	}
	r.mu.Unlock()
	r.stop(err)
}

func (r *runState) drainIncomplete() {
	r.mu.Lock()
	r.incomplete = true
	r.mu.Unlock()
}

// NewPipeline checks the options and builds the decoders. It connects to
// nothing: Run does.
func NewPipeline(opts Options) (*Pipeline, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if err := opts.Kafka.Validate(); err != nil {
		return nil, err
	}
	if opts.Mapper == nil {
		return nil, errors.New("ingest: new pipeline: nil Mapper")
	}
	if opts.Writer == nil {
		return nil, errors.New("ingest: new pipeline: nil Writer")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("ingest: new pipeline: %w", err)
	}
	p := &Pipeline{
		cfg: opts.Config, kafka: opts.Kafka, mapper: opts.Mapper, writer: opts.Writer, wm: opts.Watermarks,
		fold: opts.Fold, decoders: map[string]Decoder{}, mappings: map[string]string{},
		topics: sortedTopics(opts.Config.Topics), log: logger, m: m, ready: opts.Readiness, now: now,
	}
	if p.ready != nil {
		p.ready.SetDetail("stalled_partitions", func() any {
			if s := p.StalledPartitions(); len(s) > 0 {
				return s
			}
			return nil
		})
	}
	for _, t := range p.topics {
		dc := opts.Config.Topics[t]
		p.mappings[t] = dc.Mapping
		if d, ok := opts.Decoders[t]; ok && d != nil {
			p.decoders[t] = d
			continue
		}
		d, err := normalize.New(dc)
		if err != nil {
			return nil, fmt.Errorf("ingest: topic %s: %w", t, err)
		}
		p.decoders[t] = d
	}
	return p, nil
}

// Run is the pipeline as a lifecycle stage. It joins the consumer group and
// consumes until ctx ends, then stops fetching, writes what it holds (within
// DrainTimeout), commits the offsets of what is written, leaves the group and
// closes its clients. It returns nil after such a clean stop; an error when
// the stop could not flush everything (ErrDrainIncomplete: nothing is lost,
// the records are delivered again), when the store failed permanently, or
// when Kafka could not be reached at start. A pipeline runs once.
func (p *Pipeline) Run(ctx context.Context) error {
	if !p.ran.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	sc, err := p.cfg.consumerConfig(p.kafka)
	if err != nil {
		return err
	}
	pc, err := producerConfig(p.kafka)
	if err != nil {
		return err
	}
	if p.cfg.DeadLetterCreate.Enabled {
		if err := p.ensureDeadLetterTopic(pc); err != nil {
			return err
		}
	}
	limit, err := p.deadLetterLimit(pc)
	if err != nil {
		return err
	}
	// sarama holds the records of a batch to MaxMessageBytes, the broker
	// the whole batch, its header included, to max.message.bytes.
	pc.Producer.MaxMessageBytes = limit - recordBatchOverhead
	pclient, err := sarama.NewClient(p.kafka.Brokers, pc)
	if err != nil {
		return fmt.Errorf("ingest: connect to kafka: %w", err)
	}
	defer func() { _ = pclient.Close() }()
	if parts, err := pclient.Partitions(p.cfg.DeadLetterTopic); err != nil || len(parts) == 0 {
		return fmt.Errorf("%w: %s: %v", ErrNoDeadLetterTopic, p.cfg.DeadLetterTopic, err)
	}
	prod, err := sarama.NewSyncProducerFromClient(pclient)
	if err != nil {
		return fmt.Errorf("ingest: dead-letter producer: %w", err)
	}
	group, err := sarama.NewConsumerGroup(p.kafka.Brokers, p.cfg.GroupID, sc)
	if err != nil {
		_ = prod.Close()
		return fmt.Errorf("ingest: join consumer group %s: %w", p.cfg.GroupID, err)
	}
	errsDone := make(chan struct{})
	go func() {
		defer close(errsDone)
		for err := range group.Errors() {
			p.m.consumerErrors.Inc()
			p.log.Warn("kafka consumer error", "group", p.cfg.GroupID, "err", err)
		}
	}()

	r := p.start(ctx, prod)
	r.dlqMaxBytes = pc.Producer.MaxMessageBytes
	p.log.Info("ingest pipeline started", "group", p.cfg.GroupID, "topics", p.topics)
	h := &groupHandler{p: p, r: r}
	wait := p.cfg.Retry.Backoff
	for {
		err := group.Consume(r.consumeCtx, p.topics, h)
		if r.consumeCtx.Err() != nil {
			break
		}
		p.markReady(false)
		if err != nil {
			p.log.Warn("consumer group session failed", "group", p.cfg.GroupID, "err", err, "retry_in", wait)
		}
		// Consume returns after every session; a failing one (no broker,
		// no coordinator) is retried with backoff, never in a tight loop.
		t := time.NewTimer(wait)
		select {
		case <-r.consumeCtx.Done():
		case <-t.C:
		}
		t.Stop()
		wait = min(2*wait, p.cfg.Retry.BackoffMax)
		if err == nil {
			wait = p.cfg.Retry.Backoff
		}
	}
	p.markReady(false)
	// Consume has released the session: every worker has flushed (or
	// abandoned) its batch and the marked offsets are committed. Leaving the
	// group now hands the partitions over at once.
	closeErr := group.Close()
	<-errsDone
	if err := prod.Close(); err != nil && closeErr == nil {
		closeErr = err
	}
	r.stop(nil)
	if closeErr != nil {
		p.log.Warn("kafka clients closed with error", "err", closeErr)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.fatal != nil:
		p.log.Error("ingest pipeline stopped on error", "err", r.fatal)
		return r.fatal
	case r.incomplete:
		p.log.Warn("ingest pipeline stopped with unwritten batches")
		return ErrDrainIncomplete
	}
	p.log.Info("ingest pipeline stopped")
	return nil
}

// start sets up the run state: consumeCtx follows ctx; hardCtx ends
// DrainTimeout after consumeCtx does.
func (p *Pipeline) start(ctx context.Context, dlq producer) *runState {
	consumeCtx, stop := context.WithCancelCause(ctx)
	hardCtx, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	context.AfterFunc(consumeCtx, func() {
		t := time.AfterFunc(p.cfg.DrainTimeout, hardStop)
		context.AfterFunc(hardCtx, func() { t.Stop() })
	})
	r := &runState{dlq: dlq, consumeCtx: consumeCtx, hardCtx: hardCtx,
		dlqMaxBytes: kafkaDefaultMaxMessageBytes - recordBatchOverhead}
	r.stop = func(cause error) {
		stop(cause)
		if cause == nil {
			// Run is over: release the drain timer.
			hardStop()
		}
	}
	p.run = r
	return r
}

// StalledPartitions lists the owned partitions whose worker has been
// retrying a failing dependency for at least Config.StallTimeout, longest
// first. /readyz reports them under detail.stalled_partitions.
func (p *Pipeline) StalledPartitions() []StalledPartition {
	return p.m.stalling.stalled(time.Now(), p.cfg.StallTimeout)
}

func (p *Pipeline) markReady(ok bool) {
	if p.ready == nil {
		return
	}
	if ok {
		p.ready.Mark(ReadinessCondition)
	} else {
		p.ready.Unmark(ReadinessCondition)
	}
}

// groupHandler is the sarama.ConsumerGroupHandler: one worker per claim.
type groupHandler struct {
	p *Pipeline
	r *runState
}

func (h *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.p.markReady(true)
	h.p.log.Info("consumer group joined", "group", h.p.cfg.GroupID, "generation", s.GenerationID(), "claims", s.Claims())
	return nil
}

func (h *groupHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	h.p.log.Info("consumer group session ended", "group", h.p.cfg.GroupID, "generation", s.GenerationID())
	return nil
}

// ConsumeClaim runs the partition's worker. It returns nil: failures are
// the worker's to report (a fatal one stops the pipeline).
func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	dec, ok := h.p.decoders[c.Topic()]
	if !ok {
		// The group only subscribes to configured topics.
		return fmt.Errorf("ingest: claim of unconfigured topic %s", c.Topic())
	}
	w := newWorker(h.p, h.r, s, c, dec)
	w.run()
	return nil
}
