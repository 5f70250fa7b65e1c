package ingest

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the pipeline's Prometheus metrics. Labels are bounded: topics
// and partitions come from the configuration and the cluster, classes from
// closed vocabularies; no record or member ids.
type metrics struct {
	messages        *prometheus.CounterVec // topic, outcome
	mutations       prometheus.Counter
	deadLetters     *prometheus.CounterVec // topic, stage, class
	flushes         *prometheus.CounterVec // reason
	batchMessages   prometheus.Histogram
	flushSeconds    prometheus.Histogram
	freshness       prometheus.Histogram
	stalls          *prometheus.CounterVec // target
	stallSeconds    *prometheus.CounterVec // target
	stalled         prometheus.Gauge
	assigned        prometheus.Gauge
	partitionEvents *prometheus.CounterVec // event: assigned, revoked, lost, stopped
	consumerErrors  prometheus.Counter
	watermarkErrors prometheus.Counter
	abandoned       *prometheus.CounterVec // reason: lost, drain_timeout
	omitted         *prometheus.CounterVec // reason: too_large, refused
	lag             *lagCollector
	stalling        *stallCollector
}

// Outcomes of a consumed record.
const (
	outcomeWritten      = "written"
	outcomeDeadLettered = "dead_lettered"
)

// Stall targets: what a partition worker was waiting for.
const (
	targetStore      = "store"
	targetMapper     = "mapper"
	targetDeadLetter = "dead_letter"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_ingest_messages_total",
			Help: "Records whose processing is acknowledged (offset marked), by topic and outcome (written, dead_lettered).",
		}, []string{"topic", "outcome"}),
		mutations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_ingest_mutations_total",
			Help: "Graph mutations acknowledged by the store (after folding within a batch).",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_ingest_dead_letters_total",
			Help: "Records sent to the dead-letter topic, by source topic, stage (decode, map, store) and error class.",
		}, []string{"topic", "stage", "class"}),
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_ingest_flushes_total",
			Help: "Batches written, by what closed them (count, bytes, period, idle, revoke, stop).",
		}, []string{"reason"}),
		batchMessages: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rtgraph_ingest_batch_messages",
			Help:    "Records per written batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rtgraph_ingest_flush_seconds",
			Help:    "Time to write one batch: store writes (retries included), dead letters, offset marking.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}),
		freshness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rtgraph_ingest_freshness_seconds",
			Help:    "Age of a record's event time when its writes were acknowledged (source time to graph).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 20),
		}),
		stalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_ingest_stalls_total",
			Help: "Times a partition worker stopped consuming to retry a failing dependency, by target (store, mapper, dead_letter).",
		}, []string{"target"}),
		stallSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_ingest_stall_seconds_total",
			Help: "Time partition workers spent stalled retrying, by target.",
		}, []string{"target"}),
		stalled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rtgraph_ingest_stalled_partitions",
			Help: "Partitions whose worker is currently retrying instead of consuming (backpressure).",
		}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rtgraph_ingest_assigned_partitions",
			Help: "Partitions this process currently owns.",
		}),
		partitionEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_ingest_partition_events_total",
			Help: "Partition ownership changes: assigned, revoked (flushed and committed), lost (nothing committed), stopped.",
		}, []string{"event"}),
		consumerErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_ingest_consumer_errors_total",
			Help: "Errors reported by the Kafka consumer group (fetch, commit, heartbeat).",
		}),
		watermarkErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_ingest_watermark_errors_total",
			Help: "Watermark records that could not be written (the next one replaces them).",
		}),
		abandoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_ingest_abandoned_batches_total",
			Help: "Batches given up without marking their offsets, by reason (lost, drain_timeout); their records are delivered again.",
		}, []string{"reason"}),
		omitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_ingest_dead_letter_values_omitted_total",
			Help: "Dead letters produced without their source value (too_large: over the producer's or topic's size limit; refused: invalid for the topic), by reason. The source coordinates, size and SHA-256 are in their headers.",
		}, []string{"reason"}),
		lag:      newLagCollector(),
		stalling: newStallCollector(),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.messages, m.mutations, m.deadLetters, m.flushes, m.batchMessages, m.flushSeconds, m.freshness,
		m.stalls, m.stallSeconds, m.stalled, m.assigned, m.partitionEvents, m.consumerErrors,
		m.watermarkErrors, m.abandoned, m.omitted, m.lag, m.stalling,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// lagCollector exports, at scrape time, the consumer lag of every partition
// this process owns: the partition's high-water mark (as last fetched) minus
// the next offset to write (the offset after the last record whose writes
// are acknowledged). A partition leaves the metric when it is revoked or lost.
type lagCollector struct {
	desc *prometheus.Desc

	mu    sync.Mutex
	parts map[topicPartition]*partitionLag
}

