package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/traverse"
)

// TestCountsAsOfBounds: an as_of past the clock plus the configured skew is
// a 422 naming the field with the bound as cap (a future as_of would count
// nothing and allow every cap); the zero time is refused, not read as now.
func TestCountsAsOfBounds(t *testing.T) {
	h := countsHarness(t, nil)
	get := func(asOf string) response {
		return h.get("/v1/counts/user/alice?edge_type=viewed&cap=item:i1,1d,1&as_of=" + url.QueryEscape(asOf))
	}
	// Within the skew: served, and the cap is judged on the real counts.
	r := get(clock.Add(4 * time.Second).Format(time.RFC3339Nano))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("as_of within the skew: %d %s", r.StatusCode, r.body)
	}
	var ok countsResponse
	r.json(t, &ok)
	if ok.Allowed {
		t.Errorf("as_of now+4s: allowed, though alice saw i1 within the day: %s", r.body)
	}
	latest := clock.Add(5 * time.Second).Unix()
	for _, asOf := range []string{
		clock.Add(6 * time.Second).Format(time.RFC3339Nano),
		"2999-01-01T00:00:00Z",
	} {
		p := wantProblem(t, get(asOf), http.StatusUnprocessableEntity, "over-cap", "as_of")
		if p.Cap == nil || *p.Cap != latest {
			t.Errorf("as_of %s: cap %v, want %d", asOf, p.Cap, latest)
		}
	}
	for _, asOf := range []string{"0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z"} {
		p := wantProblem(t, get(asOf), http.StatusUnprocessableEntity, "over-cap", "as_of")
		if p.Cap == nil || *p.Cap != 0 {
			t.Errorf("as_of %s: cap %v, want 0", asOf, p.Cap)
		}
	}
	body := fmt.Sprintf(`{"lookups":[{"user":"user:bob","edge_type":"viewed","targets":["item:i1"]},`+
		`{"user":"user:alice","edge_type":"viewed","targets":["item:i1"],"as_of":%q}]}`, clock.Add(time.Hour).Format(time.RFC3339))
	wantProblem(t, h.post("/v1/counts:batch", body), http.StatusUnprocessableEntity, "over-cap", "lookups[1].as_of")
	body = `{"lookups":[{"user":"user:alice","edge_type":"viewed","targets":["item:i1"],"as_of":"0001-01-01T00:00:00Z"}]}`
	wantProblem(t, h.post("/v1/counts:batch", body), http.StatusUnprocessableEntity, "over-cap", "lookups[0].as_of")

	// The skew is configurable.
	h2 := newHarness(t, nil, func(o *Options) {
		o.Counts = openCounts(t, countsSeed())
		o.Config.MaxAsOfSkew = 0
	})
	h2.key = countsKey
	r = h2.get("/v1/counts/user/alice?edge_type=viewed&target=item:i1&as_of=" + url.QueryEscape(clock.Add(time.Second).Format(time.RFC3339)))
	wantProblem(t, r, http.StatusUnprocessableEntity, "over-cap", "as_of")
}

func TestConfigMaxAsOfSkew(t *testing.T) {
	for _, d := range []time.Duration{-time.Second, 2 * time.Minute} {
		cfg := DefaultConfig()
		cfg.MaxAsOfSkew = d
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "api.max_as_of_skew") {
			t.Errorf("max_as_of_skew %s: %v", d, err)
		}
	}
	if DefaultConfig().MaxAsOfSkew != 5*time.Second {
		t.Errorf("default max_as_of_skew %s", DefaultConfig().MaxAsOfSkew)
	}
}

