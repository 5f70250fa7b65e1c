package cassandra

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/rtgraph/rtgraph/graph"
)

// Read statements.
const (
	cqlGetNode     = `SELECT props, WRITETIME(props) FROM nodes WHERE type = ? AND id = ?`
	cqlGetNodesIn  = `SELECT id, props, WRITETIME(props) FROM nodes WHERE type = ? AND id IN ?`
	cqlNodeDelete  = `SELECT deleted_at, deleted_pos, WRITETIME(deleted_pos) FROM node_deletes WHERE type = ? AND id = ?`
	cqlNodeDeletes = `SELECT id, deleted_at, deleted_pos, WRITETIME(deleted_pos) FROM node_deletes WHERE type = ? AND id IN ?`
	cqlScanByKey   = `SELECT neighbor, props, WRITETIME(props), expires_at, last_time FROM edges_by_key` +
		` WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND bucket = ? AND neighbor > ? LIMIT ?`
	cqlLookupByKey = `SELECT neighbor, props, WRITETIME(props), expires_at, last_time FROM edges_by_key` +
		` WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND bucket = ? AND neighbor IN ?`
	cqlDays = `SELECT day FROM edge_days` +
		` WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND day >= ? AND day <= ? LIMIT ?`
	cqlScanByTime = `SELECT event_time, neighbor FROM edges_by_time` +
		` WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND day = ? AND event_time >= ? AND event_time < ? LIMIT ?`
	cqlScanByTimeTie = `SELECT event_time, neighbor FROM edges_by_time` +
		` WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND day = ? AND event_time = ? AND neighbor > ? LIMIT ?`
	cqlClaim  = `SELECT claim FROM edge_claims WHERE node_type = ? AND edge_type = ? AND direction = ? AND node_id = ?`
	cqlClaims = `SELECT node_id, claim FROM edge_claims WHERE node_type = ? AND edge_type = ? AND direction = ? AND node_id IN ?`
)

// maxDays bounds the edge_days rows one newest-first read considers (27
// years of daily partitions).
const maxDays = 10_000

// maxPageLimit bounds the edges of one page whatever Limit asks, so one
// call's memory and reads stay bounded; a larger Limit gets pages of this
// size, each with a cursor to the next.
const maxPageLimit = 10_000

// GetNodes reads each distinct key's partition, in parallel (at most
// max_concurrent_requests at once). Keys that cannot exist (empty or
// oversized id, undeclared type) are absent without a read.
func (s *Store) GetNodes(ctx context.Context, keys []graph.NodeKey) (map[graph.NodeKey]graph.Node, error) {
	return s.getNodes(ctx, keys, false)
}

// GetNodesRaw implements graph.RawNodeReader.
func (s *Store) GetNodesRaw(ctx context.Context, keys []graph.NodeKey) (map[graph.NodeKey]graph.Node, error) {
	return s.getNodes(ctx, keys, true)
}

func (s *Store) getNodes(ctx context.Context, keys []graph.NodeKey, raw bool) (map[graph.NodeKey]graph.Node, error) {
	if !s.enter() {
		return nil, graph.ErrClosed
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, &graph.RetryableError{Op: "get nodes", Err: err}
	}
	type result struct {
		key   graph.NodeKey
		props []byte // nil: absent
		wt    int64
	}
	seen := make(map[graph.NodeKey]bool, len(keys))
	results := make([]result, 0, len(keys))
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		if _, ok := s.schema.NodeType(k.Type); !ok || k.ID == "" || len(k.ID) > graph.MaxIDLen {
			continue
		}
		results = append(results, result{key: k})
	}
	tasks := make([]task, len(results))
	for i := range results {
		r := &results[i]
		tasks[i] = task{op: opReadNode, f: func(ctx context.Context) error {
			err := s.query(s.readCL, cqlGetNode, r.key.Type, []byte(r.key.ID)).ScanContext(ctx, &r.props, &r.wt)
			if errors.Is(err, gocql.ErrNotFound) {
				r.props = nil
				return nil
			}
			return err
		}}
	}
	if err := s.runAll(ctx, tasks); err != nil {
		return nil, s.callErr(ctx, "get nodes", err)
	}
	truncs, err := s.truncates(ctx)
	if err != nil {
		return nil, s.callErr(ctx, "get nodes", err)
	}
	out := make(map[graph.NodeKey]graph.Node, len(results))
	for _, r := range results {
		if r.props == nil {
			continue
		}
		v, err := decodeValue(r.props)
		if err != nil {
			return nil, fmt.Errorf("cassandra: get node %s: %w", r.key, err)
		}
		if v.deleted {
			continue
		}
		if d := truncOf(truncs, r.key.Type); d != nil && d.hides(r.wt, v.pos) {
			continue
		}
		n := graph.Node{Key: r.key, EventTime: fromMicros(r.wt), PropsJSON: canonicalProps(v.props)}
		if !raw {
			nt, _ := s.schema.NodeType(r.key.Type)
			if n.Props, err = decodeProps(v.props, nt.Props); err != nil {
				return nil, fmt.Errorf("cassandra: get node %s: %w", r.key, err)
			}
		}
		out[r.key] = n
	}
	return out, nil
}

