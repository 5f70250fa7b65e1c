package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtgraph/rtgraph/internal/lifecycle"
)

// limitProducer behaves like sarama's producer in front of a topic: records
// over clientMax are refused by the client (a ConfigurationError, as
// sarama's size check returns), records over brokerMax by the broker
// (MESSAGE_TOO_LARGE), records matching refuse by the broker with that
// error; transient makes that many whole calls fail.
type limitProducer struct {
	mu        sync.Mutex
	clientMax int
	brokerMax int
	refuse    func(*sarama.ProducerMessage) error
	transient int
	calls     int
	sent      []*sarama.ProducerMessage
}

func (p *limitProducer) SendMessages(msgs []*sarama.ProducerMessage) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.transient > 0 {
		p.transient--
		var errs sarama.ProducerErrors
		for _, m := range msgs {
			errs = append(errs, &sarama.ProducerError{Msg: m, Err: sarama.ErrNotEnoughReplicas})
		}
		return errs
	}
	var errs sarama.ProducerErrors
	for _, m := range msgs {
		size := m.ByteSize(2)
		switch {
		case p.clientMax > 0 && size > p.clientMax:
			errs = append(errs, &sarama.ProducerError{Msg: m, Err: sarama.ConfigurationError(
				fmt.Sprintf("Attempt to produce message larger than configured Producer.MaxMessageBytes: %d > %d", size, p.clientMax))})
		case p.brokerMax > 0 && size > p.brokerMax:
			errs = append(errs, &sarama.ProducerError{Msg: m, Err: sarama.ErrMessageSizeTooLarge})
		case p.refuse != nil && p.refuse(m) != nil:
			errs = append(errs, &sarama.ProducerError{Msg: m, Err: p.refuse(m)})
		default:
			p.sent = append(p.sent, m)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (p *limitProducer) Close() error { return nil }

func (p *limitProducer) messages() []*sarama.ProducerMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*sarama.ProducerMessage(nil), p.sent...)
}

func srcRecord(offset int64, key, value []byte) *sarama.ConsumerMessage {
	return &sarama.ConsumerMessage{
		Topic: testTopicName, Partition: 3, Offset: offset, Key: key, Value: value, Timestamp: base,
		Headers: []*sarama.RecordHeader{{Key: []byte("trace"), Value: []byte("t-1")}},
	}
}

func bytesOf(b sarama.Encoder) []byte {
	if b == nil {
		return nil
	}
	out, _ := b.Encode()
	return out
}

