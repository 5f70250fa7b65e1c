package enrich

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors of the Enricher's life cycle.
var (
	// ErrRunning: Run was called twice.
	ErrRunning = errors.New("enrich: already running")
	// ErrStopped: Run returned before every cache was loaded.
	ErrStopped = errors.New("enrich: stopped before the caches were loaded")
	// ErrNoTopic: a cache's topic does not exist or has no partitions.
	ErrNoTopic = errors.New("enrich: cache topic not found")
)

// ReadinessCondition is the readiness condition to mark once Loaded is
// closed (pass it to lifecycle.NewReadiness).
const ReadinessCondition = "enrich_caches_loaded"

// Enricher owns the metadata caches and the feeders that load them from
// their compacted topics. It implements mapping.Lookup.
//
// Life cycle: New builds the empty caches; Run connects, loads every
// partition of every cache topic up to the high watermark it has when Run
// starts, closes Loaded, and then follows live updates until its context is
// cancelled. The pipeline must not map events before Loaded is closed (the
// process keeps readiness off until then), so that every event is joined
// against at least the metadata that existed when the process started.
type Enricher struct {
	cfg     Config
	brokers []string
	sarama  *sarama.Config
	log     *slog.Logger
	caches  map[string]*Cache
	order   []*Cache

	running  atomic.Bool
	loaded   chan struct{}
	loadOnce sync.Once
	done     chan struct{}
	runErr   error // set before done is closed
}

