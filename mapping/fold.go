package mapping

import (
	"bytes"

	"github.com/rtgraph/rtgraph/graph"
)

// Fold folds the mutations of one batch so that each node and each edge is
// written at most once per kind: of the upserts to one node or edge only the
// winner under the last-write-wins rule of package graph is kept (the later
// version, event time then position; on equal versions the greater encoded
// properties), and of its deletes only the latest. Applying the folded list leaves exactly the state
// applying muts would, in any order, because every backend keeps per node
// and edge only the winning upsert and the latest delete.
//
// A delete older than the kept upsert of the same node or edge is dropped:
// it can no longer change what is visible (a node delete hides the node's
// edges only while it is the node's newest word, see package graph). So a
// batch of updates to one edge becomes one write, and so does a node that
// was deleted and re-created in the batch. Purges are kept as they are.
//
// The mutations must have passed graph.(*Schema).Check (Map's do), so that
// event times are at the precision backends compare. The result keeps the
// order in which each key first appeared; for a key with both, the delete
// comes first. muts is not modified. Fold allocates a map for the batch; the
// caller bounds the batch.
func Fold(muts []graph.Mutation) []graph.Mutation {
	if len(muts) < 2 {
		return muts
	}
	type slot struct {
		up, del int // indexes into muts; -1 when none
		upEnc   []byte
	}
	type key struct {
		node bool
		n    graph.NodeKey
		e    graph.EdgeKey
	}
	index := make(map[key]int, len(muts)) // key → position in slots
	slots := make([]slot, 0, len(muts))   // in order of first appearance
	var extra []int                       // mutations kept as they are (unknown ops)
	for i := range muts {
		m := &muts[i]
		var k key
		switch m.Op {
		case graph.OpUpsertNode, graph.OpDeleteNode:
			k = key{node: true, n: m.Node}
		case graph.OpUpsertEdge, graph.OpDeleteEdge:
			k = key{e: m.Edge}
		default:
			extra = append(extra, i)
			continue
		}
		at, ok := index[k]
		if !ok {
			at = len(slots)
			index[k] = at
			slots = append(slots, slot{up: -1, del: -1})
		}
		s := &slots[at]
		switch m.Op {
		case graph.OpDeleteNode, graph.OpDeleteEdge:
			if s.del < 0 || compareVersions(m, &muts[s.del]) > 0 {
				s.del = i
			}
		default:
			if s.up < 0 {
				s.up = i
				continue
			}
			cur := &muts[s.up]
			switch c := compareVersions(m, cur); {
			case c > 0:
				s.up, s.upEnc = i, nil
			case c == 0:
				if s.upEnc == nil {
					s.upEnc = encode(cur.Props)
				}
				enc := encode(m.Props)
				if bytes.Compare(enc, s.upEnc) > 0 {
					s.up, s.upEnc = i, enc
				}
			}
		}
	}
	out := make([]graph.Mutation, 0, len(slots)+len(extra))
	for i := range slots {
		s := &slots[i]
		if s.del >= 0 {
			d := &muts[s.del]
			dropped := s.up >= 0 && compareVersions(&muts[s.up], d) > 0
			if !dropped {
				out = append(out, *d)
			}
		}
		if s.up >= 0 {
			out = append(out, muts[s.up])
		}
	}
	for _, i := range extra {
		out = append(out, muts[i])
	}
	return out
}

// compareVersions orders two mutations by version: event time, then position.
func compareVersions(a, b *graph.Mutation) int {
	at, ap := a.Version()
	bt, bp := b.Version()
	return graph.CompareVersions(at, ap, bt, bp)
}

// encode is graph.EncodeProps for comparing ties. Props that cannot be
// encoded cannot be stored either; they compare as the empty encoding, and
// the store rejects them when the batch is applied.
func encode(p graph.Props) []byte {
	b, err := graph.EncodeProps(p)
	if err != nil {
		return []byte{}
	}
	return b
}
