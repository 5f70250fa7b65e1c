package mapping_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/mapping"
)

// genMutation draws a valid mutation over a small key space, with few
// distinct event times and property sets, so that the same node or edge is
// written many times, with ties, in one batch.
func genMutation(t *rapid.T) graph.Mutation {
	m := genOp(t, false)
	// Few positions, so equal event times with different positions (one
	// transaction) and equal versions are both common.
	m.Pos = graph.PosUint64(uint64(rapid.IntRange(0, 2).Draw(t, "pos")))
	return m
}

// genOp draws a mutation at one of five seconds; with keep, node upserts
// may keep properties (graph.Mutation.Keep), and purges and truncates of
// accounts are drawn too.
func genOp(t *rapid.T, keep bool) graph.Mutation {
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	at := base.Add(time.Duration(rapid.IntRange(0, 4).Draw(t, "sec")) * time.Second)
	accounts := []string{"a1", "a2"}
	acct := graph.NodeKey{Type: "account", ID: rapid.SampledFrom(accounts).Draw(t, "account")}
	kinds := 3
	if keep {
		kinds = 5
	}
	switch rapid.IntRange(0, kinds).Draw(t, "kind") {
	case 0:
		m := graph.Mutation{Op: graph.OpUpsertNode, Node: acct, EventTime: at,
			Props: graph.Props{"age": int64(rapid.IntRange(0, 2).Draw(t, "age"))}}
		if keep {
			// Each property: a value, absent, or kept.
			m.Props = graph.Props{}
			for _, name := range []string{"age", "country"} {
				switch rapid.IntRange(0, 2).Draw(t, name) {
				case 0:
					if name == "age" {
						m.Props[name] = int64(rapid.IntRange(0, 2).Draw(t, "age value"))
					} else {
						m.Props[name] = rapid.SampledFrom([]string{"KR", "US"}).Draw(t, "country value")
					}
				case 2:
					m.Keep = append(m.Keep, name)
				}
			}
		}
		return m
	case 1:
		return graph.Mutation{Op: graph.OpDeleteNode, Node: acct, EventTime: at}
	case 4:
		return graph.Mutation{Op: graph.OpPurgeNode, Node: acct, EventTime: at}
	case 5:
		return graph.Mutation{Op: graph.OpTruncateType, Node: graph.NodeKey{Type: "account"}, EventTime: at}
	case 2:
		m := graph.Mutation{Op: graph.OpUpsertEdge, EventTime: at,
			Edge: graph.EdgeKey{Type: "owns", From: acct, To: graph.NodeKey{Type: "device", ID: rapid.SampledFrom([]string{"d1", "d2"}).Draw(t, "device")}}}
		if rapid.Bool().Draw(t, "ttl edge") {
			m.Edge = graph.EdgeKey{Type: "watched", From: acct, To: graph.NodeKey{Type: "title", ID: "t1"}}
			m.Props = graph.Props{"n": int64(rapid.IntRange(0, 2).Draw(t, "n"))}
		}
		return m
	default:
		m := graph.Mutation{Op: graph.OpDeleteEdge, EventTime: at,
			Edge: graph.EdgeKey{Type: "owns", From: acct, To: graph.NodeKey{Type: "device", ID: rapid.SampledFrom([]string{"d1", "d2"}).Draw(t, "device")}}}
		if rapid.Bool().Draw(t, "ttl edge") {
			m.Edge = graph.EdgeKey{Type: "watched", From: acct, To: graph.NodeKey{Type: "title", ID: "t1"}}
		}
		return m
	}
}

