package normalize

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth bounds nesting so that a hostile message cannot exhaust the
// stack. Change events nest a handful of levels; Connect schemas about ten.
const maxJSONDepth = 64

// jsonParser reads one JSON document in place. It exists because decoding
// dominates ingest CPU: unlike encoding/json it can step over a value
// without building it (the Connect schema, unused source fields), find a
// value's extent without validating it (to compare a schema with the cached
// one), and build values without reflection.
//
// Numbers become int64 when integral and in range, float64 otherwise, and
// keep their literal text as a string when neither holds them exactly
// (integers beyond int64, floats beyond float64). Strings are unescaped;
// invalid UTF-8 becomes U+FFFD, as encoding/json does. Duplicate object keys:
// the last wins.
type jsonParser struct {
	data    []byte
	pos     int
	depth   int
	field   string       // the field being read, for errors ("payload", "key")
	scratch []byte       // unescaped string bytes; valid until the next string is read
	keys    *keyInterner // object keys come from here when set
}

func (p *jsonParser) fail(reason string) *DecodeError {
	return decodeErr(ClassMalformedJSON, p.field, reason+" at offset "+strconv.Itoa(p.pos))
}

func (p *jsonParser) failEOF() *DecodeError { return p.fail("unexpected end of input") }

func (p *jsonParser) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it, 0 at the end.
func (p *jsonParser) peek() byte {
	p.ws()
	if p.pos >= len(p.data) {
		return 0
	}
	return p.data[p.pos]
}

// end checks that only whitespace remains.
func (p *jsonParser) end() error {
	p.ws()
	if p.pos != len(p.data) {
		return p.fail("trailing data after the JSON value")
	}
	return nil
}

func (p *jsonParser) enter() error {
	p.depth++
	if p.depth > maxJSONDepth {
		return p.fail("nesting deeper than " + strconv.Itoa(maxJSONDepth))
	}
	return nil
}

// objectStart consumes '{' and, for an empty object, the '}' too.
func (p *jsonParser) objectStart() (empty bool, err error) {
	if p.peek() != '{' {
		return false, p.fail("expected an object")
	}
	p.pos++
	if err := p.enter(); err != nil {
		return false, err
	}
	if p.peek() == '}' {
		p.pos++
		p.depth--
		return true, nil
	}
	return false, nil
}

// objectKey reads `"key" :`. The returned slice is valid until the next
// string is read.
func (p *jsonParser) objectKey() ([]byte, error) {
	if p.peek() != '"' {
		if p.pos >= len(p.data) {
			return nil, p.failEOF()
		}
		return nil, p.fail("expected an object key")
	}
	k, err := p.rawString()
	if err != nil {
		return nil, err
	}
	if p.peek() != ':' {
		if p.pos >= len(p.data) {
			return nil, p.failEOF()
		}
		return nil, p.fail("expected ':' after an object key")
	}
	p.pos++
	return k, nil
}

// objectNext consumes the ',' or '}' after a member's value.
func (p *jsonParser) objectNext() (more bool, err error) {
	switch p.peek() {
	case ',':
		p.pos++
		return true, nil
	case '}':
		p.pos++
		p.depth--
		return false, nil
	case 0:
		return false, p.failEOF()
	}
	return false, p.fail("expected ',' or '}' in an object")
}

// value reads any JSON value into Go values.
func (p *jsonParser) value() (any, error) {
	switch c := p.peek(); c {
	case '{':
		return p.objectValue()
	case '[':
		return p.arrayValue()
	case '"':
		b, err := p.rawString()
		if err != nil {
			return nil, err
		}
		return string(b), nil
	case 't':
		return true, p.literal("true")
	case 'f':
		return false, p.literal("false")
	case 'n':
		return nil, p.literal("null")
	case 0:
		return nil, p.failEOF()
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return p.number()
		}
		return nil, p.fail("unexpected character " + strconv.QuoteRune(rune(c)))
	}
}

// objectValue reads an object into a map.
func (p *jsonParser) objectValue() (map[string]any, error) {
	empty, err := p.objectStart()
	if err != nil {
		return nil, err
	}
	m := make(map[string]any, 8)
	if empty {
		return m, nil
	}
	for {
		k, err := p.objectKey()
		if err != nil {
			return nil, err
		}
		key := p.keys.key(k)
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		m[key] = v
		more, err := p.objectNext()
		if err != nil {
			return nil, err
		}
		if !more {
			return m, nil
		}
	}
}

func (p *jsonParser) arrayValue() ([]any, error) {
	p.pos++ // '['
	if err := p.enter(); err != nil {
		return nil, err
	}
	out := []any{}
	if p.peek() == ']' {
		p.pos++
		p.depth--
		return out, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
			p.pos++
			p.depth--
			return out, nil
		case 0:
			return nil, p.failEOF()
		default:
			return nil, p.fail("expected ',' or ']' in an array")
		}
	}
}

