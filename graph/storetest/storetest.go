package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
)

//go:embed schema.yaml
var schemaYAML []byte

// Schema returns the graph schema the suite writes against, freshly loaded.
// Backends that need to prepare storage per edge type can read it.
func Schema() *graph.Schema {
	s, err := graph.LoadSchema(fstest.MapFS{"schema.yaml": {Data: schemaYAML}}, ".")
	if err != nil {
		// The file is part of this package and covered by its tests.
		panic(fmt.Sprintf("storetest: embedded schema: %v", err))
	}
	return s
}

// Factory opens a store for one case. Each call must return a usable store
// that checks mutations against schema; it may share storage with stores
// returned earlier (the suite namespaces its ids). The factory registers its
// own cleanup with t.Cleanup; that cleanup must tolerate the suite having
// closed the store already (Close then returns graph.ErrClosed).
type Factory func(t *testing.T, schema *graph.Schema) graph.Store

// Options size and extend the suite. The zero value runs everything that
// needs no extra hook, at the default sizes.
type Options struct {
	// SupernodeEdges is how many edges the supernode cases write to one node
	// (default 2000). Use enough to cross the backend's bucket boundaries.
	SupernodeEdges int
	// PageLimit is the page size used to page through supernodes (default
	// 300, the API's default per-hop limit).
	PageLimit int
	// PropertyMutations bounds the mutations in one property case (default 40).
	PropertyMutations int
	// Reopen, when set, closes s and opens the same storage again; the suite
	// then checks that everything written survives. Nil skips that case.
	Reopen func(t *testing.T, s graph.Store) graph.Store
	// SharedStorage says that every store the suite opens in this process
	// holds the same data (one keyspace): a truncate, which applies to a
	// whole node type, then outlives the case that wrote it, and the
	// property case's reference must start with those of earlier runs.
	SharedStorage bool
}

func (o Options) withDefaults() Options {
	if o.SupernodeEdges <= 0 {
		o.SupernodeEdges = 2000
	}
	if o.PageLimit <= 0 {
		o.PageLimit = 300
	}
	if o.PropertyMutations <= 0 {
		o.PropertyMutations = 40
	}
	return o
}

// Run runs every conformance case as a subtest of t.
func Run(t *testing.T, open Factory, opts Options) {
	opts = opts.withDefaults()
	schema := Schema()
	cases := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"UpsertAndRead", testUpsertAndRead},
		{"NormalisesProperties", testNormalisesProperties},
		{"RejectsNonConforming", testRejectsNonConforming},
		{"IdempotentReplay", testIdempotentReplay},
		{"OutOfOrderNewestWins", testOutOfOrder},
		{"EqualTimeTieBreak", testTieBreak},
		{"DeleteVersusUpsert", testDeleteVersusUpsert},
		{"EqualTimeOrderedByPosition", testPosition},
		{"EqualTimeDeleteAndInsert", testPositionDelete},
		{"NodeDeleteByPosition", testNodeDeletePosition},
		{"Many2OneReplacesWithoutBeforeImage", testMany2One},
		{"One2ManyReplaces", testOne2Many},
		{"One2OneClaimsBothEnds", testOne2One},
		{"NodeDeleteHidesEdgesBothDirections", testNodeDelete},
		{"EdgeNeedsItsEnds", testEdgeNeedsItsEnds},
		{"Purge", testPurge},
		{"PurgeByPosition", testPurgePosition},
		{"TruncateType", testTruncate},
		{"KeepUnavailableProperties", testKeep},
		{"TTLExpiry", testTTL},
		{"BothDirections", testBothDirections},
		{"SinceUntil", testSinceUntil},
		{"Supernode", func(t *testing.T, h *harness) { testSupernode(t, h, opts) }},
		{"CursorSurvivesWrites", testCursorSurvivesWrites},
		{"CursorSurvivesConcurrentWrites", testCursorConcurrent},
		{"BatchedGetNodes", testBatchedGetNodes},
		{"ListNodes", testListNodes},
		{"InvalidQueries", testInvalidQueries},
		{"InvalidCursor", testInvalidCursor},
		{"CancelledContext", testCancelledContext},
		{"Closed", testClosed},
		{"Reopen", func(t *testing.T, h *harness) { testReopen(t, h, opts) }},
		{"PropertyMatchesReference", func(t *testing.T, h *harness) { testProperty(t, h, opts) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &harness{schema: schema, s: open(t, schema), ns: namespace(), now: time.Now().UTC()}
			h.base = h.now.Truncate(time.Second).Add(-48 * time.Hour)
			c.fn(t, h)
		})
	}
}

// tb is the part of testing.TB the helpers need; *rapid.T has it too.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

// harness carries one case's store, namespace and clock anchors.
type harness struct {
	schema *graph.Schema
	s      graph.Store
	ns     string
	// now is the wall clock when the case started; base is two days before
	// it, the anchor for event times of edges without TTL.
	now  time.Time
	base time.Time
}

func namespace() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

func (h *harness) user(id string) graph.NodeKey {
	return graph.NodeKey{Type: "user", ID: h.ns + "-" + id}
}
func (h *harness) item(id string) graph.NodeKey {
	return graph.NodeKey{Type: "item", ID: h.ns + "-" + id}
}
func (h *harness) tag(id string) graph.NodeKey {
	return graph.NodeKey{Type: "tag", ID: h.ns + "-" + id}
}

// liveItem returns the key of an item and writes the item, long before
// anything else a case writes, so that its deletes and upserts in the case
// decide its state.
func (h *harness) liveItem(t tb, id string) graph.NodeKey {
	t.Helper()
	k := h.item(id)
	h.apply(t, upN(k, h.at(-3600), graph.Props{"title": id}))
	return k
}

// liveTag returns the key of a tag and writes the tag, long before anything
// else a case writes: tags are not implicit, so their edges are seen only
// while the tag exists.
func (h *harness) liveTag(t tb, id string) graph.NodeKey {
	t.Helper()
	k := h.tag(id)
	h.apply(t, upN(k, h.at(-3600), graph.Props{"label": id}))
	return k
}

// at returns base plus sec seconds.
func (h *harness) at(sec int) time.Time { return h.base.Add(time.Duration(sec) * time.Second) }

func upN(k graph.NodeKey, at time.Time, p graph.Props) graph.Mutation {
	return graph.Mutation{Op: graph.OpUpsertNode, Node: k, Props: p, EventTime: at}
}

func delN(k graph.NodeKey, at time.Time) graph.Mutation {
	return graph.Mutation{Op: graph.OpDeleteNode, Node: k, EventTime: at}
}

func upE(typ string, from, to graph.NodeKey, at time.Time, p graph.Props) graph.Mutation {
	return graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: typ, From: from, To: to}, Props: p, EventTime: at}
}

func delE(typ string, from, to graph.NodeKey, at time.Time) graph.Mutation {
	return graph.Mutation{Op: graph.OpDeleteEdge, Edge: graph.EdgeKey{Type: typ, From: from, To: to}, EventTime: at}
}

func (h *harness) apply(t tb, muts ...graph.Mutation) {
	t.Helper()
	if err := h.s.Apply(context.Background(), muts); err != nil {
		t.Fatalf("apply %d mutations: %v", len(muts), err)
	}
}

// applyEach applies mutations one Apply call at a time, so that their order
// of arrival is the order given.
func (h *harness) applyEach(t tb, muts ...graph.Mutation) {
	t.Helper()
	for _, m := range muts {
		h.apply(t, m)
	}
}

func (h *harness) node(t tb, k graph.NodeKey) (graph.Node, bool) {
	t.Helper()
	got, err := h.s.GetNodes(context.Background(), []graph.NodeKey{k})
	if err != nil {
		t.Fatalf("get node %s: %v", k, err)
	}
	n, ok := got[k]
	h.checkRawNodes(t, []graph.NodeKey{k}, got)
	return n, ok
}

// checkRawNodes reads keys again through graph.RawNodeReader, when the
// store is one, and checks the rule: the same nodes and times, each with
// the canonical encoding of the decoded read's Props as its bytes.
func (h *harness) checkRawNodes(t tb, keys []graph.NodeKey, decoded map[graph.NodeKey]graph.Node) {
	t.Helper()
	rr, ok := h.s.(graph.RawNodeReader)
	if !ok {
		return
	}
	raw, err := rr.GetNodesRaw(context.Background(), keys)
	if err != nil {
		t.Fatalf("get nodes raw: %v", err)
	}
	if len(raw) != len(decoded) {
		t.Fatalf("get nodes raw: %d nodes, get nodes %d", len(raw), len(decoded))
	}
	for k, d := range decoded {
		r, ok := raw[k]
		want, err := graph.EncodeProps(d.Props)
		if err != nil {
			t.Fatalf("encode props: %v", err)
		}
		if !ok || r.Key != d.Key || !r.EventTime.Equal(d.EventTime) || !bytes.Equal(r.PropsJSON, want) {
			t.Fatalf("node %s: raw read %+v (present %v, props %s), decoded read %+v (canonical props %s)", k, r, ok, r.PropsJSON, d, want)
		}
	}
}

func q(node graph.NodeKey, typ string, dir graph.Direction, order graph.Order, limit int) graph.AdjacencyQuery {
	return graph.AdjacencyQuery{Node: node, EdgeType: typ, Direction: dir, Order: order, Limit: limit}
}

// all pages q to its end, checking each page's size and that Next is nil
// exactly at the end, and returns the edges in order. When the store
// counts edges (graph.EdgeCounter) and q starts at the beginning, its
// count of q must be the number of edges paged.
func (h *harness) all(t tb, query graph.AdjacencyQuery) []graph.Edge {
	t.Helper()
	out := h.pages(t, query)
	if c, ok := h.s.(graph.EdgeCounter); ok && query.Cursor == nil {
		n, err := c.CountEdges(context.Background(), query)
		if err != nil {
			t.Fatalf("count edges %s %s %s: %v", query.Node, query.EdgeType, query.Direction, err)
		}
		if n != int64(len(out)) {
			t.Fatalf("count edges %s %s %s since %v until %v: %d, paging lists %d",
				query.Node, query.EdgeType, query.Direction, query.Since, query.Until, n, len(out))
		}
	}
	return out
}

// pages pages q to its end (see all).
func (h *harness) pages(t tb, query graph.AdjacencyQuery) []graph.Edge {
	t.Helper()
	var out []graph.Edge
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatalf("adjacency %+v: paging does not end", query)
		}
		page, err := h.s.Adjacency(context.Background(), query)
		if err != nil {
			t.Fatalf("adjacency %s %s %s: %v", query.Node, query.EdgeType, query.Direction, err)
		}
		if len(page.Edges) > query.Limit {
			t.Fatalf("adjacency page has %d edges, limit %d", len(page.Edges), query.Limit)
		}
		h.checkRawPage(t, query, page)
		out = append(out, page.Edges...)
		if page.Next == nil {
			return out
		}
		query.Cursor = page.Next
	}
}

