package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/goleak"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/normalize"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		// This binary was started by startChild as an ingest process.
		os.Exit(childMain(spec))
	}
	goleak.VerifyTestMain(m,
		// sarama's metrics registry starts a meter ticker shared by all clients.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}

// testSchema is testdata/schema: users view items.
func testSchema(tb fataler) *graph.Schema {
	s, err := graph.LoadSchema(os.DirFS("testdata/schema"), ".")
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// testTopic is the decoder configuration of the tests' input topics: JSON
// request logs keyed by user.
func testTopic() normalize.Config {
	return normalize.Config{
		Mapping:    "views",
		Format:     normalize.FormatRequestLog,
		EntityType: "view",
		KeyFields:  []string{"user"},
		RequestLog: normalize.RequestLogConfig{IDField: "id", TimeField: "ts", TimeFormat: normalize.TimeUnixMs},
	}
}

// Event ops understood by testMapper.
const (
	opView       = "view"        // upsert user, item and the viewed edge
	opUnview     = "unview"      // delete the viewed edge
	opDeleteUser = "delete_user" // delete the user node
	opUnknown    = "unknown"     // permanent classified mapping error
	opBadProp    = "bad_prop"    // maps to a mutation the schema refuses
)

// event is one test input record.
type event struct {
	ID   string
	At   time.Time
	Op   string
	User string
	Item string
	Ms   int
	Name string
}

func (e event) value() []byte {
	b, _ := json.Marshal(map[string]any{
		"id": e.ID, "ts": e.At.UnixMilli(), "op": e.Op, "user": e.User, "item": e.Item, "ms": e.Ms, "name": e.Name,
	})
	return b
}

// classifiedErr is a permanent mapping error naming its class.
type classifiedErr struct{ class, field string }

func (e *classifiedErr) Error() string             { return "test mapping: " + e.class }
func (e *classifiedErr) DeadLetterClass() string   { return e.class }
func (e *classifiedErr) DeadLetterField() string   { return e.field }
func (e *classifiedErr) DeadLetterMapping() string { return "views" }

// testMapper maps test events; failNext makes that many calls fail
// transiently first.
type testMapper struct {
	failNext atomic.Int64
	calls    atomic.Int64
}

func (m *testMapper) Map(ctx context.Context, env *normalize.Envelope) ([]graph.Mutation, error) {
	m.calls.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.failNext.Load() > 0 && m.failNext.Add(-1) >= 0 {
		return nil, &graph.RetryableError{Op: "enrich", Err: errors.New("cache not loaded")}
	}
	a := env.Attributes
	str := func(k string) string { s, _ := a[k].(string); return s }
	user := graph.NodeKey{Type: "user", ID: str("user")}
	item := graph.NodeKey{Type: "item", ID: str("item")}
	edge := graph.EdgeKey{Type: "viewed", From: user, To: item}
	t := env.EventTime
	switch str("op") {
	case opView:
		ms, _ := a["ms"].(int64)
		return []graph.Mutation{
			{Op: graph.OpUpsertNode, Node: user, Props: graph.Props{"name": str("name")}, EventTime: t},
			{Op: graph.OpUpsertNode, Node: item, Props: graph.Props{"title": "item " + item.ID}, EventTime: t},
			{Op: graph.OpUpsertEdge, Edge: edge, Props: graph.Props{"ms": ms}, EventTime: t},
		}, nil
	case opUnview:
		return []graph.Mutation{{Op: graph.OpDeleteEdge, Edge: edge, EventTime: t}}, nil
	case opDeleteUser:
		return []graph.Mutation{{Op: graph.OpDeleteNode, Node: user, EventTime: t}}, nil
	case opBadProp:
		return []graph.Mutation{{Op: graph.OpUpsertEdge, Edge: edge, Props: graph.Props{"colour": "red"}, EventTime: t}}, nil
	}
	return nil, &classifiedErr{class: "unknown_entity_type", field: "op"}
}

// flakyWriter is a Writer in front of a store that can fail on demand.
type flakyWriter struct {
	w        graph.Writer
	failNext atomic.Int64 // transient failures to return before writing
	fatal    atomic.Pointer[error]
	calls    atomic.Int64
	muts     atomic.Int64
	// block, when set, holds every Apply until it is closed or ctx ends.
	block chan struct{}
}

func (f *flakyWriter) Apply(ctx context.Context, muts []graph.Mutation) error {
	f.calls.Add(1)
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return &graph.RetryableError{Op: "apply", Err: ctx.Err()}
		}
	}
	if e := f.fatal.Load(); e != nil {
		return *e
	}
	if f.failNext.Load() > 0 && f.failNext.Add(-1) >= 0 {
		return &graph.RetryableError{Op: "apply", Err: errors.New("unavailable")}
	}
	if err := f.w.Apply(ctx, muts); err != nil {
		return err
	}
	f.muts.Add(int64(len(muts)))
	return nil
}

