package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

func TestGetSchema(t *testing.T) {
	h := newHarness(t, nil, nil)
	r := h.get("/v1/schema")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	var got schemaResponse
	r.json(t, &got)
	var names []string
	for _, nt := range got.NodeTypes {
		names = append(names, nt.Name)
	}
	if want := []string{"doc", "entry", "item", "row", "tag", "user"}; !slices.Equal(names, want) {
		t.Fatalf("node types %v, want %v", names, want)
	}
	user := got.NodeTypes[5]
	if !user.Implicit || user.Props["age"] != "int" || user.Props["score"] != "float" || user.Props["vip"] != "bool" || len(user.Props) != 4 {
		t.Errorf("user = %+v", user)
	}
	if got.NodeTypes[4].Implicit {
		t.Errorf("tag is not implicit: %+v", got.NodeTypes[4])
	}
	edges := map[string]edgeTypeJSON{}
	for _, et := range got.EdgeTypes {
		edges[et.Name] = et
	}
	if v := edges["viewed"]; v.TTLSeconds != 3600 || !v.Reverse || v.Multiplicity != "simple" || v.Props["ms"] != "int" {
		t.Errorf("viewed = %+v", v)
	}
	if b := edges["blocks"]; b.Reverse || b.TTLSeconds != 0 {
		t.Errorf("blocks = %+v", b)
	}
	if l := edges["likes"]; !slices.Equal(l.From, []string{"user"}) || !slices.Equal(l.To, []string{"item", "tag"}) {
		t.Errorf("likes = %+v", l)
	}
	if !got.Watermark.Known {
		t.Errorf("watermark %+v", got.Watermark)
	}
	wantProblem(t, h.get("/v1/schema?x=1"), 400, "invalid-parameter", "x")
}

// listAll pages a listing to its end, checking every page's size.
func listAll(t *testing.T, h *harness, path string, limit int) []nodeJSON {
	t.Helper()
	var out []nodeJSON
	cursor := ""
	for range 1000 {
		p := fmt.Sprintf("%s?limit=%d", path, limit)
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		r := h.get(p)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", p, r.StatusCode, r.body)
		}
		var page nodesResponse
		r.json(t, &page)
		if len(page.Nodes) > limit {
			t.Fatalf("page of %d nodes over the limit %d", len(page.Nodes), limit)
		}
		if page.HasMore != (page.NextCursor != "") {
			t.Fatalf("has_more %v with cursor %q", page.HasMore, page.NextCursor)
		}
		out = append(out, page.Nodes...)
		if !page.HasMore {
			return out
		}
		cursor = page.NextCursor
	}
	t.Fatalf("listing of %s did not end", path)
	return nil
}

// listSeed is seed plus 23 items, one of them deleted, and one with an
// odd id: 24 items and 4 users exist.
func listSeed() []graph.Mutation {
	muts := seed()
	for i := range 23 {
		muts = append(muts, upN(item(fmt.Sprintf("x%02d", i)), 2, graph.Props{"title": fmt.Sprintf("t%d", i), "price": float64(i)}))
	}
	return append(muts, upN(item("x/é?#"), 2, graph.Props{"title": "odd"}),
		graph.Mutation{Op: graph.OpDeleteNode, Node: item("x05"), EventTime: at(3)})
}

func TestListNodes(t *testing.T) { listScenarios(t, openEmbedded(t, listSeed())) }

// listScenarios runs the listing checks on a store holding listSeed.
func listScenarios(t *testing.T, s graph.Store) {
	h := newHarness(t, s, nil)

	// Users: only those written as nodes, not those edges name.
	var ids []string
	for _, n := range listAll(t, h, "/v1/nodes/user", 3) {
		ids = append(ids, n.ID)
		if n.ID == "alice" && (propsOf(n.Props)["name"] != "Alice" || propsOf(n.Props)["age"] != float64(30) || !n.EventTime.Equal(at(1))) {
			t.Errorf("alice = %+v", n)
		}
	}
	slices.Sort(ids) // the order is the backend's
	if want := []string{"alice", "bob", "carol", "erin"}; !slices.Equal(ids, want) {
		t.Errorf("users %v, want %v", ids, want)
	}

	// Items, in pages of every size: the same nodes, each once, in one order.
	var first []string
	for _, limit := range []int{1, 2, 7, 24, 100} {
		var got []string
		for _, n := range listAll(t, h, "/v1/nodes/item", limit) {
			got = append(got, n.ID)
		}
		if len(got) != 24 || slices.Contains(got, "x05") || !slices.Contains(got, "x/é?#") || !slices.Contains(got, "i1") {
			t.Fatalf("limit %d: %d items %v", limit, len(got), got)
		}
		if first == nil {
			first = got
		} else if !slices.Equal(got, first) {
			t.Fatalf("limit %d: order %v differs from %v", limit, got, first)
		}
	}

	// Property selection.
	r := h.get("/v1/nodes/user?limit=1&fields=name,nope")
	var page nodesResponse
	r.json(t, &page)
	if len(page.Nodes) != 1 || len(propsOf(page.Nodes[0].Props)) != 1 || propsOf(page.Nodes[0].Props)["name"] == nil || !page.HasMore {
		t.Errorf("fields=name: %s", r.body)
	}
	r = h.get("/v1/nodes/user?limit=1&fields=")
	page = nodesResponse{}
	r.json(t, &page)
	if len(page.Nodes) != 1 || len(propsOf(page.Nodes[0].Props)) != 0 {
		t.Errorf("fields=: %s", r.body)
	}
	// Default limit.
	r = h.get("/v1/nodes/item")
	page = nodesResponse{}
	r.json(t, &page)
	if len(page.Nodes) != 24 || page.HasMore || !page.Watermark.Known {
		t.Errorf("default page: %d nodes, has_more %v", len(page.Nodes), page.HasMore)
	}
}

