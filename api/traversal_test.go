package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

func runTraversal(t *testing.T, h *harness, body string) traversalResponse {
	t.Helper()
	r := h.post("/v1/traversals", body)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	var got traversalResponse
	r.json(t, &got)
	if r.Header.Get(HeaderWatermark) != watermarkAt.Format(time.RFC3339Nano) || !got.Watermark.Known {
		t.Fatalf("watermark: header %q, body %+v", r.Header.Get(HeaderWatermark), got.Watermark)
	}
	return got
}

func hopEdges(es []edgeJSON) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%d:%s>%s", e.Hop, e.From.ID, e.To.ID)
	}
	return out
}

// withCursor adds "cursor" to a JSON request body.
func withCursor(t *testing.T, body, cursor string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	m["cursor"] = cursor
	b, _ := json.Marshal(m)
	return string(b)
}

// traversalScenarios are the behaviours every backend must give the same
// answers for; they run on Pebble here and on real Cassandra in
// cassandra_test.go. store holds seed().
func traversalScenarios(t *testing.T, store graph.Reader) {
	t.Run("EdgesPaging", func(t *testing.T) {
		h := newHarness(t, store, nil)
		seen := map[string]bool{}
		path := "/v1/nodes/user/hub/edges?edge_type=follows&limit=15"
		for pages := 1; ; pages++ {
			got := getEdges(t, h, path)
			for _, e := range edgeNames(got.Edges) {
				if seen[e] {
					t.Fatalf("edge %s twice", e)
				}
				seen[e] = true
			}
			if !got.HasMore {
				break
			}
			if pages > 5 {
				t.Fatal("pages do not end")
			}
			path = "/v1/nodes/user/hub/edges?edge_type=follows&limit=15&cursor=" + url.QueryEscape(got.NextCursor)
		}
		if len(seen) != 40 {
			t.Fatalf("%d edges", len(seen))
		}
	})
	t.Run("TwoHops", func(t *testing.T) {
		h := newHarness(t, store, nil)
		got := runTraversal(t, h, `{"start":[{"type":"user","id":"alice"}],
			"hops":[{"edge_types":["follows"]},{"edge_types":["follows"],"direction":"out"}],"include_paths":true}`)
		want := []string{"1:alice>dave", "1:alice>carol", "1:alice>bob", "2:carol>erin", "2:bob>erin"}
		if g := hopEdges(got.Edges); !slices.Equal(g, want) {
			t.Fatalf("edges = %v, want %v", g, want)
		}
		var nodes []string
		for _, n := range got.Nodes {
			nodes = append(nodes, fmt.Sprintf("%d:%s:%s", n.Hop, n.ID, n.Status))
		}
		if w := []string{"0:alice:found", "1:dave:missing", "1:carol:found", "1:bob:found", "2:erin:found"}; !slices.Equal(nodes, w) {
			t.Fatalf("nodes = %v, want %v", nodes, w)
		}
		if propsOf(got.Nodes[2].Props)["name"] != "Carol" || got.Nodes[2].EventTime == nil {
			t.Errorf("carol = %+v", got.Nodes[2])
		}
		if got.Truncated || got.NextCursor != "" || len(got.Hops) != 2 || got.Hops[1].NewNodes != 1 || got.Hops[1].Edges != 2 {
			t.Fatalf("hops = %+v", got.Hops)
		}
		if fmt.Sprint(got.Paths) != "[[1 3] [2 4]]" {
			t.Errorf("paths = %v", got.Paths)
		}
		if got.Stats.StoreReads < 3 {
			t.Errorf("store reads = %d", got.Stats.StoreReads)
		}
	})
	t.Run("Filters", func(t *testing.T) {
		h := newHarness(t, store, nil)
		cases := []struct{ hop, want string }{
			{`{"edge_types":["follows"],"where":{"vip":true}}`, "1:alice>bob"},
			{`{"edge_types":["follows"],"edge_where":{"weight":0.5}}`, "1:alice>carol"},
			{`{"edge_types":["likes"],"node_types":["item"],"edge_where":{"rating":5}}`, "1:alice>i1"},
			{`{"edge_types":["likes","follows"],"node_types":["item"]}`, "1:alice>i2,1:alice>i1"},
			{`{"edge_types":["follows"],"since":"` + at(15).Format(time.RFC3339) + `","until":"` + at(30).Format(time.RFC3339) + `"}`, "1:alice>carol"},
			{`{"edge_types":["follows"],"order":"any","limit":2}`, "1:alice>bob,1:alice>carol"},
		}
		for _, c := range cases {
			got := runTraversal(t, h, `{"start":[{"type":"user","id":"alice"}],"hops":[`+c.hop+`]}`)
			if g := strings.Join(hopEdges(got.Edges), ","); g != c.want {
				t.Errorf("%s: edges %s, want %s", c.hop, g, c.want)
			}
		}
	})
	t.Run("HopLimitCursorContinuesExactly", func(t *testing.T) {
		h := newHarness(t, store, nil)
		body := `{"start":[{"type":"user","id":"hub"},{"type":"user","id":"alice"}],"hops":[{"edge_types":["follows"],"limit":7}]}`
		seen := map[string]bool{}
		cursor := ""
		for page := 0; ; page++ {
			b := body
			if cursor != "" {
				b = withCursor(t, body, cursor)
			}
			got := runTraversal(t, h, b)
			if len(got.Edges) > 7 {
				t.Fatalf("page %d: %d edges", page, len(got.Edges))
			}
			for _, e := range hopEdges(got.Edges) {
				if seen[e] {
					t.Fatalf("edge %s returned twice", e)
				}
				seen[e] = true
			}
			hop := got.Hops[0]
			if got.NextCursor == "" {
				if hop.Truncated {
					t.Fatalf("truncated without cursor: %+v", hop)
				}
				break
			}
			if !hop.Truncated || !slices.Equal(hop.Reasons, []string{"hop_limit"}) || hop.Cursor != got.NextCursor || !got.Truncated {
				t.Fatalf("page %d: hop %+v", page, hop)
			}
			if page > 10 {
				t.Fatal("cursors do not end")
			}
			cursor = got.NextCursor
		}
		if len(seen) != 43 {
			t.Fatalf("%d edges over all pages, want 43", len(seen))
		}
	})
	t.Run("SupernodeCap", func(t *testing.T) {
		h := newHarness(t, store, func(o *Options) { o.Config.SupernodeCap = 10 })
		got := runTraversal(t, h, `{"start":[{"type":"user","id":"hub"}],"hops":[{"edge_types":["follows"]}]}`)
		hop := got.Hops[0]
		if len(got.Edges) != 10 || !slices.Equal(hop.Reasons, []string{"supernode_cap"}) || hop.UnreadExact || hop.Cursor == "" {
			t.Fatalf("%d edges, hop %+v", len(got.Edges), hop)
		}
	})
	t.Run("MaxResults", func(t *testing.T) {
		h := newHarness(t, store, nil)
		got := runTraversal(t, h, `{"start":[{"type":"user","id":"alice"}],"max_results":2,
			"hops":[{"edge_types":["follows"]},{"edge_types":["follows"]}]}`)
		h1, h2 := got.Hops[0], got.Hops[1]
		if len(got.Edges) != 2 || !slices.Equal(h1.Reasons, []string{"max_results"}) || h1.Cursor == "" {
			t.Fatalf("hop 1 = %+v", h1)
		}
		if !h2.Skipped || !slices.Equal(h2.Reasons, []string{"max_results"}) || h2.Cursor == "" {
			t.Fatalf("hop 2 = %+v", h2)
		}
		// The second hop's cursor expands dave and carol (what hop 1 reached).
		got = runTraversal(t, h, withCursor(t, `{"start":[{"type":"user","id":"alice"}],"max_results":2,
			"hops":[{"edge_types":["follows"]},{"edge_types":["follows"]}]}`, h2.Cursor))
		if g := strings.Join(hopEdges(got.Edges), ","); g != "2:carol>erin" || got.Hops[0].Hop != 2 {
			t.Fatalf("continued hop 2: %s, hops %+v", g, got.Hops)
		}
	})
}

