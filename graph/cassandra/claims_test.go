package cassandra

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

// TestClaimValueOrder: at equal timestamps Cassandra keeps the greater
// claim value byte-wise, which must be the claim rule of package graph: the
// greater position, then the greater target key in (type, id) order.
func TestClaimValueOrder(t *testing.T) {
	keys := []graph.NodeKey{
		{Type: "item", ID: "z"},
		{Type: "user", ID: "a"},
		{Type: "user", ID: "a0"},
		{Type: "user", ID: "b"},
		{Type: "user_x", ID: "a"},
		{Type: "userx", ID: "a"},
	}
	var vals [][]byte
	var want []string
	for _, pos := range []uint64{1, 2, 0x80} {
		for _, k := range keys {
			vals = append(vals, claimValue(graph.PosUint64(pos), neighborKey(k)))
			want = append(want, fmt.Sprintf("%d %s", pos, k))
		}
	}
	// The reference order: position, then memstore.CompareNodeKeys.
	for i := 1; i < len(vals); i++ {
		if bytes.Compare(vals[i-1], vals[i]) >= 0 {
			t.Fatalf("claim %s does not sort before %s", want[i-1], want[i])
		}
	}
	for i := 1; i < len(keys); i++ {
		if memstore.CompareNodeKeys(keys[i-1], keys[i]) >= 0 {
			t.Fatalf("test keys out of reference order: %s, %s", keys[i-1], keys[i])
		}
	}
	c, err := decodeClaim(claimValue(graph.PosUint64(7), neighborKey(keys[1])))
	if err != nil || c.pos != graph.PosUint64(7) || !bytes.Equal(c.target, neighborKey(keys[1])) {
		t.Fatalf("round trip: %+v, %v", c, err)
	}
	for _, bad := range [][]byte{nil, {claimV1}, claimValue(graph.Pos{}, nil), claimValue(graph.Pos{}, []byte("user")),
		append([]byte{0x01}, claimValue(graph.Pos{}, neighborKey(keys[0]))[1:]...)} {
		if _, err := decodeClaim(bad); err == nil {
			t.Fatalf("%x decoded", bad)
		}
	}
}