func TestListNodesErrors(t *testing.T) {
	h := newHarness(t, nil, nil)
	r := h.get("/v1/nodes/user?limit=1")
	var page nodesResponse
	r.json(t, &page)
	if page.NextCursor == "" {
		t.Fatalf("no cursor: %s", r.body)
	}
	cases := []struct {
		name, path, slug, field string
		status                  int
	}{
		{"unknown type", "/v1/nodes/planet", "unknown-type", "type", 400},
		{"zero limit", "/v1/nodes/user?limit=0", "invalid-parameter", "limit", 400},
		{"empty limit", "/v1/nodes/user?limit=", "invalid-parameter", "limit", 400},
		{"limit not a number", "/v1/nodes/user?limit=ten", "invalid-parameter", "limit", 400},
		{"limit over cap", "/v1/nodes/user?limit=5001", "over-cap", "limit", 422},
		{"garbage cursor", "/v1/nodes/user?cursor=abc", "invalid-cursor", "cursor", 400},
		{"another type's cursor", "/v1/nodes/item?cursor=" + url.QueryEscape(page.NextCursor), "invalid-cursor", "cursor", 400},
		{"empty field name", "/v1/nodes/user?fields=name,,age", "invalid-parameter", "fields", 400},
		{"fields too long", "/v1/nodes/user?fields=" + strings.Repeat("a", maxFieldsLen+1), "over-cap", "fields", 422},
		{"unknown parameter", "/v1/nodes/user?order=id", "invalid-parameter", "order", 400},
		{"parameter twice", "/v1/nodes/user?limit=1&limit=2", "invalid-parameter", "limit", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := wantProblem(t, h.get(c.path), c.status, c.slug, c.field)
			if c.status == 422 && p.Cap == nil {
				t.Errorf("no cap: %+v", p)
			}
		})
	}
	// A store that cannot list.
	nh := newHarness(t, struct{ graph.Reader }{openEmbedded(t, seed())}, nil)
	wantProblem(t, nh.get("/v1/nodes/user"), 501, "not-implemented", "")
}

// degrees reads a degree answer as "edge_type/direction" → count.
func degrees(t *testing.T, h *harness, path string) (map[string]int64, degreeResponse) {
	t.Helper()
	r := h.get(path)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d: %s", path, r.StatusCode, r.body)
	}
	var got degreeResponse
	r.json(t, &got)
	m := map[string]int64{}
	for _, d := range got.Degrees {
		m[d.EdgeType+"/"+d.Direction] = d.Count
	}
	return m, got
}

func TestDegree(t *testing.T) { degreeScenarios(t, openEmbedded(t, seed())) }