// TestDeadLetterSenderDegrades: each way a dead letter can be refused for
// good ends with one acknowledged record that says what was left out and
// how to find it; nothing is retried forever.
func TestDeadLetterSenderDegrades(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 2<<20)
	cause := Cause{Stage: StageDecode, Class: "malformed_json", Reason: "invalid character 'x'"}
	cases := []struct {
		name      string
		prod      *limitProducer
		maxBytes  int
		key, val  []byte
		wantWhy   string // HeaderValueOmitted ("" = value kept)
		wantKey   bool   // key kept
		wantHdrs  bool   // source headers kept
		wantError bool   // HeaderOmitError set
		wantNowTS bool   // timestamp replaced by the time of dead-lettering
		wantCalls int
	}{
		{name: "fits", prod: &limitProducer{}, maxBytes: 1 << 20, key: []byte("k"), val: []byte("{bad"),
			wantKey: true, wantHdrs: true, wantCalls: 1},
		{name: "over the producer limit, caught before sending", prod: &limitProducer{clientMax: 1 << 20}, maxBytes: 1 << 20,
			key: []byte("k"), val: big, wantWhy: OmitTooLarge, wantKey: true, wantHdrs: true, wantCalls: 1},
		{name: "refused by the client", prod: &limitProducer{clientMax: 1 << 20}, maxBytes: 4 << 20,
			key: []byte("k"), val: big, wantWhy: OmitTooLarge, wantKey: true, wantHdrs: true, wantError: true, wantCalls: 2},
		{name: "refused by the topic as too large", prod: &limitProducer{brokerMax: 512 << 10}, maxBytes: 4 << 20,
			key: []byte("k"), val: big, wantWhy: OmitTooLarge, wantKey: true, wantHdrs: true, wantError: true, wantCalls: 2},
		{name: "key too large as well", prod: &limitProducer{}, maxBytes: 64 << 10,
			key: big[:1<<20], val: big, wantWhy: OmitTooLarge, wantCalls: 1},
		{name: "key too large for the topic", prod: &limitProducer{brokerMax: 64 << 10}, maxBytes: 4 << 20,
			key: big[:1<<20], val: []byte("v"), wantWhy: OmitTooLarge, wantError: true, wantCalls: 3},
		{name: "invalid timestamp", prod: &limitProducer{refuse: func(m *sarama.ProducerMessage) error {
			if m.Timestamp.Equal(base) {
				return sarama.ErrInvalidTimestamp
			}
			return nil
		}}, maxBytes: 1 << 20, key: []byte("k"), val: []byte("{bad"),
			wantWhy: OmitRefused, wantKey: true, wantHdrs: true, wantError: true, wantNowTS: true, wantCalls: 2},
	}
	at := base.Add(time.Hour)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &deadLetterSender{prod: tc.prod, topic: "rtgraph.dlq", group: "g", maxBytes: tc.maxBytes}
			o := &outgoing{src: srcRecord(42, tc.key, tc.val), cause: cause}
			if err := s.send([]*outgoing{o}, at); err != nil {
				t.Fatalf("send: %v", err)
			}
			if !o.done {
				t.Fatal("not marked done")
			}
			sent := tc.prod.messages()
			if len(sent) != 1 {
				t.Fatalf("sent %d records, want 1", len(sent))
			}
			if tc.prod.calls != tc.wantCalls {
				t.Errorf("producer calls = %d, want %d", tc.prod.calls, tc.wantCalls)
			}
			m := sent[0]
			dl, err := ParseDeadLetter(toRecordHeaders(m.Headers))
			if err != nil {
				t.Fatal(err)
			}
			if dl.Topic != testTopicName || dl.Partition != 3 || dl.Offset != 42 || dl.Class != "malformed_json" {
				t.Errorf("coordinates = %s/%d@%d %s", dl.Topic, dl.Partition, dl.Offset, dl.Class)
			}
			if dl.ValueWhy != tc.wantWhy {
				t.Errorf("value omitted = %q, want %q", dl.ValueWhy, tc.wantWhy)
			}
			if tc.wantWhy == "" {
				if !bytes.Equal(bytesOf(m.Value), tc.val) {
					t.Error("value not kept")
				}
			} else {
				if m.Value != nil {
					t.Error("value sent")
				}
				if dl.ValueBytes != len(tc.val) || dl.ValueSHA256 != sha256Hex(tc.val) {
					t.Errorf("value size/hash = %d/%s", dl.ValueBytes, dl.ValueSHA256)
				}
			}
			if got := bytes.Equal(bytesOf(m.Key), tc.key); got != tc.wantKey {
				t.Errorf("key kept = %v, want %v", got, tc.wantKey)
			}
			if !tc.wantKey && (!dl.KeyOmitted || dl.KeyBytes != len(tc.key) || dl.KeySHA256 != sha256Hex(tc.key)) {
				t.Errorf("key headers = %v %d %s", dl.KeyOmitted, dl.KeyBytes, dl.KeySHA256)
			}
			if got := header(m, "trace") == "t-1"; got != tc.wantHdrs {
				t.Errorf("source headers kept = %v, want %v", got, tc.wantHdrs)
			}
			if dl.HeadersOmitted == tc.wantHdrs {
				t.Errorf("headers_omitted = %v", dl.HeadersOmitted)
			}
			if got := header(m, HeaderOmitError) != ""; got != tc.wantError {
				t.Errorf("omit_error present = %v (%q), want %v", got, header(m, HeaderOmitError), tc.wantError)
			}
			if got := m.Timestamp.Equal(at); got != tc.wantNowTS {
				t.Errorf("timestamp = %v", m.Timestamp)
			}
			if !dl.Timestamp.Equal(base) {
				t.Errorf("source timestamp header = %v, want %v", dl.Timestamp, base)
			}
			if m.ByteSize(2) > tc.maxBytes {
				t.Errorf("record is %d bytes, over %d", m.ByteSize(2), tc.maxBytes)
			}
		})
	}
}