// claimSchema is storetest's plus a many2one type with a TTL.
func claimSchema(t testing.TB) *graph.Schema {
	t.Helper()
	s := storetest.Schema()
	var nodes []graph.NodeType
	for _, n := range s.NodeTypes() {
		nt, _ := s.NodeType(n)
		nodes = append(nodes, *nt)
	}
	var edges []graph.EdgeType
	for _, n := range s.EdgeTypes() {
		et, _ := s.EdgeType(n)
		edges = append(edges, *et)
	}
	edges = append(edges, graph.EdgeType{Name: "rented_by", From: []string{"item"}, To: []string{"user"}, Reverse: true,
		TTL: time.Hour, Multiplicity: graph.MultiplicityMany2One, Props: map[string]graph.PropType{"n": graph.PropInt}})
	out, err := graph.NewSchema(nodes, edges)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPlanClaims: an upsert of a constrained type writes the claim of each
// constrained end, with the edges_by_key cells' timestamp, TTL and
// now_in_seconds; other types write none, and deletes never do.
func TestPlanClaims(t *testing.T) {
	s := planStore(t)
	s.schema = claimSchema(t)
	u, v, it := graph.NodeKey{Type: "user", ID: "u"}, graph.NodeKey{Type: "user", ID: "v"}, graph.NodeKey{Type: "item", ID: "i"}
	now := time.Now()
	at := now.Add(-10 * time.Minute)
	mk := func(op graph.Op, typ string, from, to graph.NodeKey) graph.Mutation {
		m := graph.Mutation{Op: op, Edge: graph.EdgeKey{Type: typ, From: from, To: to}, EventTime: at, Pos: graph.PosUint64(5)}
		if err := s.schema.Check(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	cases := []struct {
		m    graph.Mutation
		want []string // node/direction → claimed target
	}{
		{mk(graph.OpUpsertEdge, "follows", u, v), nil},
		{mk(graph.OpUpsertEdge, "owned_by", it, u), []string{"item:i/1→user:u"}},
		{mk(graph.OpUpsertEdge, "parent_of", u, v), []string{"user:v/2→user:u"}},
		{mk(graph.OpUpsertEdge, "paired", u, v), []string{"user:u/1→user:v", "user:v/2→user:u"}},
		{mk(graph.OpUpsertEdge, "rented_by", it, u), []string{"item:i/1→user:u"}},
		{mk(graph.OpDeleteEdge, "paired", u, v), nil},
	}
	for _, c := range cases {
		p := newPlan()
		if c.m.Op == graph.OpUpsertEdge {
			s.planEdgeUpsert(p, c.m, liveValue(c.m.Pos, []byte("{}")), now.UnixMicro())
		} else {
			s.planEdgeDelete(p, c.m, now.UnixMicro())
		}
		var got []string
		var keyStmt *stmt
		for _, k := range p.order {
			st := p.groups[k].stmts[0]
			if k.table == tByKey {
				keyStmt = &st
			}
			if k.table != tClaims {
				continue
			}
			// node_type, edge_type, direction, node_id, claim, timestamp, ttl
			cl, err := decodeClaim(st.args[4].([]byte))
			if err != nil || cl.pos != c.m.Pos {
				t.Fatalf("%s: claim %x: %+v, %v", c.m.Edge, st.args[4], cl, err)
			}
			target, _ := parseNeighbor(cl.target)
			got = append(got, fmt.Sprintf("%s:%s/%d→%s", st.args[0], st.args[3], st.args[2], target))
			if st.args[5].(int64) != c.m.EventTime.UnixMicro() {
				t.Fatalf("%s: claim timestamp %v, want the event time", c.m.Edge, st.args[5])
			}
			if keyStmt == nil || st.args[6] != keyStmt.args[len(keyStmt.args)-1] || st.now != keyStmt.now || k.now != st.now {
				t.Fatalf("%s: claim TTL %v now %d, want the edges_by_key cells' (%+v)", c.m.Edge, st.args[6], st.now, keyStmt)
			}
		}
		slices.Sort(got)
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Fatalf("%s %s: claims %v, want %v", c.m.Op, c.m.Edge, got, c.want)
		}
	}
	// The TTL type's claim expires with the edge: the type's TTL, counted
	// from the event time.
	p := newPlan()
	m := cases[4].m
	s.planEdgeUpsert(p, m, liveValue(m.Pos, []byte("{}")), now.UnixMicro())
	for _, k := range p.order {
		if k.table == tClaims {
			st := p.groups[k].stmts[0]
			if x := keyExpiry(m.EventTime.UnixMicro(), time.Hour); st.args[6] != x.ttl || st.now != x.now || x.ttl != 3600 {
				t.Fatalf("claim TTL %v now %d, want %+v", st.args[6], st.now, x)
			}
		}
	}
}

// claimStore is a Store on the shared keyspace with schema and a clock
// skewed by skew.
func claimStore(t *testing.T, schema *graph.Schema, skew time.Duration) *Store {
	t.Helper()
	cfg, session := sharedSession(t)
	st, err := New(session, cfg, schema, Options{Registerer: prometheus.NewRegistry(),
		Now: func() time.Time { return time.Now().Add(skew) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func mustApply(t *testing.T, st graph.Store, muts ...graph.Mutation) {
	t.Helper()
	if err := st.Apply(context.Background(), muts); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// edgeString is an edge as compared between the Store and the reference.
func edgeString(e graph.Edge) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s→%s@%d %v", e.Key.From.ID, e.Key.To.ID, e.EventTime.UnixMicro(), e.Props)
	if !e.ExpiresAt.IsZero() {
		fmt.Fprintf(&b, " exp %d", e.ExpiresAt.UnixMicro())
	}
	return b.String()
}

// pages reads q to its end and returns the edges, failing on a page that
// comes back short while a next one exists (the Store's paging contract
// allows that only when the scan budget is reached, which these tests
// stay far below).
func pages(t *testing.T, st graph.Store, q graph.AdjacencyQuery) []string {
	t.Helper()
	var out []string
	for n := 0; ; n++ {
		if n > 1000 {
			t.Fatalf("%+v: paging does not end", q)
		}
		page, err := st.Adjacency(context.Background(), q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if page.Next != nil && len(page.Edges) < q.Limit {
			t.Fatalf("%s %s of %s, limit %d: page %d has %d edges and a next page", q.EdgeType, q.Direction, q.Node.ID, q.Limit, n, len(page.Edges))
		}
		for _, e := range page.Edges {
			out = append(out, edgeString(e))
		}
		if page.Next == nil {
			return out
		}
		q.Cursor = page.Next
	}
}

// sameAsReference pages every query of nodes × directions × orders ×
// limits (with and without since/until) on the Store and on the reference
// and compares the edges.
func sameAsReference(t *testing.T, st *Store, ref *memstore.Store, edgeType string, nodes []graph.NodeKey, limits []int, windows [][2]time.Time) {
	t.Helper()
	et, _ := st.schema.EdgeType(edgeType)
	if len(windows) == 0 {
		windows = [][2]time.Time{{}}
	}
	for _, n := range nodes {
		for _, dir := range []graph.Direction{graph.Out, graph.In} {
			if dir == graph.In && !et.Reverse {
				continue
			}
			if (dir == graph.Out && !et.AllowsFrom(n.Type)) || (dir == graph.In && !et.AllowsTo(n.Type)) {
				continue
			}
			for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
				for _, limit := range limits {
					for _, w := range windows {
						q := graph.AdjacencyQuery{Node: n, EdgeType: edgeType, Direction: dir, Order: order, Limit: limit, Since: w[0], Until: w[1]}
						got, want := pages(t, st, q), pages(t, ref, q)
						if !slices.Equal(got, want) {
							t.Fatalf("%s %s of %s, %s, limit %d, window %v:\n got %v\nwant %v", edgeType, dir, n.ID, order, limit, w, got, want)
						}
					}
				}
			}
		}
	}
}

// TestClaimsHideCandidatesWhilePaging: most of a node's index rows are
// edges whose other end has since claimed another node; pages skip them
// and still come back full, in both orders, with and without since/until,
// at the unconstrained end of many2one (items of an owner) and of
// one2many (children of a parent).
func TestClaimsHideCandidatesWhilePaging(t *testing.T) {
	h := newHarness(t)
	ref := memstore.New(h.s.schema, memstore.Options{})
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	u, v := h.user("u"), h.user("v")
	item := func(i int) graph.NodeKey { return graph.NodeKey{Type: "item", ID: fmt.Sprintf("%si%02d", h.ns, i)} }
	var muts []graph.Mutation
	for i := range 40 {
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "owned_by", From: item(i), To: u},
			EventTime: at(i), Props: graph.Props{"share": int64(i)}})
		// All but every eighth item move to v later; the moves of the
		// first few items are older than their owner edge to u, so they
		// lose (their edges to v stay hidden).
		switch {
		case i%8 == 0:
		case i < 4:
			muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "owned_by", From: item(i), To: v}, EventTime: at(i - 1)})
		default:
			muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "owned_by", From: item(i), To: v}, EventTime: at(100 + i)})
		}
	}
	// Children of p: all but every eighth get another parent later.
	p, q := h.user("p"), h.user("q")
	for i := range 40 {
		c := h.user(fmt.Sprintf("c%02d", i))
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "parent_of", From: p, To: c}, EventTime: at(i)})
		if i%8 != 0 {
			muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "parent_of", From: q, To: c}, EventTime: at(50 + i)})
		}
	}
	// The Store gets them newest first, the reference oldest first.
	for i := len(muts) - 1; i >= 0; i-- {
		mustApply(t, h.s, muts[i])
	}
	for _, m := range muts {
		mustApply(t, ref, m)
	}
	windows := [][2]time.Time{{}, {at(3), at(30)}}
	sameAsReference(t, h.s, ref, "owned_by", []graph.NodeKey{u, v, item(0), item(1), item(9)}, []int{1, 3, 50}, windows)
	sameAsReference(t, h.s, ref, "parent_of", []graph.NodeKey{p, q, h.user("c00"), h.user("c01")}, []int{1, 3, 50}, windows)
	if got := pages(t, h.s, graph.AdjacencyQuery{Node: u, EdgeType: "owned_by", Direction: graph.In, Order: graph.OrderKey, Limit: 100}); len(got) != 8 {
		t.Fatalf("items of u: %v, want 8 (every eighth, and the 3 whose move lost)", got)
	}
}

