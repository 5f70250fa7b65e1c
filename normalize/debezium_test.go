package normalize

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// env builds a schemaless MySQL-style envelope with overrides spliced in.
func env(op, extra string) string {
	return `{"before":null,"after":{"id":1,"name":"a"},"source":{"name":"srv","db":"inv","table":"t","ts_ms":1700000000000,"file":"mysql-bin.000001","pos":10,"row":0` + extra + `},"op":"` + op + `","ts_ms":1700000000500}`
}

// wrapped puts a payload under a minimal envelope schema whose after has a
// boolean column ok.
func wrapped(payload string) string {
	return `{"schema":{"type":"struct","fields":[{"type":"string","field":"op"},{"type":"struct","fields":[],"field":"source"},{"type":"struct","fields":[{"type":"int32","field":"id"},{"type":"boolean","field":"ok"}],"field":"after"}]},"payload":` + payload + `}`
}

const intKeySchema = `{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}]}`

func TestDebeziumDecodeErrors(t *testing.T) {
	withID := Config{Format: FormatDebezium, KeyFields: []string{"id"}}
	noKeys := Config{Format: FormatDebezium}
	tsDeletes := Config{Format: FormatDebezium, Debezium: DebeziumConfig{TombstoneDeletes: true}}
	tests := []struct {
		name   string
		cfg    Config
		value  string
		key    string
		class  ErrorClass
		field  string
		reason string
	}{
		{"whitespace value", withID, "  \n", "", ClassMalformedJSON, "value", "the value is only whitespace"},
		{"bad null literal", withID, "nul", "", ClassMalformedJSON, "value", "invalid literal"},
		{"null then garbage", withID, "null x", "", ClassMalformedJSON, "value", "trailing data"},
		{"array value", withID, `[1,2]`, "", ClassSchemaViolation, "", "the value is not a JSON object"},
		{"string value", withID, `"x"`, "", ClassSchemaViolation, "", "the value is not a JSON object"},
		{"broken array value", withID, `[1,`, "", ClassMalformedJSON, "value", "unexpected end of input"},
		{"bad first key", withID, `{1:2}`, "", ClassMalformedJSON, "value", "expected an object key"},
		{"trailing after object", withID, env("c", "") + ` x`, "", ClassMalformedJSON, "value", "trailing data"},
		{"schema truncated", withID, `{"schema":{"type":"struct"`, "", ClassMalformedJSON, "value", "unexpected end of input"},
		{"schema invalid inside", withID, `{"schema":{"type":"struct",},"payload":{}}`, "", ClassMalformedJSON, "schema", "expected an object key"},
		{"schema struct without fields", withID, `{"schema":{"type":"struct"},"payload":{}}`, "", ClassSchemaViolation, "schema", "struct schema without fields"},
		{"garbage after schema", withID, `{"schema":{"type":"struct","fields":[]} x`, "", ClassMalformedJSON, "value", "expected ',' or '}'"},
		{"payload not object", withID, `{"schema":null,"payload":5}`, "", ClassSchemaViolation, "payload", "the payload is not an object"},
		{"payload broken", withID, `{"schema":null,"payload":{"a":}}`, "", ClassMalformedJSON, "payload", "unexpected character '}'"},
		{"garbage after payload", withID, `{"schema":null,"payload":{}} x`, "", ClassMalformedJSON, "value", "trailing data"},
		{"before not object", withID, `{"before":5,"after":{"id":1},"source":{},"op":"c"}`, "", ClassSchemaViolation, "before", "the row image is not an object"},
		{"wrapped: source field not string", withID, wrapped(`{"after":{"id":1},"op":"c","source":{"ts_ms":1,"db":5}}`), "", ClassSchemaViolation, "source.db", "not a string"},
		{"wrapped: source lsn float", withID, wrapped(`{"after":{"id":1},"op":"c","source":{"ts_ms":1,"lsn":1.5}}`), "", ClassSchemaViolation, "source.lsn", "not an integer"},
		{"wrapped: source lsn beyond int64", withID, wrapped(`{"after":{"id":1},"op":"c","source":{"ts_ms":1,"lsn":99999999999999999999}}`), "", ClassSchemaViolation, "source.lsn", "not an integer"},
		{"wrapped: source ts object", withID, wrapped(`{"after":{"id":1},"op":"c","source":{"ts_ms":{}}}`), "", ClassSchemaViolation, "source.ts_ms", "not an integer"},
		{"wrapped: source ts broken", withID, wrapped(`{"after":{"id":1},"op":"c","source":{"ts_ms":-}}`), "", ClassMalformedJSON, "payload", "invalid number"},
		{"wrapped: op not string", withID, wrapped(`{"after":{"id":1},"op":1,"source":{"ts_ms":1}}`), "", ClassSchemaViolation, "op", "not a string"},
		{"wrapped: op null", withID, wrapped(`{"after":{"id":1},"op":null,"source":{"ts_ms":1}}`), "", ClassMissingField, "op", "the envelope has no op"},
		{"wrapped: op empty", withID, wrapped(`{"after":{"id":1},"op":"","source":{"ts_ms":1}}`), "", ClassUnsupportedOp, "op", `unknown op ""`},
		{"wrapped: ts_ms string", withID, wrapped(`{"after":{"id":1},"op":"c","source":{},"ts_ms":"1"}`), "", ClassSchemaViolation, "ts_ms", "not an integer"},
		{"wrapped: after not object", withID, wrapped(`{"after":[1],"op":"c","source":{"ts_ms":1}}`), "", ClassSchemaViolation, "after", "the row image is not an object"},
		{"wrapped: after column violates schema", withID, wrapped(`{"after":{"id":1,"ok":"yes"},"op":"c","source":{"ts_ms":1}}`), "", ClassSchemaViolation, "after.ok", "want a boolean"},
		{"wrapped: after broken", withID, wrapped(`{"after":{"id":1,"ok":},"op":"c","source":{"ts_ms":1}}`), "", ClassMalformedJSON, "payload", "unexpected character"},
		{"ts_ms not integer", withID, `{"after":{"id":1},"source":{},"op":"c","ts_ms":"x"}`, "", ClassSchemaViolation, "ts_ms", "not an integer"},
		{"op not string", withID, `{"after":{"id":1},"source":{},"op":1}`, "", ClassSchemaViolation, "op", "op is not a string"},
		{"no op", withID, `{"schema":{"type":"struct","fields":[{"type":"string","field":"op"},{"type":"struct","fields":[],"field":"source"}]},"payload":{"after":{"id":1},"source":{"ts_ms":1}}}`, "", ClassMissingField, "op", "the envelope has no op"},
		{"no source", withID, `{"schema":{"type":"struct","fields":[{"type":"string","field":"op"},{"type":"struct","fields":[],"field":"source"}]},"payload":{"after":{"id":1},"op":"c","source":null}}`, "", ClassMissingField, "source", "the envelope has no source block"},
		{"source not object", withID, `{"schema":{"type":"struct","fields":[{"type":"string","field":"op"},{"type":"struct","fields":[],"field":"source"}]},"payload":{"after":{"id":1},"op":"c","source":5}}`, "", ClassSchemaViolation, "source", "source is not an object"},
		{"after violates schema", withID, `{"schema":{"type":"struct","fields":[{"type":"string","field":"op"},{"type":"struct","fields":[],"field":"source"},{"type":"struct","fields":[{"type":"boolean","field":"ok"}],"field":"after"}]},"payload":{"after":{"id":1,"ok":"yes"},"op":"c","source":{"ts_ms":1}}}`, "", ClassSchemaViolation, "after.ok", "want a boolean"},
		{"before violates schema", withID, `{"schema":{"type":"struct","fields":[{"type":"string","field":"op"},{"type":"struct","fields":[],"field":"source"},{"type":"struct","fields":[{"type":"boolean","field":"ok"}],"field":"before"}]},"payload":{"before":{"id":1,"ok":"yes"},"op":"d","source":{"ts_ms":1}}}`, "", ClassSchemaViolation, "before.ok", "want a boolean"},
		{"envelope payload broken inside source", withID, `{"schema":{"type":"struct","fields":[{"type":"string","field":"op"},{"type":"struct","fields":[],"field":"source"}]},"payload":{"source":{"ts_ms":}}}`, "", ClassMalformedJSON, "payload", "unexpected character '}'"},
		{"source field not string", withID, env("c", `,"db":5`), "", ClassSchemaViolation, "source.db", "not a string"},
		{"source lsn not integer", withID, env("c", `,"lsn":"5"`), "", ClassSchemaViolation, "source.lsn", "not an integer"},
		{"schemaless: no op", withID, `{"before":null,"after":{"id":1,"name":"a"},"source":{"ts_ms":1,"lsn":5},"ts_ms":2}`, "", ClassMissingField, "op", "without op"},
		{"schemaless: no op, delete shape", withID, `{"before":{"id":1},"after":null,"source":{"ts_ms":1}}`, "", ClassMissingField, "op", "without op"},
		{"schemaless: no source", withID, `{"before":null,"after":{"id":1},"op":"u","ts_ms":2}`, "", ClassMissingField, "source", "without source"},
		{"reordered wrapper: no op", withID, `{"payload":{"after":{"id":1},"source":{"ts_ms":1}},"schema":null}`, "", ClassMissingField, "op", "without op"},
		{"unknown op", withID, env("x", ""), "", ClassUnsupportedOp, "op", `unknown op "x"`},
		{"message op", withID, env("m", ""), "", ClassUnsupportedOp, "op", "logical decoding message"},
		{"create without after", withID, `{"before":null,"after":null,"source":{"ts_ms":1},"op":"c"}`, "", ClassMissingField, "after", "op c without an after image"},
		{"negative source time", withID, env("c", `,"ts_us":-5`), "", ClassBadTime, "source.ts_ms", "negative timestamp"},
		{"source time beyond 9999", withID, env("c", `,"ts_ns":0,"ts_us":9223372036854775807`), "", ClassBadTime, "source.ts_ms", "beyond year 9999"},
		{"no time at all", withID, `{"after":{"id":1},"source":{"ts_ms":0},"op":"c"}`, "", ClassBadTime, "source.ts_ms", "no event time"},
		{"negative lsn", withID, `{"after":{"id":1},"source":{"ts_ms":1,"lsn":-1},"op":"c"}`, "", ClassSchemaViolation, "source.lsn", "negative LSN"},
		{"negative binlog position", withID, env("c", `,"pos":-1`), "", ClassSchemaViolation, "source.pos", "negative binlog position"},
		{"no key, no key fields", noKeys, env("c", ""), "", ClassMissingField, "key", "the record has no key"},
		{"empty key object", noKeys, env("c", ""), `{}`, ClassMissingField, "key", "empty object"},
		{"null key", noKeys, env("c", ""), `null`, ClassMissingField, "key", "the record has no key"},
		{"key not JSON", noKeys, env("c", ""), `****`, ClassMalformedJSON, "key", "unexpected character '*'"},
		{"key trailing data", noKeys, env("c", ""), `{"id":1} 2`, ClassMalformedJSON, "key", "trailing data"},
		{"scalar key trailing data", noKeys, env("c", ""), `1 2`, ClassMalformedJSON, "key", "trailing data"},
		{"key field not scalar", noKeys, env("c", ""), `{"id":{"a":1}}`, ClassSchemaViolation, "key.id", "a key value must be"},
		{"key field null", noKeys, env("c", ""), `{"id":null}`, ClassMissingField, "key.id", "null key value"},
		{"key empty string", noKeys, env("c", ""), `""`, ClassMissingField, "key", "empty key value"},
		{"wrapped key violates its schema", noKeys, env("c", ""), `{"schema":` + intKeySchema + `,"payload":{"id":"x"}}`, ClassSchemaViolation, "key.id", "want an integer"},
		{"wrapped key broken schema", noKeys, env("c", ""), `{"schema":{"type":"array"},"payload":{"id":1}}`, ClassSchemaViolation, "schema", "array schema without items"},
		{"wrapped key broken payload", noKeys, env("c", ""), `{"schema":` + intKeySchema + `,"payload":{"id":}}`, ClassMalformedJSON, "key", "unexpected character '}'"},
		{"wrapped key trailing data", noKeys, env("c", ""), `{"schema":` + intKeySchema + `,"payload":{"id":1}} x`, ClassMalformedJSON, "key", "trailing data"},
		{"key field missing everywhere", withID, `{"before":null,"after":{"name":"a"},"source":{"ts_ms":1},"op":"c"}`, `{"other":1}`, ClassMissingField, "key.id", "in neither the row image nor the message key"},
		{"key field needed from junk key", withID, `{"before":null,"after":{"name":"a"},"source":{"ts_ms":1},"op":"c"}`, `****`, ClassMalformedJSON, "key", "unexpected character"},
		{"flattened op not string", withID, `{"id":1,"__op":5,"__source_ts_ms":1}`, "", ClassSchemaViolation, "__op", "not a string"},
		{"flattened deleted not string", withID, `{"id":1,"__deleted":1,"__source_ts_ms":1}`, "", ClassSchemaViolation, "__deleted", "not a string or boolean"},
		{"flattened time not integer", withID, `{"id":1,"__source_ts_ms":"1"}`, "", ClassSchemaViolation, "__source_ts_ms", "not an integer"},
		{"flattened unknown op", withID, `{"id":1,"__op":"z","__source_ts_ms":1}`, "", ClassUnsupportedOp, "__op", `unknown op "z"`},
		{"flattened negative time", withID, `{"id":1,"__ts_ms":-1}`, "", ClassBadTime, "__ts_ms", "negative timestamp"},
		{"flattened negative lsn", withID, `{"id":1,"__lsn":-1,"__source_ts_ms":1}`, "", ClassSchemaViolation, "__lsn", "negative LSN"},
		{"flattened value violates schema", withID, `{"schema":` + intKeySchema + `,"payload":{"id":"x","__source_ts_ms":1}}`, "", ClassSchemaViolation, "id", "want an integer"},
		{"payload first, not an object", withID, `{"payload":5,"schema":null}`, "", ClassSchemaViolation, "payload", "the payload is not an object"},
		{"payload first, bad schema", withID, `{"payload":{},"schema":{"type":"struct"}}`, "", ClassSchemaViolation, "schema", "struct schema without fields"},
		{"payload first, value violates schema", withID, `{"payload":{"id":"x","__ts_ms":1},"schema":{"type":"struct","fields":[{"type":"int32","field":"id"}]}}`, "", ClassSchemaViolation, "id", "want an integer"},
		{"payload first, after violates schema", withID, `{"payload":{"after":{"id":"x"},"op":"c","source":{"ts_ms":1}},"schema":{"type":"struct","fields":[{"type":"string","field":"op"},{"type":"struct","fields":[],"field":"source"},{"type":"struct","fields":[{"type":"int32","field":"id"}],"field":"after"}]}}`, "", ClassSchemaViolation, "after.id", "want an integer"},
		{"payload first, before violates schema", withID, `{"payload":{"before":{"id":"x"},"op":"d","source":{"ts_ms":1}},"schema":{"type":"struct","fields":[{"type":"string","field":"op"},{"type":"struct","fields":[],"field":"source"},{"type":"struct","fields":[{"type":"int32","field":"id"}],"field":"before"}]}}`, "", ClassSchemaViolation, "before.id", "want an integer"},
		{"payload first, envelope source broken", withID, `{"payload":{"after":{"id":1},"op":"c","source":{"ts_ms":"x"}},"schema":null}`, "", ClassSchemaViolation, "source.ts_ms", "not an integer"},
		{"tombstone as delete without timestamp", tsDeletes, ``, `{"id":1}`, ClassBadTime, "", "needs the record's Kafka timestamp"},
		{"tombstone without key", withID, ``, ``, ClassMissingField, "key.id", `key field "id" is in neither`},
		{"tombstone without key or key fields", noKeys, ``, ``, ClassMissingField, "key", "the record has no key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(tt.cfg, WithClock(testClock))
			if err != nil {
				t.Fatal(err)
			}
			msg := Message{Topic: "tp", Offset: 7, Value: []byte(tt.value)}
			if tt.key != "" {
				msg.Key = []byte(tt.key)
			}
			envs, err := d.Decode(msg)
			checkDecodeResult(t, envs, err)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a %s error", err, tt.class)
			}
			if de.Class != tt.class || de.Field != tt.field || !strings.Contains(de.Reason, tt.reason) {
				t.Fatalf("got %s/%q/%q, want %s/%q/%q", de.Class, de.Field, de.Reason, tt.class, tt.field, tt.reason)
			}
		})
	}
}

