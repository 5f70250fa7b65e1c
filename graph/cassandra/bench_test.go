package cassandra

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/schemas"
)

// Benchmarks against real Cassandra (RTGRAPH_TEST_CASSANDRA), reported with
// b.ReportMetric; docs/bench-store-cassandra.md records figures and the
// command. They write to the run's test keyspace (and a second one for the
// raw baseline), dropped when the run ends.

// benchCallers is how many Apply calls run at once, like as many Kafka
// partitions being flushed concurrently.
const benchCallers = 8

// benchSchema has the property counts of a real vertical (1-5 per item).
func benchSchema(tb testing.TB) *graph.Schema {
	s, err := graph.NewSchema(
		[]graph.NodeType{
			{Name: "user", Props: map[string]graph.PropType{"name": graph.PropString, "age": graph.PropInt, "score": graph.PropFloat, "vip": graph.PropBool, "country": graph.PropString}},
			{Name: "item", Props: map[string]graph.PropType{"title": graph.PropString, "price": graph.PropFloat, "category": graph.PropString, "brand": graph.PropString, "stock": graph.PropInt}},
		},
		[]graph.EdgeType{
			{Name: "follows", From: []string{"user"}, To: []string{"user"}, Reverse: true,
				Props: map[string]graph.PropType{"weight": graph.PropFloat, "since": graph.PropInt, "source": graph.PropString, "rank": graph.PropInt, "muted": graph.PropBool}},
			{Name: "viewed", From: []string{"user"}, To: []string{"item"}, Reverse: true, TTL: 7 * 24 * time.Hour,
				Props: map[string]graph.PropType{"ms": graph.PropInt, "complete": graph.PropBool, "device": graph.PropString, "position": graph.PropInt, "referrer": graph.PropString}},
			{Name: "likes", From: []string{"user"}, To: []string{"item"},
				Props: map[string]graph.PropType{"rating": graph.PropInt, "ts": graph.PropInt, "source": graph.PropString, "weight": graph.PropFloat, "note": graph.PropString}},
		})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// workload generates batches of the realistic mix: 70% edge upserts (40%
// viewed, 20% follows, 10% likes), 25% node upserts, 5% deletes (3% edge,
// 2% node); 1-5 properties each. A batch is the events of 10 users, 10
// each, so its mutations share partitions as a Kafka partition's do.
type workload struct {
	rng    *rand.Rand
	schema *graph.Schema
	ns     string
	now    time.Time
}

func (w *workload) user(i int) graph.NodeKey {
	return graph.NodeKey{Type: "user", ID: fmt.Sprintf("%s-u%06d", w.ns, i)}
}
func (w *workload) item(i int) graph.NodeKey {
	return graph.NodeKey{Type: "item", ID: fmt.Sprintf("%s-i%06d", w.ns, i)}
}

func (w *workload) props(declared map[string]graph.PropType) graph.Props {
	names := make([]string, 0, len(declared))
	for n := range declared {
		names = append(names, n)
	}
	slices.Sort(names)
	w.rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	p := graph.Props{}
	for _, n := range names[:1+w.rng.IntN(len(names))] {
		switch declared[n] {
		case graph.PropString:
			p[n] = fmt.Sprintf("v%d", w.rng.IntN(10000))
		case graph.PropInt:
			p[n] = int64(w.rng.IntN(1 << 20))
		case graph.PropFloat:
			p[n] = w.rng.Float64() * 100
		case graph.PropBool:
			p[n] = w.rng.IntN(2) == 0
		}
	}
	return p
}

func (w *workload) batch() []graph.Mutation {
	out := make([]graph.Mutation, 0, 100)
	for range 10 {
		u := w.user(w.rng.IntN(20000))
		for range 10 {
			at := w.now.Add(-time.Duration(w.rng.Int64N(int64(6 * 24 * time.Hour))))
			var m graph.Mutation
			switch r := w.rng.IntN(100); {
			case r < 40:
				m = graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "viewed", From: u, To: w.item(w.rng.IntN(5000))}}
			case r < 60:
				m = graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "follows", From: u, To: w.user(w.rng.IntN(20000))}}
			case r < 70:
				m = graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "likes", From: u, To: w.item(w.rng.IntN(5000))}}
			case r < 85:
				m = graph.Mutation{Op: graph.OpUpsertNode, Node: u}
			case r < 95:
				m = graph.Mutation{Op: graph.OpUpsertNode, Node: w.item(w.rng.IntN(5000))}
			case r < 98:
				m = graph.Mutation{Op: graph.OpDeleteEdge, Edge: graph.EdgeKey{Type: "follows", From: u, To: w.user(w.rng.IntN(20000))}}
			default:
				m = graph.Mutation{Op: graph.OpDeleteNode, Node: w.item(w.rng.IntN(5000))}
			}
			m.EventTime = at
			switch m.Op {
			case graph.OpUpsertEdge:
				et, _ := w.schema.EdgeType(m.Edge.Type)
				m.Props = w.props(et.Props)
			case graph.OpUpsertNode:
				nt, _ := w.schema.NodeType(m.Node.Type)
				m.Props = w.props(nt.Props)
			}
			out = append(out, m)
		}
	}
	return out
}

