package enrich

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Document decoding errors, wrapped by DecodeDocument.
var (
	ErrNotObject   = errors.New("enrich: document is not a JSON object")
	ErrTooLarge    = errors.New("enrich: document too large")
	ErrInvalidJSON = errors.New("enrich: document is not valid JSON")
)

// DecodeDocument decodes a record value into the document a cache holds.
// Values follow normalize's attribute convention, so that expressions treat
// joined documents and event attributes alike: integral numbers that fit
// become int64, other numbers float64 (beyond float64 they keep their text),
// objects map[string]any, arrays []any.
func DecodeDocument(value []byte, maxBytes int) (map[string]any, error) {
	if maxBytes > 0 && len(value) > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(value), maxBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the value", ErrInvalidJSON)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, ErrNotObject
	}
	convertNumbers(m)
	return m, nil
}

func convertNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return f
		}
		return string(x)
	case map[string]any:
		for k, e := range x {
			x[k] = convertNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = convertNumbers(e)
		}
	}
	return v
}

// RecordKey turns a record key into a cache key: the key's bytes as text, or
// the string a JSON string key holds ("\"t-1\"" is t-1), since producers
// with a JSON key converter quote string keys.
func RecordKey(key []byte) (string, bool) {
	if len(key) == 0 {
		return "", false
	}
	if key[0] == '"' {
		var s string
		if err := json.Unmarshal(key, &s); err == nil && s != "" {
			return s, true
		}
	}
	return string(key), true
}
