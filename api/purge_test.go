package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

// TestPurge: an admin purges a node; it is gone with every edge at it, in
// both directions, also after the node is written again later, while other
// nodes' edges stay. Every refusal is a problem naming what is wrong.
func TestPurge(t *testing.T) {
	store := openEmbedded(t, seed())
	h := newHarness(t, store, func(o *Options) { o.Purger = store })
	h.key = "admin-key-0123456789ab"
	r := h.post("/v1/admin/purge", `{"node":"user:alice"}`)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	var got purgeResponse
	r.json(t, &got)
	if got.Node != (nodeKeyJSON{Type: "user", ID: "alice"}) || !got.PurgedAt.Equal(clock) {
		t.Fatalf("answer %+v, want user:alice purged at %s", got, clock)
	}
	// alice comes back through the pipeline later: a new node, without the
	// purged edges.
	if err := store.Apply(t.Context(), []graph.Mutation{
		{Op: graph.OpUpsertNode, Node: user("alice"), Props: graph.Props{"name": "Alice again"}, EventTime: clock.Add(time.Second)},
	}); err != nil {
		t.Fatal(err)
	}
	h.key = testKey
	if r := h.get("/v1/nodes/user/alice"); r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), "Alice again") {
		t.Fatalf("alice after the purge and a new write: %d %s", r.StatusCode, r.body)
	}
	for _, path := range []string{"/v1/nodes/user/alice/edges?edge_type=follows", "/v1/nodes/user/alice/edges?edge_type=likes", "/v1/nodes/user/bob/edges?edge_type=follows&direction=in"} {
		r := h.get(path)
		var page edgesResponse
		r.json(t, &page)
		if r.StatusCode != http.StatusOK || len(page.Edges) != 0 {
			t.Fatalf("%s after the purge: %d %s", path, r.StatusCode, r.body)
		}
	}
	var page edgesResponse
	h.get("/v1/nodes/user/erin/edges?edge_type=follows&direction=in").json(t, &page)
	if len(page.Edges) != 2 {
		t.Fatalf("erin's followers after alice's purge: %+v, want bob and carol", page.Edges)
	}

	h.key = testKey
	wantProblem(t, h.post("/v1/admin/purge", `{"node":"user:bob"}`), http.StatusForbidden, "forbidden", "")
	h.key = ""
	wantProblem(t, h.post("/v1/admin/purge", `{"node":"user:bob"}`), http.StatusUnauthorized, "unauthenticated", "")
	h.key = "admin-key-0123456789ab"
	for _, c := range []struct {
		body, slug, field string
		status            int
	}{
		{`{"node":"planet:earth"}`, "unknown-type", "node", 400},
		{`{"node":"bob"}`, "invalid-parameter", "node", 400},
		{`{"node":"user:` + strings.Repeat("x", graph.MaxIDLen+1) + `"}`, "over-cap", "node", 422},
		{`{"node":"user:bob","also":1}`, "malformed-request", "", 400},
		{`{"node":`, "malformed-request", "", 400},
	} {
		wantProblem(t, h.post("/v1/admin/purge", c.body), c.status, c.slug, c.field)
	}
	// With counts on, the purge removes the node's impressions too.
	counts := openEmbeddedCounts(t, store)
	if _, err := counts.RecordImpressions(t.Context(), []graph.Impression{
		{User: user("bob"), EdgeType: "viewed", Target: item("i1"), EventID: "e1", EventTime: clock.Add(-time.Minute)},
		{User: user("bob"), EdgeType: "viewed", Target: item("i1"), EventID: "e2", EventTime: clock.Add(-2 * time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	hc := newHarness(t, store, func(o *Options) { o.Purger = store; o.CountPurger = counts })
	hc.key = "admin-key-0123456789ab"
	var withCounts purgeResponse
	hc.post("/v1/admin/purge", `{"node":"user:bob"}`).json(t, &withCounts)
	if withCounts.ImpressionsRemoved == nil || *withCounts.ImpressionsRemoved != 2 {
		t.Fatalf("purge with counts on: %+v, want 2 impressions removed", withCounts)
	}
	if res, err := counts.Counts(t.Context(), graph.CountQuery{User: user("bob"), EdgeType: "viewed", Targets: []graph.NodeKey{item("i1")}, Windows: []time.Duration{time.Hour}}); err != nil || res.Targets[0].Counts[0] != 0 {
		t.Fatalf("bob's count after the purge: %+v, %v; want 0", res, err)
	}
	if got.ImpressionsRemoved != nil {
		t.Fatalf("purge with counts off says %d impressions removed; want the field absent", *got.ImpressionsRemoved)
	}
	// A process without a store writer answers 501.
	ro := newHarness(t, store, nil)
	ro.key = "admin-key-0123456789ab"
	wantProblem(t, ro.post("/v1/admin/purge", `{"node":"user:bob"}`), http.StatusNotImplemented, "not-implemented", "")
}

// openEmbeddedCounts opens the count store of an embedded store of
// openEmbedded, counting the suite's edge types.
func openEmbeddedCounts(t *testing.T, store graph.Store) *embedded.Counts {
	t.Helper()
	rules, err := graph.NewCountRules(storetest.CountConfig(), storetest.Schema())
	if err != nil {
		t.Fatal(err)
	}
	c, err := embedded.NewCounts(store.(*embedded.Store), rules, embedded.CountOptions{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
