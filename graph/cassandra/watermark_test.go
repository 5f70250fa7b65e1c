package cassandra

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

// TestWatermarks runs against real Cassandra, in the shared keyspace, with
// groups of its own.
func TestWatermarks(t *testing.T) {
	cfg, session := sharedSession(t)
	s, err := New(session, cfg, storetest.Schema(), Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	g1, g2 := uniqueKeyspace("wm_a_"), uniqueKeyspace("wm_b_")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	src := func(g, topic string, p int32) graph.WatermarkSource {
		return graph.WatermarkSource{Group: g, Topic: topic, Partition: p}
	}
	w1 := graph.Watermark{Source: src(g1, "orders", 1), EventTime: t0, Offset: 10, HighWater: 12, UpdatedAt: t0.Add(time.Second)}
	w0 := graph.Watermark{Source: src(g1, "orders", 0), Offset: 0, HighWater: 5, UpdatedAt: t0} // zero event time
	w2 := graph.Watermark{Source: src(g2, "x", 70000), EventTime: t0, Offset: 1 << 40, HighWater: 1 << 40, UpdatedAt: t0}
	if err := s.SetWatermarks(ctx, []graph.Watermark{w1, w0, w2}); err != nil {
		t.Fatal(err)
	}
	// An older record does not replace a newer one (write timestamps).
	stale := w1
	stale.Offset, stale.UpdatedAt = 3, t0
	newer := w0
	newer.Offset, newer.EventTime, newer.UpdatedAt = 4, t0.Add(-time.Minute), t0.Add(2*time.Second)
	if err := s.SetWatermarks(ctx, []graph.Watermark{stale, newer}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Watermarks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []graph.Watermark
	for _, w := range all {
		if w.Source.Group == g1 || w.Source.Group == g2 {
			got = append(got, w)
		}
	}
	want := []graph.Watermark{newer, w1, w2}
	if g2 < g1 {
		want = []graph.Watermark{w2, newer, w1}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Watermarks = %+v\nwant %+v", got, want)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.SetWatermarks(cctx, want); !graph.IsRetryable(err) {
		t.Errorf("SetWatermarks with a cancelled context = %v, want retryable", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWatermarks(ctx, want); !errors.Is(err, graph.ErrClosed) {
		t.Errorf("SetWatermarks after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Watermarks(ctx); !errors.Is(err, graph.ErrClosed) {
		t.Errorf("Watermarks after Close = %v, want ErrClosed", err)
	}
}
