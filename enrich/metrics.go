package enrich

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the enrichment caches' Prometheus collectors, labelled by
// cache name (bounded by the configuration).
type Metrics struct {
	lookups   *prometheus.CounterVec
	records   *prometheus.CounterVec
	evictions *prometheus.CounterVec
	loaded    *prometheus.GaugeVec
	reg       prometheus.Registerer
}

// NewMetrics registers the enrichment collectors on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_enrich_lookups_total",
			Help: "Cache lookups by result: hit, miss, or miss_after_eviction (the cache has evicted, so the key may exist on the topic).",
		}, []string{"cache", "result"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_enrich_records_total",
			Help: "Records applied from a cache's topic by result: upsert, delete (tombstone) or invalid (no key, not a JSON object, too large).",
		}, []string{"cache", "result"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_enrich_evictions_total",
			Help: "Documents pushed out of a cache by its size limit. Any eviction makes later misses unreliable: raise the size.",
		}, []string{"cache"}),
		loaded: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rtgraph_enrich_loaded",
			Help: "1 once the cache has read its topic up to the high watermark seen at start.",
		}, []string{"cache"}),
		reg: reg,
	}
	for _, c := range []prometheus.Collector{m.lookups, m.records, m.evictions, m.loaded} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("enrich: register metrics: %w", err)
		}
	}
	return m, nil
}

// cache resolves one cache's counters and registers its size gauge.
func (m *Metrics) cache(name string, size func() float64) (cacheStats, error) {
	entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "rtgraph_enrich_entries",
		Help:        "Documents a cache holds.",
		ConstLabels: prometheus.Labels{"cache": name},
	}, size)
	if err := m.reg.Register(entries); err != nil {
		return cacheStats{}, fmt.Errorf("enrich: register metrics of cache %s: %w", name, err)
	}
	return cacheStats{
		hit:         m.lookups.WithLabelValues(name, "hit"),
		miss:        m.lookups.WithLabelValues(name, "miss"),
		missEvicted: m.lookups.WithLabelValues(name, "miss_after_eviction"),
		upserts:     m.records.WithLabelValues(name, "upsert"),
		deletes:     m.records.WithLabelValues(name, "delete"),
		invalid:     m.records.WithLabelValues(name, "invalid"),
		evictions:   m.evictions.WithLabelValues(name),
		loaded:      m.loaded.WithLabelValues(name),
	}, nil
}
