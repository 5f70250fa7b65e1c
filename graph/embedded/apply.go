package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/rtgraph/rtgraph/graph"
)

// Apply checks every mutation against the schema (none is applied if one
// breaks it; the error is the permanent *graph.SchemaError), then applies
// them in order in one Pebble batch. Only a node purge whose cleanup
// outgrows cfg.CommitEvery commits in several batches; a crash in between
// leaves edges removed and the purge not yet recorded, and the caller's
// retry of the whole batch finishes the work.
func (s *Store) Apply(ctx context.Context, muts []graph.Mutation) error {
	if len(muts) > s.cfg.MaxBatch {
		return fmt.Errorf("embedded: apply: %d mutations, at most %d per call", len(muts), s.cfg.MaxBatch)
	}
	checked := make([]graph.Mutation, len(muts))
	encs := make([][]byte, len(muts))
	for i, m := range muts {
		if err := s.schema.Check(&m); err != nil {
			s.m.rejected.WithLabelValues(ruleOf(err)).Inc()
			return fmt.Errorf("embedded: apply mutation %d: %w", i, err)
		}
		if (m.Op == graph.OpUpsertNode && len(m.Keep) == 0) || m.Op == graph.OpUpsertEdge {
			enc, err := graph.EncodeProps(m.Props)
			if err != nil {
				return fmt.Errorf("embedded: apply mutation %d: %w", i, err)
			}
			encs[i] = enc
		}
		checked[i] = m
	}
	if err := s.enter(ctx, "apply"); err != nil {
		return err
	}
	defer s.life.RUnlock()
	start := time.Now()

	s.wmu.Lock()
	t := &txn{s: s, b: s.db.NewIndexedBatch()}
	err := t.applyAll(ctx, checked, encs)
	if err == nil {
		err = ctx.Err()
		if err != nil {
			err = &graph.RetryableError{Op: "apply", Err: err}
		}
	}
	if err != nil {
		_ = t.b.Close()
		s.wmu.Unlock()
		return fmt.Errorf("embedded: apply: %w", err)
	}
	b := t.b
	if s.commitHook != nil {
		s.commitHook(b.Repr())
	}
	if !s.cfg.Sync {
		err = b.Commit(pebble.NoSync)
		s.wmu.Unlock()
	} else {
		// The batch is in the memtable when ApplyNoSyncWait returns, which
		// is all the next writer's reads need; waiting for the fsync
		// outside wmu lets concurrent Apply calls share one WAL sync.
		err = s.db.ApplyNoSyncWait(b, pebble.Sync)
		s.wmu.Unlock()
		if err == nil {
			err = b.SyncWait()
		}
	}
	_ = b.Close()
	if err != nil {
		return fmt.Errorf("embedded: apply: commit: %w", err)
	}
	for _, m := range checked {
		s.m.mutations.WithLabelValues(m.Op.String()).Inc()
	}
	s.m.applySeconds.Observe(time.Since(start).Seconds())
	return nil
}

func ruleOf(err error) string {
	var se *graph.SchemaError
	if errors.As(err, &se) {
		return string(se.Rule)
	}
	return "other"
}

// txn is one writer's view: an indexed batch, so reads see the writes made
// earlier in the same Apply. Only used with s.wmu held.
type txn struct {
	s *Store
	b *pebble.Batch
}

func (t *txn) get(key []byte) (record, bool, error) {
	v, closer, err := t.b.Get(key)
	if isNotFound(err) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, err
	}
	defer closer.Close()
	r, err := decodeRecord(v)
	if err != nil {
		return record{}, false, fmt.Errorf("%w at key %q", err, key)
	}
	return r, true, nil
}

func isNotFound(err error) bool { return errors.Is(err, pebble.ErrNotFound) }

func (t *txn) set(key []byte, r record) error { return t.b.Set(key, r.encode(), nil) }

func (t *txn) del(key []byte) error { return t.b.Delete(key, nil) }

// commitIfLarge commits the batch so far and starts another once it holds
// cfg.CommitEvery entries. Only called between whole steps, so every commit
// leaves records and indexes consistent.
func (t *txn) commitIfLarge() error {
	if int(t.b.Count()) < t.s.cfg.CommitEvery {
		return nil
	}
	if t.s.commitHook != nil {
		t.s.commitHook(t.b.Repr())
	}
	if err := t.b.Commit(pebble.Sync); err != nil {
		return err
	}
	_ = t.b.Close()
	t.b = t.s.db.NewIndexedBatch()
	return nil
}

