package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/storetest"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
)

// BenchmarkEdgesPage300 serves GET /v1/nodes/user/{id}/edges?edge_type=follows&limit=300
// for a user with 3000 edges on the embedded store, through the API's
// handler in-process (no socket): store read, property bytes passed
// through, JSON written. One op is one page; it reports CPU microseconds,
// heap allocations and response bytes per edge.
func BenchmarkEdgesPage300(b *testing.B) {
	hub := user("hub")
	muts := []graph.Mutation{upN(hub, 1, graph.Props{"name": "Hub"})}
	for i := range 3000 {
		f := user(fmt.Sprintf("f%05d", i))
		muts = append(muts, upN(f, 1, graph.Props{"name": fmt.Sprintf("Follower %d", i), "age": int64(20 + i%50)}),
			upE("follows", hub, f, 2+i, graph.Props{"weight": float64(i%10) / 10, "since": int64(2000 + i%25)}))
	}
	store := openEmbedded(b, muts)
	cfg := testConfig()
	cfg.CursorSecret = strings.Repeat("b", 32)
	h, err := New(Options{Config: cfg, Store: store, Schema: storetest.Schema(), Readiness: lifecycle.NewReadiness(),
		Freshness: fixedFreshness{t: watermarkAt}, Now: func() time.Time { return clock }})
	if err != nil {
		b.Fatal(err)
	}
	// Cursors of the ten pages, made before timing.
	urls := []string{"/v1/nodes/user/hub/edges?edge_type=follows&limit=300"}
	for len(urls) < 10 {
		var page edgesResponse
		rec := serveOnce(b, h, urls[len(urls)-1], &page)
		if len(page.Edges) != 300 || page.NextCursor == "" {
			b.Fatalf("page %d: %d edges, status %d", len(urls), len(page.Edges), rec.Code)
		}
		urls = append(urls, urls[0]+"&cursor="+page.NextCursor)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	allocs0 := ms.Mallocs
	cpu0 := processCPU(b)
	bytesOut := 0
	b.ResetTimer()
	for i := range b.N {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, benchRequest(urls[i%len(urls)]))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		bytesOut += rec.Body.Len()
	}
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	runtime.ReadMemStats(&ms)
	edges := float64(300 * b.N)
	b.ReportMetric(cpu.Seconds()*1e6/edges, "cpu-us/edge")
	b.ReportMetric(float64(ms.Mallocs-allocs0)/edges, "allocs/edge")
	b.ReportMetric(float64(bytesOut)/edges, "bytes/edge")
}

func serveOnce(b *testing.B, h http.Handler, url string, into any) *httptest.ResponseRecorder {
	b.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, benchRequest(url))
	if err := json.Unmarshal(rec.Body.Bytes(), into); err != nil {
		b.Fatalf("%s: %v: %s", url, err, rec.Body)
	}
	return rec
}

func benchRequest(url string) *http.Request {
	r := httptest.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	r.Header.Set("Authorization", "Bearer "+testKey)
	return r
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
