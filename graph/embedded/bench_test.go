package embedded_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/graph/embedded/embeddedtest"
	"github.com/rtgraph/rtgraph/schemas"
)

// The benchmarks write the shipped demo schema (verticals/streaming/graph) with the
// store's default configuration, fsync included. Run them with
//
//	go test -run '^$' -bench . -benchtime 200x ./graph/embedded/
//
// Besides ns/op they report mutations/s, p50/p99 latency of one call, the
// process CPU seconds spent per op, and the process's peak RSS so far; the
// write benchmark also its raw Pebble ceiling, measured in the same run.

func benchSchema(b *testing.B) *graph.Schema {
	b.Helper()
	s, err := graph.LoadSchema(schemas.GraphSchema(), ".")
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchStore(b *testing.B) *embedded.Store {
	b.Helper()
	cfg := embedded.DefaultConfig()
	cfg.Dir = b.TempDir()
	return benchStoreCfg(b, cfg, embedded.Deps{})
}

func benchStoreCfg(b *testing.B, cfg embedded.Config, deps embedded.Deps) *embedded.Store {
	b.Helper()
	s, err := embedded.Open(cfg, benchSchema(b), deps)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// mixGen draws the realistic write mix: 70% edge upserts, 25% node
// upserts, 5% deletes (3% edges, 2% nodes), each upsert with 1-5
// properties of its declared types, over a population large enough that
// most writes create and some overwrite.
type mixGen struct {
	rng    *rand.Rand
	schema *graph.Schema
	edges  []string
	nodes  []string
	now    time.Time
	seq    int
}

var population = map[string]int{
	"account": 50000, "profile": 120000, "device": 150000, "subscription": 50000,
	"user": 200000, "campaign": 500, "creative": 3000, "title": 20000,
}

// defaultPopulation sizes node types the table does not name, so a node
// type added to the schema never makes the generator draw from nothing.
const defaultPopulation = 10000

func populationOf(typ string) int {
	if n := population[typ]; n > 0 {
		return n
	}
	return defaultPopulation
}

func newMixGen(seed uint64, schema *graph.Schema) *mixGen {
	return &mixGen{rng: rand.New(rand.NewPCG(seed, 7)), schema: schema,
		edges: schema.EdgeTypes(), nodes: schema.NodeTypes(), now: time.Now()}
}

func (g *mixGen) key(types []string) graph.NodeKey {
	typ := types[g.rng.IntN(len(types))]
	return graph.NodeKey{Type: typ, ID: fmt.Sprintf("%s-%07d", typ, g.rng.IntN(populationOf(typ)))}
}

func (g *mixGen) props(declared map[string]graph.PropType) graph.Props {
	names := make([]string, 0, len(declared))
	for n := range declared {
		names = append(names, n)
	}
	sort.Strings(names)
	g.rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	n := min(1+g.rng.IntN(5), len(names))
	p := make(graph.Props, n)
	for _, name := range names[:n] {
		switch declared[name] {
		case graph.PropString:
			p[name] = fmt.Sprintf("v%06d", g.rng.IntN(1000000))
		case graph.PropInt:
			p[name] = int64(g.rng.IntN(100000))
		case graph.PropFloat:
			p[name] = g.rng.Float64() * 100
		case graph.PropBool:
			p[name] = g.rng.IntN(2) == 0
		}
	}
	return p
}

func (g *mixGen) mutation() graph.Mutation {
	g.seq++
	// Event times within the last day, so TTL edge types stay live.
	at := g.now.Add(-time.Duration(g.rng.IntN(86400)) * time.Second).Add(time.Duration(g.seq) * time.Microsecond)
	r := g.rng.IntN(100)
	switch {
	case r < 70:
		et, _ := g.schema.EdgeType(g.edges[g.rng.IntN(len(g.edges))])
		return graph.Mutation{Op: graph.OpUpsertEdge, EventTime: at, Props: g.props(et.Props),
			Edge: graph.EdgeKey{Type: et.Name, From: g.key(et.From), To: g.key(et.To)}}
	case r < 95:
		nt, _ := g.schema.NodeType(g.nodes[g.rng.IntN(len(g.nodes))])
		return graph.Mutation{Op: graph.OpUpsertNode, EventTime: at, Props: g.props(nt.Props),
			Node: g.key([]string{nt.Name})}
	case r < 98:
		et, _ := g.schema.EdgeType(g.edges[g.rng.IntN(len(g.edges))])
		return graph.Mutation{Op: graph.OpDeleteEdge, EventTime: at,
			Edge: graph.EdgeKey{Type: et.Name, From: g.key(et.From), To: g.key(et.To)}}
	default:
		return graph.Mutation{Op: graph.OpDeleteNode, EventTime: at, Node: g.key(g.nodes)}
	}
}

func (g *mixGen) batch(n int) []graph.Mutation {
	out := make([]graph.Mutation, n)
	for i := range out {
		out[i] = g.mutation()
	}
	return out
}

// usage is the process's CPU time and peak RSS.
func usage(b *testing.B) (cpu time.Duration, maxRSSBytes int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cpu, ru.Maxrss * 1024 // Linux reports kilobytes
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkApplyMix: one op is one Apply of a batch of mutations; writers
// concurrent callers share the store, as partitions of the ingest do.
//
// Each case also measures, in the same run, the raw ceiling (package
// embeddedtest): a bare Pebble database with the store's options
// committing blind, in the same batches, with the same durability and from
// as many writers, the exact operations the store committed for the same
// mutations. The batches are split into up to mixRounds rounds. In each
// round a third store applies the round's batches untimed, its commit hook
// capturing what it commits; then the store and the ceiling each write the
// round on their own fresh database, in alternating order (the store first
// in even rounds). Each timed part starts after a garbage collection, and
// after it the benchmark waits, counting CPU but not wall time, until that
// database runs no flush or compaction, so each side is charged its own
// background work. ns/op and mutations/s are the store's; x-ceiling is the
// store's mutations/s over the ceiling's.
func BenchmarkApplyMix(b *testing.B) {
	schema := benchSchema(b)
	for _, bc := range []struct{ writers, batch int }{{1, 500}, {4, 500}, {1, 50}} {
		b.Run(fmt.Sprintf("writers=%d/batch=%d", bc.writers, bc.batch), func(b *testing.B) {
			b.StopTimer()
			cfg := embedded.DefaultConfig()
			cfg.Dir = b.TempDir()
			s := benchStoreCfg(b, cfg, embedded.Deps{})
			var capt embeddedtest.Capture
			capCfg := cfg
			capCfg.Dir = b.TempDir()
			capStore := benchStoreCfg(b, capCfg, embedded.Deps{CommitHook: capt.Hook})
			ceil := embeddedtest.OpenBare(b, cfg, b.TempDir())

			// Pre-generate so the generator's cost is not measured; batch i
			// is writer i%writers' next one.
			gens := make([]*mixGen, bc.writers)
			for w := range gens {
				gens[w] = newMixGen(uint64(w+1), schema)
			}
			all := make([][]graph.Mutation, b.N)
			for i := range all {
				all[i] = gens[i%bc.writers].batch(bc.batch)
			}
			// apply writes batches lo..hi-1 on st from the writers, batch i
			// by writer i%writers, and returns each call's latency.
			apply := func(st *embedded.Store, lo, hi int) []time.Duration {
				lat := make([][]time.Duration, bc.writers)
				var wg sync.WaitGroup
				for w := range bc.writers {
					wg.Go(func() {
						for i := lo + (w-lo%bc.writers+bc.writers)%bc.writers; i < hi; i += bc.writers {
							t0 := time.Now()
							if err := st.Apply(context.Background(), all[i]); err != nil {
								b.Error(err)
								return
							}
							lat[w] = append(lat[w], time.Since(t0))
						}
					})
				}
				wg.Wait()
				return slices.Concat(lat...)
			}

			per := (b.N + mixRounds - 1) / mixRounds
			rounds := (b.N + per - 1) / per
			var rt, cl mixSide
			ops := 0
			for r := range rounds {
				lo, hi := r*per, min((r+1)*per, b.N)
				apply(capStore, lo, hi)
				embeddedtest.WaitQuiet(embedded.PebbleDB(capStore))
				batches := capt.Take(b)
				ops += embeddedtest.Ops(batches)
				half := 0
				if rounds > 1 && r >= rounds/2 {
					half = 1
				}
				muts := (hi - lo) * bc.batch
				// Each timed part starts after a collection, so that the
				// garbage of what ran before is not collected on its time.
				runStore := func() {
					runtime.GC()
					cpu0, _ := usage(b)
					b.StartTimer()
					start := time.Now()
					lat := apply(s, lo, hi)
					wall := time.Since(start)
					b.StopTimer()
					embeddedtest.WaitQuiet(embedded.PebbleDB(s))
					cpu1, _ := usage(b)
					rt.add(half, muts, wall, cpu1-cpu0, lat)
				}
				runCeiling := func() {
					runtime.GC()
					cpu0, _ := usage(b)
					start := time.Now()
					lat, err := embeddedtest.Replay(ceil, batches, bc.writers, cfg.Sync)
					wall := time.Since(start)
					if err != nil {
						b.Fatal(err)
					}
					embeddedtest.WaitQuiet(ceil)
					cpu1, _ := usage(b)
					cl.add(half, muts, wall, cpu1-cpu0, lat)
				}
				if r%2 == 0 {
					runStore()
					runCeiling()
				} else {
					runCeiling()
					runStore()
				}
			}
			muts := float64(rt.muts)
			b.ReportMetric(muts/rt.wall.Seconds(), "mutations/s")
			reportLatency(b, rt.lat)
			b.ReportMetric(rt.cpu.Seconds()/float64(b.N), "cpu-s/op")
			_, rss := usage(b)
			b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
			b.ReportMetric(perMut(rt.cpu, rt.muts), "cpu-us/mut")
			b.ReportMetric(perMut(rt.wall, rt.muts), "wall-us/mut")
			b.ReportMetric(perMut(cl.cpu, cl.muts), "ceil-cpu-us/mut")
			b.ReportMetric(perMut(cl.wall, cl.muts), "ceil-wall-us/mut")
			b.ReportMetric(cl.wall.Seconds()/rt.wall.Seconds(), "x-ceiling")
			b.ReportMetric(cl.cpu.Seconds()/rt.cpu.Seconds(), "x-ceiling-cpu")
			slices.Sort(cl.lat)
			b.Logf("%d mutations in %d batches, %d rounds, %.2f Pebble operations per mutation; "+
				"rtgraph %.1f µs CPU, %.1f µs wall per mutation (%.0f/s); "+
				"ceiling (bare Pebble, same writes and batches) %.1f µs CPU, %.1f µs wall per mutation (%.0f/s), commit p50 %s p99 %s; "+
				"rtgraph ÷ ceiling: throughput %.3f, CPU efficiency %.3f",
				rt.muts, b.N, rounds, float64(ops)/muts,
				perMut(rt.cpu, rt.muts), perMut(rt.wall, rt.muts), muts/rt.wall.Seconds(),
				perMut(cl.cpu, cl.muts), perMut(cl.wall, cl.muts), float64(cl.muts)/cl.wall.Seconds(),
				pctOf(cl.lat, 0.5), pctOf(cl.lat, 0.99),
				cl.wall.Seconds()/rt.wall.Seconds(), cl.cpu.Seconds()/rt.cpu.Seconds())
			if rounds > 1 {
				b.Logf("CPU µs per mutation, first half of the rounds (database empty to %d mutations) → second half (to %d): rtgraph %.1f → %.1f, ceiling %.1f → %.1f",
					rt.halfMuts[0], rt.muts, perMut(rt.halfCPU[0], rt.halfMuts[0]), perMut(rt.halfCPU[1], rt.halfMuts[1]),
					perMut(cl.halfCPU[0], cl.halfMuts[0]), perMut(cl.halfCPU[1], cl.halfMuts[1]))
			}
		})
	}
}

// mixRounds is how many rounds BenchmarkApplyMix alternates the store and
// its ceiling over (fewer when there are fewer batches).
const mixRounds = 10

// mixSide accumulates one side's timed parts across rounds.
type mixSide struct {
	muts      int
	wall, cpu time.Duration
	lat       []time.Duration
	halfMuts  [2]int
	halfCPU   [2]time.Duration
}

func (m *mixSide) add(half, muts int, wall, cpu time.Duration, lat []time.Duration) {
	m.muts += muts
	m.wall += wall
	m.cpu += cpu
	m.lat = append(m.lat, lat...)
	m.halfMuts[half] += muts
	m.halfCPU[half] += cpu
}

// perMut is d in microseconds per mutation.
func perMut(d time.Duration, muts int) float64 {
	if muts == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(muts)
}

// pctOf is the p quantile of sorted.
func pctOf(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))].Round(time.Microsecond)
}