func (p *jsonParser) literal(word string) error {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return p.fail("invalid literal")
	}
	p.pos += len(word)
	return nil
}

// scanNumber consumes a number and returns its text.
func (p *jsonParser) scanNumber() (lit []byte, isFloat bool, err error) {
	d := p.data
	start, i := p.pos, p.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		p.pos = i
		return nil, false, p.failEOF()
	case d[i] == '0':
		i++
	case d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		p.pos = i
		return nil, false, p.fail("invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		n := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == n {
			p.pos = i
			return nil, false, p.fail("invalid number: no digits after '.'")
		}
		isFloat = true
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		n := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == n {
			p.pos = i
			return nil, false, p.fail("invalid number: no digits in exponent")
		}
		isFloat = true
	}
	p.pos = i
	return d[start:i], isFloat, nil
}

func (p *jsonParser) number() (any, error) {
	lit, isFloat, err := p.scanNumber()
	if err != nil {
		return nil, err
	}
	return numberValue(lit, isFloat), nil
}

// intLiteral converts a valid JSON integer literal; ok is false when it
// does not fit int64.
func intLiteral(lit []byte) (int64, bool) {
	digits, neg := lit, false
	if digits[0] == '-' {
		digits, neg = digits[1:], true
	}
	if len(digits) <= 18 { // cannot overflow int64
		var n int64
		for _, c := range digits {
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return n, true
	}
	n, err := strconv.ParseInt(string(lit), 10, 64)
	return n, err == nil
}

// numberValue converts a valid JSON number literal.
func numberValue(lit []byte, isFloat bool) any {
	if !isFloat {
		if n, ok := intLiteral(lit); ok {
			return n
		}
		return string(lit)
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return string(lit)
	}
	return f
}

// rawString reads a string and returns its unescaped bytes. When the string
// has no escapes and is valid UTF-8 the slice aliases the input; otherwise it
// is p.scratch. Either way it is valid until the next string is read.
func (p *jsonParser) rawString() ([]byte, error) {
	d := p.data
	start := p.pos + 1 // after '"'
	high := false
	for i := start; i < len(d); i++ {
		c := d[i]
		switch {
		case c == '"':
			if high && !utf8.Valid(d[start:i]) {
				return p.unescape(start)
			}
			p.pos = i + 1
			return d[start:i], nil
		case c == '\\':
			return p.unescape(start)
		case c < 0x20:
			p.pos = i
			return nil, p.fail("control character in a string")
		case c >= utf8.RuneSelf:
			high = true
		}
	}
	p.pos = len(d)
	return nil, p.failEOF()
}

// unescape is rawString's slow path, from the first byte of the string.
func (p *jsonParser) unescape(i int) ([]byte, error) {
	d := p.data
	buf := p.scratch[:0]
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			p.pos = i + 1
			p.scratch = buf
			return buf, nil
		case c < 0x20:
			p.pos = i
			return nil, p.fail("control character in a string")
		case c < utf8.RuneSelf && c != '\\':
			buf = append(buf, c)
			i++
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				buf = utf8.AppendRune(buf, utf8.RuneError)
			} else {
				buf = append(buf, d[i:i+size]...)
			}
			i += size
		default: // backslash
			if i+1 >= len(d) {
				p.pos = len(d)
				return nil, p.failEOF()
			}
			switch e := d[i+1]; e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := hex4(d, i+2)
				if !ok {
					p.pos = i
					return nil, p.fail("invalid \\u escape")
				}
				i += 6
				if utf16.IsSurrogate(r) {
					r2, ok2 := rune(0), false
					if i+1 < len(d) && d[i] == '\\' && d[i+1] == 'u' {
						r2, ok2 = hex4(d, i+2)
					}
					if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				buf = utf8.AppendRune(buf, r)
				continue
			default:
				p.pos = i
				return nil, p.fail("invalid escape")
			}
			i += 2
		}
	}
	p.pos = len(d)
	return nil, p.failEOF()
}

func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// skip steps over one value, validating it, without building it.
func (p *jsonParser) skip() error {
	switch c := p.peek(); c {
	case '{':
		empty, err := p.objectStart()
		if err != nil || empty {
			return err
		}
		for {
			if _, err := p.objectKey(); err != nil {
				return err
			}
			if err := p.skip(); err != nil {
				return err
			}
			more, err := p.objectNext()
			if err != nil || !more {
				return err
			}
		}
	case '[':
		p.pos++
		if err := p.enter(); err != nil {
			return err
		}
		if p.peek() == ']' {
			p.pos++
			p.depth--
			return nil
		}
		for {
			if err := p.skip(); err != nil {
				return err
			}
			switch p.peek() {
			case ',':
				p.pos++
			case ']':
				p.pos++
				p.depth--
				return nil
			case 0:
				return p.failEOF()
			default:
				return p.fail("expected ',' or ']' in an array")
			}
		}
	case '"':
		_, err := p.rawString()
		return err
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	case 0:
		return p.failEOF()
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			_, _, err := p.scanNumber()
			return err
		}
		return p.fail("unexpected character " + strconv.QuoteRune(rune(c)))
	}
}

