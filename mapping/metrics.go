package mapping

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the mapping's Prometheus collectors. Labels are rule, join,
// cache and topic names from the mapping files and the closed error classes,
// so their number is bounded by the configuration, never by the data.
type Metrics struct {
	matches    *prometheus.CounterVec
	errors     *prometheus.CounterVec
	lookups    *prometheus.CounterVec
	unselected *prometheus.CounterVec
	withheld   *prometheus.CounterVec
	dropped    *prometheus.CounterVec
}

// NewMetrics registers the mapping collectors on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		matches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_mapping_rule_matches_total",
			Help: "Envelopes a mapping rule selected.",
		}, []string{"rule"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_mapping_rule_errors_total",
			Help: "Envelopes a mapping rule selected but could not map, by error class.",
		}, []string{"rule", "class"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_mapping_join_lookups_total",
			Help: "Enrichment joins evaluated by mapping rules, by result (hit or miss).",
		}, []string{"rule", "join", "cache", "result"}),
		unselected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_mapping_unselected_total",
			Help: "Envelopes of a mapped topic that no rule selected, by what happened to them (ignored or dead_letter).",
		}, []string{"topic", "action"}),
		withheld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_mapping_unavailable_edges_total",
			Help: "Edge upserts a mapping rule did not emit because a property reads an attribute the source did not send (an unchanged TOASTed column); the stored edge stays as it was.",
		}, []string{"rule"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_mapping_tombstones_deletes_dropped_total",
			Help: "Tombstones of a flattened Debezium topic whose rows carry no __deleted: the connector drops delete events, and these tombstones, the only record of them, delete nothing (see the log's warning).",
		}, []string{"topic"}),
	}
	for _, c := range []prometheus.Collector{m.matches, m.errors, m.lookups, m.unselected, m.withheld, m.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("mapping: register metrics: %w", err)
		}
	}
	return m, nil
}

// ruleStats holds one rule's counters, resolved once at load so that Map
// does no label lookups. A nil *ruleStats counts nothing.
type ruleStats struct {
	matches prometheus.Counter
	errors  map[Class]prometheus.Counter
	hits    []prometheus.Counter // per join
	misses  []prometheus.Counter
	// withheld counts edge upserts not emitted for an unavailable attribute.
	withheld prometheus.Counter
}

func (m *Metrics) rule(r *rule) *ruleStats {
	if m == nil {
		return nil
	}
	s := &ruleStats{matches: m.matches.WithLabelValues(r.name), errors: map[Class]prometheus.Counter{},
		withheld: m.withheld.WithLabelValues(r.name)}
	for _, c := range []Class{ClassNonConforming, ClassJoinFailed, ClassExpressionError, ClassUnavailableValue} {
		s.errors[c] = m.errors.WithLabelValues(r.name, string(c))
	}
	for _, j := range r.joins {
		s.hits = append(s.hits, m.lookups.WithLabelValues(r.name, j.name, j.cache, "hit"))
		s.misses = append(s.misses, m.lookups.WithLabelValues(r.name, j.name, j.cache, "miss"))
	}
	return s
}

func (s *ruleStats) matched() {
	if s != nil {
		s.matches.Inc()
	}
}

func (s *ruleStats) failed(c Class) {
	if s != nil {
		if ctr, ok := s.errors[c]; ok {
			ctr.Inc()
		}
	}
}

func (s *ruleStats) withheldEdge() {
	if s != nil {
		s.withheld.Inc()
	}
}

func (s *ruleStats) join(i int, hit bool) {
	switch {
	case s == nil:
	case hit:
		s.hits[i].Inc()
	default:
		s.misses[i].Inc()
	}
}

type topicStats struct {
	ignore, deadLetter prometheus.Counter
	deletesDropped     prometheus.Counter
}

func (m *Metrics) topic(name string) *topicStats {
	if m == nil {
		return nil
	}
	return &topicStats{
		ignore:         m.unselected.WithLabelValues(name, "ignored"),
		deadLetter:     m.unselected.WithLabelValues(name, "dead_letter"),
		deletesDropped: m.dropped.WithLabelValues(name),
	}
}

func (s *topicStats) ignored() {
	if s != nil {
		s.ignore.Inc()
	}
}

func (s *topicStats) unmatched() {
	if s != nil {
		s.deadLetter.Inc()
	}
}

func (s *topicStats) tombstoneDeletesDropped() {
	if s != nil {
		s.deletesDropped.Inc()
	}
}
