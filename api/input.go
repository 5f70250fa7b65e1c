package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Input checks every handler shares: the query string, path parameters and
// integer fields of JSON bodies. Whatever the route, text that is not UTF-8
// and escapes that do not decode are a 400 malformed-request, so a client
// gets the same answer for the same mistake everywhere.

// parseQuery parses r's query string strictly. url.ParseQuery drops a pair
// whose escapes do not decode ("?target=%zz") and reports it only as an
// error the caller may ignore; a dropped parameter would silently widen a
// query (a dropped target is a count never checked), so any bad pair
// refuses the request here. A ';' is refused too: Go no longer splits on
// it, and a client that means it as a separator would lose parameters.
func parseQuery(r *http.Request) (url.Values, error) {
	v := url.Values{}
	raw := r.URL.RawQuery
	if raw == "" {
		return v, nil
	}
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		if strings.Contains(pair, ";") {
			return nil, apiErr(kindMalformed, "", "the query holds ';', which is not a separator here; escape it as %%3B")
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, apiErr(kindMalformed, "", "query parameter %q: %v", rawKey, err)
		}
		if !utf8.ValidString(key) {
			return nil, apiErr(kindMalformed, "", "a query parameter name is not valid UTF-8")
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, apiErr(kindMalformed, key, "query parameter %s: %v", key, err)
		}
		if !utf8.ValidString(value) {
			return nil, apiErr(kindMalformed, key, "query parameter %s is not valid UTF-8", key)
		}
		v[key] = append(v[key], value)
	}
	return v, nil
}

// checkPathUTF8 refuses a path whose decoded form is not UTF-8, before the
// router's parameters are read: ids and type names are UTF-8 text.
func checkPathUTF8(r *http.Request) error {
	if !utf8.ValidString(r.URL.Path) {
		return apiErr(kindMalformed, "", "the path is not valid UTF-8")
	}
	return nil
}

// jsonInt is an integer field of a request body. JSON has one number type
// and JSON Schema's integer is any number whose fraction is zero, so 5, 5.0
// and 5e0 are the same integer and a generated client may send any of them;
// 5.5 is not an integer. The literal is kept as sent and checked by the
// parser, which knows the field's full path (hops[2].limit) where the JSON
// decoder would not.
type jsonInt struct{ raw []byte }

// UnmarshalJSON keeps the literal; int checks it.
func (n *jsonInt) UnmarshalJSON(b []byte) error {
	n.raw = bytes.Clone(b)
	return nil
}

