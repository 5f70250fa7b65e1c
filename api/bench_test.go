package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/cassandra/cassandratest"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/graph/storetest"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
)

// The query benchmark (make bench-query) serves a generated social graph
// through the whole API over HTTP on 127.0.0.1 and measures latency
// percentiles of node reads, edge pages and 1-, 2- and 3-hop traversals at
// concurrency 1 and 16, plus traversals from a supernode.
//
// The graph: benchUsers users; each follows a log-normally distributed
// number of others (median 3, mean about 4.5, a long tail capped at 1000);
// one in ten also follows the hub, and the hub follows every user, so the
// hub is a supernode of benchUsers out-edges that many 2-hop traversals
// reach. One user in a hundred is vip. Event times spread over the 90 days
// before the clock, all inside the default lookback. About 1.1M edges.
//
// Environment: RTGRAPH_BENCH_QUERIES (requests per case and concurrency,
// default 1000 on Pebble, 300 on Cassandra), RTGRAPH_BENCH_USERS (default
// 200000),
// RTGRAPH_TEST_CASSANDRA (the Cassandra run; RTGRAPH_SKIP_INTEGRATION=1
// skips it).

const benchSeed = 20261125

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func benchUser(i int) graph.NodeKey { return graph.NodeKey{Type: "user", ID: fmt.Sprintf("u%06d", i)} }

var benchHub = graph.NodeKey{Type: "user", ID: "hub"}

// benchGraph generates the graph in batches and passes each to apply. It
// returns the number of edges written.
func benchGraph(users, batch int, apply func([]graph.Mutation) error) (int, error) {
	rng := rand.New(rand.NewPCG(benchSeed, 1))
	span := int64(90 * 24 * time.Hour / time.Second)
	when := func() time.Time { return clock.Add(-time.Duration(1+rng.Int64N(span)) * time.Second) }
	edges := 0
	buf := make([]graph.Mutation, 0, batch)
	flush := func(force bool) error {
		if len(buf) == 0 || (!force && len(buf) < batch) {
			return nil
		}
		err := apply(buf)
		buf = buf[:0]
		return err
	}
	add := func(m graph.Mutation) error {
		if m.Op == graph.OpUpsertEdge {
			edges++
		}
		buf = append(buf, m)
		return flush(false)
	}
	if err := add(graph.Mutation{Op: graph.OpUpsertNode, Node: benchHub, Props: graph.Props{"name": "hub"}, EventTime: when()}); err != nil {
		return 0, err
	}
	for i := range users {
		u := benchUser(i)
		props := graph.Props{"name": u.ID, "age": int64(18 + rng.IntN(60)), "vip": rng.IntN(100) == 0}
		if err := add(graph.Mutation{Op: graph.OpUpsertNode, Node: u, Props: props, EventTime: when()}); err != nil {
			return 0, err
		}
		n := min(int(math.Exp(1.1+1.0*rng.NormFloat64())), 1000)
		seen := map[int]bool{i: true}
		for range n {
			j := rng.IntN(users)
			if seen[j] {
				continue
			}
			seen[j] = true
			e := graph.EdgeKey{Type: "follows", From: u, To: benchUser(j)}
			if err := add(graph.Mutation{Op: graph.OpUpsertEdge, Edge: e, Props: graph.Props{"weight": rng.Float64()}, EventTime: when()}); err != nil {
				return 0, err
			}
		}
		if rng.IntN(10) == 0 {
			e := graph.EdgeKey{Type: "follows", From: u, To: benchHub}
			if err := add(graph.Mutation{Op: graph.OpUpsertEdge, Edge: e, EventTime: when()}); err != nil {
				return 0, err
			}
		}
		e := graph.EdgeKey{Type: "follows", From: benchHub, To: u}
		if err := add(graph.Mutation{Op: graph.OpUpsertEdge, Edge: e, EventTime: when()}); err != nil {
			return 0, err
		}
	}
	return edges, flush(true)
}

type benchCase struct {
	name   string
	method string
	// target returns the path and body of request i.
	target func(rng *rand.Rand) (string, string)
}

