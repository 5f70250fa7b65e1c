package memstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// Now is the clock TTL expiry is judged by; nil means time.Now.
	Now func() time.Time
}

// version is the newest upsert of a node or edge, by the last-write-wins
// order of package graph: event time, position, then encoded properties
// byte-wise.
type version struct {
	at    time.Time
	pos   graph.Pos
	enc   []byte
	props graph.Props
	ttl   time.Duration
}

// record is everything known about one node or edge. Only the winning upsert
// and the newest delete matter: the item is visible when the upsert is newer
// than the delete, so arrival order cannot change the outcome.
type record struct {
	up     *version
	hasDel bool
	delAt  time.Time // newest delete's event time
	delPos graph.Pos // and position
	// A node's newest purge, which hides for good its edges written at or
	// before it.
	hasPurge bool
	purgeAt  time.Time
	purgePos graph.Pos
}

// purgedAtOrAfter reports whether r holds a purge whose version is at or
// after (at, pos).
func (r *record) purgedAtOrAfter(at time.Time, pos graph.Pos) bool {
	return r != nil && r.hasPurge && graph.CompareVersions(r.purgeAt.UnixMicro(), r.purgePos, at.UnixMicro(), pos) >= 0
}

// deletedAtOrAfter reports whether r holds a delete whose version is at or
// after (at, pos).
func (r *record) deletedAtOrAfter(at time.Time, pos graph.Pos) bool {
	return r != nil && r.hasDel && graph.CompareVersions(r.delAt.UnixMicro(), r.delPos, at.UnixMicro(), pos) >= 0
}

type adjKey struct {
	node     graph.NodeKey
	edgeType string
	dir      graph.Direction
}

// claim is the edge a node holds at an end its edge type constrains (see
// the multiplicity rule of package graph).
type claim struct {
	at     time.Time
	pos    graph.Pos
	target graph.NodeKey
}

// beats reports whether a claim of target at (at, pos) replaces c.
func (c *claim) beatenBy(at time.Time, pos graph.Pos, target graph.NodeKey) bool {
	if c == nil {
		return true
	}
	if v := graph.CompareVersions(at.UnixMicro(), pos, c.at.UnixMicro(), c.pos); v != 0 {
		return v > 0
	}
	return CompareNodeKeys(target, c.target) > 0
}

// Store is an in-memory graph.Store. It is safe for concurrent use; every
// call holds one mutex, so a read sees each Apply entirely or not at all.
type Store struct {
	schema *graph.Schema
	now    func() time.Time

	mu     sync.RWMutex
	closed bool
	nodes  map[graph.NodeKey]*record
	edges  map[graph.EdgeKey]*record
	// adj lists, per node, edge type and direction, the edges ever written
	// there; visibility is still decided from nodes and edges at read time.
	adj map[adjKey]map[graph.EdgeKey]struct{}
	// claims holds, per node, edge type and constrained end, the node's
	// claim.
	claims map[adjKey]*claim
	// truncates holds, per node type, its newest truncate.
	truncates map[string]truncate
}

// truncate is the version of a type's newest truncate.
type truncate struct {
	at  time.Time
	pos graph.Pos
}

var _ graph.Store = (*Store)(nil)

// New returns an empty Store that checks mutations against schema.
func New(schema *graph.Schema, opts Options) *Store {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Store{
		schema:    schema,
		now:       now,
		nodes:     make(map[graph.NodeKey]*record),
		edges:     make(map[graph.EdgeKey]*record),
		adj:       make(map[adjKey]map[graph.EdgeKey]struct{}),
		claims:    make(map[adjKey]*claim),
		truncates: make(map[string]truncate),
	}
}