// fakeProducer records what it is sent; failNext makes that many sends fail.
type fakeProducer struct {
	mu       sync.Mutex
	sent     []*sarama.ProducerMessage
	failNext int
	tooLarge bool // refuse records with a value as too large
}

func (f *fakeProducer) SendMessages(msgs []*sarama.ProducerMessage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failNext > 0 {
		f.failNext--
		return errors.New("kafka: not leader")
	}
	var errs sarama.ProducerErrors
	for _, m := range msgs {
		if f.tooLarge && m.Value != nil {
			errs = append(errs, &sarama.ProducerError{Msg: m, Err: sarama.ErrMessageSizeTooLarge})
			continue
		}
		f.sent = append(f.sent, m)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (f *fakeProducer) Close() error { return nil }

func (f *fakeProducer) messages() []*sarama.ProducerMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

// fakeSession is a consumer group session whose context the test controls.
type fakeSession struct {
	ctx    context.Context
	mu     sync.Mutex
	marked map[int32]int64
	marks  int
}

func newFakeSession(ctx context.Context) *fakeSession {
	return &fakeSession{ctx: ctx, marked: map[int32]int64{}}
}

func (s *fakeSession) Claims() map[string][]int32 { return nil }
func (s *fakeSession) MemberID() string           { return "member" }
func (s *fakeSession) GenerationID() int32        { return 1 }
func (s *fakeSession) MarkOffset(_ string, p int32, off int64, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off > s.marked[p] {
		s.marked[p] = off
	}
	s.marks++
}
func (s *fakeSession) Commit()                                  {}
func (s *fakeSession) ResetOffset(string, int32, int64, string) {}
func (s *fakeSession) MarkMessage(m *sarama.ConsumerMessage, md string) {
	s.MarkOffset(m.Topic, m.Partition, m.Offset+1, md)
}
func (s *fakeSession) Context() context.Context { return s.ctx }

func (s *fakeSession) markedOffset(p int32) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.marked[p]
}

// fakeClaim is a claim fed by the test.
type fakeClaim struct {
	topic     string
	partition int32
	initial   int64
	hwm       atomic.Int64
	ch        chan *sarama.ConsumerMessage
}

func newFakeClaim(topic string, partition int32, initial int64, buffer int) *fakeClaim {
	return &fakeClaim{topic: topic, partition: partition, initial: initial, ch: make(chan *sarama.ConsumerMessage, buffer)}
}

func (c *fakeClaim) Topic() string                            { return c.topic }
func (c *fakeClaim) Partition() int32                         { return c.partition }
func (c *fakeClaim) InitialOffset() int64                     { return c.initial }
func (c *fakeClaim) HighWaterMarkOffset() int64               { return c.hwm.Load() }
func (c *fakeClaim) Messages() <-chan *sarama.ConsumerMessage { return c.ch }

// record is a consumer message at an offset.
func record(topic string, partition int32, offset int64, key string, value []byte) *sarama.ConsumerMessage {
	return &sarama.ConsumerMessage{
		Topic: topic, Partition: partition, Offset: offset,
		Key: []byte(key), Value: value, Timestamp: time.Unix(1_700_000_000, 0).UTC(),
	}
}

// fataler is what the helpers need of a *testing.T or a *rapid.T.
type fataler interface {
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// dumpState renders the whole graph reachable from the given users and items
// in a canonical text form, for comparing store states.
func dumpState(tb fataler, r graph.Reader, users, items []string) string {
	ctx := context.Background()
	var keys []graph.NodeKey
	for _, u := range users {
		keys = append(keys, graph.NodeKey{Type: "user", ID: u})
	}
	for _, i := range items {
		keys = append(keys, graph.NodeKey{Type: "item", ID: i})
	}
	nodes, err := r.GetNodes(ctx, keys)
	if err != nil {
		tb.Fatal(err)
	}
	var b strings.Builder
	for _, k := range keys {
		if n, ok := nodes[k]; ok {
			fmt.Fprintf(&b, "node %s %v @%d\n", k, map[string]any(n.Props), n.EventTime.UnixMicro())
		}
	}
	for _, u := range users {
		q := graph.AdjacencyQuery{Node: graph.NodeKey{Type: "user", ID: u}, EdgeType: "viewed", Direction: graph.Out, Order: graph.OrderKey, Limit: 100}
		for {
			page, err := r.Adjacency(ctx, q)
			if err != nil {
				tb.Fatal(err)
			}
			for _, e := range page.Edges {
				fmt.Fprintf(&b, "edge %s->%s %v @%d\n", e.Key.From, e.Key.To, map[string]any(e.Props), e.EventTime.UnixMicro())
			}
			if page.Next == nil {
				break
			}
			q.Cursor = page.Next
		}
	}
	return b.String()
}

// header returns the value of header k of a produced record.
func header(m *sarama.ProducerMessage, k string) string {
	for _, h := range m.Headers {
		if string(h.Key) == k {
			return string(h.Value)
		}
	}
	return ""
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testRecord is one input record of the mixed workloads.
type testRecord struct {
	key   string
	value []byte
	ts    time.Time // the record's Kafka timestamp
	bad   bool      // expected in the dead-letter topic
	class string    // the dead-letter class expected when bad
}

// mixedRecords returns n records over users u0..u(users-1) and items
// i0..i(items-1): mostly views, some unviews and user deletes, event times
// jittered out of order, and about 15% bad records of every kind (malformed
// JSON, a missing or unreadable time, unmappable ops, schema violations).
func mixedRecords(rnd *rand.Rand, n, users, items int, start time.Time) []testRecord {
	out := make([]testRecord, n)
	for i := range out {
		at := start.Add(time.Duration(i)*time.Millisecond + time.Duration(rnd.IntN(2000)-1000)*time.Millisecond)
		user := fmt.Sprintf("u%d", rnd.IntN(users))
		e := event{
			ID: fmt.Sprintf("r%d", i), At: at, Op: opView, User: user, Item: fmt.Sprintf("i%d", rnd.IntN(items)),
			Ms: rnd.IntN(1000), Name: fmt.Sprintf("name-%d", rnd.IntN(3)),
		}
		rec := testRecord{key: user, ts: start.Add(time.Duration(i) * time.Millisecond)}
		switch x := rnd.IntN(100); {
		case x < 5:
			rec.value, rec.bad, rec.class = []byte(fmt.Sprintf(`{"id":"r%d","ts":`, i)), true, "malformed_json"
		case x < 6:
			rec.value, rec.bad, rec.class = []byte(fmt.Sprintf(`{"id":"r%d","user":%q}`, i, user)), true, "missing_field" // no ts
		case x < 7:
			rec.value, rec.bad, rec.class = []byte(fmt.Sprintf(`{"id":"r%d","user":%q,"ts":"soon"}`, i, user)), true, "bad_time"
		case x < 11:
			e.Op, rec.bad, rec.class = opUnknown, true, "unknown_entity_type"
		case x < 15:
			e.Op, rec.bad, rec.class = opBadProp, true, ClassNonConforming
		case x < 25:
			e.Op = opUnview
		case x < 29:
			e.Op = opDeleteUser
		}
		if rec.value == nil {
			rec.value = e.value()
		}
		out[i] = rec
	}
	return out
}

// referenceState applies every record directly (decode, map, write), in
// order, to a fresh memstore: the state one pass of the pipeline must give.
func referenceState(tb fataler, recs []testRecord, users, items int) string {
	store := memstore.New(testSchema(tb), memstore.Options{})
	dec, err := normalize.New(testTopic())
	if err != nil {
		tb.Fatal(err)
	}
	m := &testMapper{}
	ctx := context.Background()
	for i, r := range recs {
		envs, err := dec.Decode(normalize.Message{Topic: "ref", Offset: int64(i), Key: []byte(r.key), Value: r.value, Timestamp: r.ts})
		if err != nil {
			continue
		}
		var muts []graph.Mutation
		for j := range envs {
			ms, err := m.Map(ctx, &envs[j])
			if err != nil {
				muts = nil
				break
			}
			muts = append(muts, ms...)
		}
		if len(muts) > 0 {
			_ = store.Apply(ctx, muts) // a schema refusal is a dead letter: nothing written
		}
	}
	return dumpState(tb, store, names("u", users), names("i", items))
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}
