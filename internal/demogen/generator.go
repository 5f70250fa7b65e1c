package demogen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/rtgraph/rtgraph/normalize"
)

// Record kinds, the label of rtgraph_demogen_records_total and the keys of
// Stats.ByKind.
const (
	kindSnapshot   = "snapshot"   // CDC op r
	kindInsert     = "insert"     // CDC op c
	kindUpdate     = "update"     // CDC op u
	kindDelete     = "delete"     // CDC op d (flattened devices: __deleted)
	kindTombstone  = "tombstone"  // the null record after a delete
	kindRequest    = "request"    // login, title page and playback request logs
	kindImpression = "impression" // ad impressions
	kindMetadata   = "metadata"   // titles and campaigns documents
	kindMalformed  = "malformed"  // made to fail decoding
)

// record is one Kafka record to publish.
type record struct {
	topic string
	key   []byte // nil: no key
	value []byte // nil: tombstone
	at    time.Time
	kind  string
	// class is the decode error a malformed record must produce.
	class normalize.ErrorClass
}

// Producer publishes records; sarama.SyncProducer satisfies it. The
// generator calls it from one goroutine. SendMessages returns
// sarama.ProducerErrors naming the messages that failed; the others were
// acknowledged.
type Producer interface {
	SendMessages(msgs []*sarama.ProducerMessage) error
}

// Stats counts what the generator published (acknowledged records).
type Stats struct {
	Records   uint64
	ByKind    map[string]uint64
	ByTopic   map[string]uint64
	Malformed uint64
	// SendFailures counts failed publish attempts (each retried).
	SendFailures uint64
}

// Generator publishes the demo vertical's events. Create it with New; call
// SeedMetadata (optional) and then Run, one after the other. Stats is safe
// to call at any time from any goroutine.
type Generator struct {
	cfg     Config
	p       Producer
	log     *slog.Logger
	metrics *metrics

	// Owned by the goroutine in SeedMetadata or Run (run serializes them).
	run     sync.Mutex
	st      *state
	pcg     *rand.PCG
	rng     *rand.Rand
	runTag  string
	seq     uint64 // request ids given out in this run
	begun   bool
	dirty   bool // records generated but not acknowledged: no checkpoint
	lastCkp time.Time
	// campaigns caches each campaign's document at its current revision.
	campaigns map[int]*cachedCampaign

	mu    sync.Mutex
	stats Stats
}

// ErrPublish: records could not be published and ctx ended while retrying.
var ErrPublish = errors.New("demogen: publish")

// New returns a generator that publishes through p. It loads cfg.StateFile
// when it exists (continuing that sequence) and registers its metrics on
// reg. It publishes nothing until SeedMetadata or Run.
func New(cfg Config, p Producer, log *slog.Logger, reg prometheus.Registerer) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := subscriptionSchemas(); err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg, p: p, log: log,
		stats: Stats{ByKind: map[string]uint64{}, ByTopic: map[string]uint64{}}}
	var st *state
	if cfg.StateFile != "" {
		var err error
		if st, err = loadState(cfg.StateFile); err != nil {
			return nil, err
		}
	}
	if st == nil {
		st = freshState(cfg)
	} else if st.Seed != cfg.Seed {
		log.Info("demo generator continues a saved sequence", "state_file", cfg.StateFile, "saved_seed", st.Seed, "seed", cfg.Seed)
	}
	if len(st.CampaignRevs) < cfg.Campaigns {
		st.CampaignRevs = append(st.CampaignRevs, make([]int, cfg.Campaigns-len(st.CampaignRevs))...)
	}
	g.st = st
	g.pcg = &rand.PCG{}
	if err := g.pcg.UnmarshalBinary(st.RNG); err != nil {
		return nil, fmt.Errorf("%w: random state: %v", ErrState, err)
	}
	g.rng = rand.New(g.pcg)
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	g.metrics = m
	return g, nil
}

// begin claims a run tag: later than the clock's start and than every
// saved run, and saved before any record carries it, so no two runs share
// one even after a crash.
func (g *Generator) begin() error {
	if g.begun {
		return nil
	}
	tag := max(g.cfg.Clock().UnixMilli(), g.st.Run+1)
	g.st.Run = tag
	g.runTag = base36(tag)
	if err := g.checkpoint(); err != nil {
		return err
	}
	g.begun = true
	return nil
}

// SeedMetadata publishes the titles catalogue and the campaigns, once per
// state: a generator continuing a state file that already published them
// publishes nothing. Call it before the pipeline starts so that the
// enrichment caches hold the metadata before the first event that joins
// it; Run calls it too. With Rate 0 it publishes nothing.
func (g *Generator) SeedMetadata(ctx context.Context) error {
	if g.cfg.Rate == 0 {
		return nil
	}
	g.run.Lock()
	defer g.run.Unlock()
	if err := g.begin(); err != nil {
		return err
	}
	if g.st.MetadataPublished {
		return nil
	}
	var recs []record
	for i := range g.st.Titles {
		recs = append(recs, g.titleRecord(i))
	}
	for i := range g.st.CampaignRevs {
		recs = append(recs, g.campaignRecord(i))
	}
	if err := g.publish(ctx, recs); err != nil {
		return err
	}
	g.st.MetadataPublished = true
	return g.checkpoint()
}

// burst is how many records one wait of the rate limiter admits: a
// twentieth of a second's worth, at least 1, at most 1000.
func (g *Generator) burst() int {
	return min(1000, max(1, int(math.Ceil(g.cfg.Rate/20))))
}