// TestDeadLetterSenderTransient: transient failures are returned with the
// inner errors for the caller to retry; acknowledged records are not sent
// again; a record refused even bare stays a (retried) failure.
func TestDeadLetterSenderTransient(t *testing.T) {
	p := &limitProducer{transient: 2}
	s := &deadLetterSender{prod: p, topic: "rtgraph.dlq", group: "g", maxBytes: 1 << 20}
	outs := []*outgoing{
		{src: srcRecord(1, []byte("a"), []byte("{")), cause: Cause{Stage: StageDecode, Class: "malformed_json"}},
		{src: srcRecord(2, []byte("b"), []byte("{")), cause: Cause{Stage: StageDecode, Class: "malformed_json"}},
	}
	for i := range 2 {
		err := s.send(outs, base)
		var de *deadLetterError
		if !errors.As(err, &de) || !errors.Is(err, sarama.ErrNotEnoughReplicas) {
			t.Fatalf("attempt %d: err = %v, want a deadLetterError wrapping ErrNotEnoughReplicas", i, err)
		}
		if !strings.Contains(err.Error(), "2 dead letters not acknowledged") || !strings.Contains(err.Error(), "replicas") {
			t.Errorf("error text %q does not name the count and the inner error", err)
		}
	}
	if err := s.send(outs, base); err != nil {
		t.Fatal(err)
	}
	if err := s.send(outs, base); err != nil {
		t.Fatal(err)
	}
	if n := len(p.messages()); n != 2 {
		t.Fatalf("sent %d, want 2 (each once)", n)
	}

	never := &limitProducer{refuse: func(*sarama.ProducerMessage) error { return sarama.ErrPolicyViolation }}
	s = &deadLetterSender{prod: never, topic: "rtgraph.dlq", group: "g", maxBytes: 1 << 20}
	o := &outgoing{src: srcRecord(1, []byte("a"), []byte("{")), cause: Cause{Stage: StageDecode, Class: "malformed_json"}}
	err := s.send([]*outgoing{o}, base)
	if !errors.Is(err, errRefusedBare) || !errors.Is(err, sarama.ErrPolicyViolation) || o.done {
		t.Fatalf("err = %v, done = %v; want errRefusedBare wrapping the policy violation", err, o.done)
	}
	if o.level != levelBare {
		t.Errorf("level = %d, want bare", o.level)
	}
}