// usage is the process's CPU time and peak resident memory.
type usage struct {
	cpu    time.Duration
	maxRSS int64 // bytes
}

func readUsage(tb testing.TB) usage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return usage{
		cpu:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		maxRSS: ru.Maxrss * 1024, // kilobytes on Linux
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runConcurrently runs jobs on benchCallers goroutines and returns each
// job's latency and the wall time.
func runConcurrently(b *testing.B, n int, job func(i int) error) ([]time.Duration, time.Duration) {
	lat := make([]time.Duration, n)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for range benchCallers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				if err := job(i); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return lat, time.Since(start)
}

// rawWriter is the baseline: the captured plans sent with nothing but the
// driver. The same statements, grouped into the same single-partition
// batches (prepared, routed by token by the session's policy), streamed on
// rawInFlight long-lived goroutines: a round's requests go out one after
// another with up to rawInFlight in flight, no wait between plans; no
// checks, no retries, no metrics.
type rawWriter struct {
	s    *gocql.Session
	cl   gocql.Consistency
	work chan rawJob
	wg   sync.WaitGroup
}

type rawJob struct {
	stmts []stmt
	done  func(error)
}

func newRawWriter(s *gocql.Session, cl gocql.Consistency, n int) *rawWriter {
	w := &rawWriter{s: s, cl: cl, work: make(chan rawJob)}
	w.wg.Add(n)
	for range n {
		go func() {
			defer w.wg.Done()
			for j := range w.work {
				j.done(w.send(j.stmts))
			}
		}()
	}
	return w
}

func (w *rawWriter) send(stmts []stmt) error {
	ctx := context.Background()
	now := stmts[0].now // shared by the group, as in Store.send
	if len(stmts) == 1 {
		q := w.s.Query(stmts[0].cql, stmts[0].args...).Consistency(w.cl)
		if now != 0 {
			q = q.WithNowInSeconds(int(now))
		}
		return q.ExecContext(ctx)
	}
	bt := w.s.Batch(gocql.UnloggedBatch).Consistency(w.cl)
	if now != 0 {
		bt = bt.WithNowInSeconds(int(now))
	}
	for _, st := range stmts {
		bt.Entries = append(bt.Entries, gocql.BatchEntry{Stmt: st.cql, Args: st.args, Idempotent: true})
	}
	return bt.ExecContext(ctx)
}

// rawInFlight is how many requests the raw baseline keeps in flight.
const rawInFlight = 256

// stream sends every plan's requests as one stream, plan after plan with
// no wait between them, and returns when all are acknowledged, with each
// plan's latency: from its first request handed to a sender to its last
// acknowledged.
func (w *rawWriter) stream(plans []*plan) ([]time.Duration, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	lat := make([]time.Duration, len(plans))
	for i, p := range plans {
		var groups [][]stmt
		for _, k := range p.order {
			stmts := p.groups[k].stmts
			for start := 0; start < len(stmts); start += maxBatchStatements {
				groups = append(groups, stmts[start:min(start+maxBatchStatements, len(stmts))])
			}
		}
		remaining := new(atomic.Int64)
		remaining.Store(int64(len(groups)))
		wg.Add(len(groups))
		t0 := time.Now()
		for _, stmts := range groups {
			w.work <- rawJob{stmts: stmts, done: func(err error) {
				if err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
				}
				if remaining.Add(-1) == 0 {
					lat[i] = time.Since(t0)
				}
				wg.Done()
			}}
		}
	}
	wg.Wait()
	return lat, first
}

