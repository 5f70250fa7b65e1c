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
	"github.com/twmb/franz-go/pkg/kfake"

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

// omittedDeadLetter is the dead letter of src as the pipeline produces it
// when the value does not fit in maxBytes.
func omittedDeadLetter(t *testing.T, src *sarama.ConsumerMessage, maxBytes int) *sarama.ProducerMessage {
	t.Helper()
	s := &deadLetterSender{topic: "rtgraph.dlq", group: "g", maxBytes: maxBytes}
	o := &outgoing{src: src, cause: Cause{Stage: StageDecode, Class: "malformed_json", Reason: "x"}}
	s.build(o, base)
	if o.level == levelWhole {
		t.Fatal("value kept")
	}
	return o.pm
}

// TestReplayDLQUnreplayable: records that are not dead letters, and dead
// letters without their value whose source record is gone or differs, are
// counted unreplayable and published nowhere.
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
	// The source partition holds one record, at offset 0.
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: testTopicName, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder("{now-different")}); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("v"), 20<<10)
	past := &sarama.ConsumerMessage{Topic: testTopicName, Partition: 0, Offset: 5, Key: []byte("k"), Value: big}
	differs := &sarama.ConsumerMessage{Topic: testTopicName, Partition: 0, Offset: 0, Key: []byte("k"), Value: big}
	plain := &sarama.ProducerMessage{Topic: "rtgraph.dlq", Value: sarama.StringEncoder("not a dead letter")}
	if err := prod.SendMessages([]*sarama.ProducerMessage{
		omittedDeadLetter(t, past, minDeadLetterBytes), omittedDeadLetter(t, differs, minDeadLetterBytes), plain,
	}); err != nil {
		t.Fatal(err)
	}
	st, err := ReplayDLQ(context.Background(), kc, "rtgraph.dlq", ReplayOptions{})
	if err != nil || st.Unreplayable != 3 || st.Replayed != 0 {
		t.Fatalf("stats = %+v, %v; want 3 unreplayable", st, err)
	}
	if n := len(readAll(t, kc, testTopicName)); n != 1 {
		t.Errorf("source topic holds %d records, want 1 (nothing republished)", n)
	}
}

// TestReplayDLQReadsOmittedValuesFromSource: a dead letter that went
// without its value (and key and headers) is replayed by reading the source
// record back, checked by size and SHA-256, and republished byte for byte,
// in order with the others.
func TestReplayDLQReadsOmittedValuesFromSource(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "rtgraph.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kc := DefaultKafkaConfig()
	kc.Brokers = c.ListenAddrs()
	admin := newAdmin(t, kc)
	big := "4194304"
	if err := admin.CreateTopic(testTopicName, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"max.message.bytes": &big}}, false); err != nil {
		t.Fatal(err)
	}
	sc, err := producerConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.MaxMessageBytes = 4 << 20
	prod, err := sarama.NewSyncProducer(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	value := bytes.Repeat([]byte("garbage "), 2<<20/8)
	key := bytes.Repeat([]byte("K"), 64<<10)
	src := &sarama.ProducerMessage{Topic: testTopicName, Key: sarama.ByteEncoder(key), Value: sarama.ByteEncoder(value),
		Headers: []sarama.RecordHeader{{Key: []byte("trace"), Value: []byte("t-9")}}}
	if _, _, err := prod.SendMessage(src); err != nil {
		t.Fatal(err)
	}
	small := &sarama.ProducerMessage{Topic: testTopicName, Key: sarama.StringEncoder("s"), Value: sarama.StringEncoder("{small")}
	if _, _, err := prod.SendMessage(small); err != nil {
		t.Fatal(err)
	}
	consumed := readAll(t, kc, testTopicName)
	if len(consumed) != 2 {
		t.Fatalf("source holds %d records", len(consumed))
	}
	cause := Cause{Stage: StageDecode, Class: "malformed_json", Reason: "x"}
	dlBig := omittedDeadLetter(t, consumed[0], minDeadLetterBytes) // key too: bare
	dlSmall := deadLetterMessage("rtgraph.dlq", "g", consumed[1], cause, base)
	if header(dlBig, HeaderKeyOmitted) == "" {
		t.Fatal("key kept")
	}
	if err := prod.SendMessages([]*sarama.ProducerMessage{dlBig, dlSmall}); err != nil {
		t.Fatal(err)
	}

	st, err := ReplayDLQ(context.Background(), kc, "rtgraph.dlq", ReplayOptions{})
	if err != nil || st.Replayed != 2 || st.FromSource != 1 || st.Unreplayable != 0 {
		t.Fatalf("stats = %+v, %v; want 2 replayed, 1 from source", st, err)
	}
	back := readAll(t, kc, testTopicName)
	if len(back) != 4 {
		t.Fatalf("source topic holds %d records, want 4", len(back))
	}
	got := back[2]
	if !bytes.Equal(got.Value, value) || !bytes.Equal(got.Key, key) || len(got.Headers) != 1 || string(got.Headers[0].Value) != "t-9" {
		t.Errorf("replayed record differs: key %d bytes, value %d bytes, headers %v", len(got.Key), len(got.Value), got.Headers)
	}
	if string(back[3].Value) != "{small" {
		t.Errorf("order: record 3 = %q, want the small one after the large one", back[3].Value)
	}
}
