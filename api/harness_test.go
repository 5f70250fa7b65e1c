package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/graph/storetest"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is "now" for every handler test: event times sit a few days
// before it, inside the default 100-day lookback.
var clock = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return clock.Add(-72 * time.Hour).Add(time.Duration(sec) * time.Second) }

func user(id string) graph.NodeKey { return graph.NodeKey{Type: "user", ID: id} }
func item(id string) graph.NodeKey { return graph.NodeKey{Type: "item", ID: id} }

func upN(k graph.NodeKey, sec int, p graph.Props) graph.Mutation {
	return graph.Mutation{Op: graph.OpUpsertNode, Node: k, Props: p, EventTime: at(sec)}
}

func upE(typ string, from, to graph.NodeKey, sec int, p graph.Props) graph.Mutation {
	return graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: typ, From: from, To: to}, Props: p, EventTime: at(sec)}
}

// seed is the graph most handler tests read: alice follows bob, carol and
// dave (newest first: dave, carol, bob); bob and carol follow erin; alice
// likes two items; hub follows 40 users.
func seed() []graph.Mutation {
	muts := []graph.Mutation{
		upN(user("alice"), 1, graph.Props{"name": "Alice", "age": int64(30), "vip": true}),
		upN(user("bob"), 1, graph.Props{"name": "Bob", "vip": true}),
		upN(user("carol"), 1, graph.Props{"name": "Carol", "vip": false}),
		upN(user("erin"), 1, graph.Props{"name": "Erin"}),
		upN(item("i1"), 1, graph.Props{"title": "lamp", "price": 12.5}),
		upE("follows", user("alice"), user("bob"), 10, graph.Props{"weight": 1.0}),
		upE("follows", user("alice"), user("carol"), 20, graph.Props{"weight": 0.5}),
		upE("follows", user("alice"), user("dave"), 30, nil),
		upE("follows", user("bob"), user("erin"), 40, nil),
		upE("follows", user("carol"), user("erin"), 50, nil),
		upE("likes", user("alice"), item("i1"), 60, graph.Props{"rating": int64(5)}),
		upE("likes", user("alice"), item("i2"), 70, graph.Props{"rating": int64(2)}),
	}
	for i := range 40 {
		muts = append(muts, upE("follows", user("hub"), user(fmt.Sprintf("f%02d", i)), 100+i, nil))
	}
	return muts
}

// openEmbedded opens a Pebble store in a temporary directory holding muts.
func openEmbedded(t testing.TB, muts []graph.Mutation) graph.Store {
	t.Helper()
	cfg := embedded.DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Sync = false
	s, err := embedded.Open(cfg, storetest.Schema(), embedded.Deps{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatalf("open embedded store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if len(muts) > 0 {
		if err := s.Apply(context.Background(), muts); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	return s
}

type fixedFreshness struct {
	t   time.Time
	err error
}

func (f fixedFreshness) Watermark(context.Context) (time.Time, error) { return f.t, f.err }

var watermarkAt = clock.Add(-time.Minute)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	t     testing.TB
	h     http.Handler
	reg   *prometheus.Registry
	logs  *syncBuffer
	ready *lifecycle.Readiness
	key   string // sent by do unless a request sets its own
}

// testKey has graph:read; the harness sends it by default.
const testKey = "test-key-0123456789abcdef"

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.CursorSecret = strings.Repeat("s", 32)
	cfg.Keys = []Key{
		{Name: "reader", Key: testKey, Scopes: []string{ScopeGraphRead}},
		{Name: "counter", Key: "counts-key-0123456789", Scopes: []string{ScopeCountsRead}},
		{Name: "ops", Key: "admin-key-0123456789ab", Scopes: []string{ScopeAdmin}},
	}
	cfg.RateLimit = RateLimit{}
	// The largest budget: these tests check answers, not speed, and the
	// Cassandra runs share the machine's cores with everything else the
	// suite runs. Tests of the budget itself set a short one.
	cfg.DefaultTimeBudget = cfg.MaxTimeBudget
	return cfg
}

// newHarness serves store (the seed graph on Pebble when nil) with the
// test config, changed by mod.
func newHarness(t testing.TB, store graph.Reader, mod func(*Options)) *harness {
	t.Helper()
	if store == nil {
		store = openEmbedded(t, seed())
	}
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	ready := lifecycle.NewReadiness()
	opts := Options{
		Config:    testConfig(),
		Store:     store,
		Schema:    storetest.Schema(),
		Freshness: fixedFreshness{t: watermarkAt},
		Readiness: ready,
		Registry:  reg,
		Gatherer:  reg,
		Logger:    slog.New(slog.NewJSONHandler(logs, nil)),
		Now:       func() time.Time { return clock },
	}
	if mod != nil {
		mod(&opts)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	return &harness{t: t, h: h, reg: reg, logs: logs, ready: ready, key: testKey}
}

var (
	specOnce sync.Once
	specV    validator.Validator
	specErr  error
)

func specValidator(t testing.TB) validator.Validator {
	t.Helper()
	specOnce.Do(func() {
		doc, err := libopenapi.NewDocument(OpenAPISpec())
		if err != nil {
			specErr = err
			return
		}
		v, errs := validator.NewValidator(doc)
		if len(errs) > 0 {
			specErr = fmt.Errorf("%v", errs)
			return
		}
		specV = v
	})
	if specErr != nil {
		t.Fatalf("load openapi.yaml: %v", specErr)
	}
	return specV
}

// response is a recorded response, its body kept.
type response struct {
	*http.Response
	body []byte
}

func (r response) json(t testing.TB, dst any) {
	t.Helper()
	if err := json.Unmarshal(r.body, dst); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) problem(t testing.TB) Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, body %s", ct, r.body)
	}
	var p Problem
	r.json(t, &p)
	return p
}

