package graph_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
)

type fakeWatermarks struct {
	mu  sync.Mutex
	ws  []graph.Watermark
	err error
}

func (f *fakeWatermarks) SetWatermarks(context.Context, []graph.Watermark) error { return nil }
func (f *fakeWatermarks) Watermarks(context.Context) ([]graph.Watermark, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ws, f.err
}

func TestFreshnessCache(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	src := &fakeWatermarks{}
	fc := graph.NewFreshnessCache(src, "g", time.Hour, nil)
	ctx := context.Background()

	if err := fc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if w, err := fc.Watermark(ctx); err != nil || !w.IsZero() {
		t.Fatalf("no watermarks: got %v, %v; want unknown", w, err)
	}

	src.ws = []graph.Watermark{
		{Source: graph.WatermarkSource{Group: "g", Topic: "a", Partition: 0}, EventTime: t0, Offset: 5, HighWater: 9},
		{Source: graph.WatermarkSource{Group: "g", Topic: "a", Partition: 1}, EventTime: t0.Add(time.Hour), Offset: 3, HighWater: 3},
		{Source: graph.WatermarkSource{Group: "other", Topic: "a", Partition: 0}, EventTime: t0.Add(-time.Hour), Offset: 0, HighWater: 9},
	}
	if err := fc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if w, _ := fc.Watermark(ctx); !w.Equal(t0) {
		t.Errorf("watermark = %v, want the lagging partition's %v", w, t0)
	}

	// A failed refresh keeps the last known value.
	src.err = errors.New("store down")
	if err := fc.Refresh(ctx); err == nil {
		t.Fatal("refresh error swallowed")
	}
	if w, err := fc.Watermark(ctx); err != nil || !w.Equal(t0) {
		t.Errorf("after a failed refresh: %v, %v; want the last value", w, err)
	}

	// Never read successfully: the error is reported.
	fresh := graph.NewFreshnessCache(&fakeWatermarks{err: errors.New("down")}, "g", time.Hour, nil)
	_ = fresh.Refresh(ctx)
	if _, err := fresh.Watermark(ctx); err == nil {
		t.Error("unknown watermark with a failing store should say why")
	}

	// Run refreshes until cancelled and returns nil.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- graph.NewFreshnessCache(src, "g", time.Millisecond, nil).Run(rctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestFreshnessCacheGauges checks the exported watermark: nothing while it
// is unknown, then the group's event time and its age at the scrape.
func TestFreshnessCacheGauges(t *testing.T) {
	t0 := time.Now().Add(-90 * time.Second).Truncate(time.Millisecond)
	src := &fakeWatermarks{}
	fc := graph.NewFreshnessCache(src, "g", time.Hour, nil)
	reg := prometheus.NewRegistry()
	if err := fc.Register(reg); err != nil {
		t.Fatal(err)
	}
	gauges := func() map[string]float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "group" || m.GetLabel()[0].GetValue() != "g" {
					t.Errorf("%s labels = %v, want group=g", mf.GetName(), m.GetLabel())
				}
				out[mf.GetName()] = m.GetGauge().GetValue()
			}
		}
		return out
	}
	_ = fc.Refresh(context.Background())
	if g := gauges(); len(g) != 0 {
		t.Fatalf("unknown watermark exported %v", g)
	}
	src.ws = []graph.Watermark{{Source: graph.WatermarkSource{Group: "g", Topic: "a"}, EventTime: t0, Offset: 1, HighWater: 2}}
	_ = fc.Refresh(context.Background())
	g := gauges()
	if got, want := g["rtgraph_watermark_event_time_seconds"], float64(t0.UnixMilli())/1e3; math.Abs(got-want) > 1e-3 {
		t.Errorf("event time = %f, want %f", got, want)
	}
	if age := g["rtgraph_watermark_age_seconds"]; age < 90 || age > 120 {
		t.Errorf("age = %f s, want about 90", age)
	}
}
