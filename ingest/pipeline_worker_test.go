package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/normalize"
)

const testTopicName = "views"

// memWatermarks is a WatermarkWriter that keeps the last record per source.
type memWatermarks struct {
	mu   sync.Mutex
	recs map[graph.WatermarkSource]graph.Watermark
	fail bool
}

func (m *memWatermarks) SetWatermarks(_ context.Context, ws []graph.Watermark) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return &graph.RetryableError{Op: "watermark", Err: errors.New("unavailable")}
	}
	if m.recs == nil {
		m.recs = map[graph.WatermarkSource]graph.Watermark{}
	}
	for _, w := range ws {
		m.recs[w.Source] = w
	}
	return nil
}

func (m *memWatermarks) get(p int32) (graph.Watermark, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.recs[graph.WatermarkSource{Group: "test-group", Topic: testTopicName, Partition: p}]
	return w, ok
}

// harness runs workers of one pipeline against fakes and a memstore.
type harness struct {
	p      *Pipeline
	r      *runState
	store  *memstore.Store
	writer *flakyWriter
	mapper *testMapper
	dlq    *fakeProducer
	wm     *memWatermarks
	reg    *prometheus.Registry
	stop   context.CancelFunc
}

func testConfig() Config {
	c := DefaultConfig()
	c.GroupID = "test-group"
	c.Topics = map[string]normalize.Config{testTopicName: testTopic()}
	c.Batch.Count = 10
	c.Batch.Period = time.Hour // flushes come from count, revocation or stop unless a test says otherwise
	c.Batch.Linger = 0
	c.Retry.Backoff = time.Millisecond
	c.Retry.BackoffMax = 5 * time.Millisecond
	c.WatermarkInterval = time.Hour
	return c
}

func newHarness(t fataler, mod func(*Options)) *harness {
	h := &harness{
		store:  memstore.New(testSchema(t), memstore.Options{}),
		mapper: &testMapper{},
		dlq:    &fakeProducer{},
		wm:     &memWatermarks{},
		reg:    prometheus.NewRegistry(),
	}
	h.writer = &flakyWriter{w: h.store}
	opts := Options{
		Config: testConfig(), Kafka: DefaultKafkaConfig(),
		Mapper: h.mapper, Writer: h.writer, Watermarks: h.wm, Registerer: h.reg,
	}
	if mod != nil {
		mod(&opts)
	}
	p, err := NewPipeline(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.p, h.stop = p, cancel
	h.r = p.start(ctx, h.dlq)
	return h
}

// consume runs the worker of claim in the background; the returned channel
// closes when it returns.
func (h *harness) consume(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = (&groupHandler{p: h.p, r: h.r}).ConsumeClaim(s, c)
	}()
	return done
}

// close ends the run, as Run does.
func (h *harness) close() {
	h.stop()
	h.r.stop(nil)
}

