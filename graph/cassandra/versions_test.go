package cassandra

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

func TestValueFormat(t *testing.T) {
	pos := graph.PosUint64Pair(0x0102030405060708, 0xf0f1f2f3f4f5f6f7)
	live := liveValue(pos, []byte(`{"a":1}`))
	del := deletedValue(pos)
	if !bytes.Equal(live[:valueHeader], append(append([]byte{valueV1}, pos[:]...), stateLive)) || string(live[valueHeader:]) != `{"a":1}` {
		t.Fatalf("live value %x", live)
	}
	if !bytes.Equal(del, append(append([]byte{valueV1}, pos[:]...), stateDeleted)) {
		t.Fatalf("deleted value %x", del)
	}
	for _, c := range []struct {
		name    string
		b       []byte
		pos     graph.Pos
		deleted bool
		props   string
	}{
		{"live", live, pos, false, `{"a":1}`},
		{"deleted", del, pos, true, ""},
		{"legacy: bare JSON, live at the zero position", []byte(`{"b":2}`), graph.Pos{}, false, `{"b":2}`},
	} {
		v, err := decodeValue(c.b)
		if err != nil || v.pos != c.pos || v.deleted != c.deleted || string(v.props) != c.props {
			t.Fatalf("%s: %+v, %v", c.name, v, err)
		}
	}
	for _, bad := range [][]byte{nil, {}, {valueV1}, live[:valueHeader-1], append(del, 'x'), {0x01, '{', '}'},
		append(append([]byte{valueV1}, pos[:]...), 0x03)} {
		if _, err := decodeValue(bad); err == nil {
			t.Fatalf("%x decoded", bad)
		}
	}
	// What Cassandra compares at equal timestamps (unsigned bytes): the
	// position first, then the delete, then the properties, and any value
	// of this format above any legacy one.
	ordered := [][]byte{
		[]byte(`{"z":1}`),
		liveValue(graph.PosUint64(1), []byte(`{"z":1}`)),
		deletedValue(graph.PosUint64(1)),
		liveValue(graph.PosUint64(2), []byte(`{"a":1}`)),
		liveValue(graph.PosUint64(2), []byte(`{"b":1}`)),
		deletedValue(graph.PosUint64(2)),
		liveValue(graph.PosUint64(0x80), nil),
	}
	for i := 1; i < len(ordered); i++ {
		if bytes.Compare(ordered[i-1], ordered[i]) >= 0 {
			t.Fatalf("%x does not sort before %x", ordered[i-1], ordered[i])
		}
	}
}

// TestCassandraTieRules pins what the value format and keyExpiry rely on,
// on the server the tests run against (Cassandra 5.0, Cells.resolveRegular):
// at equal timestamps an expiring cell beats one that never expires, the
// later local deletion time wins, then the smaller TTL, then the greater
// value, compared as unsigned bytes; and a request's now_in_seconds sets
// the local deletion time (now + TTL).
func TestCassandraTieRules(t *testing.T) {
	_, s := sharedSession(t)
	if err := s.Query(`CREATE TABLE IF NOT EXISTS tie_rules (k int PRIMARY KEY, v blob)`).Exec(); err != nil {
		t.Fatal(err)
	}
	now := int(time.Now().Unix())
	type write struct {
		v   byte
		ttl int
		now int // now_in_seconds; 0 = none
	}
	cases := []struct {
		name string
		a, b write
		want byte
	}{
		{"greater value, unsigned", write{0x7f, 0, 0}, write{0x80, 0, 0}, 0x80},
		{"expiring beats not expiring", write{2, 0, 0}, write{1, 1000, now}, 1},
		{"later local deletion time", write{2, 1000, now}, write{1, 1001, now}, 1},
		{"same deletion time: smaller ttl", write{2, 1000, now}, write{1, 900, now + 100}, 1},
		{"same deletion time and ttl: greater value", write{1, 1000, now}, write{2, 1000, now}, 2},
	}
	for i, c := range cases {
		for order, ws := range [][2]write{{c.a, c.b}, {c.b, c.a}} {
			k := 2*i + order
			for _, w := range ws {
				q := s.Query(`INSERT INTO tie_rules (k, v) VALUES (?, ?) USING TIMESTAMP 100 AND TTL ?`, k, []byte{w.v}, w.ttl)
				if w.now != 0 {
					q = q.WithNowInSeconds(w.now)
				}
				if err := q.Exec(); err != nil {
					t.Fatal(err)
				}
			}
			var v []byte
			if err := s.Query(`SELECT v FROM tie_rules WHERE k = ?`, k).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if len(v) != 1 || v[0] != c.want {
				t.Fatalf("%s (order %d): kept %x, want %x", c.name, order, v, c.want)
			}
		}
	}
	// now_in_seconds in the past: the cell has only what is left of its TTL.
	if err := s.Query(`INSERT INTO tie_rules (k, v) VALUES (100, 0x01) USING TIMESTAMP 100 AND TTL 1000`).WithNowInSeconds(now - 400).Exec(); err != nil {
		t.Fatal(err)
	}
	var ttl int
	if err := s.Query(`SELECT TTL(v) FROM tie_rules WHERE k = 100`).Scan(&ttl); err != nil {
		t.Fatal(err)
	}
	if ttl < 590 || ttl > 600 {
		t.Fatalf("TTL %d s left, want about 600", ttl)
	}
}

