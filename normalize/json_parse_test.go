package normalize

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func parseAll(b []byte) (any, error) {
	p := jsonParser{data: b}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	return v, nil
}

func TestJSONParserValues(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{`0`, int64(0)},
		{`-0`, int64(0)},
		{` 42 `, int64(42)},
		{`-9223372036854775808`, int64(math.MinInt64)},
		{`9223372036854775807`, int64(math.MaxInt64)},
		{`9223372036854775808`, "9223372036854775808"},
		{`123456789012345678`, int64(123456789012345678)},
		{`1.5`, 1.5},
		{`-2.5e3`, -2500.0},
		{`1E+2`, 100.0},
		{`1e400`, "1e400"},
		{`true`, true},
		{`false`, false},
		{`null`, nil},
		{`""`, ""},
		{`"plain"`, "plain"},
		{`"a\"b\\c\/d\b\f\n\r\t"`, "a\"b\\c/d\b\f\n\r\t"},
		{`"\u00e9\u20AC"`, "é€"},
		{`"\ud83d\ude00"`, "😀"},
		{`"\ud83d"`, "\uFFFD"},
		{`"\ud83dx"`, "\uFFFDx"},
		{`"\ude00\ud83d\ude00"`, "\uFFFD😀"},
		{"\"\xff\"", "\uFFFD"},
		{"\"a\xc3\"", "a\uFFFD"},
		{"\"é\"", "é"},
		{`[]`, []any{}},
		{`[1,"a",null,[true]]`, []any{int64(1), "a", nil, []any{true}}},
		{`{}`, map[string]any{}},
		{`{"a":1,"a":2}`, map[string]any{"a": int64(2)}},
		{`{"k\u00e9y" : {"n":[]}}`, map[string]any{"kéy": map[string]any{"n": []any{}}}},
	}
	for _, tt := range tests {
		got, err := parseAll([]byte(tt.in))
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(tt.want)
		if !bytes.Equal(gb, wb) || typeName(got) != typeName(tt.want) {
			t.Errorf("%s: got %s (%T), want %s (%T)", tt.in, gb, got, wb, tt.want)
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case int64:
		return "int64"
	case float64:
		return "float64"
	case string:
		return "string"
	}
	return "other"
}

