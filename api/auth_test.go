package api

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuth(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.key = ""
	node := "/v1/nodes/user/alice"
	cases := []struct {
		name   string
		header map[string]string
		status int
		slug   string
	}{
		{"no key", nil, 401, "unauthenticated"},
		{"wrong key", map[string]string{"Authorization": "Bearer wrong-key-0123456789"}, 401, "unauthenticated"},
		{"prefix of a key", map[string]string{"Authorization": "Bearer " + testKey[:10]}, 401, "unauthenticated"},
		{"not bearer", map[string]string{"Authorization": "Basic " + testKey}, 401, "unauthenticated"},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}, 401, "unauthenticated"},
		{"wrong scope", map[string]string{"X-API-Key": "counts-key-0123456789"}, 403, "forbidden"},
		{"bearer", map[string]string{"Authorization": "Bearer " + testKey}, 200, ""},
		{"lower-case scheme", map[string]string{"Authorization": "bearer " + testKey}, 200, ""},
		{"x-api-key", map[string]string{"X-API-Key": testKey}, 200, ""},
		{"admin implies graph:read", map[string]string{"X-API-Key": "admin-key-0123456789ab"}, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(req{method: http.MethodGet, path: node, header: c.header})
			if c.status == 200 {
				if r.StatusCode != 200 {
					t.Fatalf("status %d: %s", r.StatusCode, r.body)
				}
				return
			}
			wantProblem(t, r, c.status, c.slug, "")
			if c.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// Health and the spec stay open.
	for _, path := range []string{"/livez", "/readyz", "/openapi.yaml", "/metrics"} {
		if r := h.get(path); r.StatusCode != 200 {
			t.Errorf("%s without a key: %d", path, r.StatusCode)
		}
	}
}

func TestAuthOptional(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) { o.Config.AuthRequired = false })
	h.key = ""
	if r := h.get("/v1/nodes/user/alice"); r.StatusCode != 200 {
		t.Fatalf("anonymous: %d %s", r.StatusCode, r.body)
	}
	r := h.do(req{method: http.MethodGet, path: "/v1/nodes/user/alice", header: map[string]string{"X-API-Key": "not-a-key-0123456789"}})
	wantProblem(t, r, 401, "unauthenticated", "")
}

func TestAuthOpenWithoutKeys(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) {
		o.Config.Keys = nil
		o.Config.MetricsRequireKey = true
	})
	h.key = ""
	if r := h.get("/v1/nodes/user/alice"); r.StatusCode != 200 {
		t.Fatalf("open API: %d %s", r.StatusCode, r.body)
	}
	if r := h.get("/metrics"); r.StatusCode != 200 {
		t.Fatalf("open API, metrics: %d", r.StatusCode)
	}
	if logs := h.logs.String(); !strings.Contains(logs, `"msg":"api open without authentication"`) || !strings.Contains(logs, `"level":"WARN"`) {
		t.Fatalf("no start-up warning:\n%s", logs)
	}
}

func TestMetricsRequireKey(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) { o.Config.MetricsRequireKey = true })
	h.key = ""
	wantProblem(t, h.get("/metrics"), 401, "unauthenticated", "")
	r := h.do(req{method: http.MethodGet, path: "/metrics", header: map[string]string{"X-API-Key": testKey}})
	wantProblem(t, r, 403, "forbidden", "")
	r = h.do(req{method: http.MethodGet, path: "/metrics", header: map[string]string{"X-API-Key": "admin-key-0123456789ab"}})
	if r.StatusCode != 200 {
		t.Fatalf("admin: %d", r.StatusCode)
	}
}

func TestMetricsOff(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) { o.Config.Metrics = false })
	r := h.do(req{method: http.MethodGet, path: "/metrics", noValidate: true})
	wantProblem(t, r, 404, "not-found", "")
}

func TestKeyAndSecretFiles(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(keyFile, []byte("file-key-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretFile, []byte(strings.Repeat("k", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, nil, func(o *Options) {
		o.Config.CursorSecret = ""
		o.Config.CursorSecretFile = secretFile
		o.Config.Keys = []Key{{Name: "file", KeyFile: keyFile, Scopes: []string{ScopeGraphRead}}}
	})
	h.key = "file-key-0123456789abcdef"
	if r := h.get("/v1/nodes/user/alice"); r.StatusCode != 200 {
		t.Fatalf("key from file: %d %s", r.StatusCode, r.body)
	}
	page := getEdges(t, h, "/v1/nodes/user/hub/edges?edge_type=follows&limit=5")
	// The cursor verifies under the file's secret.
	if _, err := (cursorCodec{key: []byte(strings.Repeat("k", 40))}).open(cursorEdges, 0, page.NextCursor); err == nil ||
		!strings.Contains(err.Error(), "another query") {
		t.Fatalf("cursor not signed with the file's secret: %v", err)
	}
}

func TestRateLimitPerKey(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) { o.Config.RateLimit = RateLimit{RequestsPerSecond: 0.01, Burst: 2} })
	for i := range 2 {
		if r := h.get("/v1/nodes/user/alice"); r.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, r.StatusCode)
		}
	}
	r := h.get("/v1/nodes/user/alice")
	wantProblem(t, r, 429, "rate-limited", "")
	if r.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	// Another key has its own budget.
	r = h.do(req{method: http.MethodGet, path: "/v1/nodes/user/alice", header: map[string]string{"X-API-Key": "admin-key-0123456789ab", "Authorization": ""}})
	if r.StatusCode != 200 {
		t.Fatalf("other key: %d %s", r.StatusCode, r.body)
	}
}

func TestInFlightLimit(t *testing.T) {
	block := make(chan struct{})
	entered := make(chan struct{}, 1)
	s := &blockingReader{Reader: openEmbedded(t, seed()), entered: entered, release: block}
	h := newHarness(t, s, func(o *Options) { o.Config.MaxInFlight = 1 })
	done := make(chan response)
	go func() { done <- h.do(req{method: http.MethodGet, path: "/v1/nodes/user/alice", noValidate: true}) }()
	<-entered
	r := h.get("/v1/nodes/user/bob")
	wantProblem(t, r, 503, "unavailable", "")
	if r.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	close(block)
	if r := <-done; r.StatusCode != 200 {
		t.Fatalf("first request: %d", r.StatusCode)
	}
}
