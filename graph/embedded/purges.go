package embedded

import (
	"fmt"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/cockroachdb/pebble/v2"
)

// purgeFilter answers "may node n have a purge record?" without reading the
// database: a Bloom filter over every purge key (p <node>) on disk and in
// uncommitted batches. Every edge upsert checks both of its ends for a
// purge; almost none has one, and each of those misses used to be a point
// read that opened the index and filter blocks of every table in its path
// (a third of Apply's CPU on a database larger than the block cache). Now
// a miss is a few hash probes, and only a hit (a purged node, or a false
// positive, 1 % of misses) reads the record.
//
// The filter holds a superset of the purge keys: Open adds every key on
// disk, purgeNode adds its key before writing it, and a batch that fails
// after adding leaves only a false positive. Purge records are never
// deleted, so nothing is ever removed. When the keys outgrow the filter's
// capacity it is rebuilt, four times larger, from a scan of the purge keys
// seen through the writer's batch (committed and not). Its memory is about
// 1.2 bytes per purge key. Only used with Store.wmu held, or before the
// store is shared (Open).
type purgeFilter struct {
	f     *bloom.BloomFilter
	keys  uint // keys added
	limit uint // capacity the filter was sized for
}

// purgeFilterMin is the smallest capacity: 64k keys, 77 KiB (a variable
// so that tests can make the filter grow).
var purgeFilterMin uint = 1 << 16

// purgeFilterFP is the false-positive rate at capacity.
const purgeFilterFP = 0.01

// loadPurgeFilter builds the filter from the purge keys r holds.
func loadPurgeFilter(r pebble.Reader, atLeast uint) (*purgeFilter, error) {
	keys, err := scanPurgeKeys(r, nil)
	if err != nil {
		return nil, err
	}
	limit := max(purgeFilterMin, 4*uint(len(keys)), atLeast)
	pf := &purgeFilter{f: bloom.NewWithEstimates(limit, purgeFilterFP), limit: limit}
	for _, k := range keys {
		pf.f.Add(k)
		pf.keys++
	}
	return pf, nil
}

// scanPurgeKeys appends every purge key r holds to keys.
func scanPurgeKeys(r pebble.Reader, keys [][]byte) ([][]byte, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{tPurge}, UpperBound: []byte{tPurge + 1}})
	if err != nil {
		return nil, fmt.Errorf("embedded: purge keys: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	if err := it.Error(); err != nil {
		_ = it.Close()
		return nil, fmt.Errorf("embedded: purge keys: %w", err)
	}
	return keys, it.Close()
}

// mayHave reports whether key may be a purge key: false means it is not.
func (pf *purgeFilter) mayHave(key []byte) bool { return pf.f.Test(key) }

// add records key, about to be written through the batch r. Past capacity
// the filter is rebuilt from r, which holds every purge key written so far
// (the ones of r's own uncommitted writes included), and key.
func (pf *purgeFilter) add(r pebble.Reader, key []byte) error {
	if pf.keys >= pf.limit {
		next, err := loadPurgeFilter(r, 4*pf.limit)
		if err != nil {
			return err
		}
		*pf = *next
	}
	pf.f.Add(key)
	pf.keys++
	return nil
}