func (t *txn) applyAll(ctx context.Context, muts []graph.Mutation, encs [][]byte) error {
	for i, m := range muts {
		if i%256 == 0 && ctx.Err() != nil {
			return &graph.RetryableError{Op: "apply", Err: ctx.Err()}
		}
		var err error
		v := ver{at: micros(m.EventTime), pos: m.Pos}
		switch m.Op {
		case graph.OpUpsertNode:
			enc := encs[i]
			if len(m.Keep) > 0 {
				enc, err = t.keep(m, v)
				if err != nil {
					break
				}
			}
			err = t.upsertNode(m.Node, v, enc)
		case graph.OpTruncateType:
			err = t.truncate(m.Node.Type, v)
		case graph.OpDeleteNode:
			err = t.deleteNode(m.Node, v)
		case graph.OpPurgeNode:
			err = t.purgeNode(ctx, m.Node, v)
		case graph.OpUpsertEdge:
			err = t.upsertEdge(m.Edge, v, m.TTL, encs[i])
		case graph.OpDeleteEdge:
			err = t.deleteEdge(m.Edge, v)
		}
		if err != nil {
			return fmt.Errorf("mutation %d (%s): %w", i, m.Op, err)
		}
	}
	return nil
}

// ver is a mutation's version: event time in microseconds, then position.
type ver struct {
	at  int64
	pos graph.Pos
}

// wins reports whether an upsert of version v with properties enc replaces
// r's upsert, and is not hidden by r's delete (a delete wins a tie).
func wins(r record, found bool, v ver, enc []byte) bool {
	if !found {
		return true
	}
	if r.deletedAtOrAfter(v.at, v.pos) {
		return false
	}
	if !r.hasUp {
		return true
	}
	if c := graph.CompareVersions(v.at, v.pos, r.upAt, r.upPos); c != 0 {
		return c > 0
	}
	return bytes.Compare(enc, r.props) > 0
}

// upTo reports whether r's upsert is at or before version v.
func (r record) upTo(v ver) bool {
	return r.hasUp && graph.CompareVersions(r.upAt, r.upPos, v.at, v.pos) <= 0
}

func (t *txn) upsertNode(k graph.NodeKey, v ver, enc []byte) error {
	key := nodeKey(k)
	r, found, err := t.get(key)
	if err != nil {
		return err
	}
	if !wins(r, found, v, enc) {
		t.s.m.superseded.Inc()
		return nil
	}
	r.hasUp, r.upAt, r.upPos, r.props = true, v.at, v.pos, enc
	return t.set(key, r)
}

func (t *txn) upsertEdge(k graph.EdgeKey, v ver, ttl time.Duration, enc []byte) error {
	write, err := t.claim(k, v)
	if err != nil {
		return err
	}
	if !write {
		t.s.m.superseded.Inc()
		return nil
	}
	// A purge of either end node at or after this version removed the edge
	// for good: do not store it (its claims, made above, are kept like the
	// reference's).
	for _, n := range []graph.NodeKey{k.From, k.To} {
		purged, err := t.purgedAtOrAfter(n, v)
		if err != nil {
			return err
		}
		if purged {
			t.s.m.superseded.Inc()
			return nil
		}
	}
	key := edgeKey(k)
	r, found, err := t.get(key)
	if err != nil {
		return err
	}
	if !wins(r, found, v, enc) {
		t.s.m.superseded.Inc()
		return nil
	}
	if r.hasUp {
		if err := t.unindex(k, r); err != nil {
			return err
		}
	}
	r.hasUp, r.upAt, r.upPos, r.props, r.expires = true, v.at, v.pos, enc, 0
	if ttl > 0 {
		r.expires = v.at + ttl.Microseconds()
	}
	if err := t.set(key, r); err != nil {
		return err
	}
	return t.index(k, r)
}

