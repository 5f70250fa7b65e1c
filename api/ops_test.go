package api

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.yaml.in/yaml/v3"

	"github.com/rtgraph/rtgraph/graph"
)

var update = flag.Bool("update", false, "rewrite testdata/openapi_surface.golden")

// blockingReader holds GetNodes until release is closed.
type blockingReader struct {
	graph.Reader
	entered chan<- struct{}
	release <-chan struct{}
}

func (b *blockingReader) GetNodes(ctx context.Context, keys []graph.NodeKey) (map[graph.NodeKey]graph.Node, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Reader.GetNodes(ctx, keys)
}

type specDoc struct {
	Paths map[string]map[string]struct {
		OperationID string                 `yaml:"operationId"`
		Responses   map[string]any         `yaml:"responses"`
		Parameters  []map[string]any       `yaml:"parameters"`
		Security    []map[string][]string  `yaml:"security"`
		RequestBody map[string]any         `yaml:"requestBody"`
		Extra       map[string]interface{} `yaml:",inline"`
	} `yaml:"paths"`
}

func loadSpec(t *testing.T) specDoc {
	t.Helper()
	var d specDoc
	if err := yaml.Unmarshal(OpenAPISpec(), &d); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	return d
}

// surface renders what a client depends on: each operation, its
// parameters and its response codes, one line each, sorted.
func surface(d specDoc) string {
	var lines []string
	for path, ops := range d.Paths {
		for method, op := range ops {
			var codes, params []string
			for c := range op.Responses {
				codes = append(codes, c)
			}
			for _, p := range op.Parameters {
				if ref, ok := p["$ref"].(string); ok {
					params = append(params, strings.TrimPrefix(ref, "#/components/parameters/"))
				} else {
					params = append(params, fmt.Sprint(p["name"]))
				}
			}
			slices.Sort(codes)
			lines = append(lines, fmt.Sprintf("%s %s %s params=%s responses=%s", strings.ToUpper(method), path, op.OperationID,
				strings.Join(params, ","), strings.Join(codes, ",")))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// TestOpenAPIGolden guards the API surface: a change to an operation, a
// parameter or a response code must be deliberate (go test -run Golden
// -update rewrites the golden file, and the diff is reviewed).
func TestOpenAPIGolden(t *testing.T) {
	got := surface(loadSpec(t))
	const file = "testdata/openapi_surface.golden"
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if got != string(want) {
		t.Fatalf("the API surface changed; if intended, rerun with -update.\ngot:\n%s\nwant:\n%s", got, want)
	}
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	if ok, errs := specValidator(t).ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("%s: %s", e.Message, e.Reason)
		}
	}
}

// TestRoutesMatchSpec walks the router: every route is in the spec and
// every operation of the spec is routed.
func TestRoutesMatchSpec(t *testing.T) {
	h := newHarness(t, nil, nil)
	routes, ok := h.h.(chi.Routes)
	if !ok {
		t.Fatalf("handler is %T, not a chi router", h.h)
	}
	routed := map[string]bool{}
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routed[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, ops := range loadSpec(t).Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	// The explorer page's static files (every method; the page's handler
	// answers 405 itself) are not API operations.
	for _, r := range []string{"/ui", "/ui/*"} {
		if !routed["GET "+r] {
			t.Errorf("%s is not routed", r)
		}
		for mr := range routed {
			if strings.HasSuffix(mr, " "+r) {
				delete(routed, mr)
			}
		}
	}
	for r := range routed {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.yaml", r)
		}
	}
	for d := range documented {
		if !routed[d] {
			t.Errorf("openapi.yaml documents %s, which is not routed", d)
		}
	}
	if len(routed) != 13 {
		t.Errorf("%d routes: %v", len(routed), routed)
	}
}

// TestSpecValidationIsNotVacuous makes sure the response validation the
// handler tests rely on does catch a response that breaks the spec.
func TestSpecValidationIsNotVacuous(t *testing.T) {
	v := specValidator(t)
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/v1/nodes/user/alice", nil)
	for _, body := range []string{
		`{"node":{"type":"user","id":"a","props":{},"event_time":"2026-01-01T00:00:00Z"}}`,                                                         // no watermark
		`{"node":{"type":"user","id":"a","props":{},"event_time":"2026-01-01T00:00:00Z"},"watermark":{"event_time":null,"known":false},"extra":1}`, // unknown field
		`{"node":{"type":"user","id":"a","props":{"x":[1]},"event_time":"2026-01-01T00:00:00Z"},"watermark":{"event_time":null,"known":false}}`,    // bad prop
	} {
		resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body))}
		if ok, _ := v.ValidateHttpResponse(r, resp); ok {
			t.Errorf("validator accepted %s", body)
		}
	}
}

