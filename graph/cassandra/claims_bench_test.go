package cassandra

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
)

// Benchmarks of edge multiplicity (claims) against real Cassandra: the same
// edge type declared simple (what it cost before claims: no claim row, no
// claim read) and many2one.

// ownerSchema declares owned_by (item → user, reverse index) with the given
// multiplicity. Users and items are implicit: the fixtures write edges
// only (reads still look the neighbours up).
func ownerSchema(tb testing.TB, mu graph.Multiplicity) *graph.Schema {
	s, err := graph.NewSchema(
		[]graph.NodeType{{Name: "user", Implicit: true}, {Name: "item", Implicit: true}},
		[]graph.EdgeType{{Name: "owned_by", From: []string{"item"}, To: []string{"user"}, Reverse: true, Multiplicity: mu,
			Props: map[string]graph.PropType{"share": graph.PropInt, "since": graph.PropInt, "source": graph.PropString}}})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func ownerStore(b *testing.B, mu graph.Multiplicity) *Store {
	cfg, session := sharedSession(b)
	st, err := New(session, cfg, ownerSchema(b, mu), Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return st
}

// ownerBatch is 100 owner changes: random items of 5000 to random users of
// 20000, event times over the last 6 days.
func ownerBatch(rng *rand.Rand, ns string, now time.Time) []graph.Mutation {
	out := make([]graph.Mutation, 100)
	for i := range out {
		out[i] = graph.Mutation{Op: graph.OpUpsertEdge,
			Edge: graph.EdgeKey{Type: "owned_by",
				From: graph.NodeKey{Type: "item", ID: fmt.Sprintf("%s-i%06d", ns, rng.IntN(5000))},
				To:   graph.NodeKey{Type: "user", ID: fmt.Sprintf("%s-u%06d", ns, rng.IntN(20000))}},
			EventTime: now.Add(-time.Duration(rng.Int64N(int64(6 * 24 * time.Hour)))),
			Pos:       graph.PosUint64(rng.Uint64()),
			Props:     graph.Props{"share": int64(rng.IntN(100)), "since": int64(rng.IntN(1 << 20)), "source": fmt.Sprintf("s%d", rng.IntN(50))}}
	}
	return out
}

// BenchmarkApplyOwners measures Apply of owner changes (b.N batches of 100
// edge upserts, benchCallers calls at once) with owned_by simple and
// many2one (one more single-row write per upsert: the item's claim), and
// for each its raw ceiling: the rows its Apply calls wrote, streamed into
// another keyspace by a bare driver loop with rawInFlight requests in
// flight (rawWriter.stream, as in BenchmarkApplyMix). The four alternate
// in rounds, so all see the same server state and load; a round that
// starts with the ceiling replays plans built without sending
// (buildPlan), as BenchmarkApplyMix does.
func BenchmarkApplyOwners(b *testing.B) {
	ctx := context.Background()
	kinds := []graph.Multiplicity{graph.MultiplicitySimple, graph.MultiplicityMany2One}
	stores := map[graph.Multiplicity]*Store{}
	rngs := map[graph.Multiplicity]*rand.Rand{}
	nss := map[graph.Multiplicity]string{}
	now := time.Now()
	var plansMu sync.Mutex
	for i, k := range kinds {
		stores[k] = ownerStore(b, k)
		stores[k].capture = func(ctx context.Context, p *plan) {
			if f, ok := ctx.Value(captureKey{}).(func(*plan)); ok {
				f(p)
			}
		}
		rngs[k] = rand.New(rand.NewPCG(5, uint64(i)))
		nss[k] = uniqueKeyspace("o")
		for range 10 { // warm up
			if err := stores[k].Apply(ctx, ownerBatch(rngs[k], nss[k], now)); err != nil {
				b.Fatal(err)
			}
		}
	}
	raw := newRawWriter(rawBaselineSession(b), stores[kinds[0]].writeCL, rawInFlight)
	defer raw.close()
	const round = 5 * benchCallers
	type side struct {
		lat        []time.Duration
		wall, cpu  time.Duration
		muts, rows int
	}
	sides := map[graph.Multiplicity]*side{}
	raws := map[graph.Multiplicity]*side{}
	for _, k := range kinds {
		sides[k], raws[k] = &side{}, &side{}
	}
	runStore := func(k graph.Multiplicity, batches [][]graph.Mutation) []*plan {
		captured := make([]*plan, len(batches))
		u0 := readUsage(b)
		l, w := runConcurrently(b, len(batches), func(i int) error {
			return applyCapturing(ctx, stores[k], batches[i], func(p *plan) {
				plansMu.Lock()
				captured[i] = p
				plansMu.Unlock()
			})
		})
		u1 := readUsage(b)
		s := sides[k]
		s.lat, s.wall, s.cpu = append(s.lat, l...), s.wall+w, s.cpu+u1.cpu-u0.cpu
		for i, p := range captured {
			s.muts += len(batches[i])
			s.rows += planRows(p)
		}
		return captured
	}
	runRaw := func(k graph.Multiplicity, plans []*plan) {
		u0 := readUsage(b)
		t0 := time.Now()
		l, err := raw.stream(plans)
		if err != nil {
			b.Fatal(err)
		}
		w := time.Since(t0)
		u1 := readUsage(b)
		s := raws[k]
		s.lat, s.wall, s.cpu = append(s.lat, l...), s.wall+w, s.cpu+u1.cpu-u0.cpu
		for _, p := range plans {
			s.rows += planRows(p)
		}
	}
	b.ResetTimer()
	for r, done := 0, 0; done < b.N; r, done = r+1, done+round {
		n := min(round, b.N-done)
		order := kinds
		if r%2 == 1 {
			order = []graph.Multiplicity{kinds[1], kinds[0]}
		}
		for _, k := range order {
			batches := make([][]graph.Mutation, n)
			for i := range batches {
				batches[i] = ownerBatch(rngs[k], nss[k], now)
			}
			if r%2 == 0 {
				runRaw(k, runStore(k, batches))
				continue
			}
			plans := make([]*plan, len(batches))
			for i, batch := range batches {
				p, _, err := stores[k].buildPlan(batch)
				if err != nil {
					b.Fatal(err)
				}
				plans[i] = p
			}
			runRaw(k, plans)
			runStore(k, batches)
		}
	}
	b.StopTimer()
	for _, k := range kinds {
		s, rs := sides[k], raws[k]
		b.ReportMetric(float64(s.muts)/s.wall.Seconds(), string(k)+"-mutations/s")
		b.ReportMetric(ms(percentile(s.lat, 0.50)), string(k)+"-p50-batch-ms")
		b.ReportMetric(ms(percentile(s.lat, 0.99)), string(k)+"-p99-batch-ms")
		b.ReportMetric(s.cpu.Seconds(), string(k)+"-cpu-s")
		b.ReportMetric(float64(s.rows)/float64(max(1, s.muts)), string(k)+"-rows/mutation")
		b.ReportMetric(float64(rs.rows)/rs.wall.Seconds(), string(k)+"-raw-rows/s")
		b.ReportMetric(rs.cpu.Seconds(), string(k)+"-raw-cpu-s")
		b.ReportMetric(100*(float64(s.rows)/s.wall.Seconds())/(float64(rs.rows)/rs.wall.Seconds()), string(k)+"-%-of-raw")
	}
	m2o, simple := sides[graph.MultiplicityMany2One], sides[graph.MultiplicitySimple]
	b.ReportMetric(100*(float64(m2o.muts)/m2o.wall.Seconds())/(float64(simple.muts)/simple.wall.Seconds()), "%-many2one-of-simple")
	b.ReportMetric(0, "ns/op")
}

// ownerReadFixture writes 1000 items owned by one user (event times a
// minute apart) and, when moved, later moves every other item to another
// user, so that half of the user's index rows are hidden by the items'
// claims. It returns the user and the first item.
func ownerReadFixture(b *testing.B, st *Store, moved bool) (graph.NodeKey, graph.NodeKey) {
	ns := uniqueKeyspace("o")
	now := time.Now()
	user := graph.NodeKey{Type: "user", ID: ns + "-hub"}
	other := graph.NodeKey{Type: "user", ID: ns + "-other"}
	item := func(i int) graph.NodeKey { return graph.NodeKey{Type: "item", ID: fmt.Sprintf("%s-i%04d", ns, i)} }
	var muts []graph.Mutation
	for i := range 1000 {
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "owned_by", From: item(i), To: user},
			EventTime: now.Add(-time.Duration(2000-i) * time.Minute), Props: graph.Props{"share": int64(i)}})
		if moved && i%2 == 1 {
			muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "owned_by", From: item(i), To: other},
				EventTime: now.Add(-time.Duration(i) * time.Second), Props: graph.Props{"share": int64(i)}})
		}
	}
	for start := 0; start < len(muts); start += 200 {
		if err := st.Apply(context.Background(), muts[start:min(start+200, len(muts))]); err != nil {
			b.Fatal(err)
		}
	}
	return user, item(999)
}

