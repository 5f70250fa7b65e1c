package normalize

import (
	"errors"
	"strings"
	"testing"
)

// TestKeyTypesEveryShape: a declared key or id type is checked in every
// shape a topic may carry (wrapped, schemaless, flattened, tombstone,
// message key, request log), and a value of another type is wrong_type
// naming the field.
func TestKeyTypesEveryShape(t *testing.T) {
	intID := Config{Format: FormatDebezium, KeyFields: []string{"id"}, KeyTypes: map[string]FieldType{"id": TypeInteger}}
	uuidKey := Config{Format: FormatDebezium, KeyTypes: map[string]FieldType{"id": TypeUUID}}
	reqs := Config{Format: FormatRequestLog, EntityType: "impression", KeyFields: []string{"user"},
		KeyTypes:   map[string]FieldType{"user": TypeString},
		RequestLog: RequestLogConfig{IDField: "rid", IDType: TypeUUID, TimeField: "ts"}}
	const u = "7f1b3c9e-52a4-4c1e-9d55-0a7c9b1f2e3d"
	tests := []struct {
		name       string
		cfg        Config
		value, key string
		field      string // "" = decodes
	}{
		{"schemaless int", intID, `{"before":null,"after":{"id":12,"n":"a"},"source":{"ts_ms":1},"op":"c"}`, "", ""},
		{"schemaless int as 12.0", intID, `{"before":null,"after":{"id":12.0},"source":{"ts_ms":1},"op":"c"}`, "", ""},
		{"schemaless big int", intID, `{"before":null,"after":{"id":92233720368547758070},"source":{"ts_ms":1},"op":"c"}`, "", ""},
		{"schemaless word", intID, `{"before":null,"after":{"id":"twelve"},"source":{"ts_ms":1},"op":"c"}`, "", "key.id"},
		{"schemaless digits as string", intID, `{"before":null,"after":{"id":"12"},"source":{"ts_ms":1},"op":"c"}`, "", "key.id"},
		{"schemaless fraction", intID, `{"before":null,"after":{"id":12.5},"source":{"ts_ms":1},"op":"c"}`, "", "key.id"},
		{"schemaless bool", intID, `{"before":null,"after":{"id":true},"source":{"ts_ms":1},"op":"c"}`, "", "key.id"},
		{"delete image", intID, `{"before":{"id":"x"},"after":null,"source":{"ts_ms":1},"op":"d"}`, "", "key.id"},
		{"wrapped string column", intID, `{"schema":{"type":"struct","fields":[{"type":"string","field":"op"},{"type":"struct","fields":[],"field":"source"},{"type":"struct","fields":[{"type":"string","field":"id"}],"field":"after"}]},"payload":{"after":{"id":"twelve"},"op":"c","source":{"ts_ms":1}}}`, "", "key.id"},
		{"flattened", intID, `{"id":"twelve","__op":"u","__source_ts_ms":1}`, "", "key.id"},
		{"flattened ok", intID, `{"id":12,"__op":"u","__source_ts_ms":1}`, "", ""},
		{"tombstone key", intID, ``, `{"id":"twelve"}`, "key.id"},
		{"message key uuid", uuidKey, `{"before":null,"after":{"n":1},"source":{"ts_ms":1},"op":"c"}`, `{"id":"` + u + `"}`, ""},
		{"message key not uuid", uuidKey, `{"before":null,"after":{"n":1},"source":{"ts_ms":1},"op":"c"}`, `{"id":"not-a-uuid"}`, "key.id"},
		{"message key uuid without dashes", uuidKey, `{"before":null,"after":{"n":1},"source":{"ts_ms":1},"op":"c"}`, `{"id":"7f1b3c9e52a44c1e9d550a7c9b1f2e3d"}`, "key.id"},
		{"request ok", reqs, `{"rid":"` + u + `","ts":1700000000000,"user":"u1"}`, "", ""},
		{"request id not uuid", reqs, `{"rid":"r-1","ts":1700000000000,"user":"u1"}`, "", "rid"},
		{"request id number", reqs, `{"rid":17,"ts":1700000000000,"user":"u1"}`, "", "rid"},
		{"request key number", reqs, `{"rid":"` + u + `","ts":1700000000000,"user":5}`, "", "user"},
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
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Decode = %v, want success", err)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Class != ClassWrongType || de.Field != tt.field || !strings.Contains(de.Reason, "want ") {
				t.Fatalf("Decode = %v, want wrong_type at %q", err, tt.field)
			}
		})
	}
}

func TestKeyTypesConfig(t *testing.T) {
	bad := []Config{
		{Format: FormatDebezium, KeyFields: []string{"id"}, KeyTypes: map[string]FieldType{"id": "int"}},
		{Format: FormatDebezium, KeyFields: []string{"id"}, KeyTypes: map[string]FieldType{"other": TypeInteger}},
		{Format: FormatRequestLog, EntityType: "e", KeyFields: []string{"u"}, KeyTypes: map[string]FieldType{"x": TypeString},
			RequestLog: RequestLogConfig{IDField: "id", TimeField: "ts"}},
		{Format: FormatRequestLog, EntityType: "e", KeyFields: []string{"u"},
			RequestLog: RequestLogConfig{IDField: "id", IDType: "guid", TimeField: "ts"}},
	}
	for i, c := range bad {
		if err := c.Validate(); !errors.Is(err, ErrBadSetting) {
			t.Errorf("config %d: Validate = %v, want ErrBadSetting", i, err)
		}
	}
	ok := Config{Format: FormatDebezium, KeyTypes: map[string]FieldType{"tenant": TypeString, "id": TypeInteger}}
	if err := ok.Validate(); err != nil {
		t.Errorf("message-key field types: %v", err)
	}
}
