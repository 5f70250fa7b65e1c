package embedded

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	mutations    *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	superseded   prometheus.Counter
	cleanedEdges prometheus.Counter
	displaced    prometheus.Counter
	swept        prometheus.Counter
	applySeconds prometheus.Histogram
	readSeconds  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		mutations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_embedded_mutations_applied_total",
			Help: "Mutations applied by the embedded store, by op (including those superseded by newer state).",
		}, []string{"op"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_embedded_mutations_rejected_total",
			Help: "Mutations rejected by the graph schema, by rule broken.",
		}, []string{"rule"}),
		superseded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_embedded_mutations_superseded_total",
			Help: "Mutations that changed nothing because newer state or a newer delete was already stored.",
		}),
		cleanedEdges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_embedded_node_purge_edges_removed_total",
			Help: "Edges removed because a node at one of their ends was purged.",
		}),
		displaced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_embedded_edges_displaced_total",
			Help: "Edges deleted because a newer edge of a many2one, one2many or one2one type replaced them at a constrained end.",
		}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_embedded_expired_edges_swept_total",
			Help: "Expired edges removed from disk by the sweep.",
		}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rtgraph_embedded_apply_seconds",
			Help:    "Duration of Apply calls that succeeded, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		readSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rtgraph_embedded_read_seconds",
			Help:    "Duration of reads, by call (get_nodes, adjacency).",
			Buckets: prometheus.ExponentialBuckets(0.00001, 2, 16),
		}, []string{"call"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.mutations, m.rejected, m.superseded, m.cleanedEdges, m.displaced, m.swept, m.applySeconds, m.readSeconds} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
