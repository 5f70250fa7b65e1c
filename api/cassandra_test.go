package api

import (
	"context"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/cassandra/cassandratest"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

// openCassandra opens a store on a keyspace of its own on the real
// Cassandra that testenv names, loads muts into it, and drops it when the
// test ends.
func openCassandra(t testing.TB, muts []graph.Mutation) graph.Store {
	t.Helper()
	store := cassandratest.Open(t, "rtgraph_api_", storetest.Schema(), func() time.Time { return clock })
	if len(muts) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := store.Apply(ctx, muts); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	return store
}

// TestTraversalsOnCassandra runs the same traversal scenarios as the Pebble
// handler tests, through the API, against real Cassandra.
func TestTraversalsOnCassandra(t *testing.T) {
	traversalScenarios(t, openCassandra(t, seed()))
}

// TestWorkbenchOnCassandra runs the listing and degree checks of the Pebble
// handler tests against real Cassandra.
func TestWorkbenchOnCassandra(t *testing.T) {
	t.Run("list", func(t *testing.T) { listScenarios(t, openCassandra(t, listSeed())) })
	t.Run("degree", func(t *testing.T) { degreeScenarios(t, openCassandra(t, seed())) })
}
