package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/graph/storetest"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
)

const countsKey = "counts-key-0123456789"

// openCounts opens an embedded store and count store on the suite schema,
// counting viewed (user → item) and likes (user → item | tag), holding imps.
func openCounts(t *testing.T, imps []graph.Impression) graph.CountReader {
	t.Helper()
	_, c := openCountStore(t, func(cfg *embedded.Config) { cfg.Sync = false })
	if len(imps) > 0 {
		if _, err := c.RecordImpressions(context.Background(), imps); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// openCountStore opens an embedded store (DefaultConfig in a temporary
// directory, changed by mod) and its count store on the suite schema, on
// the tests' clock; both are closed when the test ends.
func openCountStore(tb testing.TB, mod func(*embedded.Config)) (*embedded.Store, *embedded.Counts) {
	tb.Helper()
	cfg := embedded.DefaultConfig()
	cfg.Dir = tb.TempDir()
	if mod != nil {
		mod(&cfg)
	}
	now := func() time.Time { return clock }
	s, err := embedded.Open(cfg, storetest.Schema(), embedded.Deps{Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	rules, err := graph.NewCountRules(storetest.CountConfig(), storetest.Schema())
	if err != nil {
		tb.Fatal(err)
	}
	c, err := embedded.NewCounts(s, rules, embedded.CountOptions{Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return s, c
}

func impAgo(u, edgeType string, target graph.NodeKey, id string, ago time.Duration) graph.Impression {
	return graph.Impression{User: user(u), EdgeType: edgeType, Target: target, EventID: id, EventTime: clock.Add(-ago)}
}

// countsSeed: alice saw i1 at 30s, 10m, 2h and 3d ago, i2 twice 2d ago;
// she liked tag t1 once 5m ago; bob saw i1 once 20s ago.
func countsSeed() []graph.Impression {
	return []graph.Impression{
		impAgo("alice", "viewed", item("i1"), "a", 30*time.Second),
		impAgo("alice", "viewed", item("i1"), "b", 10*time.Minute),
		impAgo("alice", "viewed", item("i1"), "c", 2*time.Hour),
		impAgo("alice", "viewed", item("i1"), "d", 3*24*time.Hour),
		impAgo("alice", "viewed", item("i2"), "e", 2*24*time.Hour),
		impAgo("alice", "viewed", item("i2"), "f", 2*24*time.Hour+time.Second),
		impAgo("alice", "likes", graph.NodeKey{Type: "tag", ID: "t1"}, "g", 5*time.Minute),
		impAgo("bob", "viewed", item("i1"), "h", 20*time.Second),
	}
}

func countsHarness(t *testing.T, counts graph.CountReader) *harness {
	t.Helper()
	if counts == nil {
		counts = openCounts(t, countsSeed())
	}
	h := newHarness(t, nil, func(o *Options) { o.Counts = counts })
	h.key = countsKey
	return h
}

func TestGetCounts(t *testing.T) {
	h := countsHarness(t, nil)
	r := h.get("/v1/counts/user/alice?edge_type=viewed&target=item:i1&target=item:i2&target=item:none&windows=1m,1h,1d,7d")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	var got countsResponse
	r.json(t, &got)
	if got.User != "user:alice" || got.EdgeType != "viewed" || !got.AsOf.Equal(clock) || !got.Allowed {
		t.Fatalf("response head: %s", r.body)
	}
	if strings.Join(got.Windows, ",") != "1m,1h,1d,7d" {
		t.Fatalf("windows %v", got.Windows)
	}
	want := map[string]map[string]int64{
		"item:i1":   {"1m": 1, "1h": 2, "1d": 3, "7d": 4},
		"item:i2":   {"1m": 0, "1h": 0, "1d": 0, "7d": 2},
		"item:none": {"1m": 0, "1h": 0, "1d": 0, "7d": 0},
	}
	if len(got.Targets) != 3 {
		t.Fatalf("targets: %s", r.body)
	}
	for _, tc := range got.Targets {
		for w, n := range want[tc.Target] {
			if tc.Counts[w] != n {
				t.Errorf("%s %s = %d, want %d", tc.Target, w, tc.Counts[w], n)
			}
		}
	}
	if got.Watermark.EventTime == nil || !got.Watermark.EventTime.Equal(watermarkAt) || r.Header.Get(HeaderWatermark) != watermarkAt.Format(time.RFC3339Nano) {
		t.Fatalf("watermark %+v, header %q", got.Watermark, r.Header.Get(HeaderWatermark))
	}

	// Default windows, and as_of in the past.
	asOf := clock.Add(-5 * time.Minute).Format(time.RFC3339)
	r = h.get("/v1/counts/user/alice?edge_type=viewed&target=item:i1&as_of=" + url.QueryEscape(asOf))
	r.json(t, &got)
	if strings.Join(got.Windows, ",") != "1m,5m,1h,1d,7d" || got.AsOf.Format(time.RFC3339) != asOf {
		t.Fatalf("defaults: %s", r.body)
	}
	if c := got.Targets[0].Counts; c["1m"] != 0 || c["5m"] != 0 || c["1h"] != 1 || c["7d"] != 3 {
		t.Fatalf("as of 5m ago: %v", c)
	}
}

func TestGetCountsCaps(t *testing.T) {
	h := countsHarness(t, nil)
	// The cap's target and window are added to the lookup.
	r := h.get("/v1/counts/user/alice?edge_type=viewed&target=item:i2&windows=1m&cap=item:i1,1d,3&cap=item:i2,7d,5")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	var got countsResponse
	r.json(t, &got)
	if strings.Join(got.Windows, ",") != "1m,1d,7d" || len(got.Targets) != 2 || got.Targets[1].Target != "item:i1" {
		t.Fatalf("lookup not completed by the caps: %s", r.body)
	}
	want := []capResultJSON{
		{Target: "item:i1", Window: "1d", Max: 3, Count: 3, Allowed: false, Remaining: 0},
		{Target: "item:i2", Window: "7d", Max: 5, Count: 2, Allowed: true, Remaining: 3},
	}
	if len(got.Caps) != 2 || got.Caps[0] != want[0] || got.Caps[1] != want[1] || got.Allowed {
		t.Fatalf("caps %+v allowed %v, want %+v and not allowed", got.Caps, got.Allowed, want)
	}
	// A cap of zero never allows; an id holding commas is split from the right.
	r = h.get("/v1/counts/user/alice?edge_type=viewed&cap=" + url.QueryEscape("item:a,b,1h,0"))
	r.json(t, &got)
	if len(got.Caps) != 1 || got.Caps[0].Target != "item:a,b" || got.Caps[0].Allowed || got.Caps[0].Remaining != 0 {
		t.Fatalf("zero cap: %s", r.body)
	}
}

func TestGetCountsErrors(t *testing.T) {
	h := countsHarness(t, nil)
	many := make([]string, graph.MaxCountTargets+1)
	for i := range many {
		many[i] = fmt.Sprintf("target=item:x%d", i)
	}
	cases := []struct {
		query       string
		status      int
		slug, field string
		path        string
	}{
		{"target=item:i1", 400, "invalid-parameter", "edge_type", ""},
		{"edge_type=nope&target=item:i1", 400, "unknown-type", "edge_type", ""},
		{"edge_type=follows&target=user:bob", 400, "invalid-query", "", ""},
		{"edge_type=viewed", 400, "invalid-parameter", "targets", ""},
		{"edge_type=viewed&target=i1", 400, "invalid-parameter", "target", ""},
		{"edge_type=viewed&target=thing:i1", 400, "unknown-type", "target", ""},
		{"edge_type=viewed&target=tag:t1", 400, "invalid-query", "", ""},
		{"edge_type=viewed&target=item:i1&windows=30s", 400, "invalid-parameter", "windows", ""},
		{"edge_type=viewed&target=item:i1&windows=8d", 400, "invalid-parameter", "windows", ""},
		{"edge_type=viewed&target=item:i1&windows=1h,", 400, "invalid-parameter", "windows", ""},
		{"edge_type=viewed&target=item:i1&windows=", 400, "invalid-parameter", "windows", ""},
		{"edge_type=&target=item:i1", 400, "invalid-parameter", "edge_type", ""},
		{"edge_type=viewed&target=item:i1&as_of=", 400, "invalid-parameter", "as_of", ""},
		{"edge_type=viewed&target=item:i1&windows=soon", 400, "invalid-parameter", "windows", ""},
		{"edge_type=viewed&target=item:i1&as_of=yesterday", 400, "invalid-parameter", "as_of", ""},
		{"edge_type=viewed&target=item:i1&as_of=" + url.QueryEscape(clock.Add(-2*time.Hour).Format(time.RFC3339)), 400, "invalid-query", "", ""},
		{"edge_type=viewed&edge_type=likes&target=item:i1", 400, "invalid-parameter", "edge_type", ""},
		{"edge_type=viewed&target=item:i1&limit=3", 400, "invalid-parameter", "limit", ""},
		{"edge_type=viewed&cap=item:i1,1d", 400, "invalid-parameter", "cap", ""},
		{"edge_type=viewed&cap=item:i1,1d,many", 400, "invalid-parameter", "cap", ""},
		{"edge_type=viewed&cap=item:i1,1d,-1", 400, "invalid-parameter", "cap", ""},
		{"edge_type=viewed&cap=item:i1,1s,1", 400, "invalid-parameter", "cap", ""},
		{"edge_type=viewed&" + strings.Join(many, "&"), 422, "over-cap", "target", ""},
		{"edge_type=viewed&target=item:i1", 400, "unknown-type", "type", "/v1/counts/robot/r1"},
		{"edge_type=viewed&target=item:" + strings.Repeat("x", graph.MaxIDLen+1), 422, "over-cap", "target", ""},
	}
	for _, c := range cases {
		path := c.path
		if path == "" {
			path = "/v1/counts/user/alice"
		}
		r := h.get(path + "?" + c.query)
		wantProblem(t, r, c.status, c.slug, c.field)
	}
	// 17 windows are over the cap.
	var ws []string
	for i := 1; i <= graph.MaxCountWindows+1; i++ {
		ws = append(ws, fmt.Sprintf("%dm", i))
	}
	wantProblem(t, h.get("/v1/counts/user/alice?edge_type=viewed&target=item:i1&windows="+strings.Join(ws, ",")), 422, "over-cap", "windows")
}

func TestCountsAuth(t *testing.T) {
	h := countsHarness(t, nil)
	path := "/v1/counts/user/alice?edge_type=viewed&target=item:i1"
	wantProblem(t, h.do(req{method: http.MethodGet, path: path, header: map[string]string{"Authorization": "Bearer " + testKey}}), 403, "forbidden", "")
	wantProblem(t, h.do(req{method: http.MethodGet, path: path, header: map[string]string{"Authorization": ""}}), 401, "unauthenticated", "")
	if r := h.do(req{method: http.MethodGet, path: path, header: map[string]string{"Authorization": "Bearer admin-key-0123456789ab"}}); r.StatusCode != 200 {
		t.Fatalf("admin: %d %s", r.StatusCode, r.body)
	}
	body := `{"lookups":[{"user":"user:alice","edge_type":"viewed","targets":["item:i1"]}]}`
	wantProblem(t, h.do(req{method: http.MethodPost, path: "/v1/counts:batch", body: body, header: map[string]string{"Authorization": "Bearer " + testKey}}), 403, "forbidden", "")
}

func TestPostCountsBatch(t *testing.T) {
	h := countsHarness(t, nil)
	body := `{"lookups":[
		{"user":"user:alice","edge_type":"viewed","targets":["item:i1","item:i2"],"windows":["1h","7d"],"caps":[{"target":"item:i1","window":"1h","max":2}]},
		{"user":"user:bob","edge_type":"viewed","targets":["item:i1"],"windows":["1m"],"as_of":"` + clock.Add(-time.Minute).Format(time.RFC3339) + `"},
		{"user":"user:alice","edge_type":"likes","targets":["tag:t1"]}]}`
	r := h.post("/v1/counts:batch", body)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	var got countsBatchResponse
	r.json(t, &got)
	if len(got.Results) != 3 || got.Watermark.EventTime == nil {
		t.Fatalf("batch: %s", r.body)
	}
	a, b, l := got.Results[0], got.Results[1], got.Results[2]
	if a.User != "user:alice" || a.Targets[0].Counts["1h"] != 2 || a.Targets[1].Counts["7d"] != 2 ||
		len(a.Caps) != 1 || a.Caps[0].Allowed || a.Caps[0].Remaining != 0 || a.Allowed {
		t.Fatalf("alice: %+v", a)
	}
	if b.User != "user:bob" || b.Targets[0].Counts["1m"] != 0 || !b.AsOf.Equal(clock.Add(-time.Minute)) || !b.Allowed {
		t.Fatalf("bob (as of a minute ago, his impression is 20s old): %+v", b)
	}
	if l.EdgeType != "likes" || l.Targets[0].Counts["5m"] != 0 || l.Targets[0].Counts["1h"] != 1 {
		t.Fatalf("likes: %+v", l)
	}
}

func TestPostCountsBatchErrors(t *testing.T) {
	h := countsHarness(t, nil)
	lookup := `{"user":"user:alice","edge_type":"viewed","targets":["item:i1"]}`
	many := strings.TrimSuffix(strings.Repeat(lookup+",", MaxCountLookups+1), ",")
	cases := []struct {
		body        string
		status      int
		slug, field string
	}{
		{`{"lookups":[]}`, 400, "invalid-parameter", "lookups"},
		{`{}`, 400, "invalid-parameter", "lookups"},
		{`{"lookups":[` + many + `]}`, 422, "over-cap", "lookups"},
		{`{"lookups":[` + lookup + `,{"user":"alice","edge_type":"viewed","targets":["item:i1"]}]}`, 400, "invalid-parameter", "lookups[1].user"},
		{`{"lookups":[{"user":"user:alice","edge_type":"viewed","targets":["item:i1","x"]}]}`, 400, "invalid-parameter", "lookups[0].targets[1]"},
		{`{"lookups":[{"user":"user:alice","edge_type":"viewed","targets":["item:i1"],"windows":["1h","9d"]}]}`, 400, "invalid-parameter", "lookups[0].windows[1]"},
		{`{"lookups":[{"user":"user:alice","edge_type":"viewed","targets":["item:i1"],"caps":[{"target":"item:i1","window":"1h","max":-2}]}]}`, 400, "invalid-parameter", "lookups[0].caps[0].max"},
		{`{"lookups":[{"user":"user:alice","edge_type":"viewed","targets":["item:i1"],"as_of":"now"}]}`, 400, "invalid-parameter", "lookups[0].as_of"},
		{`{"lookups":[{"user":"user:alice","targets":["item:i1"]}]}`, 400, "invalid-parameter", "lookups[0].edge_type"},
		{`{"lookups":[{"user":"user:alice","edge_type":"follows","targets":["user:bob"]}]}`, 400, "invalid-query", ""},
		{`{"lookups":[{"user":"user:alice","edge_type":"viewed","targets":["item:i1"],"limit":1}]}`, 400, "malformed-request", "lookups[0].limit"},
		{`{"lookups":`, 400, "malformed-request", ""},
	}
	for _, c := range cases {
		wantProblem(t, h.post("/v1/counts:batch", c.body), c.status, c.slug, c.field)
	}
	r := h.do(req{method: http.MethodPost, path: "/v1/counts:batch", body: `{"lookups":[` + lookup + `]}`, header: map[string]string{"Content-Type": "text/plain"}})
	wantProblem(t, r, 415, "unsupported-media-type", "")
}

// failingCounts answers every lookup with err.
type failingCounts struct{ err error }

func (f failingCounts) Counts(context.Context, graph.CountQuery) (graph.CountResult, error) {
	return graph.CountResult{}, f.err
}

func TestCountsStoreFailures(t *testing.T) {
	get := "/v1/counts/user/alice?edge_type=viewed&target=item:i1"
	batch := `{"lookups":[{"user":"user:alice","edge_type":"viewed","targets":["item:i1"]}]}`
	cases := []struct {
		err    error
		status int
		slug   string
	}{
		{&graph.RetryableError{Op: "counts", Err: errors.New("replica down")}, 503, "unavailable"},
		{graph.ErrClosed, 503, "unavailable"},
		{fmt.Errorf("cassandra: counts: %w: more than 1000000", graph.ErrCountTooLarge), 422, "over-cap"},
		{errors.New("disk on fire"), 500, "internal"},
	}
	for _, c := range cases {
		h := countsHarness(t, failingCounts{c.err})
		p := wantProblem(t, h.get(get), c.status, c.slug, "")
		if c.status == 503 && p.Watermark == nil {
			t.Errorf("%v: problem without watermark", c.err)
		}
		wantProblem(t, h.post("/v1/counts:batch", batch), c.status, c.slug, "")
	}
}

func TestCountsNotEnabled(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.key = countsKey
	p := wantProblem(t, h.get("/v1/counts/user/alice?edge_type=viewed&target=item:i1"), 404, "not-found", "")
	if !strings.Contains(p.Detail, "not enabled") {
		t.Fatalf("detail %q", p.Detail)
	}
	wantProblem(t, h.post("/v1/counts:batch", `{"lookups":[]}`), 404, "not-found", "")
}

func TestFormatWindow(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Minute: "1m", 90 * time.Second: "90s", 90 * time.Minute: "90m", 26 * time.Hour: "26h",
		7 * 24 * time.Hour: "7d", time.Hour: "1h",
	} {
		if got := formatWindow(d); got != want {
			t.Errorf("formatWindow(%s) = %q, want %q", d, got, want)
		}
	}
}

// FuzzCountsHandler sends arbitrary query strings and batch bodies through
// the count handlers, store included: no input yields a 5xx.
func FuzzCountsHandler(f *testing.F) {
	f.Add("edge_type=viewed&target=item:i1&windows=1m,1h&cap=item:i1,1d,3",
		`{"lookups":[{"user":"user:alice","edge_type":"viewed","targets":["item:i1"],"caps":[{"target":"item:i1","window":"1h","max":2}]}]}`)
	f.Add("edge_type=likes&target=tag:t1&as_of=2026-03-01T11:00:00Z", `{"lookups":[]}`)
	f.Add("cap=,,&windows=,,&target=:", `{"lookups":[{"user":":","windows":["0s"],"as_of":""}]}`)
	f.Add("edge_type=viewed&target=item:i1&windows=1d12h&as_of=1970-01-01T00:00:00Z", `{"lookups":[{"user":"user:a","edge_type":"follows","targets":["user:b"]}]}`)
	cfg := embedded.DefaultConfig()
	cfg.Dir = f.TempDir()
	cfg.Sync = false
	now := func() time.Time { return clock }
	s, err := embedded.Open(cfg, storetest.Schema(), embedded.Deps{Now: now})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	rules, err := graph.NewCountRules(storetest.CountConfig(), storetest.Schema())
	if err != nil {
		f.Fatal(err)
	}
	counts, err := embedded.NewCounts(s, rules, embedded.CountOptions{Now: now})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = counts.Close() })
	if _, err := counts.RecordImpressions(context.Background(), countsSeed()); err != nil {
		f.Fatal(err)
	}
	h, err := New(Options{Config: testConfig(), Store: s, Counts: counts, Schema: storetest.Schema(),
		Readiness: lifecycle.NewReadiness(), Now: now})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query, body string) {
		get, err := http.NewRequest(http.MethodGet, "http://127.0.0.1/v1/counts/user/alice?"+query, nil)
		if err != nil {
			return // not a URL a client could send
		}
		post := httptest.NewRequest(http.MethodPost, "/v1/counts:batch", strings.NewReader(body))
		post.Header.Set("Content-Type", "application/json")
		for _, r := range []*http.Request{get, post} {
			r.Header.Set("Authorization", "Bearer "+countsKey)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code >= 500 {
				t.Fatalf("%s %s: status %d for %q / %q: %s", r.Method, r.URL, w.Code, query, body, w.Body)
			}
		}
	})
}

// A target named again (as a target or by a cap) is counted once: the
// limit is on distinct targets, and the answer lists each once, in the
// order first named. 100 distinct targets, each named twice, and a cap on
// one of them fit; the 101st distinct one does not.
func TestCountsTargetsNamedAgain(t *testing.T) {
	h := countsHarness(t, nil)
	var q []string
	for range 2 {
		for i := range graph.MaxCountTargets {
			q = append(q, fmt.Sprintf("target=item:x%d", i))
		}
	}
	q = append(q, "cap="+url.QueryEscape("item:x50,1d,3"), "cap="+url.QueryEscape("item:x3,1h,1"), "target=item:x7")
	r := h.get("/v1/counts/user/alice?edge_type=viewed&" + strings.Join(q, "&"))
	if r.StatusCode != 200 {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	var got countsResponse
	r.json(t, &got)
	if len(got.Targets) != graph.MaxCountTargets {
		t.Fatalf("%d targets in the answer, want %d", len(got.Targets), graph.MaxCountTargets)
	}
	for i, tc := range got.Targets {
		if want := fmt.Sprintf("item:x%d", i); tc.Target != want {
			t.Fatalf("target %d is %s, want %s", i, tc.Target, want)
		}
	}
	if len(got.Caps) != 2 {
		t.Fatalf("caps %+v, want 2", got.Caps)
	}
	wantProblem(t, h.get("/v1/counts/user/alice?edge_type=viewed&"+strings.Join(q, "&")+"&cap="+url.QueryEscape("item:new,1d,1")), 422, "over-cap", "cap")
}
