package traverse

import (
	"cmp"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

// Reason says why a hop returned fewer edges than exist.
type Reason string

// Truncation reasons, in the order a hop reports them.
const (
	// ReasonHopLimit: the hop returned Hop.Limit edges and more matched.
	ReasonHopLimit Reason = "hop_limit"
	// ReasonMaxResults: the traversal returned Request.MaxResults edges.
	ReasonMaxResults Reason = "max_results"
	// ReasonSupernodeCap: a node had more edges than Hop.NodeCap; the rest
	// of its edges were not read.
	ReasonSupernodeCap Reason = "supernode_cap"
	// ReasonTimeBudget: the deadline came before the hop was read in full.
	ReasonTimeBudget Reason = "time_budget"
)

var reasonOrder = map[Reason]int{ReasonHopLimit: 1, ReasonMaxResults: 2, ReasonSupernodeCap: 3, ReasonTimeBudget: 4}

// Position is where an edge sits in the order of one adjacency scan: its
// event time (microseconds) and the node at its far end. Positions are unique
// within one node, edge type and direction.
type Position struct {
	EventTime time.Time
	Neighbor  graph.NodeKey
}

// comparePos orders positions as the store orders adjacency (see graph.Order).
func comparePos(o graph.Order, a, b Position) int {
	if o == graph.OrderLatest {
		if c := cmp.Compare(b.EventTime.UnixMicro(), a.EventTime.UnixMicro()); c != 0 {
			return c
		}
	}
	return cmp.Or(cmp.Compare(a.Neighbor.Type, b.Neighbor.Type), cmp.Compare(a.Neighbor.ID, b.Neighbor.ID))
}

// Source is one adjacency scan of a hop: a node, an edge type, a direction,
// and where in the scan to start.
type Source struct {
	Node      graph.NodeKey
	EdgeType  string
	Direction graph.Direction
	// Cursor is the store cursor the first read passes; nil reads from the
	// start of the scan.
	Cursor []byte
	// From, when set, skips the edges that precede this position: they were
	// returned already. The page that Cursor starts may hold some of them.
	From *Position
}

// Continuation resumes one hop: Request.Resume of a request with the same
// hops. The sources are in the order the cut request would have read them.
type Continuation struct {
	Hop  int // index into Request.Hops
	Work []Source
	// Frontier lists every node the hop expands; it is set only for
	// direction Both, where it decides which source returns an edge whose
	// two ends are both in the frontier (the Out source of its From end), so
	// that no edge comes back twice across continuations.
	Frontier []graph.NodeKey
}

// NodeStatus says what is known of a node the traversal reached.
type NodeStatus uint8

// Node statuses.
const (
	NodeFound   NodeStatus = iota + 1 // read; Node holds it
	NodeMissing                       // read, and the store has no such node (edges may still point to it)
	NodeNotRead                       // the time budget ran out before it was read
)

func (s NodeStatus) String() string {
	switch s {
	case NodeFound:
		return "found"
	case NodeMissing:
		return "missing"
	case NodeNotRead:
		return "not_read"
	}
	return "unknown"
}

// NodeResult is a node the traversal reached.
type NodeResult struct {
	Key    graph.NodeKey
	Status NodeStatus
	Node   graph.Node // when Status is NodeFound
	// Hop is the hop that first reached it (1-based); 0 for start nodes and,
	// when resuming, for the nodes the resumed hop expands.
	Hop int
}

// EdgeResult is an edge a hop returned.
type EdgeResult struct {
	Edge graph.Edge
	Hop  int           // 1-based
	From graph.NodeKey // the frontier node it was read from
}

// Far is the node the edge leads to from the node it was read from.
func (e EdgeResult) Far() graph.NodeKey {
	if e.Edge.Key.From == e.From {
		return e.Edge.Key.To
	}
	return e.Edge.Key.From
}

// HopResult accounts for one hop.
type HopResult struct {
	Hop      int // 1-based
	Edges    int // edges returned
	NewNodes int // nodes first reached by this hop
	// Skipped is true when the hop was not read at all, because the
	// traversal stopped before it (Reasons says why).
	Skipped bool
	// Reasons is empty when the hop returned every matching edge.
	Reasons []Reason
	// UnreadEdges counts matching edges that were read but not returned; a
	// lower bound on what is left unless UnreadExact.
	UnreadEdges int
	UnreadExact bool
	// Continue resumes the hop where it stopped; nil when nothing is left or
	// when the hop's frontier was never reached (then an earlier hop's
	// continuation covers it).
	Continue *Continuation
}

// Truncated reports whether the hop left matching edges out.
func (h HopResult) Truncated() bool { return len(h.Reasons) > 0 }

// Result is what a traversal returns.
type Result struct {
	Nodes []NodeResult
	Edges []EdgeResult
	// Paths are present when requested: each lists indices into Edges from a
	// start node to one edge of the deepest hop that returned edges.
	Paths [][]int
	Hops  []HopResult
	// StoreReads counts the store calls made.
	StoreReads int
}

// Truncated reports whether any hop left matching edges out.
func (r *Result) Truncated() bool {
	for _, h := range r.Hops {
		if h.Truncated() {
			return true
		}
	}
	return false
}
