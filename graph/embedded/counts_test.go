package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

func openCounts(t *testing.T, s *embedded.Store, schema *graph.Schema, cfg graph.CountConfig, opts embedded.CountOptions) *embedded.Counts {
	t.Helper()
	rules, err := graph.NewCountRules(cfg, schema)
	if err != nil {
		t.Fatalf("count rules: %v", err)
	}
	c, err := embedded.NewCounts(s, rules, opts)
	if err != nil {
		t.Fatalf("new counts: %v", err)
	}
	// Registered after the store's cleanup, so it runs first: counts are
	// closed before their store.
	t.Cleanup(func() {
		if err := c.Close(); err != nil && !errors.Is(err, graph.ErrClosed) {
			t.Errorf("close counts: %v", err)
		}
	})
	return c
}

func TestCountsConformance(t *testing.T) {
	storetest.RunCounts(t, func(t *testing.T, schema *graph.Schema, cfg graph.CountConfig, now func() time.Time) graph.CountStore {
		s := openAt(t, t.TempDir(), schema)
		return openCounts(t, s, schema, cfg, embedded.CountOptions{Now: now})
	}, storetest.CountOptions{})
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func TestCountsSweepRemovesOnlyExpired(t *testing.T) {
	schema := storetest.Schema()
	s := openAt(t, t.TempDir(), schema)
	clk := &fakeClock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	c := openCounts(t, s, schema, storetest.CountConfig(), embedded.CountOptions{Now: clk.Now, Registerer: reg, SweepInterval: time.Hour})
	ctx := context.Background()
	start := clk.t
	user := func(i int) graph.NodeKey { return graph.NodeKey{Type: "user", ID: fmt.Sprintf("u\x00%d", i)} }
	var imps []graph.Impression
	// For 3 users and 2 targets, 30 impressions each, one every 5h: the
	// first 20 of each target (older than 100h) will be swept, the last ten
	// are live. A target with many live keys makes the sweep seek past them.
	for u := range 3 {
		for _, tgt := range []graph.NodeKey{{Type: "item", ID: "a"}, {Type: "tag", ID: "b\x00"}} {
			for i := range 30 {
				imps = append(imps, graph.Impression{User: user(u), EdgeType: "likes", Target: tgt,
					EventID: fmt.Sprint(i), EventTime: start.Add(-7*24*time.Hour + time.Duration(i)*5*time.Hour)})
			}
		}
	}
	// A second edge type's keys sit between the users'.
	for i := range 5 {
		imps = append(imps, graph.Impression{User: user(1), EdgeType: "viewed", Target: graph.NodeKey{Type: "item", ID: "a"},
			EventID: fmt.Sprint(i), EventTime: start.Add(-time.Duration(i) * time.Minute)})
	}
	if res, err := c.RecordImpressions(ctx, imps); err != nil || res.Accepted != len(imps) {
		t.Fatalf("record: %+v, %v", res, err)
	}
	// Nothing has expired yet.
	if n, err := c.SweepCounts(ctx); err != nil || n != 0 {
		t.Fatalf("first sweep removed %d, %v; want 0", n, err)
	}
	// 100h later, impressions at or before start-7d+100h are past retention
	// (7d1h) plus the sweep margin (1m): i*5h <= 100h-1h-1m, i.e. i <= 19.
	clk.t = start.Add(100 * time.Hour)
	n, err := c.SweepCounts(ctx)
	if err != nil || n != 3*2*20 {
		t.Fatalf("sweep removed %d, %v; want 120", n, err)
	}
	if got := metricSum(t, reg, "rtgraph_embedded_impressions_swept_total"); got != 120 {
		t.Fatalf("swept metric = %v", got)
	}
	// What is left still counts exactly.
	for u := range 3 {
		q := graph.CountQuery{User: user(u), EdgeType: "likes", Targets: []graph.NodeKey{{Type: "item", ID: "a"}, {Type: "tag", ID: "b\x00"}},
			Windows: []time.Duration{graph.MaxWindow}}
		res, err := c.Counts(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		// Live within 7d as of start+100h: event times after start+100h-7d,
		// i.e. i*5h > 100h: i = 21..29.
		for _, tc := range res.Targets {
			if tc.Counts[0] != 9 {
				t.Fatalf("user %d target %s: %d, want 9", u, tc.Target, tc.Counts[0])
			}
		}
	}
	q := graph.CountQuery{User: user(1), EdgeType: "viewed", Targets: []graph.NodeKey{{Type: "item", ID: "a"}}, Windows: []time.Duration{graph.MaxWindow}}
	if res, err := c.Counts(ctx, q); err != nil || res.Targets[0].Counts[0] != 5 {
		t.Fatalf("viewed after sweep: %+v, %v", res, err)
	}
	// A second sweep finds nothing more; a cancelled one stops.
	if n, err := c.SweepCounts(ctx); err != nil || n != 0 {
		t.Fatalf("second sweep removed %d, %v", n, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.SweepCounts(cctx); !errors.Is(err, context.Canceled) || !graph.IsRetryable(err) {
		t.Fatalf("cancelled sweep: %v", err)
	}
}

// metricSum is the sum of a counter family's values.
func metricSum(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestCountsMetrics(t *testing.T) {
	schema := storetest.Schema()
	s := openAt(t, t.TempDir(), schema)
	now := time.Now()
	reg := prometheus.NewRegistry()
	c := openCounts(t, s, schema, storetest.CountConfig(), embedded.CountOptions{Registerer: reg})
	u, a := graph.NodeKey{Type: "user", ID: "u"}, graph.NodeKey{Type: "item", ID: "a"}
	imps := []graph.Impression{
		{User: u, EdgeType: "viewed", Target: a, EventID: "1", EventTime: now},
		{User: u, EdgeType: "viewed", Target: a, EventID: "1", EventTime: now},
		{User: u, EdgeType: "viewed", Target: a, EventID: "2", EventTime: now.Add(-8 * 24 * time.Hour)},
		{User: u, EdgeType: "viewed", Target: a, EventID: "3", EventTime: now.Add(2 * time.Hour)},
	}
	if _, err := c.RecordImpressions(context.Background(), imps); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RecordImpressions(context.Background(), []graph.Impression{{User: u, EdgeType: "follows", Target: u, EventID: "x", EventTime: now}}); !errors.Is(err, graph.ErrInvalidImpression) {
		t.Fatalf("invalid: %v", err)
	}
	if _, err := c.Counts(context.Background(), graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{a}, Windows: graph.DefaultWindows()}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP rtgraph_embedded_impressions_total Impressions given to the embedded count store, by outcome: accepted (stored, duplicates included), too_old (at or before now - retention), too_new (beyond now + lateness).
# TYPE rtgraph_embedded_impressions_total counter
rtgraph_embedded_impressions_total{outcome="accepted"} 2
rtgraph_embedded_impressions_total{outcome="too_new"} 1
rtgraph_embedded_impressions_total{outcome="too_old"} 1
# HELP rtgraph_embedded_impression_calls_invalid_total RecordImpressions calls refused because an impression was invalid (nothing of them written).
# TYPE rtgraph_embedded_impression_calls_invalid_total counter
rtgraph_embedded_impression_calls_invalid_total 1
# HELP rtgraph_embedded_count_rows_read_total Impression keys read by count lookups.
# TYPE rtgraph_embedded_count_rows_read_total counter
rtgraph_embedded_count_rows_read_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rtgraph_embedded_impressions_total",
		"rtgraph_embedded_impression_calls_invalid_total", "rtgraph_embedded_count_rows_read_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "rtgraph_embedded_count_read_seconds"); n != 1 {
		t.Fatalf("read histogram series: %d", n)
	}
	// A second Counts on the same registry is refused.
	rules, _ := graph.NewCountRules(storetest.CountConfig(), schema)
	if _, err := embedded.NewCounts(s, rules, embedded.CountOptions{Registerer: reg}); err == nil {
		t.Fatal("second registration accepted")
	}
}

func TestNewCountsErrors(t *testing.T) {
	schema := storetest.Schema()
	s := openAt(t, t.TempDir(), schema)
	rules, err := graph.NewCountRules(storetest.CountConfig(), schema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := embedded.NewCounts(nil, rules, embedded.CountOptions{}); err == nil {
		t.Fatal("nil store accepted")
	}
	if _, err := embedded.NewCounts(s, nil, embedded.CountOptions{}); err == nil {
		t.Fatal("nil rules accepted")
	}
	if _, err := embedded.NewCounts(s, rules, embedded.CountOptions{SweepInterval: time.Millisecond}); !errors.Is(err, embedded.ErrInvalidConfig) {
		t.Fatalf("1ms sweep interval: %v", err)
	}
}

func TestCountsSurviveReopenAndStoreClose(t *testing.T) {
	schema := storetest.Schema()
	dir := t.TempDir()
	cfg := embedded.DefaultConfig()
	cfg.Dir, cfg.MemTableBytes, cfg.CacheBytes = dir, 4<<20, 8<<20
	s, err := embedded.Open(cfg, schema, embedded.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := graph.NewCountRules(storetest.CountConfig(), schema)
	c, err := embedded.NewCounts(s, rules, embedded.CountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u, a := graph.NodeKey{Type: "user", ID: "u"}, graph.NodeKey{Type: "item", ID: "a"}
	now := time.Now()
	ctx := context.Background()
	if _, err := c.RecordImpressions(ctx, []graph.Impression{{User: u, EdgeType: "viewed", Target: a, EventID: "1", EventTime: now.Add(-time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	// With the store closed under it, Counts reports ErrClosed.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	q := graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{a}, Windows: []time.Duration{time.Hour}}
	if _, err := c.Counts(ctx, q); !errors.Is(err, graph.ErrClosed) {
		t.Fatalf("counts on a closed store: %v", err)
	}
	if _, err := c.SweepCounts(ctx); !errors.Is(err, graph.ErrClosed) {
		t.Fatalf("sweep on a closed store: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openAt(t, dir, schema)
	c2 := openCounts(t, s2, schema, storetest.CountConfig(), embedded.CountOptions{})
	res, err := c2.Counts(ctx, q)
	if err != nil || res.Targets[0].Counts[0] != 1 {
		t.Fatalf("after reopen: %+v, %v", res, err)
	}
}

// TestCountsWaitForASlot: lookups run at most GOMAXPROCS at a time. With
// every slot taken, a lookup waits: one whose context ends first gets a
// retryable error naming the deadline; one still waiting when a slot frees
// answers.
func TestCountsWaitForASlot(t *testing.T) {
	schema := storetest.Schema()
	s := openAt(t, t.TempDir(), schema)
	now := time.Now()
	c := openCounts(t, s, schema, storetest.CountConfig(), embedded.CountOptions{})
	u, a := graph.NodeKey{Type: "user", ID: "u"}, graph.NodeKey{Type: "item", ID: "a"}
	if _, err := c.RecordImpressions(context.Background(), []graph.Impression{{User: u, EdgeType: "viewed", Target: a, EventID: "1", EventTime: now}}); err != nil {
		t.Fatal(err)
	}
	q := graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{a}, Windows: []time.Duration{time.Hour}}
	release := embedded.HoldCountSlots(c)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Counts(ctx, q)
	var re *graph.RetryableError
	if !errors.As(err, &re) || !errors.Is(err, context.DeadlineExceeded) {
		release()
		t.Fatalf("lookup with every slot taken: %v, want a retryable deadline error", err)
	}
	done := make(chan error, 1)
	var got graph.CountResult
	go func() {
		var err error
		got, err = c.Counts(context.Background(), q)
		done <- err
	}()
	select {
	case err := <-done:
		release()
		t.Fatalf("lookup answered while every slot was taken: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got.Targets) != 1 || got.Targets[0].Counts[0] != 1 {
		t.Fatalf("counts after the wait: %+v, want 1 impression in the hour", got.Targets)
	}
}
