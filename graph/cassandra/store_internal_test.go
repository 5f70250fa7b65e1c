package cassandra

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/storetest"
	"github.com/rtgraph/rtgraph/schemas"
)

// planStore is a Store with what planning writes needs and no session.
func planStore(t *testing.T) *Store {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	days, err := lru.New[dayKey, int64](16)
	if err != nil {
		t.Fatal(err)
	}
	return &Store{schema: storetest.Schema(), m: m, days: days, now: time.Now}
}

func newPlan() *plan {
	return &plan{groups: map[partKey]*group{}, dayPlanned: map[dayKey]int64{}}
}

func tables(p *plan) map[uint8]int {
	out := map[uint8]int{}
	for _, k := range p.order {
		out[k.table]++
	}
	return out
}

func edgeUpsert(typ string, from, to graph.NodeKey, at time.Time) graph.Mutation {
	m := graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: typ, From: from, To: to}, EventTime: at}
	if err := storetest.Schema().Check(&m); err != nil {
		panic(err)
	}
	return m
}

func TestPlanEdgeUpsert(t *testing.T) {
	u, v, it := graph.NodeKey{Type: "user", ID: "u"}, graph.NodeKey{Type: "user", ID: "v"}, graph.NodeKey{Type: "item", ID: "i"}
	now := time.Now()
	cases := []struct {
		name string
		m    graph.Mutation
		want map[uint8]int // partitions per table
		// keyTTL is the TTL bound to the edges_by_key insert (-1 when not
		// written): the type's, whenever the write happens.
		keyTTL int
		// timeTTL is the one bound to the edges_by_time insert: the
		// remaining lifetime, rounded up to a whole second.
		timeTTL int
		expired float64
	}{
		{"reverse indexed, no ttl", edgeUpsert("follows", u, v, now), map[uint8]int{tByKey: 2, tByTime: 2, tDays: 2}, 0, 0, 0},
		{"forward only", edgeUpsert("likes", u, it, now), map[uint8]int{tByKey: 1, tByTime: 1, tDays: 1}, 0, 0, 0},
		{"ttl remaining", edgeUpsert("viewed", u, it, now.Add(-30*time.Minute)), map[uint8]int{tByKey: 2, tByTime: 2, tDays: 2}, 3600, 1800, 0},
		{"already expired", edgeUpsert("viewed", u, it, now.Add(-2*time.Hour)), map[uint8]int{}, -1, -1, 1},
		{"index beyond cassandra's ttl ceiling", edgeUpsert("viewed", u, it, now.Add(30*365*24*time.Hour)), map[uint8]int{tByKey: 2, tByTime: 2, tDays: 2}, 3600, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := planStore(t)
			s.now = func() time.Time { return now }
			p := newPlan()
			s.planEdgeUpsert(p, c.m, liveValue(c.m.Pos, []byte("{}")), now.UnixMicro())
			if got := tables(p); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("partitions per table %v, want %v", got, c.want)
			}
			if got := testutil.ToFloat64(s.m.expired); got != c.expired {
				t.Fatalf("expired skips %v, want %v", got, c.expired)
			}
			ts := c.m.EventTime.UnixMicro()
			for _, k := range p.order {
				st := p.groups[k].stmts[0]
				ttl := st.args[len(st.args)-1].(int)
				if got := st.args[len(st.args)-2].(int64); got != ts {
					t.Fatalf("USING TIMESTAMP %d, want the event time %d", got, ts)
				}
				switch k.table {
				case tByKey:
					if ttl != c.keyTTL {
						t.Fatalf("edges_by_key ttl %d, want %d", ttl, c.keyTTL)
					}
					// Local deletion time = now_in_seconds + TTL = the
					// expiry rounded up to a second.
					if want := keyExpiry(ts, c.m.TTL).now; st.now != want || (c.keyTTL > 0 && st.now+int64(ttl) != ceilDiv(ts+c.m.TTL.Microseconds(), 1e6)) {
						t.Fatalf("edges_by_key now_in_seconds %d (+ ttl %d), want %d", st.now, ttl, want)
					}
				case tByTime:
					// The remaining lifetime is rounded up to a whole second.
					if ttl != c.timeTTL && ttl != c.timeTTL+1 {
						t.Fatalf("edges_by_time ttl %d, want %d", ttl, c.timeTTL)
					}
					if c.timeTTL > 0 && st.now+int64(ttl) != ceilDiv(ts+c.m.TTL.Microseconds(), 1e6) {
						t.Fatalf("edges_by_time expires at %d s, want %d", st.now+int64(ttl), ceilDiv(ts+c.m.TTL.Microseconds(), 1e6))
					}
				}
			}
		})
	}
}