type topicPartition struct {
	topic     string
	partition int32
}

// partitionLag is one owned partition. next is written by its worker and
// read by scrapes, hence the lock; -1 means no offset is known yet (a new
// group's first fetch has not returned).
type partitionLag struct {
	claim sarama.ConsumerGroupClaim
	mu    sync.Mutex
	next  int64
}

func (l *partitionLag) set(next int64) {
	l.mu.Lock()
	l.next = next
	l.mu.Unlock()
}

func (l *partitionLag) setIfUnknown(next int64) {
	l.mu.Lock()
	if l.next < 0 {
		l.next = next
	}
	l.mu.Unlock()
}

func (l *partitionLag) value() (int64, bool) {
	l.mu.Lock()
	next := l.next
	l.mu.Unlock()
	if next < 0 {
		return 0, false
	}
	return max(0, l.claim.HighWaterMarkOffset()-next), true
}

func newLagCollector() *lagCollector {
	return &lagCollector{
		desc: prometheus.NewDesc("rtgraph_ingest_consumer_lag",
			"Records of an owned partition not yet written: high-water mark minus the next offset to write.",
			[]string{"topic", "partition"}, nil),
		parts: map[topicPartition]*partitionLag{},
	}
}

func (c *lagCollector) add(claim sarama.ConsumerGroupClaim) *partitionLag {
	next := claim.InitialOffset()
	if next < 0 {
		next = -1 // OffsetOldest or OffsetNewest: resolved by the first record
	}
	pl := &partitionLag{claim: claim, next: next}
	c.mu.Lock()
	c.parts[topicPartition{claim.Topic(), claim.Partition()}] = pl
	c.mu.Unlock()
	return pl
}

func (c *lagCollector) remove(claim sarama.ConsumerGroupClaim, pl *partitionLag) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := topicPartition{claim.Topic(), claim.Partition()}
	if c.parts[k] == pl {
		delete(c.parts, k)
	}
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, pl := range c.parts {
		if v, ok := pl.value(); ok {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(v), k.topic, strconv.Itoa(int(k.partition)))
		}
	}
}

// stallCollector knows which owned partitions are stalled (their worker is
// retrying a dependency instead of consuming), since when, and why. It
// exports rtgraph_ingest_partition_stalled_seconds at scrape time and
// answers the /readyz detail. Workers set and clear their own entry; scrapes
// and readiness probes read them, hence the lock.
type stallCollector struct {
	desc *prometheus.Desc

	mu    sync.Mutex
	parts map[topicPartition]*partitionStall
}

// partitionStall is one stalled partition.
type partitionStall struct {
	since  time.Time
	target string
	err    string
}

// StalledPartition is a partition whose worker has been retrying a failing
// dependency, as /readyz reports it.
type StalledPartition struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Target    string  `json:"target"` // store, mapper or dead_letter
	Since     string  `json:"since"`  // RFC 3339
	Seconds   float64 `json:"stalled_seconds"`
	Error     string  `json:"error"` // the last error, inner errors included
}

func newStallCollector() *stallCollector {
	return &stallCollector{
		desc: prometheus.NewDesc("rtgraph_ingest_partition_stalled_seconds",
			"How long an owned partition's worker has been retrying a failing dependency (target: store, mapper, dead_letter) instead of consuming; absent when it is not.",
			[]string{"topic", "partition", "target"}, nil),
		parts: map[topicPartition]*partitionStall{},
	}
}

// set records that tp is stalled on target since since, with err.
func (c *stallCollector) set(tp topicPartition, since time.Time, target string, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	c.mu.Lock()
	c.parts[tp] = &partitionStall{since: since, target: target, err: msg}
	c.mu.Unlock()
}

// clear records that tp makes progress again (or is no longer owned).
func (c *stallCollector) clear(tp topicPartition) {
	c.mu.Lock()
	delete(c.parts, tp)
	c.mu.Unlock()
}

// stalled lists the partitions stalled for at least d, oldest first.
func (c *stallCollector) stalled(now time.Time, d time.Duration) []StalledPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []StalledPartition
	for tp, s := range c.parts {
		if age := now.Sub(s.since); age >= d {
			out = append(out, StalledPartition{
				Topic: tp.topic, Partition: tp.partition, Target: s.target,
				Since: s.since.UTC().Format(time.RFC3339), Seconds: math.Round(age.Seconds()*10) / 10, Error: s.err,
			})
		}
	}
	slices.SortFunc(out, func(a, b StalledPartition) int {
		return cmp.Or(cmp.Compare(b.Seconds, a.Seconds), strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

func (c *stallCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stallCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, s := range c.parts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, now.Sub(s.since).Seconds(),
			k.topic, strconv.Itoa(int(k.partition)), s.target)
	}
}