// TestIntegralJSONNumbers: an integer field takes any JSON number whose
// value is whole, as JSON Schema's integer does; anything else is refused
// naming the field with its indices.
func TestIntegralJSONNumbers(t *testing.T) {
	h := newHarness(t, nil, nil)
	trav := func(limit, maxResults, budget string) response {
		return h.post("/v1/traversals", fmt.Sprintf(`{"start":[{"type":"user","id":"alice"}],"hops":[{"edge_types":["follows"],"limit":%s}],"max_results":%s,"time_budget_ms":%s}`,
			limit, maxResults, budget))
	}
	for _, v := range []string{"2", "2.0", "2e0", "20e-1", "0.2e1", "2.000"} {
		r := trav(v, "1e3", "1000.0")
		if r.StatusCode != http.StatusOK {
			t.Fatalf("limit %s: %d %s", v, r.StatusCode, r.body)
		}
		var tr traversalResponse
		r.json(t, &tr)
		if len(tr.Edges) != 2 {
			t.Errorf("limit %s: %d edges, want 2", v, len(tr.Edges))
		}
	}
	for _, c := range []struct{ limit, maxResults, budget, status, slug, field string }{
		{"2.5", "10", "100", "400", "invalid-parameter", "hops[0].limit"},
		{"2.0000000000000000000001", "10", "100", "400", "invalid-parameter", "hops[0].limit"},
		{"2e-400", "10", "100", "400", "invalid-parameter", "hops[0].limit"},
		{`"2"`, "10", "100", "400", "malformed-request", "hops[0].limit"},
		{"true", "10", "100", "400", "malformed-request", "hops[0].limit"},
		{"2", "1.5", "100", "400", "invalid-parameter", "max_results"},
		{"2", "10", "1e-1", "400", "invalid-parameter", "time_budget_ms"},
		{"1e30", "10", "100", "422", "over-cap", "hops[0].limit"},
		{"2", "1e400", "100", "422", "over-cap", "max_results"},
		{"-1e30", "10", "100", "400", "invalid-parameter", "hops[0].limit"},
	} {
		status := http.StatusBadRequest
		if c.status == "422" {
			status = http.StatusUnprocessableEntity
		}
		wantProblem(t, trav(c.limit, c.maxResults, c.budget), status, c.slug, c.field)
	}

	hc := countsHarness(t, nil)
	r := hc.post("/v1/counts:batch", `{"lookups":[{"user":"user:alice","edge_type":"viewed","caps":[{"target":"item:i1","window":"1d","max":5.0}]}]}`)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("cap max 5.0: %d %s", r.StatusCode, r.body)
	}
	var br countsBatchResponse
	r.json(t, &br)
	if c := br.Results[0].Caps[0]; c.Max != 5 || c.Count != 3 || c.Remaining != 2 {
		t.Errorf("cap max 5.0: %+v", c)
	}
	r = hc.post("/v1/counts:batch", `{"lookups":[{"user":"user:alice","edge_type":"viewed","targets":["item:i1"]},`+
		`{"user":"user:alice","edge_type":"viewed","caps":[{"target":"item:i1","window":"1d","max":1},{"target":"item:i1","window":"1h","max":5.5}]}]}`)
	wantProblem(t, r, http.StatusBadRequest, "invalid-parameter", "lookups[1].caps[1].max")
	r = hc.post("/v1/counts:batch", `{"lookups":[{"user":"user:alice","edge_type":"viewed","caps":[{"target":"item:i1","window":"1d"}]}]}`)
	wantProblem(t, r, http.StatusBadRequest, "invalid-parameter", "lookups[0].caps[0].max")
}

