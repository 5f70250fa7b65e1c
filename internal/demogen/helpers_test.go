package demogen

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/rtgraph/rtgraph/normalize"
	"github.com/rtgraph/rtgraph/schemas/demo"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// sarama's metrics registry starts one meter ticker shared by all clients, for good.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeClock starts at a fixed instant and moves by step at every reading.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func newClock(start time.Time, step time.Duration) *fakeClock {
	return &fakeClock{t: start, step: step}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

var testStart = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func testConfig(clock func() time.Time) Config {
	c := DefaultConfig()
	c.Accounts = 40
	c.AnonymousUsers = 20
	c.Titles = 20
	c.Campaigns = 4
	c.Clock = clock
	return c
}

// capture is a Producer that keeps what it is sent. fail, when set, may
// fail messages of an attempt (it sees the attempt's number).
type capture struct {
	mu       sync.Mutex
	attempts int
	msgs     []*sarama.ProducerMessage
	fail     func(attempt int, msgs []*sarama.ProducerMessage) sarama.ProducerErrors
}

func (c *capture) SendMessages(msgs []*sarama.ProducerMessage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts++
	var errs sarama.ProducerErrors
	if c.fail != nil {
		errs = c.fail(c.attempts, msgs)
	}
	failed := map[*sarama.ProducerMessage]bool{}
	for _, e := range errs {
		failed[e.Msg] = true
	}
	for _, m := range msgs {
		if !failed[m] {
			c.msgs = append(c.msgs, m)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (c *capture) records() []*sarama.ProducerMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*sarama.ProducerMessage(nil), c.msgs...)
}

func newGen(t *testing.T, cfg Config, p Producer) *Generator {
	t.Helper()
	g, err := New(cfg, p, quietLog(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// steps runs n steps of a generator that has begun, as Run would between
// publishes, and returns their records.
func steps(t *testing.T, g *Generator, n int) []record {
	t.Helper()
	if err := g.begin(); err != nil {
		t.Fatal(err)
	}
	var out []record
	for range n {
		out = append(out, g.step()...)
	}
	return out
}

// decoders are the demo vertical's decoders, one per event topic.
func decoders(t *testing.T) map[string]normalize.Decoder {
	t.Helper()
	v, err := demo.Load()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]normalize.Decoder{}
	for _, tp := range v.Topics {
		d, err := normalize.New(tp.Decoder)
		if err != nil {
			t.Fatal(err)
		}
		out[tp.Topic] = d
	}
	return out
}

func message(r record, offset int64) normalize.Message {
	return normalize.Message{Topic: r.topic, Offset: offset, Key: r.key, Value: r.value, Timestamp: r.at}
}

func fromSarama(t *testing.T, m *sarama.ProducerMessage) record {
	t.Helper()
	r := record{topic: m.Topic, at: m.Timestamp}
	var err error
	if m.Key != nil {
		if r.key, err = m.Key.Encode(); err != nil {
			t.Fatal(err)
		}
	}
	if m.Value != nil {
		if r.value, err = m.Value.Encode(); err != nil {
			t.Fatal(err)
		}
	}
	if mr, ok := m.Metadata.(*record); ok {
		r.kind, r.class = mr.kind, mr.class
	}
	return r
}