// canonicalProps is the stored property bytes as graph.Node.PropsJSON and
// graph.Edge.PropsJSON hold them: graph.EncodeProps writes "{}" for none.
func canonicalProps(b []byte) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}

// decodeProps decodes stored properties and restores declared float
// properties that JSON wrote as integers (3.0 is encoded "3").
func decodeProps(b []byte, declared map[string]graph.PropType) (graph.Props, error) {
	p, err := graph.DecodeProps(b)
	if err != nil {
		return nil, err
	}
	for k, v := range p {
		if i, ok := v.(int64); ok && declared[k] == graph.PropFloat {
			p[k] = float64(i)
		}
	}
	return p, nil
}

// keyRow is an edges_by_key row.
type keyRow struct {
	nbr   []byte
	props []byte // the stored value; nil when there is none (legacy delete, expired)
	wt    int64  // WRITETIME(props): the version's event time
	exp   int64  // expires_at; 0 = never
	// last is last_time, which only rows written before the current value
	// format have: the event time of the newest upsert, deleted or not.
	last int64
	val  storedValue // props decoded, when not nil
}

// decode fills kr.val from kr.props.
func (kr *keyRow) decode(node graph.NodeKey) error {
	if kr.props == nil {
		return nil
	}
	v, err := decodeValue(kr.props)
	if err != nil {
		return fmt.Errorf("cassandra: adjacency of %s: value of the edge to %q: %w", node, kr.nbr, err)
	}
	kr.val = v
	return nil
}

// nodeDelete is the version of a node's newest delete (node_deletes).
type nodeDelete struct {
	at  int64 // deleted_at: event time, microseconds
	pos graph.Pos
}

// nodeDeleteOf builds a nodeDelete from the row. deleted_pos counts only
// when it was written with deleted_at (same write time): a delete written
// before positions were kept leaves none, and its position is the zero one.
func nodeDeleteOf(at int64, pos []byte, posWT int64) nodeDelete {
	d := nodeDelete{at: at}
	if len(pos) == graph.PosLen && posWT == at {
		copy(d.pos[:], pos)
	}
	return d
}

// hides reports whether the delete hides an edge of version (wt, pos): the
// delete's version is at or after it.
func (d nodeDelete) hides(wt int64, pos graph.Pos) bool {
	return graph.CompareVersions(d.at, d.pos, wt, pos) >= 0
}

// candidate is an edge that passed every filter, at its scan position.
type candidate struct {
	pos position
	row keyRow
}

// adjRead is one Adjacency call.
type adjRead struct {
	s     *Store
	q     graph.AdjacencyQuery
	et    *graph.EdgeType
	dir   int8
	id    []byte
	after *position
	// own is the node's own newest purge, nil when it was never purged;
	// absent that the node lets no edge be seen (see present); ownRead
	// that both have been read.
	own     *nodeDelete
	absent  bool
	ownRead bool
	// self is the node's neighbour key: what a neighbour's claim must name.
	self []byte
	// nbrClaims: the edge type constrains the neighbours' end, so an edge
	// is visible only while the neighbour's claim names this node.
	nbrClaims bool
	// lo and hi bound event times, in microseconds: lo inclusive (raised
	// to the node's own delete time), hi exclusive.
	lo, hi int64
	now    int64
	need   int // Limit+1: one more than a page, to know whether a next page exists
	// inIDs is the number of ids per IN read of the neighbours' checks.
	inIDs int
}

// Adjacency returns one page of q. OrderKey merges the node's edges_by_key
// buckets; OrderLatest walks edges_by_time days newest first and validates
// each row against edges_by_key. Both hide edges expired, outside
// since/until, or whose version (event time, position) is not after the
// newest delete of either end node.
func (s *Store) Adjacency(ctx context.Context, q graph.AdjacencyQuery) (graph.AdjacencyPage, error) {
	if !s.enter() {
		return graph.AdjacencyPage{}, graph.ErrClosed
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return graph.AdjacencyPage{}, &graph.RetryableError{Op: "adjacency", Err: err}
	}
	et, err := s.schema.CheckQuery(q)
	if err != nil {
		return graph.AdjacencyPage{}, fmt.Errorf("cassandra: adjacency: %w", err)
	}
	q.Limit = min(q.Limit, s.maxPage)
	r := s.newAdjRead(q, et)
	if q.Cursor != nil {
		p, err := decodeCursor(q)
		if err != nil {
			return graph.AdjacencyPage{}, err
		}
		r.after = &p
	}
	if r.empty() {
		return graph.AdjacencyPage{}, nil
	}
	var (
		page    graph.AdjacencyPage
		claimed bool
	)
	if et.Constrains(q.Direction) {
		page, claimed, err = r.byClaim(ctx)
	}
	switch {
	case err != nil, claimed:
	case q.Order == graph.OrderKey:
		page, err = r.byKey(ctx)
	default:
		page, err = r.latest(ctx)
	}
	if err != nil {
		return graph.AdjacencyPage{}, s.callErr(ctx, "adjacency", err)
	}
	return page, nil
}

