package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// NodeKey identifies a node: its type (from the graph schema) and its id.
type NodeKey struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// String renders the key as "type:id", the form the API accepts.
func (k NodeKey) String() string { return k.Type + ":" + k.ID }

// Props are typed properties. Values are string, int64, float64 or bool,
// as declared by the graph schema; [Schema.Check] normalises numbers.
type Props map[string]any

// EncodeProps is the canonical byte encoding of a property set: JSON with
// sorted keys. Backends store it as is and compare it to break event-time ties.
func EncodeProps(p Props) ([]byte, error) {
	if len(p) == 0 {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(map[string]any(p))
	if err != nil {
		return nil, fmt.Errorf("graph: encode props: %w", err)
	}
	return b, nil
}

// DecodeProps is the inverse of [EncodeProps]. Integral JSON numbers come back
// as int64, other numbers as float64.
func DecodeProps(b []byte) (Props, error) {
	if len(b) == 0 || bytes.Equal(b, []byte("{}")) {
		return Props{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("graph: decode props: %w", err)
	}
	p := make(Props, len(raw))
	for k, v := range raw {
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				p[k] = i
				continue
			}
			f, err := n.Float64()
			if err != nil {
				return nil, fmt.Errorf("graph: decode props: %q: %w", k, err)
			}
			p[k] = f
			continue
		}
		p[k] = v
	}
	return p, nil
}

// Node is a node as stored: its properties and the event time of the write
// that produced them.
//
// PropsJSON is the stored encoding of Props ([EncodeProps]: canonical JSON)
// when the backend read it from storage, else nil: a reader that only passes
// properties on writes these bytes as they are, with no decode and
// re-encode. It is owned by the caller.
type Node struct {
	Key       NodeKey   `json:"key"`
	Props     Props     `json:"props"`
	EventTime time.Time `json:"event_time"`
	PropsJSON []byte    `json:"-"`
}

// EdgeKey identifies an edge: at most one edge of a type links two nodes in
// one direction.
type EdgeKey struct {
	Type string  `json:"type"`
	From NodeKey `json:"from"`
	To   NodeKey `json:"to"`
}

// Edge is an edge as stored. ExpiresAt is zero when the edge type has no TTL.
// PropsJSON is as for [Node]; an adjacency page asked with
// [AdjacencyQuery.RawProps] may hold only PropsJSON, with Props nil.
type Edge struct {
	Key       EdgeKey   `json:"key"`
	Props     Props     `json:"props"`
	EventTime time.Time `json:"event_time"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	PropsJSON []byte    `json:"-"`
}

// PropsBytes returns the canonical JSON of the edge's properties: PropsJSON
// when the backend set it, else [EncodeProps] of Props.
func (e Edge) PropsBytes() ([]byte, error) {
	if e.PropsJSON != nil {
		return e.PropsJSON, nil
	}
	return EncodeProps(e.Props)
}

// PropsBytes is [Edge.PropsBytes] for a node.
func (n Node) PropsBytes() ([]byte, error) {
	if n.PropsJSON != nil {
		return n.PropsJSON, nil
	}
	return EncodeProps(n.Props)
}

// Op is the kind of a mutation.
type Op uint8

// The mutation kinds. OpDeleteNode hides a node (its edges stay, hidden
// while it is deleted); OpPurgeNode removes a node and every edge at it
// written at or before the purge, for good; OpTruncateType deletes every
// node of one type (Node.Type; Node.ID is empty) as of its version, as a
// TRUNCATE of the table the type comes from does (see the package doc).
const (
	OpUpsertNode Op = iota + 1
	OpUpsertEdge
	OpDeleteNode
	OpDeleteEdge
	OpPurgeNode
	OpTruncateType
)

func (o Op) String() string {
	switch o {
	case OpUpsertNode:
		return "upsert_node"
	case OpUpsertEdge:
		return "upsert_edge"
	case OpDeleteNode:
		return "delete_node"
	case OpDeleteEdge:
		return "delete_edge"
	case OpPurgeNode:
		return "purge_node"
	case OpTruncateType:
		return "truncate_type"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Mutation is one change to the graph. Node ops use Node; edge ops use Edge.
// EventTime is the source event time (never ingest time) and must be set;
// backends keep microsecond precision. Pos orders the mutation among those
// of the same event time (see [Pos]); together they are its version. TTL is
// filled from the edge type by [Schema.Check]; zero means the edge never
// expires.
//
// Keep, on an OpUpsertNode only, names properties the upsert does not know
// (a CDC update that leaves a TOASTed column unchanged carries a
// placeholder, not the value): the node keeps their values from the stored
// node when that node is live and not newer than the upsert, and has them
// absent otherwise. Keep is sorted, without duplicates, and disjoint from
// Props ([Schema.Check] enforces it).
type Mutation struct {
	Op        Op            `json:"op"`
	Node      NodeKey       `json:"node,omitzero"`
	Edge      EdgeKey       `json:"edge,omitzero"`
	Props     Props         `json:"props,omitempty"`
	Keep      []string      `json:"keep,omitempty"`
	EventTime time.Time     `json:"event_time"`
	Pos       Pos           `json:"pos,omitzero"`
	TTL       time.Duration `json:"ttl,omitempty"`
}

// Direction selects which side of an edge a node is on.
type Direction uint8

// Directions of adjacency.
const (
	Out Direction = iota + 1 // edges whose From is the node
	In                       // edges whose To is the node
)

func (d Direction) String() string {
	switch d {
	case Out:
		return "out"
	case In:
		return "in"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// Order is the order of an adjacency page.
type Order uint8

// Adjacency orders.
const (
	// OrderLatest lists newest event time first; ties by neighbour key ascending.
	OrderLatest Order = iota + 1
	// OrderKey lists by neighbour key (type, then id) ascending.
	OrderKey
)

func (o Order) String() string {
	switch o {
	case OrderLatest:
		return "latest"
	case OrderKey:
		return "key"
	}
	return fmt.Sprintf("order(%d)", uint8(o))
}