// Apply checks every mutation against the schema first and applies none if
// one breaks it (the error is the *graph.SchemaError, permanent). Otherwise
// it applies them all atomically.
func (s *Store) Apply(ctx context.Context, muts []graph.Mutation) error {
	if err := ctx.Err(); err != nil {
		return &graph.RetryableError{Op: "apply", Err: err}
	}
	checked := make([]graph.Mutation, len(muts))
	for i, m := range muts {
		if err := s.schema.Check(&m); err != nil {
			return fmt.Errorf("memstore: apply mutation %d: %w", i, err)
		}
		checked[i] = m
	}
	encs := make([][]byte, len(checked))
	for i, m := range checked {
		if (m.Op == graph.OpUpsertNode && len(m.Keep) == 0) || m.Op == graph.OpUpsertEdge {
			enc, err := graph.EncodeProps(m.Props)
			if err != nil {
				return fmt.Errorf("memstore: apply mutation %d: %w", i, err)
			}
			encs[i] = enc
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return graph.ErrClosed
	}
	for i, m := range checked {
		switch m.Op {
		case graph.OpUpsertNode:
			r := getRec(s.nodes, m.Node)
			if len(m.Keep) > 0 {
				// The kept properties come from the stored node when it is
				// live and not newer than the upsert (package graph).
				m.Props = clone(m.Props)
				if v := s.liveNode(m.Node, r); v != nil && graph.CompareVersions(v.at.UnixMicro(), v.pos, m.EventTime.UnixMicro(), m.Pos) <= 0 {
					for _, name := range m.Keep {
						if x, ok := v.props[name]; ok {
							m.Props[name] = x
						}
					}
				}
				enc, err := graph.EncodeProps(m.Props)
				if err != nil {
					return fmt.Errorf("memstore: apply mutation %d: %w", i, err)
				}
				encs[i] = enc
			}
			upsert(r, m, encs[i])
		case graph.OpTruncateType:
			if t, ok := s.truncates[m.Node.Type]; !ok || graph.CompareVersions(m.EventTime.UnixMicro(), m.Pos, t.at.UnixMicro(), t.pos) > 0 {
				s.truncates[m.Node.Type] = truncate{at: m.EventTime, pos: m.Pos}
			}
		case graph.OpDeleteNode:
			del(getRec(s.nodes, m.Node), m.EventTime, m.Pos)
		case graph.OpPurgeNode:
			r := getRec(s.nodes, m.Node)
			del(r, m.EventTime, m.Pos)
			if !r.purgedAtOrAfter(m.EventTime, m.Pos) {
				r.hasPurge, r.purgeAt, r.purgePos = true, m.EventTime, m.Pos
			}
		case graph.OpUpsertEdge:
			if !s.claim(m) {
				continue
			}
			s.index(m.Edge)
			upsert(getRec(s.edges, m.Edge), m, encs[i])
		case graph.OpDeleteEdge:
			s.index(m.Edge)
			del(getRec(s.edges, m.Edge), m.EventTime, m.Pos)
		}
	}
	return nil
}

// claim applies the multiplicity rule to an edge upsert: at each end its
// type constrains, the upsert becomes the node's claim if it beats the
// current one, and the edge to the previous claim loses its upsert. It reports whether the upsert is the claim at every
// constrained end, that is, whether it is to be written.
func (s *Store) claim(m graph.Mutation) bool {
	et, _ := s.schema.EdgeType(m.Edge.Type)
	write := true
	for _, dir := range []graph.Direction{graph.Out, graph.In} {
		if !et.Constrains(dir) {
			continue
		}
		node, target := m.Edge.From, m.Edge.To
		if dir == graph.In {
			node, target = m.Edge.To, m.Edge.From
		}
		k := adjKey{node, m.Edge.Type, dir}
		c := s.claims[k]
		switch {
		case c.beatenBy(m.EventTime, m.Pos, target):
			if c != nil && c.target != target {
				old := graph.EdgeKey{Type: m.Edge.Type, From: node, To: c.target}
				if dir == graph.In {
					old = graph.EdgeKey{Type: m.Edge.Type, From: c.target, To: node}
				}
				// The old claim's edge loses its upsert, without a delete
				// of this version: an upsert of it of this very version
				// that wins the claim's tie later must still be written.
				// Older upserts of it lose the claim and are not written.
				if r := s.edges[old]; r != nil {
					r.up = nil
				}
			}
			s.claims[k] = &claim{at: m.EventTime, pos: m.Pos, target: target}
		case c.target != target:
			write = false
		}
	}
	return write
}

func getRec[K comparable](m map[K]*record, k K) *record {
	r, ok := m[k]
	if !ok {
		r = &record{}
		m[k] = r
	}
	return r
}

func (s *Store) index(k graph.EdgeKey) {
	for _, a := range []adjKey{{k.From, k.Type, graph.Out}, {k.To, k.Type, graph.In}} {
		set, ok := s.adj[a]
		if !ok {
			set = make(map[graph.EdgeKey]struct{})
			s.adj[a] = set
		}
		set[k] = struct{}{}
	}
}

// Newer reports whether an upsert at (at, pos, enc) beats one at (oat, opos,
// oenc) under the package graph rule. Exported for backends' own tests.
func Newer(at time.Time, pos graph.Pos, enc []byte, oat time.Time, opos graph.Pos, oenc []byte) bool {
	if c := graph.CompareVersions(at.UnixMicro(), pos, oat.UnixMicro(), opos); c != 0 {
		return c > 0
	}
	return bytes.Compare(enc, oenc) > 0
}

func upsert(r *record, m graph.Mutation, enc []byte) {
	if r.up != nil && !Newer(m.EventTime, m.Pos, enc, r.up.at, r.up.pos, r.up.enc) {
		return
	}
	r.up = &version{at: m.EventTime, pos: m.Pos, enc: enc, props: clone(m.Props), ttl: m.TTL}
}

func del(r *record, at time.Time, pos graph.Pos) {
	if !r.hasDel || graph.CompareVersions(at.UnixMicro(), pos, r.delAt.UnixMicro(), r.delPos) > 0 {
		r.hasDel, r.delAt, r.delPos = true, at, pos
	}
}

func clone(p graph.Props) graph.Props {
	out := make(graph.Props, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}

// visible returns the live version of r, or nil; a delete of the same
// version as the upsert wins.
func (r *record) visible() *version {
	if r == nil || r.up == nil || r.deletedAtOrAfter(r.up.at, r.up.pos) {
		return nil
	}
	return r.up
}

// liveNode returns the live version of node k with record r, or nil: its
// upsert beats its newest delete and its type's newest truncate (a delete
// or truncate of the same version wins).
func (s *Store) liveNode(k graph.NodeKey, r *record) *version {
	v := r.visible()
	if v == nil {
		return nil
	}
	if t, ok := s.truncates[k.Type]; ok && graph.CompareVersions(t.at.UnixMicro(), t.pos, v.at.UnixMicro(), v.pos) >= 0 {
		return nil
	}
	return v
}

// GetNodes returns the visible nodes among keys.
func (s *Store) GetNodes(ctx context.Context, keys []graph.NodeKey) (map[graph.NodeKey]graph.Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, &graph.RetryableError{Op: "get nodes", Err: err}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, graph.ErrClosed
	}
	out := make(map[graph.NodeKey]graph.Node, len(keys))
	for _, k := range keys {
		if v := s.liveNode(k, s.nodes[k]); v != nil {
			out[k] = graph.Node{Key: k, Props: clone(v.props), EventTime: v.at}
		}
	}
	return out, nil
}

// edgeVisible applies every rule that hides an edge: its own delete, an end
// node that does not exist (or, of an implicit type, is deleted), a purge
// of either end at or after its version, and expiry.
func (s *Store) edgeVisible(k graph.EdgeKey, now time.Time) (graph.Edge, bool) {
	v := s.edges[k].visible()
	if v == nil {
		return graph.Edge{}, false
	}
	for _, n := range []graph.NodeKey{k.From, k.To} {
		r := s.nodes[n]
		if r.purgedAtOrAfter(v.at, v.pos) || !s.present(n, r) {
			return graph.Edge{}, false
		}
	}
	e := graph.Edge{Key: k, Props: clone(v.props), EventTime: v.at}
	if v.ttl > 0 {
		e.ExpiresAt = v.at.Add(v.ttl)
		if !now.Before(e.ExpiresAt) {
			return graph.Edge{}, false
		}
	}
	return e, true
}

// present reports whether node n with record r lets its edges be seen: it
// exists, or its type is implicit and it is not deleted (implicit types are
// never truncated).
func (s *Store) present(n graph.NodeKey, r *record) bool {
	if s.liveNode(n, r) != nil {
		return true
	}
	nt, ok := s.schema.NodeType(n.Type)
	return ok && nt.Implicit && (r == nil || !r.hasDel)
}

// Edges returns every visible edge, sorted by key: what property tests
// compare backends against.
func (s *Store) Edges() []graph.Edge {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	var out []graph.Edge
	for k := range s.edges {
		if e, ok := s.edgeVisible(k, now); ok {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b graph.Edge) int { return CompareEdgeKeys(a.Key, b.Key) })
	return out
}

// Nodes returns every visible node, sorted by key.
func (s *Store) Nodes() []graph.Node {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []graph.Node
	for k, r := range s.nodes {
		if v := s.liveNode(k, r); v != nil {
			out = append(out, graph.Node{Key: k, Props: clone(v.props), EventTime: v.at})
		}
	}
	slices.SortFunc(out, func(a, b graph.Node) int { return CompareNodeKeys(a.Key, b.Key) })
	return out
}

// CompareNodeKeys orders node keys by type, then id, byte-wise.
func CompareNodeKeys(a, b graph.NodeKey) int {
	return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID))
}