// viewEvents returns n view events of users u0..u(n%users) on items.
func viewEvents(n, users, items int, base time.Time) []event {
	out := make([]event, n)
	for i := range out {
		out[i] = event{
			ID: fmt.Sprintf("e%d", i), At: base.Add(time.Duration(i) * time.Millisecond), Op: opView,
			User: fmt.Sprintf("u%d", i%users), Item: fmt.Sprintf("i%d", i%items), Ms: i, Name: fmt.Sprintf("user %d", i%users),
		}
	}
	return out
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestWorkerWritesBatchesAndMarksAfterAck(t *testing.T) {
	h := newHarness(t, nil)
	defer h.close()
	sess := newFakeSession(context.Background())
	claim := newFakeClaim(testTopicName, 0, 0, 64)
	claim.hwm.Store(25)
	done := h.consume(sess, claim)

	evs := viewEvents(25, 3, 4, base)
	for i, e := range evs {
		claim.ch <- record(testTopicName, 0, int64(i), e.User, e.value())
	}
	// Batch.Count is 10: two batches are written while the claim is open.
	waitFor(t, "two batches marked", 5*time.Second, func() bool { return sess.markedOffset(0) == 20 })
	close(claim.ch) // revocation: the last 5 records are flushed before the worker returns
	<-done
	if got := sess.markedOffset(0); got != 25 {
		t.Fatalf("marked offset = %d, want 25", got)
	}
	if got := h.writer.muts.Load(); got != 75 {
		t.Errorf("mutations written = %d, want 75", got)
	}
	if got := testutil.ToFloat64(h.p.m.messages.WithLabelValues(testTopicName, outcomeWritten)); got != 25 {
		t.Errorf("messages_total{written} = %v", got)
	}
	if got := testutil.ToFloat64(h.p.m.flushes.WithLabelValues("revoke")); got != 1 {
		t.Errorf("flushes{revoke} = %v", got)
	}
	if got := testutil.ToFloat64(h.p.m.partitionEvents.WithLabelValues("revoked")); got != 1 {
		t.Errorf("partition_events{revoked} = %v", got)
	}
	state := dumpState(t, h.store, []string{"u0", "u1", "u2"}, []string{"i0", "i1", "i2", "i3"})
	// Every (user, item) pair that occurs has its edge, with the newest ms.
	for i := 13; i < 25; i++ {
		want := fmt.Sprintf("edge user:u%d->item:i%d map[ms:%d]", i%3, i%4, i)
		if !strings.Contains(state, want) {
			t.Errorf("state lacks %q:\n%s", want, state)
		}
	}
	wm, ok := h.wm.get(0)
	if !ok || wm.Offset != 25 || wm.HighWater != 25 || !wm.EventTime.Equal(evs[24].At) {
		t.Errorf("watermark = %+v, %v; want offset 25, high water 25, event time %s", wm, ok, evs[24].At)
	}
}

func TestWorkerBatchPolicy(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Config)
		send   int
		reason string
		marked int64
	}{
		{"count", func(c *Config) { c.Batch.Count = 4 }, 5, "count", 4},
		{"bytes", func(c *Config) { c.Batch.Count = 1000; c.Batch.Bytes = 1024 }, 20, "bytes", 0}, // marked checked below: a multiple of the records that fill 1 KiB
		{"period", func(c *Config) { c.Batch.Period = 20 * time.Millisecond }, 3, "period", 3},
		// marked unchecked: under load the records may close more than one idle batch.
		{"idle", func(c *Config) { c.Batch.Linger = 5 * time.Millisecond }, 3, "idle", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { tt.mod(&o.Config) })
			defer h.close()
			sess := newFakeSession(context.Background())
			claim := newFakeClaim(testTopicName, 0, 0, 64)
			done := h.consume(sess, claim)
			evs := viewEvents(tt.send, 2, 2, base)
			size := 0
			for i, e := range evs {
				r := record(testTopicName, 0, int64(i), e.User, e.value())
				size += len(r.Key) + len(r.Value)
				claim.ch <- r
			}
			waitFor(t, "a "+tt.reason+" flush", 5*time.Second, func() bool {
				return testutil.ToFloat64(h.p.m.flushes.WithLabelValues(tt.reason)) >= 1
			})
			got := sess.markedOffset(0)
			if tt.marked > 0 && got != tt.marked {
				t.Errorf("marked = %d, want %d", got, tt.marked)
			}
			if tt.reason == "bytes" && (got == 0 || got == int64(tt.send)) {
				t.Errorf("bytes flush marked %d of %d records (%d bytes sent)", got, tt.send, size)
			}
			close(claim.ch)
			<-done
			if got := sess.markedOffset(0); got != int64(tt.send) {
				t.Errorf("after revocation marked = %d, want %d", got, tt.send)
			}
		})
	}
}