// BenchmarkAdjacencyPage300 reads one page of 300 edges of a node with
// 20000 edges, at a random position (through the cursor of a smaller page),
// in each order. Three sides alternate in rounds of 20 pages, each after a
// garbage collection: the store decoding properties (decoded), the store
// handing over the stored bytes (graph.AdjacencyQuery.RawProps, raw), and
// the raw ceiling: a Pebble iterator over the same keys in a snapshot that
// checks each record's versions and expiry and the far end's node record
// through a second iterator, as the store does, and copies the same bytes
// (far-end id, property JSON) into page arenas. ns/op and the latencies
// are the decoded side's; per edge, each side reports CPU microseconds and
// heap allocations; x-ceiling is the ceiling's CPU over the raw side's.
func BenchmarkAdjacencyPage300(b *testing.B) {
	s := benchStore(b)
	camp := graph.NodeKey{Type: "campaign", ID: "campaign-big"}
	g := newMixGen(99, benchSchema(b))
	const degree = 20000
	// The campaign and its creatives exist: an edge is seen only while both
	// ends do, so reads check them as they would in production.
	muts := []graph.Mutation{{Op: graph.OpUpsertNode, Node: camp, EventTime: g.now, Props: graph.Props{"name": "big"}}}
	for i := range degree {
		creative := graph.NodeKey{Type: "creative", ID: fmt.Sprintf("creative-%07d", i)}
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge, EventTime: g.now.Add(-time.Duration(i) * time.Second),
			Edge:  graph.EdgeKey{Type: "runs", From: camp, To: creative},
			Props: graph.Props{"weight": float64(i%10) / 10, "started_at": "2026-11-01T00:00:00Z"}},
			graph.Mutation{Op: graph.OpUpsertNode, Node: creative, EventTime: g.now, Props: graph.Props{"format": "video"}})
		if len(muts) >= 5000 {
			mustApplyB(b, s, muts)
			muts = muts[:0]
		}
	}
	if len(muts) > 0 {
		mustApplyB(b, s, muts)
	}
	db := embedded.PebbleDB(s)
	for _, bc := range []struct {
		name  string
		dir   graph.Direction
		order graph.Order
	}{{"out/latest", graph.Out, graph.OrderLatest}, {"out/key", graph.Out, graph.OrderKey}} {
		b.Run(bc.name, func(b *testing.B) {
			q := graph.AdjacencyQuery{Node: camp, EdgeType: "runs", Direction: bc.dir, Order: bc.order, Limit: 300}
			// Cursors at spread positions, made before timing.
			var cursors [][]byte
			pos := q
			pos.Limit = 1000
			for {
				p, err := s.Adjacency(context.Background(), pos)
				if err != nil {
					b.Fatal(err)
				}
				if p.Next == nil {
					break
				}
				cursors = append(cursors, p.Next)
				pos.Cursor = p.Next
			}
			cursors = append(cursors, nil)
			spans := make([]rawSpan, len(cursors))
			for i, c := range cursors {
				q.Cursor = c
				sp := &spans[i]
				var err error
				if sp.lo, sp.hi, sp.after, sp.prefixLen, sp.timed, err = embedded.AdjacencySpan(s, q); err != nil {
					b.Fatal(err)
				}
			}
			// The ceiling returns the same bytes as the store.
			for i, c := range cursors {
				q.Cursor, q.RawProps = c, true
				p, err := s.Adjacency(context.Background(), q)
				if err != nil {
					b.Fatal(err)
				}
				rp, err := rawAdjacency(db, spans[i], 300)
				if err != nil {
					b.Fatal(err)
				}
				if len(rp.ids) != len(p.Edges) {
					b.Fatalf("cursor %d: ceiling read %d edges, store %d", i, len(rp.ids), len(p.Edges))
				}
				for j, e := range p.Edges {
					if rp.ids[j] != e.Key.To.ID || string(rp.props[j]) != string(e.PropsJSON) || rp.at[j] != e.EventTime.UnixMicro() {
						b.Fatalf("cursor %d edge %d: ceiling %s %s, store %s %s", i, j, rp.ids[j], rp.props[j], e.Key.To.ID, e.PropsJSON)
					}
				}
			}
			lat := make([]time.Duration, 0, b.N)
			sides := alternateSides(b, func(which, i int) int {
				c := i % len(cursors)
				var got int
				switch which {
				case sideDecoded, sideRaw:
					rq := q
					rq.Cursor, rq.RawProps = cursors[c], which == sideRaw
					t0 := time.Now()
					p, err := s.Adjacency(context.Background(), rq)
					if err != nil {
						b.Fatal(err)
					}
					if which == sideDecoded {
						lat = append(lat, time.Since(t0))
					}
					got = len(p.Edges)
				case sideCeiling:
					rp, err := rawAdjacency(db, spans[c], 300)
					if err != nil {
						b.Fatal(err)
					}
					got = len(rp.ids)
				}
				if got != 300 {
					b.Fatalf("page: %d edges", got)
				}
				return got
			})
			reportLatency(b, lat)
			reportSides(b, sides, "edge")
		})
	}
}