// CompareEdgeKeys orders edge keys by type, from, then to.
func CompareEdgeKeys(a, b graph.EdgeKey) int {
	return cmp.Or(cmp.Compare(a.Type, b.Type), CompareNodeKeys(a.From, b.From), CompareNodeKeys(a.To, b.To))
}

type position struct {
	at       int64 // event time, microseconds
	neighbor graph.NodeKey
}

func neighbor(e graph.Edge, dir graph.Direction) graph.NodeKey {
	if dir == graph.In {
		return e.Key.From
	}
	return e.Key.To
}

func comparePos(order graph.Order, a, b position) int {
	if order == graph.OrderLatest {
		if c := cmp.Compare(b.at, a.at); c != 0 {
			return c
		}
	}
	return CompareNodeKeys(a.neighbor, b.neighbor)
}

// Adjacency returns one page of q. The cursor is the position of the last
// edge returned, so a page resumes strictly after it whatever was written in
// between.
func (s *Store) Adjacency(ctx context.Context, q graph.AdjacencyQuery) (graph.AdjacencyPage, error) {
	if err := ctx.Err(); err != nil {
		return graph.AdjacencyPage{}, &graph.RetryableError{Op: "adjacency", Err: err}
	}
	if _, err := s.schema.CheckQuery(q); err != nil {
		return graph.AdjacencyPage{}, fmt.Errorf("memstore: adjacency: %w", err)
	}
	fp := graph.QueryFingerprint(q)
	var after *position
	if q.Cursor != nil {
		p, err := decodeCursor(q.Cursor, fp)
		if err != nil {
			return graph.AdjacencyPage{}, fmt.Errorf("memstore: adjacency: %w", err)
		}
		after = &p
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return graph.AdjacencyPage{}, graph.ErrClosed
	}
	now := s.now()
	type item struct {
		pos  position
		edge graph.Edge
	}
	var items []item
	for k := range s.adj[adjKey{q.Node, q.EdgeType, q.Direction}] {
		e, ok := s.edgeVisible(k, now)
		if !ok {
			continue
		}
		if !q.Since.IsZero() && e.EventTime.Before(q.Since) {
			continue
		}
		if !q.Until.IsZero() && !e.EventTime.Before(q.Until) {
			continue
		}
		p := position{at: e.EventTime.UnixMicro(), neighbor: neighbor(e, q.Direction)}
		if after != nil && comparePos(q.Order, p, *after) <= 0 {
			continue
		}
		items = append(items, item{p, e})
	}
	slices.SortFunc(items, func(a, b item) int { return comparePos(q.Order, a.pos, b.pos) })
	var page graph.AdjacencyPage
	for i, it := range items {
		if i == q.Limit {
			page.Next = encodeCursor(fp, items[i-1].pos)
			break
		}
		page.Edges = append(page.Edges, it.edge)
	}
	return page, nil
}