// newAdjRead is the read of q (checked: its edge type is et), before any
// cursor is applied.
func (s *Store) newAdjRead(q graph.AdjacencyQuery, et *graph.EdgeType) *adjRead {
	r := &adjRead{
		s: s, q: q, et: et, dir: int8(q.Direction), id: []byte(q.Node.ID),
		lo: 0, hi: math.MaxInt64, now: s.now().UnixMicro(), need: q.Limit + 1,
		self: neighborKey(q.Node), nbrClaims: et.Constrains(opposite(q.Direction)),
		inIDs: maxINValues,
	}
	if !q.Since.IsZero() {
		r.lo = ceilMicros(q.Since)
	}
	if !q.Until.IsZero() {
		r.hi = ceilMicros(q.Until)
	}
	return r
}

// empty reports whether the query can have no edge whatever is stored: an
// id no node can have, or an empty time range.
func (r *adjRead) empty() bool {
	return len(r.q.Node.ID) > graph.MaxIDLen || r.lo >= r.hi
}

// opposite is the direction of an edge's other end.
func opposite(d graph.Direction) graph.Direction {
	if d == graph.In {
		return graph.Out
	}
	return graph.In
}

// byClaim answers a query at an end the edge type constrains: the node's
// claim names the one neighbour whose edge can be visible, so the page is
// that edge's edges_by_key row, looked up directly, if it passes every
// other rule (live, since/until, expiry, node deletes, the neighbour's
// claim for one2one) and comes after the cursor. ok is false when the node
// has no claim (never written, expired, or edges written before claims
// were kept): then nothing constrains the node's end and the caller scans
// as for any type.
func (r *adjRead) byClaim(ctx context.Context) (page graph.AdjacencyPage, ok bool, err error) {
	var claim []byte
	if err := r.s.runAll(ctx, append(r.ownTasks(), r.ownClaim(&claim))); err != nil {
		return graph.AdjacencyPage{}, false, err
	}
	if r.absent {
		return graph.AdjacencyPage{}, true, nil
	}
	if claim == nil {
		return graph.AdjacencyPage{}, false, nil
	}
	r.raiseLo()
	if r.after != nil && r.q.Order == graph.OrderKey && bytes.Compare(claim, r.after.nbr) <= 0 {
		return graph.AdjacencyPage{}, true, nil
	}
	nbrs := [][]byte{claim}
	keys, tasks := r.lookupKeys(nbrs)
	nc, ntasks, err := r.neighborChecks(nbrs)
	if err != nil {
		return graph.AdjacencyPage{}, false, err
	}
	if err := r.s.runAll(ctx, append(tasks, ntasks...)); err != nil {
		return graph.AdjacencyPage{}, false, err
	}
	kr, found := keys[string(claim)]
	if !found || !r.live(kr) || nc.hides(r, kr) {
		return graph.AdjacencyPage{}, true, nil
	}
	pos := position{e: kr.wt, nbr: kr.nbr}
	if r.after != nil && r.q.Order == graph.OrderLatest && (pos.e > r.after.e || (pos.e == r.after.e && bytes.Compare(pos.nbr, r.after.nbr) <= 0)) {
		return graph.AdjacencyPage{}, true, nil
	}
	page, err = r.page([]candidate{{pos: pos, row: kr}}, false, position{})
	return page, true, err
}

// ownClaim is the task that reads the node's claim at the queried end into
// *target (the claimed neighbour key; nil when there is none).
func (r *adjRead) ownClaim(target *[]byte) task {
	return task{op: opReadClaims, f: func(ctx context.Context) error {
		var b []byte
		err := r.s.query(r.s.readCL, cqlClaim, r.q.Node.Type, r.q.EdgeType, r.dir, r.id).ScanContext(ctx, &b)
		switch {
		case errors.Is(err, gocql.ErrNotFound):
			*target = nil
			return nil
		case err != nil:
			return err
		}
		c, err := decodeClaim(b)
		if err != nil {
			return fmt.Errorf("cassandra: adjacency of %s: claim %x: %w", r.q.Node, b, err)
		}
		*target = c.target
		return nil
	}}
}

// ceilMicros rounds t up to a whole microsecond: stored event times are
// whole microseconds, so e >= t ⇔ e >= ceil(t) and e < t ⇔ e < ceil(t).
func ceilMicros(t time.Time) int64 {
	us := t.UnixMicro()
	if t.After(time.UnixMicro(us)) {
		us++
	}
	return us
}

// ownTasks are the tasks that read what the node itself says about its
// edges: its newest purge into r.own and whether it is present into
// r.absent.
func (r *adjRead) ownTasks() []task {
	r.ownRead = true
	return []task{r.nodePurged(), r.ownNode()}
}

// ownNode is the task that reads the node's value and sets r.absent when
// the node lets none of its edges be seen.
func (r *adjRead) ownNode() task {
	return task{op: opReadNode, f: func(ctx context.Context) error {
		var b []byte
		var wt int64
		err := r.s.query(r.s.readCL, cqlGetNode, r.q.Node.Type, r.id).ScanContext(ctx, &b, &wt)
		switch {
		case errors.Is(err, gocql.ErrNotFound):
			b = nil
		case err != nil:
			return err
		}
		truncs, err := r.s.truncates(ctx)
		if err != nil {
			return err
		}
		st, err := nodeStateAt(b, wt, truncOf(truncs, r.q.Node.Type))
		if err != nil {
			return fmt.Errorf("cassandra: adjacency of %s: node value: %w", r.q.Node, err)
		}
		r.absent = !r.s.present(r.q.Node.Type, st)
		return nil
	}}
}