// clockStore is a Store on the shared keyspace whose clock is the wall
// clock plus skew: as if its Apply ran that much later.
func clockStore(t *testing.T, skew time.Duration) *Store {
	t.Helper()
	cfg, session := sharedSession(t)
	st, err := New(session, cfg, storetest.Schema(), Options{Registerer: prometheus.NewRegistry(),
		Now: func() time.Time { return time.Now().Add(skew) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestTTLEdgeEqualTimeIsDecidedByPosition: writes of one edge of a TTL type
// at one event time are decided by position (then delete, then value)
// whenever each is applied. With TTLs counted from the time of the write,
// Cassandra would keep the write with the latest expiry instead, whatever
// its position.
func TestTTLEdgeEqualTimeIsDecidedByPosition(t *testing.T) {
	ns := uniqueKeyspace("")
	u, it := graph.NodeKey{Type: "user", ID: ns + "u"}, graph.NodeKey{Type: "item", ID: ns + "i"}
	at := time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)
	edge := func(pos uint64, ms int64) graph.Mutation {
		m := edgeUpsert("viewed", u, it, at)
		m.Pos, m.Props = graph.PosUint64(pos), graph.Props{"ms": ms}
		return m
	}
	del := graph.Mutation{Op: graph.OpDeleteEdge, Edge: graph.EdgeKey{Type: "viewed", From: u, To: it}, EventTime: at, Pos: graph.PosUint64(9)}
	apply := func(skew time.Duration, m graph.Mutation) {
		t.Helper()
		if err := clockStore(t, skew).Apply(context.Background(), []graph.Mutation{m}); err != nil {
			t.Fatal(err)
		}
	}
	reader := clockStore(t, 0)
	check := func(step string, wantMS int64) {
		t.Helper()
		for _, q := range []graph.AdjacencyQuery{
			{Node: u, EdgeType: "viewed", Direction: graph.Out, Order: graph.OrderKey, Limit: 10},
			{Node: u, EdgeType: "viewed", Direction: graph.Out, Order: graph.OrderLatest, Limit: 10},
			{Node: it, EdgeType: "viewed", Direction: graph.In, Order: graph.OrderLatest, Limit: 10},
		} {
			page, err := reader.Adjacency(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			got := "none"
			if len(page.Edges) == 1 {
				got = fmt.Sprint(page.Edges[0].Props["ms"])
			} else if len(page.Edges) > 1 {
				got = fmt.Sprint(page.Edges)
			}
			want := "none"
			if wantMS >= 0 {
				want = fmt.Sprint(wantMS)
			}
			if got != want {
				t.Fatalf("%s: %s %s: ms %s, want %s", step, q.Direction, q.Order, got, want)
			}
		}
	}
	// Position 8 applied "later" (a shorter remaining lifetime), position 7,
	// whose properties encode greater, "earlier".
	apply(10*time.Second, edge(8, 1))
	apply(0, edge(7, 9))
	check("two upserts", 1)
	apply(20*time.Second, del)
	check("then a delete at a later position", -1)
	apply(0, edge(9, 5)) // the delete's own position: the delete wins
	check("an upsert at the delete's position", -1)
	apply(0, edge(10, 3))
	check("then an upsert at a later position", 3)
}

// TestLegacyValues: rows written before values carried a position (bare
// JSON props, column and partition tombstones, node_deletes without
// deleted_pos) read as versions at the zero position; a value of the
// current format beats a legacy one of equal timestamp.
func TestLegacyValues(t *testing.T) {
	h := newHarness(t)
	a, b, c, d := h.user("a"), h.user("b"), h.user("c"), h.user("d")
	t1 := time.Now().Add(-time.Hour).Truncate(time.Second)
	e1 := t1.UnixMicro()
	exec := func(cql string, args ...any) {
		t.Helper()
		if err := h.ses.Query(cql, args...).Exec(); err != nil {
			t.Fatal(err)
		}
	}
	// Legacy node a and edges a→b, a→c as the previous format wrote them.
	exec(`INSERT INTO nodes (type, id, props) VALUES (?, ?, ?) USING TIMESTAMP ?`, a.Type, []byte(a.ID), []byte(`{"name":"old"}`), e1)
	for _, nb := range []graph.NodeKey{b, c} {
		n := neighborKey(nb)
		exec(`INSERT INTO edges_by_key (node_type, node_id, edge_type, direction, bucket, neighbor, props, expires_at, last_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ? AND TTL 0`,
			a.Type, []byte(a.ID), "blocks", dirOut, bucketOf(n), n, []byte(`{}`), int64(0), e1, e1)
		exec(cqlUpsertByTime, a.Type, []byte(a.ID), "blocks", dirOut, dayOf(e1), e1, n, e1, 0)
	}
	exec(cqlUpsertDay, a.Type, []byte(a.ID), "blocks", dirOut, dayOf(e1), e1, 0)
	// The legacy delete of a→c: a column tombstone, last_time kept.
	exec(`DELETE props, expires_at FROM edges_by_key USING TIMESTAMP ? WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND bucket = ? AND neighbor = ?`,
		e1+1, a.Type, []byte(a.ID), "blocks", dirOut, bucketOf(neighborKey(c)), neighborKey(c))

	nodes, err := h.s.GetNodes(context.Background(), []graph.NodeKey{a})
	if err != nil || fmt.Sprint(nodes[a].Props) != "map[name:old]" || !nodes[a].EventTime.Equal(t1) {
		t.Fatalf("legacy node: %+v, %v", nodes[a], err)
	}
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		page, err := h.s.Adjacency(context.Background(), graph.AdjacencyQuery{Node: a, EdgeType: "blocks", Direction: graph.Out, Order: order, Limit: 10})
		if err != nil || len(page.Edges) != 1 || page.Edges[0].Key.To != b || !page.Edges[0].EventTime.Equal(t1) {
			t.Fatalf("%s: legacy edges %+v, %v; want a→b alone", order, page.Edges, err)
		}
	}

	// A current-format value of the same timestamp wins, though its
	// properties encode smaller and its position is zero.
	h.apply(graph.Mutation{Op: graph.OpUpsertNode, Node: a, Props: graph.Props{"name": "a"}, EventTime: t1})
	nodes, err = h.s.GetNodes(context.Background(), []graph.NodeKey{a})
	if err != nil || fmt.Sprint(nodes[a].Props) != "map[name:a]" {
		t.Fatalf("after an upsert of the same time: %+v, %v", nodes[a], err)
	}
	var raw []byte
	if err := h.ses.Query(`SELECT props FROM nodes WHERE type = ? AND id = ?`, a.Type, []byte(a.ID)).Scan(&raw); err != nil || raw[0] != valueV1 {
		t.Fatalf("stored %x, %v; want the current format", raw, err)
	}

	// A legacy node delete (a node_deletes row without deleted_pos) of d
	// at t2 now reads as a purge of version (t2, zero): it hides d's edges
	// up to it, not those of t2 at a greater position. A later
	// current-format purge of an earlier time does not lend its position
	// to it.
	t2 := t1.Add(time.Minute)
	exec(`INSERT INTO node_deletes (type, id, deleted_at) VALUES (?, ?, ?) USING TIMESTAMP ?`, d.Type, []byte(d.ID), t2.UnixMicro(), t2.UnixMicro())
	h.apply(graph.Mutation{Op: graph.OpPurgeNode, Node: d, EventTime: t1, Pos: graph.PosUint64(99)},
		graph.Mutation{Op: graph.OpUpsertNode, Node: d, EventTime: t1, Pos: graph.PosUint64(100)})
	at := func(m graph.Mutation, pos uint64) graph.Mutation { m.Pos = graph.PosUint64(pos); return m }
	x, y, z := h.user("x"), h.user("y"), h.user("z")
	h.apply(
		at(edgeUpsert("follows", x, d, t2.Add(-time.Microsecond)), 200),
		at(edgeUpsert("follows", y, d, t2), 0),
		at(edgeUpsert("follows", z, d, t2), 5),
	)
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		page, err := h.s.Adjacency(context.Background(), graph.AdjacencyQuery{Node: d, EdgeType: "follows", Direction: graph.In, Order: order, Limit: 10})
		if err != nil || len(page.Edges) != 1 || page.Edges[0].Key.From != z {
			t.Fatalf("%s: edges into d %+v, %v; want z→d alone", order, page.Edges, err)
		}
		for _, from := range []graph.NodeKey{x, y, z} {
			page, err := h.s.Adjacency(context.Background(), graph.AdjacencyQuery{Node: from, EdgeType: "follows", Direction: graph.Out, Order: order, Limit: 10})
			if err != nil || (len(page.Edges) == 1) != (from == z) {
				t.Fatalf("%s: edges out of %s %+v, %v", order, from.ID, page.Edges, err)
			}
		}
	}

	// The legacy-deleted a→c's index row is dead for good (last_time at
	// or after it) and was removed by the newest-first read above.
	st := h.s
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(h.timeRows(a, "blocks", dirOut, dayOf(e1))); got != fmt.Sprintf("[%d:%s]", e1, b.ID) {
		t.Fatalf("index rows of a %s, want only a→b's", got)
	}
}