const cursorV1 = 1

// encodeCursor: version, query fingerprint, event time, then the neighbour's
// type and id each prefixed by its length.
func encodeCursor(fp uint64, p position) []byte {
	b := make([]byte, 0, 1+8+8+4+len(p.neighbor.Type)+len(p.neighbor.ID))
	b = append(b, cursorV1)
	b = binary.BigEndian.AppendUint64(b, fp)
	b = binary.BigEndian.AppendUint64(b, uint64(p.at))
	b = binary.AppendUvarint(b, uint64(len(p.neighbor.Type)))
	b = append(b, p.neighbor.Type...)
	b = binary.AppendUvarint(b, uint64(len(p.neighbor.ID)))
	b = append(b, p.neighbor.ID...)
	return b
}

func decodeCursor(b []byte, fp uint64) (position, error) {
	bad := func(why string) (position, error) {
		return position{}, fmt.Errorf("%w: %s", graph.ErrInvalidCursor, why)
	}
	if len(b) < 17 || b[0] != cursorV1 {
		return bad("unknown version or too short")
	}
	if binary.BigEndian.Uint64(b[1:9]) != fp {
		return bad("cursor belongs to another query")
	}
	p := position{at: int64(binary.BigEndian.Uint64(b[9:17]))}
	rest := b[17:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return "", false
		}
		s := string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
		return s, true
	}
	var ok1, ok2 bool
	p.neighbor.Type, ok1 = str()
	p.neighbor.ID, ok2 = str()
	if !ok1 || !ok2 || len(rest) != 0 {
		return bad("malformed position")
	}
	return p, nil
}

