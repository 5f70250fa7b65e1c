package enrich

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// sarama's metrics registry starts one meter ticker shared by all clients, for good.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestConfigValidate(t *testing.T) {
	ok := CacheConfig{Name: "titles", Topic: "meta.titles"}
	tests := []struct {
		name string
		cfg  Config
		want string // substring; "" means valid
	}{
		{"defaults", DefaultConfig(), ""},
		{"one cache", Config{IdleProbe: time.Second, Caches: []CacheConfig{ok}}, ""},
		{"idle probe", Config{Caches: []CacheConfig{ok}}, "enrich.idle_probe: must be positive"},
		{"bad name", Config{IdleProbe: time.Second, Caches: []CacheConfig{{Name: "Titles", Topic: "t"}}}, "enrich.caches[0].name"},
		{"duplicate name", Config{IdleProbe: time.Second, Caches: []CacheConfig{ok, ok}}, `enrich.caches[1].name: "titles" is also enrich.caches[0].name`},
		{"no topic", Config{IdleProbe: time.Second, Caches: []CacheConfig{{Name: "a"}}}, "enrich.caches[0].topic: required"},
		{"negative size", Config{IdleProbe: time.Second, Caches: []CacheConfig{{Name: "a", Topic: "t", Size: -1}}}, "enrich.caches[0].size"},
		{"negative document limit", Config{IdleProbe: time.Second, Caches: []CacheConfig{{Name: "a", Topic: "t", MaxDocumentBytes: -1}}}, "enrich.caches[0].max_document_bytes"},
		{"too many caches", Config{IdleProbe: time.Second, Caches: make([]CacheConfig, MaxCaches+1)}, "enrich.caches: 65 caches"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestDecodeDocument(t *testing.T) {
	doc, err := DecodeDocument([]byte(`{"i":12,"f":1.5,"e":1e2,"big":123456789012345678901234567890,"huge":1e400,"s":"x","n":null,"b":true,"a":[1,{"x":2.5}],"o":{"y":3}}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"i": int64(12), "f": 1.5, "e": float64(100), "big": 1.2345678901234568e+29, "huge": "1e400",
		"s": "x", "n": nil, "b": true, "a": []any{int64(1), map[string]any{"x": 2.5}}, "o": map[string]any{"y": int64(3)}}
	if got, exp := dumpAny(doc), dumpAny(want); got != exp {
		t.Errorf("got  %s\nwant %s", got, exp)
	}
	if _, ok := doc["i"].(int64); !ok {
		t.Errorf("integer decoded as %T", doc["i"])
	}
	errTests := []struct {
		name  string
		value string
		limit int
		want  error
	}{
		{"array", `[1]`, 0, ErrNotObject},
		{"string", `"x"`, 0, ErrNotObject},
		{"null", `null`, 0, ErrNotObject},
		{"broken", `{"a":`, 0, ErrInvalidJSON},
		{"trailing data", `{"a":1} {"b":2}`, 0, ErrInvalidJSON},
		{"too large", `{"a":"0123456789"}`, 10, ErrTooLarge},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeDocument([]byte(tt.value), tt.limit); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// dumpAny prints v with its types; fmt sorts map keys, so equal values
// print alike.
func dumpAny(v any) string { return fmt.Sprintf("%#v", v) }

func TestRecordKey(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
		ok   bool
	}{
		{nil, "", false},
		{[]byte{}, "", false},
		{[]byte("t-1"), "t-1", true},
		{[]byte(`"t-1"`), "t-1", true},
		{[]byte(`"t-\u00e9"`), "t-é", true},
		{[]byte(`""`), `""`, true},
		{[]byte(`"unterminated`), `"unterminated`, true},
		{[]byte(`{"id":1}`), `{"id":1}`, true},
	}
	for _, tt := range tests {
		got, ok := RecordKey(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("RecordKey(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func newTestEnricher(t *testing.T, reg prometheus.Registerer, caches ...CacheConfig) *Enricher {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Caches = caches
	sc := sarama.NewConfig()
	sc.Version = sarama.V4_0_0_0
	e, err := New(cfg, []string{"127.0.0.1:1"}, sc, reg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCacheApply(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newTestEnricher(t, reg, CacheConfig{Name: "titles", Topic: "meta.titles", MaxDocumentBytes: 64})
	c, ok := e.Cache("titles")
	if !ok || c.Name() != "titles" {
		t.Fatal("cache titles missing")
	}
	steps := []struct {
		key, value string
		wantErr    error
		wantDoc    string // "" = absent
	}{
		{"t1", `{"name":"One"}`, nil, "One"},
		{`"t1"`, `{"name":"Uno"}`, nil, "Uno"}, // a JSON string key is the same key
		{"t1", "", nil, ""},                    // tombstone
		{"t1", `{"name":"Again"}`, nil, "Again"},
		{"t1", `[1,2]`, ErrNotObject, ""}, // unusable latest value removes the key
		{"t2", `{"name":"Two"}`, nil, "Two"},
		{"t2", `{"name":"` + strings.Repeat("x", 64) + `"}`, ErrTooLarge, ""},
		{"", `{"name":"none"}`, ErrNoKey, ""},
	}
	for i, s := range steps {
		var key []byte
		if s.key != "" {
			key = []byte(s.key)
		}
		var value []byte
		if s.value != "" {
			value = []byte(s.value)
		}
		err := c.Apply(key, value)
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
			t.Fatalf("step %d: Apply error %v, want %v", i, err, s.wantErr)
		}
		if s.key == "" {
			continue
		}
		k, _ := RecordKey(key)
		doc, ok := e.Get("titles", k)
		switch {
		case s.wantDoc == "" && ok:
			t.Fatalf("step %d: %s present: %v", i, k, doc)
		case s.wantDoc != "" && (!ok || doc["name"] != s.wantDoc):
			t.Fatalf("step %d: %s = %v, %v; want name %q", i, k, doc, ok, s.wantDoc)
		}
	}
	records := map[prometheus.Counter]float64{c.stats.upserts: 4, c.stats.deletes: 1, c.stats.invalid: 3}
	for ctr, want := range records {
		if got := testutil.ToFloat64(ctr); got != want {
			t.Errorf("%s = %v, want %v", ctr.Desc(), got, want)
		}
	}
	if _, ok := e.Get("nope", "t1"); ok {
		t.Error("an unknown cache answered")
	}
	if !e.Has("titles") || e.Has("nope") {
		t.Error("Has is wrong")
	}
}

func TestCacheEvictionPolicy(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newTestEnricher(t, reg, CacheConfig{Name: "small", Topic: "t", Size: 2})
	c, _ := e.Cache("small")
	put := func(k string) {
		if err := c.Apply([]byte(k), []byte(`{"k":"`+k+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	put("a")
	put("b")
	if _, ok := c.Get("zz"); ok {
		t.Fatal("zz found")
	}
	if c.Evictions() != 0 {
		t.Fatal("evicted without exceeding the size")
	}
	if _, ok := c.Get("a"); !ok { // a is now the most recently used
		t.Fatal("a missing")
	}
	put("c") // evicts b, the least recently used
	if c.Evictions() != 1 || c.Len() != 2 {
		t.Fatalf("evictions %d len %d", c.Evictions(), c.Len())
	}
	if _, ok := c.Get("b"); ok {
		t.Fatal("b survived eviction")
	}
	want := `
# HELP rtgraph_enrich_entries Documents a cache holds.
# TYPE rtgraph_enrich_entries gauge
rtgraph_enrich_entries{cache="small"} 2
# HELP rtgraph_enrich_evictions_total Documents pushed out of a cache by its size limit. Any eviction makes later misses unreliable: raise the size.
# TYPE rtgraph_enrich_evictions_total counter
rtgraph_enrich_evictions_total{cache="small"} 1
# HELP rtgraph_enrich_lookups_total Cache lookups by result: hit, miss, or miss_after_eviction (the cache has evicted, so the key may exist on the topic).
# TYPE rtgraph_enrich_lookups_total counter
rtgraph_enrich_lookups_total{cache="small",result="hit"} 1
rtgraph_enrich_lookups_total{cache="small",result="miss"} 1
rtgraph_enrich_lookups_total{cache="small",result="miss_after_eviction"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rtgraph_enrich_entries", "rtgraph_enrich_evictions_total", "rtgraph_enrich_lookups_total"); err != nil {
		t.Error(err)
	}
}

func TestNewErrors(t *testing.T) {
	sc := sarama.NewConfig()
	sc.Version = sarama.V4_0_0_0
	old := sarama.NewConfig()
	old.Version = sarama.V3_9_0_0
	one := Config{IdleProbe: time.Second, Caches: []CacheConfig{{Name: "a", Topic: "t"}}}
	tests := []struct {
		name    string
		cfg     Config
		brokers []string
		sc      *sarama.Config
		log     *slog.Logger
		want    string
	}{
		{"invalid config", Config{}, nil, nil, quietLog(), "enrich.idle_probe"},
		{"nil logger", one, []string{"x:1"}, sc, nil, "nil logger"},
		{"no brokers", one, nil, sc, quietLog(), "no Kafka connection"},
		{"no sarama config", one, []string{"x:1"}, nil, quietLog(), "no Kafka connection"},
		{"old protocol", one, []string{"x:1"}, old, quietLog(), "older than 4.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, tt.brokers, tt.sc, prometheus.NewRegistry(), tt.log)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	reg := prometheus.NewRegistry()
	if _, err := New(one, []string{"x:1"}, sc, reg, quietLog()); err != nil {
		t.Fatal(err)
	}
	if _, err := New(one, []string{"x:1"}, sc, reg, quietLog()); err == nil || !strings.Contains(err.Error(), "register metrics") {
		t.Fatalf("second New on one registry: got %v", err)
	}
	if sc.Consumer.IsolationLevel != sarama.ReadUncommitted || sc.Consumer.Return.Errors {
		t.Error("New modified the caller's sarama config")
	}
}

func TestRunWithoutCaches(t *testing.T) {
	e, err := New(DefaultConfig(), nil, nil, prometheus.NewRegistry(), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	if err := e.WaitLoaded(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestWaitLoadedCancelled(t *testing.T) {
	e := newTestEnricher(t, prometheus.NewRegistry(), CacheConfig{Name: "a", Topic: "t"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.WaitLoaded(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

// TestRunCannotConnect: Run fails, and WaitLoaded reports Run's error
// rather than waiting for ever.
func TestRunCannotConnect(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Caches = []CacheConfig{{Name: "a", Topic: "t"}}
	sc := sarama.NewConfig()
	sc.Version = sarama.V4_0_0_0
	sc.Metadata.Retry.Max = 0
	sc.Net.DialTimeout = time.Second
	// Port 1 on the loopback refuses connections at once.
	e, err := New(cfg, []string{"127.0.0.1:1"}, sc, prometheus.NewRegistry(), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	runErr := e.Run(context.Background())
	if runErr == nil || !strings.Contains(runErr.Error(), "enrich: connect") {
		t.Fatalf("Run: %v", runErr)
	}
	if err := e.WaitLoaded(context.Background()); !errors.Is(err, runErr) {
		t.Fatalf("WaitLoaded: %v, want Run's error", err)
	}
}