// Run publishes at cfg.Rate until ctx is cancelled, then saves the state
// and returns nil. With Rate 0 it publishes nothing and waits for ctx. A
// publish that fails is retried with backoff for as long as it fails; it
// returns an error only when the state cannot be saved.
func (g *Generator) Run(ctx context.Context) error {
	if g.cfg.Rate == 0 {
		<-ctx.Done()
		return nil
	}
	if err := g.SeedMetadata(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	g.run.Lock()
	defer g.run.Unlock()
	burst := g.burst()
	lim := rate.NewLimiter(rate.Limit(g.cfg.Rate), burst)
	budget := 0
	for {
		if err := lim.WaitN(ctx, burst); err != nil {
			return g.stop()
		}
		// A step may yield several records (a delete and its tombstone, a
		// cascade): the excess is owed and paid from the next burst, so the
		// long-run rate is exact and a checkpoint never splits a step.
		budget += burst
		var batch []record
		for budget > 0 {
			recs := g.step()
			budget -= len(recs)
			batch = append(batch, recs...)
		}
		if len(batch) == 0 {
			continue
		}
		if err := g.publish(ctx, batch); err != nil {
			return g.stop()
		}
		if time.Since(g.lastCkp) >= g.cfg.CheckpointInterval {
			if err := g.checkpoint(); err != nil {
				return err
			}
		}
	}
}

// stop saves the state unless generated records were not all acknowledged:
// then the saved state is the last one whose records all were, and the next
// run generates the rest again (same rows, new event ids).
func (g *Generator) stop() error {
	if g.dirty {
		g.log.Warn("demo generator stopped with unpublished records", "state_file", g.cfg.StateFile)
		return nil
	}
	return g.checkpoint()
}

func (g *Generator) checkpoint() error {
	if g.cfg.StateFile == "" {
		return nil
	}
	rng, err := g.pcg.MarshalBinary()
	if err != nil {
		return fmt.Errorf("%w: random state: %v", ErrState, err)
	}
	g.st.RNG = rng
	if err := saveState(g.cfg.StateFile, g.st); err != nil {
		return err
	}
	g.lastCkp = time.Now()
	return nil
}

// publish sends recs in order, retrying the failed ones with backoff until
// all are acknowledged or ctx ends.
func (g *Generator) publish(ctx context.Context, recs []record) error {
	g.dirty = true
	pending := make([]*sarama.ProducerMessage, len(recs))
	for i := range recs {
		r := &recs[i]
		m := &sarama.ProducerMessage{Topic: r.topic, Timestamp: r.at, Metadata: r}
		if r.key != nil {
			m.Key = sarama.ByteEncoder(r.key)
		}
		if r.value != nil {
			m.Value = sarama.ByteEncoder(r.value)
		}
		pending[i] = m
	}
	backoff := 100 * time.Millisecond
	for {
		err := g.p.SendMessages(pending)
		if err == nil {
			g.acknowledged(pending)
			g.dirty = false
			return nil
		}
		var perrs sarama.ProducerErrors
		failed := pending
		if errors.As(err, &perrs) && len(perrs) > 0 {
			bad := make(map[*sarama.ProducerMessage]bool, len(perrs))
			for _, pe := range perrs {
				bad[pe.Msg] = true
			}
			var ok []*sarama.ProducerMessage
			failed = nil
			for _, m := range pending {
				if bad[m] {
					failed = append(failed, m)
				} else {
					ok = append(ok, m)
				}
			}
			g.acknowledged(ok)
		}
		g.metrics.sendFailures.Inc()
		g.mu.Lock()
		g.stats.SendFailures++
		g.mu.Unlock()
		g.log.Warn("demo publish failed", "err", err, "records", len(failed), "retry_in", backoff)
		pending = failed
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %d records not acknowledged: %v", ErrPublish, len(pending), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (g *Generator) acknowledged(msgs []*sarama.ProducerMessage) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range msgs {
		r := m.Metadata.(*record)
		g.stats.Records++
		g.stats.ByKind[r.kind]++
		g.stats.ByTopic[r.topic]++
		if r.kind == kindMalformed {
			g.stats.Malformed++
			g.metrics.malformed.WithLabelValues(string(r.class)).Inc()
		}
		g.metrics.records.WithLabelValues(r.topic, r.kind).Inc()
	}
}

// Stats returns a copy of the counts so far.
func (g *Generator) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats
	s.ByKind = make(map[string]uint64, len(g.stats.ByKind))
	for k, v := range g.stats.ByKind {
		s.ByKind[k] = v
	}
	s.ByTopic = make(map[string]uint64, len(g.stats.ByTopic))
	for k, v := range g.stats.ByTopic {
		s.ByTopic[k] = v
	}
	return s
}

// tick returns the next event time in Unix µs: the clock, or one µs after
// the previous event if the clock has not moved past it. Event times thus
// strictly increase across the whole stream and across restarts, which
// keeps last-write-wins unambiguous and makes each CDC event's LSN (its
// event time) unique.
func (g *Generator) tick() int64 {
	t := max(g.cfg.Clock().UnixMicro(), g.st.LastEventUS+1)
	g.st.LastEventUS = t
	return t
}

func base36(n int64) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 36 {
		b = append([]byte{digits[n%36]}, b...)
	}
	return string(b)
}