// ListNodes lists the nodes of a type by id (bytes). The cursor is the
// last id returned, after the type's name.
func (s *Store) ListNodes(ctx context.Context, q graph.NodeListQuery) (graph.NodePage, error) {
	if err := ctx.Err(); err != nil {
		return graph.NodePage{}, &graph.RetryableError{Op: "list nodes", Err: err}
	}
	if _, ok := s.schema.NodeType(q.Type); !ok {
		return graph.NodePage{}, fmt.Errorf("%w: unknown node type %q", graph.ErrInvalidQuery, q.Type)
	}
	if q.Limit < 1 {
		return graph.NodePage{}, fmt.Errorf("%w: limit %d", graph.ErrInvalidQuery, q.Limit)
	}
	after, first := "", true
	if q.Cursor != nil {
		var err error
		if after, err = graph.DecodeListCursor(q.Type, q.Cursor); err != nil {
			return graph.NodePage{}, err
		}
		first = false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return graph.NodePage{}, graph.ErrClosed
	}
	var ids []string
	for k, r := range s.nodes {
		if k.Type == q.Type && (first || k.ID > after) && s.liveNode(k, r) != nil {
			ids = append(ids, k.ID)
		}
	}
	slices.Sort(ids)
	var page graph.NodePage
	if len(ids) > q.Limit {
		ids = ids[:q.Limit]
		page.Next = graph.EncodeListCursor(q.Type, ids[len(ids)-1])
	}
	for _, id := range ids {
		k := graph.NodeKey{Type: q.Type, ID: id}
		v := s.liveNode(k, s.nodes[k])
		page.Nodes = append(page.Nodes, graph.Node{Key: k, Props: clone(v.props), EventTime: v.at})
	}
	return page, nil
}

// Close marks the store closed; later calls return graph.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return graph.ErrClosed
	}
	s.closed = true
	return nil
}