// TestClassifyProduceError pins which producer errors are permanent.
func TestClassifyProduceError(t *testing.T) {
	cases := []struct {
		err  error
		want produceFailure
	}{
		{sarama.ConfigurationError("Attempt to produce message larger than configured Producer.MaxMessageBytes"), failTooLarge},
		{sarama.ErrMessageSizeTooLarge, failTooLarge},
		{sarama.ErrMessageSetSizeTooLarge, failTooLarge},
		{fmt.Errorf("wrapped: %w", sarama.ErrMessageSizeTooLarge), failTooLarge},
		{sarama.ErrInvalidTimestamp, failRefused},
		{sarama.ErrInvalidRecord, failRefused},
		{sarama.ErrInvalidMessage, failRefused},
		{sarama.ErrPolicyViolation, failRefused},
		{sarama.ErrNotEnoughReplicas, failTransient},
		{sarama.ErrNotLeaderForPartition, failTransient},
		{sarama.ErrRequestTimedOut, failTransient},
		{sarama.ErrTopicAuthorizationFailed, failTransient},
		{sarama.ErrOutOfBrokers, failTransient},
		{context.DeadlineExceeded, failTransient},
	}
	for _, tc := range cases {
		if got := classifyProduceError(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestWorkerDeadLetterOverProducerLimitMovesOn: a 2 MiB record that the
// dead-letter producer refuses on the client side is dead-lettered without
// its value, the partition goes on to the records behind it, and the
// metrics count it once.
func TestWorkerDeadLetterOverProducerLimitMovesOn(t *testing.T) {
	h := newHarness(t, nil)
	defer h.close()
	lp := &limitProducer{clientMax: 1 << 20}
	h.r.dlq = lp
	h.r.dlqMaxBytes = 4 << 20 // larger than the client's: the refusal path, not the pre-check
	sess := newFakeSession(context.Background())
	claim := newFakeClaim(testTopicName, 0, 0, 8)
	done := h.consume(sess, claim)
	claim.ch <- record(testTopicName, 0, 0, "k", bytes.Repeat([]byte("z"), 2<<20))
	evs := viewEvents(3, 2, 2, base)
	for i, e := range evs {
		claim.ch <- record(testTopicName, 0, int64(i+1), e.User, e.value())
	}
	close(claim.ch)
	<-done
	sent := lp.messages()
	if len(sent) != 1 || sent[0].Value != nil || header(sent[0], HeaderValueOmitted) != OmitTooLarge ||
		header(sent[0], HeaderValueBytes) != fmt.Sprint(2<<20) {
		t.Fatalf("dead letters = %d, value omitted %q", len(sent), header(sent[0], HeaderValueOmitted))
	}
	if got := sess.markedOffset(0); got != 4 {
		t.Errorf("marked = %d, want 4 (the records behind the large one consumed)", got)
	}
	if got := testutil.ToFloat64(h.p.m.deadLetters.WithLabelValues(testTopicName, StageDecode, "malformed_json")); got != 1 {
		t.Errorf("dead_letters_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.p.m.omitted.WithLabelValues(OmitTooLarge)); got != 1 {
		t.Errorf("values omitted = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.p.m.stalls.WithLabelValues(targetDeadLetter)); got != 0 {
		t.Errorf("stalls = %v, want 0: a permanent refusal is not a stall", got)
	}
}

// TestWorkerStallIsVisible: a partition retrying its dead letters shows in
// StalledPartitions and /readyz detail (with the inner error) once it has
// stalled for StallTimeout, in the per-partition metric from the start, and
// leaves all three when it resumes; the record is then counted once.
func TestWorkerStallIsVisible(t *testing.T) {
	ready := lifecycle.NewReadiness()
	h := newHarness(t, func(o *Options) {
		o.Config.StallTimeout = 20 * time.Millisecond
		o.Readiness = ready
	})
	defer h.close()
	lp := &limitProducer{transient: 1 << 30}
	h.r.dlq = lp
	sess := newFakeSession(context.Background())
	claim := newFakeClaim(testTopicName, 2, 0, 8)
	done := h.consume(sess, claim)
	claim.ch <- record(testTopicName, 2, 0, "k", []byte("{broken"))
	close(claim.ch)

	probe := func() (int, string) {
		rec := httptest.NewRecorder()
		lifecycle.ReadyHandler(ready).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	waitFor(t, "stall reported", 10*time.Second, func() bool { return len(h.p.StalledPartitions()) == 1 })
	sp := h.p.StalledPartitions()[0]
	if sp.Topic != testTopicName || sp.Partition != 2 || sp.Target != targetDeadLetter || !strings.Contains(sp.Error, "replicas") {
		t.Errorf("stalled = %+v", sp)
	}
	code, body := probe()
	if code != http.StatusOK || !strings.Contains(body, `"stalled_partitions"`) || !strings.Contains(body, "replicas") {
		t.Errorf("/readyz = %d %s; want 200 with the stalled partition and its error", code, body)
	}
	if n := testutil.CollectAndCount(h.p.m.stalling, "rtgraph_ingest_partition_stalled_seconds"); n != 1 {
		t.Errorf("stalled-seconds series = %d, want 1", n)
	}

	lp.mu.Lock()
	lp.transient = 0
	lp.mu.Unlock()
	<-done
	if got := h.p.StalledPartitions(); len(got) != 0 {
		t.Errorf("still stalled after resuming: %+v", got)
	}
	if _, body := probe(); strings.Contains(body, "stalled_partitions") {
		t.Errorf("/readyz still reports a stall: %s", body)
	}
	if n := testutil.CollectAndCount(h.p.m.stalling, "rtgraph_ingest_partition_stalled_seconds"); n != 0 {
		t.Errorf("stalled-seconds series = %d after resuming, want 0", n)
	}
	if got := testutil.ToFloat64(h.p.m.deadLetters.WithLabelValues(testTopicName, StageDecode, "malformed_json")); got != 1 {
		t.Errorf("dead_letters_total = %v, want 1 (counted once, after the acknowledgement)", got)
	}
	if got := sess.markedOffset(2); got != 1 {
		t.Errorf("marked = %d, want 1", got)
	}
}
