package normalize

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// benchShapes are the message shapes measured, each a real sample from
// testdata (see docs/bench-normalize.md for the figures).
var benchShapes = []struct {
	name  string
	cfg   Config
	value string // file under testdata/
	key   string // file under testdata/, optional
}{
	{"debezium/wrapped-mysql-update", Config{Format: FormatDebezium, KeyFields: []string{"id"}}, "debezium/mysql-schema-1.9.5-rw-06-update-1004.json", ""},
	{"debezium/wrapped-pg-update", Config{Format: FormatDebezium, KeyFields: []string{"id"}}, "debezium/pg-schema-1.2.1-flink-10-update-with-before-106.json", ""},
	{"debezium/wrapped-pg-decimal-microts", Config{Format: FormatDebezium, KeyFields: []string{"payment_id"}}, "debezium/pg-schema-1.0.1-read-snapshot-last-decimal-microts.json", ""},
	{"debezium/wrapped-mysql-delete-wrapped-key", Config{Format: FormatDebezium}, "debezium/mysql-schema-2.7-delete-ts_us-ts_ns-1004.json", "debezium/mysql-schema-2.7-key-customers-1004.json"},
	{"debezium/schemaless-mysql-update", Config{Format: FormatDebezium, KeyFields: []string{"id"}}, "debezium/mysql-noschema-1.9.5-rw-08-update-1005.json", ""},
	{"debezium/flattened-wrapped-pg", Config{Format: FormatDebezium, KeyFields: []string{"c_id"}}, "debezium/pg-unwrapped-schema-read-json-microts-zonedts-__source_lsn.json", ""},
	{"debezium/flattened-schemaless-pg", Config{Format: FormatDebezium, KeyFields: []string{"order_id"}}, "debezium/own-flattened-noschema-pg-update-ts_ns.json", ""},
	{"debezium/tombstone", Config{Format: FormatDebezium}, "", "debezium/mysql-schema-2.7-key-customers-1004.json"},
	{"request_log/ad-impression", Config{Format: FormatRequestLog, EntityType: "impression", KeyFields: []string{"user.id", "campaign_id"}, RequestLog: RequestLogConfig{IDField: "request_id", TimeField: "timestamp"}}, "requestlog/ad-impression.json", ""},
}

func readBench(b *testing.B, name string) []byte {
	b.Helper()
	if name == "" {
		return nil
	}
	v, err := os.ReadFile("testdata/" + name)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkDecode measures Decode per shape with a warm schema cache, the
// steady state of a topic.
func BenchmarkDecode(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			d, err := New(s.cfg)
			if err != nil {
				b.Fatal(err)
			}
			msg := Message{Topic: "bench", Value: readBench(b, s.value), Key: readBench(b, s.key)}
			if _, err := d.Decode(msg); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(msg.Value) + len(msg.Key)))
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				if _, err := d.Decode(msg); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}

// BenchmarkDecodeSchemaMiss measures a wrapped event whose schema is not
// cached: two schemas alternate through a one-entry cache, so every decode
// parses its schema. It is the cost of the first message after a DDL change.
func BenchmarkDecodeSchemaMiss(b *testing.B) {
	d, err := New(Config{Format: FormatDebezium, KeyFields: []string{"id"}, SchemaCacheSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	msgs := []Message{
		{Topic: "bench", Value: readBench(b, "debezium/mysql-schema-1.9.5-rw-06-update-1004.json")},
		{Topic: "bench", Value: readBench(b, "debezium/pg-schema-1.2.1-flink-10-update-with-before-106.json")},
	}
	b.SetBytes(int64(len(msgs[0].Value)+len(msgs[1].Value)) / 2)
	b.ReportAllocs()
	cpu := startCPU()
	i := 0
	for b.Loop() {
		if _, err := d.Decode(msgs[i&1]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	cpu.report(b)
}

// BenchmarkEncodingJSONMap is the reference DESIGN.md measures against:
// encoding/json decoding the whole value into map[string]any, with no
// interpretation at all.
func BenchmarkEncodingJSONMap(b *testing.B) {
	for _, s := range benchShapes {
		if s.value == "" {
			continue
		}
		b.Run(s.name, func(b *testing.B) {
			v := readBench(b, s.value)
			b.SetBytes(int64(len(v)))
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				var m map[string]any
				if err := json.Unmarshal(v, &m); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}

// cpuMeter reports the process CPU time per op ("cpu-ns/op"), garbage
// collection included, next to the wall time testing measures.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuMeter {
	t, ok := processCPU()
	return cpuMeter{start: t, ok: ok}
}

func (m cpuMeter) report(b *testing.B) {
	end, ok := processCPU()
	if !m.ok || !ok || b.N == 0 {
		return
	}
	b.ReportMetric(float64(end-m.start)/float64(b.N), "cpu-ns/op")
}
