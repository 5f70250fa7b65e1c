package graph

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FreshnessCache keeps the freshness watermark of one consumer group in
// memory, so a reader (the API) can stamp every response with it at the cost
// of a mutex. Run refreshes it from the WatermarkStore every interval.
type FreshnessCache struct {
	ws       WatermarkStore
	group    string
	interval time.Duration
	log      *slog.Logger

	mu  sync.RWMutex
	t   time.Time
	ok  bool
	err error
}

// NewFreshnessCache returns a cache of CompleteThrough(ws.Watermarks(), group).
func NewFreshnessCache(ws WatermarkStore, group string, interval time.Duration, log *slog.Logger) *FreshnessCache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FreshnessCache{ws: ws, group: group, interval: interval, log: log}
}

// Refresh reads the watermarks once.
func (f *FreshnessCache) Refresh(ctx context.Context) error {
	ws, err := f.ws.Watermarks(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		// Keep the last known value: a watermark that was true stays a
		// lower bound while the store is briefly unreachable.
		f.err = fmt.Errorf("graph: read watermarks: %w", err)
		return f.err
	}
	f.err = nil
	f.t, f.ok = CompleteThrough(ws, f.group)
	return nil
}

// Run refreshes every interval until ctx is cancelled, then returns nil.
func (f *FreshnessCache) Run(ctx context.Context) error {
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for {
		if err := f.Refresh(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("watermark refresh failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Watermark returns the cached event time up to which ingestion of the group
// is complete; zero when unknown (no watermark recorded yet). It returns the
// last refresh's error only when no value was ever read.
func (f *FreshnessCache) Watermark(context.Context) (time.Time, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if !f.ok {
		return time.Time{}, f.err
	}
	return f.t, nil
}

// Register exports the cached watermark, per consumer group, as two gauges:
// rtgraph_watermark_event_time_seconds, the event time (Unix seconds) up to
// which the group's ingestion is complete, and rtgraph_watermark_age_seconds,
// how far that is behind this process's clock at the scrape. Every process
// that reads the same store reports the same watermark (it is computed from
// the watermarks every ingest process of the group records), so the age is
// meaningful whichever process is scraped and however many ingest. Neither
// is exported while the watermark is unknown (no record yet). The age grows
// when no events arrive: alert on it together with a lag.
func (f *FreshnessCache) Register(reg prometheus.Registerer) error {
	return reg.Register(freshnessCollector{f})
}

var (
	descWatermarkTime = prometheus.NewDesc("rtgraph_watermark_event_time_seconds",
		"Event time (Unix seconds) up to which the consumer group's ingestion is complete, as last read from the store.",
		[]string{"group"}, nil)
	descWatermarkAge = prometheus.NewDesc("rtgraph_watermark_age_seconds",
		"Seconds between the consumer group's watermark and the scrape: how stale the graph may be.",
		[]string{"group"}, nil)
)

type freshnessCollector struct{ f *FreshnessCache }

func (c freshnessCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descWatermarkTime
	ch <- descWatermarkAge
}

func (c freshnessCollector) Collect(ch chan<- prometheus.Metric) {
	c.f.mu.RLock()
	t, ok := c.f.t, c.f.ok
	c.f.mu.RUnlock()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(descWatermarkTime, prometheus.GaugeValue, float64(t.UnixNano())/1e9, c.f.group)
	ch <- prometheus.MustNewConstMetric(descWatermarkAge, prometheus.GaugeValue, time.Since(t).Seconds(), c.f.group)
}