// The sides of a read benchmark: the store decoding properties, the raw
// ceiling, the store handing over the stored bytes.
const (
	sideDecoded = iota
	sideCeiling
	sideRaw
)

// sideCost is what one side of a read benchmark spent and read.
type sideCost struct {
	cpu    time.Duration
	allocs uint64
	items  int
}

// alternateSides makes b.N operations on each side in rounds of 20,
// rotating which side goes first, each side's part of a round after a
// garbage collection; op(which, i) makes a side's i-th operation and
// returns the items (edges, nodes) it read. The benchmark timer runs for
// the decoded side only.
func alternateSides(b *testing.B, op func(which, i int) int) [3]sideCost {
	const round = 20
	var sides [3]sideCost
	var ms runtime.MemStats
	b.ResetTimer()
	b.StopTimer()
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		for k := range 3 {
			which := (k + done/round) % 3
			runtime.GC()
			runtime.ReadMemStats(&ms)
			a0 := ms.Mallocs
			cpu0, _ := usage(b)
			if which == sideDecoded {
				b.StartTimer()
			}
			for i := range n {
				sides[which].items += op(which, done+i)
			}
			b.StopTimer()
			cpu1, _ := usage(b)
			runtime.ReadMemStats(&ms)
			sides[which].cpu += cpu1 - cpu0
			sides[which].allocs += ms.Mallocs - a0
		}
	}
	return sides
}

