package enrich

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
)

// Probe fetch bounds: one probe reads at most maxProbeFetches responses of
// probeFetchBytes each before giving up until the next idle period.
const (
	maxProbeFetches = 16
	probeFetchBytes = 1 << 20
)

// partitionFeeder feeds one cache from one partition of its topic.
//
// Invariant: next is the offset after the last record delivered (or the
// oldest offset at start), and the partition counts as loaded once next
// reaches hw, the high watermark seen at start, or once a probe shows that
// no record the consumer would deliver remains in [next, hw). Only the
// feeder's own goroutine touches next and loaded.
type partitionFeeder struct {
	cache     *Cache
	client    sarama.Client
	log       *slog.Logger
	partition int32
	next, hw  int64
	idle      time.Duration
	loaded    bool
	invalid   bool // an invalid record has been logged for this partition
}

func (f *partitionFeeder) run(ctx context.Context, pc sarama.PartitionConsumer, l *loadTracker) error {
	defer pc.AsyncClose()
	if f.next >= f.hw {
		f.loaded = true
		l.done(f)
	}
	probe := time.NewTimer(f.idle)
	defer probe.Stop()
	errs := pc.Errors()
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-pc.Messages():
			if !ok {
				return fmt.Errorf("enrich: cache %s: consumer of %s/%d stopped", f.cache.name, f.cache.topic, f.partition)
			}
			f.apply(msg)
			if !f.loaded {
				if f.next >= f.hw {
					f.loaded = true
					l.done(f)
				} else {
					probe.Reset(f.idle)
				}
			}
		case cerr, ok := <-errs:
			if !ok {
				// Errors closes with Messages, whose receive reports it.
				errs = nil
				continue
			}
			f.log.Warn("enrich partition consumer error", "cache", f.cache.name, "topic", f.cache.topic,
				"partition", f.partition, "err", cerr.Err)
			if errors.Is(cerr.Err, sarama.ErrOffsetOutOfRange) {
				return fmt.Errorf("enrich: cache %s: %s/%d: %w", f.cache.name, f.cache.topic, f.partition, cerr.Err)
			}
		case <-probe.C:
			if f.loaded {
				continue
			}
			done, err := f.probe()
			if err != nil {
				f.log.Debug("enrich load probe inconclusive", "cache", f.cache.name, "partition", f.partition, "err", err)
			}
			if done {
				f.loaded = true
				l.done(f)
				continue
			}
			probe.Reset(f.idle)
		}
	}
}

func (f *partitionFeeder) apply(msg *sarama.ConsumerMessage) {
	f.next = msg.Offset + 1
	if err := f.cache.Apply(msg.Key, msg.Value); err != nil && !f.invalid {
		// Logged once per partition; the invalid counter counts them all.
		f.invalid = true
		f.log.Warn("enrich invalid record", "cache", f.cache.name, "topic", f.cache.topic,
			"partition", f.partition, "offset", msg.Offset, "err", err)
	}
}

// probe reports whether any record the consumer would still deliver lies
// in [next, hw). A plain consumer never delivers transaction markers or
// aborted records, so when the last records below the watermark are of that
// kind, next never reaches hw by delivery alone. The probe reads the range
// itself with read_committed fetches: it is done when the last stable offset
// has reached hw and every record in the range is a control record or
// belongs to an aborted transaction.
func (f *partitionFeeder) probe() (bool, error) {
	broker, err := f.client.Leader(f.cache.topic, f.partition)
	if err != nil {
		return false, err
	}
	off := f.next
	for range maxProbeFetches {
		req := &sarama.FetchRequest{Version: 12, MaxWaitTime: 0, MinBytes: 1, MaxBytes: probeFetchBytes,
			Isolation: sarama.ReadCommitted, SessionEpoch: -1}
		req.AddBlock(f.cache.topic, f.partition, off, probeFetchBytes, -1)
		resp, err := broker.Fetch(req)
		if err != nil {
			return false, err
		}
		b := resp.GetBlock(f.cache.topic, f.partition)
		if b == nil {
			return false, sarama.ErrIncompleteResponse
		}
		if !errors.Is(b.Err, sarama.ErrNoError) {
			return false, b.Err
		}
		if b.LastStableOffset >= 0 && b.LastStableOffset < f.hw {
			return false, nil // an open transaction below the watermark: wait for its outcome
		}
		pending, last := deliverableBelow(b, off, f.hw)
		if pending {
			return false, nil
		}
		if last+1 >= f.hw {
			return true, nil
		}
		if last < off {
			return false, nil // nothing readable at off yet
		}
		off = last + 1
	}
	return false, nil
}

// deliverableBelow scans a fetch response block from offset from: pending
// is true when it holds a record a read_committed consumer would deliver
// with an offset below hw; last is the last offset the block covers.
func deliverableBelow(b *sarama.FetchResponseBlock, from, hw int64) (pending bool, last int64) {
	last = from - 1
	aborted := map[int64]bool{} // producer id → inside an aborted transaction
	txns := b.AbortedTransactions
	for _, rs := range b.RecordsSet {
		if rs.MsgSet != nil && len(rs.MsgSet.Messages) > 0 {
			// Legacy message sets have no control records: any message counts.
			for _, m := range rs.MsgSet.Messages {
				if m.Offset >= from && m.Offset < hw {
					return true, last
				}
				last = max(last, m.Offset)
			}
			continue
		}
		batch := rs.RecordBatch
		if batch == nil {
			continue
		}
		if batch.PartialTrailingRecord {
			// The rest did not fit: what it holds is unknown, so wait.
			return true, last
		}
		end := batch.FirstOffset + int64(batch.LastOffsetDelta)
		for len(txns) > 0 && txns[0].FirstOffset <= end {
			aborted[txns[0].ProducerID] = true
			txns = txns[1:]
		}
		switch {
		case batch.Control:
			// The marker ends the producer's transaction, aborted or not.
			delete(aborted, batch.ProducerID)
		case batch.IsTransactional && aborted[batch.ProducerID]:
		default:
			for _, r := range batch.Records {
				o := batch.FirstOffset + r.OffsetDelta
				if o >= from && o < hw {
					return true, last
				}
			}
		}
		last = max(last, end)
	}
	return false, last
}