// nodeState is what a node's stored value says about its edges.
type nodeState uint8

const (
	nodeMissing nodeState = iota // never written (or a legacy tombstone)
	nodeLive
	nodeDeleted // its newest word is a delete
)

// present reports whether a node of type typ in state st lets its edges be
// seen (package graph): it exists, or its type is implicit and it is not
// deleted.
func (s *Store) present(typ string, st nodeState) bool {
	if st == nodeLive {
		return true
	}
	nt, ok := s.schema.NodeType(typ)
	return ok && nt.Implicit && st == nodeMissing
}

// nodePurged is the task that reads the node's newest purge into r.own
// (nil when never purged).
func (r *adjRead) nodePurged() task {
	return task{op: opReadNodeDel, f: func(ctx context.Context) error {
		var (
			at, posWT int64
			pos       []byte
		)
		err := r.s.query(r.s.readCL, cqlNodeDelete, r.q.Node.Type, r.id).ScanContext(ctx, &at, &pos, &posWT)
		if errors.Is(err, gocql.ErrNotFound) {
			r.own = nil
			return nil
		}
		if err != nil {
			return err
		}
		d := nodeDeleteOf(at, pos, posWT)
		r.own = &d
		return nil
	}}
}

// raiseLo skips edges older than the node's own purge; those of its very
// event time are decided by position (live).
func (r *adjRead) raiseLo() {
	if r.own != nil && r.own.at > r.lo {
		r.lo = r.own.at
	}
}

// live applies the filters known from the edges_by_key row alone: a live
// value, not expired, within since/until and newer than the node's purge.
func (r *adjRead) live(kr keyRow) bool {
	return kr.props != nil && !kr.val.deleted && kr.wt >= r.lo && kr.wt < r.hi && (kr.exp == 0 || kr.exp > r.now) &&
		(r.own == nil || !r.own.hides(kr.wt, kr.val.pos))
}

// page builds the result from candidates in scan order. more reports that
// the scan stopped before the end (budget reached) at position last.
func (r *adjRead) page(out []candidate, more bool, last position) (graph.AdjacencyPage, error) {
	var page graph.AdjacencyPage
	n := len(out)
	switch {
	case n > r.q.Limit:
		n = r.q.Limit
		page.Next = encodeCursor(r.q, out[n-1].pos)
	case more:
		page.Next = encodeCursor(r.q, last)
	}
	page.Edges = make([]graph.Edge, 0, n)
	for _, c := range out[:n] {
		e, err := r.edge(c.row)
		if err != nil {
			return graph.AdjacencyPage{}, err
		}
		page.Edges = append(page.Edges, e)
	}
	return page, nil
}

func (r *adjRead) edge(row keyRow) (graph.Edge, error) {
	nbr, err := parseNeighbor(row.nbr)
	if err != nil {
		return graph.Edge{}, fmt.Errorf("cassandra: adjacency of %s: stored neighbour %q: %w", r.q.Node, row.nbr, err)
	}
	k := graph.EdgeKey{Type: r.q.EdgeType, From: r.q.Node, To: nbr}
	if r.q.Direction == graph.In {
		k.From, k.To = nbr, r.q.Node
	}
	e := graph.Edge{Key: k, EventTime: fromMicros(row.wt), PropsJSON: canonicalProps(row.val.props)}
	if !r.q.RawProps {
		if e.Props, err = decodeProps(row.val.props, r.et.Props); err != nil {
			return graph.Edge{}, fmt.Errorf("cassandra: adjacency of %s: edge to %s: %w", r.q.Node, nbr, err)
		}
	}
	if row.exp != 0 {
		e.ExpiresAt = fromMicros(row.exp)
	}
	return e, nil
}

// dropHiddenByNeighbors removes candidates whose neighbour is not present
// (package graph), was purged at or after the edge's version, or, when the
// edge type constrains the neighbours' end, claims another node.
func (r *adjRead) dropHiddenByNeighbors(ctx context.Context, cs []candidate) ([]candidate, error) {
	if len(cs) == 0 {
		return cs, nil
	}
	nbrs := make([][]byte, len(cs))
	for i, c := range cs {
		nbrs[i] = c.row.nbr
	}
	nc, tasks, err := r.neighborChecks(nbrs)
	if err != nil {
		return nil, err
	}
	if err := r.s.runAll(ctx, tasks); err != nil {
		return nil, err
	}
	kept := cs[:0]
	for _, c := range cs {
		if !nc.hides(r, c.row) {
			kept = append(kept, c)
		}
	}
	return kept, nil
}

// nbrChecks is what the neighbours of a page say about their edges to the
// node, filled by the tasks of neighborChecks.
type nbrChecks struct {
	// del is the newest purge of each neighbour ever purged.
	del map[string]nodeDelete
	// state is each neighbour's node state; absent means never written.
	state map[string]nodeState
	// claims is each neighbour's claim target, when the edge type
	// constrains the neighbours' end and the neighbour has a claim.
	claims map[string][]byte
	// types is each neighbour's node type.
	types map[string]string
}