// TestKeyExpiryDependsOnEventTimeOnly: whatever the clock when a write is
// planned, every write of one event time gets the same TTL and local
// deletion time, so Cassandra compares them by value.
func TestKeyExpiryDependsOnEventTimeOnly(t *testing.T) {
	ts := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC).UnixMicro()
	for _, ttl := range []time.Duration{time.Hour, 90*time.Second + 500*time.Millisecond, 7 * 24 * time.Hour} {
		x := keyExpiry(ts, ttl)
		if x.ttl != int(ceilDiv(ttl.Microseconds(), 1e6)) {
			t.Fatalf("ttl %s: TTL %d s, want the type's, rounded up", ttl, x.ttl)
		}
		if got, want := x.now+int64(x.ttl), ceilDiv(ts+ttl.Microseconds(), 1e6); got != want {
			t.Fatalf("ttl %s: local deletion time %d, want the expiry rounded up %d", ttl, got, want)
		}
	}
	for _, c := range []struct {
		name string
		ts   int64
		ttl  time.Duration
	}{
		{"no ttl", ts, 0},
		{"ttl beyond cassandra's ceiling", ts, 21 * 365 * 24 * time.Hour},
		{"expiry beyond the protocol's now_in_seconds", time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), time.Hour},
	} {
		if x := keyExpiry(c.ts, c.ttl); x != (cellExpiry{}) {
			t.Fatalf("%s: %+v, want no TTL and no now_in_seconds", c.name, x)
		}
	}
}

