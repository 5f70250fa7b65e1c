package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/rtgraph/rtgraph/graph"
)

// Ingestion watermarks (graph.WatermarkStore) live in their own table:
//
//	w <group> <topic> <partition>   one record per input partition
//
// <partition> is 4 bytes big-endian; the value is four big-endian int64s:
// event time and update time in microseconds, offset and high water. The
// graph's reads and the sweep never visit this table (their iterators are
// bounded to their own table bytes).
const tWatermark = 'w'

var _ graph.WatermarkStore = (*Store)(nil)

const watermarkValueLen = 32

func watermarkKey(src graph.WatermarkSource) []byte {
	b := appendStr(appendStr([]byte{tWatermark}, src.Group), src.Topic)
	return binary.BigEndian.AppendUint32(b, uint32(src.Partition))
}

func encodeWatermark(w graph.Watermark) []byte {
	b := make([]byte, 0, watermarkValueLen)
	b = binary.BigEndian.AppendUint64(b, uint64(timeMicros(w.EventTime)))
	b = binary.BigEndian.AppendUint64(b, uint64(timeMicros(w.UpdatedAt)))
	b = binary.BigEndian.AppendUint64(b, uint64(w.Offset))
	return binary.BigEndian.AppendUint64(b, uint64(w.HighWater))
}

// timeMicros keeps the zero time (no event written yet) distinguishable.
func timeMicros(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return micros(t)
}

func microsTime(us int64) time.Time {
	if us == math.MinInt64 {
		return time.Time{}
	}
	return fromMicros(us)
}

func decodeWatermark(key, val []byte) (graph.Watermark, error) {
	var w graph.Watermark
	if len(key) < 1 || key[0] != tWatermark || len(val) != watermarkValueLen {
		return w, errBadKey
	}
	group, rest, err := readStr(key[1:])
	if err != nil {
		return w, err
	}
	topic, rest, err := readStr(rest)
	if err != nil {
		return w, err
	}
	if len(rest) != 4 {
		return w, errBadKey
	}
	w.Source = graph.WatermarkSource{Group: group, Topic: topic, Partition: int32(binary.BigEndian.Uint32(rest))}
	w.EventTime = microsTime(int64(binary.BigEndian.Uint64(val[0:8])))
	w.UpdatedAt = microsTime(int64(binary.BigEndian.Uint64(val[8:16])))
	w.Offset = int64(binary.BigEndian.Uint64(val[16:24]))
	w.HighWater = int64(binary.BigEndian.Uint64(val[24:32]))
	return w, nil
}

// SetWatermarks records ws in one batch, skipping any whose stored record
// has a newer UpdatedAt. It takes the writer lock for the read-compare-write
// (records are tiny, so it is held briefly) and syncs like Apply.
func (s *Store) SetWatermarks(ctx context.Context, ws []graph.Watermark) error {
	if len(ws) == 0 {
		return nil
	}
	if err := s.enter(ctx, "set watermarks"); err != nil {
		return err
	}
	defer s.life.RUnlock()

	// Of several records of one source in ws, the newest wins.
	newest := make(map[graph.WatermarkSource]graph.Watermark, len(ws))
	for _, w := range ws {
		if old, ok := newest[w.Source]; !ok || !old.UpdatedAt.After(w.UpdatedAt) {
			newest[w.Source] = w
		}
	}
	s.wmu.Lock()
	b := s.db.NewBatch()
	for src, w := range newest {
		k := watermarkKey(src)
		v, closer, err := s.db.Get(k)
		switch {
		case err == nil:
			old, derr := decodeWatermark(k, v)
			_ = closer.Close()
			if derr == nil && old.UpdatedAt.After(w.UpdatedAt) {
				continue
			}
		case !errors.Is(err, pebble.ErrNotFound):
			s.wmu.Unlock()
			_ = b.Close()
			return fmt.Errorf("embedded: set watermarks: %w", err)
		}
		if err := b.Set(k, encodeWatermark(w), nil); err != nil {
			s.wmu.Unlock()
			_ = b.Close()
			return fmt.Errorf("embedded: set watermarks: %w", err)
		}
	}
	var err error
	if !s.cfg.Sync {
		err = b.Commit(pebble.NoSync)
		s.wmu.Unlock()
	} else {
		err = s.db.ApplyNoSyncWait(b, pebble.Sync)
		s.wmu.Unlock()
		if err == nil {
			err = b.SyncWait()
		}
	}
	_ = b.Close()
	if err != nil {
		return fmt.Errorf("embedded: set watermarks: commit: %w", err)
	}
	return nil
}

// Watermarks returns every record, sorted by group, topic and partition
// (the key order).
func (s *Store) Watermarks(ctx context.Context) ([]graph.Watermark, error) {
	if err := s.enter(ctx, "watermarks"); err != nil {
		return nil, err
	}
	defer s.life.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tWatermark}, UpperBound: []byte{tWatermark + 1}})
	if err != nil {
		return nil, fmt.Errorf("embedded: watermarks: %w", err)
	}
	defer it.Close()
	var out []graph.Watermark
	for ok := it.First(); ok; ok = it.Next() {
		w, err := decodeWatermark(bytes.Clone(it.Key()), it.Value())
		if err != nil {
			return nil, fmt.Errorf("embedded: watermarks: record %x: %w", it.Key(), err)
		}
		out = append(out, w)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("embedded: watermarks: %w", err)
	}
	return out, nil
}