// hides reports whether the edge of row (to neighbour row.nbr) is hidden by
// its neighbour: not present, purged at or after the edge's version, or
// claiming another node at an end the type constrains. A neighbour without
// a claim constrains nothing (see byClaim).
func (nc *nbrChecks) hides(r *adjRead, row keyRow) bool {
	if d, ok := nc.del[string(row.nbr)]; ok && d.hides(row.wt, row.val.pos) {
		return true
	}
	if !r.s.present(nc.types[string(row.nbr)], nc.state[string(row.nbr)]) {
		return true
	}
	if c, ok := nc.claims[string(row.nbr)]; ok && !bytes.Equal(c, r.self) {
		return true
	}
	return false
}

// neighborChecks returns the tasks that read, for the neighbours nbrs,
// their node values, the purge versions of those ever purged (node_deletes
// holds only purged nodes, so most lookups end at the bloom filter) and,
// when the edge type constrains their end, their claims; one IN query per
// table, neighbour type and r.inIDs ids. The tasks fill the returned
// nbrChecks.
func (r *adjRead) neighborChecks(nbrs [][]byte) (*nbrChecks, []task, error) {
	byType := map[string][][]byte{}
	types := map[string]string{}
	for _, nb := range nbrs {
		if _, seen := types[string(nb)]; seen {
			continue
		}
		k, err := parseNeighbor(nb)
		if err != nil {
			return nil, nil, fmt.Errorf("cassandra: adjacency of %s: stored neighbour %q: %w", r.q.Node, nb, err)
		}
		types[string(nb)] = k.Type
		byType[k.Type] = append(byType[k.Type], []byte(k.ID))
	}
	del, tasks := r.neighborDeletes(byType)
	state, stasks := r.neighborStates(byType)
	tasks = append(tasks, stasks...)
	nc := &nbrChecks{del: del, state: state, types: types}
	if r.nbrClaims {
		claims, ctasks := r.neighborClaims(byType)
		nc.claims = claims
		tasks = append(tasks, ctasks...)
	}
	return nc, tasks, nil
}

// inReads returns the tasks that read something of each neighbour (ids by
// node type) with one IN query per node type and per ids (at most), and the
// map, keyed by neighbor key, that they fill: read runs one query and puts
// what it finds into found.
func inReads[V any](byType map[string][][]byte, per int, op string, read func(ctx context.Context, typ string, ids [][]byte, found map[string]V) error) (map[string]V, []task) {
	out := map[string]V{}
	var mu sync.Mutex
	var tasks []task
	for typ, ids := range byType {
		for start := 0; start < len(ids); start += per {
			chunk := ids[start:min(start+per, len(ids))]
			tasks = append(tasks, task{op: op, f: func(ctx context.Context) error {
				found := map[string]V{}
				if err := read(ctx, typ, chunk, found); err != nil {
					return err
				}
				mu.Lock()
				maps.Copy(out, found)
				mu.Unlock()
				return nil
			}})
		}
	}
	return out, tasks
}

// neighborDeletes returns the tasks that read the purge versions of the
// neighbours (ids by node type) that were ever purged, and the map (keyed
// by neighbor key) they fill.
func (r *adjRead) neighborDeletes(byType map[string][][]byte) (map[string]nodeDelete, []task) {
	return inReads(byType, r.inIDs, opReadNodeDel, func(ctx context.Context, typ string, ids [][]byte, found map[string]nodeDelete) error {
		iter := r.s.query(r.s.readCL, cqlNodeDeletes, typ, ids).IterContext(ctx)
		var (
			id, pos   []byte
			at, posWT int64
		)
		for iter.Scan(&id, &at, &pos, &posWT) {
			found[string(neighborKey(graph.NodeKey{Type: typ, ID: string(id)}))] = nodeDeleteOf(at, pos, posWT)
		}
		return iter.Close()
	})
}

// neighborStates returns the tasks that read the node values of the
// neighbours (ids by node type), and the map (keyed by neighbor key) of
// their states they fill; a neighbour never written is absent from it.
func (r *adjRead) neighborStates(byType map[string][][]byte) (map[string]nodeState, []task) {
	return inReads(byType, r.inIDs, opReadNode, func(ctx context.Context, typ string, ids [][]byte, found map[string]nodeState) error {
		truncs, err := r.s.truncates(ctx)
		if err != nil {
			return err
		}
		trunc := truncOf(truncs, typ)
		iter := r.s.query(r.s.readCL, cqlGetNodesIn, typ, ids).IterContext(ctx)
		for {
			var id, b []byte
			var wt int64
			if !iter.Scan(&id, &b, &wt) {
				break
			}
			st, err := nodeStateAt(b, wt, trunc)
			if err != nil {
				_ = iter.Close()
				return fmt.Errorf("cassandra: adjacency of %s: node %s:%s: %w", r.q.Node, typ, id, err)
			}
			found[string(neighborKey(graph.NodeKey{Type: typ, ID: string(id)}))] = st
		}
		return iter.Close()
	})
}

