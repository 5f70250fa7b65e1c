package storetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
)

// edgeShape is an edge type with the node types its ends may take in the
// property cases' small universe.
type edgeShape struct {
	typ      string
	from, to []string
}

var shapes = []edgeShape{
	{"follows", []string{"user"}, []string{"user"}},
	{"blocks", []string{"user"}, []string{"user"}},
	{"likes", []string{"user"}, []string{"item", "tag"}},
	{"tagged", []string{"item", "user"}, []string{"tag"}},
	{"viewed", []string{"user"}, []string{"item"}},
	{"owned_by", []string{"item"}, []string{"user"}},
	{"paired", []string{"user"}, []string{"user"}},
}

// universe is a few ids per node type, so random mutations collide often.
var universe = map[string][]string{"user": {"u0", "u1", "u2"}, "item": {"i0", "i1"}, "tag": {"t0"}}

type propGen struct {
	h *harness
	// times is the small set of event times mutations draw from: three
	// seconds two hours ago (edges of the 1h-TTL type written then are
	// expired) and three seconds ten minutes ago (such edges are live).
	// Few distinct values make ties between upserts and deletes common.
	times []time.Time
}

func (g *propGen) key(rt *rapid.T, types []string, label string) graph.NodeKey {
	typ := rapid.SampledFrom(types).Draw(rt, label+"_type")
	id := rapid.SampledFrom(universe[typ]).Draw(rt, label+"_id")
	return graph.NodeKey{Type: typ, ID: g.h.ns + "-" + id}
}

func (g *propGen) props(rt *rapid.T, declared map[string]graph.PropType) graph.Props {
	p := graph.Props{}
	for _, name := range sortedNames(declared) {
		if !rapid.Bool().Draw(rt, "has_"+name) {
			continue
		}
		switch declared[name] {
		case graph.PropString:
			p[name] = rapid.SampledFrom([]string{"a", "b", "c"}).Draw(rt, name)
		case graph.PropInt:
			v := rapid.IntRange(0, 3).Draw(rt, name)
			// Sometimes as a JSON-decoded float, which Check normalises.
			if rapid.Bool().Draw(rt, name+"_as_float") {
				p[name] = float64(v)
			} else {
				p[name] = int64(v)
			}
		case graph.PropFloat:
			p[name] = rapid.SampledFrom([]float64{0.5, 1.5, -2}).Draw(rt, name)
		case graph.PropBool:
			p[name] = rapid.Bool().Draw(rt, name)
		}
	}
	return p
}

func sortedNames(m map[string]graph.PropType) []string {
	return slices.Sorted(maps.Keys(m))
}

func (g *propGen) mutation(rt *rapid.T) graph.Mutation {
	m := g.op(rt)
	// Positions of a few values too: equal event times with different
	// positions (one transaction) and equal versions both occur.
	m.Pos = graph.PosUint64(uint64(rapid.IntRange(0, 2).Draw(rt, "pos")))
	return m
}

func (g *propGen) op(rt *rapid.T) graph.Mutation {
	at := rapid.SampledFrom(g.times).Draw(rt, "at")
	switch rapid.IntRange(0, 11).Draw(rt, "op") {
	case 11:
		// Tags are the one type that is not implicit.
		return truncN("tag", at)
	case 10:
		return graph.Mutation{Op: graph.OpPurgeNode, Node: g.key(rt, []string{"user", "item", "tag"}, "node"), EventTime: at}
	case 0, 1:
		k := g.key(rt, []string{"user", "item", "tag"}, "node")
		nt, _ := g.h.schema.NodeType(k.Type)
		return upN(k, at, g.props(rt, nt.Props))
	case 2:
		return delN(g.key(rt, []string{"user", "item", "tag"}, "node"), at)
	case 3:
		s := rapid.SampledFrom(shapes).Draw(rt, "shape")
		return delE(s.typ, g.key(rt, s.from, "from"), g.key(rt, s.to, "to"), at)
	default:
		s := rapid.SampledFrom(shapes).Draw(rt, "shape")
		et, _ := g.h.schema.EdgeType(s.typ)
		return upE(s.typ, g.key(rt, s.from, "from"), g.key(rt, s.to, "to"), at, g.props(rt, et.Props))
	}
}

// sharedTruncates are the truncates property cases have written to shared
// storage in this process (Options.SharedStorage).
var sharedTruncates struct {
	sync.Mutex
	muts []graph.Mutation
}

