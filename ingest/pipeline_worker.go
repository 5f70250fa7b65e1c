package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/cenkalti/backoff/v5"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/normalize"
)

// worker owns one claimed partition for as long as this process holds it.
// It is the only goroutine that reads the claim, writes the partition's
// batches and marks its offsets, so per-partition order is kept and the
// batch needs no lock.
//
// Invariants:
//   - an offset is marked only after every mutation of every record before
//     it is acknowledged by the store and every dead letter before it by
//     the dead-letter topic;
//   - while a write is retried the worker reads nothing from the claim, so
//     the claim's buffer fills and sarama stops fetching the partition;
//   - once the partition is lost (the session ended for a reason other than
//     this process stopping) nothing more is marked.
type worker struct {
	p     *Pipeline
	r     *runState
	sess  sarama.ConsumerGroupSession
	claim sarama.ConsumerGroupClaim
	dec   Decoder

	topic     string
	partition int32
	mapping   string

	// ctx bounds every write: it ends when the partition is lost or when
	// the drain after a stop times out.
	ctx    context.Context
	cancel context.CancelFunc

	batch      []pending
	batchBytes int

	lag           *partitionLag
	lastEventTime time.Time // event time of the last written record, for the watermark
	lastRecorded  time.Time // when the watermark was last recorded
	wmDue         bool      // records were written since the last watermark record
	lastNext      int64     // next offset to write, as last marked
}

// pending is one consumed record awaiting its batch's write.
type pending struct {
	msg       *sarama.ConsumerMessage
	muts      []graph.Mutation
	dead      *Cause // non-nil: the record goes to the dead-letter topic
	eventTime time.Time
}

// errAbandoned means the worker's context ended during a write: the batch
// is given up unmarked.
var errAbandoned = errors.New("ingest: batch abandoned")

func newWorker(p *Pipeline, r *runState, s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim, dec Decoder) *worker {
	w := &worker{
		p: p, r: r, sess: s, claim: c, dec: dec,
		topic: c.Topic(), partition: c.Partition(), mapping: p.mappings[c.Topic()],
		lastNext: -1,
	}
	w.ctx, w.cancel = context.WithCancel(r.hardCtx)
	w.batch = make([]pending, 0, min(p.cfg.Batch.Count, 4096))
	return w
}

// lost reports whether the session ended because this member lost its
// partitions (its generation is gone: heartbeat refused, rebalance timed
// out, fenced), rather than because this process is stopping or the
// session closed cleanly around a rebalance. Unknown causes count as lost:
// not committing is always safe, committing someone else's partition is not.
func (w *worker) lost() bool {
	if w.r.consumeCtx.Err() != nil {
		return false
	}
	cause := context.Cause(w.sess.Context())
	return !(errors.Is(cause, context.Canceled) ||
		errors.Is(cause, sarama.ErrSessionPartitionCountChanged) ||
		errors.Is(cause, sarama.ErrSessionConsumeClaimExited))
}

func (w *worker) run() {
	m := w.p.m
	m.assigned.Inc()
	m.partitionEvents.WithLabelValues("assigned").Inc()
	w.lag = m.lag.add(w.claim)
	if off := w.claim.InitialOffset(); off >= 0 {
		w.lastNext = off
	}
	stopLost := context.AfterFunc(w.sess.Context(), func() {
		if w.lost() {
			w.cancel()
		}
	})
	defer func() {
		stopLost()
		w.cancel()
		m.lag.remove(w.claim, w.lag)
		m.assigned.Dec()
	}()
	w.p.log.Debug("partition assigned", "topic", w.topic, "partition", w.partition, "offset", w.claim.InitialOffset())

	// timer closes a batch Period after its first record; wmTimer records
	// a watermark that was held back by WatermarkInterval once the
	// partition goes quiet.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// idle closes a batch Linger after its last record, when Linger is set.
	linger := w.p.cfg.Batch.Linger
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	defer idle.Stop()
	wmTimer := time.NewTimer(time.Hour)
	wmTimer.Stop()
	defer wmTimer.Stop()
	flush := func(reason string) bool {
		timer.Stop()
		idle.Stop()
		if !w.flush(reason) {
			return false
		}
		if w.wmDue {
			wmTimer.Reset(max(0, w.p.cfg.WatermarkInterval-time.Since(w.lastRecorded)))
		}
		return true
	}
	msgs := w.claim.Messages()
	sessDone := w.sess.Context().Done()
	for {
		select {
		case msg, ok := <-msgs:
			if !ok {
				w.finish()
				return
			}
			if err := w.add(msg); err != nil {
				w.abandon(err)
				return
			}
			switch {
			case len(w.batch) >= w.p.cfg.Batch.Count:
				if !flush("count") {
					return
				}
			case w.batchBytes >= w.p.cfg.Batch.Bytes:
				if !flush("bytes") {
					return
				}
			default:
				if len(w.batch) == 1 {
					timer.Reset(w.p.cfg.Batch.Period)
				}
				if linger > 0 {
					idle.Reset(linger)
				}
			}
		case <-timer.C:
			if !flush("period") {
				return
			}
		case <-idle.C:
			if len(w.batch) > 0 && !flush("idle") {
				return
			}
		case <-wmTimer.C:
			w.recordWatermark(true)
		case <-sessDone:
			w.finish()
			return
		}
	}
}

