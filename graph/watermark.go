package graph

import (
	"context"
	"time"
)

// WatermarkSource names one input partition as consumed by one consumer
// group: the unit the ingestion pipeline reports progress for.
type WatermarkSource struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// Watermark is how far the ingestion of one input partition has got, as
// recorded by the pipeline after the store acknowledged a batch.
//
// Definition. Offset is the next offset of the partition to be processed:
// every message before it has had all its mutations acknowledged by the
// store (or went to the dead-letter topic). EventTime is the event time of
// the last of those messages by offset (not the largest event time seen),
// so that, when a partition carries its events in event-time order, every
// event of the partition older than EventTime is in the graph. HighWater is
// the partition's high-water mark as last fetched when the record was made:
// Offset == HighWater means the partition was caught up. UpdatedAt is the
// wall-clock time of the record; a newer record replaces an older one
// (last write wins by UpdatedAt), which is what makes a rewind visible:
// after a replay starts, Offset and EventTime go back.
type Watermark struct {
	Source    WatermarkSource `json:"source"`
	EventTime time.Time       `json:"event_time"`
	Offset    int64           `json:"offset"`
	HighWater int64           `json:"high_water"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// Lag is the number of messages of the partition not yet written when the
// record was made (never negative).
func (w Watermark) Lag() int64 { return max(0, w.HighWater-w.Offset) }

// WatermarkStore keeps the watermarks. The pipeline writes them, the API
// reads them to tell readers how fresh the graph is. Backends that implement
// graph.Store implement it too, next to the graph's own data.
//
// Both methods are safe for concurrent use. Errors follow the Writer rule:
// a *RetryableError is transient, anything else permanent; a cancelled ctx
// abandons the call with a retryable error.
type WatermarkStore interface {
	// SetWatermarks records each watermark, replacing the record of the same
	// source unless that record has a newer UpdatedAt. It is idempotent.
	SetWatermarks(ctx context.Context, ws []Watermark) error
	// Watermarks returns every recorded watermark, of every group, sorted by
	// source (group, topic, partition).
	Watermarks(ctx context.Context) ([]Watermark, error)
}

// CompleteThrough is the event time up to which the graph is complete for
// the input of one consumer group, computed from its watermarks:
//
//   - a partition that lags (Offset < HighWater) is complete only through
//     its EventTime: later events are still unwritten;
//   - a caught-up partition constrains nothing: everything published to it
//     when the record was made is written, so an idle partition does not
//     hold the watermark back;
//   - so the result is the minimum EventTime over lagging partitions, or,
//     when none lags, the maximum EventTime over all of them (the newest
//     event written, with nothing known to be pending).
//
// The guarantee is exact when each partition carries its events in event-time
// order (true of Debezium topics, whose order is the database log's); with
// out-of-order producers an event older than the result may still be pending
// in a lagging partition. A partition the pipeline has not yet written a
// record for is unknown here and does not count. ok is false when the group
// has no watermark.
func CompleteThrough(ws []Watermark, group string) (t time.Time, ok bool) {
	var minLagging, maxAll time.Time
	lagging := false
	for _, w := range ws {
		if w.Source.Group != group {
			continue
		}
		ok = true
		if w.EventTime.After(maxAll) {
			maxAll = w.EventTime
		}
		if w.Lag() > 0 && (!lagging || w.EventTime.Before(minLagging)) {
			minLagging = w.EventTime
			lagging = true
		}
	}
	if lagging {
		return minLagging, ok
	}
	return maxAll, ok
}