// neighborClaims returns the tasks that read the claims of the neighbours
// (ids by node type) at their end of the queried edges, and the map (keyed
// by neighbor key, to the claim's target) they fill.
func (r *adjRead) neighborClaims(byType map[string][][]byte) (map[string][]byte, []task) {
	dir := int8(opposite(r.q.Direction))
	return inReads(byType, r.inIDs, opReadClaims, func(ctx context.Context, typ string, ids [][]byte, found map[string][]byte) error {
		iter := r.s.query(r.s.readCL, cqlClaims, typ, r.q.EdgeType, dir, ids).IterContext(ctx)
		for {
			// Fresh buffers per row: the driver appends into the one it
			// is given, and the claim's target is kept.
			var id, b []byte
			if !iter.Scan(&id, &b) {
				break
			}
			nk := neighborKey(graph.NodeKey{Type: typ, ID: string(id)})
			c, err := decodeClaim(b)
			if err != nil {
				_ = iter.Close()
				return fmt.Errorf("cassandra: adjacency of %s: claim of %q: %w", r.q.Node, nk, err)
			}
			found[string(nk)] = c.target
		}
		return iter.Close()
	})
}

// keyStream is one edges_by_key bucket being read in neighbour order.
type keyStream struct {
	bucket int8
	rows   []keyRow
	pos    int
	after  []byte // the next fetch starts after this neighbour
	done   bool   // no rows after the buffered ones
}

// byKey merges the keyBuckets partitions of the node in neighbour order.
func (r *adjRead) byKey(ctx context.Context) (graph.AdjacencyPage, error) {
	streams := make([]*keyStream, keyBuckets)
	start := []byte{} // non-nil: binds as an empty blob, below every key
	if r.after != nil {
		start = r.after.nbr
	}
	for b := range streams {
		streams[b] = &keyStream{bucket: int8(b), after: start}
	}
	// Each bucket holds about 1/keyBuckets of the page, plus slack for
	// uneven hashing and filtered rows, so one round usually suffices.
	per := max(8, (r.need*5/4+keyBuckets-1)/keyBuckets+4)
	var tasks []task
	if !r.ownRead {
		tasks = append(tasks, r.ownTasks()...)
	}
	for _, st := range streams {
		tasks = append(tasks, r.fetchKeys(st, per))
	}
	if err := r.s.runAll(ctx, tasks); err != nil {
		return graph.AdjacencyPage{}, err
	}
	if r.absent {
		return graph.AdjacencyPage{}, nil
	}
	r.raiseLo()

	var (
		out       []candidate
		last      position
		scanned   int
		exhausted bool
		// checked and kept count the candidates checked against their
		// neighbours and those that passed, to size the next batch.
		checked, kept int
	)
	for len(out) < r.need && !exhausted && scanned < r.s.maxScan {
		var batch []candidate
		want := grow(r.need-len(out), checked, kept)
		for len(batch) < want && scanned < r.s.maxScan {
			row, ok, err := r.nextKey(ctx, streams, per)
			if err != nil {
				return graph.AdjacencyPage{}, err
			}
			if !ok {
				exhausted = true
				break
			}
			scanned++
			last = position{nbr: row.nbr}
			if r.live(row) {
				batch = append(batch, candidate{pos: position{nbr: row.nbr}, row: row})
			}
		}
		checked += len(batch)
		batch, err := r.dropHiddenByNeighbors(ctx, batch)
		if err != nil {
			return graph.AdjacencyPage{}, err
		}
		kept += len(batch)
		out = append(out, batch...)
	}
	return r.page(out, !exhausted, last)
}

// grow is how many candidates to check for want more edges, given that of
// the checked so far kept passed: want scaled by checked/kept, plus an
// eighth, at most 8 times want. Where claims or deletes hide many
// candidates, a page then takes two or three rounds of checks instead of
// one per halving of what is missing.
func grow(want, checked, kept int) int {
	switch {
	case kept == checked:
		return want
	case kept == 0:
		return 8 * want
	}
	n := (want*checked + kept - 1) / kept
	return min(8*want, n+n/8)
}

// nextKey pops the smallest buffered row across streams, refilling the
// streams that ran dry first (in parallel) so the minimum is the true one.
func (r *adjRead) nextKey(ctx context.Context, streams []*keyStream, per int) (keyRow, bool, error) {
	var refill []task
	for _, st := range streams {
		if st.pos == len(st.rows) && !st.done {
			refill = append(refill, r.fetchKeys(st, per))
		}
	}
	if err := r.s.runAll(ctx, refill); err != nil {
		return keyRow{}, false, err
	}
	var best *keyStream
	for _, st := range streams {
		if st.pos < len(st.rows) && (best == nil || bytes.Compare(st.rows[st.pos].nbr, best.rows[best.pos].nbr) < 0) {
			best = st
		}
	}
	if best == nil {
		return keyRow{}, false, nil
	}
	row := best.rows[best.pos]
	best.pos++
	return row, true, nil
}

