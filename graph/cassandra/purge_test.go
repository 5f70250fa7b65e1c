package cassandra

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

// keyRows lists the edges_by_key neighbours (ids) of a node's edge type and
// direction, every bucket, deleted values included.
func (h *testHarness) keyRows(node graph.NodeKey, edgeType string, dir int8) []string {
	h.t.Helper()
	var out []string
	for b := range keyBuckets {
		iter := h.ses.Query(`SELECT neighbor FROM edges_by_key WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND bucket = ?`,
			node.Type, []byte(node.ID), edgeType, dir, int8(b)).Iter()
		var nb []byte
		for iter.Scan(&nb) {
			k, _ := parseNeighbor(nb)
			out = append(out, k.ID)
		}
		if err := iter.Close(); err != nil {
			h.t.Fatal(err)
		}
	}
	return out
}

// TestPurgeRemovesRows: a purge removes the purged node's rows from the
// tables, not only from reads: its own adjacency partitions (every type,
// both directions, both orders, its claims) and the mirrored rows at its
// neighbours. An edge written after the purge stays, and a late edge of a
// time before it is shadowed in the purged partitions. What it cannot
// reach, reads hide for good: an edge into it of a type without a reverse
// index (only the neighbour's partition holds it), and the late edge's
// row in the neighbour's partition.
func TestPurgeRemovesRows(t *testing.T) {
	h := newHarness(t)
	x, y, z := h.user("x"), h.user("y"), h.user("z")
	it := graph.NodeKey{Type: "item", ID: h.ns + "it"}
	// 06:00 UTC two days ago, whatever the time of the run: the edge
	// written after the purge (t1 + 1h01m) falls on t1's day, which the
	// edges_by_time checks below read.
	t1 := time.Now().Add(-48 * time.Hour).Truncate(24 * time.Hour).Add(6 * time.Hour)
	purgeAt := t1.Add(time.Hour)
	h.apply(
		edgeUpsert("follows", x, y, t1),                    // out, reverse type: mirror at y
		edgeUpsert("follows", z, x, t1.Add(-25*time.Hour)), // in, another day: mirror at z
		edgeUpsert("blocks", z, x, t1),                     // into x, no reverse index: stays in z's partition
		edgeUpsert("owned_by", it, x, t1),                  // into x, many2one: the item's claim names x
		edgeUpsert("paired", x, z, t1),                     // one2one: x's claim and z's
	)
	h.apply(graph.Mutation{Op: graph.OpPurgeNode, Node: x, EventTime: purgeAt})
	// Written after the purge: kept. Late, before it: shadowed.
	h.apply(graph.Mutation{Op: graph.OpUpsertNode, Node: x, EventTime: purgeAt.Add(time.Second)},
		edgeUpsert("follows", x, z, purgeAt.Add(time.Minute)), edgeUpsert("follows", y, x, t1))

	for _, c := range []struct {
		node     graph.NodeKey
		edgeType string
		dir      int8
		want     string
	}{
		{x, "follows", dirOut, fmt.Sprint([]string{z.ID})},
		{x, "follows", dirIn, "[]"},
		{y, "follows", dirIn, "[]"},
		{y, "follows", dirOut, fmt.Sprint([]string{x.ID})}, // the late edge, hidden
		{z, "follows", dirOut, "[]"},
		{z, "follows", dirIn, fmt.Sprint([]string{x.ID})},
		{x, "owned_by", dirIn, "[]"},
		{it, "owned_by", dirOut, "[]"},
		{x, "paired", dirOut, "[]"},
		{z, "paired", dirIn, "[]"},
		{z, "blocks", dirOut, fmt.Sprint([]string{x.ID})}, // the documented residue
	} {
		if got := fmt.Sprint(h.keyRows(c.node, c.edgeType, c.dir)); got != c.want {
			t.Errorf("edges_by_key of %s %s direction %d: %s, want %s", c.node.ID, c.edgeType, c.dir, got, c.want)
		}
	}
	d0, d1 := dayOf(t1.Add(-25*time.Hour).UnixMicro()), dayOf(t1.UnixMicro())
	after := fmt.Sprint([]string{fmt.Sprintf("%d:%s", purgeAt.Add(time.Minute).UnixMicro(), z.ID)})
	for _, c := range []struct {
		node     graph.NodeKey
		edgeType string
		dir      int8
		day      int32
		want     string
	}{
		{x, "follows", dirOut, d1, after}, // only the edge written after the purge
		{x, "follows", dirIn, d0, "[]"},
		{y, "follows", dirIn, d1, "[]"},
		{z, "follows", dirOut, d0, "[]"},
		{x, "paired", dirOut, d1, "[]"},
		{z, "paired", dirIn, d1, "[]"},
	} {
		if got := fmt.Sprint(h.timeRows(c.node, c.edgeType, c.dir, c.day)); got != c.want {
			t.Errorf("edges_by_time of %s %s direction %d day %d: %s, want %s", c.node.ID, c.edgeType, c.dir, c.day, got, c.want)
		}
	}
	var claims int
	if err := h.ses.Query(`SELECT COUNT(*) FROM edge_claims WHERE node_type = ? AND edge_type = ? AND direction = ? AND node_id = ?`,
		x.Type, "paired", dirOut, []byte(x.ID)).Scan(&claims); err != nil || claims != 0 {
		t.Errorf("x's paired claim: %d rows, %v; want none", claims, err)
	}
	// Reads agree: only the edge written after the purge.
	page, err := h.s.Adjacency(context.Background(), graph.AdjacencyQuery{Node: z, EdgeType: "blocks", Direction: graph.Out, Order: graph.OrderKey, Limit: 10})
	if err != nil || len(page.Edges) != 0 {
		t.Fatalf("z's blocks after the purge: %+v, %v; want none", page.Edges, err)
	}
	page, err = h.s.Adjacency(context.Background(), graph.AdjacencyQuery{Node: x, EdgeType: "follows", Direction: graph.Out, Order: graph.OrderLatest, Limit: 10})
	if err != nil || len(page.Edges) != 1 || page.Edges[0].Key.To != z {
		t.Fatalf("x's follows after the purge: %+v, %v; want x→z alone", page.Edges, err)
	}
}
