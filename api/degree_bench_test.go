package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rtgraph/rtgraph/graph"
)

// BenchmarkDegree (make bench-degree) counts the out-degree of one
// supernode through GET /v1/nodes/{type}/{id}/degree on Pebble and on real
// Cassandra: RTGRAPH_BENCH_DEGREE edges (default 200000) of follows to
// distinct users (an implicit type, so each edge is checked against its far
// end's deletes), event times spread over 90 days. It reports the latency
// of the count (p50 and max of RTGRAPH_BENCH_QUERIES requests, default 5)
// and whether the server's default time budget (1 s) suffices.
func BenchmarkDegree(b *testing.B) {
	n := benchEnvInt("RTGRAPH_BENCH_DEGREE", 200000)
	queries := benchEnvInt("RTGRAPH_BENCH_QUERIES", 5)
	hub := graph.NodeKey{Type: "user", ID: "degree-hub"}
	muts := func(apply func([]graph.Mutation) error) error {
		batch := []graph.Mutation{{Op: graph.OpUpsertNode, Node: hub, EventTime: clock.Add(-100 * 24 * time.Hour)}}
		span := int64(90 * 24 * time.Hour / time.Second)
		for i := range n {
			to := graph.NodeKey{Type: "user", ID: fmt.Sprintf("d%07d", i)}
			at := clock.Add(-time.Duration(1+int64(i*7919)%span) * time.Second)
			batch = append(batch, graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "follows", From: hub, To: to}, EventTime: at})
			if len(batch) == 500 {
				if err := apply(batch); err != nil {
					return err
				}
				batch = nil
			}
		}
		return apply(batch)
	}
	run := func(b *testing.B, name string, s graph.Store) {
		h := newHarness(b, s, nil)
		measure := func(budget string) (time.Duration, time.Duration, int, int64) {
			var took []time.Duration
			status, count := 0, int64(-1)
			for range queries {
				path := "/v1/nodes/user/degree-hub/degree?edge_type=follows&direction=out" + budget
				r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080"+path, nil)
				r.Header.Set("Authorization", "Bearer "+testKey)
				rec := httptest.NewRecorder()
				start := time.Now()
				h.h.ServeHTTP(rec, r)
				took = append(took, time.Since(start))
				status = rec.Code
				if rec.Code == http.StatusOK {
					var resp degreeResponse
					if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || len(resp.Degrees) != 1 {
						b.Fatalf("degree answer %s: %v", rec.Body.Bytes(), err)
					}
					count = resp.Degrees[0].Count
				}
			}
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			return took[len(took)/2], took[len(took)-1], status, count
		}
		p50, worst, status, count := measure("&time_budget_ms=10000")
		if count != int64(n) {
			b.Fatalf("%s: degree %d (status %d), want %d", name, count, status, n)
		}
		dp50, _, dstatus, _ := measure("")
		fmt.Printf("\n%s: degree of %d edges: p50 %s, max %s over %d counts; with the default 1 s budget: status %d (p50 %s)\n",
			name, n, p50.Round(time.Millisecond), worst.Round(time.Millisecond), queries, dstatus, dp50.Round(time.Millisecond))
		b.ReportMetric(float64(p50.Microseconds())/1000, "ms/degree")
	}
	b.Run("embedded", func(b *testing.B) {
		s := openEmbedded(b, nil)
		if err := muts(func(m []graph.Mutation) error { return s.Apply(context.Background(), m) }); err != nil {
			b.Fatal(err)
		}
		run(b, "embedded", s)
	})
	b.Run("cassandra", func(b *testing.B) {
		s := openCassandra(b, nil)
		var g errgroup.Group
		g.SetLimit(4)
		start := time.Now()
		err := muts(func(m []graph.Mutation) error {
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
		fmt.Printf("\ncassandra: loaded %d edges in %s\n", n, time.Since(start).Round(time.Second))
		run(b, "cassandra", s)
	})
}