func TestPlanEdgeDelete(t *testing.T) {
	u, v, it := graph.NodeKey{Type: "user", ID: "u"}, graph.NodeKey{Type: "user", ID: "v"}, graph.NodeKey{Type: "item", ID: "i"}
	now := time.Now()
	del := func(typ string, from, to graph.NodeKey, at time.Time) graph.Mutation {
		m := graph.Mutation{Op: graph.OpDeleteEdge, Edge: graph.EdgeKey{Type: typ, From: from, To: to}, EventTime: at, Pos: graph.PosUint64(9)}
		if err := storetest.Schema().Check(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	cases := []struct {
		name    string
		m       graph.Mutation
		rows    int // edges_by_key rows written, nothing else
		ttl     int
		expired float64
	}{
		{"no ttl: the deleted value stays", del("follows", u, v, now), 2, 0, 0},
		{"ttl: expires like an upsert of its time", del("viewed", u, it, now.Add(-30*time.Minute)), 2, 3600, 0},
		{"past the ttl: nothing to hide", del("viewed", u, it, now.Add(-2*time.Hour)), 0, 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := planStore(t)
			p := newPlan()
			s.planEdgeDelete(p, c.m, now.UnixMicro())
			if got := tables(p); got[tByKey] != c.rows || len(got) > 1 {
				t.Fatalf("partitions per table %v, want %d of edges_by_key", got, c.rows)
			}
			if got := testutil.ToFloat64(s.m.expired); got != c.expired {
				t.Fatalf("expired skips %v, want %v", got, c.expired)
			}
			for _, k := range p.order {
				st := p.groups[k].stmts[0]
				if st.args[0].(int64) != c.m.EventTime.UnixMicro() || st.args[1].(int) != c.ttl || st.now != keyExpiry(c.m.EventTime.UnixMicro(), c.m.TTL).now {
					t.Fatalf("USING TIMESTAMP %v AND TTL %v, now_in_seconds %d; want %d, %d, keyExpiry's", st.args[0], st.args[1], st.now, c.m.EventTime.UnixMicro(), c.ttl)
				}
				v, err := decodeValue(st.args[2].([]byte))
				if err != nil || !v.deleted || v.pos != c.m.Pos {
					t.Fatalf("value %x: %+v, %v; want deleted at position %s", st.args[2], v, err, c.m.Pos)
				}
			}
		})
	}
}

func TestPlanSkipsKnownDays(t *testing.T) {
	s := planStore(t)
	u, v, w := graph.NodeKey{Type: "user", ID: "u"}, graph.NodeKey{Type: "user", ID: "v"}, graph.NodeKey{Type: "user", ID: "w"}
	at := time.Now().Add(-time.Hour)
	p := newPlan()
	s.planEdgeUpsert(p, edgeUpsert("follows", u, v, at), []byte("{}"), at.UnixMicro())
	// A second edge of the same node and day in the same Apply: one day row.
	s.planEdgeUpsert(p, edgeUpsert("follows", u, w, at.Add(time.Second)), []byte("{}"), at.UnixMicro())
	if got := tables(p)[tDays]; got != 3 { // u out; v in; w in
		t.Fatalf("edge_days partitions %d, want 3", got)
	}
	for _, k := range p.order {
		for _, d := range p.groups[k].days {
			s.days.Add(d.key, d.expiry)
		}
	}
	// Once acknowledged (cached), later Applies do not rewrite them.
	p2 := newPlan()
	s.planEdgeUpsert(p2, edgeUpsert("follows", u, w, at.Add(2*time.Second)), []byte("{}"), at.UnixMicro())
	if got := tables(p2)[tDays]; got != 0 {
		t.Fatalf("edge_days rewritten for cached days: %d partitions", got)
	}
}

// testHarness is a Store on the shared keyspace with its own registry and
// a namespace for its ids.
type testHarness struct {
	t   *testing.T
	s   *Store
	reg *prometheus.Registry
	ses *gocql.Session
	ns  string
}

func newHarness(t *testing.T) *testHarness {
	cfg, session := sharedSession(t)
	reg := prometheus.NewRegistry()
	st, err := New(session, cfg, storetest.Schema(), Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &testHarness{t: t, s: st, reg: reg, ses: session, ns: uniqueKeyspace("")}
}

func (h *testHarness) user(id string) graph.NodeKey {
	return graph.NodeKey{Type: "user", ID: h.ns + id}
}

func (h *testHarness) apply(muts ...graph.Mutation) {
	h.t.Helper()
	if err := h.s.Apply(context.Background(), muts); err != nil {
		h.t.Fatalf("apply: %v", err)
	}
}

// timeRows lists the edges_by_time rows of a node's edge type and direction
// on one day, as (event time, neighbour id).
func (h *testHarness) timeRows(node graph.NodeKey, edgeType string, dir int8, day int32) []string {
	h.t.Helper()
	iter := h.ses.Query(`SELECT event_time, neighbor FROM edges_by_time WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND day = ?`,
		node.Type, []byte(node.ID), edgeType, dir, day).Iter()
	var out []string
	var e int64
	var nb []byte
	for iter.Scan(&e, &nb) {
		k, _ := parseNeighbor(nb)
		out = append(out, fmt.Sprintf("%d:%s", e, k.ID))
	}
	if err := iter.Close(); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func TestSupersededIndexRowsAreRemoved(t *testing.T) {
	h := newHarness(t)
	a, b := h.user("a"), h.user("b")
	t1 := time.Now().Add(-72 * time.Hour).Truncate(time.Second)
	t2 := t1.Add(25 * time.Hour) // another day partition
	h.apply(edgeUpsert("follows", a, b, t1))
	h.apply(edgeUpsert("follows", a, b, t2))
	d1, d2 := dayOf(t1.UnixMicro()), dayOf(t2.UnixMicro())
	if got := h.timeRows(a, "follows", dirOut, d1); len(got) != 1 {
		t.Fatalf("before any read the old index row stays: %v", got)
	}
	page, err := h.s.Adjacency(context.Background(), graph.AdjacencyQuery{Node: a, EdgeType: "follows", Direction: graph.Out, Order: graph.OrderLatest, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Edges) != 1 || !page.Edges[0].EventTime.Equal(t2) {
		t.Fatalf("latest page %+v, want the one edge at %s", page.Edges, t2)
	}
	if err := h.s.Close(); err != nil { // waits for the background repair
		t.Fatal(err)
	}
	if got := h.timeRows(a, "follows", dirOut, d1); len(got) != 0 {
		t.Fatalf("superseded index row not removed: %v", got)
	}
	if got := h.timeRows(a, "follows", dirOut, d2); len(got) != 1 {
		t.Fatalf("current index row: %v", got)
	}
	if got := testutil.ToFloat64(h.s.m.stale.WithLabelValues("repaired")); got != 1 {
		t.Fatalf("repaired metric %v, want 1", got)
	}
}

func (h *testHarness) latest(node graph.NodeKey, edgeType string, dir graph.Direction) []graph.Edge {
	h.t.Helper()
	page, err := h.s.Adjacency(context.Background(), graph.AdjacencyQuery{Node: node, EdgeType: edgeType, Direction: dir, Order: graph.OrderLatest, Limit: 100})
	if err != nil {
		h.t.Fatal(err)
	}
	return page.Edges
}

// TestDeletedEdgeIndexRowsAreRemovedByReads: an edge delete writes no
// index change (no read on the write path); the first newest-first read of
// each side skips the dead rows and removes them, and a replay of the
// deleted upsert stays hidden.
func TestDeletedEdgeIndexRowsAreRemovedByReads(t *testing.T) {
	h := newHarness(t)
	a, b := h.user("a"), h.user("b")
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	up := edgeUpsert("follows", a, b, at)
	h.apply(up)
	day := dayOf(at.UnixMicro())
	if len(h.timeRows(a, "follows", dirOut, day)) != 1 || len(h.timeRows(b, "follows", dirIn, day)) != 1 {
		t.Fatal("index rows not written in both directions")
	}
	h.apply(graph.Mutation{Op: graph.OpDeleteEdge, Edge: graph.EdgeKey{Type: "follows", From: a, To: b}, EventTime: at.Add(time.Second)})
	if got := h.timeRows(a, "follows", dirOut, day); len(got) != 1 {
		t.Fatalf("the delete touched the index: %v", got)
	}
	if got := h.latest(a, "follows", graph.Out); len(got) != 0 {
		t.Fatalf("deleted edge returned: %v", got)
	}
	if got := h.latest(b, "follows", graph.In); len(got) != 0 {
		t.Fatalf("deleted edge returned on the reverse side: %v", got)
	}
	st := h.s
	if err := st.Close(); err != nil { // waits for the repairs
		t.Fatal(err)
	}
	if got := h.timeRows(a, "follows", dirOut, day); len(got) != 0 {
		t.Fatalf("out index rows after a read: %v", got)
	}
	if got := h.timeRows(b, "follows", dirIn, day); len(got) != 0 {
		t.Fatalf("in index rows after a read: %v", got)
	}
	if got := testutil.ToFloat64(st.m.stale.WithLabelValues("repaired")); got != 2 {
		t.Fatalf("repaired metric %v, want 2", got)
	}
	h2 := newHarness(t)
	h2.ns = h.ns
	h2.apply(up) // the deleted upsert redelivered: older than the delete
	if got := h2.latest(a, "follows", graph.Out); len(got) != 0 {
		t.Fatalf("replayed upsert visible after the delete: %v", got)
	}
	if got := h2.latest(b, "follows", graph.In); len(got) != 0 {
		t.Fatalf("replayed upsert visible on the reverse side: %v", got)
	}
}

// TestIndexRowsOfEqualTimeDeletesAreKept: a delete of the very event time
// of an edges_by_time row does not make the row dead for good (an upsert of
// that time at a greater position may still come, and rewrites that row),
// so reads skip it without removing it, and the later upsert is found
// newest first.
func TestIndexRowsOfEqualTimeDeletesAreKept(t *testing.T) {
	h := newHarness(t)
	a, b := h.user("a"), h.user("b")
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	day := dayOf(at.UnixMicro())
	withPos := func(m graph.Mutation, pos uint64) graph.Mutation {
		m.Pos = graph.PosUint64(pos)
		return m
	}
	h.apply(withPos(edgeUpsert("follows", a, b, at), 1))
	h.apply(graph.Mutation{Op: graph.OpDeleteEdge, Edge: graph.EdgeKey{Type: "follows", From: a, To: b}, EventTime: at, Pos: graph.PosUint64(2)})
	if got := h.latest(a, "follows", graph.Out); len(got) != 0 {
		t.Fatalf("deleted edge returned: %v", got)
	}
	if got := h.latest(b, "follows", graph.In); len(got) != 0 {
		t.Fatalf("deleted edge returned on the reverse side: %v", got)
	}
	st := h.s
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(st.m.stale.WithLabelValues("repaired")); got != 0 {
		t.Fatalf("repaired metric %v, want 0", got)
	}
	if len(h.timeRows(a, "follows", dirOut, day)) != 1 || len(h.timeRows(b, "follows", dirIn, day)) != 1 {
		t.Fatal("index rows of the equal-time delete removed")
	}
	h2 := newHarness(t)
	h2.ns = h.ns
	h2.apply(withPos(edgeUpsert("follows", a, b, at), 3))
	for _, side := range []struct {
		node graph.NodeKey
		dir  graph.Direction
	}{{a, graph.Out}, {b, graph.In}} {
		if got := h2.latest(side.node, "follows", side.dir); len(got) != 1 || !got[0].EventTime.Equal(at) {
			t.Fatalf("%s %s: %v, want the upsert at the later position", side.node, side.dir, got)
		}
	}
}

// TestIndexRowsOfUpsertsInFlightAreKept: an edges_by_time row whose
// edges_by_key row is missing, or older, may belong to an upsert still
// being written: reads skip it but must not remove it.
func TestIndexRowsOfUpsertsInFlightAreKept(t *testing.T) {
	h := newHarness(t)
	a := h.user("a")
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	e := at.UnixMicro()
	day := dayOf(e)
	// b: only the index row has landed. c: the key row holds an older,
	// deleted upsert, and the index row of a newer one has landed.
	b, c := h.user("b"), h.user("c")
	for _, nb := range []graph.NodeKey{b, c} {
		if err := h.ses.Query(cqlUpsertByTime, a.Type, []byte(a.ID), "follows", dirOut, day, e, neighborKey(nb), e, 0).Exec(); err != nil {
			t.Fatal(err)
		}
	}
	h.apply(edgeUpsert("follows", a, c, at.Add(-time.Minute)))
	h.apply(graph.Mutation{Op: graph.OpDeleteEdge, Edge: graph.EdgeKey{Type: "follows", From: a, To: c}, EventTime: at.Add(-time.Second)})
	if got := h.latest(a, "follows", graph.Out); len(got) != 0 {
		t.Fatalf("edges without a current key row returned: %v", got)
	}
	st := h.s
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// c's older row (written by the upsert above) is dead and removed;
	// the two rows of upserts in flight stay.
	want := fmt.Sprintf("[%d:%s %d:%s]", e, b.ID, e, c.ID)
	if got := fmt.Sprint(h.timeRows(a, "follows", dirOut, day)); got != want {
		t.Fatalf("index rows %s, want %s", got, want)
	}
	if got := testutil.ToFloat64(st.m.stale.WithLabelValues("repaired")); got != 1 {
		t.Fatalf("repaired metric %v, want 1 (c's deleted upsert)", got)
	}
	// When the in-flight upsert of b lands, the edge is there.
	h2 := newHarness(t)
	h2.ns = h.ns
	h2.apply(edgeUpsert("follows", a, b, at))
	if got := h2.latest(a, "follows", graph.Out); len(got) != 1 || got[0].Key.To != b {
		t.Fatalf("after the upsert landed: %v", got)
	}
}

func TestTTLIsWrittenFromEventTime(t *testing.T) {
	h := newHarness(t)
	u, it := h.user("u"), graph.NodeKey{Type: "item", ID: h.ns + "i"}
	at := time.Now().Add(-20 * time.Minute)
	h.apply(edgeUpsert("viewed", u, it, at), edgeUpsert("viewed", u, graph.NodeKey{Type: "item", ID: h.ns + "old"}, at.Add(-time.Hour)))
	var ttl int
	nb := neighborKey(it)
	if err := h.ses.Query(`SELECT TTL(props) FROM edges_by_key WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND bucket = ? AND neighbor = ?`,
		u.Type, []byte(u.ID), "viewed", dirOut, bucketOf(nb), nb).Scan(&ttl); err != nil {
		t.Fatal(err)
	}
	// 40 minutes remain of the hour; the test may have taken a little of it.
	if ttl <= 0 || ttl > 40*60+1 {
		t.Fatalf("TTL %d s, want at most the 2400 s left", ttl)
	}
	if got := testutil.ToFloat64(h.s.m.expired); got != 1 {
		t.Fatalf("expired skips %v, want 1 (the edge an hour older)", got)
	}
}

func TestScanBudgetReturnsShortPagesThatResume(t *testing.T) {
	h := newHarness(t)
	h.s.maxScan = 4
	hub := h.user("hub")
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var muts []graph.Mutation
	for i := range 30 {
		muts = append(muts, edgeUpsert("follows", hub, h.user(fmt.Sprintf("n%02d", i)), base.Add(time.Duration(i)*time.Second)))
	}
	h.apply(muts...)
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		q := graph.AdjacencyQuery{Node: hub, EdgeType: "follows", Direction: graph.Out, Order: order, Limit: 3,
			Since: base.Add(25 * time.Second)}
		var got []string
		short := false
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatal("paging does not end")
			}
			page, err := h.s.Adjacency(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Edges) < q.Limit && page.Next != nil {
				short = true
			}
			for _, e := range page.Edges {
				got = append(got, e.Key.To.ID[len(h.ns):])
			}
			if page.Next == nil {
				break
			}
			q.Cursor = page.Next
		}
		want := "[n25 n26 n27 n28 n29]"
		if order == graph.OrderLatest {
			want = "[n29 n28 n27 n26 n25]"
		}
		if fmt.Sprint(got) != want {
			t.Fatalf("%s: got %v, want %s", order, got, want)
		}
		if order == graph.OrderKey && !short {
			t.Fatalf("%s: the scan budget never cut a page short", order)
		}
	}
}

func TestGetNodesSkipsImpossibleKeys(t *testing.T) {
	h := newHarness(t)
	long := make([]byte, graph.MaxIDLen+1)
	for i := range long {
		long[i] = 'x'
	}
	got, err := h.s.GetNodes(context.Background(), []graph.NodeKey{{Type: "user"}, {Type: "planet", ID: "p"}, {Type: "user", ID: string(long)}})
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want no nodes and no error", got, err)
	}
	page, err := h.s.Adjacency(context.Background(), graph.AdjacencyQuery{Node: graph.NodeKey{Type: "user", ID: string(long)},
		EdgeType: "follows", Direction: graph.Out, Order: graph.OrderKey, Limit: 1})
	if err != nil || len(page.Edges) != 0 || page.Next != nil {
		t.Fatalf("adjacency of an impossible id: %+v, %v", page, err)
	}
}

