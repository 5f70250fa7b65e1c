package api

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

func edgeNames(es []edgeJSON) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.From.ID + ">" + e.To.ID
	}
	return out
}

func getEdges(t *testing.T, h *harness, path string) edgesResponse {
	t.Helper()
	r := h.get(path)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, r.StatusCode, r.body)
	}
	var got edgesResponse
	r.json(t, &got)
	if r.Header.Get(HeaderWatermark) == "" || !got.Watermark.Known {
		t.Fatalf("watermark missing: %s", r.body)
	}
	return got
}

func TestGetEdgesPages(t *testing.T) {
	h := newHarness(t, nil, nil)
	got := getEdges(t, h, "/v1/nodes/user/alice/edges?edge_type=follows")
	if names := strings.Join(edgeNames(got.Edges), ","); names != "alice>dave,alice>carol,alice>bob" {
		t.Fatalf("edges = %s", names)
	}
	if got.HasMore || got.NextCursor != "" || got.Direction != "out" || got.Order != "latest" {
		t.Fatalf("response = %+v", got)
	}
	// The default window starts 100 days before now.
	if got.Window.Since == nil || !got.Window.Since.Equal(clock.Add(-2400*time.Hour)) || got.Window.Until != nil {
		t.Fatalf("window = %+v", got.Window)
	}
	if propsOf(got.Edges[1].Props)["weight"] != 0.5 {
		t.Errorf("props = %s", got.Edges[1].Props)
	}

	// Paging: 40 edges, 15 at a time, then key order, then the reverse side.
	var all []string
	path := "/v1/nodes/user/hub/edges?edge_type=follows&limit=15"
	for pages := 0; ; pages++ {
		got := getEdges(t, h, path)
		all = append(all, edgeNames(got.Edges)...)
		if !got.HasMore {
			if pages != 2 {
				t.Fatalf("%d pages", pages+1)
			}
			break
		}
		path = "/v1/nodes/user/hub/edges?edge_type=follows&limit=15&cursor=" + url.QueryEscape(got.NextCursor)
	}
	if len(all) != 40 || all[0] != "hub>f39" || all[39] != "hub>f00" {
		t.Fatalf("paged %d edges: %v", len(all), all)
	}
	got = getEdges(t, h, "/v1/nodes/user/hub/edges?edge_type=follows&order=key&limit=2")
	if names := strings.Join(edgeNames(got.Edges), ","); names != "hub>f00,hub>f01" || !got.HasMore {
		t.Fatalf("key order: %s", names)
	}
	got = getEdges(t, h, "/v1/nodes/user/erin/edges?edge_type=follows&direction=in")
	if names := strings.Join(edgeNames(got.Edges), ","); names != "carol>erin,bob>erin" {
		t.Fatalf("in: %s", names)
	}
	since := url.QueryEscape(at(20).Format(time.RFC3339))
	until := url.QueryEscape(at(30).Format(time.RFC3339))
	got = getEdges(t, h, "/v1/nodes/user/alice/edges?edge_type=follows&since="+since+"&until="+until)
	if names := strings.Join(edgeNames(got.Edges), ","); names != "alice>carol" {
		t.Fatalf("window: %s", names)
	}
}

func TestGetEdgesLookbackPerEdgeType(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) {
		o.Config.EdgeTypes = map[string]EdgeTypeDefaults{"follows": {HopLimit: 2, Lookback: 72*time.Hour - 25*time.Second}}
	})
	// The lookback reaches back to at(25): only alice>dave (at 30) is in.
	got := getEdges(t, h, "/v1/nodes/user/alice/edges?edge_type=follows")
	if names := strings.Join(edgeNames(got.Edges), ","); names != "alice>dave" {
		t.Fatalf("edges = %s", names)
	}
	got = getEdges(t, h, "/v1/nodes/user/hub/edges?edge_type=follows")
	if len(got.Edges) != 2 || !got.HasMore {
		t.Fatalf("per-type default limit 2: %d edges", len(got.Edges))
	}
}

