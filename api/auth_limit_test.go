package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// testClock is a clock tests move by hand, so that token buckets and log
// sampling are deterministic.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// doFrom serves rq as if from remote address addr (host:port) and checks
// the response against openapi.yaml. Only the headers rq names are sent.
func (h *harness) doFrom(addr string, rq req) response {
	h.t.Helper()
	r := httptest.NewRequest(rq.method, "http://127.0.0.1:8080"+rq.path, strings.NewReader(rq.body))
	r.RemoteAddr = addr
	if rq.method == http.MethodPost {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, r)
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	vr := httptest.NewRequest(rq.method, "http://127.0.0.1:8080"+rq.path, strings.NewReader(rq.body))
	vr.Header = r.Header.Clone()
	if ok, errs := specValidator(h.t).ValidateHttpResponse(vr, resp); !ok {
		for _, e := range errs {
			h.t.Errorf("%s %s → %d does not match openapi.yaml: %s: %s", rq.method, rq.path, resp.StatusCode, e.Message, e.Reason)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return response{Response: resp, body: b}
}

// logLines returns the JSON log records with message msg.
func logLines(t *testing.T, logs *syncBuffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// wantNoWatermark checks that an answer says nothing about the graph's
// freshness, in the header or the body.
func wantNoWatermark(t *testing.T, r response) {
	t.Helper()
	if v := r.Header.Values(HeaderWatermark); len(v) > 0 {
		t.Errorf("%d answer carries %s: %q", r.StatusCode, HeaderWatermark, v)
	}
	if strings.Contains(string(r.body), `"watermark"`) {
		t.Errorf("%d answer carries a watermark in its body: %s", r.StatusCode, r.body)
	}
}

func wantMetric(t *testing.T, h *harness, line string) {
	t.Helper()
	if r := h.do(req{method: http.MethodGet, path: "/metrics"}); !strings.Contains(string(r.body), line+"\n") {
		t.Errorf("metrics lack %s", line)
	}
}

func TestAuthFailuresRateLimitedPerAddress(t *testing.T) {
	clk := &testClock{t: clock}
	h := newHarness(t, nil, func(o *Options) {
		o.Now = clk.now
		o.Config.AuthFailureLimit = RateLimit{RequestsPerSecond: 1, Burst: 3}
	})
	const attacker, other = "198.51.100.7:40000", "198.51.100.8:40000"
	node := "/v1/nodes/user/alice"
	wrong := map[string]string{"Authorization": "Bearer wrong-key-0123456789"}
	good := map[string]string{"Authorization": "Bearer " + testKey}

	// Three failures (no key, wrong keys) use the address's burst.
	wantProblem(t, h.doFrom(attacker, req{method: http.MethodGet, path: node}), 401, "unauthenticated", "")
	for range 2 {
		wantProblem(t, h.doFrom(attacker, req{method: http.MethodGet, path: node, header: wrong}), 401, "unauthenticated", "")
	}
	// Then the address is throttled, whatever it sends: more wrong keys,
	// a valid key, or another address in X-Forwarded-For.
	for i, hdr := range []map[string]string{
		wrong, good,
		{"Authorization": "Bearer wrong-key-0123456789", "X-Forwarded-For": "203.0.113.9"},
	} {
		r := h.doFrom(attacker, req{method: http.MethodGet, path: node, header: hdr})
		wantProblem(t, r, 429, "rate-limited", "")
		if got := r.Header.Get("Retry-After"); got != "1" {
			t.Errorf("throttled request %d: Retry-After %q, want 1", i, got)
		}
		wantNoWatermark(t, r)
	}
	// Another address has its own budget.
	wantProblem(t, h.doFrom(other, req{method: http.MethodGet, path: node, header: wrong}), 401, "unauthenticated", "")
	if r := h.doFrom(other, req{method: http.MethodGet, path: node, header: good}); r.StatusCode != 200 {
		t.Fatalf("valid key from another address: %d %s", r.StatusCode, r.body)
	}
	// The clock has not moved: one log line for seven failures.
	if lines := logLines(t, h.logs, "api authentication failed"); len(lines) != 1 {
		t.Fatalf("%d log lines for failed authentications in one second, want 1:\n%s", len(lines), h.logs)
	}
	// A second later the bucket holds one token again and the log says how
	// many lines it held back.
	clk.advance(time.Second)
	wantProblem(t, h.doFrom(attacker, req{method: http.MethodGet, path: node, header: wrong}), 401, "unauthenticated", "")
	wantProblem(t, h.doFrom(attacker, req{method: http.MethodGet, path: node, header: wrong}), 429, "rate-limited", "")
	lines := logLines(t, h.logs, "api authentication failed")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), h.logs)
	}
	if lines[1]["suppressed"] != float64(6) || lines[1]["client"] != "198.51.100.7" || lines[1]["reason"] != authInvalidKey {
		t.Errorf("second log line %v, want suppressed 6 from 198.51.100.7 for invalid_key", lines[1])
	}
	wantMetric(t, h, `rtgraph_api_auth_failures_total{reason="no_key"} 1`)
	wantMetric(t, h, `rtgraph_api_auth_failures_total{reason="invalid_key"} 4`)
	wantMetric(t, h, `rtgraph_api_auth_failures_total{reason="throttled"} 4`)
	wantMetric(t, h, `rtgraph_api_problems_total{type="rate-limited"} 4`)
}