// req is one request; header values replace the harness defaults.
type req struct {
	method, path string
	body         string
	header       map[string]string
	noValidate   bool // for responses the spec does not describe (none, so far)
}

// do serves rq and checks the response against openapi.yaml.
func (h *harness) do(rq req) response {
	h.t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r := httptest.NewRequest(rq.method, "http://127.0.0.1:8080"+rq.path, body)
	if rq.method == http.MethodPost {
		r.Header.Set("Content-Type", "application/json")
	}
	if h.key != "" {
		r.Header.Set("Authorization", "Bearer "+h.key)
	}
	for k, v := range rq.header {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, r)
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if !rq.noValidate {
		vr := httptest.NewRequest(rq.method, "http://127.0.0.1:8080"+rq.path, strings.NewReader(rq.body))
		vr.Header = r.Header.Clone()
		if ok, errs := specValidator(h.t).ValidateHttpResponse(vr, resp); !ok {
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Message+": "+e.Reason)
				for _, se := range e.SchemaValidationErrors {
					msgs = append(msgs, "  "+se.Reason+" at "+se.FieldPath+" ("+se.KeywordLocation+")")
				}
			}
			h.t.Errorf("%s %s → %d does not match openapi.yaml:\n%s\nbody: %s", rq.method, rq.path, resp.StatusCode, strings.Join(msgs, "\n"), b)
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return response{Response: resp, body: b}
}

func (h *harness) get(path string) response { return h.do(req{method: http.MethodGet, path: path}) }

func (h *harness) post(path, body string) response {
	return h.do(req{method: http.MethodPost, path: path, body: body})
}

// wantProblem checks status, problem type and (when not empty) field.
func wantProblem(t *testing.T, r response, status int, slug, field string) Problem {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", r.StatusCode, status, r.body)
	}
	p := r.problem(t)
	if p.Type != ProblemTypePrefix+slug || p.Status != status {
		t.Fatalf("problem %s/%d, want %s/%d: %s", p.Type, p.Status, slug, status, r.body)
	}
	if field != "" && p.Field != field {
		t.Fatalf("problem field %q, want %q: %s", p.Field, field, r.body)
	}
	if p.RequestID == "" || p.RequestID != r.Header.Get(HeaderRequestID) {
		t.Fatalf("problem request id %q, header %q", p.RequestID, r.Header.Get(HeaderRequestID))
	}
	return p
}

// propsOf decodes a response's properties; nil when they do not decode to
// an object.
func propsOf(raw json.RawMessage) map[string]any {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}