// reportSides reports each side's CPU microseconds and allocations per
// item (unit: edge, node) and x-ceiling, the ceiling's CPU over the raw
// side's.
func reportSides(b *testing.B, sides [3]sideCost, unit string) {
	per := func(sd sideCost) (float64, float64) {
		return sd.cpu.Seconds() * 1e6 / float64(sd.items), float64(sd.allocs) / float64(sd.items)
	}
	cpuD, allocD := per(sides[sideDecoded])
	cpuC, allocC := per(sides[sideCeiling])
	cpuR, allocR := per(sides[sideRaw])
	b.ReportMetric(cpuD, "decoded-cpu-us/"+unit)
	b.ReportMetric(allocD, "decoded-allocs/"+unit)
	b.ReportMetric(cpuR, "raw-cpu-us/"+unit)
	b.ReportMetric(allocR, "raw-allocs/"+unit)
	b.ReportMetric(cpuC, "ceil-cpu-us/"+unit)
	b.ReportMetric(allocC, "ceil-allocs/"+unit)
	b.ReportMetric(cpuC/cpuR, "x-ceiling")
}

// rawSpan is one adjacency page's key range (embedded.AdjacencySpan).
type rawSpan struct {
	lo, hi, after []byte
	prefixLen     int
	timed         bool
}