func TestDebeziumDecodeShapes(t *testing.T) {
	d, err := New(Config{Format: FormatDebezium, KeyFields: []string{"id"}, Mapping: "m"}, WithClock(testClock))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		value   string
		op      Op
		entity  string
		evtTime string
		version Version
	}{
		{"schemaless envelope", env("u", ""), OpUpdate, "inv.t", "2023-11-14T22:13:20Z", Version{Scheme: VersionBinlog, File: "mysql-bin.000001", Pos: 10}},
		{"schema null wrapper", `{"schema":null,"payload":` + env("r", "") + `}`, OpRead, "inv.t", "2023-11-14T22:13:20Z", Version{Scheme: VersionBinlog, File: "mysql-bin.000001", Pos: 10}},
		{"wrapper with extra member is a row", `{"schema":null,"payload":{},"id":3,"__op":"c","__ts_ms":5}`, OpCreate, "tp", "1970-01-01T00:00:00.005Z", Version{Scheme: VersionOffset, Offset: 7}},
		{"schema first but not wrapper", `{"schema":"public","id":4,"__op":"u","__source_ts_us":1700000000000001,"__source_table":"x","__source_file":"b.1","__source_pos":3,"__source_row":2}`, OpUpdate, "x", "2023-11-14T22:13:20.000001Z", Version{Scheme: VersionBinlog, File: "b.1", Pos: 3, Row: 2}},
		{"flattened deleted bool", `{"id":5,"__deleted":true,"__source_ts_ns":1700000000000000001,"__source_lsn":99}`, OpDelete, "tp", "2023-11-14T22:13:20.000000001Z", Version{Scheme: VersionLSN, LSN: 99}},
		{"flattened truncate", `{"__op":"t","__table":"t","__db":"d","__ts_ms":1}`, OpTruncate, "d.t", "1970-01-01T00:00:00.001Z", Version{Scheme: VersionOffset, Offset: 7}},
		{"source time falls back to envelope", `{"after":{"id":1},"source":{"ts_ms":0},"op":"c","ts_us":1700000000000002}`, OpCreate, "tp", "2023-11-14T22:13:20.000002Z", Version{Scheme: VersionOffset, Offset: 7}},
		{"JSON null value is a tombstone", `null`, OpTombstone, "tp", "0001-01-01T00:00:00Z", Version{Scheme: VersionOffset, Offset: 7}},
		{"payload null with schema is a tombstone", `{"schema":` + intKeySchema + `,"payload":null}`, OpTombstone, "tp", "0001-01-01T00:00:00Z", Version{Scheme: VersionOffset, Offset: 7}},
		{"row with an object column named source", `{"id":1,"source":"old","source":{"x":1},"__op":"c","__source_ts_ms":1}`, OpCreate, "tp", "1970-01-01T00:00:00.001Z", Version{Scheme: VersionOffset, Offset: 7}},
		{"payload before schema", `{"payload":{"before":null,"after":{"id":1,"d":3},"source":{"ts_ms":5,"lsn":8},"op":"c"},"schema":{"type":"struct","fields":[{"type":"string","field":"op"},{"type":"struct","fields":[],"field":"source"},{"type":"struct","fields":[{"type":"int32","name":"io.debezium.time.Date","field":"d"}],"field":"after"}]}}`, OpCreate, "tp", "1970-01-01T00:00:00.005Z", Version{Scheme: VersionLSN, LSN: 8}},
		{"payload before row schema", `{"payload":{"id":1,"d":3,"__op":"r","__source_ts_ms":5},"schema":{"type":"struct","fields":[{"type":"int32","name":"io.debezium.time.Date","field":"d"}]}}`, OpRead, "tp", "1970-01-01T00:00:00.005Z", Version{Scheme: VersionOffset, Offset: 7}},
		{"payload before null schema", `{"payload":` + env("d", "") + `,"schema":null}`, OpDelete, "inv.t", "2023-11-14T22:13:20Z", Version{Scheme: VersionBinlog, File: "mysql-bin.000001", Pos: 10}},
		{"null payload before schema", `{"payload":null,"schema":null}`, OpTombstone, "tp", "0001-01-01T00:00:00Z", Version{Scheme: VersionOffset, Offset: 7}},
		{"boolean snapshot of old fixtures", `{"after":{"id":1},"source":{"ts_ms":1,"snapshot":false},"op":"c"}`, OpCreate, "tp", "1970-01-01T00:00:00.001Z", Version{Scheme: VersionOffset, Offset: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			envs, err := d.Decode(Message{Topic: "tp", Offset: 7, Value: []byte(tt.value), Key: []byte(`{"id":9}`)})
			checkDecodeResult(t, envs, err)
			if err != nil {
				t.Fatal(err)
			}
			e := envs[0]
			if e.Op != tt.op || e.EntityType != tt.entity || e.EventTime.Format(time.RFC3339Nano) != tt.evtTime || e.Version != tt.version {
				t.Fatalf("got op %s entity %s time %s version %+v", e.Op, e.EntityType, e.EventTime.Format(time.RFC3339Nano), e.Version)
			}
			if e.Origin != (Origin{Topic: "tp", Offset: 7, Mapping: "m"}) || !e.IngestTime.Equal(testClock()) || e.Kind != KindCDC {
				t.Fatalf("origin %+v ingest %v kind %s", e.Origin, e.IngestTime, e.Kind)
			}
			for k := range e.Attributes {
				if strings.HasPrefix(k, "__") {
					t.Fatalf("metadata field %s left in attributes", k)
				}
			}
			if strings.HasPrefix(tt.name, "payload before") && tt.op != OpDelete && e.Attributes["d"] != "1970-01-04" {
				t.Fatalf("schema not applied: %v", e.Attributes)
			}
			if tt.name == "row with an object column named source" {
				if src, ok := e.Attributes["source"].(map[string]any); !ok || src["x"] != int64(1) {
					t.Fatalf("row columns lost: %v", e.Attributes)
				}
			}
		})
	}
}