func TestHealthAndSpecEndpoints(t *testing.T) {
	h := newHarness(t, nil, nil)
	if r := h.get("/livez"); r.StatusCode != 200 {
		t.Fatalf("livez %d", r.StatusCode)
	}
	r := h.get("/openapi.yaml")
	if r.StatusCode != 200 || !bytes.Equal(r.body, OpenAPISpec()) || r.Header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("openapi.yaml: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	disk, err := os.ReadFile("openapi.yaml")
	if err != nil || !bytes.Equal(disk, OpenAPISpec()) {
		t.Fatalf("embedded spec differs from api/openapi.yaml: %v", err)
	}
}

func TestReadiness(t *testing.T) {
	h := newHarness(t, nil, nil)
	if r := h.get("/readyz"); r.StatusCode != 200 {
		t.Fatalf("ready: %d", r.StatusCode)
	}
	h.ready.Unmark("caches_loaded")
	r := h.get("/readyz")
	if r.StatusCode != 503 || !strings.Contains(string(r.body), "caches_loaded") {
		t.Fatalf("not ready: %d %s", r.StatusCode, r.body)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	h := newHarness(t, nil, nil)
	wantProblem(t, h.do(req{method: http.MethodGet, path: "/v2/nodes", noValidate: true}), 404, "not-found", "")
	wantProblem(t, h.do(req{method: http.MethodDelete, path: "/v1/nodes/user/alice", noValidate: true}), 405, "method-not-allowed", "")
	wantProblem(t, h.do(req{method: http.MethodGet, path: "/v1/traversals", noValidate: true}), 405, "method-not-allowed", "")
}

func TestRequestID(t *testing.T) {
	h := newHarness(t, nil, nil)
	r := h.do(req{method: http.MethodGet, path: "/v1/nodes/user/alice", header: map[string]string{HeaderRequestID: "abc-123"}})
	if r.Header.Get(HeaderRequestID) != "abc-123" {
		t.Fatalf("kept id %q", r.Header.Get(HeaderRequestID))
	}
	for _, bad := range []string{"", "has space", strings.Repeat("x", 65), "semi;colon"} {
		r := h.do(req{method: http.MethodGet, path: "/v1/nodes/user/alice", header: map[string]string{HeaderRequestID: bad}})
		if id := r.Header.Get(HeaderRequestID); id == bad || len(id) != 24 {
			t.Errorf("incoming %q: id %q", bad, id)
		}
	}
}

func TestWatermarkUnknown(t *testing.T) {
	for name, f := range map[string]Freshness{
		"nil":   nil,
		"zero":  fixedFreshness{},
		"error": fixedFreshness{t: watermarkAt, err: errors.New("offsets unknown")},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil, func(o *Options) { o.Freshness = f })
			r := h.get("/v1/nodes/user/alice")
			var got nodeResponse
			r.json(t, &got)
			if r.Header.Get(HeaderWatermark) != "unknown" || got.Watermark.Known || got.Watermark.EventTime != nil {
				t.Fatalf("header %q, body %+v", r.Header.Get(HeaderWatermark), got.Watermark)
			}
			if !strings.Contains(string(r.body), `"watermark":{"event_time":null,"known":false}`) {
				t.Fatalf("body %s", r.body)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.get("/v1/nodes/user/alice")
	h.get("/v1/nodes/user/nobody-" + strings.Repeat("z", 20))
	runTraversal(t, h, `{"start":[{"type":"user","id":"hub"}],"hops":[{"edge_types":["follows"],"limit":3}]}`)
	r := h.get("/metrics")
	text := string(r.body)
	for _, want := range []string{
		`rtgraph_api_request_duration_seconds_count{code="200",method="GET",route="/v1/nodes/{type}/{id}"} 1`,
		`rtgraph_api_request_duration_seconds_count{code="404",method="GET",route="/v1/nodes/{type}/{id}"} 1`,
		`rtgraph_api_request_duration_seconds_count{code="200",method="POST",route="/v1/traversals"} 1`,
		`rtgraph_api_stage_duration_seconds_count{route="/v1/traversals",stage="validation"} 1`,
		`rtgraph_api_stage_duration_seconds_count{route="/v1/traversals",stage="storage"} 1`,
		`rtgraph_api_stage_duration_seconds_count{route="/v1/traversals",stage="total"} 1`,
		`rtgraph_api_store_reads_count{route="/v1/traversals"} 1`,
		`rtgraph_api_truncated_hops_total{reason="hop_limit"} 1`,
		`rtgraph_api_problems_total{type="not-found"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, "nobody-") || strings.Contains(text, `route="/v1/nodes/user`) {
		t.Error("a raw path leaked into a label")
	}
}
