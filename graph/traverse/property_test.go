package traverse

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
)

// refBFS is the traversal written as plainly as possible from the store's
// full edge list, with no limits: the reference the engine must match.
func refBFS(edges []graph.Edge, start []graph.NodeKey, hops []Hop) map[string]bool {
	visited := map[graph.NodeKey]bool{}
	var frontier []graph.NodeKey
	for _, s := range start {
		if !visited[s] {
			visited[s] = true
			frontier = append(frontier, s)
		}
	}
	returned := map[graph.EdgeKey]bool{}
	out := map[string]bool{}
	for k, h := range hops {
		inFrontier := map[graph.NodeKey]bool{}
		for _, n := range frontier {
			inFrontier[n] = true
		}
		var next []graph.NodeKey
		for _, e := range edges {
			if !slices.ContainsFunc(h.Edges, func(es EdgeSpec) bool { return es.Type == e.Key.Type }) || returned[e.Key] {
				continue
			}
			// An edge with both ends in the frontier of a hop going both
			// ways belongs to its From end's outgoing side alone.
			var far graph.NodeKey
			switch {
			case h.Direction != In && inFrontier[e.Key.From]:
				far = e.Key.To
			case h.Direction != Out && inFrontier[e.Key.To]:
				far = e.Key.From
			default:
				continue
			}
			if !h.keepsType(far.Type) {
				continue
			}
			returned[e.Key] = true
			out[fmt.Sprintf("%d:%s>%s", k+1, e.Key.From.ID, e.Key.To.ID)] = true
			if !visited[far] {
				visited[far] = true
				next = append(next, far)
			}
		}
		frontier = next
	}
	return out
}

func TestPropertyMatchesReferenceAndContinuationsCoverEverything(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		s, schema := newStore(t)
		ids := []string{"u0", "u1", "u2", "u3", "u4", "u5"}
		n := rapid.IntRange(1, 40).Draw(rt, "edges")
		var muts []graph.Mutation
		for i := range n {
			typ := rapid.SampledFrom([]string{"follows", "tagged"}).Draw(rt, "type")
			from := user(rapid.SampledFrom(ids).Draw(rt, "from"))
			var to graph.NodeKey
			if typ == "follows" {
				to = user(rapid.SampledFrom(ids).Draw(rt, "to"))
			} else {
				to = tag(rapid.SampledFrom([]string{"t0", "t1"}).Draw(rt, "tag"))
			}
			muts = append(muts, upE(typ, from, to, rapid.IntRange(1, 20).Draw(rt, fmt.Sprint("at", i)), nil))
		}
		if err := s.Apply(context.Background(), muts); err != nil {
			rt.Fatalf("apply: %v", err)
		}
		nh := rapid.IntRange(1, MaxHops).Draw(rt, "hops")
		var hops []Hop
		for range nh {
			h := hop("follows")
			if rapid.Bool().Draw(rt, "tagged") {
				h.Edges = append(h.Edges, EdgeSpec{Type: "tagged"})
			}
			h.Direction = rapid.SampledFrom([]Direction{Out, In, Both}).Draw(rt, "dir")
			h.Order = rapid.SampledFrom([]graph.Order{graph.OrderLatest, graph.OrderKey}).Draw(rt, "order")
			h.NodeCap = rapid.IntRange(1, 40).Draw(rt, "cap")
			h.NodeTypes = rapid.SampledFrom([][]string{nil, {"user"}, {"tag"}}).Draw(rt, "node_types")
			hops = append(hops, h)
		}
		start := []graph.NodeKey{user(rapid.SampledFrom(ids).Draw(rt, "start"))}
		conc := rapid.IntRange(1, 4).Draw(rt, "conc")
		e := New(s, schema, Options{Concurrency: conc, NodeBatch: 2})
		want := refBFS(storeEdges(s), start, hops)

		// Unlimited (the supernode cap still applies: follow its
		// continuations, which for an unlimited hop come only from the cap).
		r := Request{Start: start, Hops: hops, MaxResults: 10000}
		res, err := e.Run(context.Background(), r)
		if err != nil {
			rt.Fatalf("run: %v", err)
		}
		if !slices.ContainsFunc(res.Hops, HopResult.Truncated) {
			got := map[string]bool{}
			for _, k := range edgeKeys(res) {
				if got[k] {
					rt.Fatalf("edge %s returned twice", k)
				}
				got[k] = true
			}
			if fmt.Sprint(sortedKeys(got)) != fmt.Sprint(sortedKeys(want)) {
				rt.Fatalf("edges\n got %v\nwant %v", sortedKeys(got), sortedKeys(want))
			}
		}

		// One hop with a small limit, drained through continuations,
		// returns exactly the hop's edges, each once.
		h := hops[0]
		h.Limit = rapid.IntRange(1, 4).Draw(rt, "limit")
		h.NodeCap = 1000
		r = Request{Start: start, Hops: []Hop{h}, MaxResults: 10000}
		want1 := refBFS(storeEdges(s), start, []Hop{h})
		got := map[string]bool{}
		for i := 0; ; i++ {
			if i > 100 {
				rt.Fatal("continuations do not end")
			}
			res, err := e.Run(context.Background(), r)
			if err != nil {
				rt.Fatalf("run: %v", err)
			}
			if len(res.Edges) > h.Limit {
				rt.Fatalf("%d edges over limit %d", len(res.Edges), h.Limit)
			}
			for _, k := range edgeKeys(res) {
				if got[k] {
					rt.Fatalf("edge %s returned twice across continuations", k)
				}
				got[k] = true
			}
			if res.Hops[0].Continue == nil {
				break
			}
			r.Resume = res.Hops[0].Continue
		}
		if fmt.Sprint(sortedKeys(got)) != fmt.Sprint(sortedKeys(want1)) {
			rt.Fatalf("drained edges\n got %v\nwant %v", sortedKeys(got), sortedKeys(want1))
		}
	})
}

func storeEdges(s *memstore.Store) []graph.Edge { return s.Edges() }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
