package normalize

import (
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestCompileSchemaErrors(t *testing.T) {
	tests := []struct {
		schema, field, reason string
	}{
		{`[]`, "schema", "the Connect schema is not an object"},
		{`{"type":"struct"}`, "schema", "struct schema without fields"},
		{`{"type":"struct","fields":[5]}`, "schema", "struct field is not an object"},
		{`{"type":"struct","fields":[{"type":"int32"}]}`, "schema", "struct field without a name"},
		{`{"type":"struct","fields":[{"type":"array","field":"a"}]}`, "schema.a", "array schema without items"},
		{`{"type":"struct","fields":[{"type":"map","field":"m"}]}`, "schema.m", "map schema without values"},
		{`{"type":"struct","fields":[{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","field":"d"}]}`, "schema.d", "Decimal without a valid parameters.scale"},
		{`{"type":"struct","fields":[{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"-1"},"field":"d"}]}`, "schema.d", "Decimal without a valid parameters.scale"},
		{`{"type":"struct","fields":[{"type":"array","items":{"type":"struct","fields":[{"type":"map","values":{"type":"array"},"field":"x"}]},"field":"a"}]}`, "schema.a.items.x.values", "array schema without items"},
	}
	for _, tt := range tests {
		_, err := compileSchema([]byte(tt.schema))
		de, ok := err.(*DecodeError)
		if !ok || de.Class != ClassSchemaViolation || de.Field != tt.field || de.Reason != tt.reason {
			t.Errorf("%s: got %v, want %s %q", tt.schema, err, tt.field, tt.reason)
		}
	}
	if _, err := compileSchema([]byte(`{"type":"struct",`)); ClassOf(err) != ClassMalformedJSON {
		t.Errorf("truncated schema: %v", err)
	}
	if _, err := compileSchema([]byte(`{"type":"int32"} 1`)); ClassOf(err) != ClassMalformedJSON {
		t.Errorf("trailing data: %v", err)
	}
	deep := strings.Repeat(`{"type":"array","items":`, maxJSONDepth+1) + `{"type":"int8"}` + strings.Repeat("}", maxJSONDepth+1)
	if _, err := compileSchema([]byte(deep)); ClassOf(err) != ClassMalformedJSON {
		t.Errorf("deep schema: %v", err)
	}
	// Unknown types and schemas without a type pass values through.
	cs, err := compileSchema([]byte(`{"type":"struct","fields":[{"type":"decimal128","field":"x"},{"field":"y"}]}`))
	if err != nil || cs.envelope || cs.row.fields[0].conv.kind != convAny || cs.row.fields[1].conv.kind != convAny {
		t.Fatalf("unknown type: %+v %v", cs, err)
	}
}

func TestConverterValues(t *testing.T) {
	conv := func(kind convKind) *converter { return &converter{kind: kind} }
	tests := []struct {
		name string
		c    *converter
		in   any
		want any
	}{
		{"int", conv(convInt), int64(5), int64(5)},
		{"int beyond int64", conv(convInt), "18446744073709551615", "18446744073709551615"},
		{"float from int", conv(convFloat), int64(3), float64(3)},
		{"float", conv(convFloat), 2.5, 2.5},
		{"float NaN", conv(convFloat), "NaN", "NaN"},
		{"float beyond float64", conv(convFloat), "1e400", "1e400"},
		{"bool", conv(convBool), true, true},
		{"string", conv(convString), "s", "s"},
		{"bytes", conv(convBytes), "AAE=", "AAE="},
		{"any keeps", conv(convAny), []any{int64(1)}, []any{int64(1)}},
		{"decimal base64", &converter{kind: convDecimal, scale: 2}, "ASs=", "2.99"},
		{"decimal negative", &converter{kind: convDecimal, scale: 2}, "/4U=", "-1.23"},
		{"decimal small scale pad", &converter{kind: convDecimal, scale: 4}, "AQ==", "0.0001"},
		{"decimal scale 0", &converter{kind: convDecimal}, "gA==", "-128"},
		{"decimal as number", &converter{kind: convDecimal, scale: 2}, 12.5, "12.50"},
		{"decimal as integer", &converter{kind: convDecimal}, int64(42), "42"},
		{"decimal integer with scale", &converter{kind: convDecimal, scale: 1}, int64(42), "42.0"},
		{"decimal string mode", &converter{kind: convDecimal, scale: 2}, "12.50", "12.50"},
		{"variable scale", conv(convVarDecimal), map[string]any{"scale": int64(3), "value": "AeJA"}, "123.456"},
		{"date", conv(convDate), int64(16850), "2016-02-19"},
		{"date before epoch", conv(convDate), int64(-1), "1969-12-31"},
		{"date out of range keeps number", conv(convDate), int64(9999999), int64(9999999)},
		{"time ms", conv(convTimeMillis), int64(3723004), "01:02:03.004"},
		{"time us", conv(convTimeMicros), int64(45296789012), "12:34:56.789012"},
		{"time ns", conv(convTimeNanos), int64(1), "00:00:00.000000001"},
		{"time negative", conv(convTimeMicros), int64(-3020399000000), "-838:59:59.000000"},
		{"timestamp ms", conv(convTimestampMillis), int64(1000), time.Unix(1, 0).UTC()},
		{"timestamp us", conv(convTimestampMicros), int64(1), time.Unix(0, 1000).UTC()},
		{"timestamp ns", conv(convTimestampNanos), int64(1), time.Unix(0, 1).UTC()},
		{"timestamp infinity keeps number", conv(convTimestampMicros), int64(9223372036854775807), int64(9223372036854775807)},
		{"zoned", conv(convZonedTimestamp), "2020-01-01T01:00:00+01:00", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"zoned infinity", conv(convZonedTimestamp), "-infinity", "-infinity"},
		{"array", &converter{kind: convArray, elem: conv(convDate)}, []any{int64(0), nil}, []any{"1970-01-01", nil}},
		{"map", &converter{kind: convMap, elem: conv(convDate)}, map[string]any{"a": int64(1)}, map[string]any{"a": "1970-01-02"}},
		{"map as pairs kept", &converter{kind: convMap, elem: conv(convDate)}, []any{[]any{int64(1), int64(2)}}, []any{[]any{int64(1), int64(2)}}},
		{"null", conv(convInt), nil, nil},
	}
	for _, tt := range tests {
		got, err := tt.c.convert(tt.in, "after", "c")
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !equalValues(got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, got, tt.want)
		}
	}
}