// TestDisplacedEdgeComesBack: an edge hidden by a claim is as if deleted at
// the displacing claim's version: older upserts of it stay hidden, a newer
// one makes it visible again (it is the claim then), and deletes and node
// deletes still apply; the Store, fed each step in order, matches the
// reference at every step.
func TestDisplacedEdgeComesBack(t *testing.T) {
	h := newHarness(t)
	ref := memstore.New(h.s.schema, memstore.Options{})
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	it, a, b := graph.NodeKey{Type: "item", ID: h.ns + "it"}, h.user("a"), h.user("b")
	x, y, z := h.user("x"), h.user("y"), h.user("z")
	own := func(to graph.NodeKey, sec int, share int64) graph.Mutation {
		return graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "owned_by", From: it, To: to}, EventTime: at(sec), Props: graph.Props{"share": share}}
	}
	pair := func(from, to graph.NodeKey, sec int) graph.Mutation {
		return graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "paired", From: from, To: to}, EventTime: at(sec)}
	}
	steps := []graph.Mutation{
		own(a, 10, 1),
		own(b, 20, 2), // displaces a
		own(a, 15, 3), // older than the claim: stays hidden
		own(a, 20, 4), // the claim's time, a smaller target than b: hidden
		{Op: graph.OpDeleteEdge, Edge: graph.EdgeKey{Type: "owned_by", From: it, To: b}, EventTime: at(25)},
		own(b, 22, 5), // older than the delete: hidden
		own(a, 30, 6), // newer than the claim: visible again
		own(b, 28, 7), // older: hidden
		{Op: graph.OpDeleteNode, Node: a, EventTime: at(31)},
		own(a, 32, 8), // after the node delete: visible
		own(b, 32, 9), // same time, greater target: the claim
		pair(x, y, 10),
		pair(z, y, 20), // y's claim moves to z; x keeps its claim of y
		pair(x, z, 15), // x's claim moves to z, whose in end is free: visible
		pair(y, x, 30), // y's out end and x's in end: visible beside x→z
		pair(x, y, 40), // x→y wins at both ends, displacing x→z and z→y
	}
	for i, m := range steps {
		mustApply(t, h.s, m)
		mustApply(t, ref, m)
		t.Run(fmt.Sprintf("step %d", i), func(t *testing.T) {
			sameAsReference(t, h.s, ref, "owned_by", []graph.NodeKey{it, a, b}, []int{1, 5}, nil)
			sameAsReference(t, h.s, ref, "paired", []graph.NodeKey{x, y, z}, []int{1, 5}, nil)
		})
	}
	// The final states, spelled out.
	if got := pages(t, h.s, graph.AdjacencyQuery{Node: it, EdgeType: "owned_by", Direction: graph.Out, Order: graph.OrderKey, Limit: 5}); len(got) != 1 || !strings.Contains(got[0], "share:9") {
		t.Fatalf("owner of the item: %v, want b at 32", got)
	}
	if got := pages(t, h.s, graph.AdjacencyQuery{Node: x, EdgeType: "paired", Direction: graph.Out, Order: graph.OrderLatest, Limit: 5}); len(got) != 1 || !strings.Contains(got[0], "→"+y.ID+"@") {
		t.Fatalf("x paired with %v, want y", got)
	}
}

