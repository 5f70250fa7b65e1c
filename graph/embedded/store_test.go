package embedded_test

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openAt(t *testing.T, dir string, schema *graph.Schema) *embedded.Store {
	t.Helper()
	cfg := embedded.DefaultConfig()
	cfg.Dir = dir
	// Conformance cases write little; a small memtable keeps them light.
	cfg.MemTableBytes = 4 << 20
	cfg.CacheBytes = 8 << 20
	s, err := embedded.Open(cfg, schema, embedded.Deps{})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, graph.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	dirs := map[graph.Store]string{}
	storetest.Run(t, func(t *testing.T, schema *graph.Schema) graph.Store {
		dir := t.TempDir()
		s := openAt(t, dir, schema)
		dirs[s] = dir
		return s
	}, storetest.Options{
		Reopen: func(t *testing.T, s graph.Store) graph.Store {
			if err := s.Close(); err != nil {
				t.Fatalf("close before reopen: %v", err)
			}
			return openAt(t, dirs[s], storetest.Schema())
		},
	})
}