// TestAuthFailureTableBounded: the per-address table forgets the least
// recently seen address past api.rate_limit_clients, so it cannot grow
// with the addresses an attacker uses.
func TestAuthFailureTableBounded(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) {
		o.Config.AuthFailureLimit = RateLimit{RequestsPerSecond: 1, Burst: 1}
		o.Config.RateLimitClients = 2
	})
	node := req{method: http.MethodGet, path: "/v1/nodes/user/alice"}
	wantProblem(t, h.doFrom("192.0.2.1:1", node), 401, "unauthenticated", "")
	wantProblem(t, h.doFrom("192.0.2.1:1", node), 429, "rate-limited", "")
	wantProblem(t, h.doFrom("192.0.2.2:1", node), 401, "unauthenticated", "")
	wantProblem(t, h.doFrom("192.0.2.3:1", node), 401, "unauthenticated", "")
	// 192.0.2.1 was the least recently seen of three in a table of two.
	wantProblem(t, h.doFrom("192.0.2.1:1", node), 401, "unauthenticated", "")
	wantProblem(t, h.doFrom("192.0.2.3:1", node), 429, "rate-limited", "")
}

// TestAnonymousRateLimitByConnectionAddress: anonymous callers are limited
// by the connection's address, never by X-Forwarded-For; an IPv6 client
// counts as its /64.
func TestAnonymousRateLimitByConnectionAddress(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) {
		o.Config.AuthRequired = false
		o.Config.RateLimit = RateLimit{RequestsPerSecond: 1, Burst: 1}
	})
	node := "/v1/nodes/user/alice"
	get := func(addr, xff string) response {
		var hdr map[string]string
		if xff != "" {
			hdr = map[string]string{"X-Forwarded-For": xff}
		}
		return h.doFrom(addr, req{method: http.MethodGet, path: node, header: hdr})
	}
	if r := get("198.51.100.1:5000", ""); r.StatusCode != 200 {
		t.Fatalf("first anonymous request: %d %s", r.StatusCode, r.body)
	}
	r := get("198.51.100.1:5001", "203.0.113.50")
	wantProblem(t, r, 429, "rate-limited", "")
	wantNoWatermark(t, r)
	if r := get("[2001:db8:1:2::1]:5000", ""); r.StatusCode != 200 {
		t.Fatalf("IPv6 client: %d", r.StatusCode)
	}
	wantProblem(t, get("[2001:db8:1:2:ffff::9]:5000", ""), 429, "rate-limited", "")
	if r := get("[2001:db8:1:3::1]:5000", ""); r.StatusCode != 200 {
		t.Fatalf("IPv6 client in another /64: %d", r.StatusCode)
	}
}

