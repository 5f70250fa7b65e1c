package normalize

import (
	"testing"
)

// fuzzDebeziumConfigs are the configurations a fuzz input is decoded with,
// chosen by its variant byte, so that both key sources, tombstone handling,
// a custom prefix and a custom unavailable-value placeholder are exercised.
var fuzzDebeziumConfigs = []Config{
	{Format: FormatDebezium},
	{Format: FormatDebezium, KeyFields: []string{"id"}},
	{Format: FormatDebezium, KeyFields: []string{"id", "order_id"}, Debezium: DebeziumConfig{TombstoneDeletes: true}},
	{Format: FormatDebezium, EntityType: "e", Kind: KindMetadata, SchemaCacheSize: 1, Debezium: DebeziumConfig{FieldPrefix: "_"}},
	{Format: FormatDebezium, KeyFields: []string{"id"}, Debezium: DebeziumConfig{UnavailableValuePlaceholder: &fuzzPlaceholder}},
}

// fuzzPlaceholder is short, so that fuzzed rows hold it (and its base64
// text, "YQ==") often.
var fuzzPlaceholder = "a"

// FuzzDecodeDebezium: Decode never panics, every error is a *DecodeError of
// the vocabulary, and every envelope passes Validate and the JSON Schema.
func FuzzDecodeDebezium(f *testing.F) {
	cases, msgs := loadCases(f, "testdata/debezium", FormatDebezium)
	for i, c := range cases {
		variant := uint8(0)
		if len(c.Config.KeyFields) > 0 {
			variant = 1
		}
		f.Add(msgs[i].Value, msgs[i].Key, variant, msgs[i].Timestamp.UnixMilli())
	}
	decoders := make([]Decoder, len(fuzzDebeziumConfigs))
	for i, cfg := range fuzzDebeziumConfigs {
		d, err := New(cfg, WithClock(testClock))
		if err != nil {
			f.Fatal(err)
		}
		decoders[i] = d
	}
	f.Fuzz(func(t *testing.T, value, key []byte, variant uint8, tsMillis int64) {
		msg := Message{Topic: "fuzz", Partition: 1, Offset: 9, Value: value, Key: key}
		if tsMillis > 0 && tsMillis < 253402300799999 {
			msg.Timestamp = timeFromMillis(tsMillis)
		}
		envs, err := decoders[int(variant)%len(decoders)].Decode(msg)
		checkDecodeResult(t, envs, err)
	})
}

var fuzzRequestLogConfigs = []Config{
	rlConfig(nil),
	{
		Format:     FormatRequestLog,
		KeyFields:  []string{"user.id", "campaign_id"},
		EntityType: "impression",
		RequestLog: RequestLogConfig{IDField: "request_id", TimeField: "timestamp", EntityTypeField: "event.type", AttributeFields: []string{"campaign_id", "response.status"}},
	},
	{
		Format:     FormatRequestLog,
		KeyFields:  []string{"principal.tenant"},
		Kind:       KindMetadata,
		RequestLog: RequestLogConfig{IDField: "id", TimeField: "ts", TimeFormat: TimeUnixS, EntityTypeField: "event.type"},
	},
}

// FuzzDecodeRequestLog: as FuzzDecodeDebezium, for request logs.
func FuzzDecodeRequestLog(f *testing.F) {
	_, msgs := loadCases(f, "testdata/requestlog", FormatRequestLog)
	for _, m := range msgs {
		for v := range fuzzRequestLogConfigs {
			f.Add(m.Value, uint8(v))
		}
	}
	f.Add([]byte(`{"id":"a","ts":1,"user":{"id":"u"}}`), uint8(0))
	decoders := make([]Decoder, len(fuzzRequestLogConfigs))
	for i, cfg := range fuzzRequestLogConfigs {
		d, err := New(cfg, WithClock(testClock))
		if err != nil {
			f.Fatal(err)
		}
		decoders[i] = d
	}
	f.Fuzz(func(t *testing.T, value []byte, variant uint8) {
		envs, err := decoders[int(variant)%len(decoders)].Decode(Message{Topic: "fuzz", Value: value})
		checkDecodeResult(t, envs, err)
	})
}