// fetchKeys is the task that replaces st's buffer with the next n rows of
// its bucket.
func (r *adjRead) fetchKeys(st *keyStream, n int) task {
	return task{op: opReadByKey, f: func(ctx context.Context) error {
		rows := make([]keyRow, 0, n)
		iter := r.s.query(r.s.readCL, cqlScanByKey, r.q.Node.Type, r.id, r.q.EdgeType, r.dir, st.bucket, st.after, n).IterContext(ctx)
		for {
			var kr keyRow
			if !iter.Scan(&kr.nbr, &kr.props, &kr.wt, &kr.exp, &kr.last) {
				break
			}
			rows = append(rows, kr)
		}
		if err := iter.Close(); err != nil {
			return err
		}
		for i := range rows {
			if err := rows[i].decode(r.q.Node); err != nil {
				return err
			}
		}
		st.rows, st.pos = rows, 0
		st.done = len(rows) < n
		if len(rows) > 0 {
			st.after = rows[len(rows)-1].nbr
		}
		return nil
	}}
}

// timeRow is an edges_by_time row.
type timeRow struct {
	e   int64
	nbr []byte
}

// latest walks the node's days newest first and, within a day, rows by
// (event time descending, neighbour ascending). A row is the edge only if
// edges_by_key still has it at that event time (see validate).
func (r *adjRead) latest(ctx context.Context) (graph.AdjacencyPage, error) {
	dayHi := dayOf(r.hi - 1)
	if r.after != nil {
		dayHi = min(dayHi, dayOf(r.after.e))
	}
	var days []int32
	tasks := []task{r.readDays(&days, dayOf(r.lo), dayHi)}
	if !r.ownRead {
		tasks = append(tasks, r.ownTasks()...)
	}
	if err := r.s.runAll(ctx, tasks); err != nil {
		return graph.AdjacencyPage{}, err
	}
	if r.absent {
		return graph.AdjacencyPage{}, nil
	}
	r.raiseLo()

	var (
		out     []candidate
		last    position
		scanned int
		more    bool
	)
days:
	for _, d := range days {
		if d < dayOf(r.lo) {
			break
		}
		var pos *position
		if r.after != nil && dayOf(r.after.e) == d {
			pos = r.after
		}
		for {
			if len(out) >= r.need || scanned >= r.s.maxScan {
				more = true
				break days
			}
			want := min(grow(r.need-len(out), scanned, len(out))+8, r.s.maxScan-scanned)
			rows, dayDone, err := r.fetchDay(ctx, d, pos, want)
			if err != nil {
				return graph.AdjacencyPage{}, err
			}
			scanned += len(rows)
			if len(rows) > 0 {
				lr := rows[len(rows)-1]
				last = position(lr)
				pos = &last
			}
			cs, err := r.validate(ctx, d, rows)
			if err != nil {
				return graph.AdjacencyPage{}, err
			}
			out = append(out, cs...)
			if dayDone {
				break
			}
		}
	}
	return r.page(out, more, last)
}

// readDays is the task that lists the node's edges_by_time days in
// [lo, hi], newest first, into days.
func (r *adjRead) readDays(days *[]int32, lo, hi int32) task {
	return task{op: opReadDays, f: func(ctx context.Context) error {
		*days = (*days)[:0]
		iter := r.s.query(r.s.readCL, cqlDays, r.q.Node.Type, r.id, r.q.EdgeType, r.dir, lo, hi, maxDays).IterContext(ctx)
		var d int32
		for iter.Scan(&d) {
			*days = append(*days, d)
		}
		return iter.Close()
	}}
}

// fetchDay reads up to n rows of day d after pos (from the day's top when
// pos is nil), within [lo, hi). done reports that the day has no more.
func (r *adjRead) fetchDay(ctx context.Context, d int32, pos *position, n int) (rows []timeRow, done bool, err error) {
	dayLo := max(r.lo, int64(d)*dayMicros)
	upper := min(r.hi, (int64(d)+1)*dayMicros)
	scan := func(cql string, args ...any) ([]timeRow, error) {
		var got []timeRow
		err := r.s.do(ctx, opReadByTime, func(ctx context.Context) error {
			got = got[:0]
			iter := r.s.query(r.s.readCL, cql, args...).IterContext(ctx)
			for {
				var tr timeRow
				if !iter.Scan(&tr.e, &tr.nbr) {
					break
				}
				got = append(got, tr)
			}
			return iter.Close()
		})
		return got, err
	}
	if pos != nil {
		// The rest of the rows sharing pos's event time come first.
		tie, err := scan(cqlScanByTimeTie, r.q.Node.Type, r.id, r.q.EdgeType, r.dir, d, pos.e, pos.nbr, n)
		if err != nil {
			return nil, false, err
		}
		if len(tie) == n {
			return tie, false, nil
		}
		rows, n, upper = tie, n-len(tie), min(upper, pos.e)
	}
	if dayLo >= upper {
		return rows, true, nil
	}
	more, err := scan(cqlScanByTime, r.q.Node.Type, r.id, r.q.EdgeType, r.dir, d, dayLo, upper, n)
	if err != nil {
		return nil, false, err
	}
	return append(rows, more...), len(more) < n, nil
}