// index writes the index entries of r's upsert; unindex removes them. The
// entries of an upsert exist exactly while it is the record's upsert.
func (t *txn) index(k graph.EdgeKey, r record) error {
	et, ok := t.s.schema.EdgeType(k.Type)
	if !ok {
		return fmt.Errorf("edge type %q not in schema", k.Type)
	}
	copyRec := record{hasUp: true, upAt: r.upAt, upPos: r.upPos, expires: r.expires, props: r.props}
	if err := t.set(outTimeKey(k, r.upAt), copyRec); err != nil {
		return err
	}
	if et.Reverse {
		if err := t.set(inKey(k), copyRec); err != nil {
			return err
		}
		if err := t.set(inTimeKey(k, r.upAt), copyRec); err != nil {
			return err
		}
	} else if err := t.b.Set(inKey(k), nil, nil); err != nil {
		return err
	}
	if r.expires != 0 {
		return t.b.Set(expiryKey(k, r.expires), nil, nil)
	}
	return nil
}

func (t *txn) unindex(k graph.EdgeKey, r record) error {
	keys := [][]byte{outTimeKey(k, r.upAt), inKey(k), inTimeKey(k, r.upAt)}
	if r.expires != 0 {
		keys = append(keys, expiryKey(k, r.expires))
	}
	for _, key := range keys {
		// Deleting a key that does not exist (inTimeKey of a type without
		// reverse index) costs one tombstone and keeps this simple.
		if err := t.del(key); err != nil {
			return err
		}
	}
	return nil
}

// dropUp removes r's upsert and its index entries, keeping the record only
// if it still carries a delete (the tombstone).
func (t *txn) dropUp(k graph.EdgeKey, r record) error {
	if err := t.unindex(k, r); err != nil {
		return err
	}
	r.hasUp, r.upAt, r.upPos, r.expires, r.props = false, 0, graph.Pos{}, 0, nil
	if !r.hasDel {
		return t.del(edgeKey(k))
	}
	return t.set(edgeKey(k), r)
}

func (t *txn) deleteEdge(k graph.EdgeKey, v ver) error {
	key := edgeKey(k)
	r, found, err := t.get(key)
	if err != nil {
		return err
	}
	if found && r.deletedAtOrAfter(v.at, v.pos) {
		t.s.m.superseded.Inc()
		return nil
	}
	r.hasDel, r.delAt, r.delPos = true, v.at, v.pos
	if r.upTo(v) {
		if err := t.unindex(k, r); err != nil {
			return err
		}
		r.hasUp, r.upAt, r.upPos, r.expires, r.props = false, 0, graph.Pos{}, 0, nil
	}
	return t.set(key, r)
}

// deleteNode records the node's tombstone. Its edges stay: readers hide
// them while the node is deleted (see Adjacency).
func (t *txn) deleteNode(n graph.NodeKey, v ver) error {
	key := nodeKey(n)
	r, found, err := t.get(key)
	if err != nil {
		return err
	}
	if found && r.deletedAtOrAfter(v.at, v.pos) {
		t.s.m.superseded.Inc()
		return nil
	}
	r.hasDel, r.delAt, r.delPos = true, v.at, v.pos
	if r.upTo(v) {
		r.hasUp, r.upAt, r.upPos, r.props = false, 0, graph.Pos{}, nil
	}
	return t.set(key, r)
}

// keep returns the encoded properties of m, a node upsert with kept
// properties: m.Props plus the kept ones the stored node has, when it is
// live and not newer than v (package graph).
func (t *txn) keep(m graph.Mutation, v ver) ([]byte, error) {
	props := m.Props
	r, found, err := t.get(nodeKey(m.Node))
	if err != nil {
		return nil, err
	}
	if found && r.visible() && r.upTo(v) {
		live, err := t.s.untruncated(t.b, m.Node.Type, r)
		if err != nil {
			return nil, err
		}
		if live {
			stored, err := t.s.schema.DecodeNodeProps(m.Node.Type, r.props)
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", m.Node, err)
			}
			props = make(graph.Props, len(m.Props)+len(m.Keep))
			for k, x := range m.Props {
				props[k] = x
			}
			for _, name := range m.Keep {
				if x, ok := stored[name]; ok {
					props[name] = x
				}
			}
		}
	}
	return graph.EncodeProps(props)
}