func benchCases(users int) []benchCase {
	randUser := func(rng *rand.Rand) string { return benchUser(rng.IntN(users)).ID }
	trav := func(hops int) func(rng *rand.Rand) (string, string) {
		return func(rng *rand.Rand) (string, string) {
			hs := strings.TrimSuffix(strings.Repeat(`{"edge_types":["follows"]},`, hops), ",")
			return "/v1/traversals", `{"start":[{"type":"user","id":"` + randUser(rng) + `"}],"hops":[` + hs + `]}`
		}
	}
	return []benchCase{
		{"node", http.MethodGet, func(rng *rand.Rand) (string, string) { return "/v1/nodes/user/" + randUser(rng), "" }},
		{"edges_page", http.MethodGet, func(rng *rand.Rand) (string, string) {
			return "/v1/nodes/user/" + randUser(rng) + "/edges?edge_type=follows", ""
		}},
		{"1hop", http.MethodPost, trav(1)},
		{"2hop", http.MethodPost, trav(2)},
		{"3hop", http.MethodPost, trav(3)},
		{"supernode_1hop", http.MethodPost, func(*rand.Rand) (string, string) {
			return "/v1/traversals", `{"start":[{"type":"user","id":"hub"}],"hops":[{"edge_types":["follows"]}]}`
		}},
		{"supernode_2hop", http.MethodPost, func(*rand.Rand) (string, string) {
			return "/v1/traversals", `{"start":[{"type":"user","id":"hub"}],"hops":[{"edge_types":["follows"]},{"edge_types":["follows"]}]}`
		}},
		// A filter only one node in a hundred passes: the hop reads the
		// hub's edges until the supernode cap.
		{"supernode_filtered", http.MethodPost, func(*rand.Rand) (string, string) {
			return "/v1/traversals", `{"start":[{"type":"user","id":"hub"}],"hops":[{"edge_types":["follows"],"where":{"vip":true}}],"time_budget_ms":1000}`
		}},
	}
}

type benchResult struct {
	lat        []time.Duration
	truncated  map[string]int
	storeReads int64
	edges      int64
	overBudget int
	timedOut   int     // 504 answers: the time budget ran out (saturation), reported, not fatal
	maxServer  float64 // longest server-side duration_ms
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(math.Ceil(p*float64(len(sorted))))-1)]
}

// runCase sends n requests of c from conc workers and returns latencies.
func runCase(ctx context.Context, client *http.Client, base string, c benchCase, n, conc int) (benchResult, error) {
	res := benchResult{lat: make([]time.Duration, n), truncated: map[string]int{}}
	var next atomic.Int64
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	for w := range conc {
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(benchSeed, uint64(w)+100))
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return nil
				}
				path, body := c.target(rng)
				var rb io.Reader
				if body != "" {
					rb = strings.NewReader(body)
				}
				req, err := http.NewRequestWithContext(ctx, c.method, base+path, rb)
				if err != nil {
					return err
				}
				req.Header.Set("Authorization", "Bearer "+testKey)
				if body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				res.lat[i] = time.Since(start)
				if err != nil {
					return err
				}
				if resp.StatusCode == http.StatusNotFound && c.name == "node" {
					continue // a user id that is only an edge end
				}
				if resp.StatusCode == http.StatusGatewayTimeout {
					// The request's time budget ran out: the documented answer
					// of a saturated store, counted and reported.
					mu.Lock()
					res.timedOut++
					mu.Unlock()
					continue
				}
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("%s: status %d: %s", c.name, resp.StatusCode, b)
				}
				if c.method != http.MethodPost {
					continue
				}
				var tr traversalResponse
				if err := decodeJSON(bytes.NewReader(b), &tr); err != nil {
					return err
				}
				mu.Lock()
				res.storeReads += int64(tr.Stats.StoreReads)
				res.edges += int64(len(tr.Edges))
				for _, h := range tr.Hops {
					for _, r := range h.Reasons {
						res.truncated[r]++
					}
				}
				if tr.Stats.DurationMS > 1000 {
					res.overBudget++
				}
				res.maxServer = max(res.maxServer, tr.Stats.DurationMS)
				mu.Unlock()
			}
		})
	}
	err := g.Wait()
	slices.Sort(res.lat)
	return res, err
}

