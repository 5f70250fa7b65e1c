package graph

import (
	"context"
	"errors"
	"time"
)

// AdjacencyQuery asks for one page of a node's edges of one type in one
// direction. Since and Until bound the edges' event time (Since inclusive,
// Until exclusive; zero means unbounded). Limit must be positive. Cursor is
// nil for the first page, else the Next of the previous page of the same
// query; a cursor is opaque and only valid for the query that produced it.
// RawProps asks for the edges' properties as stored bytes only
// ([Edge.PropsJSON]): a backend that keeps them encoded skips decoding them
// and may leave Props nil. It does not change which edges a page holds, nor
// its cursors.
type AdjacencyQuery struct {
	Node      NodeKey
	EdgeType  string
	Direction Direction
	Order     Order
	Since     time.Time
	Until     time.Time
	Limit     int
	Cursor    []byte
	RawProps  bool
}

// AdjacencyPage is one page of adjacency. Next is nil when there are no more
// edges; otherwise it resumes the scan right after the last edge returned.
// Edges are returned with From/To as stored, whatever the direction.
type AdjacencyPage struct {
	Edges []Edge
	Next  []byte
}

// Writer applies mutations. It is what the ingestion pipeline needs.
//
// Apply is safe for concurrent use. It is idempotent: applying the same
// mutations again, in any order, leaves the same state (see the package doc
// for the last-write-wins rule). It returns nil only when every mutation is
// durably acknowledged by the store. On error some mutations may have been
// applied; the caller retries the whole batch, which is safe. Errors wrap
// either a [*RetryableError] (timeouts, unavailability: retry with backoff) or
// are permanent (invalid mutation, closed store: do not retry). Cancelling ctx
// abandons the call and returns ctx.Err() wrapped as retryable.
type Writer interface {
	Apply(ctx context.Context, muts []Mutation) error
}

// Reader reads nodes and adjacency. It is what the query API needs. Safe for
// concurrent use; errors follow the same retryable/permanent rule as Writer.
type Reader interface {
	// GetNodes returns the nodes found among keys; missing or deleted ones
	// are absent from the map. Duplicated keys are allowed.
	GetNodes(ctx context.Context, keys []NodeKey) (map[NodeKey]Node, error)
	// Adjacency returns one page. A node that was deleted has no edges in
	// either direction from the moment the delete is applied. An expired edge
	// is never returned. Paging a query to its end returns every edge that
	// existed unchanged during the whole scan exactly once; an edge written
	// during the scan may or may not appear.
	Adjacency(ctx context.Context, q AdjacencyQuery) (AdjacencyPage, error)
}

// RawNodeReader is a Reader that can skip decoding node properties:
// GetNodesRaw is GetNodes returning each node's properties only as stored
// bytes (Node.PropsJSON), with Props nil. Backends that keep properties
// encoded implement it, for callers that only pass properties on.
type RawNodeReader interface {
	GetNodesRaw(ctx context.Context, keys []NodeKey) (map[NodeKey]Node, error)
}

// NodeListQuery asks for one page of the nodes of a type. Limit is at
// least 1; Cursor is nil for the first page, else a NodePage.Next of the
// same type's listing.
type NodeListQuery struct {
	Type   string
	Limit  int
	Cursor []byte
}

// NodePage is one page of a listing: at most Limit nodes that exist (as
// GetNodes would return them). Next is nil when the listing is complete;
// a page may hold fewer nodes than Limit, even none, while Next is not nil
// (a backend may bound the rows a page scans).
type NodePage struct {
	Nodes []Node
	Next  []byte
}

// Lister lists the nodes of a type in a stable order the backend defines.
// Paging a listing to its end returns every node that existed unchanged
// during the whole scan exactly once; a node written during the scan may or
// may not appear. A cursor of another type's listing is ErrInvalidCursor.
type Lister interface {
	ListNodes(ctx context.Context, q NodeListQuery) (NodePage, error)
}

// EdgeCounter counts the edges an adjacency query lists over all its pages
// (the degree of q.Node by q.EdgeType and q.Direction within q.Since and
// q.Until), without returning them: exactly the number of edges that
// paging Adjacency(q) to its end would return were nothing written
// meanwhile. q.Order, q.Limit and q.Cursor are ignored. A backend whose
// adjacency pages are costly to ship implements it; callers page
// Adjacency otherwise.
type EdgeCounter interface {
	CountEdges(ctx context.Context, q AdjacencyQuery) (int64, error)
}

// Store is a whole backend: what the conformance suite (graph/storetest) tests.
type Store interface {
	Writer
	Reader
	Lister
	// Close releases the backend's resources. Calls after Close fail with ErrClosed.
	Close() error
}

// Errors shared by every backend.
var (
	ErrClosed        = errors.New("graph: store closed")
	ErrInvalidCursor = errors.New("graph: invalid cursor")
	ErrInvalidQuery  = errors.New("graph: invalid query")
)

// RetryableError marks a transient store failure (timeout, unavailable,
// overloaded). Retrying the same call later may succeed.
type RetryableError struct {
	Op  string // what was being done, e.g. "apply", "adjacency"
	Err error
}

func (e *RetryableError) Error() string { return "graph: " + e.Op + " (retryable): " + e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// IsRetryable reports whether err wraps a [*RetryableError].
func IsRetryable(err error) bool {
	var r *RetryableError
	return errors.As(err, &r)
}
