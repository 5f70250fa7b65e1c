package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

func TestGetNode(t *testing.T) {
	h := newHarness(t, nil, nil)
	r := h.get("/v1/nodes/user/alice")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	var got nodeResponse
	r.json(t, &got)
	if got.Node.Type != "user" || got.Node.ID != "alice" || propsOf(got.Node.Props)["name"] != "Alice" || propsOf(got.Node.Props)["age"] != float64(30) {
		t.Fatalf("node = %+v", got.Node)
	}
	if !got.Node.EventTime.Equal(at(1)) {
		t.Errorf("event time %s, want %s", got.Node.EventTime, at(1))
	}
	if !got.Watermark.Known || !got.Watermark.EventTime.Equal(watermarkAt) {
		t.Errorf("watermark = %+v", got.Watermark)
	}
	if hv := r.Header.Get(HeaderWatermark); hv != watermarkAt.Format(time.RFC3339Nano) {
		t.Errorf("watermark header %q", hv)
	}
}

func TestGetNodeIDWithSlash(t *testing.T) {
	s := openEmbedded(t, []graph.Mutation{upN(user("a/b c"), 1, nil)})
	h := newHarness(t, s, nil)
	r := h.get("/v1/nodes/user/" + url.PathEscape("a/b c"))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
}

func TestGetNodeErrors(t *testing.T) {
	h := newHarness(t, nil, nil)
	cases := []struct {
		name, path   string
		status       int
		slug, field  string
		wantInDetail string
	}{
		{"unknown node", "/v1/nodes/user/nobody", 404, "not-found", "", "user:nobody"},
		{"edge-only node", "/v1/nodes/user/dave", 404, "not-found", "", "user:dave"},
		{"unknown type", "/v1/nodes/planet/earth", 400, "unknown-type", "type", "planet"},
		{"id too long", "/v1/nodes/user/" + strings.Repeat("x", graph.MaxIDLen+1), 422, "over-cap", "id", "1025"},
		{"unknown parameter", "/v1/nodes/user/alice?fields=all", 400, "invalid-parameter", "fields", "unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.get(c.path)
			p := wantProblem(t, r, c.status, c.slug, c.field)
			if !strings.Contains(p.Detail, c.wantInDetail) {
				t.Errorf("detail %q lacks %q", p.Detail, c.wantInDetail)
			}
			if c.status == 422 && (p.Cap == nil || *p.Cap != graph.MaxIDLen) {
				t.Errorf("cap = %v", p.Cap)
			}
			if p.Watermark == nil || !p.Watermark.Known {
				t.Errorf("problem lacks the watermark: %s", r.body)
			}
		})
	}
}

// stalledReader blocks every read until the context ends, as an
// overloaded store would, and reports the cancellation as retryable.
type stalledReader struct{ graph.Reader }

func (stalledReader) GetNodes(ctx context.Context, _ []graph.NodeKey) (map[graph.NodeKey]graph.Node, error) {
	<-ctx.Done()
	return nil, &graph.RetryableError{Op: "get nodes", Err: ctx.Err()}
}

func (stalledReader) Adjacency(ctx context.Context, _ graph.AdjacencyQuery) (graph.AdjacencyPage, error) {
	<-ctx.Done()
	return graph.AdjacencyPage{}, &graph.RetryableError{Op: "adjacency", Err: ctx.Err()}
}

// brokenReader fails every read with err.
type brokenReader struct{ err error }

func (b brokenReader) GetNodes(context.Context, []graph.NodeKey) (map[graph.NodeKey]graph.Node, error) {
	return nil, b.err
}

func (b brokenReader) Adjacency(context.Context, graph.AdjacencyQuery) (graph.AdjacencyPage, error) {
	return graph.AdjacencyPage{}, b.err
}

// panickyReader panics on every read: a bug in a store.
type panickyReader struct{}

func (panickyReader) GetNodes(context.Context, []graph.NodeKey) (map[graph.NodeKey]graph.Node, error) {
	panic("boom in get nodes")
}

func (panickyReader) Adjacency(context.Context, graph.AdjacencyQuery) (graph.AdjacencyPage, error) {
	panic("boom in adjacency")
}

func TestStoreFailures(t *testing.T) {
	unavailable := &graph.RetryableError{Op: "read", Err: errors.New("no host available")}
	cases := []struct {
		name   string
		store  graph.Reader
		status int
		slug   string
		retry  bool
	}{
		{"unavailable", brokenReader{unavailable}, 503, "unavailable", true},
		{"closed", brokenReader{graph.ErrClosed}, 503, "unavailable", true},
		{"permanent", brokenReader{errors.New("disk on fire")}, 500, "internal", false},
		{"budget", stalledReader{}, 504, "time-budget-exceeded", true},
		{"panic", panickyReader{}, 500, "internal", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, c.store, func(o *Options) { o.Config.DefaultTimeBudget = 50 * time.Millisecond })
			for _, path := range []string{"/v1/nodes/user/alice", "/v1/nodes/user/alice/edges?edge_type=follows"} {
				r := h.do(req{method: http.MethodGet, path: path, header: map[string]string{HeaderRequestID: "req-" + c.name}})
				p := wantProblem(t, r, c.status, c.slug, "")
				if got := r.Header.Get("Retry-After"); (got != "") != c.retry {
					t.Errorf("%s: Retry-After %q", path, got)
				}
				if p.RequestID != "req-"+c.name {
					t.Errorf("request id %q", p.RequestID)
				}
			}
			if c.name == "panic" {
				logs := h.logs.String()
				if !strings.Contains(logs, `"msg":"api panic recovered"`) || !strings.Contains(logs, `"request_id":"req-panic"`) ||
					!strings.Contains(logs, "boom in get nodes") {
					t.Errorf("panic not logged with its request id:\n%s", logs)
				}
			}
		})
	}
}