func TestWorkerDeadLetters(t *testing.T) {
	h := newHarness(t, nil)
	defer h.close()
	sess := newFakeSession(context.Background())
	claim := newFakeClaim(testTopicName, 3, 100, 64)
	done := h.consume(sess, claim)

	good := viewEvents(4, 2, 2, base)
	bad := []struct {
		value      []byte
		stage      string
		class      string
		field      string
		reasonPart string
	}{
		{[]byte(`{"id": "x", "ts": `), StageDecode, "malformed_json", "value", "malformed_json"},
		{[]byte(`{"ts": 1700000000000, "user": "u1"}`), StageDecode, "missing_field", "id", "missing_field"},
		{event{ID: "u", At: base, Op: opUnknown, User: "u1"}.value(), StageMap, "unknown_entity_type", "op", "unknown_entity_type"},
		{event{ID: "b", At: base, Op: opBadProp, User: "u1", Item: "i1"}.value(), StageStore, ClassNonConforming, "colour", "unknown_property"},
	}
	off := int64(100)
	var badOffsets []int64
	// Interleave: good, bad, good, bad...
	for i := range 4 {
		claim.ch <- record(testTopicName, 3, off, good[i].User, good[i].value())
		off++
		claim.ch <- &sarama.ConsumerMessage{Topic: testTopicName, Partition: 3, Offset: off, Key: []byte("k"), Value: bad[i].value,
			Headers: []*sarama.RecordHeader{{Key: []byte("trace"), Value: []byte("t-1")}}}
		badOffsets = append(badOffsets, off)
		off++
	}
	close(claim.ch)
	<-done
	if got := sess.markedOffset(3); got != off {
		t.Fatalf("marked = %d, want %d (dead letters are covered by the mark)", got, off)
	}
	sent := h.dlq.messages()
	if len(sent) != len(bad) {
		t.Fatalf("dead letters = %d, want %d", len(sent), len(bad))
	}
	for i, m := range sent {
		b := bad[i]
		if m.Topic != "rtgraph.dlq" {
			t.Errorf("dead letter %d topic = %s", i, m.Topic)
		}
		checks := map[string]string{
			HeaderStage: b.stage, HeaderClass: b.class, HeaderField: b.field, HeaderTopic: testTopicName,
			HeaderPartition: "3", HeaderOffset: fmt.Sprint(badOffsets[i]), HeaderMapping: "views", HeaderGroup: "test-group",
			"trace": "t-1",
		}
		for k, want := range checks {
			if got := header(m, k); got != want {
				t.Errorf("dead letter %d header %s = %q, want %q", i, k, got, want)
			}
		}
		if r := header(m, HeaderReason); !strings.Contains(r, b.reasonPart) {
			t.Errorf("dead letter %d reason %q lacks %q", i, r, b.reasonPart)
		}
		if v, _ := m.Value.Encode(); string(v) != string(b.value) {
			t.Errorf("dead letter %d value = %q, want the source value", i, v)
		}
		if k, _ := m.Key.Encode(); string(k) != "k" {
			t.Errorf("dead letter %d key = %q", i, k)
		}
		dl, err := ParseDeadLetter(toRecordHeaders(m.Headers))
		if err != nil || dl.Offset != badOffsets[i] || dl.Partition != 3 || dl.Class != b.class {
			t.Errorf("ParseDeadLetter = %+v, %v", dl, err)
		}
	}
	for _, c := range []struct{ stage, class string }{{StageDecode, "malformed_json"}, {StageMap, "unknown_entity_type"}, {StageStore, ClassNonConforming}} {
		if got := testutil.ToFloat64(h.p.m.deadLetters.WithLabelValues(testTopicName, c.stage, c.class)); got != 1 {
			t.Errorf("dead_letters_total{%s,%s} = %v", c.stage, c.class, got)
		}
	}
	// The good records around the refused one are written.
	state := dumpState(t, h.store, []string{"u0", "u1"}, []string{"i0", "i1"})
	for _, e := range good {
		if !strings.Contains(state, fmt.Sprintf("edge user:%s->item:%s", e.User, e.Item)) {
			t.Errorf("state lacks the edge of %s:\n%s", e.ID, state)
		}
	}
}

func toRecordHeaders(hs []sarama.RecordHeader) []*sarama.RecordHeader {
	out := make([]*sarama.RecordHeader, len(hs))
	for i := range hs {
		out[i] = &hs[i]
	}
	return out
}