// rawPage is what the read ceiling returns: per edge the far end's id,
// property bytes and event time (microseconds).
type rawPage struct {
	ids   []string
	props [][]byte
	at    []int64
}

// Offsets in a stored record (see record.go): version byte, flags,
// upsert time, expiry, delete time, upsert position, delete position,
// then the properties.
const (
	recFlags   = 1
	recUpAt    = 2
	recExpires = 10
	recDelAt   = 18
	recUpPos   = 26
	recDelPos  = 26 + graph.PosLen
	recProps   = 26 + 2*graph.PosLen
)

// rawVisible reports whether a stored record holds an upsert newer than its
// delete, not expired at now.
func rawVisible(v []byte, now int64) bool {
	if len(v) < recProps || v[recFlags]&1 == 0 {
		return false
	}
	if exp := int64(binary.BigEndian.Uint64(v[recExpires:])); exp != 0 && now >= exp {
		return false
	}
	if v[recFlags]&2 == 0 {
		return true
	}
	up, del := int64(binary.BigEndian.Uint64(v[recUpAt:])), int64(binary.BigEndian.Uint64(v[recDelAt:]))
	return up > del || (up == del && bytes.Compare(v[recUpPos:recDelPos], v[recDelPos:recProps]) > 0)
}

// rawAdjacency is the read ceiling: the same logical page read straight
// from Pebble.
func rawAdjacency(db *pebble.DB, sp rawSpan, limit int) (rawPage, error) {
	snap := db.NewSnapshot()
	defer snap.Close()
	nodes, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{'n'}, UpperBound: []byte{'n' + 1}})
	if err != nil {
		return rawPage{}, err
	}
	defer nodes.Close()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: sp.lo, UpperBound: sp.hi})
	if err != nil {
		return rawPage{}, err
	}
	defer it.Close()
	now := time.Now().UnixMicro()
	var ids, props []byte
	type span struct{ id0, id1, p0, p1 int }
	spans := make([]span, 0, limit)
	at := make([]int64, 0, limit)
	nk := []byte{'n'}
	for ok := it.First(); ok && len(spans) < limit; ok = it.Next() {
		key, v := it.Key(), it.Value()
		if sp.after != nil && bytes.Equal(key, sp.after) {
			continue
		}
		if !rawVisible(v, now) {
			continue
		}
		far := key[sp.prefixLen:]
		if sp.timed {
			far = far[8:]
		}
		nk = append(nk[:1], far...)
		if !nodes.SeekGE(nk) || !bytes.Equal(nodes.Key(), nk) || !rawVisible(nodes.Value(), now) {
			continue
		}
		// far is <type> 0x00 0x01 <id> 0x00 0x01 (no escapes in these ids).
		t := bytes.IndexByte(far, 0)
		id := far[t+2 : len(far)-2]
		sp := span{id0: len(ids), p0: len(props)}
		ids = append(ids, id...)
		props = append(props, v[recProps:]...)
		sp.id1, sp.p1 = len(ids), len(props)
		spans = append(spans, sp)
		at = append(at, int64(binary.BigEndian.Uint64(v[recUpAt:])))
	}
	if err := it.Error(); err != nil {
		return rawPage{}, err
	}
	all := string(ids)
	out := rawPage{ids: make([]string, len(spans)), props: make([][]byte, len(spans)), at: at}
	for i, s := range spans {
		out.ids[i] = all[s.id0:s.id1]
		out.props[i] = props[s.p0:s.p1]
	}
	return out, nil
}