// truncate records a truncate of node type typ at v unless a newer one is
// recorded.
func (t *txn) truncate(typ string, v ver) error {
	key := truncKey(typ)
	b, closer, err := t.b.Get(key)
	if err == nil {
		at, pos, derr := decodeVer(b)
		closer.Close()
		if derr != nil {
			return fmt.Errorf("truncate of %q: %w", typ, derr)
		}
		if graph.CompareVersions(v.at, v.pos, at, pos) <= 0 {
			return nil
		}
	} else if !isNotFound(err) {
		return err
	}
	return t.b.Set(key, encodeVer(v.at, v.pos), nil)
}

// purgedAtOrAfter reports whether node n has a purge at or after v.
func (t *txn) purgedAtOrAfter(n graph.NodeKey, v ver) (bool, error) {
	key := purgeKey(n)
	if !t.s.purges.mayHave(key) {
		return false, nil
	}
	b, closer, err := t.b.Get(key)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	at, pos, err := decodeVer(b)
	if err != nil {
		return false, fmt.Errorf("purge entry of %s: %w", n, err)
	}
	return graph.CompareVersions(at, pos, v.at, v.pos) >= 0, nil
}

// purgeNode removes, before Apply returns, every edge written at or before
// the purge that has the node at either end, deletes the node and records
// the purge. Later-arriving edges at or before it are refused by
// upsertEdge.
func (t *txn) purgeNode(ctx context.Context, n graph.NodeKey, v ver) error {
	purged, err := t.purgedAtOrAfter(n, v)
	if err != nil {
		return err
	}
	if purged {
		// A purge at least as new already ran this cleanup.
		t.s.m.superseded.Inc()
		return nil
	}
	removed := 0
	// Out: the node's edge records, every type, in key order.
	outPrefix := appendNode([]byte{tEdge}, n)
	if err := t.scan(ctx, outPrefix, func(k []byte, val []byte) error {
		typ, to, err := readInSuffix(k[len(outPrefix):])
		if err != nil {
			return err
		}
		er, err := decodeRecord(val)
		if err != nil {
			return err
		}
		if !er.upTo(v) {
			return nil
		}
		removed++
		return t.dropUp(graph.EdgeKey{Type: typ, From: n, To: to}, er)
	}); err != nil {
		return err
	}
	// In: the in index lists every live edge into the node, of every type.
	inPrefix := appendNode([]byte{tIn}, n)
	if err := t.scan(ctx, inPrefix, func(k []byte, _ []byte) error {
		typ, from, err := readInSuffix(k[len(inPrefix):])
		if err != nil {
			return err
		}
		ek := graph.EdgeKey{Type: typ, From: from, To: n}
		er, found, err := t.get(edgeKey(ek))
		if err != nil || !found || !er.upTo(v) {
			return err
		}
		removed++
		return t.dropUp(ek, er)
	}); err != nil {
		return err
	}
	t.s.m.cleanedEdges.Add(float64(removed))
	if err := t.deleteNode(n, v); err != nil {
		return err
	}
	key := purgeKey(n)
	if err := t.s.purges.add(t.b, key); err != nil {
		return err
	}
	return t.b.Set(key, encodeVer(v.at, v.pos), nil)
}

// scanChunk is how many entries scan reads before releasing its iterator,
// so that the batch can be committed between chunks.
const scanChunk = 1024

// scan calls fn for every entry under prefix as seen by the batch, in
// chunks: fn may write to the batch, and the batch may be committed between
// chunks to bound its size.
func (t *txn) scan(ctx context.Context, prefix []byte, fn func(k, v []byte) error) error {
	lo := prefix
	hi := prefixEnd(prefix)
	for {
		if err := ctx.Err(); err != nil {
			return &graph.RetryableError{Op: "apply", Err: err}
		}
		it, err := t.b.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return err
		}
		type kv struct{ k, v []byte }
		var chunk []kv
		for ok := it.First(); ok && len(chunk) < scanChunk; ok = it.Next() {
			chunk = append(chunk, kv{bytes.Clone(it.Key()), bytes.Clone(it.Value())})
		}
		if err := it.Close(); err != nil {
			return err
		}
		for _, e := range chunk {
			if err := fn(e.k, e.v); err != nil {
				return err
			}
		}
		if len(chunk) < scanChunk {
			return nil
		}
		if err := t.commitIfLarge(); err != nil {
			return err
		}
		// Resume just after the last key of the chunk.
		lo = append(chunk[len(chunk)-1].k, 0)
	}
}