// checkRawPage asks for the page again with RawProps and checks it against
// the rule: the same edges and cursor, and each edge's property bytes are
// the canonical encoding (graph.EncodeProps) of the decoded page's Props.
// Pages holding an edge that expires about now are not compared (it may
// expire between the two reads).
func (h *harness) checkRawPage(t tb, query graph.AdjacencyQuery, page graph.AdjacencyPage) {
	t.Helper()
	query.RawProps = true
	raw, err := h.s.Adjacency(context.Background(), query)
	if err != nil {
		t.Fatalf("adjacency %s %s %s with raw props: %v", query.Node, query.EdgeType, query.Direction, err)
	}
	now := time.Now()
	for _, es := range [][]graph.Edge{page.Edges, raw.Edges} {
		for _, e := range es {
			if !e.ExpiresAt.IsZero() && e.ExpiresAt.Sub(now).Abs() < time.Minute {
				return
			}
		}
	}
	if len(raw.Edges) != len(page.Edges) || !bytes.Equal(raw.Next, page.Next) {
		t.Fatalf("adjacency %s %s %s: with raw props %d edges (next %x), without %d (next %x)",
			query.Node, query.EdgeType, query.Direction, len(raw.Edges), raw.Next, len(page.Edges), page.Next)
	}
	for i, e := range page.Edges {
		r := raw.Edges[i]
		if r.Key != e.Key || !r.EventTime.Equal(e.EventTime) || !r.ExpiresAt.Equal(e.ExpiresAt) {
			t.Fatalf("adjacency with raw props, edge %d: %s, without: %s", i, edgeString(r), edgeString(e))
		}
		want, err := graph.EncodeProps(e.Props)
		if err != nil {
			t.Fatalf("encode props: %v", err)
		}
		for what, x := range map[string]graph.Edge{"raw": r, "decoded": e} {
			got, err := x.PropsBytes()
			if err != nil {
				t.Fatalf("encode props: %v", err)
			}
			if x.PropsJSON != nil && !bytes.Equal(got, want) {
				t.Fatalf("adjacency %s page, edge %s: property bytes %s, canonical encoding of its props %s", what, e.Key.To, got, want)
			}
		}
		if r.PropsJSON == nil && r.Props == nil {
			t.Fatalf("adjacency with raw props, edge %s: neither PropsJSON nor Props", e.Key.To)
		}
	}
}

func (h *harness) one(t tb, query graph.AdjacencyQuery) []graph.Edge {
	t.Helper()
	query.Limit = 1000
	return h.all(t, query)
}

func edgeString(e graph.Edge) string {
	exp := "never"
	if !e.ExpiresAt.IsZero() {
		exp = e.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%s(%s->%s)@%s exp=%s %v", e.Key.Type, e.Key.From, e.Key.To,
		e.EventTime.UTC().Format(time.RFC3339Nano), exp, map[string]any(e.Props))
}

func edgesString(es []graph.Edge) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = edgeString(e)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func propsEqual(a, b graph.Props) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func edgeEqual(a, b graph.Edge) bool {
	return a.Key == b.Key && propsEqual(a.Props, b.Props) && a.EventTime.Equal(b.EventTime) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func edgesEqual(a, b []graph.Edge) bool {
	return slices.EqualFunc(a, b, edgeEqual)
}

// nodeEqual compares two nodes' keys, props and times, and requires the
// stored property bytes each may carry to be the canonical encoding of its
// props.
func nodeEqual(a, b graph.Node) bool {
	return a.Key == b.Key && propsEqual(a.Props, b.Props) && a.EventTime.Equal(b.EventTime) &&
		canonicalPropsJSON(a) && canonicalPropsJSON(b)
}

func canonicalPropsJSON(n graph.Node) bool {
	if n.PropsJSON == nil {
		return true
	}
	want, err := graph.EncodeProps(n.Props)
	return err == nil && bytes.Equal(n.PropsJSON, want)
}

func wantEdges(t tb, what string, got, want []graph.Edge) {
	t.Helper()
	if !edgesEqual(got, want) {
		t.Fatalf("%s:\n got %s\nwant %s", what, edgesString(got), edgesString(want))
	}
}

func wantNode(t tb, h *harness, k graph.NodeKey, want *graph.Node) {
	t.Helper()
	got, ok := h.node(t, k)
	switch {
	case want == nil && ok:
		t.Fatalf("node %s: got %+v, want absent", k, got)
	case want != nil && !ok:
		t.Fatalf("node %s: absent, want %+v", k, *want)
	case want != nil && !nodeEqual(got, *want):
		t.Fatalf("node %s:\n got %+v\nwant %+v", k, got, *want)
	}
}

func edge(typ string, from, to graph.NodeKey, at time.Time, p graph.Props) graph.Edge {
	return graph.Edge{Key: graph.EdgeKey{Type: typ, From: from, To: to}, Props: p, EventTime: at.UTC().Truncate(time.Microsecond)}
}

func testUpsertAndRead(t *testing.T, h *harness) {
	a, b, it := h.user("a"), h.user("b"), h.item("i")
	// Sub-microsecond digits are dropped by every backend.
	at := h.at(10).Add(123456789 * time.Nanosecond)
	props := graph.Props{"name": "Ann", "age": int64(41), "score": 0.5, "vip": true}
	viewedAt := h.now.Add(-10 * time.Minute)
	h.apply(t,
		upN(a, at, props),
		upN(it, at, graph.Props{}),
		upE("follows", a, b, at, graph.Props{"weight": 1.5, "since": int64(2019)}),
		upE("viewed", a, it, viewedAt, graph.Props{"ms": int64(1200), "complete": false}),
	)
	wantNode(t, h, a, &graph.Node{Key: a, Props: props, EventTime: at.Truncate(time.Microsecond)})
	wantNode(t, h, it, &graph.Node{Key: it, Props: graph.Props{}, EventTime: at.Truncate(time.Microsecond)})
	wantNode(t, h, b, nil)
	wantEdges(t, "follows out of a", h.one(t, q(a, "follows", graph.Out, graph.OrderKey, 0)),
		[]graph.Edge{edge("follows", a, b, at, graph.Props{"weight": 1.5, "since": int64(2019)})})
	v := edge("viewed", a, it, viewedAt, graph.Props{"ms": int64(1200), "complete": false})
	v.ExpiresAt = v.EventTime.Add(time.Hour)
	wantEdges(t, "viewed out of a", h.one(t, q(a, "viewed", graph.Out, graph.OrderLatest, 0)), []graph.Edge{v})
	// An edge's end nodes need not exist: the graph does not enforce
	// referential integrity (b was never upserted).
	wantEdges(t, "follows into b", h.one(t, q(b, "follows", graph.In, graph.OrderKey, 0)),
		[]graph.Edge{edge("follows", a, b, at, graph.Props{"weight": 1.5, "since": int64(2019)})})
}

func testNormalisesProperties(t *testing.T, h *harness) {
	a, b := h.user("a"), h.user("b")
	h.apply(t,
		upN(a, h.at(1), graph.Props{"age": 30.0, "score": int64(2), "name": nil}),
		upE("follows", a, b, h.at(1), graph.Props{"since": float64(2020), "weight": 3}),
	)
	wantNode(t, h, a, &graph.Node{Key: a, Props: graph.Props{"age": int64(30), "score": 2.0}, EventTime: h.at(1)})
	wantEdges(t, "follows out of a", h.one(t, q(a, "follows", graph.Out, graph.OrderKey, 0)),
		[]graph.Edge{edge("follows", a, b, h.at(1), graph.Props{"since": int64(2020), "weight": 3.0})})
}

func testRejectsNonConforming(t *testing.T, h *harness) {
	a, it := h.user("a"), h.item("i")
	cases := []struct {
		name string
		m    graph.Mutation
		rule graph.Rule
	}{
		{"unknown node type", upN(graph.NodeKey{Type: "planet", ID: "x"}, h.at(1), nil), graph.RuleUnknownNodeType},
		{"unknown edge type", upE("orbits", a, a, h.at(1), nil), graph.RuleUnknownEdgeType},
		{"wrong from type", upE("follows", it, a, h.at(1), nil), graph.RuleWrongFromType},
		{"wrong to type", upE("follows", a, it, h.at(1), nil), graph.RuleWrongToType},
		{"unknown property", upN(a, h.at(1), graph.Props{"colour": "red"}), graph.RuleUnknownProperty},
		{"wrong property type", upN(a, h.at(1), graph.Props{"age": "old"}), graph.RuleWrongPropertyType},
		{"fractional int", upN(a, h.at(1), graph.Props{"age": 1.5}), graph.RuleWrongPropertyType},
		{"missing event time", upN(a, time.Time{}, nil), graph.RuleMissingEventTime},
		{"empty node id", upN(graph.NodeKey{Type: "user"}, h.at(1), nil), graph.RuleEmptyID},
		{"empty edge end id", upE("follows", a, graph.NodeKey{Type: "user"}, h.at(1), nil), graph.RuleEmptyID},
		{"properties on delete", graph.Mutation{Op: graph.OpDeleteNode, Node: a, EventTime: h.at(1), Props: graph.Props{"age": int64(1)}}, graph.RulePropertiesOnDelete},
		{"unknown op", graph.Mutation{Op: 99, Node: a, EventTime: h.at(1)}, graph.RuleUnknownOp},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := h.s.Apply(context.Background(), []graph.Mutation{c.m})
			var se *graph.SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("apply: got %v, want a *graph.SchemaError", err)
			}
			if se.Rule != c.rule {
				t.Fatalf("rule: got %s, want %s (%v)", se.Rule, c.rule, err)
			}
			if !errors.Is(err, graph.ErrNonConforming) || graph.IsRetryable(err) {
				t.Fatalf("error %v: want permanent and matching graph.ErrNonConforming", err)
			}
		})
	}
	wantNode(t, h, a, nil)
}

func testIdempotentReplay(t *testing.T, h *harness) {
	a, b, c := h.user("a"), h.user("b"), h.user("c")
	batch := []graph.Mutation{
		upN(a, h.at(1), graph.Props{"name": "a1"}),
		upN(b, h.at(2), graph.Props{"name": "b2"}),
		upE("follows", a, b, h.at(3), graph.Props{"weight": 1.0}),
		upE("follows", a, c, h.at(4), nil),
		delE("follows", a, c, h.at(5)),
		upN(a, h.at(6), graph.Props{"name": "a6"}),
		delN(c, h.at(7)),
	}
	check := func() {
		t.Helper()
		wantNode(t, h, a, &graph.Node{Key: a, Props: graph.Props{"name": "a6"}, EventTime: h.at(6)})
		wantNode(t, h, b, &graph.Node{Key: b, Props: graph.Props{"name": "b2"}, EventTime: h.at(2)})
		wantNode(t, h, c, nil)
		wantEdges(t, "follows out of a", h.one(t, q(a, "follows", graph.Out, graph.OrderKey, 0)),
			[]graph.Edge{edge("follows", a, b, h.at(3), graph.Props{"weight": 1.0})})
	}
	h.apply(t, batch...)
	check()
	h.apply(t, batch...)
	check()
	// Redelivery of a suffix and a reversed replay, as after a rebalance.
	h.apply(t, batch[3:]...)
	rev := slices.Clone(batch)
	slices.Reverse(rev)
	h.applyEach(t, rev...)
	check()
}