// BenchmarkGetNodes100 reads 100 random nodes out of 200000, one get at a
// time. Three sides alternate in rounds of 20 gets, each after a garbage
// collection, over the same pre-made key sets: the store decoding
// properties (decoded), the store handing over the stored bytes
// (GetNodesRaw, raw), and the raw ceiling: the same keys read straight
// from Pebble in one snapshot (the type's truncate entry, then a node-table
// iterator seeking the keys in order), each record's upsert checked against
// its delete and the truncate, and the id and property bytes of the live
// ones copied into two arenas. ns/op and the latencies are the decoded
// side's; per node, each side reports CPU microseconds and heap
// allocations; x-ceiling is the ceiling's CPU over the raw side's.
func BenchmarkGetNodes100(b *testing.B) {
	s := benchStore(b)
	g := newMixGen(5, benchSchema(b))
	ut, _ := g.schema.NodeType("user")
	const n = 200000
	var muts []graph.Mutation
	for i := range n {
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertNode, EventTime: g.now,
			Node: graph.NodeKey{Type: "user", ID: fmt.Sprintf("user-%07d", i)}, Props: g.props(ut.Props)})
		if len(muts) == 5000 {
			mustApplyB(b, s, muts)
			muts = muts[:0]
		}
	}
	db := embedded.PebbleDB(s)
	// Key sets made before timing; the ceiling returns the same bytes.
	sets := make([][]graph.NodeKey, 64)
	for i := range sets {
		sets[i] = make([]graph.NodeKey, 100)
		for j := range sets[i] {
			sets[i][j] = graph.NodeKey{Type: "user", ID: fmt.Sprintf("user-%07d", g.rng.IntN(n))}
		}
		got, err := s.GetNodesRaw(context.Background(), sets[i])
		if err != nil {
			b.Fatal(err)
		}
		rn, err := rawGetNodes(db, sets[i])
		if err != nil {
			b.Fatal(err)
		}
		if len(rn.ids) != len(got) {
			b.Fatalf("set %d: ceiling read %d nodes, store %d", i, len(rn.ids), len(got))
		}
		for j, id := range rn.ids {
			nd, ok := got[graph.NodeKey{Type: "user", ID: id}]
			if !ok || string(nd.PropsJSON) != string(rn.props[j]) {
				b.Fatalf("set %d: node %s: ceiling %s, store %s (found %v)", i, id, rn.props[j], nd.PropsJSON, ok)
			}
		}
	}
	lat := make([]time.Duration, 0, b.N)
	sides := alternateSides(b, func(which, i int) int {
		keys := sets[i%len(sets)]
		var got int
		switch which {
		case sideDecoded, sideRaw:
			get := s.GetNodes
			if which == sideRaw {
				get = s.GetNodesRaw
			}
			t0 := time.Now()
			nodes, err := get(context.Background(), keys)
			if err != nil {
				b.Fatal(err)
			}
			if which == sideDecoded {
				lat = append(lat, time.Since(t0))
			}
			got = len(nodes)
		case sideCeiling:
			rn, err := rawGetNodes(db, keys)
			if err != nil {
				b.Fatal(err)
			}
			got = len(rn.ids)
		}
		if got == 0 {
			b.Fatal("get nodes: none found")
		}
		return got
	})
	reportLatency(b, lat)
	reportSides(b, sides, "node")
}