// finish ends the worker when its claim closes or its session ends: a
// revoked partition, or a stopping process, flushes and marks; a lost one
// drops its batch.
func (w *worker) finish() {
	m := w.p.m
	switch {
	case w.sess.Context().Err() == nil:
		// The claim closed while the session lives on: a cooperative
		// rebalance revoked it. sarama commits its marked offsets once this
		// returns.
		if w.flush("revoke") {
			w.recordWatermark(true)
		}
		m.partitionEvents.WithLabelValues("revoked").Inc()
		w.p.log.Info("partition revoked", "topic", w.topic, "partition", w.partition, "next_offset", w.lastNext)
	case w.lost():
		m.partitionEvents.WithLabelValues("lost").Inc()
		if len(w.batch) > 0 {
			m.abandoned.WithLabelValues("lost").Inc()
		}
		w.p.log.Warn("partition lost", "topic", w.topic, "partition", w.partition,
			"cause", context.Cause(w.sess.Context()).Error(), "unwritten", len(w.batch))
		w.batch = w.batch[:0]
	default:
		if w.flush("stop") {
			w.recordWatermark(true)
		}
		m.partitionEvents.WithLabelValues("stopped").Inc()
	}
}

// abandon gives up the batch after err (the worker's context ended).
func (w *worker) abandon(err error) {
	m := w.p.m
	switch {
	case w.lost():
		m.partitionEvents.WithLabelValues("lost").Inc()
		m.abandoned.WithLabelValues("lost").Inc()
		w.p.log.Warn("partition lost during write", "topic", w.topic, "partition", w.partition, "unwritten", len(w.batch))
	case w.r.hardCtx.Err() != nil:
		m.abandoned.WithLabelValues("drain_timeout").Inc()
		w.r.drainIncomplete()
		w.p.log.Warn("batch abandoned at drain timeout", "topic", w.topic, "partition", w.partition, "unwritten", len(w.batch))
	default:
		w.p.log.Error("batch abandoned", "topic", w.topic, "partition", w.partition, "err", err)
	}
	w.batch = w.batch[:0]
}

// add decodes and maps one record into the batch. It fails only when the
// worker's context ends while the mapper is being retried.
func (w *worker) add(msg *sarama.ConsumerMessage) error {
	w.lag.setIfUnknown(msg.Offset)
	if w.lastNext < 0 {
		w.lastNext = msg.Offset
	}
	pd := pending{msg: msg}
	w.batchBytes += len(msg.Key) + len(msg.Value)
	nm := normalize.Message{
		Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset,
		Key: msg.Key, Value: msg.Value, Timestamp: msg.Timestamp,
	}
	if len(msg.Headers) > 0 {
		nm.Headers = make([]normalize.Header, 0, len(msg.Headers))
		for _, h := range msg.Headers {
			if h != nil {
				nm.Headers = append(nm.Headers, normalize.Header{Key: string(h.Key), Value: h.Value})
			}
		}
	}
	envs, err := w.dec.Decode(nm)
	if err != nil {
		c := decodeCause(err, w.mapping)
		pd.dead = &c
		w.batch = append(w.batch, pd)
		return nil
	}
	for i := range envs {
		env := &envs[i]
		if env.EventTime.After(pd.eventTime) {
			pd.eventTime = env.EventTime
		}
		var muts []graph.Mutation
		err := w.retry(targetMapper, func(ctx context.Context) error {
			var err error
			muts, err = w.p.mapper.Map(ctx, env)
			if err != nil && !transient(ctx, err) {
				return backoff.Permanent(err)
			}
			return err
		})
		if err != nil {
			if w.ctx.Err() != nil {
				return errAbandoned
			}
			c := mapCause(err, w.mapping)
			pd.dead = &c
			pd.muts = nil
			break
		}
		pd.muts = append(pd.muts, muts...)
	}
	w.batch = append(w.batch, pd)
	return nil
}