func testOutOfOrder(t *testing.T, h *harness) {
	a, b := h.user("a"), h.user("b")
	h.applyEach(t,
		upN(a, h.at(20), graph.Props{"name": "new"}),
		upN(a, h.at(10), graph.Props{"name": "old"}),
		upE("follows", a, b, h.at(20), graph.Props{"since": int64(20)}),
		upE("follows", a, b, h.at(10), graph.Props{"since": int64(10)}),
	)
	wantNode(t, h, a, &graph.Node{Key: a, Props: graph.Props{"name": "new"}, EventTime: h.at(20)})
	want := []graph.Edge{edge("follows", a, b, h.at(20), graph.Props{"since": int64(20)})}
	wantEdges(t, "out of a", h.one(t, q(a, "follows", graph.Out, graph.OrderLatest, 0)), want)
	wantEdges(t, "into b", h.one(t, q(b, "follows", graph.In, graph.OrderLatest, 0)), want)
	// An upsert replaces the whole property set rather than merging.
	h.apply(t, upN(a, h.at(30), graph.Props{"age": int64(5)}))
	wantNode(t, h, a, &graph.Node{Key: a, Props: graph.Props{"age": int64(5)}, EventTime: h.at(30)})
}

func testTieBreak(t *testing.T, h *harness) {
	h.liveTag(t, "t")
	// At equal event time the greater encoded property set wins, whatever
	// the arrival order: {"name":"b"} > {"name":"a"} byte-wise.
	for i, order := range [][2]string{{"a", "b"}, {"b", "a"}} {
		u, v := h.user(fmt.Sprintf("u%d", i)), h.user(fmt.Sprintf("v%d", i))
		for _, name := range order {
			h.apply(t, upN(u, h.at(5), graph.Props{"name": name}),
				upE("tagged", u, h.tag("t"), h.at(5), graph.Props{"note": name}))
			h.apply(t, upE("follows", u, v, h.at(5), graph.Props{"weight": map[string]float64{"a": 1, "b": 2}[name]}))
		}
		wantNode(t, h, u, &graph.Node{Key: u, Props: graph.Props{"name": "b"}, EventTime: h.at(5)})
		wantEdges(t, "tagged out of u", h.one(t, q(u, "tagged", graph.Out, graph.OrderKey, 0)),
			[]graph.Edge{edge("tagged", u, h.tag("t"), h.at(5), graph.Props{"note": "b"})})
		wantEdges(t, "follows out of u", h.one(t, q(u, "follows", graph.Out, graph.OrderKey, 0)),
			[]graph.Edge{edge("follows", u, v, h.at(5), graph.Props{"weight": 2.0})})
	}
}

// at sets a mutation's position.
func atPos(m graph.Mutation, pos uint64) graph.Mutation {
	m.Pos = graph.PosUint64(pos)
	return m
}

// arrivals is every way two mutations can arrive: in one batch either way
// round, or in two batches either way round (the older one redelivered
// later, as after a connector restart).
func arrivals(h *harness, t tb, a, b []graph.Mutation) [4]func() {
	return [4]func(){
		func() { h.apply(t, append(slices.Clone(a), b...)...) },
		func() { h.apply(t, append(slices.Clone(b), a...)...) },
		func() { h.apply(t, a...); h.apply(t, b...) },
		func() { h.apply(t, b...); h.apply(t, a...) },
	}
}

// testPosition: two upserts of one node or edge at the same event time (two
// updates of a row in one transaction) resolve by position, not by their
// properties: the later position wins although its properties encode smaller.
func testPosition(t *testing.T, h *harness) {
	h.liveTag(t, "t")
	for i := range 4 {
		u, v := h.user(fmt.Sprintf("u%d", i)), h.user(fmt.Sprintf("v%d", i))
		first := []graph.Mutation{
			atPos(upN(u, h.at(5), graph.Props{"name": "z"}), 7),
			atPos(upE("follows", u, v, h.at(5), graph.Props{"weight": 9.0}), 7),
			atPos(upE("tagged", u, h.tag("t"), h.at(5), graph.Props{"note": "z"}), 7),
		}
		second := []graph.Mutation{
			atPos(upN(u, h.at(5), graph.Props{"name": "a"}), 8),
			atPos(upE("follows", u, v, h.at(5), graph.Props{"weight": 1.0}), 8),
			atPos(upE("tagged", u, h.tag("t"), h.at(5), graph.Props{"note": "a"}), 8),
		}
		arrivals(h, t, first, second)[i]()
		wantNode(t, h, u, &graph.Node{Key: u, Props: graph.Props{"name": "a"}, EventTime: h.at(5)})
		follows := []graph.Edge{edge("follows", u, v, h.at(5), graph.Props{"weight": 1.0})}
		wantEdges(t, fmt.Sprintf("arrival %d: follows out of u", i), h.one(t, q(u, "follows", graph.Out, graph.OrderKey, 0)), follows)
		wantEdges(t, fmt.Sprintf("arrival %d: follows into v", i), h.one(t, q(v, "follows", graph.In, graph.OrderLatest, 0)), follows)
		wantEdges(t, fmt.Sprintf("arrival %d: tagged out of u", i), h.one(t, q(u, "tagged", graph.Out, graph.OrderLatest, 0)),
			[]graph.Edge{edge("tagged", u, h.tag("t"), h.at(5), graph.Props{"note": "a"})})
		// An event time one microsecond later beats any position.
		h.apply(t, atPos(upN(u, h.at(5).Add(time.Microsecond), graph.Props{"name": "b"}), 0))
		wantNode(t, h, u, &graph.Node{Key: u, Props: graph.Props{"name": "b"}, EventTime: h.at(5).Add(time.Microsecond)})
	}
}

// testPositionDelete: a DELETE and an INSERT of one key in one transaction
// share the event time; the later position decides, in every arrival order.
func testPositionDelete(t *testing.T, h *harness) {
	for i := range 4 {
		n, o := h.user(fmt.Sprintf("n%d", i)), h.user(fmt.Sprintf("o%d", i))
		x := h.liveItem(t, fmt.Sprintf("x%d", i))
		// Delete, then insert: the row exists.
		del := []graph.Mutation{atPos(delN(n, h.at(3)), 10), atPos(delE("likes", o, x, h.at(3)), 10)}
		ins := []graph.Mutation{atPos(upN(n, h.at(3), graph.Props{"age": int64(1)}), 11),
			atPos(upE("likes", o, x, h.at(3), graph.Props{"rating": int64(1)}), 11)}
		arrivals(h, t, del, ins)[i]()
		wantNode(t, h, n, &graph.Node{Key: n, Props: graph.Props{"age": int64(1)}, EventTime: h.at(3)})
		wantEdges(t, fmt.Sprintf("arrival %d: likes after delete+insert", i), h.one(t, q(o, "likes", graph.Out, graph.OrderKey, 0)),
			[]graph.Edge{edge("likes", o, x, h.at(3), graph.Props{"rating": int64(1)})})

		// Insert, then delete: the row is gone.
		m, p := h.user(fmt.Sprintf("m%d", i)), h.user(fmt.Sprintf("p%d", i))
		ins2 := []graph.Mutation{atPos(upN(m, h.at(3), graph.Props{"age": int64(1)}), 10),
			atPos(upE("likes", p, x, h.at(3), graph.Props{"rating": int64(1)}), 10)}
		del2 := []graph.Mutation{atPos(delN(m, h.at(3)), 11), atPos(delE("likes", p, x, h.at(3)), 11)}
		arrivals(h, t, ins2, del2)[i]()
		wantNode(t, h, m, nil)
		wantEdges(t, fmt.Sprintf("arrival %d: likes after insert+delete", i), h.one(t, q(p, "likes", graph.Out, graph.OrderKey, 0)), nil)
	}
}

// testNodeDeletePosition: a node delete and an upsert of the node of the
// same event time are ordered by position, and the node's edges follow the
// node: hidden while the delete is its newest word, whatever their own
// versions, seen again once a later upsert of the node arrives.
func testNodeDeletePosition(t *testing.T, h *harness) {
	x, y, z, tg := h.liveItem(t, "x"), h.user("y"), h.user("z"), h.liveTag(t, "t")
	h.apply(t,
		atPos(upN(x, h.at(1), graph.Props{"title": "x"}), 1),
		atPos(upE("tagged", x, tg, h.at(5), nil), 3),
		atPos(upE("likes", z, x, h.at(5), nil), 7),
	)
	h.apply(t, atPos(delN(x, h.at(5)), 5))
	// Arriving after the delete: an edge at a later position, and an upsert
	// of the node at an earlier one, which loses to the delete.
	h.apply(t,
		atPos(upE("likes", y, x, h.at(5), nil), 6),
		atPos(upN(x, h.at(5), graph.Props{"title": "early"}), 4),
	)
	wantNode(t, h, x, nil)
	wantEdges(t, "tagged out of x", h.one(t, q(x, "tagged", graph.Out, graph.OrderKey, 0)), nil)
	wantEdges(t, "tagged into t", h.one(t, q(tg, "tagged", graph.In, graph.OrderKey, 0)), nil)
	wantEdges(t, "likes out of z", h.one(t, q(z, "likes", graph.Out, graph.OrderKey, 0)), nil)
	wantEdges(t, "likes out of y", h.one(t, q(y, "likes", graph.Out, graph.OrderLatest, 0)), nil)
	// An upsert of the same time at a later position brings the node and
	// every edge back.
	h.apply(t, atPos(upN(x, h.at(5), graph.Props{"title": "late"}), 9))
	wantNode(t, h, x, &graph.Node{Key: x, Props: graph.Props{"title": "late"}, EventTime: h.at(5)})
	wantEdges(t, "tagged out of x after the upsert", h.one(t, q(x, "tagged", graph.Out, graph.OrderKey, 0)),
		[]graph.Edge{edge("tagged", x, tg, h.at(5), nil)})
	wantEdges(t, "likes out of z after the upsert", h.one(t, q(z, "likes", graph.Out, graph.OrderKey, 0)),
		[]graph.Edge{edge("likes", z, x, h.at(5), nil)})
	wantEdges(t, "likes out of y after the upsert", h.one(t, q(y, "likes", graph.Out, graph.OrderLatest, 0)),
		[]graph.Edge{edge("likes", y, x, h.at(5), nil)})
}

