package cassandra

import (
	"context"
	"fmt"
	"sync"

	"github.com/rtgraph/rtgraph/graph"
)

// Purge statements. Every delete carries as its timestamp one microsecond
// before the purge's event time, so it removes exactly what was written
// before the purge's time and nothing written after it, and a late write
// of an earlier time stays shadowed. Rows of the purge's very microsecond
// are decided by position (a write of a greater position outlives the
// purge), which a timestamp cannot express: those stay, and node_deletes
// hides the ones at or before the purge's position.
const (
	cqlPurgeScanByKey = `SELECT neighbor, WRITETIME(props) FROM edges_by_key` +
		` WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND bucket = ?`
	cqlPurgeByKeyPartition = `DELETE FROM edges_by_key USING TIMESTAMP ?` +
		` WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND bucket = ?`
	cqlPurgeByKeyRow = `DELETE FROM edges_by_key USING TIMESTAMP ?` +
		` WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND bucket = ? AND neighbor = ?`
	cqlPurgeDays            = `SELECT day FROM edge_days WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ?`
	cqlPurgeByTimePartition = `DELETE FROM edges_by_time USING TIMESTAMP ?` +
		` WHERE node_type = ? AND node_id = ? AND edge_type = ? AND direction = ? AND day = ?`
	cqlPurgeClaim = `DELETE FROM edge_claims USING TIMESTAMP ?` +
		` WHERE node_type = ? AND edge_type = ? AND direction = ? AND node_id = ?`
)

// purgeRows removes from the tables, for good, what a purge of node n at
// event time at (microseconds) hides, up to the microsecond before at: in every direction the node's rows
// are kept for (out for every type it may start, in for every reverse type
// it may end), the node's partitions of edges_by_key and edges_by_time,
// its claims, and the mirrored rows at its neighbours (found by scanning
// its own rows first). What it cannot reach, node_deletes hides for good
// instead: an edge into n of a type without a reverse index (only the
// neighbour's partition holds it, and nothing lists those neighbours), and
// a late write of a time before the purge that lands in a partition the
// purge did not delete (a neighbour's, or a day n had no edges on). The
// edge_days rows stay: they name no neighbour. Idempotent: a retried Apply
// repeats it harmlessly.
func (s *Store) purgeRows(ctx context.Context, n graph.NodeKey, at int64) error {
	ts := at - 1
	id := []byte(n.ID)
	self := neighborKey(n)
	var tasks []task
	var mu sync.Mutex
	var mirrors []task
	for _, name := range s.schema.EdgeTypes() {
		et, _ := s.schema.EdgeType(name)
		var dirs []int8
		if et.AllowsFrom(n.Type) {
			dirs = append(dirs, dirOut)
		}
		if et.Reverse && et.AllowsTo(n.Type) {
			dirs = append(dirs, dirIn)
		}
		for _, dir := range dirs {
			// The mirror of a row in direction dir is kept at the
			// neighbour in the other direction when the type keeps both.
			mirrored := et.Reverse
			other := dirIn
			if dir == dirIn {
				other = dirOut
			}
			for b := range keyBuckets {
				tasks = append(tasks, task{op: opPurge, f: func(ctx context.Context) error {
					iter := s.query(s.writeCL, cqlPurgeScanByKey, n.Type, id, name, dir, int8(b)).IterContext(ctx)
					var found []task
					for {
						var nbr []byte
						var wt *int64
						if !iter.Scan(&nbr, &wt) {
							break
						}
						if !mirrored || wt == nil || *wt > ts { // a row of at or later is not removed
							continue
						}
						k, err := parseNeighbor(nbr)
						if err != nil {
							_ = iter.Close()
							return fmt.Errorf("cassandra: purge %s: stored neighbour %q: %w", n, nbr, err)
						}
						e := *wt
						nid := []byte(k.ID)
						found = append(found,
							task{op: opPurge, f: func(ctx context.Context) error {
								return s.query(s.writeCL, cqlPurgeByKeyRow, ts, k.Type, nid, name, other, bucketOf(self), self).ExecContext(ctx)
							}},
							task{op: opPurge, f: func(ctx context.Context) error {
								return s.query(s.writeCL, cqlDeleteByTime, ts, k.Type, nid, name, other, dayOf(e), e, self).ExecContext(ctx)
							}})
					}
					if err := iter.Close(); err != nil {
						return err
					}
					mu.Lock()
					mirrors = append(mirrors, found...)
					mu.Unlock()
					return nil
				}})
			}
			tasks = append(tasks, task{op: opPurge, f: func(ctx context.Context) error {
				iter := s.query(s.writeCL, cqlPurgeDays, n.Type, id, name, dir).IterContext(ctx)
				var days []int32
				var d int32
				for iter.Scan(&d) {
					days = append(days, d)
				}
				if err := iter.Close(); err != nil {
					return err
				}
				for _, d := range days {
					if err := s.query(s.writeCL, cqlPurgeByTimePartition, ts, n.Type, id, name, dir, d).ExecContext(ctx); err != nil {
						return err
					}
				}
				// The edge_days rows stay (they name no neighbour): every
				// process caches which day rows it wrote, and an edge
				// written after the purge on one of those days must still
				// be found.
				return nil
			}})
			if et.Constrains(graph.Direction(dir)) {
				tasks = append(tasks, task{op: opPurge, f: func(ctx context.Context) error {
					return s.query(s.writeCL, cqlPurgeClaim, ts, n.Type, name, dir, id).ExecContext(ctx)
				}})
			}
		}
	}
	// First the scans (and the node's edge_days and claims), then the
	// mirrors they found, then the node's own edges_by_key partitions, whose
	// rows the scans read.
	if err := s.runAll(ctx, tasks); err != nil {
		return err
	}
	if err := s.runAll(ctx, mirrors); err != nil {
		return err
	}
	var own []task
	for _, name := range s.schema.EdgeTypes() {
		et, _ := s.schema.EdgeType(name)
		for _, dir := range []int8{dirOut, dirIn} {
			if (dir == dirOut && !et.AllowsFrom(n.Type)) || (dir == dirIn && !(et.Reverse && et.AllowsTo(n.Type))) {
				continue
			}
			for b := range keyBuckets {
				own = append(own, task{op: opPurge, f: func(ctx context.Context) error {
					return s.query(s.writeCL, cqlPurgeByKeyPartition, ts, n.Type, id, name, dir, int8(b)).ExecContext(ctx)
				}})
			}
		}
	}
	return s.runAll(ctx, own)
}
