package cassandra

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/rtgraph/rtgraph/graph"
)

// Truncates and kept properties (schemas/cql/0005_type_truncates.cql,
// doc.go "Truncates and kept properties").
const (
	cqlTruncate  = `INSERT INTO type_truncates (shard, node_type, at, pos) VALUES (0, ?, ?, ?) USING TIMESTAMP ?`
	cqlTruncates = `SELECT node_type, at, pos, WRITETIME(pos) FROM type_truncates WHERE shard = 0`

	// truncateRefresh is how old the truncates a Store has read may be
	// before a read of a node's state reads them again: a truncate applied
	// by another process is seen within it (one applied by this Store at
	// once).
	truncateRefresh = time.Second
)

// truncCache is a Store's copy of type_truncates.
type truncCache struct {
	mu     sync.Mutex
	vers   map[string]nodeDelete // node type → newest truncate
	readAt time.Time             // zero: never read
}

// truncates returns the newest truncate of every truncated node type,
// reading type_truncates when the copy is older than truncateRefresh. The
// map must not be modified.
func (s *Store) truncates(ctx context.Context) (map[string]nodeDelete, error) {
	c := &s.truncs
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.readAt.IsZero() && time.Since(c.readAt) < truncateRefresh {
		return c.vers, nil
	}
	start := time.Now()
	iter := s.query(s.readCL, cqlTruncates).IterContext(ctx)
	vers := map[string]nodeDelete{}
	var (
		typ       string
		at, posWT int64
		pos       []byte
	)
	for iter.Scan(&typ, &at, &pos, &posWT) {
		vers[typ] = nodeDeleteOf(at, pos, posWT)
	}
	if err := iter.Close(); err != nil {
		return nil, err
	}
	// Merged with what this Store wrote since: a write Cassandra has
	// acknowledged is in the read, but keep the newer either way.
	for typ, d := range c.vers {
		if o, ok := vers[typ]; !ok || graph.CompareVersions(d.at, d.pos, o.at, o.pos) > 0 {
			vers[typ] = d
		}
	}
	c.vers, c.readAt = vers, start
	return vers, nil
}

// noteTruncate records in the Store's copy a truncate it has written.
func (s *Store) noteTruncate(typ string, d nodeDelete) {
	c := &s.truncs
	c.mu.Lock()
	defer c.mu.Unlock()
	if o, ok := c.vers[typ]; ok && graph.CompareVersions(o.at, o.pos, d.at, d.pos) >= 0 {
		return
	}
	vers := make(map[string]nodeDelete, len(c.vers)+1)
	for k, v := range c.vers {
		vers[k] = v
	}
	vers[typ] = d
	c.vers = vers
}

// nodeStateAt is what a node's stored value b, written at wt, says about
// its edges, given its type's newest truncate (nil when never truncated):
// a live value not after the truncate reads as deleted.
func nodeStateAt(b []byte, wt int64, trunc *nodeDelete) (nodeState, error) {
	if b == nil {
		return nodeMissing, nil
	}
	v, err := decodeValue(b)
	switch {
	case err != nil:
		return 0, err
	case v.deleted:
		return nodeDeleted, nil
	case trunc != nil && trunc.hides(wt, v.pos):
		return nodeDeleted, nil
	}
	return nodeLive, nil
}

// truncOf returns the truncate of typ in vers, or nil.
func truncOf(vers map[string]nodeDelete, typ string) *nodeDelete {
	if d, ok := vers[typ]; ok {
		return &d
	}
	return nil
}

// nodeVal is a node's state while kept properties are resolved: its newest
// word (version, live or deleted) and, when live, its properties.
type nodeVal struct {
	known   bool
	at      int64
	pos     graph.Pos
	deleted bool
	props   graph.Props
}

// apply folds a later word of version (at, pos) into v: an upsert (props)
// replaces a value it is newer than; a delete (deleted) wins from its
// version on, a tie included.
func (v *nodeVal) apply(at int64, pos graph.Pos, deleted bool, props graph.Props) {
	if !v.known {
		*v = nodeVal{known: true, at: at, pos: pos, deleted: deleted, props: props}
		return
	}
	c := graph.CompareVersions(at, pos, v.at, v.pos)
	if c > 0 || (c == 0 && deleted) {
		*v = nodeVal{known: true, at: at, pos: pos, deleted: deleted, props: props}
	}
}

// resolveKeeps turns every node upsert of muts that keeps properties into a
// full one (graph.Mutation.Keep): the kept properties come from the node as
// the mutations before it in muts leave it, over its stored value, when it
// is live and not newer than the upsert. It reads the stored values of those
// nodes (and the truncates), the one read on the write path; muts without
// kept properties are returned as they are. Checked mutations only.
func (s *Store) resolveKeeps(ctx context.Context, muts []graph.Mutation) ([]graph.Mutation, error) {
	var idx []int
	for i, m := range muts {
		if m.Op == graph.OpUpsertNode && len(m.Keep) > 0 {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return muts, nil
	}
	type stored struct {
		b  []byte
		wt int64
	}
	reads := map[graph.NodeKey]*stored{}
	var tasks []task
	for _, i := range idx {
		k := muts[i].Node
		if _, ok := reads[k]; ok {
			continue
		}
		r := &stored{}
		reads[k] = r
		tasks = append(tasks, task{op: opReadNode, f: func(ctx context.Context) error {
			err := s.query(s.writeCL, cqlGetNode, k.Type, []byte(k.ID)).ScanContext(ctx, &r.b, &r.wt)
			if errors.Is(err, gocql.ErrNotFound) {
				r.b = nil
				return nil
			}
			return err
		}})
	}
	if err := s.runAll(ctx, tasks); err != nil {
		return nil, err
	}
	truncs, err := s.truncates(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]graph.Mutation, len(muts))
	copy(out, muts)
	for _, i := range idx {
		m := out[i]
		var v nodeVal
		if r := reads[m.Node]; r.b != nil {
			sv, err := decodeValue(r.b)
			if err != nil {
				return nil, fmt.Errorf("node %s: stored value: %w", m.Node, err)
			}
			var props graph.Props
			if !sv.deleted {
				nt, _ := s.schema.NodeType(m.Node.Type)
				if props, err = decodeProps(sv.props, nt.Props); err != nil {
					return nil, fmt.Errorf("node %s: stored value: %w", m.Node, err)
				}
			}
			v.apply(r.wt, sv.pos, sv.deleted, props)
		}
		if d := truncOf(truncs, m.Node.Type); d != nil {
			v.apply(d.at, d.pos, true, nil)
		}
		// The mutations before it in this call, resolved already.
		for _, p := range out[:i] {
			at, pos := p.EventTime.UnixMicro(), p.Pos
			switch {
			case p.Op == graph.OpUpsertNode && p.Node == m.Node:
				v.apply(at, pos, false, p.Props)
			case (p.Op == graph.OpDeleteNode || p.Op == graph.OpPurgeNode) && p.Node == m.Node,
				p.Op == graph.OpTruncateType && p.Node.Type == m.Node.Type:
				v.apply(at, pos, true, nil)
			}
		}
		props := make(graph.Props, len(m.Props)+len(m.Keep))
		for k, x := range m.Props {
			props[k] = x
		}
		if v.known && !v.deleted && graph.CompareVersions(v.at, v.pos, m.EventTime.UnixMicro(), m.Pos) <= 0 {
			for _, name := range m.Keep {
				if x, ok := v.props[name]; ok {
					props[name] = x
				}
			}
		}
		m.Props, m.Keep = props, nil
		out[i] = m
	}
	return out, nil
}