// skipExtent steps over one object or array by matching brackets outside
// strings, without validating what is inside. It only finds where the value
// ends: callers either compare the bytes with ones already validated or
// parse them with value() before trusting them. Scalars are skipped by skip.
func (p *jsonParser) skipExtent() error {
	c := p.peek()
	if c != '{' && c != '[' {
		return p.skip()
	}
	d := p.data
	depth := 0
	for i := p.pos; i < len(d); i++ {
		switch d[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				p.pos = i + 1
				return nil
			}
		case '"':
			for i++; i < len(d) && d[i] != '"'; i++ {
				if d[i] == '\\' {
					i++
				}
			}
		}
	}
	p.pos = len(d)
	return p.failEOF()
}

// optString reads a string or null (""), without building an interface.
func (p *jsonParser) optString(field string) (string, error) {
	switch p.peek() {
	case '"':
		b, err := p.rawString()
		return string(b), err
	case 'n':
		return "", p.literal("null")
	}
	if err := p.skip(); err != nil {
		return "", err
	}
	return "", schemaViolation(field, "not a string")
}

// optInt reads an integer or null (0, null true), without building an
// interface.
func (p *jsonParser) optInt(field string) (n int64, null bool, err error) {
	switch c := p.peek(); {
	case c == 'n':
		return 0, true, p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		lit, isFloat, err := p.scanNumber()
		if err != nil {
			return 0, false, err
		}
		if !isFloat {
			if n, ok := intLiteral(lit); ok {
				return n, false, nil
			}
		}
	default:
		if err := p.skip(); err != nil {
			return 0, false, err
		}
	}
	return 0, false, schemaViolation(field, "not an integer")
}

// optRow reads a row image (an object, or null) typed by c; c nil means no
// schema.
func (p *jsonParser) optRow(c *converter, path string) (map[string]any, error) {
	switch p.peek() {
	case '{':
		if c == nil {
			return p.objectValue()
		}
		m, _, err := p.row(c, path, "")
		return m, err
	case 'n':
		return nil, p.literal("null")
	}
	if err := p.skip(); err != nil {
		return nil, err
	}
	return nil, schemaViolation(path, "the row image is not an object")
}

// row reads an object whose fields the struct converter c describes,
// converting each value as it is read. Keys the schema names reuse the
// schema's strings, so a column name is not allocated per message; the
// JSON converter writes fields in schema order, so the next field is tried
// first. When metaPrefix is set, members whose key has it are returned in
// meta instead of the map (flattened rows' metadata).
func (p *jsonParser) row(c *converter, path, metaPrefix string) (m map[string]any, meta []keyPart, err error) {
	if c == nil || c.kind != convStruct {
		c = &converter{kind: convStruct}
	}
	empty, err := p.objectStart()
	if err != nil {
		return nil, nil, err
	}
	m = make(map[string]any, len(c.fields))
	if empty {
		return m, nil, nil
	}
	next := 0
	for {
		k, err := p.objectKey()
		if err != nil {
			return nil, nil, err
		}
		var (
			name string
			fc   *converter
		)
		if i := c.fieldIndex(k, next); i >= 0 {
			name, fc, next = c.fields[i].name, c.fields[i].conv, i+1
		} else {
			name = p.keys.key(k)
		}
		v, err := p.value()
		if err != nil {
			return nil, nil, err
		}
		if fc != nil && v != nil {
			if v, err = fc.convert(v, path, name); err != nil {
				return nil, nil, err
			}
		}
		if metaPrefix != "" && strings.HasPrefix(name, metaPrefix) {
			if meta == nil {
				meta = make([]keyPart, 0, 8)
			}
			meta = append(meta, keyPart{name: name, value: v})
		} else {
			m[name] = v
		}
		more, err := p.objectNext()
		if err != nil {
			return nil, nil, err
		}
		if !more {
			return m, meta, nil
		}
	}
}

// wholeObject reads data as exactly one JSON object: a malformed value is
// malformed_json, any other well-formed value a schema_violation saying
// that the value is not what (e.g. "a JSON object").
func wholeObject(data []byte, keys *keyInterner, what string) (map[string]any, error) {
	p := jsonParser{data: data, field: "value", keys: keys}
	if p.peek() != '{' {
		if _, err := p.value(); err != nil {
			return nil, err
		}
		if err := p.end(); err != nil {
			return nil, err
		}
		return nil, schemaViolation("", "the value is not "+what)
	}
	m, err := p.objectValue()
	if err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	return m, nil
}