// New validates cfg and builds the caches, registering their metrics on
// reg. brokers and sc are the Kafka connection: sc is built by
// ingest.KafkaConfig.Sarama() and is copied, not modified; its Version must
// be at least 4.0.0. New does not connect: Run does.
func New(cfg Config, brokers []string, sc *sarama.Config, reg prometheus.Registerer, log *slog.Logger) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		return nil, errors.New("enrich: nil logger")
	}
	if len(cfg.Caches) > 0 {
		if len(brokers) == 0 || sc == nil {
			return nil, errors.New("enrich: caches are configured but no Kafka connection is given")
		}
		if !sc.Version.IsAtLeast(sarama.V4_0_0_0) {
			return nil, fmt.Errorf("enrich: kafka version %s is older than %s", sc.Version, sarama.V4_0_0_0)
		}
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	e := &Enricher{
		cfg:     cfg,
		brokers: brokers,
		log:     log,
		caches:  make(map[string]*Cache, len(cfg.Caches)),
		loaded:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	if sc != nil {
		c := *sc
		// A plain partition consumer per partition, from the oldest offset:
		// a compacted topic's whole content is the cache. Errors are read
		// (and logged) rather than dropped; transactional producers' aborted
		// records are never cached.
		c.Consumer.Return.Errors = true
		c.Consumer.Offsets.Initial = sarama.OffsetOldest
		c.Consumer.IsolationLevel = sarama.ReadCommitted
		e.sarama = &c
	}
	for _, cc := range cfg.Caches {
		c, err := newCache(cc, m, log)
		if err != nil {
			return nil, err
		}
		e.caches[cc.Name] = c
		e.order = append(e.order, c)
	}
	return e, nil
}

// Has implements mapping.Lookup.
func (e *Enricher) Has(cache string) bool {
	_, ok := e.caches[cache]
	return ok
}

// Get implements mapping.Lookup: the document under key in the named cache.
// It never blocks on I/O. An unknown cache is a miss.
func (e *Enricher) Get(cache, key string) (map[string]any, bool) {
	c, ok := e.caches[cache]
	if !ok {
		return nil, false
	}
	return c.Get(key)
}

// Cache returns the named cache.
func (e *Enricher) Cache(name string) (*Cache, bool) {
	c, ok := e.caches[name]
	return c, ok
}

// Loaded is closed once every cache has read its topic up to the high
// watermark each partition had when Run started. With no caches configured
// it is closed as soon as Run starts.
func (e *Enricher) Loaded() <-chan struct{} { return e.loaded }

// WaitLoaded blocks until the caches are loaded (nil), ctx is done
// (ctx.Err()), or Run returned first (its error, or ErrStopped).
func (e *Enricher) WaitLoaded(ctx context.Context) error {
	select {
	case <-e.loaded:
		return nil
	default:
	}
	select {
	case <-e.loaded:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		select {
		case <-e.loaded:
			return nil
		default:
		}
		if e.runErr != nil {
			return e.runErr
		}
		return ErrStopped
	}
}

func (e *Enricher) markLoaded() { e.loadOnce.Do(func() { close(e.loaded) }) }

// Run loads and then follows every cache topic until ctx is cancelled, then
// closes its consumers and returns nil. It returns an error, and stops
// feeding every cache, when it cannot connect, a cache topic does not exist,
// or a partition consumer stops for good (an offset out of range, say):
// a cache that silently stops following its topic would make joins wrong, so
// the process must stop. Run may be called once; it is the lifecycle stage
// of the enricher.
func (e *Enricher) Run(ctx context.Context) (err error) {
	if !e.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer func() {
		e.runErr = err
		close(e.done)
	}()
	if len(e.order) == 0 {
		e.markLoaded()
		<-ctx.Done()
		return nil
	}
	client, err := sarama.NewClient(e.brokers, e.sarama)
	if err != nil {
		return fmt.Errorf("enrich: connect: %w", err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("enrich: consumer: %w", err)
	}
	defer consumer.Close()

	var feeders []*partitionFeeder
	for _, c := range e.order {
		fs, err := e.partitions(client, c)
		if err != nil {
			return err
		}
		feeders = append(feeders, fs...)
	}
	l := newLoadTracker(e, feeders)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for _, f := range feeders {
		pc, err := consumer.ConsumePartition(f.cache.topic, f.partition, sarama.OffsetOldest)
		if err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("enrich: cache %s: consume %s/%d: %w", f.cache.name, f.cache.topic, f.partition, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.run(ctx, pc, l); err != nil {
				once.Do(func() { firstErr = err })
				cancel()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// partitions lists a cache topic's partitions with the offsets that bound
// the initial load.
func (e *Enricher) partitions(client sarama.Client, c *Cache) ([]*partitionFeeder, error) {
	parts, err := client.Partitions(c.topic)
	if err != nil {
		if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			return nil, fmt.Errorf("%w: cache %s: topic %s", ErrNoTopic, c.name, c.topic)
		}
		return nil, fmt.Errorf("enrich: cache %s: partitions of %s: %w", c.name, c.topic, err)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: cache %s: topic %s has no partitions", ErrNoTopic, c.name, c.topic)
	}
	out := make([]*partitionFeeder, 0, len(parts))
	for _, p := range parts {
		oldest, err := client.GetOffset(c.topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("enrich: cache %s: oldest offset of %s/%d: %w", c.name, c.topic, p, err)
		}
		hw, err := client.GetOffset(c.topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("enrich: cache %s: high watermark of %s/%d: %w", c.name, c.topic, p, err)
		}
		out = append(out, &partitionFeeder{
			cache: c, client: client, log: e.log, partition: p,
			next: oldest, hw: hw, idle: e.cfg.IdleProbe,
		})
	}
	return out, nil
}

// loadTracker closes Loaded when the last partition reaches its watermark,
// and marks each cache loaded when its own partitions have.
type loadTracker struct {
	e        *Enricher
	mu       sync.Mutex
	pending  int
	perCache map[*Cache]int
}

func newLoadTracker(e *Enricher, fs []*partitionFeeder) *loadTracker {
	l := &loadTracker{e: e, pending: len(fs), perCache: map[*Cache]int{}}
	for _, f := range fs {
		l.perCache[f.cache]++
	}
	return l
}

func (l *loadTracker) done(f *partitionFeeder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.perCache[f.cache]--
	if l.perCache[f.cache] == 0 {
		f.cache.stats.loaded.Set(1)
		l.e.log.Info("enrich cache loaded", "cache", f.cache.name, "topic", f.cache.topic, "entries", f.cache.Len())
	}
	l.pending--
	if l.pending == 0 {
		l.e.markLoaded()
	}
}
