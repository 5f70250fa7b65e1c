package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/rtgraph/rtgraph/graph"
)

// Sealed rollups: bounded count lookups for heavy users.
//
// A lookup scans every impression of its targets in its longest window, so
// a user with tens of thousands of impressions in 7 days costs that many
// row steps per lookup. Rollups replace the old part of such a scan with
// one row per day, and one per hour where a day cannot be used:
//
//	h <group> <level> <bucket>              the number of impressions of the
//	                                        group with event time in the
//	                                        bucket: [bucket, bucket+span),
//	                                        span an hour (level 0) or a UTC
//	                                        day (level 1)
//	d <group> <hour> <t> <event id>         a marker: an impression written
//	                                        into an hour that may be sealed
//
// <group> is what follows the table byte in a count key: <user> <edge
// type> <target>; <bucket> and <hour> are microseconds, big-endian,
// multiples of their span.
//
// The seal pass (SealCounts, run with the sweep) counts the impressions of
// each hour and day that ended more than sealAfter ago and writes its
// rollup when it holds at least rollupMinRows of them. A lookup uses a
// bucket's rollup in place of its impressions when the bucket lies wholly
// inside or wholly outside each window asked for and no marker of it (of
// an hour in it) exists; days first, then hours outside the days used; the
// buckets a window edge cuts, the ones not sealed and the marked ones are
// read impression by impression, so answers stay exact to the microsecond.
//
// Impressions still arrive after their hour is sealed (lateness,
// redelivery). Writes stay blind: an impression whose hour ended
// sealAfter ago or earlier is written with a marker beside it. The next
// pass counts its hour and day again and deletes exactly the markers its
// snapshot held, so a marker written during the pass survives it. The
// writer decides and commits under sealMu held shared, and the pass takes
// its snapshot under sealMu held exclusively, with the clock read inside:
// a write that decided "no marker" before the snapshot is in it, and one
// deciding after it sees a later clock, under which any hour the pass
// seals has ended sealAfter ago.
const (
	tRollup = 'h'
	tMarker = 'd'
	// rollupBucket is an hour, and rollupDay a day, in microseconds.
	rollupBucket = int64(time.Hour / time.Microsecond)
	rollupDay    = 24 * rollupBucket
	levelHour    = 0
	levelDay     = 1
	// rollupMinRows is the fewest impressions a bucket needs to be sealed:
	// below it a rollup saves too little to pay for its row.
	rollupMinRows = 8
)

// spanOf is the span of a rollup level.
func spanOf(level byte) int64 {
	if level == levelDay {
		return rollupDay
	}
	return rollupBucket
}

func dayOf(at int64) int64 { return at - at%rollupDay }

func bucketOf(at int64) int64 { return at - at%rollupBucket }

// sealDelay is how long after a bucket ends the pass may seal it. Only
// impressions written later than that after their hour ended need a
// marker: with a consumer keeping up, almost none.
func (c *Counts) sealDelay() int64 { return int64(sealAfter / time.Microsecond) }

// sealAfter is sealDelay as a duration.
const sealAfter = 2 * time.Minute

// needsMarker reports whether an impression at event time at, written at
// now (microseconds), lands in a bucket a pass may already have sealed.
func (c *Counts) needsMarker(at, now int64) bool {
	return bucketOf(at)+rollupBucket <= now-c.sealDelay()
}

func markerKey(b []byte, countKey []byte, group int) []byte {
	b = append(b, tMarker)
	b = append(b, countKey[1:group]...)
	b = binary.BigEndian.AppendUint64(b, uint64(bucketOf(int64(binary.BigEndian.Uint64(countKey[group:group+8])))))
	return append(b, countKey[group:]...)
}