func TestGetEdgesCursorKeepsTheFirstWindow(t *testing.T) {
	// The second page comes a day later: the default window must not move.
	now := clock
	h := newHarness(t, nil, func(o *Options) { o.Now = func() time.Time { return now } })
	first := getEdges(t, h, "/v1/nodes/user/hub/edges?edge_type=follows&limit=10")
	now = clock.Add(24 * time.Hour)
	second := getEdges(t, h, "/v1/nodes/user/hub/edges?edge_type=follows&limit=10&cursor="+url.QueryEscape(first.NextCursor))
	if !second.Window.Since.Equal(*first.Window.Since) {
		t.Fatalf("window moved: %s then %s", first.Window.Since, second.Window.Since)
	}
}

func TestGetEdgesErrors(t *testing.T) {
	h := newHarness(t, nil, nil)
	page := getEdges(t, h, "/v1/nodes/user/hub/edges?edge_type=follows&limit=5")
	cur := url.QueryEscape(page.NextCursor)
	raw, _ := base64.RawURLEncoding.DecodeString(page.NextCursor)
	tampered := append([]byte(nil), raw...)
	tampered[len(tampered)/2] ^= 1
	otherSecret := cursorCodec{key: []byte(strings.Repeat("x", 32))}.seal(cursorEdges, 1, []byte{0})
	nodeCursor, _ := base64.RawURLEncoding.DecodeString(page.NextCursor)
	nodeCursor[1] = cursorTraversal
	wrongKind := cursorCodec{key: []byte(strings.Repeat("s", 32))}.seal(cursorTraversal, 0, nil)
	cases := []struct {
		name, query string
		status      int
		slug, field string
	}{
		{"missing edge type", "", 400, "invalid-parameter", "edge_type"},
		{"unknown edge type", "edge_type=knows", 400, "unknown-type", "edge_type"},
		{"bad direction", "edge_type=follows&direction=sideways", 400, "invalid-parameter", "direction"},
		{"both is for traversals", "edge_type=follows&direction=both", 400, "invalid-parameter", "direction"},
		{"no reverse index", "edge_type=blocks&direction=in", 400, "invalid-query", ""},
		{"wrong end type", "edge_type=tagged&direction=in", 400, "invalid-query", ""},
		{"bad order", "edge_type=follows&order=random", 400, "invalid-parameter", "order"},
		{"direction without a value", "edge_type=follows&direction=", 400, "invalid-parameter", "direction"},
		{"order without a value", "edge_type=follows&order=", 400, "invalid-parameter", "order"},
		{"limit without a value", "edge_type=follows&limit=", 400, "invalid-parameter", "limit"},
		{"edge type without a value", "edge_type=", 400, "invalid-parameter", "edge_type"},
		{"limit not a number", "edge_type=follows&limit=ten", 400, "invalid-parameter", "limit"},
		{"limit zero", "edge_type=follows&limit=0", 400, "invalid-parameter", "limit"},
		{"limit over cap", "edge_type=follows&limit=5001", 422, "over-cap", "limit"},
		{"bad since", "edge_type=follows&since=yesterday", 400, "invalid-parameter", "since"},
		{"date without time", "edge_type=follows&until=2026-01-01", 400, "invalid-parameter", "until"},
		{"since after until", "edge_type=follows&since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", 400, "invalid-query", ""},
		{"unknown parameter", "edge_type=follows&page=2", 400, "invalid-parameter", "page"},
		{"repeated parameter", "edge_type=follows&edge_type=likes", 400, "invalid-parameter", "edge_type"},
		{"garbage cursor", "edge_type=follows&cursor=not*base64", 400, "invalid-cursor", "cursor"},
		{"short cursor", "edge_type=follows&cursor=AQE", 400, "invalid-cursor", "cursor"},
		{"tampered cursor", "edge_type=follows&limit=5&cursor=" + base64.RawURLEncoding.EncodeToString(tampered), 400, "invalid-cursor", "cursor"},
		{"cursor of another secret", "edge_type=follows&cursor=" + otherSecret, 400, "invalid-cursor", "cursor"},
		{"cursor with kind changed", "edge_type=follows&cursor=" + base64.RawURLEncoding.EncodeToString(nodeCursor), 400, "invalid-cursor", "cursor"},
		{"traversal cursor", "edge_type=follows&cursor=" + wrongKind, 400, "invalid-cursor", "cursor"},
		{"cursor of another direction", "edge_type=follows&direction=in&cursor=" + cur, 400, "invalid-cursor", "cursor"},
		{"cursor of another order", "edge_type=follows&order=key&cursor=" + cur, 400, "invalid-cursor", "cursor"},
		{"cursor of another window", "edge_type=follows&since=2026-01-01T00:00:00Z&cursor=" + cur, 400, "invalid-cursor", "cursor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantProblem(t, h.get("/v1/nodes/user/hub/edges?"+c.query), c.status, c.slug, c.field)
		})
	}
	// A cursor from another node, same everything else.
	wantProblem(t, h.get("/v1/nodes/user/alice/edges?edge_type=follows&limit=5&cursor="+cur), 400, "invalid-cursor", "cursor")
	p := wantProblem(t, h.get("/v1/nodes/user/hub/edges?edge_type=follows&limit=5001"), 422, "over-cap", "limit")
	if p.Cap == nil || *p.Cap != 5000 {
		t.Errorf("cap = %v", p.Cap)
	}
}

