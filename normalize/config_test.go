package normalize

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	good := rlConfig(nil)
	tests := []struct {
		name   string
		mod    func(*Config)
		want   error
		detail string
	}{
		{"request log ok", func(c *Config) {}, nil, ""},
		{"debezium ok", func(c *Config) { *c = Config{Format: FormatDebezium} }, nil, ""},
		{"no format", func(c *Config) { c.Format = "" }, ErrMissingSetting, "format"},
		{"unknown format", func(c *Config) { c.Format = "avro" }, ErrUnknownFormat, `"avro"`},
		{"unknown kind", func(c *Config) { c.Kind = "log" }, ErrUnknownKind, `"log"`},
		{"negative cache", func(c *Config) { *c = Config{Format: FormatDebezium, SchemaCacheSize: -1} }, ErrBadSetting, "schema_cache_size"},
		{"empty key field", func(c *Config) { c.KeyFields = []string{"a", ""} }, ErrBadSetting, "key_fields[1]: empty path"},
		{"bad key path", func(c *Config) { c.KeyFields = []string{"a..b"} }, ErrBadSetting, "empty segment"},
		{"debezium as request", func(c *Config) { *c = Config{Format: FormatDebezium, Kind: KindRequest} }, ErrBadSetting, "kind request with format debezium"},
		{"request log as cdc", func(c *Config) { c.Kind = KindCDC }, ErrBadSetting, "kind cdc with format request_log"},
		{"no id field", func(c *Config) { c.RequestLog.IDField = "" }, ErrMissingSetting, "request_log.id_field"},
		{"no time field", func(c *Config) { c.RequestLog.TimeField = "" }, ErrMissingSetting, "request_log.time_field"},
		{"no key fields", func(c *Config) { c.KeyFields = nil }, ErrMissingSetting, "key_fields"},
		{"no entity type", func(c *Config) { c.EntityType = "" }, ErrMissingSetting, "entity_type"},
		{"bad time format", func(c *Config) { c.RequestLog.TimeFormat = "epoch" }, ErrBadSetting, `time_format "epoch"`},
		{"bad id path", func(c *Config) { c.RequestLog.IDField = ".id" }, ErrBadSetting, "request_log.id_field"},
		{"bad attribute path", func(c *Config) { c.RequestLog.AttributeFields = []string{"ok", "x."} }, ErrBadSetting, "request_log.attribute_fields[1]"},
		{"bad entity type path", func(c *Config) { c.RequestLog.EntityTypeField = "a..b" }, ErrBadSetting, "request_log.entity_type_field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			c.KeyFields = append([]string(nil), good.KeyFields...)
			tt.mod(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("got %v, want %v mentioning %q", err, tt.want, tt.detail)
			}
			if _, nerr := New(c); !errors.Is(nerr, tt.want) {
				t.Fatalf("New accepted a config Validate rejects: %v", nerr)
			}
		})
	}
}

func TestDecodeErrorVocabulary(t *testing.T) {
	err := error(decodeErr(ClassBadTime, "after.t", "why"))
	if got := err.Error(); got != `normalize: bad_time at "after.t": why` {
		t.Fatalf("message %q", got)
	}
	if !errors.Is(err, &DecodeError{Class: ClassBadTime}) || errors.Is(err, &DecodeError{Class: ClassMissingField}) {
		t.Fatal("class match by errors.Is")
	}
	if errors.Is(err, &DecodeError{Class: ClassBadTime, Field: "x"}) {
		t.Fatal("a target with details is not a class test")
	}
	if ClassOf(errors.Join(errors.New("x"), err)) != ClassBadTime || ClassOf(errors.New("x")) != "" {
		t.Fatal("ClassOf")
	}
	if got := decodeErr(ClassMalformedJSON, "", "").Error(); got != "normalize: malformed_json" {
		t.Fatalf("bare message %q", got)
	}
}