// SealCounts runs one seal pass (see the package's rollup notes) and
// returns how many buckets it sealed or sealed again. The background sweep
// runs it; it is exported for tools, tests and benchmarks.
func (c *Counts) SealCounts(ctx context.Context) (int, error) {
	if err := c.enter(ctx, "seal counts"); err != nil {
		return 0, err
	}
	defer c.leave()
	c.passMu.Lock()
	defer c.passMu.Unlock()
	c.sealMu.Lock()
	snap := c.s.db.NewSnapshot()
	limit := micros(c.now()) - c.sealDelay() // buckets ending at or before it may be sealed
	c.sealMu.Unlock()
	defer snap.Close()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{tCount}, UpperBound: []byte{tRollup + 1}})
	if err != nil {
		return 0, fmt.Errorf("embedded: seal counts: %w", err)
	}
	defer it.Close()
	b := c.s.db.NewBatch()
	defer func() { _ = b.Close() }()
	sealed, pending := 0, 0
	commit := func() error {
		if pending == 0 {
			return nil
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return err
		}
		pending = 0
		_ = b.Close()
		b = c.s.db.NewBatch()
		return nil
	}
	// Marked buckets first: each is counted again.
	type bucketRef struct {
		group  []byte
		bucket int64
	}
	var marked []bucketRef
	var markers [][]byte
	for ok := it.SeekGE([]byte{tMarker}); ok && it.Key()[0] == tMarker; ok = it.Next() {
		k := it.Key()
		n, err := countGroupLen(append([]byte{tCount}, k[1:]...))
		if err != nil || len(k) < n+16 {
			return sealed, fmt.Errorf("embedded: seal counts: marker %q: %w", k, errBadKey)
		}
		bk := int64(binary.BigEndian.Uint64(k[n : n+8]))
		if l := len(marked); l == 0 || marked[l-1].bucket != bk || !bytes.Equal(marked[l-1].group, k[1:n]) {
			marked = append(marked, bucketRef{group: bytes.Clone(k[1:n]), bucket: bk})
		}
		markers = append(markers, bytes.Clone(k))
	}
	if err := it.Error(); err != nil {
		return sealed, fmt.Errorf("embedded: seal counts: %w", err)
	}
	var key []byte
	put := func(group []byte, level byte, bucket, n int64, del bool) error {
		key = rollupKey(key[:0], group, level, bucket)
		var err error
		if del {
			err = b.Delete(key, nil)
		} else {
			err = b.Set(key, binary.BigEndian.AppendUint64(nil, uint64(n)), nil)
			sealed++
		}
		if err != nil {
			return err
		}
		if pending++; pending >= c.s.cfg.CommitEvery {
			return commit()
		}
		return nil
	}
	// A marked hour and its day are counted again.
	var lastDay bucketRef
	markedSet := make(map[string]bool, len(marked))
	for _, m := range marked {
		markedSet[string(binary.BigEndian.AppendUint64(slices.Clip(m.group), uint64(m.bucket)))] = true
	}
	for _, m := range marked {
		if err := ctx.Err(); err != nil {
			return sealed, &graph.RetryableError{Op: "seal counts", Err: err}
		}
		n := c.countSpan(it, m.group, m.bucket, rollupBucket)
		ok := n >= rollupMinRows && m.bucket+rollupBucket <= limit
		if err := put(m.group, levelHour, m.bucket, n, !ok); err != nil {
			return sealed, fmt.Errorf("embedded: seal counts: %w", err)
		}
		d := dayOf(m.bucket)
		if lastDay.group != nil && lastDay.bucket == d && bytes.Equal(lastDay.group, m.group) {
			continue
		}
		lastDay = bucketRef{group: m.group, bucket: d}
		n = c.countSpan(it, m.group, d, rollupDay)
		ok = n >= rollupMinRows && d+rollupDay <= limit
		if err := put(m.group, levelDay, d, n, !ok); err != nil {
			return sealed, fmt.Errorf("embedded: seal counts: %w", err)
		}
	}
	for _, k := range markers {
		if err := b.Delete(k, nil); err != nil {
			return sealed, fmt.Errorf("embedded: seal counts: %w", err)
		}
		if pending++; pending >= c.s.cfg.CommitEvery {
			if err := commit(); err != nil {
				return sealed, fmt.Errorf("embedded: seal counts: commit: %w", err)
			}
		}
	}
	// Then every group's hours and days not sealed yet, oldest first. A
	// sealed day is skipped whole; a sealed hour adds its rollup to its
	// day's count and is skipped.
	var group []byte
	var hour, hourRows, day, dayRows int64 = -1, 0, -1, 0
	flushHour := func() error {
		defer func() { hour, hourRows = -1, 0 }()
		if hour < 0 || hourRows < rollupMinRows || hour+rollupBucket > limit {
			return nil
		}
		return put(group, levelHour, hour, hourRows, false)
	}
	flushDay := func() error {
		defer func() { day, dayRows = -1, 0 }()
		if day < 0 || dayRows < rollupMinRows || day+rollupDay > limit {
			return nil
		}
		return put(group, levelDay, day, dayRows, false)
	}
	var cur []byte
	for ok := it.SeekGE([]byte{tCount}); ok && it.Key()[0] == tCount; {
		if err := ctx.Err(); err != nil {
			return sealed, &graph.RetryableError{Op: "seal counts", Err: err}
		}
		k := it.Key()
		n, err := countGroupLen(k)
		if err != nil {
			return sealed, fmt.Errorf("embedded: seal counts: key %q: %w", k, err)
		}
		at := int64(binary.BigEndian.Uint64(k[n : n+8]))
		newGroup := !bytes.Equal(group, k[1:n])
		if newGroup || bucketOf(at) != hour {
			if err := flushHour(); err != nil {
				return sealed, fmt.Errorf("embedded: seal counts: %w", err)
			}
			if newGroup || dayOf(at) != day {
				if err := flushDay(); err != nil {
					return sealed, fmt.Errorf("embedded: seal counts: %w", err)
				}
			}
			cur = append(cur[:0], k...) // the checks below move the iterator
			if newGroup {
				group = append(group[:0], cur[1:n]...)
			}
			h := bucketOf(at)
			if h+rollupBucket > limit {
				// The rest of the group is too recent to seal, its day too.
				day, dayRows = -1, 0
				ok = it.SeekGE(prefixEnd(cur[:n]))
				continue
			}
			if day < 0 {
				day = dayOf(at)
				if _, found := c.rollupOf(it, group, levelDay, day); found {
					day = -1
					ok = it.SeekGE(binary.BigEndian.AppendUint64(slices.Clip(cur[:n]), uint64(dayOf(at)+rollupDay)))
					continue
				}
			}
			// The rollup of an hour marked in this pass is stale: its
			// impressions are counted again.
			if v, found := c.rollupOf(it, group, levelHour, h); found && !markedSet[string(binary.BigEndian.AppendUint64(slices.Clip(group), uint64(h)))] {
				dayRows += v
				ok = it.SeekGE(binary.BigEndian.AppendUint64(slices.Clip(cur[:n]), uint64(h+rollupBucket)))
				continue
			}
			hour = h
			if !it.SeekGE(cur) {
				break
			}
		}
		hourRows++
		dayRows++
		ok = it.Next()
	}
	if err := it.Error(); err != nil {
		return sealed, fmt.Errorf("embedded: seal counts: %w", err)
	}
	if err := flushHour(); err != nil {
		return sealed, fmt.Errorf("embedded: seal counts: %w", err)
	}
	if err := flushDay(); err != nil {
		return sealed, fmt.Errorf("embedded: seal counts: %w", err)
	}
	if err := commit(); err != nil {
		return sealed, fmt.Errorf("embedded: seal counts: commit: %w", err)
	}
	// Deleted markers leave tombstones that every lookup of a sealed
	// group would step over until a compaction drops them; after a pass
	// that deleted many (a backfill, a consumer catching up), the marker
	// table is compacted at once.
	if len(markers) >= markerCompactAfter {
		if err := c.s.db.Compact(ctx, []byte{tMarker}, []byte{tMarker + 1}, false); err != nil {
			return sealed, fmt.Errorf("embedded: seal counts: compact markers: %w", err)
		}
	}
	c.m.sealed.Add(float64(sealed))
	return sealed, nil
}