// TestWorkerBackpressure: while the store fails the worker stops reading its
// claim, so the claim's buffer stays full and nothing more is decoded or
// mapped; once the store recovers everything is written.
func TestWorkerBackpressure(t *testing.T) {
	h := newHarness(t, nil)
	defer h.close()
	h.writer.failNext.Store(1 << 40)
	sess := newFakeSession(context.Background())
	claim := newFakeClaim(testTopicName, 0, 0, 5)
	done := h.consume(sess, claim)

	evs := viewEvents(15, 3, 3, base)
	for i := range 10 {
		claim.ch <- record(testTopicName, 0, int64(i), evs[i].User, evs[i].value())
	}
	waitFor(t, "the store write to be retried", 5*time.Second, func() bool { return h.writer.calls.Load() >= 5 })
	for i := 10; i < 15; i++ {
		claim.ch <- record(testTopicName, 0, int64(i), evs[i].User, evs[i].value()) // fills the buffer of 5
	}
	calls := h.writer.calls.Load()
	waitFor(t, "more retries", 5*time.Second, func() bool { return h.writer.calls.Load() >= calls+5 })
	if got := len(claim.ch); got != 5 {
		t.Errorf("claim buffer holds %d records during the stall, want 5 (the worker must not read)", got)
	}
	if got := h.mapper.calls.Load(); got != 10 {
		t.Errorf("mapper called %d times during the stall, want 10", got)
	}
	if got := testutil.ToFloat64(h.p.m.stalled); got != 1 {
		t.Errorf("stalled_partitions = %v, want 1", got)
	}
	if got := sess.markedOffset(0); got != 0 {
		t.Errorf("marked %d while the store fails", got)
	}
	h.writer.failNext.Store(0)
	waitFor(t, "the stalled batch to be marked", 5*time.Second, func() bool { return sess.markedOffset(0) == 10 })
	close(claim.ch)
	<-done
	if got := sess.markedOffset(0); got != 15 {
		t.Errorf("marked = %d, want 15", got)
	}
	if got := testutil.ToFloat64(h.p.m.stalls.WithLabelValues(targetStore)); got != 1 {
		t.Errorf("stalls_total{store} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.p.m.stalled); got != 0 {
		t.Errorf("stalled_partitions = %v after recovery", got)
	}
	if got := testutil.ToFloat64(h.p.m.stallSeconds.WithLabelValues(targetStore)); got <= 0 {
		t.Errorf("stall_seconds_total{store} = %v", got)
	}
}

func TestWorkerRetriesTransientFailures(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(h *harness)
		target string
	}{
		{"mapper", func(h *harness) { h.mapper.failNext.Store(3) }, targetMapper},
		{"store", func(h *harness) { h.writer.failNext.Store(3) }, targetStore},
		{"dead letter topic", func(h *harness) { h.dlq.failNext = 3 }, targetDeadLetter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			defer h.close()
			tt.setup(h)
			sess := newFakeSession(context.Background())
			claim := newFakeClaim(testTopicName, 0, 0, 16)
			done := h.consume(sess, claim)
			evs := viewEvents(3, 2, 2, base)
			for i, e := range evs {
				claim.ch <- record(testTopicName, 0, int64(i), e.User, e.value())
			}
			claim.ch <- record(testTopicName, 0, 3, "k", []byte("not json"))
			close(claim.ch)
			<-done
			if got := sess.markedOffset(0); got != 4 {
				t.Fatalf("marked = %d, want 4", got)
			}
			if got := testutil.ToFloat64(h.p.m.stalls.WithLabelValues(tt.target)); got != 1 {
				t.Errorf("stalls_total{%s} = %v, want 1", tt.target, got)
			}
			if got := len(h.dlq.messages()); got != 1 {
				t.Errorf("dead letters = %d, want 1", got)
			}
			if got := h.writer.muts.Load(); got != 9 {
				t.Errorf("mutations = %d, want 9", got)
			}
		})
	}
}

func TestWorkerDeadLetterTooLargeIsSentWithoutValue(t *testing.T) {
	h := newHarness(t, nil)
	defer h.close()
	h.dlq.tooLarge = true
	sess := newFakeSession(context.Background())
	claim := newFakeClaim(testTopicName, 0, 0, 4)
	done := h.consume(sess, claim)
	claim.ch <- record(testTopicName, 0, 0, "k", []byte("{broken"))
	close(claim.ch)
	<-done
	sent := h.dlq.messages()
	if len(sent) != 1 || sent[0].Value != nil || header(sent[0], HeaderValueOmitted) != "too_large" || header(sent[0], HeaderOffset) != "0" {
		t.Fatalf("sent = %+v", sent)
	}
	if sess.markedOffset(0) != 1 {
		t.Errorf("marked = %d", sess.markedOffset(0))
	}
}

