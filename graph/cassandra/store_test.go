package cassandra

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

func openStore(t *testing.T, schema *graph.Schema) *Store {
	t.Helper()
	cfg, session := sharedSession(t)
	st, err := New(session, cfg, schema, Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil && !errors.Is(err, graph.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return st
}

// TestConformance runs the graph.Store conformance suite against real
// Cassandra. Every case shares the run's keyspace (the suite namespaces ids).
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, schema *graph.Schema) graph.Store {
		return openStore(t, schema)
	}, storetest.Options{
		Reopen: func(t *testing.T, s graph.Store) graph.Store {
			if err := s.Close(); err != nil {
				t.Fatalf("close before reopen: %v", err)
			}
			return openStore(t, storetest.Schema())
		},
		SharedStorage: true,
	})
}