// testMany2One: an item moves from one owner to another (a row whose owner
// column changes, without a before image): the newer edge replaces the older
// one at the item's end, in every arrival order, also when both changes share
// an event time and only their positions differ, and when the older one is
// redelivered after the newer.
func testMany2One(t *testing.T, h *harness) {
	for i := range 4 {
		for _, same := range []bool{false, true} {
			name := fmt.Sprintf("arrival %d, same time %v", i, same)
			it := h.liveItem(t, fmt.Sprintf("i%d%v", i, same))
			u1, u2 := h.user(fmt.Sprintf("a%d%v", i, same)), h.user(fmt.Sprintf("b%d%v", i, same))
			older := atPos(upE("owned_by", it, u1, h.at(1), graph.Props{"share": int64(1)}), 1)
			newerAt := h.at(2)
			if same {
				newerAt = h.at(1)
			}
			newer := atPos(upE("owned_by", it, u2, newerAt, graph.Props{"share": int64(2)}), 2)
			arrivals(h, t, []graph.Mutation{older}, []graph.Mutation{newer})[i]()
			// A redelivery of the older change changes nothing.
			h.apply(t, older)
			want := []graph.Edge{edge("owned_by", it, u2, newerAt, graph.Props{"share": int64(2)})}
			wantEdges(t, name+": owner of the item", h.one(t, q(it, "owned_by", graph.Out, graph.OrderKey, 0)), want)
			wantEdges(t, name+": items of the new owner", h.one(t, q(u2, "owned_by", graph.In, graph.OrderLatest, 0)), want)
			wantEdges(t, name+": items of the old owner", h.one(t, q(u1, "owned_by", graph.In, graph.OrderKey, 0)), nil)
		}
	}
	// Moving back to the first owner later replaces again; an item's owner
	// edge can still be deleted explicitly, and an older owner cannot come
	// back after that.
	it, u1, u2 := h.liveItem(t, "back"), h.user("back1"), h.user("back2")
	h.applyEach(t, upE("owned_by", it, u1, h.at(1), nil), upE("owned_by", it, u2, h.at(2), nil), upE("owned_by", it, u1, h.at(3), nil))
	wantEdges(t, "moved back", h.one(t, q(it, "owned_by", graph.Out, graph.OrderKey, 0)), []graph.Edge{edge("owned_by", it, u1, h.at(3), nil)})
	wantEdges(t, "moved back: items of the second owner", h.one(t, q(u2, "owned_by", graph.In, graph.OrderKey, 0)), nil)
	h.applyEach(t, delE("owned_by", it, u1, h.at(4)), upE("owned_by", it, u2, h.at(2), nil))
	wantEdges(t, "owner deleted", h.one(t, q(it, "owned_by", graph.Out, graph.OrderKey, 0)), nil)
	// Equal versions with different owners: the greater owner key wins, in
	// every arrival order, also after an older claim of the winner.
	for n, perm := range [][3]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		tie := h.liveItem(t, fmt.Sprintf("tie%d", n))
		a, b := h.user(fmt.Sprintf("tie%d-a", n)), h.user(fmt.Sprintf("tie%d-b", n))
		ms := []graph.Mutation{upE("owned_by", tie, b, h.at(1), nil), upE("owned_by", tie, a, h.at(2), nil), upE("owned_by", tie, b, h.at(2), nil)}
		for _, i := range perm {
			h.apply(t, ms[i])
		}
		want := []graph.Edge{edge("owned_by", tie, b, h.at(2), nil)}
		wantEdges(t, fmt.Sprintf("tie, order %v: owner", perm), h.one(t, q(tie, "owned_by", graph.Out, graph.OrderKey, 0)), want)
		wantEdges(t, fmt.Sprintf("tie, order %v: items of a", perm), h.one(t, q(a, "owned_by", graph.In, graph.OrderKey, 0)), nil)
	}
	// Another item's owner is independent.
	other := h.liveItem(t, "other")
	h.apply(t, upE("owned_by", other, u2, h.at(1), nil))
	wantEdges(t, "items of the second owner", h.one(t, q(u2, "owned_by", graph.In, graph.OrderKey, 0)),
		[]graph.Edge{edge("owned_by", other, u2, h.at(1), nil)})
}

// testOne2Many: the constrained end is the To end: a child has one parent.
func testOne2Many(t *testing.T, h *harness) {
	for i := range 4 {
		child, p1, p2 := h.user(fmt.Sprintf("c%d", i)), h.user(fmt.Sprintf("p%d", i)), h.user(fmt.Sprintf("q%d", i))
		arrivals(h, t, []graph.Mutation{atPos(upE("parent_of", p1, child, h.at(1), nil), 1)},
			[]graph.Mutation{atPos(upE("parent_of", p2, child, h.at(1), nil), 2)})[i]()
		want := []graph.Edge{edge("parent_of", p2, child, h.at(1), nil)}
		wantEdges(t, fmt.Sprintf("arrival %d: parents of the child", i), h.one(t, q(child, "parent_of", graph.In, graph.OrderKey, 0)), want)
		wantEdges(t, fmt.Sprintf("arrival %d: children of the old parent", i), h.one(t, q(p1, "parent_of", graph.Out, graph.OrderKey, 0)), nil)
		wantEdges(t, fmt.Sprintf("arrival %d: children of the new parent", i), h.one(t, q(p2, "parent_of", graph.Out, graph.OrderKey, 0)), want)
	}
	// A parent may have many children.
	p, c1, c2 := h.user("many"), h.user("many1"), h.user("many2")
	h.apply(t, upE("parent_of", p, c1, h.at(1), nil), upE("parent_of", p, c2, h.at(2), nil))
	wantEdges(t, "children", h.one(t, q(p, "parent_of", graph.Out, graph.OrderKey, 0)),
		[]graph.Edge{edge("parent_of", p, c1, h.at(1), nil), edge("parent_of", p, c2, h.at(2), nil)})
}

// testOne2One: each end keeps its newest claim; an edge is there only while
// it is the claim of both ends, whatever the arrival order.
func testOne2One(t *testing.T, h *harness) {
	muts := func(f, g, x, y graph.NodeKey) []graph.Mutation {
		return []graph.Mutation{
			upE("paired", f, x, h.at(3), nil), // f's first claim
			upE("paired", g, y, h.at(9), nil), // g claims y
			upE("paired", f, y, h.at(5), nil), // f's newest claim, but y's newest is g
			upE("paired", g, x, h.at(1), nil), // stale on both sides
		}
	}
	for _, perm := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}, {1, 3, 0, 2}} {
		f, g := h.user(fmt.Sprintf("f%v", perm)), h.user(fmt.Sprintf("g%v", perm))
		x, y := h.user(fmt.Sprintf("x%v", perm)), h.user(fmt.Sprintf("y%v", perm))
		ms := muts(f, g, x, y)
		for _, i := range perm {
			h.apply(t, ms[i])
		}
		name := fmt.Sprintf("order %v", perm)
		gy := []graph.Edge{edge("paired", g, y, h.at(9), nil)}
		wantEdges(t, name+": out of g", h.one(t, q(g, "paired", graph.Out, graph.OrderKey, 0)), gy)
		wantEdges(t, name+": into y", h.one(t, q(y, "paired", graph.In, graph.OrderKey, 0)), gy)
		// f's newest claim (y at 5) lost at y, and it displaced f → x.
		wantEdges(t, name+": out of f", h.one(t, q(f, "paired", graph.Out, graph.OrderKey, 0)), nil)
		wantEdges(t, name+": into x", h.one(t, q(x, "paired", graph.In, graph.OrderKey, 0)), nil)
	}
}

func testDeleteVersusUpsert(t *testing.T, h *harness) {
	type step struct {
		del bool
		sec int
	}
	cases := []struct {
		name  string
		steps []step
		want  int // second of the surviving upsert; 0 = nothing visible
	}{
		{"delete after upsert", []step{{false, 1}, {true, 2}}, 0},
		{"older upsert after delete does not resurrect", []step{{true, 2}, {false, 1}}, 0},
		{"newer upsert after delete", []step{{true, 2}, {false, 3}}, 3},
		{"older delete after newer upsert", []step{{false, 3}, {true, 2}}, 3},
		{"tie: delete then upsert", []step{{true, 2}, {false, 2}}, 0},
		{"tie: upsert then delete", []step{{false, 2}, {true, 2}}, 0},
		{"redelivered delete after newer upsert", []step{{false, 1}, {true, 2}, {false, 3}, {true, 2}}, 3},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, o, x := h.user(fmt.Sprintf("n%d", i)), h.user(fmt.Sprintf("o%d", i)), h.liveItem(t, "x")
			for _, s := range c.steps {
				if s.del {
					h.apply(t, delN(n, h.at(s.sec)), delE("likes", o, x, h.at(s.sec)))
				} else {
					p := graph.Props{"age": int64(s.sec)}
					h.apply(t, upN(n, h.at(s.sec), p), upE("likes", o, x, h.at(s.sec), graph.Props{"rating": int64(s.sec)}))
				}
			}
			likes := h.one(t, q(o, "likes", graph.Out, graph.OrderKey, 0))
			if c.want == 0 {
				wantNode(t, h, n, nil)
				wantEdges(t, "likes", likes, nil)
				return
			}
			wantNode(t, h, n, &graph.Node{Key: n, Props: graph.Props{"age": int64(c.want)}, EventTime: h.at(c.want)})
			wantEdges(t, "likes", likes, []graph.Edge{edge("likes", o, x, h.at(c.want), graph.Props{"rating": int64(c.want)})})
		})
	}
}

// testNodeDelete: deleting a node hides, as soon as Apply returns, every
// edge at it, in both directions and whether or not the edge type keeps a
// reverse index, whatever the edges' versions; it destroys none. When the
// node is written again, the edges that were not deleted themselves are
// seen again (a row of another table still pointing at a re-inserted row),
// and those deleted meanwhile stay deleted.
func testNodeDelete(t *testing.T, h *harness) {
	x, y, z, it, tg := h.user("x"), h.user("y"), h.user("z"), h.liveItem(t, "i"), h.liveTag(t, "t")
	h.apply(t,
		upN(x, h.at(1), graph.Props{"name": "x"}),
		upE("follows", x, y, h.at(2), nil), // out, reverse-indexed type
		upE("follows", z, x, h.at(2), nil), // in, reverse-indexed type
		upE("blocks", z, x, h.at(2), nil),  // in, type without reverse index
		upE("likes", x, it, h.at(2), nil),  // out, type without reverse index
		upE("tagged", x, tg, h.at(2), nil),
		upE("follows", z, y, h.at(2), nil),  // unrelated: must stay
		upE("follows", y, x, h.at(20), nil), // newer than the delete: hidden too
	)
	h.apply(t, delN(x, h.at(10)))
	wantNode(t, h, x, nil)
	empty := []graph.AdjacencyQuery{
		q(x, "follows", graph.Out, graph.OrderKey, 10),
		q(x, "follows", graph.In, graph.OrderLatest, 10),
		q(x, "likes", graph.Out, graph.OrderKey, 10),
		q(x, "tagged", graph.Out, graph.OrderLatest, 10),
		q(tg, "tagged", graph.In, graph.OrderLatest, 10),
		q(z, "blocks", graph.Out, graph.OrderKey, 10),
	}
	for _, query := range empty {
		wantEdges(t, fmt.Sprintf("%s %s of %s after deleting x", query.EdgeType, query.Direction, query.Node), h.one(t, query), nil)
	}
	wantEdges(t, "follows out of z", h.one(t, q(z, "follows", graph.Out, graph.OrderKey, 10)),
		[]graph.Edge{edge("follows", z, y, h.at(2), nil)})
	wantEdges(t, "follows into y", h.one(t, q(y, "follows", graph.In, graph.OrderKey, 10)),
		[]graph.Edge{edge("follows", z, y, h.at(2), nil)})

	// While x is deleted: one of its edges is deleted, another written.
	h.apply(t,
		delE("follows", z, x, h.at(12)),
		upE("follows", x, z, h.at(5), nil),
		upE("blocks", y, x, h.at(10), nil),
	)
	wantEdges(t, "follows out of x while deleted", h.one(t, q(x, "follows", graph.Out, graph.OrderKey, 10)), nil)
	wantEdges(t, "blocks out of y while x is deleted", h.one(t, q(y, "blocks", graph.Out, graph.OrderKey, 10)), nil)
	// An upsert older than the delete does not bring x back.
	h.apply(t, upN(x, h.at(9), graph.Props{"name": "old"}))
	wantNode(t, h, x, nil)
	wantEdges(t, "follows out of x after an older upsert", h.one(t, q(x, "follows", graph.Out, graph.OrderKey, 10)), nil)

	// Re-inserted: every edge not deleted itself is back.
	h.apply(t, upN(x, h.at(30), graph.Props{"name": "x2"}))
	wantNode(t, h, x, &graph.Node{Key: x, Props: graph.Props{"name": "x2"}, EventTime: h.at(30)})
	wantEdges(t, "follows out of x after re-insert", h.one(t, q(x, "follows", graph.Out, graph.OrderKey, 10)), []graph.Edge{
		edge("follows", x, y, h.at(2), nil), edge("follows", x, z, h.at(5), nil)})
	wantEdges(t, "follows into x after re-insert", h.one(t, q(x, "follows", graph.In, graph.OrderLatest, 10)), []graph.Edge{
		edge("follows", y, x, h.at(20), nil)})
	wantEdges(t, "blocks out of z after re-insert", h.one(t, q(z, "blocks", graph.Out, graph.OrderKey, 10)), []graph.Edge{
		edge("blocks", z, x, h.at(2), nil)})
	wantEdges(t, "blocks out of y after re-insert", h.one(t, q(y, "blocks", graph.Out, graph.OrderKey, 10)), []graph.Edge{
		edge("blocks", y, x, h.at(10), nil)})
	wantEdges(t, "likes out of x after re-insert", h.one(t, q(x, "likes", graph.Out, graph.OrderKey, 10)), []graph.Edge{
		edge("likes", x, it, h.at(2), nil)})
	wantEdges(t, "tagged into t after re-insert", h.one(t, q(tg, "tagged", graph.In, graph.OrderLatest, 10)), []graph.Edge{
		edge("tagged", x, tg, h.at(2), nil)})

	// Deleting the item hides x's like of it; x's other edges stay.
	h.apply(t, delN(it, h.at(40)))
	wantEdges(t, "likes out of x after deleting the item", h.one(t, q(x, "likes", graph.Out, graph.OrderKey, 10)), nil)
	wantEdges(t, "tagged out of x after deleting the item", h.one(t, q(x, "tagged", graph.Out, graph.OrderKey, 10)), []graph.Edge{
		edge("tagged", x, tg, h.at(2), nil)})
}