// TestRateLimitPerScope: counts:read requests draw on their own bucket,
// with its own size, so a key's graph reads cannot starve its count reads
// and the other way round.
func TestRateLimitPerScope(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) {
		o.Config.RateLimit = RateLimit{RequestsPerSecond: 1, Burst: 1}
		o.Config.CountsRateLimit = RateLimit{RequestsPerSecond: 1, Burst: 3}
	})
	admin := map[string]string{"Authorization": "Bearer admin-key-0123456789ab"}
	graphReq := req{method: http.MethodGet, path: "/v1/nodes/user/alice", header: admin}
	countsReq := req{method: http.MethodGet, path: "/v1/counts/user/alice?edge_type=impressed&target=item:i1", header: admin}
	if r := h.do(graphReq); r.StatusCode != 200 {
		t.Fatalf("graph read: %d %s", r.StatusCode, r.body)
	}
	r := h.do(graphReq)
	wantProblem(t, r, 429, "rate-limited", "")
	wantNoWatermark(t, r)
	for i := range 3 {
		// No count reader is configured: 404, but past the limiter.
		if r := h.do(countsReq); r.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("count read %d limited by the graph bucket: %s", i, r.body)
		}
	}
	wantProblem(t, h.do(countsReq), 429, "rate-limited", "")
}

func TestDefaultRateLimitsPerScope(t *testing.T) {
	c := DefaultConfig()
	if c.CountsRateLimit.RequestsPerSecond < 50*c.RateLimit.RequestsPerSecond {
		t.Errorf("counts:read default %v/s is not far above graph:read %v/s: one ad server would be throttled",
			c.CountsRateLimit.RequestsPerSecond, c.RateLimit.RequestsPerSecond)
	}
	for name, rl := range map[string]RateLimit{"rate_limit": c.RateLimit, "counts_rate_limit": c.CountsRateLimit, "auth_failure_limit": c.AuthFailureLimit} {
		if rl.RequestsPerSecond <= 0 || rl.Burst < 1 {
			t.Errorf("%s is off by default: %+v", name, rl)
		}
	}
	bad := DefaultConfig()
	bad.CountsRateLimit.Burst = 0
	bad.AuthFailureLimit.RequestsPerSecond = -1
	bad.RateLimitClients = 0
	err := bad.Validate()
	for _, field := range []string{"api.counts_rate_limit.burst", "api.auth_failure_limit.requests_per_second", "api.rate_limit_clients"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate does not name %s: %v", field, err)
		}
	}
}

// TestNoWatermarkOnRefusals: 401 and 429 answers do not tell an
// unauthenticated or throttled caller how fresh the graph is.
func TestNoWatermarkOnRefusals(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) { o.Config.RateLimit = RateLimit{RequestsPerSecond: 1, Burst: 1} })
	node := "/v1/nodes/user/alice"
	ok := h.get(node)
	if ok.StatusCode != 200 || ok.Header.Get(HeaderWatermark) == "" {
		t.Fatalf("a served request: %d, watermark %q", ok.StatusCode, ok.Header.Get(HeaderWatermark))
	}
	limited := h.get(node)
	wantProblem(t, limited, 429, "rate-limited", "")
	wantNoWatermark(t, limited)
	for _, hdr := range []map[string]string{{"Authorization": ""}, {"Authorization": "Bearer wrong-key-0123456789"}} {
		r := h.do(req{method: http.MethodGet, path: node, header: hdr})
		wantProblem(t, r, 401, "unauthenticated", "")
		wantNoWatermark(t, r)
	}
	forbidden := h.do(req{method: http.MethodGet, path: node, header: map[string]string{"Authorization": "Bearer counts-key-0123456789"}})
	wantProblem(t, forbidden, 403, "forbidden", "")
	wantNoWatermark(t, forbidden)
}

