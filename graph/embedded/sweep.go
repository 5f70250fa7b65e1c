package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/rtgraph/rtgraph/graph"
)

// sweepLoop removes expired edges every cfg.SweepInterval until Close.
// Expired edges are already invisible to reads; the sweep only reclaims
// their space, so an error is logged and retried at the next tick.
func (s *Store) sweepLoop() {
	defer close(s.sweepDone)
	tick := time.NewTicker(s.cfg.SweepInterval)
	defer tick.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stopSweep
		cancel()
	}()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-tick.C:
			if _, err := s.SweepExpired(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("embedded sweep failed", "err", err)
			}
		}
	}
}

// sweepChunk bounds the expired edges removed while holding the writer lock
// once, so that writers wait at most one chunk.
const sweepChunk = 4096

// SweepExpired removes every edge expired by now from disk, with its index
// entries, and returns how many it removed. The background sweep calls it;
// it is exported for operators' tools and tests.
func (s *Store) SweepExpired(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.sweepChunk(ctx)
		total += n
		if err != nil || n < sweepChunk {
			s.m.swept.Add(float64(total))
			return total, err
		}
	}
}

func (s *Store) sweepChunk(ctx context.Context) (int, error) {
	if err := s.enter(ctx, "sweep"); err != nil {
		return 0, err
	}
	defer s.life.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	now := micros(s.now())
	hi := binary.BigEndian.AppendUint64([]byte{tExpiry}, uint64(now)+1)
	t := &txn{s: s, b: s.db.NewIndexedBatch()}
	defer func() { _ = t.b.Close() }()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tExpiry}, UpperBound: hi})
	if err != nil {
		return 0, fmt.Errorf("embedded: sweep: %w", err)
	}
	var keys []graph.EdgeKey
	var exps []int64
	var raw [][]byte
	for ok := it.First(); ok && len(keys) < sweepChunk; ok = it.Next() {
		k, exp, err := readExpiryKey(it.Key())
		if err != nil {
			_ = it.Close()
			return 0, fmt.Errorf("embedded: sweep: %w", err)
		}
		keys, exps, raw = append(keys, k), append(exps, exp), append(raw, append([]byte(nil), it.Key()...))
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("embedded: sweep: %w", err)
	}
	removed := 0
	for i, k := range keys {
		r, found, err := t.get(edgeKey(k))
		if err != nil {
			return removed, fmt.Errorf("embedded: sweep: %w", err)
		}
		if found && r.hasUp && r.expires == exps[i] {
			if err := t.dropUp(k, r); err != nil {
				return removed, fmt.Errorf("embedded: sweep: %w", err)
			}
			removed++
			continue
		}
		// A queue entry whose upsert was replaced: unindex removed it in
		// the same batch, so this only happens after a bug; clean it anyway.
		if err := t.b.Delete(raw[i], nil); err != nil {
			return removed, fmt.Errorf("embedded: sweep: %w", err)
		}
	}
	// Losing a sweep to a crash only means sweeping it again: no fsync.
	if err := t.b.Commit(pebble.NoSync); err != nil {
		return 0, fmt.Errorf("embedded: sweep: commit: %w", err)
	}
	return len(keys), nil
}
