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

// sealAfter is how long after a bucket ends the pass may seal it. Only
// impressions written later than that after their hour ended need a
// marker: with a consumer keeping up, almost none.
const (
	sealAfter       = 2 * time.Minute
	sealAfterMicros = int64(sealAfter / time.Microsecond)
)

// needsMarker reports whether an impression at event time at, written at
// now (microseconds), lands in a bucket a pass may already have sealed.
func needsMarker(at, now int64) bool {
	return bucketOf(at)+rollupBucket <= now-sealAfterMicros
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
//
// The pass is one walk, in key order, over the impressions, the markers
// and the rollups of one snapshot (three iterators): a sealed day without
// a marker is skipped whole, a sealed hour without a marker adds its
// rollup to its day and is skipped, every other hour that ended before the
// limit is counted. Markers are deleted as the walk passes them, so its
// memory does not grow with a backfill.
func (c *Counts) SealCounts(ctx context.Context) (int, error) {
	if err := c.enter(ctx, "seal counts"); err != nil {
		return 0, err
	}
	defer c.leave()
	c.passMu.Lock()
	defer c.passMu.Unlock()
	c.sealMu.Lock()
	snap := c.s.db.NewSnapshot()
	limit := micros(c.now()) - sealAfterMicros // buckets ending at or before it may be sealed
	c.sealMu.Unlock()
	defer snap.Close()
	var its [3]*pebble.Iterator
	for i, table := range []byte{tCount, tMarker, tRollup} {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{table}, UpperBound: []byte{table + 1}})
		if err != nil {
			return 0, fmt.Errorf("embedded: seal counts: %w", err)
		}
		defer it.Close()
		its[i] = it
	}
	it, mit, rit := its[0], its[1], its[2]
	b := c.s.db.NewBatch()
	defer func() { _ = b.Close() }()
	sealed, pending, deleted := 0, 0, 0
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
	counted := func() error {
		if pending++; pending >= c.s.cfg.CommitEvery {
			return commit()
		}
		return nil
	}
	var key []byte
	put := func(group []byte, level byte, bucket, n int64, del bool) error {
		key = rollupKey(key[:0], group, level, bucket)
		var err error
		if del {
			err = b.Delete(key, nil)
		} else if err = c.markRolled(group); err == nil {
			err = b.Set(key, binary.BigEndian.AppendUint64(nil, uint64(n)), nil)
			sealed++
		}
		if err != nil {
			return err
		}
		return counted()
	}
	// markedHours deletes the markers before 'd' group (day+1 day) and
	// returns the hours of the day's markers among them.
	mok := mit.First()
	var lo, hi []byte
	markedHours := func(group []byte, day int64, hours []int64) ([]int64, error) {
		lo = binary.BigEndian.AppendUint64(append(append(lo[:0], tMarker), group...), uint64(day))
		hi = binary.BigEndian.AppendUint64(append(append(hi[:0], tMarker), group...), uint64(day+rollupDay))
		for ; mok && bytes.Compare(mit.Key(), hi) < 0; mok = mit.Next() {
			k := mit.Key()
			if bytes.Compare(k, lo) >= 0 {
				h := int64(binary.BigEndian.Uint64(k[len(lo)-8:]))
				if len(hours) == 0 || hours[len(hours)-1] != h {
					hours = append(hours, h)
				}
			}
			if err := b.Delete(k, nil); err != nil {
				return hours, err
			}
			deleted++
			if err := counted(); err != nil {
				return hours, err
			}
		}
		return hours, mit.Error()
	}
	var group, seek []byte
	var marked []int64 // the current day's marked hours
	var hour, hourRows, day, dayRows int64 = -1, 0, -1, 0
	var hourHad, dayHad bool // a rollup of the bucket exists
	flushHour := func() error {
		defer func() { hour, hourRows, hourHad = -1, 0, false }()
		switch {
		case hour < 0 || hour+rollupBucket > limit:
			return nil
		case hourRows >= rollupMinRows:
			return put(group, levelHour, hour, hourRows, false)
		case hourHad:
			return put(group, levelHour, hour, 0, true)
		}
		return nil
	}
	flushDay := func() error {
		defer func() { day, dayRows, dayHad = -1, 0, false }()
		switch {
		case day < 0 || day+rollupDay > limit:
			return nil
		case dayRows >= rollupMinRows:
			return put(group, levelDay, day, dayRows, false)
		case dayHad:
			return put(group, levelDay, day, 0, true)
		}
		return nil
	}
	for ok := it.First(); ok; {
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
		h, d := bucketOf(at), dayOf(at)
		if newGroup || h != hour {
			if err := flushHour(); err != nil {
				return sealed, fmt.Errorf("embedded: seal counts: %w", err)
			}
			if newGroup || d != day {
				if err := flushDay(); err != nil {
					return sealed, fmt.Errorf("embedded: seal counts: %w", err)
				}
				if newGroup {
					group = append(group[:0], k[1:n]...)
				}
				if h+rollupBucket > limit {
					// The rest of the group is too recent to seal.
					ok = it.SeekGE(prefixEnd(k[:n]))
					continue
				}
				if marked, err = markedHours(group, d, marked[:0]); err != nil {
					return sealed, fmt.Errorf("embedded: seal counts: %w", err)
				}
				day = d
				_, dayHad = c.rollupOf(rit, group, levelDay, d)
				if dayHad && len(marked) == 0 {
					day, dayHad = -1, false
					seek = binary.BigEndian.AppendUint64(append(seek[:0], k[:n]...), uint64(d+rollupDay))
					ok = it.SeekGE(seek)
					continue
				}
			}
			if h+rollupBucket > limit {
				// The rest of the group is too recent to seal, its day too.
				day, dayRows, dayHad = -1, 0, false
				ok = it.SeekGE(prefixEnd(k[:n]))
				continue
			}
			hour = h
			var v int64
			v, hourHad = c.rollupOf(rit, group, levelHour, h)
			if hourHad && !slices.Contains(marked, h) {
				dayRows += v
				hour, hourHad = -1, false
				seek = binary.BigEndian.AppendUint64(append(seek[:0], k[:n]...), uint64(h+rollupBucket))
				ok = it.SeekGE(seek)
				continue
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
	// Markers the walk did not reach (none, unless their impressions went).
	for ; mok; mok = mit.Next() {
		if err := b.Delete(mit.Key(), nil); err != nil {
			return sealed, fmt.Errorf("embedded: seal counts: %w", err)
		}
		deleted++
		if err := counted(); err != nil {
			return sealed, fmt.Errorf("embedded: seal counts: commit: %w", err)
		}
	}
	if err := mit.Error(); err != nil {
		return sealed, fmt.Errorf("embedded: seal counts: %w", err)
	}
	if err := commit(); err != nil {
		return sealed, fmt.Errorf("embedded: seal counts: commit: %w", err)
	}
	// Deleted markers leave tombstones that every lookup of a sealed
	// group would step over until a compaction drops them; after a pass
	// that deleted many (a backfill, a consumer catching up), the marker
	// table is compacted at once.
	if deleted >= markerCompactAfter {
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

// rolledUp reports whether the user and edge type of count prefix prefix
// ('c' <user> <edge type>) have had a rollup since the store opened.
func (c *Counts) rolledUp(prefix []byte) bool {
	c.rolledMu.RLock()
	defer c.rolledMu.RUnlock()
	_, ok := c.rolled[string(prefix[1:])]
	return ok
}

// markRolled records that group's user and edge type have a rollup.
func (c *Counts) markRolled(group []byte) error {
	n, err := userTypeLen(group)
	if err != nil {
		return err
	}
	c.rolledMu.RLock()
	_, ok := c.rolled[string(group[:n])]
	c.rolledMu.RUnlock()
	if !ok {
		c.rolledMu.Lock()
		c.rolled[string(group[:n])] = struct{}{}
		c.rolledMu.Unlock()
	}
	return nil
}

// loadRolled fills rolled from the rollup table: one seek per user and
// edge type that has rollups.
func (c *Counts) loadRolled() error {
	it, err := c.s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tRollup}, UpperBound: []byte{tRollup + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; {
		k := it.Key()
		n, err := userTypeLen(k[1:])
		if err != nil {
			return fmt.Errorf("rollup key %q: %w", k, err)
		}
		c.rolled[string(k[1:1+n])] = struct{}{}
		ok = it.SeekGE(prefixEnd(k[:1+n]))
	}
	return it.Error()
}

// userTypeLen is the length of the <user> <edge type> part at the front
// of a group.
func userTypeLen(group []byte) (int, error) {
	i := 0
	for range 3 { // user type, user id, edge type
		j, err := skipStr(group, i)
		if err != nil {
			return 0, err
		}
		i = j
	}
	return i, nil
}

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