func equalValues(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y) && x.Location() == time.UTC
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalValues(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !equalValues(x[k], y[k]) {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestConverterErrors(t *testing.T) {
	conv := func(kind convKind) *converter { return &converter{kind: kind} }
	tests := []struct {
		name   string
		c      *converter
		in     any
		class  ErrorClass
		field  string
		reason string
	}{
		{"int from string", conv(convInt), "x", ClassSchemaViolation, "after.c", "want an integer"},
		{"int from float", conv(convInt), 1.5, ClassSchemaViolation, "after.c", "want an integer"},
		{"float from bool", conv(convFloat), true, ClassSchemaViolation, "after.c", "want a number"},
		{"float from text", conv(convFloat), "abc", ClassSchemaViolation, "after.c", "want a number"},
		{"bool from int", conv(convBool), int64(1), ClassSchemaViolation, "after.c", "want a boolean"},
		{"string from int", conv(convString), int64(1), ClassSchemaViolation, "after.c", "want a string"},
		{"decimal not base64", &converter{kind: convDecimal, scale: 2}, "%%", ClassSchemaViolation, "after.c", "Decimal is not base64"},
		{"decimal no bytes", &converter{kind: convDecimal, scale: 2}, "", ClassSchemaViolation, "after.c", "Decimal has no bytes"},
		{"decimal bool", &converter{kind: convDecimal, scale: 2}, true, ClassSchemaViolation, "after.c", "Decimal is not a string or number"},
		{"variable scale not object", conv(convVarDecimal), "x", ClassSchemaViolation, "after.c", "VariableScaleDecimal is not an object"},
		{"variable scale bad scale", conv(convVarDecimal), map[string]any{"scale": "2", "value": "AQ=="}, ClassSchemaViolation, "after.c", "VariableScaleDecimal without a valid scale"},
		{"variable scale bad value", conv(convVarDecimal), map[string]any{"scale": int64(2), "value": "**"}, ClassSchemaViolation, "after.c", "Decimal is not base64"},
		{"date string", conv(convDate), "2020-01-01", ClassSchemaViolation, "after.c", "Date is not an integer"},
		{"time string", conv(convTimeMicros), "08:00", ClassSchemaViolation, "after.c", "time of day is not an integer"},
		{"timestamp string", conv(convTimestampMillis), "now", ClassSchemaViolation, "after.c", "timestamp is not an integer"},
		{"zoned number", conv(convZonedTimestamp), int64(1), ClassSchemaViolation, "after.c", "ZonedTimestamp is not a string"},
		{"zoned unparsable", conv(convZonedTimestamp), "yesterday", ClassBadTime, "after.c", `ZonedTimestamp "yesterday" is not RFC 3339`},
		{"array not array", &converter{kind: convArray, elem: conv(convInt)}, "x", ClassSchemaViolation, "after.c", "want an array"},
		{"array element", &converter{kind: convArray, elem: conv(convInt)}, []any{int64(1), "x"}, ClassSchemaViolation, "after.c.1", "want an integer"},
		{"map value", &converter{kind: convMap, elem: conv(convInt)}, map[string]any{"k": "x"}, ClassSchemaViolation, "after.c.k", "want an integer"},
		{"struct not object", &converter{kind: convStruct}, int64(1), ClassSchemaViolation, "after.c", "want an object"},
		{"struct field", &converter{kind: convStruct, fields: []fieldConverter{{"f", conv(convBool)}}}, map[string]any{"f": "x"}, ClassSchemaViolation, "after.c.f", "want a boolean"},
	}
	for _, tt := range tests {
		_, err := tt.c.convert(tt.in, "after", "c")
		de, ok := err.(*DecodeError)
		if !ok || de.Class != tt.class || de.Field != tt.field || de.Reason != tt.reason {
			t.Errorf("%s: got %v, want %s at %s: %s", tt.name, err, tt.class, tt.field, tt.reason)
		}
	}
}

// TestDecimalMatchesBigInt checks the decimal rendering against math/big for
// any two's-complement byte string and scale.
func TestDecimalMatchesBigInt(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.Byte(), 1, 20).Draw(t, "bytes")
		scale := rapid.Int32Range(0, 30).Draw(t, "scale")
		got, err := decimalValue(base64.StdEncoding.EncodeToString(b), scale)
		if err != nil {
			t.Fatal(err)
		}
		n := new(big.Int).SetBytes(b)
		if b[0]&0x80 != 0 {
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		want := new(big.Rat).SetFrac(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)).FloatString(int(scale))
		if got != want {
			t.Fatalf("bytes %x scale %d: got %s, want %s", b, scale, got, want)
		}
	})
}

func TestSchemaCacheReadErrors(t *testing.T) {
	c, err := newSchemaCache(4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newSchemaCache(0); err == nil {
		t.Fatal("a zero-size cache was accepted")
	}
	p := jsonParser{data: []byte(`{"type":"struct","fields":[}`)}
	if _, err := c.read(&p); ClassOf(err) != ClassMalformedJSON {
		t.Fatalf("unterminated schema: %v", err)
	}
	p = jsonParser{data: []byte(`{"type":"struct","fields":[1}]`)}
	if _, err := c.read(&p); ClassOf(err) != ClassMalformedJSON {
		t.Fatalf("invalid schema with balanced brackets: %v", err)
	}
	if c.lru.Len() != 0 || c.last.Load() != nil {
		t.Fatal("a failed schema was cached")
	}
}