func (w *rawWriter) close() {
	close(w.work)
	w.wg.Wait()
}

func planRows(p *plan) int {
	n := 0
	for _, g := range p.groups {
		n += len(g.stmts)
	}
	return n
}

// BenchmarkApplyMix measures Apply on the realistic mix, b.N batches of 100
// mutations with benchCallers calls at once, and beside it the raw ceiling:
// the exact rows each Apply wrote, replayed into a second keyspace by a
// bare driver loop streaming them with rawInFlight requests in flight
// (rawWriter.stream). The two alternate in rounds
// so both see the same server state (memtables, flushes, compactions).
func BenchmarkApplyMix(b *testing.B) {
	cfg, session := sharedSession(b)
	ctx := context.Background()
	rawSession := rawBaselineSession(b)
	schema := benchSchema(b)
	st, err := New(session, cfg, schema, Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()

	w := &workload{rng: rand.New(rand.NewPCG(1, 2)), schema: schema, ns: uniqueKeyspace("b"), now: time.Now()}
	// Warm up: prepared statements, connections, JIT on the server.
	for range 20 {
		if err := st.Apply(ctx, w.batch()); err != nil {
			b.Fatal(err)
		}
	}
	// Rounds interleave the two, so load from other processes on the
	// machine falls on both alike, and alternate which goes first: the
	// phase right after another runs measurably slower (the server is
	// still flushing what the previous one wrote). In rounds where the
	// baseline goes first it replays plans built without sending
	// (buildPlan), which equal the Store's but for a few edge_days rows
	// that concurrent calls of the Store may skip; both sides count the
	// rows they actually sent. Five batches per caller keep the tail of a
	// round (callers idle while the last batches finish) small.
	const round = 5 * benchCallers
	var (
		storeLat, rawLat    []time.Duration
		storeWall, rawWall  time.Duration
		storeCPU, rawCPU    time.Duration
		muts, rows, rawRows int
		plansMu             sync.Mutex
	)
	raw := newRawWriter(rawSession, st.writeCL, rawInFlight)
	defer raw.close()
	st.capture = func(ctx context.Context, p *plan) {
		if f, ok := ctx.Value(captureKey{}).(func(*plan)); ok {
			f(p)
		}
	}
	runStore := func(batches [][]graph.Mutation) []*plan {
		captured := make([]*plan, len(batches))
		u0 := readUsage(b)
		lat, wall := runConcurrently(b, len(batches), func(i int) error {
			return applyCapturing(ctx, st, batches[i], func(p *plan) {
				plansMu.Lock()
				captured[i] = p
				plansMu.Unlock()
			})
		})
		u1 := readUsage(b)
		storeLat, storeWall, storeCPU = append(storeLat, lat...), storeWall+wall, storeCPU+u1.cpu-u0.cpu
		for _, p := range captured {
			rows += planRows(p)
		}
		return captured
	}
	runRaw := func(plans []*plan) {
		u0 := readUsage(b)
		t0 := time.Now()
		lat, err := raw.stream(plans)
		if err != nil {
			b.Fatal(err)
		}
		wall := time.Since(t0)
		u1 := readUsage(b)
		rawLat, rawWall, rawCPU = append(rawLat, lat...), rawWall+wall, rawCPU+u1.cpu-u0.cpu
		for _, p := range plans {
			rawRows += planRows(p)
		}
	}
	b.ResetTimer()
	for r, done := 0, 0; done < b.N; r, done = r+1, done+round {
		batches := make([][]graph.Mutation, min(round, b.N-done))
		for i := range batches {
			batches[i] = w.batch()
			muts += len(batches[i])
		}
		if r%2 == 0 {
			runRaw(runStore(batches))
			continue
		}
		plans := make([]*plan, len(batches))
		for i, batch := range batches {
			p, _, err := st.buildPlan(batch)
			if err != nil {
				b.Fatal(err)
			}
			plans[i] = p
		}
		runRaw(plans)
		runStore(batches)
	}
	b.StopTimer()
	u := readUsage(b)
	b.ReportMetric(float64(muts)/storeWall.Seconds(), "mutations/s")
	b.ReportMetric(float64(rows)/storeWall.Seconds(), "rows/s")
	b.ReportMetric(ms(percentile(storeLat, 0.50)), "p50-batch-ms")
	b.ReportMetric(ms(percentile(storeLat, 0.99)), "p99-batch-ms")
	b.ReportMetric(float64(rawRows)/rawWall.Seconds(), "raw-rows/s")
	b.ReportMetric(ms(percentile(rawLat, 0.50)), "raw-p50-batch-ms")
	b.ReportMetric(ms(percentile(rawLat, 0.99)), "raw-p99-batch-ms")
	b.ReportMetric(100*(float64(rows)/storeWall.Seconds())/(float64(rawRows)/rawWall.Seconds()), "%-of-raw")
	b.ReportMetric(storeCPU.Seconds(), "store-cpu-s")
	b.ReportMetric(rawCPU.Seconds(), "raw-cpu-s")
	b.ReportMetric(float64(u.maxRSS)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(0, "ns/op")
}

// The baseline's keyspace is made once per run: the testing package calls
// a benchmark more than once (b.N = 1 first), and DDL is slow.
var rawBaseline struct {
	once    sync.Once
	session *gocql.Session
	err     error
}

func rawBaselineSession(b *testing.B) *gocql.Session {
	b.Helper()
	cfg := baseConfig(b, uniqueKeyspace("rtgraph_raw_"))
	rawBaseline.once.Do(func() {
		trackKeyspace(cfg.Keyspace)
		ctx := context.Background()
		if _, err := Migrate(ctx, cfg, schemas.CQLMigrations(), nil); err != nil {
			rawBaseline.err = err
			return
		}
		rawBaseline.session, rawBaseline.err = NewSession(ctx, cfg, nil)
		if rawBaseline.err == nil {
			trackSession(rawBaseline.session)
		}
	})
	if rawBaseline.err != nil {
		b.Fatal(rawBaseline.err)
	}
	return rawBaseline.session
}

// applyCapturing runs one Apply whose plan goes to onPlan. Concurrent
// calls each get their own hook through the call's context.
func applyCapturing(ctx context.Context, st *Store, muts []graph.Mutation, onPlan func(*plan)) error {
	return st.Apply(context.WithValue(ctx, captureKey{}, onPlan), muts)
}

type captureKey struct{}

// benchReadFixture writes one hub with edges out of it (in one call, all
// live) and n nodes, and returns the hub and the node keys.
func benchReadFixture(b *testing.B, st *Store, schema *graph.Schema, edges, nodes int) (graph.NodeKey, []graph.NodeKey) {
	w := &workload{rng: rand.New(rand.NewPCG(3, 4)), schema: schema, ns: uniqueKeyspace("r"), now: time.Now()}
	hub := w.user(0)
	et, _ := schema.EdgeType("follows")
	nt, _ := schema.NodeType("user")
	// The hub and its neighbours exist: an edge is seen only while both
	// ends do, so reads check them as they would in production.
	muts := []graph.Mutation{{Op: graph.OpUpsertNode, Node: hub, EventTime: w.now, Props: w.props(nt.Props)}}
	for i := range edges {
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "follows", From: hub, To: w.user(i + 1)},
			EventTime: w.now.Add(-time.Duration(i) * time.Minute), Props: w.props(et.Props)},
			graph.Mutation{Op: graph.OpUpsertNode, Node: w.user(i + 1), EventTime: w.now, Props: w.props(nt.Props)})
	}
	keys := make([]graph.NodeKey, nodes)
	for i := range keys {
		keys[i] = w.user(100000 + i)
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertNode, Node: keys[i], EventTime: w.now, Props: w.props(nt.Props)})
	}
	for start := 0; start < len(muts); start += 200 {
		if err := st.Apply(context.Background(), muts[start:min(start+200, len(muts))]); err != nil {
			b.Fatal(err)
		}
	}
	return hub, keys
}

