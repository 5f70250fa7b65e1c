package normalize

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func rlConfig(mod func(*Config)) Config {
	c := Config{
		Format:     FormatRequestLog,
		EntityType: "req",
		KeyFields:  []string{"user.id"},
		RequestLog: RequestLogConfig{IDField: "id", TimeField: "ts"},
	}
	if mod != nil {
		mod(&c)
	}
	return c
}

func TestRequestLogErrors(t *testing.T) {
	format := func(f TimeFormat) func(*Config) { return func(c *Config) { c.RequestLog.TimeFormat = f } }
	tests := []struct {
		name   string
		mod    func(*Config)
		value  string
		class  ErrorClass
		field  string
		reason string
	}{
		{"no value", nil, ``, ClassMissingField, "", "the record has no value"},
		{"not JSON", nil, `{"id":`, ClassMalformedJSON, "value", "unexpected end of input"},
		{"array", nil, `[1]`, ClassSchemaViolation, "", "the value is not a JSON object"},
		{"broken array", nil, `[1`, ClassMalformedJSON, "value", "unexpected end of input"},
		{"trailing data", nil, `{"id":"a"} {}`, ClassMalformedJSON, "value", "trailing data"},
		{"id missing", nil, `{"ts":1,"user":{"id":"u"}}`, ClassMissingField, "id", "absent, null or empty"},
		{"id empty", nil, `{"id":"","ts":1,"user":{"id":"u"}}`, ClassMissingField, "id", "absent, null or empty"},
		{"id object", nil, `{"id":{},"ts":1,"user":{"id":"u"}}`, ClassSchemaViolation, "id", "not a string or integer"},
		{"id float", nil, `{"id":1.5,"ts":1,"user":{"id":"u"}}`, ClassSchemaViolation, "id", "not a string or integer"},
		{"time missing", nil, `{"id":"a","user":{"id":"u"}}`, ClassMissingField, "ts", "no event time"},
		{"time null", nil, `{"id":"a","ts":null,"user":{"id":"u"}}`, ClassMissingField, "ts", "no event time"},
		{"auto with float", nil, `{"id":"a","ts":1.5,"user":{"id":"u"}}`, ClassBadTime, "ts", "want an RFC 3339 string or an integer of milliseconds"},
		{"auto with bad string", nil, `{"id":"a","ts":"noon","user":{"id":"u"}}`, ClassBadTime, "ts", `"noon" is not RFC 3339`},
		{"rfc3339 with number", format(TimeRFC3339), `{"id":"a","ts":1,"user":{"id":"u"}}`, ClassBadTime, "ts", "want an RFC 3339 string"},
		{"unix_ms with float", format(TimeUnixMs), `{"id":"a","ts":1.5,"user":{"id":"u"}}`, ClassBadTime, "ts", "want an integer"},
		{"unix_s with string", format(TimeUnixS), `{"id":"a","ts":"1","user":{"id":"u"}}`, ClassBadTime, "ts", "want a number of seconds"},
		{"unix_s int out of range", format(TimeUnixS), `{"id":"a","ts":253402300800,"user":{"id":"u"}}`, ClassBadTime, "ts", "out of range"},
		{"unix_s float out of range", format(TimeUnixS), `{"id":"a","ts":1e12,"user":{"id":"u"}}`, ClassBadTime, "ts", "out of range"},
		{"unix_ms beyond 9999", format(TimeUnixMs), `{"id":"a","ts":253402300800000,"user":{"id":"u"}}`, ClassBadTime, "ts", "outside years 0001-9999"},
		{"entity type not string", func(c *Config) { c.RequestLog.EntityTypeField = "kind" }, `{"id":"a","ts":1,"kind":5,"user":{"id":"u"}}`, ClassSchemaViolation, "kind", "the entity type is not a string"},
		{"entity type absent, no fallback", func(c *Config) { c.RequestLog.EntityTypeField = "kind"; c.EntityType = "" }, `{"id":"a","ts":1,"user":{"id":"u"}}`, ClassMissingField, "kind", "no entity type"},
		{"key missing", nil, `{"id":"a","ts":1,"user":{}}`, ClassMissingField, "user.id", "key field absent or null"},
		{"key path through a non-object", nil, `{"id":"a","ts":1,"user":"u"}`, ClassMissingField, "user.id", "key field absent or null"},
		{"key not scalar", nil, `{"id":"a","ts":1,"user":{"id":[1]}}`, ClassSchemaViolation, "user.id", "a key value must be"},
		{"key empty", nil, `{"id":"a","ts":1,"user":{"id":""}}`, ClassMissingField, "user.id", "empty key value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(rlConfig(tt.mod), WithClock(testClock))
			if err != nil {
				t.Fatal(err)
			}
			envs, err := d.Decode(Message{Topic: "rl", Value: []byte(tt.value)})
			checkDecodeResult(t, envs, err)
			var de *DecodeError
			if !errors.As(err, &de) || de.Class != tt.class || de.Field != tt.field || !strings.Contains(de.Reason, tt.reason) {
				t.Fatalf("got %v, want %s at %q: %s", err, tt.class, tt.field, tt.reason)
			}
		})
	}
}