// validate keeps the rows whose edges_by_key row still holds a live value
// written at their event time, and whose neighbour was not deleted since.
// The key rows and the neighbours' deletes are read in one round.
//
// A row that can never be valid again is deleted in the background, at its
// own timestamp (which removes exactly that row version):
//   - the edge's value (live or deleted) was written after the row's time:
//     the value's write time only moves forward, so it cannot come back to
//     it;
//   - a row of the legacy format whose properties are deleted (a column
//     tombstone) while last_time, the newest upsert's time, is at or after
//     the row's: that upsert was written (last_time and props were one
//     INSERT) and then hidden by a tombstone at or after it, which also
//     hides any replay of it.
//
// Other rows are skipped but kept: with no edges_by_key row, or a value
// older than the row's, the row's upsert may still be in flight
// (edges_by_time and edges_by_key are separate writes), or may have
// expired, which the row's own TTL takes care of. So is a row whose edge
// holds a deleted value of the row's very time: an upsert of that time at a
// greater position may still come and rewrite the same row, which a repair
// at that timestamp would hide for good.
func (r *adjRead) validate(ctx context.Context, d int32, rows []timeRow) ([]candidate, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	nbrs := make([][]byte, len(rows))
	for i, tr := range rows {
		nbrs[i] = tr.nbr
	}
	keys, tasks := r.lookupKeys(nbrs)
	nc, ntasks, err := r.neighborChecks(nbrs)
	if err != nil {
		return nil, err
	}
	if err := r.s.runAll(ctx, append(tasks, ntasks...)); err != nil {
		return nil, err
	}
	var out []candidate
	for _, tr := range rows {
		kr, ok := keys[string(tr.nbr)]
		switch {
		case !ok:
			r.s.m.stale.WithLabelValues("skipped").Inc()
			continue
		case kr.props == nil:
			if kr.last >= tr.e {
				r.s.repair(r.q, r.dir, d, tr)
			} else {
				r.s.m.stale.WithLabelValues("skipped").Inc()
			}
			continue
		case kr.wt > tr.e:
			r.s.repair(r.q, r.dir, d, tr)
			continue
		case kr.wt != tr.e, kr.val.deleted:
			r.s.m.stale.WithLabelValues("skipped").Inc()
			continue
		case !r.live(kr):
			continue
		}
		if nc.hides(r, kr) {
			continue
		}
		out = append(out, candidate{pos: position(tr), row: kr})
	}
	return out, nil
}

// lookupKeys returns the tasks that read the edges_by_key rows of nbrs,
// one IN query per bucket and maxINValues neighbours, and the map (keyed by
// neighbor key) they fill.
func (r *adjRead) lookupKeys(nbrs [][]byte) (map[string]keyRow, []task) {
	var byBucket [keyBuckets][][]byte
	seen := map[string]bool{}
	for _, nb := range nbrs {
		if seen[string(nb)] {
			continue
		}
		seen[string(nb)] = true
		b := bucketOf(nb)
		byBucket[b] = append(byBucket[b], nb)
	}
	out := make(map[string]keyRow, len(seen))
	var mu sync.Mutex
	var tasks []task
	for b, list := range byBucket {
		for start := 0; start < len(list); start += maxINValues {
			chunk := list[start:min(start+maxINValues, len(list))]
			tasks = append(tasks, task{op: opLookupEdges, f: func(ctx context.Context) error {
				var got []keyRow
				iter := r.s.query(r.s.readCL, cqlLookupByKey, r.q.Node.Type, r.id, r.q.EdgeType, r.dir, int8(b), chunk).IterContext(ctx)
				for {
					var kr keyRow
					if !iter.Scan(&kr.nbr, &kr.props, &kr.wt, &kr.exp, &kr.last) {
						break
					}
					got = append(got, kr)
				}
				if err := iter.Close(); err != nil {
					return err
				}
				for i := range got {
					if err := got[i].decode(r.q.Node); err != nil {
						return err
					}
				}
				mu.Lock()
				for _, kr := range got {
					out[string(kr.nbr)] = kr
				}
				mu.Unlock()
				return nil
			}})
		}
	}
	return out, tasks
}

// repair deletes an edges_by_time row that can never be valid again (see
// validate), at the row's own timestamp: that removes exactly this row
// version, and a replay of an upsert of that time loses to the tombstone (a
// tie goes to the tombstone) as it loses in edges_by_key. At most
// maxRepairsInFlight run in the background; beyond that the row is left for
// a later read.
func (s *Store) repair(q graph.AdjacencyQuery, dir int8, d int32, tr timeRow) {
	select {
	case s.repairSem <- struct{}{}:
	default:
		s.m.stale.WithLabelValues("skipped").Inc()
		return
	}
	s.repairs.Add(1)
	go func() {
		defer s.repairs.Done()
		defer func() { <-s.repairSem }()
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		err := s.do(ctx, opRepair, func(ctx context.Context) error {
			return s.query(s.writeCL, cqlDeleteByTime, tr.e, q.Node.Type, []byte(q.Node.ID), q.EdgeType, dir, d, tr.e, tr.nbr).ExecContext(ctx)
		})
		if err != nil {
			s.m.stale.WithLabelValues("skipped").Inc()
			s.log.Warn("cassandra repair of dead index row failed", slog.String("edge_type", q.EdgeType), slog.Any("error", err))
			return
		}
		s.m.stale.WithLabelValues("repaired").Inc()
	}()
}