// degreeScenarios runs the degree checks on a store holding seed.
func degreeScenarios(t *testing.T, s graph.Store) {
	h := newHarness(t, s, nil)
	got, resp := degrees(t, h, "/v1/nodes/user/alice/degree")
	// Every edge type the schema lets a user have, in each direction it can
	// be read.
	want := map[string]int64{"blocks/out": 0, "follows/out": 3, "follows/in": 0, "likes/out": 2, "owned_by/in": 0,
		"paired/out": 0, "paired/in": 0, "parent_of/out": 0, "parent_of/in": 0, "tagged/out": 0, "viewed/out": 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("alice: %v, want %v", got, want)
	}
	if resp.Node.ID != "alice" || resp.Window != nil || resp.Stats.StoreReads != len(want) || !resp.Watermark.Known {
		t.Errorf("alice: %+v", resp)
	}
	if got, _ := degrees(t, h, "/v1/nodes/user/erin/degree?edge_type=follows&direction=in"); fmt.Sprint(got) != "map[follows/in:2]" {
		t.Errorf("erin in: %v", got)
	}
	// An implicit node that only edges name has a degree; follows/in of dave.
	if got, _ := degrees(t, h, "/v1/nodes/user/dave/degree?edge_type=follows"); fmt.Sprint(got) != "map[follows/in:1 follows/out:0]" {
		t.Errorf("dave: %v", got)
	}
	got, resp = degrees(t, h, "/v1/nodes/user/alice/degree?edge_type=follows&direction=out&since="+url.QueryEscape(at(15).Format(time.RFC3339)))
	if got["follows/out"] != 2 || resp.Window == nil || resp.Window.Since == nil || resp.Window.Until != nil {
		t.Errorf("since: %v %+v", got, resp.Window)
	}
	if got, _ := degrees(t, h, "/v1/nodes/user/hub/degree?direction=out&edge_type=follows"); got["follows/out"] != 40 {
		t.Errorf("hub: %v", got)
	}
}

func TestDegreeCountsPastOnePage(t *testing.T) {
	n := degreePage + 37
	muts := []graph.Mutation{upN(user("big"), 1, nil)}
	for i := range n {
		muts = append(muts, upE("follows", user("big"), user(fmt.Sprintf("u%05d", i)), 2+i%500, nil))
	}
	// Edges to a tag that does not exist are not visible, and not counted.
	muts = append(muts, upN(graph.NodeKey{Type: "tag", ID: "t1"}, 1, nil),
		upE("tagged", user("big"), graph.NodeKey{Type: "tag", ID: "t1"}, 5, nil),
		upE("tagged", user("big"), graph.NodeKey{Type: "tag", ID: "t-none"}, 5, nil))
	h := newHarness(t, openEmbedded(t, muts), nil)
	got, resp := degrees(t, h, "/v1/nodes/user/big/degree?direction=out")
	if got["follows/out"] != int64(n) || got["tagged/out"] != 1 {
		t.Errorf("big: %v", got)
	}
	if resp.Stats.StoreReads < 2+4 {
		t.Errorf("store reads %d: follows needs two pages", resp.Stats.StoreReads)
	}
}

func TestDegreeErrors(t *testing.T) {
	h := newHarness(t, nil, nil)
	cases := []struct {
		name, path, slug, field string
		status                  int
	}{
		{"unknown edge type", "/v1/nodes/user/alice/degree?edge_type=knows", "unknown-type", "edge_type", 400},
		{"bad direction", "/v1/nodes/user/alice/degree?direction=both", "invalid-parameter", "direction", 400},
		{"direction without a value", "/v1/nodes/user/alice/degree?direction=", "invalid-parameter", "direction", 400},
		{"edge type without a value", "/v1/nodes/user/alice/degree?edge_type=", "invalid-parameter", "edge_type", 400},
		{"time budget without a value", "/v1/nodes/user/alice/degree?time_budget_ms=", "invalid-parameter", "time_budget_ms", 400},
		{"no reverse index", "/v1/nodes/item/i1/degree?edge_type=likes&direction=in", "invalid-query", "", 400},
		{"edge type not at the node", "/v1/nodes/item/i1/degree?edge_type=follows", "invalid-query", "", 400},
		{"since after until", "/v1/nodes/user/alice/degree?since=2026-02-02T00:00:00Z&until=2026-02-01T00:00:00Z", "invalid-query", "", 400},
		{"bad time", "/v1/nodes/user/alice/degree?since=yesterday", "invalid-parameter", "since", 400},
		{"zero budget", "/v1/nodes/user/alice/degree?time_budget_ms=0", "invalid-parameter", "time_budget_ms", 400},
		{"empty budget", "/v1/nodes/user/alice/degree?time_budget_ms=", "invalid-parameter", "time_budget_ms", 400},
		{"empty since", "/v1/nodes/user/alice/degree?since=", "invalid-parameter", "since", 400},
		{"budget over cap", "/v1/nodes/user/alice/degree?time_budget_ms=10001", "over-cap", "time_budget_ms", 422},
		{"missing node", "/v1/nodes/tag/nothing/degree", "not-found", "", 404},
		{"unknown type", "/v1/nodes/planet/x/degree", "unknown-type", "type", 400},
		{"unknown parameter", "/v1/nodes/user/alice/degree?limit=3", "invalid-parameter", "limit", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantProblem(t, h.get(c.path), c.status, c.slug, c.field)
		})
	}
	// A degree that cannot be counted in its budget is a 504, not a guess.
	sh := newHarness(t, stalledReader{}, nil)
	wantProblem(t, sh.get("/v1/nodes/user/alice/degree?time_budget_ms=30"), 504, "time-budget-exceeded", "")
}
