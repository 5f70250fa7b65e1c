package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"golang.org/x/sync/errgroup"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/cassandra/cassandratest"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

// BenchmarkDegree (make bench-degree) counts the out-degree of one
// supernode through GET /v1/nodes/{type}/{id}/degree on Pebble and on real
// Cassandra: RTGRAPH_BENCH_DEGREE edges (default 200000) of follows to
// distinct users (an implicit type, so each edge is checked against its far
// end's node value and purge record), event times spread over 90 days. It
// reports the latency of the count (p50 and max of RTGRAPH_BENCH_QUERIES
// requests, default 5) and whether the server's default time budget (1 s)
// suffices. On Cassandra it also runs, alternating with the API, the
// ceiling: the same count written straight against gocql on the same
// tables (rawDegree), and prints rtgraph ÷ ceiling.
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
	run := func(b *testing.B, name string, s graph.Store, ceiling func() (int64, error)) {
		h := newHarness(b, s, nil)
		count := func(budget string) (time.Duration, int, int64) {
			path := "/v1/nodes/user/degree-hub/degree?edge_type=follows&direction=out" + budget
			r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080"+path, nil)
			r.Header.Set("Authorization", "Bearer "+testKey)
			rec := httptest.NewRecorder()
			start := time.Now()
			h.h.ServeHTTP(rec, r)
			took := time.Since(start)
			if rec.Code != http.StatusOK {
				return took, rec.Code, -1
			}
			var resp degreeResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || len(resp.Degrees) != 1 {
				b.Fatalf("degree answer %s: %v", rec.Body.Bytes(), err)
			}
			return took, rec.Code, resp.Degrees[0].Count
		}
		var took, raw, dtook []time.Duration
		dstatus := 0
		for range queries {
			d, status, got := count("&time_budget_ms=10000")
			if got != int64(n) {
				b.Fatalf("%s: degree %d (status %d), want %d", name, got, status, n)
			}
			took = append(took, d)
			if ceiling != nil {
				start := time.Now()
				got, err := ceiling()
				if err != nil || got != int64(n) {
					b.Fatalf("%s: raw degree %d (%v), want %d", name, got, err, n)
				}
				raw = append(raw, time.Since(start))
			}
			d, dstatus, _ = count("")
			dtook = append(dtook, d)
		}
		p50, worst := medianMax(took)
		dp50, _ := medianMax(dtook)
		fmt.Printf("\n%s: degree of %d edges: p50 %s, max %s over %d counts; with the default 1 s budget: status %d (p50 %s)\n",
			name, n, p50.Round(time.Millisecond), worst.Round(time.Millisecond), queries, dstatus, dp50.Round(time.Millisecond))
		b.ReportMetric(float64(p50.Microseconds())/1000, "ms/degree")
		b.ReportMetric(float64(p50.Nanoseconds())/1000/float64(n), "us/edge")
		if ceiling != nil {
			rp50, rworst := medianMax(raw)
			fmt.Printf("%s: ceiling (raw gocql, same reads): p50 %s, max %s; rtgraph ÷ ceiling (time) %.2f\n",
				name, rp50.Round(time.Millisecond), rworst.Round(time.Millisecond), float64(p50)/float64(rp50))
			b.ReportMetric(float64(rp50.Microseconds())/1000, "ceiling-ms/degree")
			b.ReportMetric(float64(p50)/float64(rp50), "x-ceiling-time")
		}
	}
	b.Run("embedded", func(b *testing.B) {
		s := openEmbedded(b, nil)
		if err := muts(func(m []graph.Mutation) error { return s.Apply(context.Background(), m) }); err != nil {
			b.Fatal(err)
		}
		run(b, "embedded", s, nil)
	})
	b.Run("cassandra", func(b *testing.B) {
		s, session := cassandratest.OpenSession(b, "rtgraph_api_", storetest.Schema(), func() time.Time { return clock })
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
		run(b, "cassandra", s, func() (int64, error) {
			return rawDegree(context.Background(), session, hub, "follows", clock.UnixMicro())
		})
	})
}

func medianMax(d []time.Duration) (time.Duration, time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

// rawDegree is the ceiling of a degree count on Cassandra: the same logical
// work as the store's count, written straight against gocql on the same
// tables, as a competent client would. It reads the hub's 8 edges_by_key
// partitions of edgeType (direction out) in parallel with driver paging,
// keeps the rows whose value is live and unexpired, and checks each
// neighbour's node value (present unless deleted: the benchmark's
// neighbours are of an implicit type) and purge record with IN reads of
// 500 ids, 16 in flight, while the scan goes on. The value format it
// decodes is the store's (graph/cassandra/layout.go): [0x80] [16-byte
// position] [state], state 1 live, 2 deleted.
func rawDegree(ctx context.Context, session *gocql.Session, hub graph.NodeKey, edgeType string, nowMicros int64) (int64, error) {
	const (
		in       = 500
		inFlight = 16
	)
	live := func(v []byte) bool { return len(v) >= 18 && v[0] == 0x80 && v[17] == 1 }
	batches := make(chan [][]byte, inFlight)
	g, gctx := errgroup.WithContext(ctx)
	var scans errgroup.Group
	for bucket := range 8 {
		scans.Go(func() error {
			iter := session.Query(`SELECT neighbor, props, expires_at FROM edges_by_key WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = 1 AND bucket = ?`,
				hub.Type, []byte(hub.ID), edgeType, int8(bucket)).PageSize(5000).IterContext(gctx)
			var batch [][]byte
			for {
				var nbr, props []byte
				var exp int64
				if !iter.Scan(&nbr, &props, &exp) {
					break
				}
				if !live(props) || (exp != 0 && exp <= nowMicros) {
					continue
				}
				batch = append(batch, nbr)
				if len(batch) == in {
					batches <- batch
					batch = nil
				}
			}
			if len(batch) > 0 {
				batches <- batch
			}
			return iter.Close()
		})
	}
	var scanErr error
	go func() {
		scanErr = scans.Wait()
		close(batches)
	}()
	var total atomic.Int64
	for range inFlight {
		g.Go(func() error {
			for batch := range batches {
				byType := map[string][][]byte{}
				for _, nbr := range batch {
					i := bytes.IndexByte(nbr, 0)
					if i < 0 {
						return fmt.Errorf("neighbour %q", nbr)
					}
					byType[string(nbr[:i])] = append(byType[string(nbr[:i])], nbr[i+1:])
				}
				for typ, ids := range byType {
					deleted := map[string]bool{}
					iter := session.Query(`SELECT id, props FROM nodes WHERE type = ? AND id IN ?`, typ, ids).IterContext(gctx)
					var id, props []byte
					for iter.Scan(&id, &props) {
						if !live(props) {
							deleted[string(id)] = true
						}
					}
					if err := iter.Close(); err != nil {
						return err
					}
					iter = session.Query(`SELECT id FROM node_deletes WHERE type = ? AND id IN ?`, typ, ids).IterContext(gctx)
					for iter.Scan(&id) {
						deleted[string(id)] = true
					}
					if err := iter.Close(); err != nil {
						return err
					}
					total.Add(int64(len(ids) - len(deleted)))
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		for range batches {
		}
		return 0, err
	}
	return total.Load(), scanErr
}