// TestFoldKeepsState: applying Fold(batch) leaves a store in exactly the
// state applying the batch does, whatever was stored before, judged by the
// reference store (graph/memstore); and each node or edge gets at most one
// upsert and one delete.
func TestFoldKeepsState(t *testing.T) {
	schema := testSchema(t)
	rapid.Check(t, func(t *rapid.T) {
		check := func(ms []graph.Mutation) []graph.Mutation {
			for i := range ms {
				if err := schema.Check(&ms[i]); err != nil {
					t.Fatalf("generated mutation %+v: %v", ms[i], err)
				}
			}
			return ms
		}
		before := check(rapid.SliceOfN(rapid.Custom(genMutation), 0, 8).Draw(t, "before"))
		batch := check(rapid.SliceOfN(rapid.Custom(genMutation), 0, 30).Draw(t, "batch"))
		// Judge expiry both before and after the TTL edges' lifetime.
		now := time.Date(2026, 11, 25, 10, 0, 2, 0, time.UTC).Add(time.Duration(rapid.IntRange(0, 1).Draw(t, "late")) * time.Hour)
		clock := func() time.Time { return now }
		plain := memstore.New(schema, memstore.Options{Now: clock})
		folded := memstore.New(schema, memstore.Options{Now: clock})
		ctx := context.Background()
		for _, s := range []*memstore.Store{plain, folded} {
			if err := s.Apply(ctx, before); err != nil {
				t.Fatal(err)
			}
		}
		in := slices.Clone(batch)
		out := mapping.Fold(batch)
		if !sameMutations(in, batch) {
			t.Fatal("Fold modified its input")
		}
		if err := plain.Apply(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := folded.Apply(ctx, out); err != nil {
			t.Fatal(err)
		}
		if a, b := dump(plain.Nodes()), dump(folded.Nodes()); a != b {
			t.Fatalf("nodes differ\nunfolded: %s\nfolded:   %s\nbatch: %+v\nfolded batch: %+v", a, b, batch, out)
		}
		if a, b := dump(plain.Edges()), dump(folded.Edges()); a != b {
			t.Fatalf("edges differ\nunfolded: %s\nfolded:   %s\nbatch: %+v\nfolded batch: %+v", a, b, batch, out)
		}
		// Fold never grows a batch, and writes each key at most once per kind.
		if len(out) > len(batch) {
			t.Fatalf("folded %d mutations into %d", len(batch), len(out))
		}
		seen := map[string]bool{}
		for _, m := range out {
			k := m.Op.String() + m.Node.String() + m.Edge.Type + m.Edge.From.String() + m.Edge.To.String()
			if seen[k] {
				t.Fatalf("%s written twice in %+v", k, out)
			}
			seen[k] = true
		}
	})
}

// TestFoldKeepsKeptState: with node upserts that keep properties, and
// purges and truncates, applying Fold(batch) leaves the reference store in
// the state applying the batch one by one does, in any batch order, when
// what was stored before is older than the batch (a source delivers one
// row's changes in order; see Fold). Distinct mutations of the batch have
// distinct versions (one event writes a node once).
func TestFoldKeepsKeptState(t *testing.T) {
	schema := testSchema(t)
	rapid.Check(t, func(t *rapid.T) {
		draw := func(label string, maxN int, shift time.Duration, posBase int) []graph.Mutation {
			ms := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) graph.Mutation { return genOp(t, true) }), 0, maxN).Draw(t, label)
			for i := range ms {
				ms[i].EventTime = ms[i].EventTime.Add(shift)
				ms[i].Pos = graph.PosUint64(uint64(posBase + i))
				if err := schema.Check(&ms[i]); err != nil {
					t.Fatalf("generated mutation %+v: %v", ms[i], err)
				}
			}
			return ms
		}
		before := draw("before", 8, -time.Minute, 0)
		batch := draw("batch", 24, 0, 100)
		// Redeliveries: some mutations of the batch again, at once.
		for _, i := range rapid.SliceOfN(rapid.IntRange(0, max(len(batch)-1, 0)), 0, 3).Draw(t, "dups") {
			if i < len(batch) {
				batch = append(batch, batch[i])
			}
		}
		clock := func() time.Time { return time.Date(2026, 11, 25, 10, 0, 2, 0, time.UTC) }
		plain := memstore.New(schema, memstore.Options{Now: clock})
		folded := memstore.New(schema, memstore.Options{Now: clock})
		ctx := context.Background()
		for _, s := range []*memstore.Store{plain, folded} {
			if err := s.Apply(ctx, before); err != nil {
				t.Fatal(err)
			}
		}
		in := slices.Clone(batch)
		out := mapping.Fold(batch)
		if !sameMutations(in, batch) {
			t.Fatal("Fold modified its input")
		}
		for _, m := range batch {
			if err := plain.Apply(ctx, []graph.Mutation{m}); err != nil {
				t.Fatal(err)
			}
		}
		if err := folded.Apply(ctx, out); err != nil {
			t.Fatal(err)
		}
		if a, b := dump(plain.Nodes()), dump(folded.Nodes()); a != b {
			t.Fatalf("nodes differ\nunfolded: %s\nfolded:   %s\nbefore: %+v\nbatch: %+v\nfolded batch: %+v", a, b, before, batch, out)
		}
		if a, b := dump(plain.Edges()), dump(folded.Edges()); a != b {
			t.Fatalf("edges differ\nunfolded: %s\nfolded:   %s\nbatch: %+v\nfolded batch: %+v", a, b, batch, out)
		}
		if len(out) > len(batch) {
			t.Fatalf("folded %d mutations into %d", len(batch), len(out))
		}
	})
}

func sameMutations(a, b []graph.Mutation) bool {
	return dump(a) == dump(b)
}