func TestTraversalsOnPebble(t *testing.T) {
	traversalScenarios(t, openEmbedded(t, seed()))
}

// gatedReader lets the first `free` adjacency reads through and stalls the
// rest until their context ends.
type gatedReader struct {
	graph.Reader
	free atomic.Int64
}

func (g *gatedReader) Adjacency(ctx context.Context, q graph.AdjacencyQuery) (graph.AdjacencyPage, error) {
	if g.free.Add(-1) < 0 {
		<-ctx.Done()
		return graph.AdjacencyPage{}, &graph.RetryableError{Op: "adjacency", Err: ctx.Err()}
	}
	return g.Reader.Adjacency(ctx, q)
}

func TestTraversalTimeBudgetTruncates(t *testing.T) {
	g := &gatedReader{Reader: openEmbedded(t, seed())}
	g.free.Store(1)
	h := newHarness(t, g, nil)
	got := runTraversal(t, h, `{"start":[{"type":"user","id":"alice"}],"time_budget_ms":100,
		"hops":[{"edge_types":["follows"]},{"edge_types":["follows"]}]}`)
	if g := hopEdges(got.Edges); len(g) != 3 {
		t.Fatalf("edges = %v", g)
	}
	h2 := got.Hops[1]
	if !got.Truncated || !slices.Equal(h2.Reasons, []string{"time_budget"}) || h2.Cursor == "" || got.NextCursor != h2.Cursor {
		t.Fatalf("hop 2 = %+v", h2)
	}
}

