package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rtgraph/rtgraph/graph"
)

// claimRec is a node's claim at an end its edge type constrains (package
// graph's multiplicity rule): the version and target of the edge upsert of
// greatest version written there.
type claimRec struct {
	v      ver
	target graph.NodeKey
}

const claimV1 = 1

func (c claimRec) encode() []byte {
	b := make([]byte, 0, 1+8+graph.PosLen+len(c.target.Type)+len(c.target.ID)+4)
	b = append(b, claimV1)
	b = binary.BigEndian.AppendUint64(b, uint64(c.v.at))
	b = append(b, c.v.pos[:]...)
	return appendNode(b, c.target)
}

var errBadClaim = errors.New("embedded: malformed claim")

func decodeClaim(b []byte) (claimRec, error) {
	if len(b) < 1+8+graph.PosLen || b[0] != claimV1 {
		return claimRec{}, fmt.Errorf("%w (%d bytes)", errBadClaim, len(b))
	}
	c := claimRec{v: ver{at: int64(binary.BigEndian.Uint64(b[1:9]))}}
	copy(c.v.pos[:], b[9:9+graph.PosLen])
	t, rest, err := readNode(b[9+graph.PosLen:])
	if err != nil || len(rest) != 0 {
		return claimRec{}, fmt.Errorf("%w: target", errBadClaim)
	}
	c.target = t
	return c, nil
}

// beatenBy reports whether a claim of target at version v replaces c: the
// greater version wins, and on equal versions the greater target key.
func (c claimRec) beatenBy(v ver, target graph.NodeKey) bool {
	if d := graph.CompareVersions(v.at, v.pos, c.v.at, c.v.pos); d != 0 {
		return d > 0
	}
	if c.target.Type != target.Type {
		return target.Type > c.target.Type
	}
	return target.ID > c.target.ID
}

// claim applies the multiplicity rule to an upsert of edge k at version v:
// at each end the type constrains, the upsert becomes the node's claim if
// it beats the current one, and the edge to the previous claim loses its
// upsert. It reports whether the upsert is the claim at every constrained end,
// that is, whether it is to be written.
func (t *txn) claim(k graph.EdgeKey, v ver) (bool, error) {
	et, ok := t.s.schema.EdgeType(k.Type)
	if !ok {
		return false, fmt.Errorf("edge type %q not in schema", k.Type)
	}
	write := true
	for _, dir := range []graph.Direction{graph.Out, graph.In} {
		if !et.Constrains(dir) {
			continue
		}
		node, target := k.From, k.To
		if dir == graph.In {
			node, target = k.To, k.From
		}
		key := claimKey(node, k.Type, dir)
		c, found, err := t.getClaim(key)
		if err != nil {
			return false, err
		}
		switch {
		case !found || c.beatenBy(v, target):
			if found && c.target != target {
				old := graph.EdgeKey{Type: k.Type, From: node, To: c.target}
				if dir == graph.In {
					old = graph.EdgeKey{Type: k.Type, From: c.target, To: node}
				}
				// The old claim's edge loses its upsert, without a delete
				// of this version: an upsert of it of this very version
				// that wins the claim's tie later must still be written.
				// Older upserts of it lose the claim and are not written.
				r, found, err := t.get(edgeKey(old))
				if err != nil {
					return false, err
				}
				if found && r.hasUp {
					if err := t.dropUp(old, r); err != nil {
						return false, err
					}
					t.s.m.displaced.Inc()
				}
			}
			if err := t.b.Set(key, claimRec{v: v, target: target}.encode(), nil); err != nil {
				return false, err
			}
		case c.target != target:
			write = false
		}
	}
	return write, nil
}

func (t *txn) getClaim(key []byte) (claimRec, bool, error) {
	b, closer, err := t.b.Get(key)
	if err != nil {
		if isNotFound(err) {
			return claimRec{}, false, nil
		}
		return claimRec{}, false, err
	}
	defer closer.Close()
	c, err := decodeClaim(b)
	if err != nil {
		return claimRec{}, false, fmt.Errorf("%w at key %q", err, key)
	}
	return c, true, nil
}