func TestRequestLogTimes(t *testing.T) {
	tests := []struct {
		format TimeFormat
		ts     string
		want   time.Time
	}{
		{TimeAuto, `"2026-11-25T10:00:00.5+02:00"`, time.Date(2026, 11, 25, 8, 0, 0, 5e8, time.UTC)},
		{TimeAuto, `1764064800123`, time.UnixMilli(1764064800123)},
		{TimeUnixMs, `1764064800123`, time.UnixMilli(1764064800123)},
		{TimeUnixUs, `1764064800123456`, time.UnixMicro(1764064800123456)},
		{TimeUnixNs, `1764064800123456789`, time.Unix(0, 1764064800123456789)},
		{TimeUnixS, `1764064800`, time.Unix(1764064800, 0)},
		{TimeUnixS, `1764064800.25`, time.Unix(1764064800, 25e7)},
		{TimeRFC3339, `"2026-11-25T10:00:00Z"`, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		d, err := New(rlConfig(func(c *Config) { c.RequestLog.TimeFormat = tt.format }), WithClock(testClock))
		if err != nil {
			t.Fatal(err)
		}
		envs, err := d.Decode(Message{Topic: "rl", Value: []byte(`{"id":7,"ts":` + tt.ts + `,"user":{"id":"u"}}`)})
		checkDecodeResult(t, envs, err)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.format, tt.ts, err)
		}
		if got := envs[0].EventTime; !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("%s %s: got %v, want %v", tt.format, tt.ts, got, tt.want)
		}
		if envs[0].ID != "7" || envs[0].Kind != KindRequest || envs[0].Op != OpCreate {
			t.Errorf("got %+v", envs[0])
		}
	}
}

func TestRequestLogEntityTypeFallback(t *testing.T) {
	d, err := New(rlConfig(func(c *Config) { c.RequestLog.EntityTypeField = "kind" }), WithClock(testClock))
	if err != nil {
		t.Fatal(err)
	}
	for value, want := range map[string]string{
		`{"id":"a","ts":1,"user":{"id":"u"},"kind":"click"}`: "click",
		`{"id":"a","ts":1,"user":{"id":"u"}}`:                "req",
		`{"id":"a","ts":1,"user":{"id":"u"},"kind":""}`:      "req",
		`{"id":"a","ts":1,"user":{"id":"u"},"kind":null}`:    "req",
	} {
		envs, err := d.Decode(Message{Topic: "rl", Value: []byte(value)})
		if err != nil {
			t.Fatal(err)
		}
		if envs[0].EntityType != want {
			t.Errorf("%s: entity %s, want %s", value, envs[0].EntityType, want)
		}
	}
}
