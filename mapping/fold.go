package mapping

import (
	"bytes"
	"slices"

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
// was deleted and re-created in the batch. Purges and truncates are kept as
// they are, after the rest: the stores resolve them by version, so their
// place in the batch changes nothing, except for the kept properties below.
//
// Kept properties (graph.Mutation.Keep: unchanged TOASTed columns) are the
// one thing a store decides from what it holds when an upsert is applied,
// so for a node with upserts that keep some, Fold follows the batch in its
// order as the store would, on the assumption the graph package states: a
// source delivers one row's changes in order, so what is stored for the
// node (and its type's truncate) is older than the batch's mutations of
// it. An upsert fills a kept property from the node's winning upsert so far
// in the batch when that one is live (no delete, purge or truncate of the
// batch at or after it) and not newer: a value there becomes a property, an
// absent one stays absent (no longer kept), one that upsert kept too stays
// kept. With no upsert of the node before it in the batch, it keeps them
// from the stored node, unless a delete, purge or truncate of the batch came
// first (the stored node is then gone: they are absent). The node's winner,
// so filled, is what Fold writes. Two different upserts of one node at the
// same version (two rules writing one node from one event), one of them
// keeping properties the stored node supplies, are ordered by the encoding
// of what they carry themselves, where the store fills the kept values in
// first.
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
		keep    bool // some upsert of the node keeps properties
	}
	type key struct {
		node bool
		n    graph.NodeKey
		e    graph.EdgeKey
	}
	index := make(map[key]int, len(muts)) // key → position in slots
	slots := make([]slot, 0, len(muts))   // in order of first appearance
	var extra []int                       // mutations kept as they are (purges, truncates, unknown ops)
	keeps := 0                            // slots with keep set
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
		if m.Op == graph.OpUpsertNode && len(m.Keep) > 0 && !s.keep {
			s.keep = true
			keeps++
		}
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
	var resolved map[graph.NodeKey]graph.Mutation
	if keeps > 0 {
		resolved = resolveKept(muts, keeps, func(k graph.NodeKey) bool {
			at, ok := index[key{node: true, n: k}]
			return ok && slots[at].keep
		})
	}
	out := make([]graph.Mutation, 0, len(slots)+len(extra))
	for i := range slots {
		s := &slots[i]
		var up *graph.Mutation
		if s.up >= 0 {
			up = &muts[s.up]
			if s.keep {
				r := resolved[up.Node]
				up = &r
			}
		}
		if s.del >= 0 {
			d := &muts[s.del]
			dropped := up != nil && compareVersions(up, d) > 0
			if !dropped {
				out = append(out, *d)
			}
		}
		if up != nil {
			out = append(out, *up)
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

// keptValue is an upsert of a node as the store would write it: its kept
// properties filled from the node's state when it is applied.
type keptValue struct {
	m     *graph.Mutation
	props graph.Props
	keep  []string // still kept: the stored node supplies them
	enc   []byte   // of props, when compared
}

// resolveKept follows, in batch order, the mutations of every node that
// has[k] (those with upserts that keep properties), and returns each one's
// winning upsert with its kept properties filled as Fold's doc says.
func resolveKept(muts []graph.Mutation, nodes int, has func(graph.NodeKey) bool) map[graph.NodeKey]graph.Mutation {
	// Each node's mutations, and the truncates of its type, in batch order.
	seq := make(map[graph.NodeKey][]int, nodes)
	types := map[string][]graph.NodeKey{}
	for i := range muts {
		m := &muts[i]
		switch m.Op {
		case graph.OpUpsertNode, graph.OpDeleteNode, graph.OpPurgeNode:
			if !has(m.Node) {
				continue
			}
			if _, ok := seq[m.Node]; !ok {
				types[m.Node.Type] = append(types[m.Node.Type], m.Node)
			}
			seq[m.Node] = append(seq[m.Node], i)
		}
	}
	for i := range muts {
		if m := &muts[i]; m.Op == graph.OpTruncateType {
			for _, k := range types[m.Node.Type] {
				seq[k] = append(seq[k], i)
			}
		}
	}
	out := make(map[graph.NodeKey]graph.Mutation, len(seq))
	for k, idx := range seq {
		slices.Sort(idx)
		var cur *keptValue
		var del *graph.Mutation // the newest delete, purge or truncate so far
		for _, i := range idx {
			m := &muts[i]
			if m.Op != graph.OpUpsertNode {
				if del == nil || compareVersions(m, del) > 0 {
					del = m
				}
				continue
			}
			v := &keptValue{m: m, props: m.Props}
			if len(m.Keep) > 0 {
				v.props, v.keep = fillKept(m, cur, del)
			}
			if cur == nil || v.beats(cur) {
				cur = v
			}
		}
		if cur == nil {
			continue
		}
		w := *cur.m
		w.Props, w.Keep = cur.props, cur.keep
		out[k] = w
	}
	return out
}

// fillKept returns the properties and the still-kept names of upsert m
// applied after cur (nil: no upsert of the node so far in the batch) and
// del (the batch's newest delete of the node so far, or nil).
func fillKept(m *graph.Mutation, cur *keptValue, del *graph.Mutation) (graph.Props, []string) {
	if cur == nil {
		if del != nil {
			return m.Props, nil // the stored node, older than del, is gone
		}
		return m.Props, m.Keep // the store fills them from the stored node
	}
	live := del == nil || compareVersions(cur.m, del) > 0
	if !live || compareVersions(cur.m, m) > 0 {
		return m.Props, nil
	}
	props := make(graph.Props, len(m.Props)+len(m.Keep))
	for name, x := range m.Props {
		props[name] = x
	}
	var keep []string
	for _, name := range m.Keep {
		if x, ok := cur.props[name]; ok {
			props[name] = x
		} else if slices.Contains(cur.keep, name) {
			keep = append(keep, name)
		}
	}
	return props, keep
}

// beats reports whether v wins over o under the last-write-wins rule.
func (v *keptValue) beats(o *keptValue) bool {
	if c := compareVersions(v.m, o.m); c != 0 {
		return c > 0
	}
	if v.enc == nil {
		v.enc = encode(v.props)
	}
	if o.enc == nil {
		o.enc = encode(o.props)
	}
	return bytes.Compare(v.enc, o.enc) > 0
}