// opCount is how many requests of kind op the Store sent (the latency
// histogram's count).
func opCount(t *testing.T, reg *prometheus.Registry, op string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "rtgraph_cassandra_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == op {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// TestClaimedEndReadsOneEdge: at an end its type constrains, a node's page
// is its claim and that one edge's row, looked up directly: the index rows
// of the many edges it displaced are not scanned.
func TestClaimedEndReadsOneEdge(t *testing.T) {
	h := newHarness(t)
	it := graph.NodeKey{Type: "item", ID: h.ns + "it"}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var muts []graph.Mutation
	for i := range 200 {
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "owned_by", From: it, To: h.user(fmt.Sprintf("o%03d", i))},
			EventTime: base.Add(time.Duration(i) * time.Second), Props: graph.Props{"share": int64(i)}})
	}
	h.apply(muts...)
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		before := map[string]uint64{}
		for _, op := range []string{opReadByKey, opReadByTime, opReadDays, opReadClaims, opLookupEdges} {
			before[op] = opCount(t, h.reg, op)
		}
		got := pages(t, h.s, graph.AdjacencyQuery{Node: it, EdgeType: "owned_by", Direction: graph.Out, Order: order, Limit: 10})
		if len(got) != 1 || !strings.Contains(got[0], "share:199") {
			t.Fatalf("%s: owner %v, want o199", order, got)
		}
		for op, want := range map[string]uint64{opReadByKey: 0, opReadByTime: 0, opReadDays: 0, opReadClaims: 1, opLookupEdges: 1} {
			if n := opCount(t, h.reg, op) - before[op]; n != want {
				t.Fatalf("%s: %d %s requests, want %d", order, n, op, want)
			}
		}
	}
}