func TestDecodeIsDeterministic(t *testing.T) {
	b, err := os.ReadFile("testdata/debezium/mysql-schema-1.9.5-rw-06-update-1004.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Format: FormatDebezium, KeyFields: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	msg := Message{Topic: "a", Partition: 1, Offset: 1, Value: b}
	first, err := d.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	// Redelivered at another offset: same idempotency id and content.
	msg.Offset = 99
	again, err := d.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if first[0].ID != again[0].ID || first[0].Key != again[0].Key || !first[0].EventTime.Equal(again[0].EventTime) {
		t.Fatalf("redelivery changed the event: %+v vs %+v", first[0], again[0])
	}
	if fmt.Sprint(first[0].Attributes) != fmt.Sprint(again[0].Attributes) {
		t.Fatalf("attributes differ")
	}
}

func TestKindOverride(t *testing.T) {
	d, err := New(Config{Format: FormatDebezium, Kind: KindMetadata, KeyFields: []string{"id"}, EntityType: "campaign"}, WithClock(testClock))
	if err != nil {
		t.Fatal(err)
	}
	envs, err := d.Decode(Message{Topic: "tp", Value: []byte(env("c", ""))})
	if err != nil {
		t.Fatal(err)
	}
	if envs[0].Kind != KindMetadata || envs[0].EntityType != "campaign" {
		t.Fatalf("got kind %s entity %s", envs[0].Kind, envs[0].EntityType)
	}
}

func TestCustomFieldPrefix(t *testing.T) {
	d, err := New(Config{Format: FormatDebezium, KeyFields: []string{"id"}, Debezium: DebeziumConfig{FieldPrefix: "meta_"}}, WithClock(testClock))
	if err != nil {
		t.Fatal(err)
	}
	envs, err := d.Decode(Message{Topic: "tp", Value: []byte(`{"id":1,"__op":"x","meta_op":"d","meta_source_ts_ms":5,"meta_table":"t"}`)})
	if err != nil {
		t.Fatal(err)
	}
	e := envs[0]
	if e.Op != OpDelete || e.EntityType != "t" || e.Attributes["__op"] != "x" || e.Attributes["meta_op"] != nil {
		t.Fatalf("got %+v", e)
	}
}

func TestCompositeKeyEscaping(t *testing.T) {
	d, err := New(Config{Format: FormatDebezium}, WithClock(testClock))
	if err != nil {
		t.Fatal(err)
	}
	envs, err := d.Decode(Message{Topic: "tp", Value: []byte(env("c", "")), Key: []byte(`{"a":"x/y","b":"c\\d","c":2.5,"d":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := envs[0].Key, `x\/y/c\\d/2.5/true`; got != want {
		t.Fatalf("key %q, want %q", got, want)
	}
	if len(envs[0].KeyFields) != 4 {
		t.Fatalf("key fields %v", envs[0].KeyFields)
	}
}

func TestSchemaCacheReuse(t *testing.T) {
	dd, err := newDebeziumDecoder(Config{Format: FormatDebezium, KeyFields: []string{"id"}, SchemaCacheSize: 2}, options{now: testClock})
	if err != nil {
		t.Fatal(err)
	}
	schemaFor := func(i int) string {
		return fmt.Sprintf(`{"type":"struct","name":"v%d","fields":[{"type":"int32","field":"id"},{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"%d"},"field":"amt"}]}`, i, i)
	}
	decode := func(i int) map[string]any {
		t.Helper()
		v := `{"schema":` + schemaFor(i) + `,"payload":{"id":1,"amt":"AQ==","__source_ts_ms":1}}`
		envs, err := dd.Decode(Message{Topic: "tp", Value: []byte(v)})
		if err != nil {
			t.Fatal(err)
		}
		return envs[0].Attributes
	}
	if got := decode(1)["amt"]; got != "0.1" {
		t.Fatalf("scale 1: %v", got)
	}
	first := dd.values.last.Load()
	decode(1)
	if dd.values.last.Load() != first {
		t.Fatal("the same schema bytes were parsed again")
	}
	if got := decode(2)["amt"]; got != "0.01" {
		t.Fatalf("scale 2: %v", got)
	}
	decode(1) // from the LRU, not the last-seen slot
	if dd.values.last.Load() != first {
		t.Fatal("a cached schema was parsed again")
	}
	decode(3)
	if n := dd.values.lru.Len(); n != 2 {
		t.Fatalf("cache holds %d schemas, bound is 2", n)
	}
	// Same length, different bytes: must not be taken for the cached one.
	if got := decode(4)["amt"]; got != "0.0001" {
		t.Fatalf("scale 4: %v", got)
	}
}

// TestConcurrentDecode runs one decoder from many goroutines over every
// golden sample, as one decoder serves all partitions of a topic; run with
// -race.
func TestConcurrentDecode(t *testing.T) {
	cases, msgs := loadCases(t, "testdata/debezium", FormatDebezium)
	d, err := New(Config{Format: FormatDebezium, KeyFields: []string{"id"}, SchemaCacheSize: 4}, WithClock(testClock))
	if err != nil {
		t.Fatal(err)
	}
	// A tombstone's DeletesDropped mark says how the topic's rows decoded
	// so far looked (package doc): it depends on which rows other
	// goroutines decoded just before, so it is left out of the comparison.
	show := func(envs []Envelope, err error) string {
		for i := range envs {
			envs[i].DeletesDropped = false
		}
		return fmt.Sprint(envs, err)
	}
	want := make([]string, len(msgs))
	for i := range msgs {
		want[i] = show(d.Decode(msgs[i]))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for n := 0; n < 20; n++ {
				i := (g*7 + n*3) % len(msgs)
				if got := show(d.Decode(msgs[i])); got != want[i] {
					errs <- cases[i].Name
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for name := range errs {
		t.Errorf("concurrent decode of %s differs", name)
	}
}