func TestIntegralValue(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"5.0", 5, true}, {"5e0", 5, true}, {"5E+0", 5, true}, {"50e-1", 5, true}, {"0.5e1", 5, true},
		{"-5.00", -5, true}, {"0.0", 0, true}, {"-0e10", 0, true}, {"1e18", 1e18, true},
		{"1e19", math.MaxInt64, true}, {"-1e19", math.MinInt64, true}, {"1e999999999999", math.MaxInt64, true},
		{"5.5", 0, false}, {"0.1", 0, false}, {"1e-1", 0, false}, {"15e-1", 0, false}, {"1e-999999999999", 0, false},
	} {
		got, ok := integralValue(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("integralValue(%s) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestTypeErrorsCarryIndices: a JSON value of the wrong type is named by
// its full path, array indices included.
func TestTypeErrorsCarryIndices(t *testing.T) {
	h := newHarness(t, nil, nil)
	for body, field := range map[string]string{
		`{"start":[{"type":"user","id":"a"},{"type":"user","id":"b"},{"type":"user","id":7}],"hops":[{"edge_types":["follows"]}]}`: "start[2].id",
		`{"start":[{"type":"user","id":"a"}],"hops":[{"edge_types":["follows"]},{"edge_types":["follows", 3]}]}`:                   "hops[1].edge_types[1]",
		`{"start":[{"type":"user","id":"a"}],"hops":[{"edge_types":["follows"],"where":[]}]}`:                                      "hops[0].where",
		`{"start":{},"hops":[]}`: "start",
		// Unknown fields: named where they are, though "type" is known in
		// start[0] and "limitx" is a free key of where.
		`{"start":[{"type":"user","id":"a"}],"hops":[{"edge_types":["follows"]},{"edge_types":["follows"],"type":"x"}]}`: "hops[1].type",
		`{"start":[{"type":"user","id":"a"}],"hops":[{"edge_types":["follows"],"where":{"limitx":1},"limitx":2}]}`:       "hops[0].limitx",
		`{"Start":[{"type":"user","id":"a"}],"hops":[{"edge_types":["follows"]}],"bogus":true}`:                          "bogus",
		`{"include_paths":"yes","hops":[{}]}`: "include_paths",
	} {
		wantProblem(t, h.post("/v1/traversals", body), http.StatusBadRequest, "malformed-request", field)
	}
	hc := countsHarness(t, nil)
	r := hc.post("/v1/counts:batch", `{"lookups":[{"user":"user:a","edge_type":"viewed","targets":["item:i1"]},{"user":"user:a","edge_type":"viewed","targets":["item:i1",{}]}]}`)
	wantProblem(t, r, http.StatusBadRequest, "malformed-request", "lookups[1].targets[1]")
	r = hc.post("/v1/counts:batch", `{"lookups":[{"user":"user:a","edge_type":"viewed","targets":["item:i1"]},{"user":"user:a","edge_type":"viewed","caps":[{"target":"item:i1","window":"1d","max":1,"user":"x"}]}]}`)
	wantProblem(t, r, http.StatusBadRequest, "malformed-request", "lookups[1].caps[0].user")
}

// TestInvalidUTF8 is a 400 malformed-request wherever the bytes are.
func TestInvalidUTF8(t *testing.T) {
	h := newHarness(t, nil, nil)
	hc := countsHarness(t, nil)
	for _, c := range []struct {
		h    *harness
		path string
	}{
		{h, "/v1/nodes/user/a%FFb"},
		{h, "/v1/nodes/us%C3er/a"},
		{h, "/v1/nodes/user/alice/edges?edge_type=follows&cursor=%FF"},
		{h, "/v1/nodes/user/alice/edges?edge_type=follows&since=%C3%28"},
		{h, "/v1/nodes/user/alice?x%FF=1"},
		{hc, "/v1/counts/user/a%FF?edge_type=viewed&target=item:i1"},
		{hc, "/v1/counts/user/alice?edge_type=viewed&target=item:%FF"},
	} {
		wantProblem(t, c.h.get(c.path), http.StatusBadRequest, "malformed-request", "")
	}
	wantProblem(t, h.post("/v1/traversals", "{\"start\":[{\"type\":\"user\",\"id\":\"a\xffb\"}],\"hops\":[{\"edge_types\":[\"follows\"]}]}"),
		http.StatusBadRequest, "malformed-request", "")
	wantProblem(t, hc.post("/v1/counts:batch", "{\"lookups\":[{\"user\":\"user:\xc3\",\"edge_type\":\"viewed\",\"targets\":[\"item:i1\"]}]}"),
		http.StatusBadRequest, "malformed-request", "")
}

// TestMalformedQueryEscapes: a pair whose escapes do not decode refuses
// the request instead of being dropped (a dropped target would go
// unchecked).
func TestMalformedQueryEscapes(t *testing.T) {
	h := newHarness(t, nil, nil)
	hc := countsHarness(t, nil)
	for _, c := range []struct {
		h     *harness
		path  string
		field string
	}{
		{hc, "/v1/counts/user/alice?edge_type=viewed&target=item:i1&target=%zz", "target"},
		{hc, "/v1/counts/user/alice?edge_type=viewed&target=item:i1&cap=item:i1,1d,%2", "cap"},
		{hc, "/v1/counts/user/alice?edge_type=viewed&target=item:i1;x=1", ""},
		{h, "/v1/nodes/user/alice/edges?edge_type=follows&limit=%zz", "limit"},
		{h, "/v1/nodes/user/alice/edges?edge_type=follows&%zz=1", ""},
		{h, "/v1/nodes/user/alice?a=%", "a"},
	} {
		wantProblem(t, c.h.get(c.path), http.StatusBadRequest, "malformed-request", c.field)
	}
	// The POST routes take no query parameter: a bad escape is malformed,
	// a well-formed parameter unknown.
	body := `{"start":[{"type":"user","id":"alice"}],"hops":[{"edge_types":["follows"]}]}`
	wantProblem(t, h.post("/v1/traversals?x=%zz", body), http.StatusBadRequest, "malformed-request", "x")
	wantProblem(t, h.post("/v1/traversals?%FF=1", body), http.StatusBadRequest, "malformed-request", "")
	wantProblem(t, h.post("/v1/traversals?max_results=1", body), http.StatusBadRequest, "invalid-parameter", "max_results")
	batch := `{"lookups":[{"user":"user:alice","edge_type":"viewed","targets":["item:i1"]}]}`
	wantProblem(t, hc.post("/v1/counts:batch?as_of=%zz", batch), http.StatusBadRequest, "malformed-request", "as_of")
	wantProblem(t, hc.post("/v1/counts:batch?as_of=x", batch), http.StatusBadRequest, "invalid-parameter", "as_of")
	// Well-formed escapes still decode.
	r := hc.get("/v1/counts/user/alice?edge_type=viewed&target=item%3Ai1&windows=1m%2C1d")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("escaped query: %d %s", r.StatusCode, r.body)
	}
}

// TestLongIDsOverCapEverywhere: an id over graph.MaxIDLen is the same 422
// over-cap, with cap, on every route that takes one.
func TestLongIDsOverCapEverywhere(t *testing.T) {
	long := strings.Repeat("x", 1025)
	h := newHarness(t, nil, nil)
	hc := countsHarness(t, nil)
	start, _ := json.Marshal([]nodeKeyJSON{{"user", "a"}, {"user", "b"}, {"user", long}})
	for _, c := range []struct {
		h     *harness
		r     req
		field string
	}{
		{h, req{method: http.MethodGet, path: "/v1/nodes/user/" + long}, "id"},
		{h, req{method: http.MethodGet, path: "/v1/nodes/user/" + long + "/edges?edge_type=follows"}, "id"},
		{h, req{method: http.MethodPost, path: "/v1/traversals", body: `{"start":` + string(start) + `,"hops":[{"edge_types":["follows"]}]}`}, "start[2].id"},
		{hc, req{method: http.MethodGet, path: "/v1/counts/user/" + long + "?edge_type=viewed&target=item:i1"}, "id"},
		{hc, req{method: http.MethodGet, path: "/v1/counts/user/alice?edge_type=viewed&target=item:" + long}, "target"},
		{hc, req{method: http.MethodPost, path: "/v1/counts:batch", body: `{"lookups":[{"user":"user:a","edge_type":"viewed","targets":["item:i1"]},{"user":"user:` + long + `","edge_type":"viewed","targets":["item:i1"]}]}`}, "lookups[1].user"},
		{hc, req{method: http.MethodPost, path: "/v1/counts:batch", body: `{"lookups":[{"user":"user:a","edge_type":"viewed","targets":["item:i1","item:` + long + `"]}]}`}, "lookups[0].targets[1]"},
	} {
		p := wantProblem(t, c.h.do(c.r), http.StatusUnprocessableEntity, "over-cap", c.field)
		if p.Cap == nil || *p.Cap != 1024 {
			t.Errorf("%s %s: cap %v, want 1024", c.r.method, c.field, p.Cap)
		}
	}
}

// TestRFC3339LowercaseLetters: RFC 3339 (and the spec's date-time format)
// lets T and Z be lowercase.
func TestRFC3339LowercaseLetters(t *testing.T) {
	h := newHarness(t, nil, nil)
	r := h.get("/v1/nodes/user/alice/edges?edge_type=follows&since=2026-02-01t00:00:00z")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("lowercase t and z: %d %s", r.StatusCode, r.body)
	}
	var er edgesResponse
	r.json(t, &er)
	if er.Window.Since == nil || !er.Window.Since.Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("since %v", er.Window.Since)
	}
}

