package traverse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var base = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }

func user(id string) graph.NodeKey { return graph.NodeKey{Type: "user", ID: id} }
func item(id string) graph.NodeKey { return graph.NodeKey{Type: "item", ID: id} }
func tag(id string) graph.NodeKey  { return graph.NodeKey{Type: "tag", ID: id} }

func upN(k graph.NodeKey, sec int, p graph.Props) graph.Mutation {
	return graph.Mutation{Op: graph.OpUpsertNode, Node: k, Props: p, EventTime: at(sec)}
}

func upE(typ string, from, to graph.NodeKey, sec int, p graph.Props) graph.Mutation {
	return graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: typ, From: from, To: to}, Props: p, EventTime: at(sec)}
}

func newStore(t testing.TB, muts ...graph.Mutation) (*memstore.Store, *graph.Schema) {
	t.Helper()
	schema := storetest.Schema()
	s := memstore.New(schema, memstore.Options{Now: func() time.Time { return base.Add(30 * 24 * time.Hour) }})
	if len(muts) > 0 {
		if err := s.Apply(context.Background(), muts); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	return s, schema
}

func hop(edgeTypes ...string) Hop {
	h := Hop{Direction: Out, Limit: 300, NodeCap: 1000, Order: graph.OrderLatest}
	for _, et := range edgeTypes {
		h.Edges = append(h.Edges, EdgeSpec{Type: et})
	}
	return h
}

func req(start []graph.NodeKey, hops ...Hop) Request {
	return Request{Start: start, Hops: hops, MaxResults: 10000}
}

func edgeKeys(r *Result) []string {
	out := make([]string, len(r.Edges))
	for i, e := range r.Edges {
		out[i] = fmt.Sprintf("%d:%s>%s", e.Hop, e.Edge.Key.From.ID, e.Edge.Key.To.ID)
	}
	return out
}

func run(t *testing.T, e *Engine, r Request) *Result {
	t.Helper()
	res, err := e.Run(context.Background(), r)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

// fanout: a follows b, c, d (newest first: d, c, b); b follows e; c follows
// e and a (back to the start); d follows nobody.
func fanout(t *testing.T) (*memstore.Store, *graph.Schema) {
	return newStore(t,
		upN(user("a"), 1, graph.Props{"name": "A"}),
		upN(user("b"), 1, graph.Props{"name": "B", "vip": true}),
		upN(user("c"), 1, graph.Props{"name": "C"}),
		upN(user("e"), 1, graph.Props{"name": "E", "vip": true}),
		upE("follows", user("a"), user("b"), 10, graph.Props{"weight": 1.0}),
		upE("follows", user("a"), user("c"), 20, graph.Props{"weight": 2.0}),
		upE("follows", user("a"), user("d"), 30, graph.Props{"weight": 1.0}),
		upE("follows", user("b"), user("e"), 40, nil),
		upE("follows", user("c"), user("e"), 50, nil),
		upE("follows", user("c"), user("a"), 60, nil),
	)
}

func TestTwoHopsBreadthFirstWithDedup(t *testing.T) {
	s, schema := fanout(t)
	e := New(s, schema, Options{})
	res := run(t, e, req([]graph.NodeKey{user("a")}, hop("follows"), hop("follows")))
	want := []string{"1:a>d", "1:a>c", "1:a>b", "2:c>a", "2:c>e", "2:b>e"}
	if got := edgeKeys(res); !slices.Equal(got, want) {
		t.Fatalf("edges = %v, want %v", got, want)
	}
	var nodes []string
	for _, n := range res.Nodes {
		nodes = append(nodes, fmt.Sprintf("%d:%s:%s", n.Hop, n.Key.ID, n.Status))
	}
	// d was never upserted as a node: reached, but missing.
	wantNodes := []string{"0:a:found", "1:d:missing", "1:c:found", "1:b:found", "2:e:found"}
	if !slices.Equal(nodes, wantNodes) {
		t.Fatalf("nodes = %v, want %v", nodes, wantNodes)
	}
	if res.Nodes[4].Node.Props["name"] != "E" {
		t.Errorf("e props = %v", res.Nodes[4].Node.Props)
	}
	if res.Truncated() {
		t.Errorf("truncated: %+v", res.Hops)
	}
	for _, h := range res.Hops {
		if !h.UnreadExact || h.UnreadEdges != 0 || h.Continue != nil {
			t.Errorf("hop %d: %+v", h.Hop, h)
		}
	}
	if res.Hops[0].NewNodes != 3 || res.Hops[1].NewNodes != 1 || res.Hops[1].Edges != 3 {
		t.Errorf("hop accounting: %+v", res.Hops)
	}
	if res.StoreReads == 0 {
		t.Error("store reads not counted")
	}
}

func TestPaths(t *testing.T) {
	s, schema := fanout(t)
	r := req([]graph.NodeKey{user("a")}, hop("follows"), hop("follows"))
	r.IncludePaths = true
	res := run(t, New(s, schema, Options{}), r)
	var got []string
	for _, p := range res.Paths {
		var hops []string
		for _, i := range p {
			hops = append(hops, res.Edges[i].Edge.Key.From.ID+">"+res.Edges[i].Edge.Key.To.ID)
		}
		got = append(got, fmt.Sprint(hops))
	}
	want := []string{"[a>c c>a]", "[a>c c>e]", "[a>b b>e]"}
	if !slices.Equal(got, want) {
		t.Fatalf("paths = %v, want %v", got, want)
	}
}

func TestFilters(t *testing.T) {
	s, schema := newStore(t,
		upN(user("a"), 1, nil),
		upN(item("i1"), 1, graph.Props{"title": "x", "price": 2.0}),
		upN(item("i2"), 1, graph.Props{"title": "y", "price": 2.0}),
		upN(tag("t1"), 1, graph.Props{"label": "x"}),
		upE("likes", user("a"), item("i1"), 10, graph.Props{"rating": 5}),
		upE("likes", user("a"), item("i2"), 11, graph.Props{"rating": 3}),
		upE("likes", user("a"), tag("t1"), 12, graph.Props{"rating": 5}),
		upE("likes", user("a"), item("i3"), 13, graph.Props{"rating": 5}),
	)
	e := New(s, schema, Options{})
	cases := []struct {
		name string
		mod  func(h *Hop)
		want []string
	}{
		{"none", func(*Hop) {}, []string{"1:a>i3", "1:a>t1", "1:a>i2", "1:a>i1"}},
		{"node type", func(h *Hop) { h.NodeTypes = []string{"tag"} }, []string{"1:a>t1"}},
		{"edge prop", func(h *Hop) { h.EdgeProps = graph.Props{"rating": int64(5)} }, []string{"1:a>i3", "1:a>t1", "1:a>i1"}},
		{"node prop", func(h *Hop) { h.NodeProps = graph.Props{"title": "x"} }, []string{"1:a>i1"}},
		{"node prop numeric", func(h *Hop) { h.NodeProps = graph.Props{"price": int64(2)} }, []string{"1:a>i2", "1:a>i1"}},
		{"both", func(h *Hop) {
			h.NodeTypes = []string{"item"}
			h.EdgeProps = graph.Props{"rating": 5.0}
		}, []string{"1:a>i3", "1:a>i1"}},
		{"window", func(h *Hop) { h.Edges[0].Since, h.Edges[0].Until = at(11), at(13) }, []string{"1:a>t1", "1:a>i2"}},
		{"key order", func(h *Hop) { h.Order = graph.OrderKey }, []string{"1:a>i1", "1:a>i2", "1:a>i3", "1:a>t1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := hop("likes")
			c.mod(&h)
			res := run(t, e, req([]graph.NodeKey{user("a")}, h))
			if got := edgeKeys(res); !slices.Equal(got, c.want) {
				t.Fatalf("edges = %v, want %v", got, c.want)
			}
			if res.Truncated() {
				t.Errorf("truncated: %+v", res.Hops)
			}
		})
	}
}

func TestBothDirectionsDedupsEdges(t *testing.T) {
	s, schema := newStore(t,
		upE("follows", user("a"), user("b"), 10, nil),
		upE("follows", user("b"), user("a"), 20, nil),
		upE("follows", user("c"), user("a"), 30, nil),
		upE("follows", user("a"), user("a"), 40, nil),
	)
	h := hop("follows")
	h.Direction = Both
	res := run(t, New(s, schema, Options{}), req([]graph.NodeKey{user("a")}, h, h))
	// Hop 1 out: a>a, a>b; in: c>a, b>a (a>a again: deduplicated).
	// Hop 2 from b: out b>a (dup), in a>b (dup); from c: out c>a (dup).
	want := []string{"1:a>a", "1:a>b", "1:c>a", "1:b>a"}
	if got := edgeKeys(res); !slices.Equal(got, want) {
		t.Fatalf("edges = %v, want %v", got, want)
	}
	if res.Truncated() {
		t.Errorf("truncated: %+v", res.Hops)
	}
}

// star writes n edges from user hub to users n0…n(n-1), newest last.
func star(n int) []graph.Mutation {
	var muts []graph.Mutation
	for i := range n {
		muts = append(muts, upE("follows", user("hub"), user(fmt.Sprintf("n%03d", i)), 100+i, graph.Props{"weight": float64(i % 2)}))
	}
	return muts
}

// drain runs r, then follows the first hop's continuation until the hop is
// complete, and returns every edge seen and the number of requests.
func drain(t *testing.T, e *Engine, r Request) ([]string, int) {
	t.Helper()
	var all []string
	for n := 1; ; n++ {
		res := run(t, e, r)
		all = append(all, edgeKeys(res)...)
		h := res.Hops[0]
		if h.Continue == nil {
			if h.Truncated() {
				t.Fatalf("truncated without continuation: %+v", h)
			}
			return all, n
		}
		if n > 1000 {
			t.Fatal("continuations do not end")
		}
		r.Resume = h.Continue
	}
}

func TestHopLimitTruncatesAndContinuesExactly(t *testing.T) {
	s, schema := newStore(t, star(25)...)
	for _, order := range []graph.Order{graph.OrderLatest, graph.OrderKey} {
		for _, conc := range []int{1, 3, 16} {
			t.Run(fmt.Sprintf("%s/conc%d", order, conc), func(t *testing.T) {
				e := New(s, schema, Options{Concurrency: conc})
				h := hop("follows")
				h.Limit, h.Order = 7, order
				r := req([]graph.NodeKey{user("hub")}, h)
				first := run(t, e, r)
				h0 := first.Hops[0]
				if len(first.Edges) != 7 || !slices.Equal(h0.Reasons, []Reason{ReasonHopLimit}) || h0.Continue == nil {
					t.Fatalf("first page: %d edges, hop %+v", len(first.Edges), h0)
				}
				all, n := drain(t, e, r)
				if n != 4 || len(all) != 25 {
					t.Fatalf("%d requests, %d edges", n, len(all))
				}
				slices.Sort(all)
				if len(slices.Compact(all)) != 25 {
					t.Fatalf("duplicates in %v", all)
				}
			})
		}
	}
}

func TestContinuationAcrossSourcesAndFilters(t *testing.T) {
	// Several sources read concurrently ask for more edges than the
	// consumer ends up taking, so cuts fall inside pages: each continuation
	// must restart its page past the edges already returned.
	var muts []graph.Mutation
	var start []graph.NodeKey
	for h := range 4 {
		hub := user(fmt.Sprintf("hub%d", h))
		start = append(start, hub)
		for i := range 15 {
			muts = append(muts, upE("follows", hub, user(fmt.Sprintf("n%03d", i)), 100+i, graph.Props{"weight": float64(i % 2)}))
		}
	}
	s, schema := newStore(t, muts...)
	for _, conc := range []int{1, 2, 8} {
		for _, limit := range []int{1, 3, 4, 10} {
			t.Run(fmt.Sprintf("conc%d/limit%d", conc, limit), func(t *testing.T) {
				h := hop("follows")
				h.Limit = limit
				h.EdgeProps = graph.Props{"weight": 1.0}
				all, _ := drain(t, New(s, schema, Options{Concurrency: conc}), req(start, h))
				if len(all) != 28 {
					t.Fatalf("got %d edges, want the 28 odd ones: %v", len(all), all)
				}
				slices.Sort(all)
				if len(slices.Compact(all)) != 28 {
					t.Fatalf("duplicates: %v", all)
				}
			})
		}
	}
}

func TestResumeFromPositionSkipsEarlierEdges(t *testing.T) {
	s, schema := newStore(t, star(6)...)
	h := hop("follows")
	// Latest first: n005 (105) … n000 (100). Resume at n003.
	from := Position{EventTime: at(103), Neighbor: user("n003")}
	r := req(nil, h)
	r.Resume = &Continuation{Work: []Source{{Node: user("hub"), EdgeType: "follows", Direction: graph.Out, From: &from}}}
	res := run(t, New(s, schema, Options{}), r)
	if got, want := edgeKeys(res), []string{"1:hub>n003", "1:hub>n002", "1:hub>n001", "1:hub>n000"}; !slices.Equal(got, want) {
		t.Fatalf("edges = %v, want %v", got, want)
	}
}

// orderedReader makes reads of node first wait until a read of node second
// has returned, so a test can fix which source finishes first.
type orderedReader struct {
	graph.Reader
	first, second graph.NodeKey
	secondDone    chan struct{}
}

func (o *orderedReader) Adjacency(ctx context.Context, q graph.AdjacencyQuery) (graph.AdjacencyPage, error) {
	switch q.Node {
	case o.first:
		<-o.secondDone
	case o.second:
		defer close(o.secondDone)
	}
	return o.Reader.Adjacency(ctx, q)
}

func TestUnreadCountExactWhenEverythingWasRead(t *testing.T) {
	s, schema := newStore(t,
		upE("follows", user("a"), user("x"), 1, nil),
		upE("follows", user("a"), user("y"), 2, nil),
		upE("follows", user("b"), user("x"), 3, nil),
		upE("follows", user("b"), user("z"), 4, nil),
	)
	o := &orderedReader{Reader: s, first: user("a"), second: user("b"), secondDone: make(chan struct{})}
	h := hop("follows")
	h.Limit = 2
	res := run(t, New(o, schema, Options{Concurrency: 2}), req([]graph.NodeKey{user("a"), user("b")}, h))
	hr := res.Hops[0]
	if got, want := edgeKeys(res), []string{"1:a>y", "1:a>x"}; !slices.Equal(got, want) {
		t.Fatalf("edges = %v, want %v", got, want)
	}
	if !slices.Equal(hr.Reasons, []Reason{ReasonHopLimit}) || hr.UnreadEdges != 2 || !hr.UnreadExact {
		t.Fatalf("hop = %+v, want 2 unread, exact", hr)
	}
	if hr.Continue == nil || len(hr.Continue.Work) != 1 || hr.Continue.Work[0].Node != user("b") {
		t.Fatalf("continuation = %+v", hr.Continue)
	}

	// When the limit is met by the last source and nothing else matched,
	// nothing was cut.
	h.Limit = 4
	res = run(t, New(s, schema, Options{}), req([]graph.NodeKey{user("a"), user("b")}, h))
	if res.Truncated() || len(res.Edges) != 4 {
		t.Fatalf("hop = %+v", res.Hops[0])
	}
}

func TestSupernodeCap(t *testing.T) {
	s, schema := newStore(t, append(star(50), upE("follows", user("small"), user("n000"), 1, nil))...)
	h := hop("follows")
	h.NodeCap = 10
	h.Limit = 100
	r := req([]graph.NodeKey{user("hub"), user("small")}, h)
	res := run(t, New(s, schema, Options{}), r)
	hr := res.Hops[0]
	if len(res.Edges) != 11 {
		t.Fatalf("edges = %v", edgeKeys(res))
	}
	if !slices.Equal(hr.Reasons, []Reason{ReasonSupernodeCap}) || hr.UnreadExact || hr.Continue == nil {
		t.Fatalf("hop = %+v", hr)
	}
	if len(hr.Continue.Work) != 1 || hr.Continue.Work[0].Node != user("hub") || hr.Continue.Work[0].Cursor == nil {
		t.Fatalf("continuation = %+v", hr.Continue)
	}
	all, n := drain(t, New(s, schema, Options{}), r)
	if len(all) != 51 || n != 5 {
		t.Fatalf("%d requests, %d edges", n, len(all))
	}
}

func TestMaxResultsSkipsLaterHops(t *testing.T) {
	s, schema := fanout(t)
	r := req([]graph.NodeKey{user("a")}, hop("follows"), hop("follows"), hop("follows"))
	r.MaxResults = 3
	res := run(t, New(s, schema, Options{}), r)
	if len(res.Edges) != 3 {
		t.Fatalf("edges = %v", edgeKeys(res))
	}
	if res.Hops[0].Truncated() {
		t.Errorf("hop 1 holds exactly 3 edges: %+v", res.Hops[0])
	}
	h2 := res.Hops[1]
	if !h2.Skipped || !slices.Equal(h2.Reasons, []Reason{ReasonMaxResults}) || h2.Continue == nil || h2.Continue.Hop != 1 {
		t.Fatalf("hop 2 = %+v", h2)
	}
	h3 := res.Hops[2]
	if !h3.Skipped || h3.Continue != nil {
		t.Fatalf("hop 3 = %+v", h3)
	}
	// Resuming hop 2 expands b and c (d has no follows edges).
	r.Resume, r.MaxResults = h2.Continue, 100
	res = run(t, New(s, schema, Options{}), r)
	if got, want := edgeKeys(res), []string{"2:c>a", "2:c>e", "2:b>e", "3:a>d", "3:a>c", "3:a>b"}; !slices.Equal(got, want) {
		t.Fatalf("resumed edges = %v, want %v", got, want)
	}

	r = req([]graph.NodeKey{user("a")}, hop("follows"), hop("follows"))
	r.MaxResults = 2
	res = run(t, New(s, schema, Options{}), r)
	if !slices.Equal(res.Hops[0].Reasons, []Reason{ReasonMaxResults}) {
		t.Fatalf("hop 1 = %+v", res.Hops[0])
	}
}

func TestReadingStopsOnceLimitIsMet(t *testing.T) {
	var muts []graph.Mutation
	var start []graph.NodeKey
	for i := range 200 {
		u := user(fmt.Sprintf("s%03d", i))
		start = append(start, u)
		muts = append(muts, upE("follows", u, user("x"), i+1, nil), upE("follows", u, user("y"), i+1, nil))
	}
	s, schema := newStore(t, muts...)
	c := &countingReader{Reader: s}
	h := hop("follows")
	h.Limit = 4
	res := run(t, New(c, schema, Options{Concurrency: 2}), req(start, h))
	if len(res.Edges) != 4 {
		t.Fatalf("edges = %v", edgeKeys(res))
	}
	// Two sources satisfy the limit; the producer runs at most 2×2 sources
	// ahead of the consumer. The rest is never read.
	if n := c.adjacency.Load(); n > 2+4 {
		t.Fatalf("%d adjacency reads for 200 sources", n)
	}
	if got := len(res.Hops[0].Continue.Work); got != 198 {
		t.Fatalf("continuation holds %d sources, want 198", got)
	}
}

type countingReader struct {
	graph.Reader
	adjacency atomic.Int64
}

func (c *countingReader) Adjacency(ctx context.Context, q graph.AdjacencyQuery) (graph.AdjacencyPage, error) {
	c.adjacency.Add(1)
	return c.Reader.Adjacency(ctx, q)
}

// gateReader answers the first `free` adjacency reads, then blocks until
// the context ends, as a stalled store would.
type gateReader struct {
	graph.Reader
	free atomic.Int64
}

func (g *gateReader) Adjacency(ctx context.Context, q graph.AdjacencyQuery) (graph.AdjacencyPage, error) {
	if g.free.Add(-1) < 0 {
		<-ctx.Done()
		return graph.AdjacencyPage{}, &graph.RetryableError{Op: "adjacency", Err: ctx.Err()}
	}
	return g.Reader.Adjacency(ctx, q)
}

func TestTimeBudgetTruncates(t *testing.T) {
	s, schema := fanout(t)
	g := &gateReader{Reader: s}
	g.free.Store(1) // hop 1 (one source) is read, hop 2 stalls
	r := req([]graph.NodeKey{user("a")}, hop("follows"), hop("follows"), hop("follows"))
	r.Deadline = time.Now().Add(200 * time.Millisecond)
	r.IncludePaths = true
	res, err := New(g, schema, Options{}).Run(context.Background(), r)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if got, want := edgeKeys(res), []string{"1:a>d", "1:a>c", "1:a>b"}; !slices.Equal(got, want) {
		t.Fatalf("edges = %v, want %v", got, want)
	}
	h2, h3 := res.Hops[1], res.Hops[2]
	if !slices.Equal(h2.Reasons, []Reason{ReasonTimeBudget}) || h2.Continue == nil || len(h2.Continue.Work) != 3 {
		t.Fatalf("hop 2 = %+v", h2)
	}
	if !h3.Skipped || !slices.Equal(h3.Reasons, []Reason{ReasonTimeBudget}) {
		t.Fatalf("hop 3 = %+v", h3)
	}
	// Node properties were still read, from the reserve.
	for _, n := range res.Nodes {
		if n.Status == NodeNotRead {
			t.Errorf("node %s not read", n.Key)
		}
	}
	if len(res.Paths) != 3 {
		t.Errorf("paths = %v", res.Paths)
	}
}

func TestDeadlineAlreadyPassed(t *testing.T) {
	s, schema := fanout(t)
	r := req([]graph.NodeKey{user("a")}, hop("follows"))
	r.Deadline = time.Now().Add(-time.Second)
	res, err := New(s, schema, Options{}).Run(context.Background(), r)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	h := res.Hops[0]
	if len(res.Edges) != 0 || !slices.Equal(h.Reasons, []Reason{ReasonTimeBudget}) || h.Continue == nil {
		t.Fatalf("hop = %+v", h)
	}
	if res.Nodes[0].Status != NodeNotRead {
		t.Errorf("start node status = %s", res.Nodes[0].Status)
	}
}

type failingReader struct {
	graph.Reader
	err error
}

func (f failingReader) Adjacency(context.Context, graph.AdjacencyQuery) (graph.AdjacencyPage, error) {
	return graph.AdjacencyPage{}, f.err
}

func TestStoreErrorsAndCancellation(t *testing.T) {
	s, schema := fanout(t)
	unavailable := &graph.RetryableError{Op: "adjacency", Err: errors.New("no hosts")}
	_, err := New(failingReader{s, unavailable}, schema, Options{}).Run(context.Background(), req([]graph.NodeKey{user("a")}, hop("follows")))
	if !graph.IsRetryable(err) {
		t.Fatalf("err = %v, want retryable", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = New(s, schema, Options{}).Run(ctx, req([]graph.NodeKey{user("a")}, hop("follows")))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
}

func TestValidation(t *testing.T) {
	_, schema := newStore(t)
	e := New(nil, schema, Options{})
	ok := func() Request { return req([]graph.NodeKey{user("a")}, hop("follows")) }
	cases := []struct {
		name  string
		mod   func(r *Request)
		field string
	}{
		{"no hops", func(r *Request) { r.Hops = nil }, "hops"},
		{"too many hops", func(r *Request) { r.Hops = slices.Repeat(r.Hops, 5) }, "hops"},
		{"no start", func(r *Request) { r.Start = nil }, "start"},
		{"unknown start type", func(r *Request) { r.Start[0].Type = "nope" }, "start[0].type"},
		{"empty start id", func(r *Request) { r.Start[0].ID = "" }, "start[0].id"},
		{"long start id", func(r *Request) { r.Start[0].ID = string(make([]byte, graph.MaxIDLen+1)) }, "start[0].id"},
		{"max results", func(r *Request) { r.MaxResults = 0 }, "max_results"},
		{"no edge types", func(r *Request) { r.Hops[0].Edges = nil }, "hops[0].edge_types"},
		{"unknown edge type", func(r *Request) { r.Hops[0].Edges[0].Type = "nope" }, "hops[0].edge_types[0]"},
		{"edge type twice", func(r *Request) { r.Hops[0].Edges = append(r.Hops[0].Edges, r.Hops[0].Edges[0]) }, "hops[0].edge_types[1]"},
		{"direction", func(r *Request) { r.Hops[0].Direction = 9 }, "hops[0].direction"},
		{"in without reverse", func(r *Request) { r.Hops[0].Edges[0].Type, r.Hops[0].Direction = "blocks", In }, "hops[0].direction"},
		{"both without reverse", func(r *Request) { r.Hops[0].Edges[0].Type, r.Hops[0].Direction = "likes", Both }, "hops[0].direction"},
		{"window", func(r *Request) { r.Hops[0].Edges[0].Since, r.Hops[0].Edges[0].Until = at(2), at(1) }, "hops[0].since"},
		{"limit", func(r *Request) { r.Hops[0].Limit = 0 }, "hops[0].limit"},
		{"node cap", func(r *Request) { r.Hops[0].NodeCap = -1 }, "hops[0].node_cap"},
		{"order", func(r *Request) { r.Hops[0].Order = 0 }, "hops[0].order"},
		{"unknown node type", func(r *Request) { r.Hops[0].NodeTypes = []string{"user", "nope"} }, "hops[0].node_types[1]"},
		{"undeclared node prop", func(r *Request) { r.Hops[0].NodeProps = graph.Props{"title": "x"} }, "hops[0].where.title"},
		{"wrong node prop type", func(r *Request) { r.Hops[0].NodeProps = graph.Props{"age": "old"} }, "hops[0].where.age"},
		{"fractional int", func(r *Request) { r.Hops[0].NodeProps = graph.Props{"age": 1.5} }, "hops[0].where.age"},
		{"object value", func(r *Request) { r.Hops[0].NodeProps = graph.Props{"age": map[string]any{}} }, "hops[0].where.age"},
		{"undeclared edge prop", func(r *Request) { r.Hops[0].EdgeProps = graph.Props{"rating": 1} }, "hops[0].edge_where.rating"},
		{"resume past hops", func(r *Request) {
			r.Resume = &Continuation{Hop: 1, Work: []Source{{Node: user("a"), EdgeType: "follows", Direction: graph.Out}}}
		}, "cursor"},
		{"resume foreign edge type", func(r *Request) {
			r.Resume = &Continuation{Work: []Source{{Node: user("a"), EdgeType: "likes", Direction: graph.Out}}}
		}, "cursor"},
		{"resume wrong node type", func(r *Request) {
			r.Resume = &Continuation{Work: []Source{{Node: item("a"), EdgeType: "follows", Direction: graph.Out}}}
		}, "cursor"},
		{"resume empty", func(r *Request) { r.Resume = &Continuation{} }, "cursor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ok()
			c.mod(&r)
			_, err := e.Run(context.Background(), r)
			var re *RequestError
			if !errors.As(err, &re) || !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("err = %v, want a RequestError", err)
			}
			if re.Field != c.field {
				t.Fatalf("field = %q, want %q (%v)", re.Field, c.field, err)
			}
		})
	}
}

func TestSourceShortOfDuplicatesReadsOn(t *testing.T) {
	// Hop 2 reads b's incoming edges one at a time (limit 1); the first is
	// a>b, returned by hop 1 already, so the source must read on to d>b.
	s, schema := newStore(t,
		upE("follows", user("a"), user("b"), 10, nil),
		upE("follows", user("d"), user("b"), 5, nil),
	)
	h2 := hop("follows")
	h2.Direction, h2.Limit = Both, 1
	res := run(t, New(s, schema, Options{}), req([]graph.NodeKey{user("a")}, hop("follows"), h2))
	if got, want := edgeKeys(res), []string{"1:a>b", "2:d>b"}; !slices.Equal(got, want) {
		t.Fatalf("edges = %v, want %v", got, want)
	}
	if res.Truncated() {
		t.Fatalf("hops = %+v", res.Hops)
	}
}

func TestPagesAreBoundedByMaxPage(t *testing.T) {
	s, schema := newStore(t, star(25)...)
	c := &countingReader{Reader: s}
	h := hop("follows")
	h.Limit = 20
	all, n := drain(t, New(c, schema, Options{MaxPage: 3}), req([]graph.NodeKey{user("hub")}, h))
	if len(all) != 25 || n != 2 {
		t.Fatalf("%d edges in %d requests", len(all), n)
	}
	// 20 edges in pages of at most 3, then the last 5.
	if got := c.adjacency.Load(); got < 7+2 {
		t.Fatalf("%d adjacency reads: pages were not bounded", got)
	}
}

// TestTimeFilterIsCanonical: a filter on a time property matches the stored
// canonical text whatever RFC 3339 form the caller wrote; text that is not
// a time is refused.
func TestTimeFilterIsCanonical(t *testing.T) {
	decl := func(string) []graph.PropType { return []graph.PropType{graph.PropTime} }
	p := graph.Props{"at": "2026-11-25T11:00:00+01:00"}
	if err := normaliseFilter(p, "hops[0].where", decl); err != nil || p["at"] != "2026-11-25T10:00:00.000000Z" {
		t.Fatalf("filter %v, %v; want the canonical text", p["at"], err)
	}
	if err := normaliseFilter(graph.Props{"at": "noon"}, "hops[0].where", decl); err == nil || !strings.Contains(err.Error(), "is not a time") {
		t.Fatalf("a filter that is not a time: %v", err)
	}
}
