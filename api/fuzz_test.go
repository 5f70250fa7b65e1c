package api

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/graph/storetest"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
)

// FuzzParseTraversal feeds arbitrary bodies to the traversal request
// parser: it never panics, and every refusal is an *Error or the body-size
// error, which problemFor maps to a 4xx.
func FuzzParseTraversal(f *testing.F) {
	for _, s := range traversalSeeds {
		f.Add([]byte(s))
	}
	cfg := DefaultConfig()
	codec := cursorCodec{key: []byte(strings.Repeat("s", 32))}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parseTraversal(bytes.NewReader(body), cfg, codec, clock)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.kind.status >= 500 {
				t.Fatalf("error %v (%T) is not a client error", err, err)
			}
			return
		}
		if len(p.req.Hops) == 0 || len(p.req.Hops) > cfg.MaxHops || p.req.MaxResults > cfg.MaxResults || p.budget > cfg.MaxTimeBudget {
			t.Fatalf("accepted a request past the caps: %+v", p.req)
		}
		for _, h := range p.req.Hops {
			if h.Limit <= 0 || h.Limit > cfg.MaxHopLimit {
				t.Fatalf("hop limit %d accepted", h.Limit)
			}
		}
	})
}

// FuzzTraversalHandler sends arbitrary bodies through the whole handler,
// engine and store included: no input yields a 5xx.
func FuzzTraversalHandler(f *testing.F) {
	for _, s := range traversalSeeds {
		f.Add([]byte(s))
	}
	var once sync.Once
	var h http.Handler
	f.Fuzz(func(t *testing.T, body []byte) {
		once.Do(func() {
			s := memstore.New(storetest.Schema(), memstore.Options{Now: func() time.Time { return clock }})
			if err := s.Apply(t.Context(), seed()); err != nil {
				t.Fatal(err)
			}
			o := Options{Config: testConfig(), Store: s, Schema: storetest.Schema(), Readiness: lifecycle.NewReadiness(), Now: func() time.Time { return clock }}
			var err error
			if h, err = New(o); err != nil {
				t.Fatal(err)
			}
		})
		r := httptest.NewRequest(http.MethodPost, "/v1/traversals", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+testKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}

var traversalSeeds = []string{
	`{"start":[{"type":"user","id":"alice"}],"hops":[{"edge_types":["follows"]}]}`,
	`{"start":[{"type":"user","id":"alice"}],"hops":[{"edge_types":["follows"],"direction":"both","limit":2,"order":"any"},{"edge_types":["likes"],"node_types":["item"],"where":{"price":12.5},"edge_where":{"rating":5}}],"max_results":3,"include_paths":true,"time_budget_ms":50}`,
	`{"start":[{"type":"user","id":"hub"}],"hops":[{"edge_types":["follows"],"since":"2026-02-01T00:00:00Z","until":"2026-03-01T00:00:00Z"}],"cursor":"AQIAAAAAAAAAAA"}`,
	`{"start":[{"type":"user","id":"x"}],"hops":[{"edge_types":["tagged"],"direction":"in","where":{"age":{"a":1}}}]}`,
	`{"hops":[{"edge_types":["follows"]}],"cursor":"` + strings.Repeat("A", 64) + `"}`,
	`{"start":[],"hops":[{}]}`,
	`[1,2]`,
	`{"hops":null}`,
	``,
}