// testEdgeNeedsItsEnds: an edge is seen only while both its end nodes
// exist; an end of an implicit type (users, items here) need only not be
// deleted. A tag never written hides its edges until it is written, in
// whichever order the two arrive.
func testEdgeNeedsItsEnds(t *testing.T, h *harness) {
	u, v, it, tg := h.user("u"), h.user("v"), h.item("i"), h.tag("late")
	h.apply(t,
		upE("likes", u, tg, h.at(2), graph.Props{"rating": int64(4)}),
		upE("tagged", it, tg, h.at(2), nil),
		upE("follows", u, v, h.at(2), nil), // two implicit ends, neither written
		upE("likes", u, it, h.at(2), nil),
	)
	wantEdges(t, "likes out of u before the tag exists", h.one(t, q(u, "likes", graph.Out, graph.OrderKey, 0)), []graph.Edge{
		edge("likes", u, it, h.at(2), nil)})
	wantEdges(t, "tagged into the tag before it exists", h.one(t, q(tg, "tagged", graph.In, graph.OrderLatest, 0)), nil)
	wantEdges(t, "tagged out of the item before the tag exists", h.one(t, q(it, "tagged", graph.Out, graph.OrderKey, 0)), nil)
	wantEdges(t, "follows between implicit nodes", h.one(t, q(v, "follows", graph.In, graph.OrderKey, 0)), []graph.Edge{
		edge("follows", u, v, h.at(2), nil)})
	// The tag arrives, older than its edges: they are seen.
	h.apply(t, upN(tg, h.at(1), graph.Props{"label": "late"}))
	wantEdges(t, "likes out of u once the tag exists", h.one(t, q(u, "likes", graph.Out, graph.OrderLatest, 0)), []graph.Edge{
		edge("likes", u, it, h.at(2), nil), edge("likes", u, tg, h.at(2), graph.Props{"rating": int64(4)})})
	wantEdges(t, "tagged into the tag once it exists", h.one(t, q(tg, "tagged", graph.In, graph.OrderLatest, 0)), []graph.Edge{
		edge("tagged", it, tg, h.at(2), nil)})
	wantEdges(t, "tagged out of the item once the tag exists", h.one(t, q(it, "tagged", graph.Out, graph.OrderKey, 0)), []graph.Edge{
		edge("tagged", it, tg, h.at(2), nil)})
	// An implicit node deleted hides its edges; written again, it shows them.
	h.apply(t, delN(v, h.at(3)))
	wantEdges(t, "follows out of u after deleting v", h.one(t, q(u, "follows", graph.Out, graph.OrderKey, 0)), nil)
	h.apply(t, upN(v, h.at(4), nil))
	wantEdges(t, "follows out of u after writing v", h.one(t, q(u, "follows", graph.Out, graph.OrderKey, 0)), []graph.Edge{
		edge("follows", u, v, h.at(2), nil)})
	// A node that does not exist has no edges, even from its own side.
	ghost := h.tag("ghost")
	h.apply(t, upE("tagged", it, ghost, h.at(5), nil))
	wantEdges(t, "tagged into a ghost tag", h.one(t, q(ghost, "tagged", graph.In, graph.OrderKey, 0)), nil)
}

// testPurge: a purge removes a node and every edge at it written at or
// before it, for good: writing the node again does not bring them back, and
// late edges of those versions are not kept. Edges written after the purge
// are kept, and other nodes' edges are untouched.
func testPurge(t *testing.T, h *harness) {
	x, y, z, it, tg := h.user("x"), h.user("y"), h.user("z"), h.liveItem(t, "i"), h.liveTag(t, "t")
	h.apply(t,
		upN(x, h.at(1), graph.Props{"name": "x"}),
		upE("follows", x, y, h.at(2), nil),
		upE("follows", z, x, h.at(2), nil),
		upE("blocks", z, x, h.at(2), nil),
		upE("likes", x, it, h.at(2), nil),
		upE("tagged", x, tg, h.at(2), nil),
		upE("follows", z, y, h.at(2), nil),
	)
	h.apply(t, graph.Mutation{Op: graph.OpPurgeNode, Node: x, EventTime: h.at(10)})
	wantNode(t, h, x, nil)
	// Written again later, and late edges older than the purge arrive.
	h.apply(t,
		upN(x, h.at(20), graph.Props{"name": "x2"}),
		upE("follows", y, x, h.at(5), nil),
		upE("follows", x, z, h.at(10), nil),
		upE("follows", x, y, h.at(25), graph.Props{"since": int64(2)}),
	)
	wantNode(t, h, x, &graph.Node{Key: x, Props: graph.Props{"name": "x2"}, EventTime: h.at(20)})
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		wantEdges(t, "follows out of x", h.one(t, q(x, "follows", graph.Out, order, 0)), []graph.Edge{
			edge("follows", x, y, h.at(25), graph.Props{"since": int64(2)})})
		wantEdges(t, "follows into x", h.one(t, q(x, "follows", graph.In, order, 0)), nil)
		wantEdges(t, "follows into y", h.one(t, q(y, "follows", graph.In, order, 0)), []graph.Edge{
			edge("follows", x, y, h.at(25), graph.Props{"since": int64(2)}), edge("follows", z, y, h.at(2), nil)})
	}
	wantEdges(t, "blocks out of z", h.one(t, q(z, "blocks", graph.Out, graph.OrderKey, 0)), nil)
	wantEdges(t, "likes out of x", h.one(t, q(x, "likes", graph.Out, graph.OrderKey, 0)), nil)
	wantEdges(t, "tagged into t", h.one(t, q(tg, "tagged", graph.In, graph.OrderKey, 0)), nil)
}

// testPurgePosition: edges of the purge's very event time are decided by
// position, whether they were written before the purge arrived or after:
// those at or before the purge's position are gone for good, those after it
// stay (a physical delete of the purge's time must not take them).
func testPurgePosition(t *testing.T, h *harness) {
	x, y, z, w, it := h.user("x"), h.user("y"), h.user("z"), h.user("w"), h.liveItem(t, "i")
	h.apply(t,
		upN(x, h.at(1), graph.Props{"name": "x"}),
		atPos(upE("follows", x, y, h.at(10), nil), 6),
		atPos(upE("follows", x, z, h.at(10), nil), 5),
		atPos(upE("follows", w, x, h.at(10), nil), 7),
		atPos(upE("likes", x, it, h.at(10), nil), 4),
	)
	h.apply(t, atPos(graph.Mutation{Op: graph.OpPurgeNode, Node: x, EventTime: h.at(10)}, 5))
	// Arriving after the purge, of its very time.
	h.apply(t,
		atPos(upE("blocks", x, w, h.at(10), nil), 9),
		atPos(upE("blocks", x, z, h.at(10), nil), 3),
		upN(x, h.at(20), graph.Props{"name": "x2"}),
	)
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		wantEdges(t, "follows out of x", h.one(t, q(x, "follows", graph.Out, order, 0)), []graph.Edge{
			edge("follows", x, y, h.at(10), nil)})
		wantEdges(t, "follows into y", h.one(t, q(y, "follows", graph.In, order, 0)), []graph.Edge{
			edge("follows", x, y, h.at(10), nil)})
		wantEdges(t, "follows into z", h.one(t, q(z, "follows", graph.In, order, 0)), nil)
		wantEdges(t, "follows into x", h.one(t, q(x, "follows", graph.In, order, 0)), []graph.Edge{
			edge("follows", w, x, h.at(10), nil)})
		wantEdges(t, "follows out of w", h.one(t, q(w, "follows", graph.Out, order, 0)), []graph.Edge{
			edge("follows", w, x, h.at(10), nil)})
		wantEdges(t, "likes out of x", h.one(t, q(x, "likes", graph.Out, order, 0)), nil)
		wantEdges(t, "blocks out of x", h.one(t, q(x, "blocks", graph.Out, order, 0)), []graph.Edge{
			edge("blocks", x, w, h.at(10), nil)})
	}
}

func truncN(typ string, at time.Time) graph.Mutation {
	return graph.Mutation{Op: graph.OpTruncateType, Node: graph.NodeKey{Type: typ}, EventTime: at}
}