func TestShedRequestsCountedAndLogSampled(t *testing.T) {
	clk := &testClock{t: clock}
	block := make(chan struct{})
	entered := make(chan struct{}, 1)
	s := &blockingReader{Reader: openEmbedded(t, seed()), entered: entered, release: block}
	h := newHarness(t, s, func(o *Options) {
		o.Now = clk.now
		o.Config.MaxInFlight = 1
	})
	done := make(chan response)
	go func() { done <- h.do(req{method: http.MethodGet, path: "/v1/nodes/user/alice", noValidate: true}) }()
	<-entered
	for range 3 {
		wantProblem(t, h.get("/v1/nodes/user/bob"), 503, "unavailable", "")
	}
	if lines := logLines(t, h.logs, "api request shed"); len(lines) != 1 {
		t.Fatalf("%d log lines for 3 shed requests in one second, want 1:\n%s", len(lines), h.logs)
	}
	clk.advance(time.Second)
	wantProblem(t, h.get("/v1/nodes/user/bob"), 503, "unavailable", "")
	lines := logLines(t, h.logs, "api request shed")
	if len(lines) != 2 || lines[1]["suppressed"] != float64(2) || lines[1]["max_in_flight"] != float64(1) {
		t.Fatalf("log lines %v, want a second one with suppressed 2", lines)
	}
	close(block)
	if r := <-done; r.StatusCode != 200 {
		t.Fatalf("first request: %d", r.StatusCode)
	}
	wantMetric(t, h, "rtgraph_api_shed_requests_total 4")
}

func TestCheckListen(t *testing.T) {
	open := DefaultConfig()
	for addr, ok := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:8080": true, "127.1.2.3:80": true,
		"0.0.0.0:8080": false, ":8080": false, "[::]:8080": false, "10.0.0.5:8080": false, "example.com:8080": false,
	} {
		err := open.CheckListen(addr)
		if ok && err != nil {
			t.Errorf("%s: %v", addr, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "api.allow_unauthenticated_non_loopback") || !strings.Contains(err.Error(), "api.keys")) {
			t.Errorf("%s: %v, want a refusal naming the settings", addr, err)
		}
	}
	allowed := DefaultConfig()
	allowed.AllowUnauthenticatedNonLoopback = true
	keyed := testConfig()
	for _, c := range []Config{allowed, keyed} {
		if err := c.CheckListen("0.0.0.0:8080"); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// TestTrustedProxyForwardedFor: behind a configured proxy the client is
// the rightmost X-Forwarded-For entry that is not a trusted proxy, so two
// clients of one proxy have their own buckets; a client cannot pick its
// bucket by prepending entries.
func TestTrustedProxyForwardedFor(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) {
		o.Config.AuthFailureLimit = RateLimit{RequestsPerSecond: 1, Burst: 1}
		o.Config.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.10"}
	})
	node := "/v1/nodes/user/alice"
	via := func(proxy, xff string) response {
		return h.doFrom(proxy, req{method: http.MethodGet, path: node, header: map[string]string{"X-Forwarded-For": xff}})
	}
	wantProblem(t, via("10.1.2.3:1", "203.0.113.5, 10.9.9.9"), 401, "unauthenticated", "")
	wantProblem(t, via("192.0.2.10:1", "198.51.100.1, 203.0.113.5"), 429, "rate-limited", "")
	// Another client behind the same proxy has its own budget.
	wantProblem(t, via("10.1.2.3:1", "203.0.113.6"), 401, "unauthenticated", "")
	// Without a header the proxy itself is the client.
	wantProblem(t, h.doFrom("10.1.2.3:1", req{method: http.MethodGet, path: node}), 401, "unauthenticated", "")
	wantProblem(t, h.doFrom("10.1.2.3:1", req{method: http.MethodGet, path: node}), 429, "rate-limited", "")
	lines := logLines(t, h.logs, "api authentication failed")
	if len(lines) == 0 || lines[0]["client"] != "203.0.113.5" {
		t.Fatalf("first failure logged as %v, want client 203.0.113.5", lines)
	}
	bad := testConfig()
	bad.TrustedProxies = []string{"10.0.0.0/33"}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "api.trusted_proxies") {
		t.Fatalf("Validate: %v", err)
	}
}
