package ingest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/normalize"
)

// Hermetic tests of RewindGroup and ReplayDLQ against kfake.

func TestRewindGroupReDerivesTheSameGraph(t *testing.T) {
	kc := newKfake(t, 3)
	const users, items = 10, 10
	recs := mixedRecords(rand.New(rand.NewPCG(3, 3)), 900, users, items, base)
	produceRecords(t, kc, testTopicName, recs)
	want := referenceState(t, recs, users, items)
	store := memstore.New(testSchema(t), memstore.Options{})
	cfg := kafkaTestConfig("g-rewind", testTopicName, "rtgraph.dlq")

	r := startPipeline(t, cfg, kc, store, nil, &testMapper{})
	waitCommitted(t, kc, cfg.GroupID, testTopicName, time.Minute)
	// While a member runs, the group's offsets cannot be moved.
	if _, err := RewindGroup(context.Background(), kc, cfg.GroupID, []string{testTopicName}, base); !errors.Is(err, ErrGroupActive) {
		t.Fatalf("RewindGroup of an active group = %v, want ErrGroupActive", err)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := dumpState(t, store, names("u", users), names("i", items)); got != want {
		t.Fatalf("first pass differs from the reference")
	}
	committed, _ := offsets(t, kc, cfg.GroupID, testTopicName)

	// A time after every record moves nothing: rewinding never skips ahead.
	rw, err := RewindGroup(context.Background(), kc, cfg.GroupID, []string{testTopicName}, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range rw {
		if x.To != x.From || x.From != committed[x.Partition] {
			t.Errorf("rewind to the future moved %+v", x)
		}
	}

	to := recs[450].ts
	rw, err = RewindGroup(context.Background(), kc, cfg.GroupID, []string{testTopicName}, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(rw) != 3 {
		t.Fatalf("rewinds = %+v, want 3 partitions", rw)
	}
	after, _ := offsets(t, kc, cfg.GroupID, testTopicName)
	all := readAll(t, kc, testTopicName)
	replayed := 0
	for _, x := range rw {
		if after[x.Partition] != x.To || x.To >= x.From {
			t.Errorf("partition %d: rewind %+v, committed now %d", x.Partition, x, after[x.Partition])
		}
		// x.To is the first record of the partition at or after the time.
		for _, m := range all {
			if m.Partition != x.Partition {
				continue
			}
			if m.Offset < x.To && !m.Timestamp.Before(to) || m.Offset >= x.To && m.Timestamp.Before(to) {
				t.Errorf("partition %d: record %d at %s is on the wrong side of %s (rewound to %d)", x.Partition, m.Offset, m.Timestamp, to, x.To)
			}
		}
		replayed += int(x.From - x.To)
	}

	r = startPipeline(t, cfg, kc, store, nil, &testMapper{})
	waitCommitted(t, kc, cfg.GroupID, testTopicName, time.Minute)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	n := testutil.ToFloat64(r.p.m.messages.WithLabelValues(testTopicName, outcomeWritten)) +
		testutil.ToFloat64(r.p.m.messages.WithLabelValues(testTopicName, outcomeDeadLettered))
	if int(n) != replayed {
		t.Errorf("second run processed %v records, want the %d rewound", n, replayed)
	}
	if got := dumpState(t, store, names("u", users), names("i", items)); got != want {
		t.Fatalf("graph after rewind and replay differs from one pass:\n got:\n%s\nwant:\n%s", got, want)
	}
}

func TestRewindGroupArguments(t *testing.T) {
	kc := newKfake(t, 1)
	if _, err := RewindGroup(context.Background(), kc, "", []string{"t"}, base); err == nil {
		t.Error("empty group accepted")
	}
	if _, err := RewindGroup(context.Background(), kc, "g", nil, base); err == nil {
		t.Error("no topics accepted")
	}
	if _, err := RewindGroup(context.Background(), kc, "g", []string{"no-such-topic"}, base); err == nil {
		t.Error("unknown topic accepted")
	}
}

// fixedMapper is testMapper after a fix: unknown ops map as views.
type fixedMapper struct{ testMapper }

func (m *fixedMapper) Map(ctx context.Context, env *normalize.Envelope) ([]graph.Mutation, error) {
	if env.Attributes["op"] == opUnknown {
		env.Attributes["op"] = opView
	}
	return m.testMapper.Map(ctx, env)
}

func TestReplayDLQAfterFix(t *testing.T) {
	kc := newKfake(t, 3)
	const users, items = 10, 10
	recs := mixedRecords(rand.New(rand.NewPCG(4, 4)), 600, users, items, base)
	produceRecords(t, kc, testTopicName, recs)
	store := memstore.New(testSchema(t), memstore.Options{})
	cfg := kafkaTestConfig("g-replay", testTopicName, "rtgraph.dlq")

	r := startPipeline(t, cfg, kc, store, nil, &testMapper{})
	waitCommitted(t, kc, cfg.GroupID, testTopicName, time.Minute)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// What the graph must be once the unknown ops are replayed with the fix.
	fixed := make([]testRecord, len(recs))
	unknown := 0
	for i, rec := range recs {
		fixed[i] = rec
		if bytes.Contains(rec.value, []byte(`"op":"unknown"`)) {
			unknown++
			fixed[i].value = bytes.Replace(rec.value, []byte(`"op":"unknown"`), []byte(`"op":"view"`), 1)
		}
	}
	if unknown == 0 {
		t.Fatal("the workload has no unknown ops")
	}
	bad := 0
	for _, rec := range recs {
		if rec.bad {
			bad++
		}
	}
	dead := readAll(t, kc, "rtgraph.dlq")
	sources := map[string]int32{} // value -> source partition
	for _, m := range dead {
		dl, err := ParseDeadLetter(m.Headers)
		if err != nil {
			t.Fatal(err)
		}
		sources[string(m.Value)] = dl.Partition
	}

	st, err := ReplayDLQ(context.Background(), kc, "rtgraph.dlq", ReplayOptions{Classes: []string{"unknown_entity_type"}, BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	if st.Replayed != unknown || st.Skipped != bad-unknown || st.Unreplayable != 0 {
		t.Fatalf("stats = %+v, want %d replayed, %d skipped", st, unknown, bad-unknown)
	}
	// Replayed records are back in the partition they came from, as they were.
	back := readAll(t, kc, testTopicName)
	if len(back) != len(recs)+unknown {
		t.Fatalf("source topic holds %d records, want %d", len(back), len(recs)+unknown)
	}
	replayedSeen := 0
	for _, m := range back {
		if p, ok := sources[string(m.Value)]; ok && bytes.Contains(m.Value, []byte(`"op":"unknown"`)) {
			if m.Partition != p {
				t.Errorf("replayed record went to partition %d, came from %d", m.Partition, p)
			}
			replayedSeen++
		}
	}
	if replayedSeen != 2*unknown {
		t.Errorf("unknown-op records in the source topic = %d, want each twice (%d)", replayedSeen, 2*unknown)
	}
	for _, m := range back {
		for _, h := range m.Headers {
			if bytes.HasPrefix(h.Key, []byte(headerPrefix)) {
				t.Fatalf("replayed record carries dead-letter header %s", h.Key)
			}
		}
	}

	r = startPipeline(t, cfg, kc, store, nil, &fixedMapper{})
	waitCommitted(t, kc, cfg.GroupID, testTopicName, time.Minute)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if got, want := dumpState(t, store, names("u", users), names("i", items)), referenceState(t, fixed, users, items); got != want {
		t.Fatalf("graph after replay differs from the fixed reference:\n got:\n%s\nwant:\n%s", got, want)
	}

	// Progress is recorded: nothing more to replay, unless from the start.
	st, err = ReplayDLQ(context.Background(), kc, "rtgraph.dlq", ReplayOptions{Classes: []string{"unknown_entity_type"}})
	if err != nil || st.Replayed != 0 {
		t.Fatalf("second replay = %+v, %v; want nothing replayed", st, err)
	}
	st, err = ReplayDLQ(context.Background(), kc, "rtgraph.dlq", ReplayOptions{FromStart: true, Topics: []string{"other"}})
	if err != nil || st.Replayed != 0 || st.Skipped != bad {
		t.Fatalf("replay of another topic = %+v, %v; want all %d skipped", st, err, bad)
	}
}

func TestReplayDLQUnreplayable(t *testing.T) {
	kc := newKfake(t, 1)
	sc, err := producerConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := sarama.NewSyncProducer(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	src := &sarama.ConsumerMessage{Topic: testTopicName, Partition: 0, Offset: 5, Key: []byte("k"), Value: []byte("v")}
	omitted := omitValue(deadLetterMessage("rtgraph.dlq", "g", src, Cause{Stage: StageDecode, Class: "malformed_json", Reason: "x"}, base))
	plain := &sarama.ProducerMessage{Topic: "rtgraph.dlq", Value: sarama.StringEncoder("not a dead letter")}
	if err := prod.SendMessages([]*sarama.ProducerMessage{omitted, plain}); err != nil {
		t.Fatal(err)
	}
	st, err := ReplayDLQ(context.Background(), kc, "rtgraph.dlq", ReplayOptions{})
	if err != nil || st.Unreplayable != 2 || st.Replayed != 0 {
		t.Fatalf("stats = %+v, %v; want 2 unreplayable", st, err)
	}
}