func TestJSONParserErrors(t *testing.T) {
	tests := []struct {
		in, reason string
	}{
		{``, "unexpected end of input"},
		{`   `, "unexpected end of input"},
		{`{`, "unexpected end of input"},
		{`{"a"`, "unexpected end of input"},
		{`{"a":`, "unexpected end of input"},
		{`{"a":1`, "unexpected end of input"},
		{`{"a" 1}`, "expected ':' after an object key"},
		{`{"a":1 "b":2}`, "expected ',' or '}' in an object"},
		{`{a:1}`, "expected an object key"},
		{`{"a":1,}`, "expected an object key"},
		{`[1,]`, "unexpected character ']'"},
		{`[1 2]`, "expected ',' or ']' in an array"},
		{`[1`, "unexpected end of input"},
		{`"abc`, "unexpected end of input"},
		{"\"a\nb\"", "control character in a string"},
		{"\"a\\u00e9\nb\"", "control character in a string"},
		{`"\x"`, "invalid escape"},
		{`"\u12G4"`, "invalid \\u escape"},
		{`"\u12"`, "invalid \\u escape"},
		{`"abc\`, "unexpected end of input"},
		{`01`, "trailing data after the JSON value"},
		{`1.`, "invalid number: no digits after '.'"},
		{`1e`, "invalid number: no digits in exponent"},
		{`-`, "unexpected end of input"},
		{`-a`, "invalid number"},
		{`+1`, "unexpected character '+'"},
		{`tru`, "invalid literal"},
		{`nul`, "invalid literal"},
		{`{"a":1} x`, "trailing data after the JSON value"},
		{strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1), "nesting deeper than 64"},
		{strings.Repeat(`{"a":`, maxJSONDepth+1) + "1" + strings.Repeat("}", maxJSONDepth+1), "nesting deeper than 64"},
	}
	for _, tt := range tests {
		_, err := parseAll([]byte(tt.in))
		if err == nil {
			t.Errorf("%q: no error", tt.in)
			continue
		}
		de, ok := err.(*DecodeError)
		if !ok || de.Class != ClassMalformedJSON || !strings.HasPrefix(de.Reason, tt.reason) {
			t.Errorf("%q: got %v, want malformed_json %q", tt.in, err, tt.reason)
		}
		// skip must agree with value on what is valid.
		p := jsonParser{data: []byte(tt.in)}
		if err := p.skip(); err == nil && p.end() == nil {
			t.Errorf("%q: skip accepted what value rejects", tt.in)
		}
	}
	// At the limit it still parses.
	ok := strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth)
	if _, err := parseAll([]byte(ok)); err != nil {
		t.Errorf("depth %d: %v", maxJSONDepth, err)
	}
}

func TestSkipExtent(t *testing.T) {
	tests := []struct {
		in   string
		end  int
		fail bool
	}{
		{`{"a":"}"} tail`, 9, false},
		{`{"a":"\"}"}x`, 11, false},
		{`[{"b":[1,2]},"]"]`, 17, false},
		{`{"a":"\\"}`, 10, false},
		{`{"a":1`, 0, true},
		{`"str" x`, 5, false},
		{`12,`, 2, false},
	}
	for _, tt := range tests {
		p := jsonParser{data: []byte(tt.in)}
		err := p.skipExtent()
		if (err != nil) != tt.fail {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if !tt.fail && p.pos != tt.end {
			t.Errorf("%q: ends at %d, want %d", tt.in, p.pos, tt.end)
		}
	}
}

// equalToStd compares a value from jsonParser with encoding/json's
// (decoded with UseNumber), allowing for the documented number mapping.
func equalToStd(mine, std any) bool {
	switch s := std.(type) {
	case json.Number:
		switch m := mine.(type) {
		case int64:
			n, err := s.Int64()
			return err == nil && n == m
		case float64:
			f, err := s.Float64()
			return err == nil && f == m
		case string:
			return m == s.String()
		}
		return false
	case map[string]any:
		m, ok := mine.(map[string]any)
		if !ok || len(m) != len(s) {
			return false
		}
		for k, v := range s {
			mv, ok := m[k]
			if !ok || !equalToStd(mv, v) {
				return false
			}
		}
		return true
	case []any:
		m, ok := mine.([]any)
		if !ok || len(m) != len(s) {
			return false
		}
		for i := range s {
			if !equalToStd(m[i], s[i]) {
				return false
			}
		}
		return true
	}
	return mine == std
}

// FuzzJSONParser checks the reader against encoding/json: it accepts
// exactly the valid documents (up to its depth limit) and reads the same
// values.
func FuzzJSONParser(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x",null,true]}`, `"\ud83d\ude00"`, `-0.0e-0`, "\"\xff\"", `[[[]]]`, `{"a":{"b":"\u0000"}}`, `1e999`, `12345678901234567890`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		mine, err := parseAll(b)
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var std any
		stdErr := dec.Decode(&std)
		if stdErr == nil {
			// encoding/json's Decoder allows trailing whitespace only.
			if _, tokErr := dec.Token(); tokErr == nil {
				stdErr = errTrailing
			}
		}
		valid := json.Valid(b)
		if err != nil {
			if valid && !strings.Contains(err.Error(), "nesting deeper") {
				t.Fatalf("rejected valid JSON %q: %v", b, err)
			}
			if _, ok := err.(*DecodeError); !ok {
				t.Fatalf("error %T", err)
			}
			return
		}
		if !valid {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		if stdErr == nil && !equalToStd(mine, std) {
			t.Fatalf("%q: got %#v, encoding/json %#v", b, mine, std)
		}
		p := jsonParser{data: b}
		if err := p.skip(); err != nil || p.end() != nil {
			t.Fatalf("skip rejected %q that value accepts: %v", b, err)
		}
	})
}

var errTrailing = &DecodeError{Class: ClassMalformedJSON, Reason: "trailing"}
