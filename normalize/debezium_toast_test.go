package normalize

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// capturedRecords reads a JSONL capture of real connector records (one
// {"key","value","o","p","ts"} object a line) as messages of topic.
func capturedRecords(t *testing.T, file, topic string) []Message {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "debezium-3.6", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Message
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Key   json.RawMessage `json:"key"`
			Value json.RawMessage `json:"value"`
			P     int32           `json:"p"`
			O     int64           `json:"o"`
			TS    time.Time       `json:"ts"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		m := Message{Topic: topic, Partition: rec.P, Offset: rec.O, Key: rec.Key, Timestamp: rec.TS}
		if string(rec.Value) != "null" {
			m.Value = rec.Value
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTombstoneDeletesDropped: on a flattened topic whose rows carry no
// __deleted (a connector that kept the older delete.handling.mode, which
// Debezium 3 ignores), every tombstone is marked as the only record of a
// delete; with __deleted rows, or before any row, or with
// tombstone_deletes, none is.
func TestTombstoneDeletesDropped(t *testing.T) {
	type result struct {
		offset  int64
		op      Op
		dropped bool
	}
	decodeAll := func(t *testing.T, cfg Config, msgs []Message) []result {
		t.Helper()
		d, err := New(cfg, WithClock(testClock))
		if err != nil {
			t.Fatal(err)
		}
		var out []result
		for _, m := range msgs {
			envs, err := d.Decode(m)
			checkDecodeResult(t, envs, err)
			if err != nil {
				t.Fatalf("offset %d: %v", m.Offset, err)
			}
			for _, e := range envs {
				if e.Op == OpTombstone || e.DeletesDropped || e.Op == OpDelete {
					out = append(out, result{m.Offset, e.Op, e.DeletesDropped})
				}
			}
		}
		return out
	}
	cfg := Config{Format: FormatDebezium, EntityType: "device", KeyFields: []string{"device_id"}}
	g := capturedRecords(t, "g.public.devices.jsonl", "g.public.devices")

	got := decodeAll(t, cfg, g)
	want := []result{{6, OpTombstone, true}, {7, OpTombstone, true}, {9, OpTombstone, true}, {11, OpTombstone, true}}
	if !slices.Equal(got, want) {
		t.Errorf("g.public.devices: got %v, want %v", got, want)
	}

	tsDeletes := cfg
	tsDeletes.Debezium.TombstoneDeletes = true
	got = decodeAll(t, tsDeletes, g)
	want = []result{{6, OpDelete, false}, {7, OpDelete, false}, {9, OpDelete, false}, {11, OpDelete, false}}
	if !slices.Equal(got, want) {
		t.Errorf("g.public.devices with tombstone_deletes: got %v, want %v", got, want)
	}

	// A tombstone before any row: nothing says yet how the topic is built.
	got = decodeAll(t, cfg, []Message{g[6], g[0], g[7]})
	want = []result{{6, OpTombstone, false}, {7, OpTombstone, true}}
	if !slices.Equal(got, want) {
		t.Errorf("tombstone first: got %v, want %v", got, want)
	}

	// The rewrite connector: deletes are rows with __deleted "true"; a
	// tombstone after such rows (as rewrite-with-tombstone sends) is the
	// ordinary one that follows a delete.
	f := capturedRecords(t, "f.public.devices.jsonl", "f.public.devices")
	got = decodeAll(t, cfg, append(f, Message{Topic: "f.public.devices", Offset: 99, Key: []byte(`{"device_id":"d3"}`), Timestamp: f[0].Timestamp}))
	for _, r := range got {
		if r.dropped {
			t.Errorf("f.public.devices offset %d: marked deletes_dropped", r.offset)
		}
	}
	if len(got) == 0 || got[len(got)-1] != (result{99, OpTombstone, false}) {
		t.Errorf("f.public.devices: got %v, want deletes and a final plain tombstone", got)
	}
}

// TestUnavailablePlaceholderForms checks the forms the placeholder takes
// and the ones it does not, in every shape.
func TestUnavailablePlaceholderForms(t *testing.T) {
	const p, b64 = DefaultUnavailableValuePlaceholder, "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="
	custom := "~"
	tests := []struct {
		name    string
		cfg     DebeziumConfig
		value   string
		want    []string
		present []string // attributes that must stay
	}{
		{"schemaless text, bytes, list", DebeziumConfig{},
			`{"before":null,"after":{"id":1,"a":"` + p + `","b":"` + b64 + `","c":["` + p + `"],"d":["` + p + `",1],"e":"x"},"source":{"name":"s","table":"t","ts_ms":1700000000000,"lsn":5},"op":"u"}`,
			[]string{"a", "b", "c"}, []string{"d", "e", "id"}},
		{"flattened", DebeziumConfig{},
			`{"id":1,"a":"` + p + `","__op":"u","__lsn":7,"__source_ts_ms":1700000000000}`,
			[]string{"a"}, []string{"id"}},
		{"flattened, create carries it too", DebeziumConfig{},
			`{"id":1,"a":"` + p + `","__op":"c","__lsn":7,"__source_ts_ms":1700000000000}`,
			[]string{"a"}, []string{"id"}},
		{"wrapped: text field takes the text only", DebeziumConfig{},
			`{"schema":{"type":"struct","fields":[{"type":"string","field":"op"},{"type":"struct","fields":[],"field":"source"},{"type":"struct","fields":[{"type":"int32","field":"id"},{"type":"string","field":"a"},{"type":"bytes","field":"b"},{"type":"string","field":"c"},{"type":"bytes","field":"d"}],"field":"after"}]},"payload":{"op":"u","source":{"ts_ms":1700000000000,"lsn":9},"after":{"id":1,"a":"` + p + `","b":"` + b64 + `","c":"` + b64 + `","d":"` + p + `"}}}`,
			[]string{"a", "b"}, []string{"c", "d", "id"}},
		{"flattened with schema: bytes field takes the base64 text only", DebeziumConfig{},
			`{"schema":{"type":"struct","fields":[{"type":"int32","field":"id"},{"type":"bytes","field":"b"},{"type":"string","field":"a"},{"type":"array","items":{"type":"bytes"},"field":"bs"},{"type":"string","field":"__op"},{"type":"int64","field":"__lsn"},{"type":"int64","field":"__source_ts_ms"}]},"payload":{"id":1,"b":"` + b64 + `","a":"` + b64 + `","bs":["` + b64 + `","` + b64 + `"],"__op":"u","__lsn":7,"__source_ts_ms":1700000000000}}`,
			[]string{"b", "bs"}, []string{"a", "id"}},
		{"custom placeholder", DebeziumConfig{UnavailableValuePlaceholder: &custom},
			`{"id":1,"a":"~","b":"` + p + `","__op":"u","__lsn":7,"__source_ts_ms":1700000000000}`,
			[]string{"a"}, []string{"b", "id"}},
		{"a delete's image is never checked", DebeziumConfig{},
			`{"id":1,"a":"` + p + `","__op":"d","__deleted":"true","__lsn":7,"__source_ts_ms":1700000000000}`,
			nil, []string{"a", "id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(Config{Format: FormatDebezium, KeyFields: []string{"id"}, Debezium: tt.cfg}, WithClock(testClock))
			if err != nil {
				t.Fatal(err)
			}
			envs, err := d.Decode(Message{Topic: "t", Value: []byte(tt.value), Timestamp: time.Unix(1700000000, 0)})
			checkDecodeResult(t, envs, err)
			if err != nil {
				t.Fatal(err)
			}
			e := envs[0]
			if !slices.Equal(e.Unavailable, tt.want) {
				t.Errorf("unavailable %v, want %v", e.Unavailable, tt.want)
			}
			for _, name := range tt.want {
				if _, ok := e.Attributes[name]; ok {
					t.Errorf("attribute %s still present", name)
				}
			}
			for _, name := range tt.present {
				if _, ok := e.Attributes[name]; !ok {
					t.Errorf("attribute %s missing", name)
				}
			}
		})
	}
}

func TestValidateUnavailable(t *testing.T) {
	base := func() Envelope {
		return Envelope{ID: "x", Kind: KindCDC, Op: OpUpdate, EntityType: "t", Key: "1",
			EventTime: time.Unix(1, 0), IngestTime: time.Unix(2, 0), Version: Version{Scheme: VersionOffset},
			Attributes: map[string]any{"id": 1}, Origin: Origin{Topic: "t"}}
	}
	for _, tt := range []struct {
		name string
		edit func(*Envelope)
		ok   bool
	}{
		{"sorted", func(e *Envelope) { e.Unavailable = []string{"a", "b"} }, true},
		{"unsorted", func(e *Envelope) { e.Unavailable = []string{"b", "a"} }, false},
		{"repeated", func(e *Envelope) { e.Unavailable = []string{"a", "a"} }, false},
		{"also an attribute", func(e *Envelope) { e.Unavailable = []string{"id"} }, false},
		{"on a delete", func(e *Envelope) { e.Op = OpDelete; e.Unavailable = []string{"a"} }, false},
		{"deletes dropped on an update", func(e *Envelope) { e.DeletesDropped = true }, false},
	} {
		e := base()
		tt.edit(&e)
		if err := e.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
	}
}