// markerCompactAfter is how many markers a seal pass deletes before it
// compacts the marker table.
const markerCompactAfter = 1000

func rollupKey(b, group []byte, level byte, bucket int64) []byte {
	b = append(append(b, tRollup), group...)
	return binary.BigEndian.AppendUint64(append(b, level), uint64(bucket))
}

// rollupOf returns the rollup of group's bucket at level, if there is one;
// it moves it.
func (c *Counts) rollupOf(it *pebble.Iterator, group []byte, level byte, bucket int64) (int64, bool) {
	key := rollupKey(nil, group, level, bucket)
	if !it.SeekGE(key) || !bytes.Equal(it.Key(), key) || len(it.Value()) != 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(it.Value())), true
}

// countSpan counts group's impressions in [start, start+span); it moves it.
func (c *Counts) countSpan(it *pebble.Iterator, group []byte, start, span int64) int64 {
	lo := binary.BigEndian.AppendUint64(append([]byte{tCount}, group...), uint64(start))
	hi := binary.BigEndian.AppendUint64(append([]byte{tCount}, group...), uint64(start+span))
	var n int64
	for ok := it.SeekGE(lo); ok && bytes.Compare(it.Key(), hi) < 0; ok = it.Next() {
		n++
	}
	return n
}

// dropRollupsThrough deletes, among groups starting with group (all when
// nil), the rollups and markers of impressions at or before limit: with
// partial set, every bucket that holds such an impression (a purge), else
// only buckets wholly at or before it (expiry).
func (c *Counts) dropRollupsThrough(ctx context.Context, group []byte, limit int64, partial bool) error {
	b := c.s.db.NewBatch()
	defer func() { _ = b.Close() }()
	for _, table := range []byte{tRollup, tMarker} {
		lo := append([]byte{table}, group...)
		it, err := c.s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			if err := ctx.Err(); err != nil {
				_ = it.Close()
				return &graph.RetryableError{Op: "drop rollups", Err: err}
			}
			k := it.Key()
			n, err := countGroupLen(append([]byte{tCount}, k[1:]...))
			if err != nil {
				_ = it.Close()
				return fmt.Errorf("%s key %q: %w", string(table), k, err)
			}
			var drop bool
			switch {
			case table == tMarker:
				drop = len(k) >= n+16 && int64(binary.BigEndian.Uint64(k[n+8:n+16])) <= limit
			case len(k) != n+9:
				_ = it.Close()
				return fmt.Errorf("rollup key %q: %w", k, errBadKey)
			case partial:
				drop = int64(binary.BigEndian.Uint64(k[n+1:])) <= limit
			default:
				drop = int64(binary.BigEndian.Uint64(k[n+1:]))+spanOf(k[n])-1 <= limit
			}
			if drop {
				if err := b.Delete(k, nil); err != nil {
					_ = it.Close()
					return err
				}
			}
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}