func benchStore(b *testing.B) (*Store, *graph.Schema) {
	cfg, session := sharedSession(b)
	schema := benchSchema(b)
	st, err := New(session, cfg, schema, Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return st, schema
}

// reportLatencies runs op b.N times, one at a time, and reports p50/p99,
// CPU seconds per thousand calls and the peak RSS.
func reportLatencies(b *testing.B, op func() error) {
	for range 20 { // warm up
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	u0 := readUsage(b)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	u1 := readUsage(b)
	b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
	b.ReportMetric((u1.cpu-u0.cpu).Seconds()*1000/float64(b.N), "cpu-s/1k-calls")
	b.ReportMetric(float64(u1.maxRSS)/(1<<20), "peak-rss-MiB")
}

// BenchmarkAdjacencyPage300 reads the first page of 300 edges of a node
// with 1000, in each order, the property bytes passed through
// (graph.AdjacencyQuery.RawProps, as the API reads them), alternating with
// the raw ceiling of that order (rawKeyPage, rawLatestPage: the same rows
// read straight on the driver, the same bytes returned; checked equal
// first), both sides reported as in BenchmarkGetNodes100.
func BenchmarkAdjacencyPage300(b *testing.B) {
	st, schema := benchStore(b)
	hub, _ := benchReadFixture(b, st, schema, 1000, 0)
	ctx := context.Background()
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		b.Run(order.String(), func(b *testing.B) {
			q := graph.AdjacencyQuery{Node: hub, EdgeType: "follows", Direction: graph.Out, Order: order, Limit: 300, RawProps: true}
			keyPage := rawKeyPage{session: st.session, cl: st.readCL, now: time.Now}
			raw := keyPage.read
			if order == graph.OrderLatest {
				raw = rawLatestPage{keyPage}.read
			}
			page, err := st.Adjacency(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			want, err := raw(ctx, hub, "follows", dirOut, 300)
			if err != nil {
				b.Fatal(err)
			}
			if err := samePage(page, want); err != nil {
				b.Fatal(err)
			}
			alternateReads(b, func() error {
				page, err := st.Adjacency(ctx, q)
				if err == nil && len(page.Edges) != 300 {
					err = fmt.Errorf("page of %d edges, want 300", len(page.Edges))
				}
				return err
			}, func() error {
				page, err := raw(ctx, hub, "follows", dirOut, 300)
				if err == nil && len(page) != 300 {
					err = fmt.Errorf("raw page of %d edges, want 300", len(page))
				}
				return err
			})
		})
	}
}

// BenchmarkGetNodes100 reads 100 existing nodes in one call, the property
// bytes passed through (graph.RawNodeReader, as the API reads them),
// alternating with the raw ceiling (rawNodeReader: 100 prepared
// single-partition reads in flight straight on the driver, the same bytes
// returned). ns/op is unused; p50/p99 and CPU per call are rtgraph's, the
// ceil- ones the ceiling's, x-ceiling-* the ceiling's over rtgraph's.
func BenchmarkGetNodes100(b *testing.B) {
	st, schema := benchStore(b)
	_, keys := benchReadFixture(b, st, schema, 0, 100)
	ctx := context.Background()
	raw := rawNodeReader{session: st.session, cl: st.readCL}
	got, err := st.GetNodesRaw(ctx, keys)
	if err != nil {
		b.Fatal(err)
	}
	want, err := raw.read(ctx, keys)
	if err != nil {
		b.Fatal(err)
	}
	if err := sameNodeBytes(got, want); err != nil {
		b.Fatal(err)
	}
	alternateReads(b, func() error {
		got, err := st.GetNodesRaw(ctx, keys)
		if err == nil && len(got) != 100 {
			err = fmt.Errorf("got %d nodes, want 100", len(got))
		}
		return err
	}, func() error {
		got, err := raw.read(ctx, keys)
		if err == nil && len(got) != 100 {
			err = fmt.Errorf("the raw ceiling got %d nodes, want 100", len(got))
		}
		return err
	})
}