func TestTraversalStoreFailures(t *testing.T) {
	body := `{"start":[{"type":"user","id":"alice"}],"hops":[{"edge_types":["follows"]}]}`
	h := newHarness(t, brokenReader{&graph.RetryableError{Op: "adjacency", Err: errors.New("no hosts")}}, nil)
	r := h.post("/v1/traversals", body)
	wantProblem(t, r, 503, "unavailable", "")
	if r.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	h = newHarness(t, panickyReader{}, nil)
	r = h.do(req{method: http.MethodPost, path: "/v1/traversals", body: body, header: map[string]string{HeaderRequestID: "trv-1"}})
	wantProblem(t, r, 500, "internal", "")
	if logs := h.logs.String(); !strings.Contains(logs, `"request_id":"trv-1"`) || !strings.Contains(logs, "boom in adjacency") {
		t.Errorf("panic not logged with request id:\n%s", logs)
	}
}

func TestTraversalErrors(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) { o.Config.MaxBodyBytes = 4096 })
	start := `"start":[{"type":"user","id":"alice"}]`
	hop := `{"edge_types":["follows"]}`
	ok := `{` + start + `,"hops":[` + hop + `]}`
	first := runTraversal(t, h, `{`+start+`,"hops":[{"edge_types":["follows"],"limit":1}]}`)
	otherSecret := cursorCodec{key: []byte(strings.Repeat("x", 32))}.seal(cursorTraversal, 1, nil)
	many := func(n int, item string) string { return strings.TrimSuffix(strings.Repeat(item+",", n), ",") }
	cases := []struct {
		name, body  string
		status      int
		slug, field string
	}{
		{"empty body", ``, 400, "malformed-request", ""},
		{"not JSON", `hops: 1`, 400, "malformed-request", ""},
		{"truncated JSON", `{"hops":[`, 400, "malformed-request", ""},
		{"two values", ok + ok, 400, "malformed-request", ""},
		{"array body", `[]`, 400, "malformed-request", ""},
		{"unknown field", `{` + start + `,"hops":[` + hop + `],"depth":2}`, 400, "malformed-request", "depth"},
		{"unknown hop field", `{` + start + `,"hops":[{"edge_types":["follows"],"max":1}]}`, 400, "malformed-request", "hops[0].max"},
		{"wrong type", `{` + start + `,"hops":[{"edge_types":"follows"}]}`, 400, "malformed-request", "hops[0].edge_types"},
		{"limit not integer", `{` + start + `,"hops":[{"edge_types":["follows"],"limit":1.5}]}`, 400, "invalid-parameter", "hops[0].limit"},
		{"no hops", `{` + start + `,"hops":[]}`, 400, "invalid-parameter", "hops"},
		{"too many hops", `{` + start + `,"hops":[` + many(5, hop) + `]}`, 422, "over-cap", "hops"},
		{"no edge types", `{` + start + `,"hops":[{"edge_types":[]}]}`, 400, "invalid-parameter", "hops[0].edge_types"},
		{"too many edge types", `{` + start + `,"hops":[{"edge_types":[` + many(17, `"follows"`) + `]}]}`, 422, "over-cap", "hops[0].edge_types"},
		{"limit zero", `{` + start + `,"hops":[{"edge_types":["follows"],"limit":0}]}`, 400, "invalid-parameter", "hops[0].limit"},
		{"limit over cap", `{` + start + `,"hops":[{"edge_types":["follows"],"limit":5001}]}`, 422, "over-cap", "hops[0].limit"},
		{"max results over cap", `{` + start + `,"hops":[` + hop + `],"max_results":10001}`, 422, "over-cap", "max_results"},
		{"max results zero", `{` + start + `,"hops":[` + hop + `],"max_results":0}`, 400, "invalid-parameter", "max_results"},
		{"budget over cap", `{` + start + `,"hops":[` + hop + `],"time_budget_ms":10001}`, 422, "over-cap", "time_budget_ms"},
		{"budget negative", `{` + start + `,"hops":[` + hop + `],"time_budget_ms":-1}`, 400, "invalid-parameter", "time_budget_ms"},
		{"too many start nodes", `{"start":[` + many(101, `{"type":"user","id":"a"}`) + `],"hops":[` + hop + `]}`, 422, "over-cap", "start"},
		{"no start", `{"hops":[` + hop + `]}`, 400, "invalid-query", "start"},
		{"unknown start type", `{"start":[{"type":"planet","id":"x"}],"hops":[` + hop + `]}`, 400, "unknown-type", "start[0].type"},
		{"empty start id", `{"start":[{"type":"user","id":""}],"hops":[` + hop + `]}`, 400, "invalid-query", "start[0].id"},
		{"unknown edge type", `{` + start + `,"hops":[{"edge_types":["knows"]}]}`, 400, "unknown-type", "hops[0].edge_types[0]"},
		{"unknown node type filter", `{` + start + `,"hops":[{"edge_types":["follows"],"node_types":["planet"]}]}`, 400, "unknown-type", "hops[0].node_types[0]"},
		{"bad direction", `{` + start + `,"hops":[{"edge_types":["follows"],"direction":"up"}]}`, 400, "invalid-parameter", "hops[0].direction"},
		{"empty direction", `{` + start + `,"hops":[{"edge_types":["follows"],"direction":""}]}`, 400, "invalid-parameter", "hops[0].direction"},
		{"empty order", `{` + start + `,"hops":[{"edge_types":["follows"],"order":""}]}`, 400, "invalid-parameter", "hops[0].order"},
		{"no reverse index", `{` + start + `,"hops":[{"edge_types":["blocks"],"direction":"both"}]}`, 400, "invalid-query", "hops[0].direction"},
		{"bad order", `{` + start + `,"hops":[{"edge_types":["follows"],"order":"key"}]}`, 400, "invalid-parameter", "hops[0].order"},
		{"bad since", `{` + start + `,"hops":[{"edge_types":["follows"],"since":"last week"}]}`, 400, "invalid-parameter", "hops[0].since"},
		{"bad until", `{` + start + `,"hops":[{"edge_types":["follows"],"until":"2026-13-01T00:00:00Z"}]}`, 400, "invalid-parameter", "hops[0].until"},
		{"since after until", `{` + start + `,"hops":[{"edge_types":["follows"],"since":"2026-02-01T00:00:00Z","until":"2026-01-01T00:00:00Z"}]}`, 400, "invalid-query", "hops[0].since"},
		{"undeclared where", `{` + start + `,"hops":[{"edge_types":["follows"],"where":{"title":"x"}}]}`, 400, "invalid-query", "hops[0].where.title"},
		{"where object", `{` + start + `,"hops":[{"edge_types":["follows"],"where":{"age":{"gt":3}}}]}`, 400, "invalid-query", "hops[0].where.age"},
		{"where wrong type", `{` + start + `,"hops":[{"edge_types":["follows"],"where":{"age":"old"}}]}`, 400, "invalid-query", "hops[0].where.age"},
		{"too many filters", `{` + start + `,"hops":[{"edge_types":["follows"],"where":{` + manyFilters(17) + `}}]}`, 422, "over-cap", "hops[0].where"},
		{"garbage cursor", withCursor(t, ok, "%%%"), 400, "invalid-cursor", "cursor"},
		{"cursor of another secret", withCursor(t, ok, otherSecret), 400, "invalid-cursor", "cursor"},
		{"cursor of another query", withCursor(t, `{`+start+`,"hops":[{"edge_types":["follows"],"direction":"both"}]}`, first.NextCursor), 400, "invalid-cursor", "cursor"},
		{"cursor of another start", withCursor(t, `{"start":[{"type":"user","id":"bob"}],"hops":[{"edge_types":["follows"],"limit":1}]}`, first.NextCursor), 400, "invalid-cursor", "cursor"},
		{"body too large", `{` + start + `,"hops":[` + hop + `],"cursor":"` + strings.Repeat("a", 5000) + `"}`, 413, "body-too-large", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := wantProblem(t, h.post("/v1/traversals", c.body), c.status, c.slug, c.field)
			if c.status == 422 && p.Cap == nil {
				t.Errorf("over-cap problem without cap: %+v", p)
			}
		})
	}
	// Same query, different limit: the cursor is accepted.
	if r := h.post("/v1/traversals", withCursor(t, `{`+start+`,"hops":[{"edge_types":["follows"],"limit":2}]}`, first.NextCursor)); r.StatusCode != 200 {
		t.Fatalf("cursor with another limit: %d %s", r.StatusCode, r.body)
	}
	for _, ct := range []string{"", "text/plain", "application/jsonx", "multipart/form-data; boundary=x"} {
		r := h.do(req{method: http.MethodPost, path: "/v1/traversals", body: ok, header: map[string]string{"Content-Type": ct}})
		wantProblem(t, r, 415, "unsupported-media-type", "")
	}
	r := h.do(req{method: http.MethodPost, path: "/v1/traversals", body: ok, header: map[string]string{"Content-Type": "application/json; charset=utf-8"}})
	if r.StatusCode != 200 {
		t.Fatalf("json with charset: %d", r.StatusCode)
	}
	p := wantProblem(t, h.post("/v1/traversals", `{`+start+`,"hops":[`+many(5, hop)+`]}`), 422, "over-cap", "hops")
	if *p.Cap != 4 {
		t.Errorf("cap = %d", *p.Cap)
	}
}

func manyFilters(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"p%d":1`, i))
	}
	return strings.Join(parts, ",")
}