// BenchmarkAdjacencyOwners300 reads the first page of 300 items of a user
// owning 1000 (owned_by In, the unconstrained end): simple; many2one, where
// every candidate's claim is read too; and many2one with half of the
// user's rows hidden by claims that moved away (the page then scans about
// 600 rows).
func BenchmarkAdjacencyOwners300(b *testing.B) {
	for _, c := range []struct {
		name  string
		mu    graph.Multiplicity
		moved bool
	}{
		{"simple", graph.MultiplicitySimple, false},
		{"many2one", graph.MultiplicityMany2One, false},
		{"many2one-half-moved", graph.MultiplicityMany2One, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			st := ownerStore(b, c.mu)
			user, _ := ownerReadFixture(b, st, c.moved)
			for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
				b.Run(order.String(), func(b *testing.B) {
					q := graph.AdjacencyQuery{Node: user, EdgeType: "owned_by", Direction: graph.In, Order: order, Limit: 300}
					reportLatencies(b, func() error {
						page, err := st.Adjacency(context.Background(), q)
						if err == nil && len(page.Edges) != 300 {
							err = fmt.Errorf("page of %d edges, want 300", len(page.Edges))
						}
						return err
					})
				})
			}
		})
	}
}

// BenchmarkAdjacencyClaimedEnd reads the owner of an item (owned_by Out,
// the constrained end) whose owner changed 1000 times: the claim, then one
// edges_by_key row.
func BenchmarkAdjacencyClaimedEnd(b *testing.B) {
	st := ownerStore(b, graph.MultiplicityMany2One)
	ns := uniqueKeyspace("o")
	now := time.Now()
	it := graph.NodeKey{Type: "item", ID: ns + "-it"}
	var muts []graph.Mutation
	for i := range 1000 {
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge,
			Edge:      graph.EdgeKey{Type: "owned_by", From: it, To: graph.NodeKey{Type: "user", ID: fmt.Sprintf("%s-u%04d", ns, i)}},
			EventTime: now.Add(-time.Duration(1000-i) * time.Minute)})
	}
	for start := 0; start < len(muts); start += 200 {
		if err := st.Apply(context.Background(), muts[start:min(start+200, len(muts))]); err != nil {
			b.Fatal(err)
		}
	}
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		b.Run(order.String(), func(b *testing.B) {
			q := graph.AdjacencyQuery{Node: it, EdgeType: "owned_by", Direction: graph.Out, Order: order, Limit: 10}
			reportLatencies(b, func() error {
				page, err := st.Adjacency(context.Background(), q)
				if err == nil && len(page.Edges) != 1 {
					err = fmt.Errorf("page of %d edges, want 1", len(page.Edges))
				}
				return err
			})
		})
	}
}