func dump(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestFold(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 11, 25, 10, 0, s, 0, time.UTC) }
	n := graph.NodeKey{Type: "account", ID: "a"}
	e := graph.EdgeKey{Type: "owns", From: n, To: graph.NodeKey{Type: "device", ID: "d"}}
	up := func(s int, age int64) graph.Mutation {
		return graph.Mutation{Op: graph.OpUpsertNode, Node: n, EventTime: at(s), Props: graph.Props{"age": age}}
	}
	upc := func(s int, age int64, country string) graph.Mutation {
		m := up(s, age)
		m.Props["country"] = country
		return m
	}
	keep := func(s int, age int64, kept ...string) graph.Mutation {
		m := up(s, age)
		m.Keep = kept
		return m
	}
	tests := []struct {
		name string
		in   []graph.Mutation
		want []graph.Mutation
	}{
		{"empty", nil, nil},
		{"one", []graph.Mutation{up(1, 1)}, []graph.Mutation{up(1, 1)}},
		{"later wins whatever the order", []graph.Mutation{up(3, 1), up(1, 2), up(2, 3)}, []graph.Mutation{up(3, 1)}},
		{"tie goes to the greater encoding", []graph.Mutation{up(1, 9), up(1, 10), up(1, 2)}, []graph.Mutation{up(1, 9)}},
		{"node delete dropped beside a newer upsert",
			[]graph.Mutation{up(2, 1), {Op: graph.OpDeleteNode, Node: n, EventTime: at(1)}},
			[]graph.Mutation{up(2, 1)}},
		{"purge kept as it is",
			[]graph.Mutation{up(2, 1), {Op: graph.OpPurgeNode, Node: n, EventTime: at(1)}},
			[]graph.Mutation{up(2, 1), {Op: graph.OpPurgeNode, Node: n, EventTime: at(1)}}},
		{"latest of several deletes",
			[]graph.Mutation{{Op: graph.OpDeleteNode, Node: n, EventTime: at(1)}, {Op: graph.OpDeleteNode, Node: n, EventTime: at(4)}, {Op: graph.OpDeleteNode, Node: n, EventTime: at(2)}},
			[]graph.Mutation{{Op: graph.OpDeleteNode, Node: n, EventTime: at(4)}}},
		{"edge delete older than the upsert is dropped",
			[]graph.Mutation{{Op: graph.OpDeleteEdge, Edge: e, EventTime: at(1)}, {Op: graph.OpUpsertEdge, Edge: e, EventTime: at(2)}},
			[]graph.Mutation{{Op: graph.OpUpsertEdge, Edge: e, EventTime: at(2)}}},
		{"edge delete at the upsert's time is kept",
			[]graph.Mutation{{Op: graph.OpUpsertEdge, Edge: e, EventTime: at(2)}, {Op: graph.OpDeleteEdge, Edge: e, EventTime: at(2)}},
			[]graph.Mutation{{Op: graph.OpDeleteEdge, Edge: e, EventTime: at(2)}, {Op: graph.OpUpsertEdge, Edge: e, EventTime: at(2)}}},
		{"keys keep first-seen order",
			[]graph.Mutation{{Op: graph.OpUpsertEdge, Edge: e, EventTime: at(1)}, up(1, 1), {Op: graph.OpUpsertEdge, Edge: e, EventTime: at(3)}},
			[]graph.Mutation{{Op: graph.OpUpsertEdge, Edge: e, EventTime: at(3)}, up(1, 1)}},
		{"kept property filled from the older upsert",
			[]graph.Mutation{upc(1, 1, "KR"), keep(2, 5, "country")},
			[]graph.Mutation{upc(2, 5, "KR")}},
		{"kept property absent from the older full upsert is no longer kept",
			[]graph.Mutation{up(1, 1), keep(2, 5, "country")},
			[]graph.Mutation{up(2, 5)}},
		{"kept by both stays kept",
			[]graph.Mutation{keep(1, 1, "country"), keep(2, 5, "country")},
			[]graph.Mutation{keep(2, 5, "country")}},
		{"first upsert of the batch keeps from the store",
			[]graph.Mutation{keep(2, 5, "country")},
			[]graph.Mutation{keep(2, 5, "country")}},
		{"a delete between them: nothing to keep",
			[]graph.Mutation{upc(1, 1, "KR"), {Op: graph.OpDeleteNode, Node: n, EventTime: at(2)}, keep(3, 5, "country")},
			[]graph.Mutation{up(3, 5)}},
		{"a delete before the first: the stored node is gone",
			[]graph.Mutation{{Op: graph.OpDeleteNode, Node: n, EventTime: at(1)}, keep(3, 5, "country")},
			[]graph.Mutation{up(3, 5)}},
		{"a truncate between them: nothing to keep, and the truncate stays",
			[]graph.Mutation{upc(1, 1, "KR"), {Op: graph.OpTruncateType, Node: graph.NodeKey{Type: "account"}, EventTime: at(2)}, keep(3, 5, "country")},
			[]graph.Mutation{up(3, 5), {Op: graph.OpTruncateType, Node: graph.NodeKey{Type: "account"}, EventTime: at(2)}}},
		{"an upsert older than a truncate stays as it is, for the store to hide",
			[]graph.Mutation{up(1, 1), {Op: graph.OpTruncateType, Node: graph.NodeKey{Type: "account"}, EventTime: at(2)}},
			[]graph.Mutation{up(1, 1), {Op: graph.OpTruncateType, Node: graph.NodeKey{Type: "account"}, EventTime: at(2)}}},
		{"unknown ops pass through at the end",
			[]graph.Mutation{{Op: graph.Op(9)}, up(1, 1), up(2, 1)},
			[]graph.Mutation{up(2, 1), {Op: graph.Op(9)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mapping.Fold(tt.in); dump(got) != dump(tt.want) {
				t.Errorf("got  %s\nwant %s", dump(got), dump(tt.want))
			}
		})
	}
}