// testTruncate: a truncate of a type deletes every node of it whose newest
// upsert is not after the truncate, in any arrival order, hides their
// edges, and leaves nodes written after it live; only the newest truncate
// of a type counts.
func testTruncate(t *testing.T, h *harness) {
	it := h.liveItem(t, "i")
	row := func(id string) graph.NodeKey { return graph.NodeKey{Type: "row", ID: h.ns + "-" + id} }
	t1, t2, t3 := row("t1"), row("t2"), row("t3")
	h.apply(t,
		upN(t1, h.at(1), graph.Props{"label": "one"}),
		upN(t2, h.at(5), graph.Props{"label": "two"}),
		upE("lists", it, t1, h.at(2), nil),
		upE("lists", it, t2, h.at(6), nil),
	)
	h.apply(t, atPos(truncN("row", h.at(3)), 5))
	// Arriving after the truncate: an upsert older than it, one of its
	// very time and an earlier position, and an older truncate.
	h.apply(t,
		upN(t3, h.at(2), graph.Props{"label": "three"}),
		atPos(upN(t1, h.at(3), graph.Props{"label": "tie"}), 4),
		truncN("row", h.at(1)),
	)
	got, err := h.s.GetNodes(context.Background(), []graph.NodeKey{t1, t2, t3})
	if err != nil {
		t.Fatalf("get nodes: %v", err)
	}
	if _, ok := got[t2]; len(got) != 1 || !ok {
		t.Fatalf("nodes after the truncate: got %v, want only %s", got, t2)
	}
	wantNode(t, h, t2, &graph.Node{Key: t2, Props: graph.Props{"label": "two"}, EventTime: h.at(5)})
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		wantEdges(t, "lists out of i", h.one(t, q(it, "lists", graph.Out, order, 0)),
			[]graph.Edge{edge("lists", it, t2, h.at(6), nil)})
		wantEdges(t, "lists into t1", h.one(t, q(t1, "lists", graph.In, order, 0)), nil)
		wantEdges(t, "lists into t2", h.one(t, q(t2, "lists", graph.In, order, 0)),
			[]graph.Edge{edge("lists", it, t2, h.at(6), nil)})
	}
	// Written again after the truncate (same time, later position): t1 is
	// back, and with it its edge, which no delete removed.
	h.apply(t, atPos(upN(t1, h.at(3), graph.Props{"label": "again"}), 6))
	wantNode(t, h, t1, &graph.Node{Key: t1, Props: graph.Props{"label": "again"}, EventTime: h.at(3)})
	wantNode(t, h, t3, nil)
	wantEdges(t, "lists out of i after t1 is written again", h.one(t, q(it, "lists", graph.Out, graph.OrderKey, 0)),
		[]graph.Edge{edge("lists", it, t1, h.at(2), nil), edge("lists", it, t2, h.at(6), nil)})
	// A newer truncate takes everything written up to it.
	h.apply(t, truncN("row", h.at(10)))
	wantNode(t, h, t1, nil)
	wantNode(t, h, t2, nil)
	wantEdges(t, "lists out of i after the second truncate", h.one(t, q(it, "lists", graph.Out, graph.OrderKey, 0)), nil)
	// Rejected: an implicit type, and a truncate naming a node.
	for _, m := range []graph.Mutation{truncN("user", h.at(11)), {Op: graph.OpTruncateType, Node: t1, EventTime: h.at(11)}} {
		if err := h.s.Apply(context.Background(), []graph.Mutation{m}); err == nil {
			t.Fatalf("apply %+v: accepted, want a schema error", m)
		}
	}
}

// testKeep: an upsert that keeps properties (values its source did not
// send) takes them from the stored node when that node is live and not
// newer, within one Apply call too; a redelivery changes nothing; a kept
// property of a deleted, truncated or missing node is absent.
func testKeep(t *testing.T, h *harness) {
	keep := func(m graph.Mutation, names ...string) graph.Mutation { m.Keep = names; return m }
	u, v, w := h.user("u"), h.user("v"), h.user("w")
	h.apply(t, upN(u, h.at(1), graph.Props{"name": "long text", "age": int64(1)}))
	upd := atPos(keep(upN(u, h.at(2), graph.Props{"age": int64(2)}), "name"), 3)
	h.apply(t, upd)
	want := &graph.Node{Key: u, Props: graph.Props{"name": "long text", "age": int64(2)}, EventTime: h.at(2)}
	wantNode(t, h, u, want)
	// Redelivered, both; then the older keeping upsert again.
	h.apply(t, upN(u, h.at(1), graph.Props{"name": "long text", "age": int64(1)}), upd)
	h.apply(t, upd)
	wantNode(t, h, u, want)
	// Two keeping upserts in a row, the second in the same call as a full one.
	h.apply(t, keep(upN(u, h.at(3), graph.Props{"age": int64(3)}), "name", "score"))
	h.apply(t, upN(u, h.at(4), graph.Props{"name": "new", "score": 0.5}),
		keep(upN(u, h.at(5), graph.Props{"age": int64(5)}), "name", "score", "vip"))
	wantNode(t, h, u, &graph.Node{Key: u, Props: graph.Props{"name": "new", "score": 0.5, "age": int64(5)}, EventTime: h.at(5)})
	// Older than the stored node: it loses, as any older upsert.
	h.apply(t, keep(upN(u, h.at(4), graph.Props{"age": int64(9)}), "name"))
	wantNode(t, h, u, &graph.Node{Key: u, Props: graph.Props{"name": "new", "score": 0.5, "age": int64(5)}, EventTime: h.at(5)})
	// A deleted node keeps nothing; nor does a node never written.
	h.apply(t, upN(v, h.at(1), graph.Props{"name": "v"}))
	h.apply(t, delN(v, h.at(2)))
	h.apply(t, keep(upN(v, h.at(3), graph.Props{"age": int64(3)}), "name"))
	wantNode(t, h, v, &graph.Node{Key: v, Props: graph.Props{"age": int64(3)}, EventTime: h.at(3)})
	h.apply(t, keep(upN(w, h.at(3), graph.Props{"age": int64(3)}), "name"))
	wantNode(t, h, w, &graph.Node{Key: w, Props: graph.Props{"age": int64(3)}, EventTime: h.at(3)})
	// A truncated node keeps nothing.
	tg := graph.NodeKey{Type: "doc", ID: h.ns + "-k"}
	h.apply(t, upN(tg, h.at(0), graph.Props{"label": "k"}))
	h.apply(t, truncN("doc", h.at(1)))
	h.apply(t, keep(upN(tg, h.at(2), nil), "label"))
	wantNode(t, h, tg, &graph.Node{Key: tg, Props: graph.Props{}, EventTime: h.at(2)})
	// Rejected: a kept property that is also written, or not declared, or
	// kept by an edge upsert.
	for _, m := range []graph.Mutation{
		keep(upN(u, h.at(9), graph.Props{"age": int64(1)}), "age"),
		keep(upN(u, h.at(9), nil), "nope"),
		keep(upE("follows", u, v, h.at(9), nil), "weight"),
	} {
		if err := h.s.Apply(context.Background(), []graph.Mutation{m}); err == nil {
			t.Fatalf("apply %+v: accepted, want a schema error", m)
		}
	}
}

func testTTL(t *testing.T, h *harness) {
	u, live, gone, later := h.user("u"), h.liveItem(t, "live"), h.liveItem(t, "gone"), h.liveItem(t, "later")
	liveAt := h.now.Add(-20 * time.Minute)
	goneAt := h.now.Add(-3 * time.Hour)
	h.apply(t,
		upE("viewed", u, live, liveAt, graph.Props{"ms": int64(1)}),
		upE("viewed", u, gone, goneAt, graph.Props{"ms": int64(2)}),
		// Two versions, both expired: neither shows.
		upE("viewed", u, later, h.now.Add(-200*time.Minute), nil),
		upE("viewed", u, later, h.now.Add(-90*time.Minute), nil),
		// Edge types without TTL never expire, however old.
		upE("follows", u, h.user("v"), h.base.Add(-3*365*24*time.Hour), nil),
		upN(h.user("u"), goneAt, graph.Props{"name": "nodes never expire"}),
	)
	want := edge("viewed", u, live, liveAt, graph.Props{"ms": int64(1)})
	want.ExpiresAt = want.EventTime.Add(time.Hour)
	for _, order := range []graph.Order{graph.OrderLatest, graph.OrderKey} {
		wantEdges(t, "viewed out of u", h.one(t, q(u, "viewed", graph.Out, order, 0)), []graph.Edge{want})
	}
	wantEdges(t, "viewed into live", h.one(t, q(live, "viewed", graph.In, graph.OrderLatest, 0)), []graph.Edge{want})
	wantEdges(t, "viewed into gone", h.one(t, q(gone, "viewed", graph.In, graph.OrderLatest, 0)), nil)
	wantEdges(t, "viewed into later", h.one(t, q(later, "viewed", graph.In, graph.OrderKey, 0)), nil)
	if got := h.one(t, q(u, "follows", graph.Out, graph.OrderKey, 0)); len(got) != 1 {
		t.Fatalf("follows out of u: got %s, want the one old edge", edgesString(got))
	}
	wantNode(t, h, u, &graph.Node{Key: u, Props: graph.Props{"name": "nodes never expire"}, EventTime: goneAt.Truncate(time.Microsecond)})
	// Replaying the expired upsert does not bring it back.
	h.apply(t, upE("viewed", u, gone, goneAt, graph.Props{"ms": int64(2)}))
	wantEdges(t, "viewed into gone after replay", h.one(t, q(gone, "viewed", graph.In, graph.OrderLatest, 0)), nil)
	// A newer live upsert of an expired edge makes it visible again.
	renewAt := h.now.Add(-time.Minute)
	h.apply(t, upE("viewed", u, gone, renewAt, nil))
	renewed := edge("viewed", u, gone, renewAt, nil)
	renewed.ExpiresAt = renewed.EventTime.Add(time.Hour)
	wantEdges(t, "viewed into gone after renewal", h.one(t, q(gone, "viewed", graph.In, graph.OrderLatest, 0)), []graph.Edge{renewed})
}

func testBothDirections(t *testing.T, h *harness) {
	a, b, c, it := h.user("a"), h.user("b"), h.user("c"), h.liveItem(t, "i")
	h.liveTag(t, "t")
	h.apply(t,
		upE("follows", a, b, h.at(1), graph.Props{"weight": 1.0}),
		upE("follows", c, b, h.at(2), graph.Props{"weight": 2.0}),
		upE("follows", b, a, h.at(3), nil),
		upE("tagged", it, h.tag("t"), h.at(4), nil),
		upE("tagged", a, h.tag("t"), h.at(5), nil),
	)
	ab := edge("follows", a, b, h.at(1), graph.Props{"weight": 1.0})
	cb := edge("follows", c, b, h.at(2), graph.Props{"weight": 2.0})
	ba := edge("follows", b, a, h.at(3), nil)
	wantEdges(t, "out of a", h.one(t, q(a, "follows", graph.Out, graph.OrderKey, 0)), []graph.Edge{ab})
	wantEdges(t, "into b, key order", h.one(t, q(b, "follows", graph.In, graph.OrderKey, 0)), []graph.Edge{ab, cb})
	wantEdges(t, "into b, latest first", h.one(t, q(b, "follows", graph.In, graph.OrderLatest, 0)), []graph.Edge{cb, ab})
	wantEdges(t, "out of b", h.one(t, q(b, "follows", graph.Out, graph.OrderKey, 0)), []graph.Edge{ba})
	wantEdges(t, "into a", h.one(t, q(a, "follows", graph.In, graph.OrderKey, 0)), []graph.Edge{ba})
	// Ends of several node types: key order sorts by type, then id.
	wantEdges(t, "tagged into t", h.one(t, q(h.tag("t"), "tagged", graph.In, graph.OrderKey, 0)), []graph.Edge{
		edge("tagged", it, h.tag("t"), h.at(4), nil),
		edge("tagged", a, h.tag("t"), h.at(5), nil),
	})
	// An edge deleted disappears from both sides.
	h.apply(t, delE("follows", a, b, h.at(9)))
	wantEdges(t, "into b after delete", h.one(t, q(b, "follows", graph.In, graph.OrderKey, 0)), []graph.Edge{cb})
	wantEdges(t, "out of a after delete", h.one(t, q(a, "follows", graph.Out, graph.OrderKey, 0)), nil)
}