// TestEdgesWithoutClaimsAreUnconstrained: edges of a type written before it
// was constrained (no claim rows) all stay visible at a node without a
// claim; the first upsert of the constrained type makes its claim the only
// one visible.
func TestEdgesWithoutClaimsAreUnconstrained(t *testing.T) {
	s := storetest.Schema()
	var nodes []graph.NodeType
	for _, n := range s.NodeTypes() {
		nt, _ := s.NodeType(n)
		nodes = append(nodes, *nt)
	}
	var edges []graph.EdgeType
	for _, n := range s.EdgeTypes() {
		et, _ := s.EdgeType(n)
		e := *et
		if e.Name == "owned_by" {
			e.Multiplicity = graph.MultiplicitySimple
		}
		edges = append(edges, e)
	}
	simple, err := graph.NewSchema(nodes, edges)
	if err != nil {
		t.Fatal(err)
	}
	old := claimStore(t, simple, 0)
	h := newHarness(t)
	it, a, b, c := graph.NodeKey{Type: "item", ID: h.ns + "it"}, h.user("a"), h.user("b"), h.user("c")
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	mustApply(t, old,
		graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "owned_by", From: it, To: a}, EventTime: at},
		graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "owned_by", From: it, To: b}, EventTime: at.Add(time.Second)})
	q := graph.AdjacencyQuery{Node: it, EdgeType: "owned_by", Direction: graph.Out, Order: graph.OrderKey, Limit: 10}
	if got := pages(t, h.s, q); len(got) != 2 {
		t.Fatalf("edges written without claims: %v, want both", got)
	}
	h.apply(graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "owned_by", From: it, To: c}, EventTime: at.Add(2 * time.Second)})
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		q.Order = order
		if got := pages(t, h.s, q); len(got) != 1 || !strings.HasPrefix(got[0], it.ID+"→"+c.ID+"@") {
			t.Fatalf("%s: after a claimed upsert: %v, want c alone", order, got)
		}
	}
}

// TestClaimsOfTTLTypes: a claim of an edge type with a TTL expires with the
// edges_by_key cells of its upsert (same TTL and local deletion time), so
// never before the edge it names; and claims of one event time are decided
// by position and target, not by when they were applied (with TTLs counted
// from the write, the later-applied one would win).
func TestClaimsOfTTLTypes(t *testing.T) {
	schema := claimSchema(t)
	ns := uniqueKeyspace("")
	it, a, b := graph.NodeKey{Type: "item", ID: ns + "it"}, graph.NodeKey{Type: "user", ID: ns + "a"}, graph.NodeKey{Type: "user", ID: ns + "b"}
	at := time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)
	rent := func(to graph.NodeKey, pos uint64) graph.Mutation {
		return graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "rented_by", From: it, To: to}, EventTime: at, Pos: graph.PosUint64(pos), Props: graph.Props{"n": int64(pos)}}
	}
	// a at the greater position is applied first, by a Store whose clock is
	// behind; b later, by one whose clock is ahead.
	mustApply(t, claimStore(t, schema, -20*time.Second), rent(a, 2))
	mustApply(t, claimStore(t, schema, 20*time.Second), rent(b, 1))
	reader := claimStore(t, schema, 0)
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		got := pages(t, reader, graph.AdjacencyQuery{Node: it, EdgeType: "rented_by", Direction: graph.Out, Order: order, Limit: 10})
		if len(got) != 1 || !strings.HasPrefix(got[0], it.ID+"→"+a.ID+"@") {
			t.Fatalf("%s: renter %v, want a (the greater position)", order, got)
		}
		got = pages(t, reader, graph.AdjacencyQuery{Node: b, EdgeType: "rented_by", Direction: graph.In, Order: order, Limit: 10})
		if len(got) != 0 {
			t.Fatalf("%s: rented by b: %v, want none", order, got)
		}
	}
	_, ses := sharedSession(t)
	var claim []byte
	var claimTTL, edgeTTL int
	var claimWT, edgeWT int64
	if err := ses.Query(`SELECT claim, TTL(claim), WRITETIME(claim) FROM edge_claims WHERE node_type = ? AND edge_type = ? AND direction = ? AND node_id = ?`,
		it.Type, "rented_by", dirOut, []byte(it.ID)).Scan(&claim, &claimTTL, &claimWT); err != nil {
		t.Fatal(err)
	}
	nb := neighborKey(a)
	if err := ses.Query(`SELECT TTL(props), WRITETIME(props) FROM edges_by_key WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND bucket = ? AND neighbor = ?`,
		it.Type, []byte(it.ID), "rented_by", dirOut, bucketOf(nb), nb).Scan(&edgeTTL, &edgeWT); err != nil {
		t.Fatal(err)
	}
	if c, err := decodeClaim(claim); err != nil || !bytes.Equal(c.target, nb) {
		t.Fatalf("stored claim %x: %+v, %v; want a", claim, c, err)
	}
	// Both TTLs are what is left until the same local deletion time; the
	// two reads may straddle a second.
	if claimWT != at.UnixMicro() || edgeWT != claimWT || claimTTL < edgeTTL || claimTTL > edgeTTL+1 || claimTTL > 50*60+1 || claimTTL < 50*60-60 {
		t.Fatalf("claim TTL %d s at %d, edge TTL %d s at %d; want equal, about 3000 s, at %d", claimTTL, claimWT, edgeTTL, edgeWT, at.UnixMicro())
	}
}

