package cassandra

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

// TestCountEdgesInSlices counts with slices, batches and IN reads far
// smaller than the data (so every bucket takes several reads and several
// batches are checked at once) and compares each count with paging
// Adjacency, over a hub whose edges are hidden in every way the rules
// know: deleted edges, deleted and purged neighbours, neighbours of a type
// that must exist and does not, expired edges, a time window, and edge
// types with a multiplicity at either end.
func TestCountEdgesInSlices(t *testing.T) {
	h := newHarness(t)
	h.s.degree = degreeSizes{scanRows: 7, batch: 5, inIDs: 3, checks: 2}
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	at := func(sec int) time.Time { return now.Add(-2 * time.Hour).Add(time.Duration(sec) * time.Second) }
	hub := h.user("hub")
	item := func(i int) graph.NodeKey { return graph.NodeKey{Type: "item", ID: fmt.Sprintf("%si%03d", h.ns, i)} }
	tag := func(i int) graph.NodeKey { return graph.NodeKey{Type: "tag", ID: fmt.Sprintf("%st%03d", h.ns, i)} }
	muts := []graph.Mutation{{Op: graph.OpUpsertNode, Node: hub, EventTime: at(0)}}
	for i := range 120 {
		muts = append(muts, edgeUpsert("likes", hub, item(i), at(10+i)))
		// viewed has a TTL of 1 h: edges written 2 h ago have expired.
		when := at(10 + i)
		if i%2 == 0 {
			when = now.Add(-time.Minute)
		}
		muts = append(muts, edgeUpsert("viewed", hub, item(i), when))
		muts = append(muts, edgeUpsert("follows", h.user(fmt.Sprintf("f%03d", i)), hub, at(10+i)))
	}
	for i := range 30 {
		// Tags must exist: only the even ones do.
		if i%2 == 0 {
			muts = append(muts, graph.Mutation{Op: graph.OpUpsertNode, Node: tag(i), EventTime: at(1)})
		}
		muts = append(muts, edgeUpsert("likes", hub, tag(i), at(10+i)))
	}
	h.apply(muts...)
	muts = nil
	for i := 0; i < 120; i += 11 {
		muts = append(muts, graph.Mutation{Op: graph.OpDeleteEdge, Edge: graph.EdgeKey{Type: "likes", From: hub, To: item(i)}, EventTime: at(500)})
	}
	for i := 1; i < 120; i += 13 {
		muts = append(muts, graph.Mutation{Op: graph.OpDeleteNode, Node: item(i), EventTime: at(600)})
	}
	for i := 2; i < 120; i += 17 {
		muts = append(muts, graph.Mutation{Op: graph.OpPurgeNode, Node: h.user(fmt.Sprintf("f%03d", i)), EventTime: at(700)})
	}
	// Multiplicities: items owned by the hub (many2one, constrained at the
	// item), one of them moved to another owner; the hub's parent.
	for i := range 9 {
		muts = append(muts, edgeUpsert("owned_by", item(i), hub, at(800+i)))
	}
	muts = append(muts, edgeUpsert("owned_by", item(3), h.user("other"), at(900)),
		edgeUpsert("parent_of", h.user("mum"), hub, at(800)))
	h.apply(muts...)

	type check struct {
		node  graph.NodeKey
		typ   string
		dir   graph.Direction
		since time.Time
		want  int64
	}
	checks := []check{
		// 120 items less 11 deleted edges and 10 deleted items (item 66
		// is both), and the 15 tags that exist.
		{hub, "likes", graph.Out, time.Time{}, 120 - 20 + 15},
		// Items 90-119 (edges at 100 s and later) less edges 99, 110 and
		// items 92, 105, 118.
		{hub, "likes", graph.Out, at(100), 25},
		// The 60 unexpired (even) less the deleted items 14, 40, 66, 92, 118.
		{hub, "viewed", graph.Out, time.Time{}, 60 - 5},
		// 120 followers less the 7 purged.
		{hub, "follows", graph.In, time.Time{}, 120 - 7},
		// Items 0-8 less item 3 (claims another owner) and item 1 (deleted).
		{hub, "owned_by", graph.In, time.Time{}, 7},
		{item(3), "owned_by", graph.Out, time.Time{}, 1},
		{item(4), "owned_by", graph.Out, time.Time{}, 1},
		{hub, "parent_of", graph.In, time.Time{}, 1},
		{h.user("nobody"), "likes", graph.Out, time.Time{}, 0},
	}
	for _, c := range checks {
		q := graph.AdjacencyQuery{Node: c.node, EdgeType: c.typ, Direction: c.dir, Order: graph.OrderKey, Limit: 17, Since: c.since}
		paged := 0
		for {
			page, err := h.s.Adjacency(ctx, q)
			if err != nil {
				t.Fatalf("adjacency %s %s %s: %v", c.node.ID, c.typ, c.dir, err)
			}
			paged += len(page.Edges)
			if page.Next == nil {
				break
			}
			q.Cursor = page.Next
		}
		q.Cursor = nil
		n, err := h.s.CountEdges(ctx, q)
		if err != nil {
			t.Fatalf("count %s %s %s: %v", c.node.ID, c.typ, c.dir, err)
		}
		if n != c.want || int64(paged) != c.want {
			t.Errorf("%s %s %s since %v: count %d, paging lists %d, want %d", c.node.ID, c.typ, c.dir, c.since, n, paged, c.want)
		}
	}
	// A count whose time has run out is a retryable error, never a number.
	dctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	<-dctx.Done()
	q := graph.AdjacencyQuery{Node: hub, EdgeType: "likes", Direction: graph.Out}
	if n, err := h.s.CountEdges(dctx, q); !graph.IsRetryable(err) {
		t.Errorf("count past its deadline: %d, %v; want a retryable error", n, err)
	}
}
