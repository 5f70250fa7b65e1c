package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

func TestConfigValidate(t *testing.T) {
	ok := embedded.DefaultConfig()
	ok.Dir = "/tmp/x"
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults with a dir: %v", err)
	}
	cases := []struct {
		field string
		mod   func(*embedded.Config)
	}{
		{"embedded.dir: must not be empty", func(c *embedded.Config) { c.Dir = "" }},
		{"embedded.cache_bytes", func(c *embedded.Config) { c.CacheBytes = -1 }},
		{"embedded.memtable_bytes", func(c *embedded.Config) { c.MemTableBytes = 1000 }},
		{"embedded.max_batch", func(c *embedded.Config) { c.MaxBatch = 0 }},
		{"embedded.max_get_nodes", func(c *embedded.Config) { c.MaxGetNodes = 0 }},
		{"embedded.max_page_limit", func(c *embedded.Config) { c.MaxPageLimit = 0 }},
		{"embedded.max_scan", func(c *embedded.Config) { c.MaxScan = c.MaxPageLimit - 1 }},
		{"embedded.commit_every", func(c *embedded.Config) { c.CommitEvery = 10 }},
		{"embedded.sweep_interval", func(c *embedded.Config) { c.SweepInterval = time.Millisecond }},
	}
	for _, c := range cases {
		cfg := ok
		c.mod(&cfg)
		err := cfg.Validate()
		if !errors.Is(err, embedded.ErrInvalidConfig) || !strings.Contains(err.Error(), c.field) {
			t.Fatalf("got %v, want an error naming %q", err, c.field)
		}
		if _, err := embedded.Open(cfg, storetest.Schema(), embedded.Deps{}); !errors.Is(err, embedded.ErrInvalidConfig) {
			t.Fatalf("open with bad %s: %v", c.field, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	cfg := embedded.DefaultConfig()
	cfg.Dir = t.TempDir()
	if _, err := embedded.Open(cfg, nil, embedded.Deps{}); err == nil {
		t.Fatal("open without schema succeeded")
	}
	reg := prometheus.NewRegistry()
	s, err := embedded.Open(cfg, storetest.Schema(), embedded.Deps{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The same metrics on the same registry twice is a wiring bug.
	other := embedded.DefaultConfig()
	other.Dir = t.TempDir()
	if _, err := embedded.Open(other, storetest.Schema(), embedded.Deps{Registerer: reg}); err == nil {
		t.Fatal("duplicate metric registration not reported")
	}
	// A second store on a directory in use is refused by Pebble's lock.
	if s2, err := embedded.Open(cfg, storetest.Schema(), embedded.Deps{}); err == nil {
		s2.Close()
		t.Fatal("second open of a locked directory succeeded")
	}
}

// clock is a settable clock for TTL tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func openWith(t *testing.T, mod func(*embedded.Config), deps embedded.Deps) *embedded.Store {
	t.Helper()
	cfg := embedded.DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.MemTableBytes = 4 << 20
	if mod != nil {
		mod(&cfg)
	}
	s, err := embedded.Open(cfg, storetest.Schema(), deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var (
	u1   = graph.NodeKey{Type: "user", ID: "u1"}
	t0   = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ctx0 = context.Background()
)

func user(i int) graph.NodeKey { return graph.NodeKey{Type: "user", ID: fmt.Sprintf("n%05d", i)} }
func item(i int) graph.NodeKey { return graph.NodeKey{Type: "item", ID: fmt.Sprintf("i%05d", i)} }

func mustApply(t *testing.T, s graph.Store, muts ...graph.Mutation) {
	t.Helper()
	if err := s.Apply(ctx0, muts); err != nil {
		t.Fatal(err)
	}
}

func all(t *testing.T, s graph.Store, q graph.AdjacencyQuery) (edges []graph.Edge, pages int) {
	t.Helper()
	for {
		p, err := s.Adjacency(ctx0, q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		edges = append(edges, p.Edges...)
		if p.Next == nil {
			return edges, pages
		}
		q.Cursor = p.Next
	}
}

func TestSweepRemovesExpiredEdges(t *testing.T) {
	clk := &clock{t: t0}
	reg := prometheus.NewRegistry()
	s := openWith(t, nil, embedded.Deps{Now: clk.now, Registerer: reg})
	var muts []graph.Mutation
	for i := range 10 {
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertNode, EventTime: t0, Node: item(i)},
			graph.Mutation{Op: graph.OpUpsertEdge, EventTime: t0.Add(time.Duration(i) * time.Minute),
				Edge: graph.EdgeKey{Type: "viewed", From: u1, To: item(i)}})
	}
	mustApply(t, s, muts...)
	// Rewriting an edge moves its expiry; the old queue entry must go.
	mustApply(t, s, graph.Mutation{Op: graph.OpUpsertEdge, EventTime: t0.Add(50 * time.Minute),
		Edge: graph.EdgeKey{Type: "viewed", From: u1, To: item(0)}})
	q := graph.AdjacencyQuery{Node: u1, EdgeType: "viewed", Direction: graph.Out, Order: graph.OrderLatest, Limit: 100}

	clk.set(t0.Add(65 * time.Minute)) // expired: items 1..5
	got, _ := all(t, s, q)
	if len(got) != 5 {
		t.Fatalf("before sweep: %d visible, want 5", len(got))
	}
	n, err := s.SweepExpired(ctx0)
	if err != nil || n != 5 {
		t.Fatalf("sweep: %d, %v; want 5 removed", n, err)
	}
	if n, err := s.SweepExpired(ctx0); err != nil || n != 0 {
		t.Fatalf("second sweep: %d, %v; want nothing left", n, err)
	}
	got2, _ := all(t, s, q)
	if len(got2) != 5 {
		t.Fatalf("after sweep: %d visible, want 5", len(got2))
	}
	// A redelivered, older, expired upsert after the sweep stays invisible.
	mustApply(t, s, graph.Mutation{Op: graph.OpUpsertEdge, EventTime: t0.Add(time.Minute),
		Edge: graph.EdgeKey{Type: "viewed", From: u1, To: item(1)}})
	if got3, _ := all(t, s, q); len(got3) != 5 {
		t.Fatalf("after late replay: %d visible, want 5", len(got3))
	}
	clk.set(t0.Add(2 * time.Hour))
	if n, err := s.SweepExpired(ctx0); err != nil || n != 6 {
		t.Fatalf("final sweep: %d, %v; want 6", n, err)
	}
	if swept := metricValue(t, reg, "rtgraph_embedded_expired_edges_swept_total"); swept != 11 {
		t.Fatalf("swept metric %v, want 11", swept)
	}
	if _, err := s.SweepExpired(func() context.Context { c, cancel := context.WithCancel(ctx0); cancel(); return c }()); !graph.IsRetryable(err) {
		t.Fatalf("sweep with cancelled context: %v", err)
	}
}

// A node purge larger than CommitEvery commits in several batches and
// still removes every edge in both directions.
func TestNodePurgeOfSupernodeInChunks(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := openWith(t, func(c *embedded.Config) { c.CommitEvery = 100 }, embedded.Deps{Registerer: reg})
	hub := graph.NodeKey{Type: "user", ID: "hub"}
	const n = 3000
	var muts []graph.Mutation
	for i := range n {
		muts = append(muts,
			graph.Mutation{Op: graph.OpUpsertEdge, EventTime: t0, Edge: graph.EdgeKey{Type: "follows", From: hub, To: user(i)}},
			graph.Mutation{Op: graph.OpUpsertEdge, EventTime: t0, Edge: graph.EdgeKey{Type: "blocks", From: user(i), To: hub}},
		)
	}
	mustApply(t, s, muts...)
	mustApply(t, s, graph.Mutation{Op: graph.OpPurgeNode, Node: hub, EventTime: t0.Add(time.Second)})
	// Written again, the hub has none of its old edges.
	mustApply(t, s, graph.Mutation{Op: graph.OpUpsertNode, Node: hub, EventTime: t0.Add(2 * time.Second)})
	for _, q := range []graph.AdjacencyQuery{
		{Node: hub, EdgeType: "follows", Direction: graph.Out, Order: graph.OrderKey, Limit: 1000},
		{Node: hub, EdgeType: "follows", Direction: graph.Out, Order: graph.OrderLatest, Limit: 1000},
		{Node: user(7), EdgeType: "follows", Direction: graph.In, Order: graph.OrderKey, Limit: 1000},
		{Node: user(7), EdgeType: "blocks", Direction: graph.Out, Order: graph.OrderKey, Limit: 1000},
	} {
		if got, _ := all(t, s, q); len(got) != 0 {
			t.Fatalf("%s %s of %s: %d edges left", q.EdgeType, q.Direction, q.Node, len(got))
		}
	}
	if v := metricValue(t, reg, "rtgraph_embedded_node_purge_edges_removed_total"); v != 2*n {
		t.Fatalf("removed metric %v, want %d", v, 2*n)
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// Expired entries cost a scan but no result: with MaxScan small, a page
// can end early with a cursor, and paging still returns every live edge.
func TestScanBudgetEndsPageEarly(t *testing.T) {
	clk := &clock{t: t0}
	s := openWith(t, func(c *embedded.Config) { c.MaxScan = 10; c.MaxPageLimit = 10 }, embedded.Deps{Now: clk.now})
	var muts []graph.Mutation
	for i := range 50 {
		at := t0.Add(-2 * time.Hour) // expired
		if i%10 == 9 {
			at = t0.Add(-time.Minute)
		}
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertNode, EventTime: at, Node: item(i)},
			graph.Mutation{Op: graph.OpUpsertEdge, EventTime: at, Edge: graph.EdgeKey{Type: "viewed", From: u1, To: item(i)}})
	}
	mustApply(t, s, muts...)
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		got, pages := all(t, s, graph.AdjacencyQuery{Node: u1, EdgeType: "viewed", Direction: graph.Out, Order: order, Limit: 10})
		if len(got) != 5 || pages < 5 {
			t.Fatalf("order %s: %d edges in %d pages, want 5 edges over at least 5 pages", order, len(got), pages)
		}
	}
}

func TestLimitsAndCursors(t *testing.T) {
	s := openWith(t, func(c *embedded.Config) { c.MaxBatch = 3; c.MaxGetNodes = 2; c.MaxPageLimit = 5; c.MaxScan = 5 }, embedded.Deps{})
	mustApply(t, s,
		graph.Mutation{Op: graph.OpUpsertEdge, EventTime: t0, Edge: graph.EdgeKey{Type: "follows", From: u1, To: user(1)}},
		graph.Mutation{Op: graph.OpUpsertEdge, EventTime: t0, Edge: graph.EdgeKey{Type: "follows", From: u1, To: user(2)}},
	)
	four := make([]graph.Mutation, 4)
	for i := range four {
		four[i] = graph.Mutation{Op: graph.OpUpsertNode, Node: user(i), EventTime: t0}
	}
	if err := s.Apply(ctx0, four); err == nil || graph.IsRetryable(err) {
		t.Fatalf("apply above max_batch: %v", err)
	}
	if _, err := s.GetNodes(ctx0, []graph.NodeKey{u1, u1, u1}); !errors.Is(err, graph.ErrInvalidQuery) {
		t.Fatalf("get nodes above max_get_nodes: %v", err)
	}
	q := graph.AdjacencyQuery{Node: u1, EdgeType: "follows", Direction: graph.Out, Order: graph.OrderKey, Limit: 6}
	if _, err := s.Adjacency(ctx0, q); !errors.Is(err, graph.ErrInvalidQuery) {
		t.Fatalf("limit above max_page_limit: %v", err)
	}
	q.Limit = 1
	p, err := s.Adjacency(ctx0, q)
	if err != nil || p.Next == nil {
		t.Fatalf("first page: %v", err)
	}
	other := q
	other.Order = graph.OrderLatest
	other.Cursor = p.Next
	if _, err := s.Adjacency(ctx0, other); !errors.Is(err, graph.ErrInvalidCursor) {
		t.Fatalf("cursor of another query: %v", err)
	}
	// Right fingerprint, position that is not a key suffix.
	bad := append([]byte(nil), p.Next[:9]...)
	bad = append(bad, 'a', 0, 1, 'b')
	q.Cursor = bad
	if _, err := s.Adjacency(ctx0, q); !errors.Is(err, graph.ErrInvalidCursor) {
		t.Fatalf("cursor with malformed position: %v", err)
	}
}

func TestMetricsCountAppliedAndRejected(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := openWith(t, nil, embedded.Deps{Registerer: reg})
	mustApply(t, s,
		graph.Mutation{Op: graph.OpUpsertNode, Node: u1, EventTime: t0.Add(time.Second)},
		graph.Mutation{Op: graph.OpUpsertNode, Node: u1, EventTime: t0},
	)
	_ = s.Apply(ctx0, []graph.Mutation{{Op: graph.OpUpsertNode, Node: graph.NodeKey{Type: "nope", ID: "x"}, EventTime: t0}})
	want := `
# HELP rtgraph_embedded_mutations_applied_total Mutations applied by the embedded store, by op (including those superseded by newer state).
# TYPE rtgraph_embedded_mutations_applied_total counter
rtgraph_embedded_mutations_applied_total{op="upsert_node"} 2
# HELP rtgraph_embedded_mutations_rejected_total Mutations rejected by the graph schema, by rule broken.
# TYPE rtgraph_embedded_mutations_rejected_total counter
rtgraph_embedded_mutations_rejected_total{rule="unknown_node_type"} 1
# HELP rtgraph_embedded_mutations_superseded_total Mutations that changed nothing because newer state or a newer delete was already stored.
# TYPE rtgraph_embedded_mutations_superseded_total counter
rtgraph_embedded_mutations_superseded_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"rtgraph_embedded_mutations_applied_total", "rtgraph_embedded_mutations_rejected_total", "rtgraph_embedded_mutations_superseded_total"); err != nil {
		t.Fatal(err)
	}
}

// Close waits for calls in flight and makes every later call fail.
func TestCloseWhileWriting(t *testing.T) {
	cfg := embedded.DefaultConfig()
	cfg.Dir = t.TempDir()
	s, err := embedded.Open(cfg, storetest.Schema(), embedded.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				err := s.Apply(ctx0, []graph.Mutation{{Op: graph.OpUpsertEdge, EventTime: t0,
					Edge: graph.EdgeKey{Type: "follows", From: user(w), To: user(i)}}})
				if errors.Is(err, graph.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("apply: %v", err)
					return
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond) // let the writers get going; no timing is asserted
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// The rule of purges: an edge at or before a purge of either end is
// refused for good, in the purge's own batch, in later ones and after a
// restart; newer edges are stored. The store skips the purge read of an
// edge's ends through an in-memory filter (purges.go); here it starts
// with room for 4 keys, so the 40 purges make it grow twice, once in the
// middle of a batch whose earlier purges are not committed yet.
func TestPurgesRefuseOlderEdgesAsTheFilterGrows(t *testing.T) {
	defer embedded.SetPurgeFilterMin(4)()
	cfg := embedded.DefaultConfig()
	cfg.Dir = t.TempDir()
	s, err := embedded.Open(cfg, storetest.Schema(), embedded.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	const n = 40
	a := func(i int) graph.NodeKey { return user(i) }
	b := func(i int) graph.NodeKey { return user(1000 + i) }
	c := func(i int) graph.NodeKey { return user(2000 + i) }
	follows := func(from, to graph.NodeKey, at time.Duration) graph.Mutation {
		return graph.Mutation{Op: graph.OpUpsertEdge, EventTime: t0.Add(at), Edge: graph.EdgeKey{Type: "follows", From: from, To: to}}
	}
	purge := 10 * time.Second
	for k := range n / 10 {
		var muts []graph.Mutation
		for i := 10 * k; i < 10*(k+1); i++ {
			muts = append(muts, graph.Mutation{Op: graph.OpPurgeNode, Node: b(i), EventTime: t0.Add(purge)})
		}
		for i := range 10 * (k + 1) {
			muts = append(muts, follows(a(i), b(i), purge), follows(b(i), a(i), 5*time.Second))
		}
		mustApply(t, s, muts...)
	}
	if got := embedded.PurgeFilterLimit(s); got <= 4 {
		t.Fatalf("purge filter capacity %d after %d purges: it did not grow", got, n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = embedded.Open(cfg, storetest.Schema(), embedded.Deps{}); err != nil {
		t.Fatal(err)
	}
	var muts []graph.Mutation
	for i := range n {
		muts = append(muts, follows(a(i), b(i), 6*time.Second), follows(a(i), c(i), 6*time.Second),
			graph.Mutation{Op: graph.OpUpsertNode, Node: b(i), EventTime: t0.Add(30 * time.Second)})
		if i%2 == 0 {
			muts = append(muts, follows(a(i), b(i), 20*time.Second))
		}
	}
	mustApply(t, s, muts...)
	for i := range n {
		want := []graph.NodeKey{c(i)}
		if i%2 == 0 {
			want = []graph.NodeKey{b(i), c(i)}
		}
		got, _ := all(t, s, graph.AdjacencyQuery{Node: a(i), EdgeType: "follows", Direction: graph.Out, Order: graph.OrderKey, Limit: 10})
		var to []graph.NodeKey
		for _, e := range got {
			to = append(to, e.Key.To)
		}
		if !slices.Equal(to, want) {
			t.Fatalf("follows out of %s: %v, want %v", a(i), to, want)
		}
		if got, _ := all(t, s, graph.AdjacencyQuery{Node: b(i), EdgeType: "follows", Direction: graph.Out, Order: graph.OrderKey, Limit: 10}); len(got) != 0 {
			t.Fatalf("follows out of %s, purged after them: %d edges", b(i), len(got))
		}
	}
}