func TestMetricsOnInjectedRegistry(t *testing.T) {
	h := newHarness(t)
	u, v := h.user("u"), h.user("v")
	h.apply(edgeUpsert("follows", u, v, time.Now()))
	if _, err := h.s.GetNodes(context.Background(), []graph.NodeKey{u}); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(h.s.m.muts.WithLabelValues("upsert_edge")); got != 1 {
		t.Fatalf("mutations metric %v, want 1", got)
	}
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for _, f := range families {
		if f.GetName() != "rtgraph_cassandra_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" {
					ops[l.GetValue()] = true
				}
			}
		}
	}
	if !ops[opWrite] || !ops[opReadNode] {
		t.Fatalf("latency histogram ops %v, want %s and %s", ops, opWrite, opReadNode)
	}
	if _, err := New(h.ses, DefaultConfig(), storetest.Schema(), Options{Registerer: h.reg}); err == nil {
		t.Fatal("a second Store on the same registry was accepted")
	}
}

// TestUnavailableBecomesRetryable: a keyspace replicated three times on a
// one-node cluster can never reach LOCAL_QUORUM, so Cassandra answers every
// write "unavailable"; after the configured attempts the error is a
// *graph.RetryableError and the retries are counted.
func TestUnavailableBecomesRetryable(t *testing.T) {
	cfg := freshKeyspace(t)
	cfg.Replication.ReplicationFactor = 3
	cfg.Retry = RetryConfig{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	ctx := migrateCtx(t)
	// Migrating needs only one replica.
	mcfg := cfg
	mcfg.Consistency = ConsistencyConfig{Read: "ONE", Write: "ONE"}
	if _, err := Migrate(ctx, mcfg, schemas.CQLMigrations(), nil); err != nil {
		t.Fatal(err)
	}
	session, err := NewSession(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	st, err := New(session, cfg, storetest.Schema(), Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u := graph.NodeKey{Type: "user", ID: "unavailable"}
	err = st.Apply(ctx, []graph.Mutation{{Op: graph.OpUpsertNode, Node: u, EventTime: time.Now()}})
	var re *graph.RetryableError
	if !errors.As(err, &re) || !errors.As(err, new(*gocql.RequestErrUnavailable)) {
		t.Fatalf("got %v, want a *graph.RetryableError wrapping the unavailable error", err)
	}
	if got := testutil.ToFloat64(st.m.retries.WithLabelValues(opWrite)); got != 2 {
		t.Fatalf("retries %v, want 2 (3 attempts)", got)
	}
	if got := testutil.ToFloat64(st.m.errors.WithLabelValues(opWrite, string(classUnavailable))); got != 3 {
		t.Fatalf("errors{class=unavailable} %v, want 3", got)
	}
	_, err = st.GetNodes(ctx, []graph.NodeKey{u})
	if !graph.IsRetryable(err) {
		t.Fatalf("read at LOCAL_QUORUM: got %v, want retryable", err)
	}
}

// TestPermanentErrorsAreNotRetried: a keyspace without the graph tables
// makes every read an invalid request, which is returned at once.
func TestPermanentErrorsAreNotRetried(t *testing.T) {
	cfg, _ := sharedSession(t)
	cfg.Keyspace = "system_traces"
	session, err := NewSession(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	st, err := New(session, cfg, storetest.Schema(), Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.GetNodes(context.Background(), []graph.NodeKey{{Type: "user", ID: "x"}})
	if err == nil || graph.IsRetryable(err) || !errors.As(err, new(*gocql.RequestErrInvalid)) {
		t.Fatalf("got %v, want a permanent invalid-request error", err)
	}
	if got := testutil.ToFloat64(st.m.retries.WithLabelValues(opReadNode)); got != 0 {
		t.Fatalf("retries %v, want 0", got)
	}
	if got := testutil.ToFloat64(st.m.errors.WithLabelValues(opReadNode, string(classInvalid))); got != 1 {
		t.Fatalf("errors{class=invalid} %v, want 1", got)
	}
}

func TestHugeLimitIsClamped(t *testing.T) {
	h := newHarness(t)
	h.s.maxPage = 20
	hub := h.user("hub")
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	var muts []graph.Mutation
	for i := range h.s.maxPage + 5 {
		muts = append(muts, edgeUpsert("likes", hub, graph.NodeKey{Type: "item", ID: fmt.Sprintf("%s%05d", h.ns, i)}, at))
	}
	h.apply(muts...)
	q := graph.AdjacencyQuery{Node: hub, EdgeType: "likes", Direction: graph.Out, Order: graph.OrderKey, Limit: 1 << 30}
	page, err := h.s.Adjacency(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Edges) != h.s.maxPage || page.Next == nil {
		t.Fatalf("page of %d edges (next %v), want %d and a cursor", len(page.Edges), page.Next != nil, h.s.maxPage)
	}
	q.Cursor = page.Next
	page, err = h.s.Adjacency(context.Background(), q)
	if err != nil || len(page.Edges) != 5 || page.Next != nil {
		t.Fatalf("second page: %d edges, next %v, %v; want the last 5", len(page.Edges), page.Next != nil, err)
	}
}