func testSinceUntil(t *testing.T, h *harness) {
	hub := h.user("hub")
	var muts []graph.Mutation
	var all []graph.Edge
	for i := range 10 {
		to := h.user(fmt.Sprintf("n%d", i))
		muts = append(muts, upE("follows", hub, to, h.at(i*10), nil))
		all = append(all, edge("follows", hub, to, h.at(i*10), nil))
	}
	h.apply(t, muts...)
	window := all[3:7] // since at(30) inclusive, until at(70) exclusive
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		for _, limit := range []int{1, 3, 10} {
			query := q(hub, "follows", graph.Out, order, limit)
			want := slices.Clone(window)
			open := slices.Clone(all[3:])
			if order == graph.OrderLatest {
				slices.Reverse(want)
				slices.Reverse(open)
			}
			query.Since, query.Until = h.at(30), h.at(70)
			wantEdges(t, fmt.Sprintf("window %s limit %d", order, limit), h.all(t, query), want)
			query.Since, query.Until = h.at(30), time.Time{}
			wantEdges(t, fmt.Sprintf("since only %s limit %d", order, limit), h.all(t, query), open)
			query.Since, query.Until = time.Time{}, h.at(30)
			before := slices.Clone(all[:3])
			if order == graph.OrderLatest {
				slices.Reverse(before)
			}
			wantEdges(t, fmt.Sprintf("until only %s limit %d", order, limit), h.all(t, query), before)
		}
	}
	// The same bounds on the reverse side.
	n5 := h.user("n5")
	in := q(n5, "follows", graph.In, graph.OrderLatest, 5)
	in.Since, in.Until = h.at(50), h.at(51)
	wantEdges(t, "into n5 inside window", h.all(t, in), []graph.Edge{all[5]})
	in.Since, in.Until = h.at(51), h.at(60)
	wantEdges(t, "into n5 outside window", h.all(t, in), nil)
	in.Since, in.Until = h.at(50), h.at(50)
	wantEdges(t, "empty window", h.all(t, in), nil)
	// Bounds finer than the stored microseconds: the edge at exactly 50 s
	// is before a Since half a microsecond later, and before such an Until.
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		in.Order = order
		in.Since, in.Until = h.at(50).Add(500*time.Nanosecond), time.Time{}
		wantEdges(t, "since just after the edge", h.all(t, in), nil)
		in.Since, in.Until = time.Time{}, h.at(50).Add(500*time.Nanosecond)
		wantEdges(t, "until just after the edge", h.all(t, in), []graph.Edge{all[5]})
	}
}

// testSupernode pages through a node with many edges, in both orders and
// both directions, checking that every edge comes exactly once and in order.
// Event times repeat every 7 edges so OrderLatest must break ties by key.
func testSupernode(t *testing.T, h *harness, opts Options) {
	hub := h.user("hub")
	n := opts.SupernodeEdges
	var out, in []graph.Edge
	batch := make([]graph.Mutation, 0, 500)
	flush := func() {
		if len(batch) > 0 {
			h.apply(t, batch...)
			batch = batch[:0]
		}
	}
	for i := range n {
		other := h.user(fmt.Sprintf("n%06d", (i*7919)%n)) // written out of key order
		at := h.at(i % 7)
		batch = append(batch, upE("follows", hub, other, at, graph.Props{"since": int64(i)}),
			upE("follows", other, hub, at, graph.Props{"since": int64(i)}))
		out = append(out, edge("follows", hub, other, at, graph.Props{"since": int64(i)}))
		in = append(in, edge("follows", other, hub, at, graph.Props{"since": int64(i)}))
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	sortKey := func(dir graph.Direction) func(a, b graph.Edge) int {
		return func(a, b graph.Edge) int {
			if dir == graph.Out {
				return memstore.CompareNodeKeys(a.Key.To, b.Key.To)
			}
			return memstore.CompareNodeKeys(a.Key.From, b.Key.From)
		}
	}
	for _, dir := range []graph.Direction{graph.Out, graph.In} {
		want := out
		if dir == graph.In {
			want = in
		}
		byKey := slices.Clone(want)
		slices.SortFunc(byKey, sortKey(dir))
		latest := slices.Clone(want)
		slices.SortStableFunc(latest, func(a, b graph.Edge) int {
			if c := b.EventTime.Compare(a.EventTime); c != 0 {
				return c
			}
			return sortKey(dir)(a, b)
		})
		wantEdges(t, fmt.Sprintf("supernode %s key order", dir), h.all(t, q(hub, "follows", dir, graph.OrderKey, opts.PageLimit)), byKey)
		wantEdges(t, fmt.Sprintf("supernode %s latest first", dir), h.all(t, q(hub, "follows", dir, graph.OrderLatest, opts.PageLimit)), latest)
		// A first page alone is the head of the full order.
		page, err := h.s.Adjacency(context.Background(), q(hub, "follows", dir, graph.OrderLatest, 7))
		if err != nil {
			t.Fatal(err)
		}
		wantEdges(t, "first page of 7", page.Edges, latest[:min(7, len(latest))])
		if len(latest) > 7 && page.Next == nil {
			t.Fatalf("first page of %d edges has no cursor", len(latest))
		}
	}
}

// testCursorSurvivesWrites interleaves writes between pages: every edge that
// exists unchanged during the whole scan comes back exactly once, in order.
func testCursorSurvivesWrites(t *testing.T, h *harness) {
	hub := h.user("hub")
	var muts []graph.Mutation
	for i := range 60 {
		muts = append(muts, upE("follows", hub, h.user(fmt.Sprintf("n%03d", i*2)), h.at(100+i), nil))
	}
	h.apply(t, muts...)
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		query := q(hub, "follows", graph.Out, order, 7)
		seen := map[graph.EdgeKey]int{}
		var got []graph.Edge
		for round := 0; ; round++ {
			page, err := h.s.Adjacency(context.Background(), query)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Edges {
				seen[e.Key]++
			}
			got = append(got, page.Edges...)
			if page.Next == nil {
				break
			}
			query.Cursor = page.Next
			// Interleave: new keys between existing ones, newer and
			// older than everything, and a change to an edge already seen.
			odd := h.user(fmt.Sprintf("n%03d", round*8+1))
			h.apply(t,
				upE("follows", hub, odd, h.at(100+round*8), nil),
				upE("follows", hub, h.user(fmt.Sprintf("z%03d-%d", round, order)), h.at(1000+round), nil),
				upE("follows", hub, h.user(fmt.Sprintf("a%03d-%d", round, order)), h.at(round), nil),
			)
		}
		for i := range 60 {
			k := graph.EdgeKey{Type: "follows", From: hub, To: h.user(fmt.Sprintf("n%03d", i*2))}
			if seen[k] != 1 {
				t.Fatalf("order %s: unchanged edge %v seen %d times", order, k.To, seen[k])
			}
		}
		for k, c := range seen {
			if c != 1 {
				t.Fatalf("order %s: edge %v seen %d times", order, k.To, c)
			}
		}
		checkSorted(t, got, order, graph.Out)
	}
}

func checkSorted(t tb, es []graph.Edge, order graph.Order, dir graph.Direction) {
	t.Helper()
	for i := 1; i < len(es); i++ {
		a, b := es[i-1], es[i]
		na, nb := a.Key.To, b.Key.To
		if dir == graph.In {
			na, nb = a.Key.From, b.Key.From
		}
		c := memstore.CompareNodeKeys(na, nb)
		if order == graph.OrderLatest {
			if tc := b.EventTime.Compare(a.EventTime); tc != 0 {
				c = tc
			}
		}
		if c >= 0 {
			t.Fatalf("order %s: %s before %s", order, edgeString(a), edgeString(b))
		}
	}
}

// testCursorConcurrent pages while another goroutine writes to the same
// node; run under -race it also checks the backend's synchronisation.
func testCursorConcurrent(t *testing.T, h *harness) {
	hub := h.user("hub")
	var muts []graph.Mutation
	stable := map[graph.EdgeKey]bool{}
	for i := range 200 {
		to := h.user(fmt.Sprintf("s%04d", i))
		muts = append(muts, upE("follows", hub, to, h.at(i), nil))
		stable[graph.EdgeKey{Type: "follows", From: hub, To: to}] = true
	}
	h.apply(t, muts...)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var writeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil && i < 2000; i++ {
			to := h.user(fmt.Sprintf("s%04d-w%d", i%200, i))
			err := h.s.Apply(ctx, []graph.Mutation{upE("follows", hub, to, h.at(i%300), nil)})
			if err != nil && ctx.Err() == nil {
				writeErr = err
				return
			}
		}
	}()
	for _, order := range []graph.Order{graph.OrderKey, graph.OrderLatest} {
		seen := map[graph.EdgeKey]int{}
		var got []graph.Edge
		query := q(hub, "follows", graph.Out, order, 13)
		for {
			page, err := h.s.Adjacency(context.Background(), query)
			if err != nil {
				cancel()
				wg.Wait()
				t.Fatal(err)
			}
			for _, e := range page.Edges {
				seen[e.Key]++
			}
			got = append(got, page.Edges...)
			if page.Next == nil {
				break
			}
			query.Cursor = page.Next
		}
		for k := range stable {
			if seen[k] != 1 {
				cancel()
				wg.Wait()
				t.Fatalf("order %s: stable edge to %s seen %d times", order, k.To, seen[k])
			}
		}
		checkSorted(t, got, order, graph.Out)
	}
	cancel()
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("concurrent writer: %v", writeErr)
	}
}

func testBatchedGetNodes(t *testing.T, h *harness) {
	var keys []graph.NodeKey
	want := map[graph.NodeKey]graph.Node{}
	var muts []graph.Mutation
	for i := range 100 {
		k := h.user(fmt.Sprintf("u%03d", i))
		if i%3 == 1 {
			k = h.item(fmt.Sprintf("i%03d", i))
		}
		keys = append(keys, k)
		switch i % 10 {
		case 0: // never written
		case 5: // deleted
			muts = append(muts, upN(k, h.at(1), nil), delN(k, h.at(2)))
		default:
			p := graph.Props{}
			if k.Type == "user" {
				p["age"] = int64(i)
			} else {
				p["title"] = fmt.Sprint(i)
			}
			muts = append(muts, upN(k, h.at(i), p))
			want[k] = graph.Node{Key: k, Props: p, EventTime: h.at(i)}
		}
	}
	h.apply(t, muts...)
	// Duplicates and a key of another type with the same id are allowed.
	query := append(slices.Clone(keys), keys[:10]...)
	query = append(query, graph.NodeKey{Type: "tag", ID: keys[2].ID})
	got, err := h.s.GetNodes(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d nodes, want %d", len(got), len(want))
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || !nodeEqual(g, w) {
			t.Fatalf("node %s: got %+v (present %v), want %+v", k, g, ok, w)
		}
	}
	empty, err := h.s.GetNodes(context.Background(), nil)
	if err != nil || len(empty) != 0 {
		t.Fatalf("get no nodes: %v, %v", empty, err)
	}
}