// TestEdgesNeedTheirEnds: the edges route lists an edge only while both
// its end nodes exist (tags are not implicit in the test schema): a tag
// that answers 404 has no edges from either side, a deleted tag hides its
// edges, and writing it again shows them.
func TestEdgesNeedTheirEnds(t *testing.T) {
	tag := func(id string) graph.NodeKey { return graph.NodeKey{Type: "tag", ID: id} }
	store := openEmbedded(t, []graph.Mutation{
		upN(tag("kept"), 1, graph.Props{"label": "kept"}),
		upE("likes", user("alice"), tag("kept"), 10, nil),
		upE("likes", user("alice"), tag("ghost"), 11, nil),
		upE("tagged", item("i1"), tag("ghost"), 12, nil),
	})
	h := newHarness(t, store, nil)
	wantProblem(t, h.get("/v1/nodes/tag/ghost"), 404, "not-found", "")
	ids := func(path string) []string {
		t.Helper()
		var out []string
		for _, e := range getEdges(t, h, path).Edges {
			out = append(out, e.To.ID)
		}
		return out
	}
	if got := ids("/v1/nodes/user/alice/edges?edge_type=likes"); len(got) != 1 || got[0] != "kept" {
		t.Fatalf("alice's likes: %v, want only the tag that exists", got)
	}
	if got := ids("/v1/nodes/tag/ghost/edges?edge_type=tagged&direction=in"); len(got) != 0 {
		t.Fatalf("edges into the missing tag: %v, want none", got)
	}
	if err := store.Apply(t.Context(), []graph.Mutation{{Op: graph.OpDeleteNode, Node: tag("kept"), EventTime: at(20)}}); err != nil {
		t.Fatal(err)
	}
	if got := ids("/v1/nodes/user/alice/edges?edge_type=likes"); len(got) != 0 {
		t.Fatalf("alice's likes after the tag's delete: %v, want none", got)
	}
	if err := store.Apply(t.Context(), []graph.Mutation{upN(tag("kept"), 30, nil), upN(tag("ghost"), 30, nil)}); err != nil {
		t.Fatal(err)
	}
	if got := ids("/v1/nodes/user/alice/edges?edge_type=likes&order=key"); len(got) != 2 || got[0] != "ghost" || got[1] != "kept" {
		t.Fatalf("alice's likes once both tags are written: %v, want ghost and kept", got)
	}
}