// int returns the value of a present field. Integers beyond int64 are
// clamped, so that they meet the caps' checks as the huge values they are.
func (n jsonInt) int(field string) (int64, error) {
	s := string(n.raw)
	if s == "" {
		return 0, apiErr(kindInvalidParameter, field, "required")
	}
	if s[0] != '-' && (s[0] < '0' || s[0] > '9') {
		return 0, apiErr(kindMalformed, field, "a JSON %s cannot be an integer", literalKind(s))
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	v, ok := integralValue(s)
	if !ok {
		return 0, apiErr(kindInvalidParameter, field, "%s is not an integer", s)
	}
	return v, nil
}

func literalKind(s string) string {
	switch s[0] {
	case '"':
		return "string"
	case '[':
		return "array"
	case '{':
		return "object"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "value"
}

// integralValue reads a JSON number literal exactly, in decimal (a float
// would round 5.000000000000000001 to 5): it is an integer when every digit
// after the decimal point, once the exponent is applied, is zero.
func integralValue(s string) (int64, bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, expText, hasExp := strings.Cut(strings.ToLower(s), "e")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	exp := -len(frac)
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return 0, true
	}
	clamp := func() (int64, bool) {
		if neg {
			return math.MinInt64, true
		}
		return math.MaxInt64, true
	}
	if hasExp {
		e, err := strconv.Atoi(expText)
		if err != nil || e > 1e6 || e < -1e6 {
			// An exponent this large: huge when positive, and no whole
			// number when negative (digits is not zero).
			if strings.HasPrefix(expText, "-") {
				return 0, false
			}
			return clamp()
		}
		exp += e
	}
	if exp < 0 {
		return 0, false
	}
	if len(digits)+exp > 19 {
		return clamp()
	}
	v, err := strconv.ParseInt(digits+strings.Repeat("0", exp), 10, 64)
	if err != nil {
		return clamp()
	}
	if neg {
		v = -v
	}
	return v, true
}

// optInt is an optional integer field: nil when absent or null.
func optInt(n *jsonInt, field string) (*int64, error) {
	if n == nil {
		return nil, nil
	}
	v, err := n.int(field)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// pathStep appends one step of a field path: ".key" (no dot first) in an
// object, "[i]" in an array.
func pathStep(b *strings.Builder, object bool, key string, index int) {
	if !object {
		fmt.Fprintf(b, "[%d]", index)
		return
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(key)
}

// jsonPathAt names the value of a JSON document that ends at offset, with
// array indices (hops[1].limit). The decoder reports a type mismatch with
// the offset just past the value (past the '[' or '{' for an array or
// object) and a field path without indices; this walks the document to the
// same place to name it fully. It returns "" when no value ends there.
func jsonPathAt(data []byte, offset int64) string {
	type frame struct {
		object bool
		key    string
		index  int
		inKey  bool // the object's next string is a key
	}
	var stack []frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			pathStep(&b, f.object, f.key, f.index)
		}
		return b.String()
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			if top.object && top.inKey {
				top.key, top.inKey = tok.(string), false
				continue
			}
			if top.object {
				top.inKey = true
			} else {
				top.index++
			}
		}
		if dec.InputOffset() == offset {
			return path()
		}
		if dec.InputOffset() > offset {
			return ""
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, inKey: true})
		case json.Delim('['):
			stack = append(stack, frame{index: -1})
		}
	}
}

// unknownFieldPath names, with indices, the first field called name in the
// JSON document data that the Go type of dst has no field for: the one
// encoding/json's DisallowUnknownFields reported, by name only. It follows
// the document and the type together, so a known field of the same name
// elsewhere is not taken for it; under maps and untyped values every key
// is allowed. It returns "" when it finds none.
func unknownFieldPath(data []byte, dst any, name string) string {
	type frame struct {
		object bool
		typ    reflect.Type // the struct, map or slice this frame decodes into; nil when untyped
		key    string
		index  int
		inKey  bool
		next   reflect.Type // the type of the value after the current key
	}
	deref := func(t reflect.Type) reflect.Type {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		return t
	}
	var stack []frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			pathStep(&b, f.object, f.key, f.index)
		}
		return b.String()
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	root := deref(reflect.TypeOf(dst))
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		valType := root
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			if top.object && top.inKey {
				key := tok.(string)
				top.inKey, top.next = false, nil
				switch {
				case top.typ == nil:
				case top.typ.Kind() == reflect.Map:
					top.next = deref(top.typ.Elem())
				case top.typ.Kind() == reflect.Struct:
					f, ok := structField(top.typ, key)
					if !ok {
						if key == name {
							top.key = key
							return path()
						}
					} else {
						top.next = deref(f.Type)
					}
				}
				top.key = key
				continue
			}
			if top.object {
				top.inKey = true
				valType = top.next
			} else {
				top.index++
				if top.typ != nil && top.typ.Kind() == reflect.Slice {
					valType = deref(top.typ.Elem())
				} else {
					valType = nil
				}
			}
		}
		if valType != nil && (valType.Kind() == reflect.Interface || valType == reflect.TypeFor[jsonInt]()) {
			valType = nil
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, typ: valType, inKey: true})
		case json.Delim('['):
			stack = append(stack, frame{typ: valType, index: -1})
		}
	}
}

// structField finds the field key decodes into, as encoding/json does:
// the exact tag name first, then one that differs only in case.
func structField(t reflect.Type, key string) (reflect.StructField, bool) {
	var fold reflect.StructField
	found := false
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == key {
			return f, true
		}
		if !found && strings.EqualFold(tag, key) {
			fold, found = f, true
		}
	}
	return fold, found
}
