package embedded_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/graph/embedded/embeddedtest"
	"github.com/rtgraph/rtgraph/schemas"
)

// TestCeilingReplaysTheStoresWrites checks that the ceiling writes what the
// store writes: a bare database replaying the captured batches of a run of
// the realistic mix ends up with exactly the store's keys and values.
func TestCeilingReplaysTheStoresWrites(t *testing.T) {
	schema, err := graph.LoadSchema(schemas.GraphSchema(), ".")
	if err != nil {
		t.Fatal(err)
	}
	var c embeddedtest.Capture
	cfg := embedded.DefaultConfig()
	cfg.Dir = t.TempDir()
	s, err := embedded.Open(cfg, schema, embedded.Deps{CommitHook: c.Hook})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g := newMixGen(3, schema)
	const calls = 20
	for range calls {
		if err := s.Apply(context.Background(), g.batch(200)); err != nil {
			t.Fatal(err)
		}
	}
	batches := c.Take(t)
	if len(batches) != calls {
		t.Fatalf("captured %d batches, want %d", len(batches), calls)
	}
	db := embeddedtest.OpenBare(t, cfg, t.TempDir())
	if _, err := embeddedtest.Replay(db, batches, 1, true); err != nil {
		t.Fatal(err)
	}
	want, err := embedded.PebbleDB(s).NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	got, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	n := 0
	okW, okG := want.First(), got.First()
	for ; okW && okG; okW, okG = want.Next(), got.Next() {
		if !bytes.Equal(want.Key(), got.Key()) || !bytes.Equal(want.Value(), got.Value()) {
			t.Fatalf("entry %d: store has %x=%x, ceiling %x=%x", n, want.Key(), want.Value(), got.Key(), got.Value())
		}
		n++
	}
	if okW || okG {
		t.Fatalf("after %d equal entries: store has more: %v, ceiling has more: %v", n, okW, okG)
	}
	if n < calls*200 {
		t.Fatalf("only %d entries", n)
	}
}