func testInvalidQueries(t *testing.T, h *harness) {
	u, it := h.user("u"), h.item("i")
	cases := []struct {
		name  string
		query graph.AdjacencyQuery
	}{
		{"unknown edge type", q(u, "orbits", graph.Out, graph.OrderKey, 10)},
		{"in without reverse index", q(it, "likes", graph.In, graph.OrderKey, 10)},
		{"node type not at that end", q(it, "follows", graph.Out, graph.OrderKey, 10)},
		{"zero limit", q(u, "follows", graph.Out, graph.OrderKey, 0)},
		{"negative limit", q(u, "follows", graph.Out, graph.OrderKey, -1)},
		{"unknown direction", q(u, "follows", 0, graph.OrderKey, 10)},
		{"unknown order", q(u, "follows", graph.Out, 0, 10)},
		{"empty node id", q(graph.NodeKey{Type: "user"}, "follows", graph.Out, graph.OrderKey, 10)},
		{"since after until", graph.AdjacencyQuery{Node: u, EdgeType: "follows", Direction: graph.Out, Order: graph.OrderKey, Limit: 10, Since: h.at(2), Until: h.at(1)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.s.Adjacency(context.Background(), c.query)
			if !errors.Is(err, graph.ErrInvalidQuery) || graph.IsRetryable(err) {
				t.Fatalf("got %v, want a permanent error wrapping graph.ErrInvalidQuery", err)
			}
		})
	}
}

func testInvalidCursor(t *testing.T, h *harness) {
	hub := h.user("hub")
	h.apply(t, upE("follows", hub, h.user("a"), h.at(1), nil), upE("follows", hub, h.user("b"), h.at(2), nil))
	page, err := h.s.Adjacency(context.Background(), q(hub, "follows", graph.Out, graph.OrderKey, 1))
	if err != nil || page.Next == nil {
		t.Fatalf("first page: %v, next %x", err, page.Next)
	}
	cases := map[string][]byte{
		"garbage":   []byte("not a cursor"),
		"one byte":  {0xff},
		"empty":     {},
		"truncated": page.Next[:len(page.Next)-1],
	}
	for name, cur := range cases {
		t.Run(name, func(t *testing.T) {
			query := q(hub, "follows", graph.Out, graph.OrderKey, 1)
			query.Cursor = cur
			_, err := h.s.Adjacency(context.Background(), query)
			if !errors.Is(err, graph.ErrInvalidCursor) || graph.IsRetryable(err) {
				t.Fatalf("cursor %x: got %v, want a permanent error wrapping graph.ErrInvalidCursor", cur, err)
			}
		})
	}
}

func testCancelledContext(t *testing.T, h *harness) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	u := h.user("u")
	checks := map[string]error{
		"apply": h.s.Apply(ctx, []graph.Mutation{upN(u, h.at(1), nil)}),
	}
	_, checks["get nodes"] = h.s.GetNodes(ctx, []graph.NodeKey{u})
	_, checks["adjacency"] = h.s.Adjacency(ctx, q(u, "follows", graph.Out, graph.OrderKey, 1))
	for what, err := range checks {
		if !errors.Is(err, context.Canceled) || !graph.IsRetryable(err) {
			t.Fatalf("%s with a cancelled context: got %v, want retryable context.Canceled", what, err)
		}
	}
}

func testClosed(t *testing.T, h *harness) {
	u := h.user("u")
	if err := h.s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	checks := map[string]error{
		"apply": h.s.Apply(context.Background(), []graph.Mutation{upN(u, h.at(1), nil)}),
		"close": h.s.Close(),
	}
	_, checks["get nodes"] = h.s.GetNodes(context.Background(), []graph.NodeKey{u})
	_, checks["adjacency"] = h.s.Adjacency(context.Background(), q(u, "follows", graph.Out, graph.OrderKey, 1))
	for what, err := range checks {
		if !errors.Is(err, graph.ErrClosed) || graph.IsRetryable(err) {
			t.Fatalf("%s after close: got %v, want permanent graph.ErrClosed", what, err)
		}
	}
}

func testReopen(t *testing.T, h *harness, opts Options) {
	if opts.Reopen == nil {
		t.Skip("storetest: Options.Reopen not set; persistence across restarts not tested for this backend")
	}
	a, b, c := h.user("a"), h.user("b"), h.user("c")
	h.apply(t,
		upN(a, h.at(1), graph.Props{"name": "a"}),
		upN(c, h.at(1), nil),
		upE("follows", a, b, h.at(2), nil),
		upE("follows", a, c, h.at(2), nil),
		delN(c, h.at(3)),
		delE("follows", a, b, h.at(4)),
		upE("viewed", a, h.liveItem(t, "i"), h.now.Add(-time.Minute), nil),
	)
	h.s = opts.Reopen(t, h.s)
	wantNode(t, h, a, &graph.Node{Key: a, Props: graph.Props{"name": "a"}, EventTime: h.at(1)})
	wantNode(t, h, c, nil)
	wantEdges(t, "follows out of a", h.one(t, q(a, "follows", graph.Out, graph.OrderKey, 0)), nil)
	if got := h.one(t, q(a, "viewed", graph.Out, graph.OrderKey, 0)); len(got) != 1 {
		t.Fatalf("viewed out of a after reopen: %s", edgesString(got))
	}
	// Tombstones survive too: older writes still cannot resurrect.
	h.apply(t, upE("follows", a, b, h.at(3), nil), upE("follows", a, c, h.at(2), nil), upN(c, h.at(2), nil))
	wantNode(t, h, c, nil)
	wantEdges(t, "follows out of a after late writes", h.one(t, q(a, "follows", graph.Out, graph.OrderKey, 0)), nil)
}

// listPages pages a listing of typ to its end with limit, checking each
// page, and returns the nodes in order. between, when not nil, runs after
// the first page.
func (h *harness) listPages(t tb, typ string, limit int, between func()) []graph.Node {
	t.Helper()
	var out []graph.Node
	var cursor []byte
	for i := 0; i < 100000; i++ {
		page, err := h.s.ListNodes(context.Background(), graph.NodeListQuery{Type: typ, Limit: limit, Cursor: cursor})
		if err != nil {
			t.Fatalf("list %s (limit %d, page %d): %v", typ, limit, i, err)
		}
		if len(page.Nodes) > limit {
			t.Fatalf("list %s: page of %d nodes over the limit %d", typ, len(page.Nodes), limit)
		}
		for _, n := range page.Nodes {
			if n.Key.Type != typ {
				t.Fatalf("list %s: node %s of another type", typ, n.Key)
			}
		}
		out = append(out, page.Nodes...)
		if page.Next == nil {
			return out
		}
		cursor = page.Next
		if i == 0 && between != nil {
			between()
		}
	}
	t.Fatalf("list %s: no end after 100000 pages", typ)
	return nil
}

// testListNodes: a listing returns every node of its type that exists, each
// once, in one stable order whatever the page size; nodes written during
// the scan do not disturb the others; bad cursors and limits are refused.
func testListNodes(t *testing.T, h *harness) {
	entry := func(id string) graph.NodeKey { return graph.NodeKey{Type: "entry", ID: h.ns + "-" + id} }
	want := map[graph.NodeKey]graph.Node{}
	var muts []graph.Mutation
	ids := []string{"a", "a\x00", "a\x00b", "a\x01", "b/c", "%2F", "é", "z#?"}
	for i := range 30 {
		ids = append(ids, fmt.Sprintf("n%02d", i))
	}
	for i, id := range ids {
		k := entry(id)
		p := graph.Props{"label": id, "rank": int64(i)}
		muts = append(muts, upN(k, h.at(i), p))
		if i%7 == 3 {
			muts = append(muts, delN(k, h.at(100)))
			continue
		}
		want[k] = graph.Node{Key: k, Props: p, EventTime: h.at(i)}
	}
	// Users and items with the same ids are other types' nodes.
	muts = append(muts, upN(h.user("a"), h.at(1), nil), upN(h.item("a"), h.at(1), nil))
	h.apply(t, muts...)

	mine := func(nodes []graph.Node) []graph.Node {
		var out []graph.Node
		seen := map[graph.NodeKey]bool{}
		for _, n := range nodes {
			if seen[n.Key] {
				t.Fatalf("node %s listed twice", n.Key)
			}
			seen[n.Key] = true
			if strings.HasPrefix(n.Key.ID, h.ns+"-") {
				out = append(out, n)
			}
		}
		return out
	}
	var order []graph.NodeKey
	for _, limit := range []int{1, 3, 7, 1000} {
		got := mine(h.listPages(t, "entry", limit, nil))
		if len(got) != len(want) {
			t.Fatalf("limit %d: %d nodes listed, want %d", limit, len(got), len(want))
		}
		var keys []graph.NodeKey
		for _, n := range got {
			w, ok := want[n.Key]
			if !ok || !nodeEqual(n, w) {
				t.Fatalf("limit %d: listed %+v, want %+v (exists %v)", limit, n, w, ok)
			}
			keys = append(keys, n.Key)
		}
		if order == nil {
			order = keys
		} else if !slices.Equal(keys, order) {
			t.Fatalf("limit %d: order %v, want %v", limit, keys, order)
		}
	}

	// Writes during the scan: a node added and a node deleted after the
	// first page; every other node is still listed exactly once.
	added, gone := entry("added-later"), order[len(order)-1]
	got := mine(h.listPages(t, "entry", 4, func() {
		h.apply(t, upN(added, h.at(200), graph.Props{"label": "x"}), delN(gone, h.at(200)))
	}))
	listed := map[graph.NodeKey]bool{}
	for _, n := range got {
		listed[n.Key] = true
	}
	for k := range want {
		if k != gone && !listed[k] {
			t.Fatalf("node %s, unchanged during the scan, was not listed", k)
		}
	}

	// Refusals.
	page, err := h.s.ListNodes(context.Background(), graph.NodeListQuery{Type: "entry", Limit: 1})
	if err != nil || page.Next == nil {
		t.Fatalf("first page: %v, next %x", err, page.Next)
	}
	for name, q := range map[string]graph.NodeListQuery{
		"another type's cursor": {Type: "user", Limit: 1, Cursor: page.Next},
		"garbage cursor":        {Type: "entry", Limit: 1, Cursor: []byte("garbage")},
	} {
		if _, err := h.s.ListNodes(context.Background(), q); !errors.Is(err, graph.ErrInvalidCursor) {
			t.Errorf("%s: err %v, want ErrInvalidCursor", name, err)
		}
	}
	for name, q := range map[string]graph.NodeListQuery{
		"unknown type": {Type: "planet", Limit: 1},
		"zero limit":   {Type: "entry", Limit: 0},
	} {
		if _, err := h.s.ListNodes(context.Background(), q); !errors.Is(err, graph.ErrInvalidQuery) {
			t.Errorf("%s: err %v, want ErrInvalidQuery", name, err)
		}
	}
}
