// Package embeddedtest measures the embedded store's writes against their
// raw Pebble ceiling, for benchmarks outside package embedded: a bare
// Pebble database, opened with the options embedded.Open uses, writing
// blind (no reads) the exact operations a store committed, in the same
// batches, one commit per batch, with the store's durability.
//
// The operations are captured, untimed, from a store applying the same
// mutations with a Capture's Hook as its embedded.Deps.CommitHook; the
// timed Replay never calls into the store.
package embeddedtest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/batchrepr"

	"github.com/rtgraph/rtgraph/graph/embedded"
)

// Op is one operation of a captured batch; Key and Value point into the
// batch's copied representation.
type Op struct {
	Kind       pebble.InternalKeyKind
	Key, Value []byte
}

// Batch is the operations of one batch the store committed, in order.
type Batch []Op

// Capture collects the batches a store commits, decoded into their
// operations. The zero value is ready; its Hook is the store's
// embedded.Deps.CommitHook.
type Capture struct {
	mu      sync.Mutex
	batches []Batch
	err     error
}

// Hook records one committed batch from its representation
// (pebble.Batch.Repr), which it copies.
func (c *Capture) Hook(repr []byte) {
	data := bytes.Clone(repr)
	var ops Batch
	r := batchrepr.Read(data)
	for {
		kind, key, value, ok, err := r.Next()
		if err != nil {
			c.mu.Lock()
			c.err = fmt.Errorf("captured batch: %w", err)
			c.mu.Unlock()
			return
		}
		if !ok {
			break
		}
		ops = append(ops, Op{Kind: kind, Key: key, Value: value})
	}
	c.mu.Lock()
	c.batches = append(c.batches, ops)
	c.mu.Unlock()
}

// Take returns the batches captured so far, in commit order, and forgets
// them; a batch that could not be decoded fails tb.
func (c *Capture) Take(tb testing.TB) []Batch {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		tb.Fatal(c.err)
	}
	out := c.batches
	c.batches = nil
	return out
}

// Ops is the number of operations in batches.
func Ops(batches []Batch) int {
	n := 0
	for _, b := range batches {
		n += len(b)
	}
	return n
}

// OpenBare opens a bare Pebble database in dir with the options
// embedded.Open derives from cfg (embedded.PebbleOptions: block cache,
// memtable size, bloom filters on every level, newest format, the
// disk-health-checking FS; Pebble's log lines discarded, as a store given
// no logger does). tb.Cleanup closes it.
func OpenBare(tb testing.TB, cfg embedded.Config, dir string) *pebble.DB {
	tb.Helper()
	opts, release := embedded.PebbleOptions(cfg, nil)
	db, err := pebble.Open(dir, opts)
	if err != nil {
		_ = release.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = db.Close()
		_ = release.Close()
	})
	return db
}

// commit writes one captured batch blind and commits it.
func commit(db *pebble.DB, ops Batch, wo *pebble.WriteOptions) error {
	b := db.NewBatch()
	defer b.Close()
	for _, op := range ops {
		var err error
		switch op.Kind {
		case pebble.InternalKeyKindSet:
			err = b.Set(op.Key, op.Value, nil)
		case pebble.InternalKeyKindDelete:
			err = b.Delete(op.Key, nil)
		case pebble.InternalKeyKindSingleDelete:
			err = b.SingleDelete(op.Key, nil)
		case pebble.InternalKeyKindRangeDelete:
			err = b.DeleteRange(op.Key, op.Value, nil)
		case pebble.InternalKeyKindMerge:
			err = b.Merge(op.Key, op.Value, nil)
		default:
			err = fmt.Errorf("ceiling: operation kind %s not replayed", op.Kind)
		}
		if err != nil {
			return err
		}
	}
	return b.Commit(wo)
}

// Replay commits batches on db blind, one commit per batch, fsynced when
// fsync is set (as the store's are with Config.Sync), from writers
// goroutines each taking the next batch in capture order. It returns each
// commit's latency, unordered.
func Replay(db *pebble.DB, batches []Batch, writers int, fsync bool) ([]time.Duration, error) {
	wo := pebble.NoSync
	if fsync {
		wo = pebble.Sync
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	lat := make([][]time.Duration, writers)
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(batches) {
					return
				}
				t0 := time.Now()
				if err := commit(db, batches[i], wo); err != nil {
					errs[w] = err
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var all []time.Duration
	for w := range writers {
		all = append(all, lat[w]...)
	}
	return all, nil
}

// WaitQuiet returns once db has had no flush or compaction running for a
// few consecutive polls, so that the background work a timed part caused
// is charged to it rather than to whatever runs next.
func WaitQuiet(db *pebble.DB) {
	for quiet := 0; quiet < 3; {
		m := db.Metrics()
		if m.Flush.NumInProgress == 0 && m.Compact.NumInProgress == 0 {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(2 * time.Millisecond)
	}
}
