package cassandra

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Request kinds: the "op" label of the request metrics. A fixed set, so
// label cardinality stays bounded.
const (
	opWrite       = "write"     // one statement or one single-partition batch of Apply
	opReadNode    = "read_node" // GetNodes, one partition
	opReadNodeDel = "read_node_deletes"
	opReadByKey   = "read_edges_by_key"
	opReadByTime  = "read_edges_by_time"
	opReadDays    = "read_edge_days"
	opLookupEdges = "lookup_edges"     // validating newest-first rows against edges_by_key
	opReadClaims  = "read_edge_claims" // multiplicity claims, the node's or its neighbours'
	opListNodes   = "list_nodes"       // a listing page's token-order scan of the nodes table
	opRepair      = "repair"           // deleting a dead edges_by_time row
	opPurge       = "purge"            // removing a purged node's rows
	opMigrate     = "migrate"
)

// metrics are the Store's Prometheus collectors. A nil *metrics records
// nothing (migrations run without one).
type metrics struct {
	duration *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	errors   *prometheus.CounterVec
	expired  prometheus.Counter
	stale    *prometheus.CounterVec
	muts     *prometheus.CounterVec
	// observers caches duration.WithLabelValues per op (a string →
	// prometheus.Observer map), which the hot path would otherwise hash
	// on every request.
	observers sync.Map
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rtgraph_cassandra_request_duration_seconds",
			Help: "Latency of one Cassandra request attempt (statement, batch or read), by kind.",
			// 250 µs to ~16 s: a local read to a request timeout.
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 17),
		}, []string{"op"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_cassandra_retries_total",
			Help: "Cassandra request attempts after the first, by kind.",
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_cassandra_errors_total",
			Help: "Failed Cassandra request attempts, by kind and error class (timeout, unavailable, overloaded, failure, connection, canceled, invalid, auth, other).",
		}, []string{"op", "class"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtgraph_cassandra_expired_writes_skipped_total",
			Help: "Edge upserts and deletes not written because event time + TTL was already past.",
		}),
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_cassandra_stale_index_rows_total",
			Help: "Newest-first index rows that were not the edge at read time, by action: repaired (dead for good, deleted) or skipped (kept).",
		}, []string{"action"}),
		muts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtgraph_cassandra_mutations_total",
			Help: "Graph mutations acknowledged by Cassandra, by op.",
		}, []string{"op"}),
	}
	for _, c := range []prometheus.Collector{m.duration, m.retries, m.errors, m.expired, m.stale, m.muts} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("cassandra: register metrics: %w (one Store per registry)", err)
			}
			return nil, fmt.Errorf("cassandra: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(op string, d time.Duration) {
	if m == nil {
		return
	}
	o, ok := m.observers.Load(op)
	if !ok {
		o, _ = m.observers.LoadOrStore(op, m.duration.WithLabelValues(op))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

func (m *metrics) retry(op string) {
	if m != nil {
		m.retries.WithLabelValues(op).Inc()
	}
}

func (m *metrics) failed(op string, c errClass) {
	if m != nil {
		m.errors.WithLabelValues(op, string(c)).Inc()
	}
}
