package embedded_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

func openWatermarkStore(t *testing.T, dir string) *embedded.Store {
	t.Helper()
	cfg := embedded.DefaultConfig()
	cfg.Dir = dir
	cfg.MemTableBytes = 4 << 20
	s, err := embedded.Open(cfg, storetest.Schema(), embedded.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWatermarks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openWatermarkStore(t, dir)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	src := func(g, topic string, p int32) graph.WatermarkSource {
		return graph.WatermarkSource{Group: g, Topic: topic, Partition: p}
	}
	w1 := graph.Watermark{Source: src("g", "orders", 1), EventTime: t0, Offset: 10, HighWater: 12, UpdatedAt: t0.Add(time.Second)}
	w0 := graph.Watermark{Source: src("g", "orders", 0), Offset: 0, HighWater: 5, UpdatedAt: t0} // nothing written yet: zero event time
	w2 := graph.Watermark{Source: src("a\x00b", "x", 70000), EventTime: t0, Offset: 1 << 40, HighWater: 1 << 40, UpdatedAt: t0}
	if err := s.SetWatermarks(ctx, []graph.Watermark{w1, w0, w2}); err != nil {
		t.Fatal(err)
	}
	// An older record of a source does not replace a newer one; of two
	// records of one source in one call, the newer wins.
	stale := w1
	stale.Offset, stale.UpdatedAt = 3, t0
	newer := w0
	newer.Offset, newer.EventTime, newer.UpdatedAt = 4, t0.Add(-time.Minute), t0.Add(2*time.Second)
	older := newer
	older.Offset, older.UpdatedAt = 2, t0.Add(time.Second)
	if err := s.SetWatermarks(ctx, []graph.Watermark{stale, newer, older}); err != nil {
		t.Fatal(err)
	}
	want := []graph.Watermark{w2, newer, w1} // key order: group, topic, partition
	got, err := s.Watermarks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Watermarks = %+v\nwant %+v", got, want)
	}
	if err := s.SetWatermarks(ctx, nil); err != nil {
		t.Errorf("empty SetWatermarks: %v", err)
	}

	// Records survive a reopen.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Watermarks(ctx); !errors.Is(err, graph.ErrClosed) {
		t.Errorf("Watermarks after Close = %v, want ErrClosed", err)
	}
	if err := s.SetWatermarks(ctx, want); !errors.Is(err, graph.ErrClosed) {
		t.Errorf("SetWatermarks after Close = %v, want ErrClosed", err)
	}
	s = openWatermarkStore(t, dir)
	defer s.Close()
	if got, err := s.Watermarks(ctx); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	// Watermarks do not disturb the graph: its reads see no extra records.
	nodes, err := s.GetNodes(ctx, []graph.NodeKey{{Type: "user", ID: "g"}})
	if err != nil || len(nodes) != 0 {
		t.Errorf("GetNodes = %v, %v", nodes, err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.SetWatermarks(cctx, want); !graph.IsRetryable(err) {
		t.Errorf("SetWatermarks with a cancelled context = %v, want retryable", err)
	}
	if _, err := s.Watermarks(cctx); !graph.IsRetryable(err) {
		t.Errorf("Watermarks with a cancelled context = %v, want retryable", err)
	}
}