// TestSpecCapsMatchServer: the spec states the server's default caps, so a
// client generated from it cannot send a value the server refuses for a
// limit (a 422).
func TestSpecCapsMatchServer(t *testing.T) {
	var doc map[string]any
	if err := yaml.Unmarshal(OpenAPISpec(), &doc); err != nil {
		t.Fatal(err)
	}
	at := func(path ...string) any {
		var v any = doc
		for _, p := range path {
			switch x := v.(type) {
			case map[string]any:
				v = x[p]
			case []any:
				for _, item := range x {
					if m, ok := item.(map[string]any); ok && m["name"] == p {
						v = m
					}
				}
			default:
				t.Fatalf("%v: no %q", path, p)
			}
		}
		return v
	}
	schemas := func(path ...string) any { return at(append([]string{"components", "schemas"}, path...)...) }
	cfg := DefaultConfig()
	for _, c := range []struct {
		name string
		got  any
		want int
	}{
		{"TypeName.maxLength", schemas("TypeName", "maxLength"), graph.MaxNameLen},
		{"NodeID.maxLength", schemas("NodeID", "maxLength"), graph.MaxIDLen},
		{"NodeRef.maxLength", schemas("NodeRef", "maxLength"), graph.MaxNameLen + 1 + graph.MaxIDLen},
		{"Hop.limit.maximum", schemas("Hop", "properties", "limit", "maximum"), cfg.MaxHopLimit},
		{"Hop.edge_types.maxItems", schemas("Hop", "properties", "edge_types", "maxItems"), traverse.MaxEdgeTypes},
		{"Hop.node_types.maxItems", schemas("Hop", "properties", "node_types", "maxItems"), traverse.MaxNodeTypes},
		{"PropFilter.maxProperties", schemas("PropFilter", "maxProperties"), traverse.MaxPropFilters},
		{"TraversalRequest.hops.maxItems", schemas("TraversalRequest", "properties", "hops", "maxItems"), cfg.MaxHops},
		{"TraversalRequest.start.maxItems", schemas("TraversalRequest", "properties", "start", "maxItems"), cfg.MaxStartNodes},
		{"TraversalRequest.max_results.maximum", schemas("TraversalRequest", "properties", "max_results", "maximum"), cfg.MaxResults},
		{"TraversalRequest.time_budget_ms.maximum", schemas("TraversalRequest", "properties", "time_budget_ms", "maximum"), int(cfg.MaxTimeBudget.Milliseconds())},
		{"CountsBatchRequest.lookups.maxItems", schemas("CountsBatchRequest", "properties", "lookups", "maxItems"), MaxCountLookups},
		{"CountsLookup.targets.maxItems", schemas("CountsLookup", "properties", "targets", "maxItems"), graph.MaxCountTargets},
		{"CountsLookup.windows.maxItems", schemas("CountsLookup", "properties", "windows", "maxItems"), graph.MaxCountWindows},
		{"CountsLookup.caps.maxItems", schemas("CountsLookup", "properties", "caps", "maxItems"), maxCapsPerLookup},
		{"getEdges limit maximum", at("paths", "/v1/nodes/{type}/{id}/edges", "get", "parameters", "limit", "schema", "maximum"), cfg.MaxHopLimit},
		{"getCounts target maxItems", at("paths", "/v1/counts/{type}/{id}", "get", "parameters", "target", "schema", "maxItems"), graph.MaxCountTargets},
		{"getCounts cap maxItems", at("paths", "/v1/counts/{type}/{id}", "get", "parameters", "cap", "schema", "maxItems"), maxCapsPerLookup},
	} {
		if got, ok := c.got.(int); !ok || got != c.want {
			t.Errorf("%s = %v, want %d", c.name, c.got, c.want)
		}
	}
	// The type-name pattern is the schema loader's: a name it accepts
	// matches, one it refuses does not.
	re := regexp.MustCompile(schemas("TypeName", "pattern").(string))
	for name, ok := range map[string]bool{"user": true, "ad_impression": true, "a1": true, "User": false, "1a": false, "_a": false, "a-b": false, "": false} {
		if re.MatchString(name) != ok {
			t.Errorf("TypeName pattern on %q: %v", name, !ok)
		}
	}
}