// transient reports whether err from a dependency is worth retrying.
func transient(ctx context.Context, err error) bool {
	if graph.IsRetryable(err) {
		return true
	}
	return ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// stallLogEvery is how often a partition that stays stalled logs again.
const stallLogEvery = time.Minute

// retry runs f until it succeeds, returns a backoff.Permanent error, or the
// worker's context ends. While it retries the partition is stalled: the
// stall metrics and /readyz show it, and it is logged when it begins, at
// most once a minute while it lasts (with the last error), and when it ends.
func (w *worker) retry(target string, f func(ctx context.Context) error) error {
	m := w.p.m
	tp := topicPartition{w.topic, w.partition}
	var stalledAt, loggedAt time.Time
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     w.p.cfg.Retry.Backoff,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         w.p.cfg.Retry.BackoffMax,
	}
	_, err := backoff.Retry(w.ctx, func() (struct{}, error) {
		err := f(w.ctx)
		if err == nil || w.ctx.Err() != nil {
			return struct{}{}, err
		}
		var perm *backoff.PermanentError
		if errors.As(err, &perm) {
			return struct{}{}, err
		}
		now := time.Now()
		switch {
		case stalledAt.IsZero():
			stalledAt, loggedAt = now, now
			m.stalls.WithLabelValues(target).Inc()
			m.stalled.Inc()
			w.p.log.Warn("partition stalled", "topic", w.topic, "partition", w.partition, "target", target, "err", err)
		case now.Sub(loggedAt) >= stallLogEvery:
			loggedAt = now
			w.p.log.Warn("partition still stalled", "topic", w.topic, "partition", w.partition, "target", target,
				"stalled_for", now.Sub(stalledAt).Round(time.Second), "err", err)
		}
		m.stalling.set(tp, stalledAt, target, err)
		return struct{}{}, err
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0))
	if !stalledAt.IsZero() {
		m.stalling.clear(tp)
		m.stalled.Dec()
		m.stallSeconds.WithLabelValues(target).Add(time.Since(stalledAt).Seconds())
		if err == nil {
			w.p.log.Info("partition resumed", "topic", w.topic, "partition", w.partition, "target", target,
				"stalled_for", time.Since(stalledAt).Round(time.Millisecond))
		}
	}
	return err
}

// flush writes the batch: mutations to the store, dead letters to their
// topic, then marks the offset after the batch's last record. It reports
// whether the worker may go on; on false the batch was abandoned or the
// pipeline is failing.
func (w *worker) flush(reason string) bool {
	if len(w.batch) == 0 {
		return true
	}
	m := w.p.m
	start := time.Now()
	if err := w.writeMutations(); err != nil {
		if errors.Is(err, errAbandoned) || w.ctx.Err() != nil {
			w.abandon(err)
			return false
		}
		w.r.fail(fmt.Errorf("ingest: write %s/%d: %w", w.topic, w.partition, err))
		w.p.log.Error("store refused batch", "topic", w.topic, "partition", w.partition, "err", err)
		w.batch = w.batch[:0]
		return false
	}
	if err := w.writeDeadLetters(); err != nil {
		w.abandon(err)
		return false
	}

	last := w.batch[len(w.batch)-1].msg
	next := last.Offset + 1
	w.sess.MarkOffset(w.topic, w.partition, next, "")
	w.lastNext = next
	w.lag.set(next)

	now := w.p.now()
	written, dead, nmuts := 0, 0, 0
	for i := range w.batch {
		pd := &w.batch[i]
		if pd.dead != nil {
			dead++
			continue
		}
		written++
		nmuts += len(pd.muts)
		if !pd.eventTime.IsZero() {
			m.freshness.Observe(now.Sub(pd.eventTime).Seconds())
			w.lastEventTime = pd.eventTime
		}
	}
	m.messages.WithLabelValues(w.topic, outcomeWritten).Add(float64(written))
	if dead > 0 {
		m.messages.WithLabelValues(w.topic, outcomeDeadLettered).Add(float64(dead))
	}
	m.flushes.WithLabelValues(reason).Inc()
	m.batchMessages.Observe(float64(len(w.batch)))
	m.flushSeconds.Observe(time.Since(start).Seconds())
	w.wmDue = true

	// Drop references to the records so their buffers can be collected.
	clear(w.batch)
	w.batch = w.batch[:0]
	w.batchBytes = 0
	if time.Since(w.lastRecorded) >= w.p.cfg.WatermarkInterval {
		w.recordWatermark(false)
	}
	return true
}