// TestWorkerLostPartitionMarksNothing: when the session ends because the
// member lost its generation, the batch is dropped, a write in progress is
// cancelled, and no offset is marked.
func TestWorkerLostPartitionMarksNothing(t *testing.T) {
	for _, writing := range []bool{false, true} {
		t.Run(fmt.Sprintf("writing=%v", writing), func(t *testing.T) {
			h := newHarness(t, nil)
			defer h.close()
			if writing {
				h.writer.block = make(chan struct{}) // never closed: the write hangs
			}
			sctx, lose := context.WithCancelCause(context.Background())
			sess := newFakeSession(sctx)
			claim := newFakeClaim(testTopicName, 0, 0, 16)
			done := h.consume(sess, claim)
			n := 3
			if writing {
				n = 10 // a full batch: the worker is inside Apply
			}
			for i, e := range viewEvents(n, 2, 2, base) {
				claim.ch <- record(testTopicName, 0, int64(i), e.User, e.value())
			}
			if writing {
				waitFor(t, "the write to start", 5*time.Second, func() bool { return h.writer.calls.Load() == 1 })
			} else {
				waitFor(t, "the records to be mapped", 5*time.Second, func() bool { return h.mapper.calls.Load() == 3 })
			}
			lose(sarama.ErrUnknownMemberId)
			<-done
			if sess.marks != 0 {
				t.Errorf("%d offsets marked after the partition was lost", sess.marks)
			}
			if got := testutil.ToFloat64(h.p.m.partitionEvents.WithLabelValues("lost")); got != 1 {
				t.Errorf("partition_events{lost} = %v", got)
			}
			if got := testutil.ToFloat64(h.p.m.abandoned.WithLabelValues("lost")); got != 1 {
				t.Errorf("abandoned_batches{lost} = %v", got)
			}
			if _, ok := h.wm.get(0); ok {
				t.Error("a watermark was recorded for a lost partition")
			}
		})
	}
}

// TestWorkerStopFlushes: when the process stops, the session ends with the
// pipeline's own cancellation: the batch is written and marked.
func TestWorkerStopFlushes(t *testing.T) {
	h := newHarness(t, nil)
	sctx, endSession := context.WithCancel(h.r.consumeCtx)
	defer endSession()
	sess := newFakeSession(sctx)
	claim := newFakeClaim(testTopicName, 0, 40, 16)
	done := h.consume(sess, claim)
	for i, e := range viewEvents(3, 2, 2, base) {
		claim.ch <- record(testTopicName, 0, 40+int64(i), e.User, e.value())
	}
	waitFor(t, "the records to be mapped", 5*time.Second, func() bool { return h.mapper.calls.Load() == 3 })
	h.stop() // Run's ctx ends; the session context follows
	<-done
	h.r.stop(nil)
	if got := sess.markedOffset(0); got != 43 {
		t.Errorf("marked = %d, want 43", got)
	}
	if got := testutil.ToFloat64(h.p.m.flushes.WithLabelValues("stop")); got != 1 {
		t.Errorf("flushes{stop} = %v", got)
	}
	if wm, ok := h.wm.get(0); !ok || wm.Offset != 43 {
		t.Errorf("watermark on stop = %+v, %v", wm, ok)
	}
	if h.r.incomplete || h.r.fatal != nil {
		t.Errorf("run state after clean stop: incomplete=%v fatal=%v", h.r.incomplete, h.r.fatal)
	}
}

// TestWorkerDrainTimeout: a store that stays down during the stop makes the
// worker give up its batch after DrainTimeout, unmarked, and the run report
// an incomplete drain.
func TestWorkerDrainTimeout(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Config.DrainTimeout = 50 * time.Millisecond })
	h.writer.failNext.Store(1 << 40)
	sctx, endSession := context.WithCancel(h.r.consumeCtx)
	defer endSession()
	sess := newFakeSession(sctx)
	claim := newFakeClaim(testTopicName, 0, 0, 16)
	done := h.consume(sess, claim)
	for i, e := range viewEvents(3, 2, 2, base) {
		claim.ch <- record(testTopicName, 0, int64(i), e.User, e.value())
	}
	waitFor(t, "the records to be mapped", 5*time.Second, func() bool { return h.mapper.calls.Load() == 3 })
	h.stop()
	<-done
	defer h.r.stop(nil)
	if sess.marks != 0 {
		t.Errorf("marked %d offsets of an unwritten batch", sess.marks)
	}
	if !h.r.incomplete {
		t.Error("run state does not record the incomplete drain")
	}
	if got := testutil.ToFloat64(h.p.m.abandoned.WithLabelValues("drain_timeout")); got != 1 {
		t.Errorf("abandoned_batches{drain_timeout} = %v", got)
	}
}

