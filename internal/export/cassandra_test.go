package export

import (
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/cassandra/cassandratest"
)

// cassandraCase is the export's store case on real Cassandra: a keyspace of
// its own (a listing scans the whole nodes table), dropped at the end.
var cassandraCase = storeCase{"cassandra", func(t *testing.T, s *graph.Schema, now func() time.Time) graph.Store {
	return cassandratest.Open(t, "rtgraph_export_", s, now)
}, true}

// TestExportMatchesStoreOnCassandra is TestExportMatchesStore on real
// Cassandra.
func TestExportMatchesStoreOnCassandra(t *testing.T) {
	exportMatchesStore(t, cassandraCase)
}