// writeMutations applies the batch's mutations, folded, in chunks of at
// most MaxApplyMutations, each retried until acknowledged. If the store
// refuses them as non-conforming, the records at fault are found by
// writing halves of the batch and are turned into dead letters.
func (w *worker) writeMutations() error {
	n := 0
	for i := range w.batch {
		n += len(w.batch[i].muts)
	}
	if n == 0 {
		return nil
	}
	all := make([]graph.Mutation, 0, n)
	for i := range w.batch {
		all = append(all, w.batch[i].muts...)
	}
	if w.p.fold != nil {
		all = w.p.fold(all)
	}
	err := w.apply(all)
	if err == nil {
		w.p.m.mutations.Add(float64(len(all)))
		return nil
	}
	if !errors.Is(err, graph.ErrNonConforming) {
		return err
	}
	live := make([]*pending, 0, len(w.batch))
	for i := range w.batch {
		if len(w.batch[i].muts) > 0 {
			live = append(live, &w.batch[i])
		}
	}
	return w.isolate(live)
}

// isolate writes the records' mutations, halving the set on a
// non-conforming refusal until each refused record stands alone; those
// become dead letters. Other errors are returned as they are.
func (w *worker) isolate(recs []*pending) error {
	if len(recs) == 0 {
		return nil
	}
	var muts []graph.Mutation
	for _, r := range recs {
		muts = append(muts, r.muts...)
	}
	err := w.apply(muts)
	switch {
	case err == nil:
		w.p.m.mutations.Add(float64(len(muts)))
		return nil
	case !errors.Is(err, graph.ErrNonConforming):
		return err
	case len(recs) == 1:
		c := storeCause(err, w.mapping)
		recs[0].dead = &c
		recs[0].muts = nil
		return nil
	}
	half := len(recs) / 2
	if err := w.isolate(recs[:half]); err != nil {
		return err
	}
	return w.isolate(recs[half:])
}

// apply writes muts in chunks, each retried while the store fails
// transiently.
func (w *worker) apply(muts []graph.Mutation) error {
	size := w.p.cfg.MaxApplyMutations
	for len(muts) > 0 {
		chunk := muts[:min(size, len(muts))]
		muts = muts[len(chunk):]
		err := w.retry(targetStore, func(ctx context.Context) error {
			err := w.p.writer.Apply(ctx, chunk)
			if err != nil && !transient(ctx, err) {
				return backoff.Permanent(err)
			}
			return err
		})
		if err != nil {
			if w.ctx.Err() != nil {
				return errAbandoned
			}
			return err
		}
	}
	return nil
}

// writeDeadLetters sends the batch's dead letters and waits for the
// dead-letter topic to acknowledge them. A record too large or refused as
// it is goes without its value (or, failing that, with the pipeline's
// headers alone) at once; transient failures are retried with backoff and
// stall the partition meanwhile. Each record is counted once, when it is
// acknowledged.
func (w *worker) writeDeadLetters() error {
	var outs []*outgoing
	for i := range w.batch {
		pd := &w.batch[i]
		if pd.dead != nil {
			outs = append(outs, &outgoing{src: pd.msg, cause: *pd.dead})
		}
	}
	if len(outs) == 0 {
		return nil
	}
	now := w.p.now()
	s := &deadLetterSender{prod: w.r.dlq, topic: w.p.cfg.DeadLetterTopic, group: w.p.cfg.GroupID, maxBytes: w.r.dlqMaxBytes}
	err := w.retry(targetDeadLetter, func(context.Context) error {
		return s.send(outs, now)
	})
	m := w.p.m
	for _, o := range outs {
		if !o.done {
			continue
		}
		m.deadLetters.WithLabelValues(w.topic, o.cause.Stage, o.cause.Class).Inc()
		if o.level > levelWhole {
			m.omitted.WithLabelValues(o.why).Inc()
		}
	}
	if err != nil {
		return errAbandoned
	}
	return nil
}

// recordWatermark writes the partition's watermark when records were
// written since the last one. A failure is counted and logged; the next
// record replaces it, so it never stalls the partition.
func (w *worker) recordWatermark(force bool) {
	if w.p.wm == nil || !w.wmDue {
		return
	}
	if !force && time.Since(w.lastRecorded) < w.p.cfg.WatermarkInterval {
		return
	}
	wm := graph.Watermark{
		Source:    graph.WatermarkSource{Group: w.p.cfg.GroupID, Topic: w.topic, Partition: w.partition},
		EventTime: w.lastEventTime,
		Offset:    w.lastNext,
		HighWater: max(w.claim.HighWaterMarkOffset(), w.lastNext),
		UpdatedAt: w.p.now(),
	}
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	w.lastRecorded = time.Now()
	if err := w.p.wm.SetWatermarks(ctx, []graph.Watermark{wm}); err != nil {
		w.p.m.watermarkErrors.Inc()
		w.p.log.Warn("watermark not recorded", "topic", w.topic, "partition", w.partition, "err", err)
		return
	}
	w.wmDue = false
}
