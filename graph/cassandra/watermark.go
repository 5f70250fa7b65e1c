package cassandra

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

// Watermarks (graph.WatermarkStore) are the ingest_watermarks table of
// schemas/cql/0100_watermarks.cql: a partition per consumer group, a row per
// input partition. Each row is written with its UpdatedAt as the write
// timestamp, so Cassandra's last-write-wins is the contract's "newest record
// wins", with no read before the write.

var _ graph.WatermarkStore = (*Store)(nil)

// Request kinds of the watermark statements (the "op" label).
const (
	opWriteWatermarks = "write_watermarks"
	opReadWatermarks  = "read_watermarks"
)

const (
	cqlSetWatermark = `INSERT INTO ingest_watermarks (consumer_group, topic, partition, event_time, next_offset, high_water, updated_at)` +
		` VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
	cqlWatermarks = `SELECT consumer_group, topic, partition, event_time, next_offset, high_water, updated_at FROM ingest_watermarks`
)

// noEventTime stores the zero event time (nothing written yet).
const noEventTime = math.MinInt64

func watermarkMicros(t time.Time) int64 {
	if t.IsZero() {
		return noEventTime
	}
	return t.UnixMicro()
}

func watermarkTime(us int64) time.Time {
	if us == noEventTime {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// SetWatermarks writes each record as its own idempotent statement (records
// of different groups are different partitions), in parallel within the
// Store's request bound, each retried like Apply's writes.
func (s *Store) SetWatermarks(ctx context.Context, ws []graph.Watermark) error {
	if !s.enter() {
		return graph.ErrClosed
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return &graph.RetryableError{Op: "set watermarks", Err: err}
	}
	errs := make(chan error, len(ws))
	for _, w := range ws {
		go func() {
			// A record without an update time is stamped now, so that it
			// still wins over the records written before it.
			ts := w.UpdatedAt
			if ts.IsZero() {
				ts = s.now()
			}
			errs <- s.do(ctx, opWriteWatermarks, func(ctx context.Context) error {
				return s.query(s.writeCL, cqlSetWatermark, w.Source.Group, w.Source.Topic, int(w.Source.Partition),
					watermarkMicros(w.EventTime), w.Offset, w.HighWater, ts.UnixMicro(), ts.UnixMicro()).ExecContext(ctx)
			})
		}()
	}
	var first error
	for range ws {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Watermarks reads the whole table (a few rows per consumer group and input
// partition) and sorts it by group, topic and partition.
func (s *Store) Watermarks(ctx context.Context) ([]graph.Watermark, error) {
	if !s.enter() {
		return nil, graph.ErrClosed
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, &graph.RetryableError{Op: "watermarks", Err: err}
	}
	var out []graph.Watermark
	err := s.do(ctx, opReadWatermarks, func(ctx context.Context) error {
		out = out[:0]
		iter := s.session.Query(cqlWatermarks).Consistency(s.readCL).Idempotent(true).IterContext(ctx)
		var (
			group, topic         string
			partition            int
			ev, off, hw, updated int64
		)
		for iter.Scan(&group, &topic, &partition, &ev, &off, &hw, &updated) {
			out = append(out, graph.Watermark{
				Source:    graph.WatermarkSource{Group: group, Topic: topic, Partition: int32(partition)},
				EventTime: watermarkTime(ev), Offset: off, HighWater: hw, UpdatedAt: watermarkTime(updated),
			})
		}
		return iter.Close()
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b graph.Watermark) int {
		if c := strings.Compare(a.Source.Group, b.Source.Group); c != 0 {
			return c
		}
		if c := strings.Compare(a.Source.Topic, b.Source.Topic); c != 0 {
			return c
		}
		return int(a.Source.Partition) - int(b.Source.Partition)
	})
	return out, nil
}