// TestWorkerPermanentStoreErrorStopsPipeline: a store error that is neither
// transient nor a schema refusal stops the pipeline with the batch unmarked.
func TestWorkerPermanentStoreErrorStopsPipeline(t *testing.T) {
	h := newHarness(t, nil)
	defer h.close()
	fatal := fmt.Errorf("embedded: apply: %w", graph.ErrClosed)
	h.writer.fatal.Store(&fatal)
	sess := newFakeSession(h.r.consumeCtx)
	claim := newFakeClaim(testTopicName, 0, 0, 16)
	done := h.consume(sess, claim)
	for i, e := range viewEvents(10, 2, 2, base) {
		claim.ch <- record(testTopicName, 0, int64(i), e.User, e.value())
	}
	<-done
	if sess.marks != 0 {
		t.Errorf("marked %d offsets", sess.marks)
	}
	if !errors.Is(h.r.fatal, graph.ErrClosed) {
		t.Errorf("fatal = %v, want graph.ErrClosed", h.r.fatal)
	}
	if !errors.Is(context.Cause(h.r.consumeCtx), graph.ErrClosed) {
		t.Errorf("consumption not stopped: cause %v", context.Cause(h.r.consumeCtx))
	}
	if h.writer.calls.Load() != 1 {
		t.Errorf("a permanent error was retried: %d calls", h.writer.calls.Load())
	}
}

func TestWorkerFoldsAndChunks(t *testing.T) {
	var folded [][]graph.Mutation
	var mu sync.Mutex
	h := newHarness(t, func(o *Options) {
		o.Config.MaxApplyMutations = 4
		o.Fold = func(ms []graph.Mutation) []graph.Mutation {
			mu.Lock()
			folded = append(folded, ms)
			mu.Unlock()
			// Keep the edges only: enough to see Fold's result is what is written.
			var out []graph.Mutation
			for _, m := range ms {
				if m.Op == graph.OpUpsertEdge {
					out = append(out, m)
				}
			}
			return out
		}
	})
	defer h.close()
	sess := newFakeSession(context.Background())
	claim := newFakeClaim(testTopicName, 0, 0, 16)
	done := h.consume(sess, claim)
	for i, e := range viewEvents(10, 5, 5, base) {
		claim.ch <- record(testTopicName, 0, int64(i), e.User, e.value())
	}
	close(claim.ch)
	<-done
	if len(folded) != 1 || len(folded[0]) != 30 {
		t.Fatalf("fold saw %d batches (%v)", len(folded), len(folded))
	}
	if got := h.writer.muts.Load(); got != 10 {
		t.Errorf("wrote %d mutations, want the 10 Fold kept", got)
	}
	if got := h.writer.calls.Load(); got != 3 {
		t.Errorf("Apply calls = %d, want 3 chunks of at most 4", got)
	}
}

func TestLagMetric(t *testing.T) {
	h := newHarness(t, nil)
	defer h.close()
	sess := newFakeSession(context.Background())
	claim := newFakeClaim(testTopicName, 7, sarama.OffsetOldest, 32)
	claim.hwm.Store(130)
	done := h.consume(sess, claim)
	for i, e := range viewEvents(10, 2, 2, base) {
		claim.ch <- record(testTopicName, 7, 100+int64(i), e.User, e.value())
	}
	waitFor(t, "the batch to be marked", 5*time.Second, func() bool { return sess.markedOffset(7) == 110 })
	want := `
# HELP rtgraph_ingest_consumer_lag Records of an owned partition not yet written: high-water mark minus the next offset to write.
# TYPE rtgraph_ingest_consumer_lag gauge
rtgraph_ingest_consumer_lag{partition="7",topic="views"} 20
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "rtgraph_ingest_consumer_lag"); err != nil {
		t.Error(err)
	}
	close(claim.ch)
	<-done
	if n, err := testutil.GatherAndCount(h.reg, "rtgraph_ingest_consumer_lag"); err != nil || n != 0 {
		t.Errorf("lag series after revocation = %d, %v; want none", n, err)
	}
}

func TestWatermarkFailureDoesNotStall(t *testing.T) {
	h := newHarness(t, nil)
	defer h.close()
	h.wm.fail = true
	sess := newFakeSession(context.Background())
	claim := newFakeClaim(testTopicName, 0, 0, 16)
	done := h.consume(sess, claim)
	for i, e := range viewEvents(4, 2, 2, base) {
		claim.ch <- record(testTopicName, 0, int64(i), e.User, e.value())
	}
	close(claim.ch)
	<-done
	if sess.markedOffset(0) != 4 {
		t.Errorf("marked = %d", sess.markedOffset(0))
	}
	// One after the batch, one more at the revocation: each failure is
	// retried by the next record, never in a loop.
	if got := testutil.ToFloat64(h.p.m.watermarkErrors); got != 2 {
		t.Errorf("watermark_errors_total = %v, want 2", got)
	}
}
