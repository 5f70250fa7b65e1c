package memstore_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConformance holds the reference to the same suite as every backend,
// so the suite's expectations and the reference cannot drift apart.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, schema *graph.Schema) graph.Store {
		s := memstore.New(schema, memstore.Options{})
		t.Cleanup(func() { _ = s.Close() })
		return s
	}, storetest.Options{})
}