// TestEqualVersionClaimsAreOrderIndependent: two upserts at one end with
// equal versions (event time and position) and different targets: the
// greater target is the claim, and its edge is visible, in every arrival
// order. (graph/memstore, applying in order, hides it when an older edge to
// the greater target was the claim until the smaller one displaced it at
// that very version; that order is the only one in which it differs.)
func TestEqualVersionClaimsAreOrderIndependent(t *testing.T) {
	h := newHarness(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	a, b := h.user("a"), h.user("b")
	perms := [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	for n, perm := range perms {
		it := graph.NodeKey{Type: "item", ID: fmt.Sprintf("%sit%d", h.ns, n)}
		own := func(to graph.NodeKey, sec int, share int64) graph.Mutation {
			return graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: "owned_by", From: it, To: to},
				EventTime: base.Add(time.Duration(sec) * time.Second), Pos: graph.PosUint64(1), Props: graph.Props{"share": share}}
		}
		muts := []graph.Mutation{own(b, 1, 1), own(a, 2, 2), own(b, 2, 3)}
		for _, i := range perm {
			h.apply(muts[i])
		}
		for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
			got := pages(t, h.s, graph.AdjacencyQuery{Node: it, EdgeType: "owned_by", Direction: graph.Out, Order: order, Limit: 5})
			if len(got) != 1 || !strings.Contains(got[0], "→"+b.ID+"@") || !strings.Contains(got[0], "share:3") {
				t.Fatalf("arrival %v, %s: owner %v, want b at 2", perm, order, got)
			}
			if got := pages(t, h.s, graph.AdjacencyQuery{Node: a, EdgeType: "owned_by", Direction: graph.In, Order: order, Limit: 5}); len(got) != 0 {
				t.Fatalf("arrival %v, %s: items of a %v, want none", perm, order, got)
			}
		}
	}
}

func TestGrow(t *testing.T) {
	for _, c := range []struct{ want, checked, kept, got int }{
		{10, 0, 0, 10},       // nothing checked yet
		{10, 50, 50, 10},     // nothing hidden
		{10, 100, 50, 22},    // half hidden: twice, plus an eighth
		{10, 100, 0, 80},     // all hidden: at most 8 times
		{10, 1000, 10, 80},   // capped
		{301, 301, 150, 680}, // ceil(301*301/150) = 605, plus 75
	} {
		if got := grow(c.want, c.checked, c.kept); got != c.got {
			t.Fatalf("grow(%d, %d, %d) = %d, want %d", c.want, c.checked, c.kept, got, c.got)
		}
	}
}