// rawNodes is what the node-read ceiling returns: the ids and property
// bytes of the live nodes asked for, in key order.
type rawNodes struct {
	ids   []string
	props [][]byte
}

// rawAppendStr appends s in the key encoding (keys.go): 0x00 escaped as
// 0x00 0xff, then the terminator 0x00 0x01.
func rawAppendStr(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			b = append(b, 0, 0xff)
			continue
		}
		b = append(b, s[i])
	}
	return append(b, 0, 1)
}

// rawGetNodes is the node-read ceiling: the same logical read straight from
// Pebble. Keys are of one node type (as the benchmark's are), so one
// truncate entry is read.
func rawGetNodes(db *pebble.DB, keys []graph.NodeKey) (rawNodes, error) {
	snap := db.NewSnapshot()
	defer snap.Close()
	typ := keys[0].Type
	var truncAt int64
	var truncPos []byte
	hasTrunc := false
	if v, closer, err := snap.Get(rawAppendStr([]byte{'t'}, typ)); err == nil {
		truncAt, truncPos, hasTrunc = int64(binary.BigEndian.Uint64(v)), bytes.Clone(v[8:]), true
		_ = closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return rawNodes{}, err
	}
	enc := make([]byte, 0, 32*len(keys))
	ends := make([]int, len(keys))
	for i, k := range keys {
		enc = rawAppendStr(rawAppendStr(append(enc, 'n'), typ), k.ID)
		ends[i] = len(enc)
	}
	order := make([][]byte, len(keys))
	for i := range keys {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		order[i] = enc[start:ends[i]]
	}
	slices.SortFunc(order, bytes.Compare)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{'n'}, UpperBound: []byte{'n' + 1}})
	if err != nil {
		return rawNodes{}, err
	}
	defer it.Close()
	now := time.Now().UnixMicro()
	var ids, props []byte
	type span struct{ id0, id1, p0, p1 int }
	spans := make([]span, 0, len(keys))
	idAt := 1 + len(typ) + 2 // after 'n' and the encoded type (no 0x00 in it)
	for i, k := range order {
		if i > 0 && bytes.Equal(k, order[i-1]) {
			continue
		}
		if !it.SeekGE(k) || !bytes.Equal(it.Key(), k) {
			continue
		}
		v := it.Value()
		if !rawVisible(v, now) {
			continue
		}
		if hasTrunc {
			up := int64(binary.BigEndian.Uint64(v[recUpAt:]))
			if up < truncAt || (up == truncAt && bytes.Compare(v[recUpPos:recDelPos], truncPos) <= 0) {
				continue
			}
		}
		sp := span{id0: len(ids), p0: len(props)}
		ids = append(ids, k[idAt:len(k)-2]...) // ids here hold no 0x00
		props = append(props, v[recProps:]...)
		sp.id1, sp.p1 = len(ids), len(props)
		spans = append(spans, sp)
	}
	if err := it.Error(); err != nil {
		return rawNodes{}, err
	}
	all := string(ids)
	out := rawNodes{ids: make([]string, len(spans)), props: make([][]byte, len(spans))}
	for i, sp := range spans {
		out.ids[i] = all[sp.id0:sp.id1]
		out.props[i] = props[sp.p0:sp.p1]
	}
	return out, nil
}

func mustApplyB(b *testing.B, s graph.Store, muts []graph.Mutation) {
	b.Helper()
	if err := s.Apply(context.Background(), muts); err != nil {
		b.Fatal(err)
	}
}