func benchServe(b *testing.B, store graph.Reader, users, n int) {
	cfg := testConfig()
	cfg.CursorSecret = strings.Repeat("b", 32)
	h, err := New(Options{Config: cfg, Store: store, Schema: storetest.Schema(), Readiness: lifecycle.NewReadiness(),
		Freshness: fixedFreshness{t: watermarkAt}, Now: func() time.Time { return clock }})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: cfg.MinWriteTimeout(), IdleTimeout: 2 * time.Minute}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		_ = srv.Shutdown(context.Background())
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			b.Error(err)
		}
	}()
	transport := &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Minute}
	base := "http://" + ln.Addr().String()
	fmt.Printf("| case | concurrency | requests | p50 | p99 | max | edges/request | store reads/request | truncated hops (reason: count) |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, c := range benchCases(users) {
		for _, conc := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/c%d", c.name, conc), func(b *testing.B) {
				// Warm connections and caches a little, outside the figures.
				if _, err := runCase(context.Background(), client, base, c, 32, conc); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				res, err := runCase(context.Background(), client, base, c, n, conc)
				if err != nil {
					b.Fatal(err)
				}
				wall := time.Since(start)
				p50, p99 := percentile(res.lat, .50), percentile(res.lat, .99)
				b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(n)/wall.Seconds(), "req/s")
				var reasons []string
				for r, k := range res.truncated {
					reasons = append(reasons, fmt.Sprintf("%s: %d", r, k))
				}
				slices.Sort(reasons)
				if res.timedOut > 0 {
					reasons = append(reasons, fmt.Sprintf("504 time budget exceeded: %d", res.timedOut))
				}
				if res.overBudget > 0 {
					reasons = append(reasons, fmt.Sprintf("server time over the 1000 ms budget: %d (longest %.0f ms)", res.overBudget, res.maxServer))
				}
				perReq := func(v int64) string {
					if c.method != http.MethodPost {
						return "-"
					}
					return fmt.Sprintf("%.1f", float64(v)/float64(n))
				}
				fmt.Printf("| %s | %d | %d | %.2f ms | %.2f ms | %.2f ms | %s | %s | %s |\n", c.name, conc, n,
					ms(p50), ms(p99), ms(res.lat[len(res.lat)-1]), perReq(res.edges), perReq(res.storeReads), strings.Join(reasons, ", "))
			})
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkQuery is make bench-query. Run it with -benchtime 1x: each case
// sends its own RTGRAPH_BENCH_QUERIES requests and reports percentiles.
func BenchmarkQuery(b *testing.B) {
	users := benchEnvInt("RTGRAPH_BENCH_USERS", 200000)
	b.Run("embedded", func(b *testing.B) {
		cfg := embedded.DefaultConfig()
		cfg.Dir = b.TempDir()
		cfg.Sync = false // loading only; reads do not depend on it
		s, err := embedded.Open(cfg, storetest.Schema(), embedded.Deps{Now: func() time.Time { return clock }})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		start := time.Now()
		edges, err := benchGraph(users, 5000, func(m []graph.Mutation) error { return s.Apply(context.Background(), m) })
		if err != nil {
			b.Fatal(err)
		}
		fmt.Printf("\nembedded: loaded %d users, %d edges in %s\n\n", users+1, edges, time.Since(start).Round(time.Second))
		benchServe(b, s, users, benchEnvInt("RTGRAPH_BENCH_QUERIES", 1000))
	})
	b.Run("cassandra", func(b *testing.B) {
		s, session := cassandratest.OpenSession(b, "rtgraph_api_", storetest.Schema(), func() time.Time { return clock })
		start := time.Now()
		// Four writers: the Store spreads each batch over partitions, and
		// one writer leaves the node idle between round trips.
		var g errgroup.Group
		g.SetLimit(4)
		edges, err := benchGraph(users, 500, func(m []graph.Mutation) error {
			batch := slices.Clone(m)
			g.Go(func() error { return s.Apply(context.Background(), batch) })
			return nil
		})
		if err == nil {
			err = g.Wait()
		}
		if err != nil {
			b.Fatal(err)
		}
		fmt.Printf("\ncassandra: loaded %d users, %d edges in %s\n", users+1, edges, time.Since(start).Round(time.Second))
		// The load sets off compactions that run for minutes on two
		// cores; reads timed beside them measure the compactions.
		waited, quiet := cassandratest.WaitQuiet(b, session, 15*time.Minute)
		fmt.Printf("cassandra: waited %s for compactions to end (quiet: %t)\n\n", waited.Round(time.Second), quiet)
		// Fewer requests: a Cassandra round trip costs more than a Pebble
		// read, and the run must end in reasonable time on two cores.
		benchServe(b, s, users, benchEnvInt("RTGRAPH_BENCH_QUERIES", 300))
	})
}
