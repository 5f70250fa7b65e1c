package embedded

import (
	"bytes"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/rtgraph/rtgraph/graph"
)

// PebbleDB is the store's database, for tests that compare it with another
// database or wait for its background work; they must not write to it.
func PebbleDB(s *Store) *pebble.DB { return s.db }

// AdjacencySpan is where the scan of an adjacency query runs in the
// database, for a benchmark's raw iterator to read the same keys: keys in
// [lo, hi) except after (the cursor's key, nil on a first page); each holds
// prefixLen bytes of table prefix, then, when timed, 8 bytes of inverted
// time, then the far end's encoded node key.
func AdjacencySpan(s *Store, q graph.AdjacencyQuery) (lo, hi, after []byte, prefixLen int, timed bool, err error) {
	pl := s.plan(q)
	lo = pl.lo
	if q.Cursor != nil {
		suffix, err := decodeCursor(q.Cursor, graph.QueryFingerprint(q), pl)
		if err != nil {
			return nil, nil, nil, 0, false, err
		}
		after = append(slices.Clone(pl.prefix), suffix...)
		if bytes.Compare(after, lo) >= 0 {
			lo = after
		}
	}
	return lo, pl.hi, after, len(pl.prefix), pl.timeTable, nil
}

// SetPurgeFilterMin sets the smallest capacity of the purge filter of
// stores opened afterwards, until restore is called.
func SetPurgeFilterMin(n uint) (restore func()) {
	old := purgeFilterMin
	purgeFilterMin = n
	return func() { purgeFilterMin = old }
}

// PurgeFilterLimit is the capacity the store's purge filter has now.
func PurgeFilterLimit(s *Store) uint {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.purges.limit
}

// HoldCountSlots takes every CPU slot of c's lookups, as that many lookups
// in progress would, until release is called.
func HoldCountSlots(c *Counts) (release func()) {
	n := cap(c.slots)
	for range n {
		c.slots <- struct{}{}
	}
	return func() {
		for range n {
			<-c.slots
		}
	}
}