// testProperty: random mutations applied to the backend shuffled, with
// duplicates and in random batches, leave the same state as the reference
// fed them in order; the reverse index mirrors the forward one.
func testProperty(t *testing.T, h *harness, opts Options) {
	// Truncates are type-wide, so those of earlier iterations (other
	// namespaces, same store) apply to this one's nodes too: each
	// reference starts with them, and with those of earlier runs of this
	// case when the storage is shared.
	truncates := &[]graph.Mutation{}
	if opts.SharedStorage {
		sharedTruncates.Lock()
		defer sharedTruncates.Unlock()
		truncates = &sharedTruncates.muts
	}
	rapid.Check(t, func(rt *rapid.T) {
		ih := *h
		ih.ns = namespace()
		g := &propGen{h: &ih}
		for _, base := range []time.Time{h.now.Add(-2 * time.Hour), h.now.Add(-10 * time.Minute)} {
			for s := range 3 {
				g.times = append(g.times, base.Truncate(time.Second).Add(time.Duration(s)*time.Second))
			}
		}
		muts := rapid.SliceOfN(rapid.Custom(g.mutation), 1, opts.PropertyMutations).Draw(rt, "mutations")

		ref := memstore.New(ih.schema, memstore.Options{Now: func() time.Time { return h.now }})
		if err := ref.Apply(context.Background(), *truncates); err != nil {
			rt.Fatalf("reference apply earlier truncates: %v", err)
		}
		for _, m := range muts {
			if m.Op == graph.OpTruncateType {
				*truncates = append(*truncates, m)
			}
		}
		for _, m := range muts {
			if err := ref.Apply(context.Background(), []graph.Mutation{m}); err != nil {
				rt.Fatalf("reference apply %+v: %v", m, err)
			}
		}

		// Shuffle, duplicate some, and cut into batches.
		order := rapid.Permutation(indexes(len(muts))).Draw(rt, "order")
		dups := rapid.SliceOfN(rapid.IntRange(0, len(muts)-1), 0, len(muts)).Draw(rt, "duplicates")
		var stream []graph.Mutation
		for _, i := range order {
			stream = append(stream, muts[i])
		}
		for _, d := range dups {
			pos := rapid.IntRange(0, len(stream)).Draw(rt, "dup_pos")
			stream = append(stream[:pos], append([]graph.Mutation{muts[d]}, stream[pos:]...)...)
		}
		for len(stream) > 0 {
			n := rapid.IntRange(1, min(8, len(stream))).Draw(rt, "batch")
			ih.apply(rt, stream[:n]...)
			stream = stream[n:]
		}
		compareWithReference(rt, &ih, ref)
	})
}

func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func compareWithReference(rt *rapid.T, h *harness, ref *memstore.Store) {
	ctx := context.Background()
	var keys []graph.NodeKey
	for _, typ := range []string{"user", "item", "tag"} {
		for _, id := range universe[typ] {
			keys = append(keys, graph.NodeKey{Type: typ, ID: h.ns + "-" + id})
		}
	}
	got, err := h.s.GetNodes(ctx, keys)
	if err != nil {
		rt.Fatalf("get nodes: %v", err)
	}
	h.checkRawNodes(rt, keys, got)
	want, _ := ref.GetNodes(ctx, keys)
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		if gok != wok || (gok && !nodeEqual(g, w)) {
			rt.Fatalf("node %s: got %+v (present %v), reference %+v (present %v)", k, g, gok, w, wok)
		}
	}
	refHarness := *h
	refHarness.s = ref
	outEdges := map[graph.EdgeKey]graph.Edge{}
	inEdges := map[graph.EdgeKey]graph.Edge{}
	for _, s := range shapes {
		et, _ := h.schema.EdgeType(s.typ)
		for _, dir := range []graph.Direction{graph.Out, graph.In} {
			types := s.from
			if dir == graph.In {
				if !et.Reverse {
					continue
				}
				types = s.to
			}
			for _, typ := range types {
				for _, id := range universe[typ] {
					node := graph.NodeKey{Type: typ, ID: h.ns + "-" + id}
					order := rapid.SampledFrom([]graph.Order{graph.OrderLatest, graph.OrderKey}).Draw(rt, "order")
					limit := rapid.IntRange(1, 4).Draw(rt, "limit")
					query := q(node, s.typ, dir, order, limit)
					gotEdges := h.all(rt, query)
					wantEdges(rt, fmt.Sprintf("%s %s of %s, %s, limit %d", s.typ, dir, node, order, limit),
						gotEdges, refHarness.all(rt, query))
					for _, e := range gotEdges {
						if dir == graph.Out {
							outEdges[e.Key] = e
						} else {
							inEdges[e.Key] = e
						}
					}
				}
			}
		}
	}
	// Forward/reverse symmetry: every edge of a reverse-indexed type seen
	// from its From end is seen, identical, from its To end, and back.
	for k, e := range outEdges {
		if et, _ := h.schema.EdgeType(k.Type); !et.Reverse {
			continue
		}
		if r, ok := inEdges[k]; !ok || !edgeEqual(e, r) {
			rt.Fatalf("edge %s is out of %s but not identically into %s", edgeString(e), k.From, k.To)
		}
	}
	for k, e := range inEdges {
		if _, ok := outEdges[k]; !ok {
			rt.Fatalf("edge %s is into %s but not out of %s", edgeString(e), k.To, k.From)
		}
	}
}
