package normalize

import (
	"bytes"
	"encoding/base64"
	"hash/maphash"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// convKind is what a Connect schema says a value is, reduced to what
// decoding has to do with it.
type convKind uint8

const (
	convAny             convKind = iota // no type information: keep the value
	convInt                             // int8..int64
	convFloat                           // float32, float64
	convBool                            // boolean
	convString                          // string (also Json, Uuid, Enum, ZonedTime, …)
	convBytes                           // bytes as base64 text, kept as text
	convDecimal                         // org.apache.kafka.connect.data.Decimal
	convVarDecimal                      // io.debezium.data.VariableScaleDecimal
	convDate                            // days since epoch → "2006-01-02"
	convTimeMillis                      // ms past midnight → "15:04:05.000"
	convTimeMicros                      // µs past midnight → "15:04:05.000000"
	convTimeNanos                       // ns past midnight → "15:04:05.000000000"
	convTimestampMillis                 // ms since epoch → time.Time
	convTimestampMicros                 // µs since epoch → time.Time
	convTimestampNanos                  // ns since epoch → time.Time
	convZonedTimestamp                  // ISO-8601 string → time.Time
	convArray
	convMap
	convStruct
)

// converter turns the JSON converter's rendering of one Connect-typed value
// into the value an envelope carries.
type converter struct {
	kind   convKind
	scale  int32            // convDecimal
	elem   *converter       // convArray items, convMap values
	fields []fieldConverter // convStruct
}

type fieldConverter struct {
	name string
	conv *converter
}

// connectSchema is a parsed value or key schema.
type connectSchema struct {
	raw []byte // the exact schema bytes, to tell hash collisions apart
	// envelope is true for a Debezium change-event envelope (fields op and
	// source); before and after then convert the row images. Otherwise row
	// converts the whole value: a flattened row or a key.
	envelope      bool
	before, after *converter
	row           *converter
}

func schemaViolation(field, reason string) *DecodeError {
	return decodeErr(ClassSchemaViolation, field, reason)
}

// compileSchema parses a Connect schema given as JSON.
func compileSchema(raw []byte) (*connectSchema, error) {
	p := jsonParser{data: raw, field: "schema"}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, schemaViolation("schema", "the Connect schema is not an object")
	}
	root, err := compileConverter(m, "schema")
	if err != nil {
		return nil, err
	}
	return classifySchema(raw, root), nil
}

// classifySchema tells an envelope schema from a row schema.
func classifySchema(raw []byte, root *converter) *connectSchema {
	cs := &connectSchema{raw: raw, row: root}
	if root.kind != convStruct {
		return cs
	}
	var hasOp, hasSource bool
	for _, f := range root.fields {
		switch f.name {
		case "op":
			hasOp = true
		case "source":
			hasSource = true
		case "before":
			cs.before = f.conv
		case "after":
			cs.after = f.conv
		}
	}
	if hasOp && hasSource {
		cs.envelope, cs.row = true, nil
	} else {
		cs.before, cs.after = nil, nil
	}
	return cs
}

// compileConverter builds the converter of one schema node. Its recursion
// is bounded by the parser's nesting limit: every level of schema is a level
// of JSON.
func compileConverter(m map[string]any, path string) (*converter, error) {
	typ, _ := m["type"].(string)
	name, _ := m["name"].(string)
	switch name {
	case "org.apache.kafka.connect.data.Decimal":
		params, _ := m["parameters"].(map[string]any)
		s, _ := params["scale"].(string)
		scale, err := strconv.ParseInt(s, 10, 32)
		if err != nil || scale < 0 || scale > 1000 {
			return nil, schemaViolation(path, "Decimal without a valid parameters.scale")
		}
		return &converter{kind: convDecimal, scale: int32(scale)}, nil
	case "io.debezium.data.VariableScaleDecimal":
		return &converter{kind: convVarDecimal}, nil
	case "io.debezium.time.Date", "org.apache.kafka.connect.data.Date":
		return &converter{kind: convDate}, nil
	case "io.debezium.time.Time", "org.apache.kafka.connect.data.Time":
		return &converter{kind: convTimeMillis}, nil
	case "io.debezium.time.MicroTime":
		return &converter{kind: convTimeMicros}, nil
	case "io.debezium.time.NanoTime":
		return &converter{kind: convTimeNanos}, nil
	case "io.debezium.time.Timestamp", "org.apache.kafka.connect.data.Timestamp":
		return &converter{kind: convTimestampMillis}, nil
	case "io.debezium.time.MicroTimestamp":
		return &converter{kind: convTimestampMicros}, nil
	case "io.debezium.time.NanoTimestamp":
		return &converter{kind: convTimestampNanos}, nil
	case "io.debezium.time.ZonedTimestamp":
		return &converter{kind: convZonedTimestamp}, nil
	}
	switch typ {
	case "int8", "int16", "int32", "int64":
		return &converter{kind: convInt}, nil
	case "float", "double", "float32", "float64":
		// The JSON converter names FLOAT32 and FLOAT64 "float" and "double";
		// the Connect type names are accepted too.
		return &converter{kind: convFloat}, nil
	case "boolean":
		return &converter{kind: convBool}, nil
	case "string":
		return &converter{kind: convString}, nil
	case "bytes":
		return &converter{kind: convBytes}, nil
	case "array":
		items, ok := m["items"].(map[string]any)
		if !ok {
			return nil, schemaViolation(path, "array schema without items")
		}
		elem, err := compileConverter(items, path+".items")
		if err != nil {
			return nil, err
		}
		return &converter{kind: convArray, elem: elem}, nil
	case "map":
		values, ok := m["values"].(map[string]any)
		if !ok {
			return nil, schemaViolation(path, "map schema without values")
		}
		elem, err := compileConverter(values, path+".values")
		if err != nil {
			return nil, err
		}
		return &converter{kind: convMap, elem: elem}, nil
	case "struct":
		fs, ok := m["fields"].([]any)
		if !ok {
			return nil, schemaViolation(path, "struct schema without fields")
		}
		c := &converter{kind: convStruct, fields: make([]fieldConverter, 0, len(fs))}
		for _, f := range fs {
			fm, ok := f.(map[string]any)
			if !ok {
				return nil, schemaViolation(path, "struct field is not an object")
			}
			fname, ok := fm["field"].(string)
			if !ok {
				return nil, schemaViolation(path, "struct field without a name")
			}
			fc, err := compileConverter(fm, path+"."+fname)
			if err != nil {
				return nil, err
			}
			c.fields = append(c.fields, fieldConverter{name: fname, conv: fc})
		}
		return c, nil
	}
	// A type this decoder does not know (a newer Connect, a converter's own
	// extension) is not a reason to reject every event of the topic: its
	// values pass through as the JSON has them.
	return &converter{kind: convAny}, nil
}

// fieldIndex finds the struct field named k, trying index hint first.
func (c *converter) fieldIndex(k []byte, hint int) int {
	if hint < len(c.fields) && c.fields[hint].name == string(k) {
		return hint
	}
	for i := range c.fields {
		if c.fields[i].name == string(k) {
			return i
		}
	}
	return -1
}

// convertRow converts, in place, the columns of row that the struct
// converter c describes. Columns the schema does not name are kept as they
// are.
func convertRow(row map[string]any, c *converter, path string) error {
	if c == nil || c.kind != convStruct {
		return nil
	}
	for _, f := range c.fields {
		v, ok := row[f.name]
		if !ok || v == nil {
			continue
		}
		nv, err := f.conv.convert(v, path, f.name)
		if err != nil {
			return err
		}
		row[f.name] = nv
	}
	return nil
}

// convert converts one value. path and name locate it for errors; they are
// joined only when an error is returned.
func (c *converter) convert(v any, path, name string) (any, error) {
	if v == nil {
		return nil, nil
	}
	where := func() string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	bad := func(what string) (any, error) {
		return nil, schemaViolation(where(), what)
	}
	switch c.kind {
	case convAny:
		return v, nil
	case convInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case string: // an integer literal beyond int64 (see numberValue)
			if isIntLiteral(x) {
				return x, nil
			}
		}
		return bad("want an integer")
	case convFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		case string:
			// A number beyond float64 keeps its text; Jackson writes the
			// non-finite floats as these strings.
			if x == "NaN" || x == "Infinity" || x == "-Infinity" || isNumberLiteral(x) {
				return x, nil
			}
		}
		return bad("want a number")
	case convBool:
		if _, ok := v.(bool); ok {
			return v, nil
		}
		return bad("want a boolean")
	case convString, convBytes:
		if _, ok := v.(string); ok {
			return v, nil
		}
		return bad("want a string")
	case convDecimal:
		s, err := decimalValue(v, c.scale)
		if err != nil {
			return bad(err.Error())
		}
		return s, nil
	case convVarDecimal:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("VariableScaleDecimal is not an object")
		}
		scale, ok := m["scale"].(int64)
		if !ok || scale < 0 || scale > 1000 {
			return bad("VariableScaleDecimal without a valid scale")
		}
		s, err := decimalValue(m["value"], int32(scale))
		if err != nil {
			return bad(err.Error())
		}
		return s, nil
	case convDate:
		n, ok := v.(int64)
		if !ok {
			return bad("Date is not an integer")
		}
		if n < -719162 || n > 2932896 { // 0001-01-01 .. 9999-12-31
			return n, nil
		}
		return time.Unix(n*86400, 0).UTC().Format(time.DateOnly), nil
	case convTimeMillis, convTimeMicros, convTimeNanos:
		n, ok := v.(int64)
		if !ok {
			return bad("time of day is not an integer")
		}
		return formatTimeOfDay(n, c.kind), nil
	case convTimestampMillis, convTimestampMicros, convTimestampNanos:
		n, ok := v.(int64)
		if !ok {
			return bad("timestamp is not an integer")
		}
		t := unixTime(n, c.kind)
		if !validTime(t) {
			// PostgreSQL's ±infinity arrive as ±2^63-1: keep the number.
			return n, nil
		}
		return t, nil
	case convZonedTimestamp:
		s, ok := v.(string)
		if !ok {
			return bad("ZonedTimestamp is not a string")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			if s == "infinity" || s == "-infinity" {
				return s, nil
			}
			return nil, decodeErr(ClassBadTime, where(), "ZonedTimestamp "+strconv.Quote(s)+" is not RFC 3339")
		}
		return t.UTC(), nil
	case convArray:
		a, ok := v.([]any)
		if !ok {
			return bad("want an array")
		}
		for i, e := range a {
			ne, err := c.elem.convert(e, where(), strconv.Itoa(i))
			if err != nil {
				return nil, err
			}
			a[i] = ne
		}
		return a, nil
	case convMap:
		// Maps with string keys are objects; others are arrays of [key,
		// value] pairs, kept as they are.
		if m, ok := v.(map[string]any); ok {
			for k, e := range m {
				ne, err := c.elem.convert(e, where(), k)
				if err != nil {
					return nil, err
				}
				m[k] = ne
			}
		}
		return v, nil
	case convStruct:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("want an object")
		}
		if err := convertRow(m, c, where()); err != nil {
			return nil, err
		}
		return m, nil
	}
	return v, nil
}

func unixTime(n int64, k convKind) time.Time {
	switch k {
	case convTimestampMillis:
		return time.UnixMilli(n).UTC()
	case convTimestampMicros:
		return time.UnixMicro(n).UTC()
	}
	return time.Unix(0, n).UTC()
}

// formatTimeOfDay renders a TIME column. MySQL TIME spans -838:59:59 to
// 838:59:59, so hours may exceed 23 and the value may be negative.
func formatTimeOfDay(n int64, k convKind) string {
	var unit int64
	var digits int
	switch k {
	case convTimeMillis:
		unit, digits = 1e3, 3
	case convTimeMicros:
		unit, digits = 1e6, 6
	default:
		unit, digits = 1e9, 9
	}
	b := make([]byte, 0, 24)
	u := uint64(n)
	if n < 0 {
		b = append(b, '-')
		u = uint64(-n) // two's complement: correct for math.MinInt64 too
	}
	sec, frac := u/uint64(unit), u%uint64(unit)
	h, m, s := sec/3600, sec/60%60, sec%60
	if h < 10 {
		b = append(b, '0')
	}
	b = strconv.AppendUint(b, h, 10)
	b = append(b, ':', byte('0'+m/10), byte('0'+m%10), ':', byte('0'+s/10), byte('0'+s%10), '.')
	fs := strconv.FormatUint(frac, 10)
	for i := len(fs); i < digits; i++ {
		b = append(b, '0')
	}
	b = append(b, fs...)
	return string(b)
}

// decimalValue renders a Decimal: base64 of the big-endian two's-complement
// unscaled value (the default decimal.handling.mode=precise), or a JSON
// number (converters configured with decimal.format=NUMERIC), or a string
// already in decimal form (decimal.handling.mode=string).
func decimalValue(v any, scale int32) (string, error) {
	switch x := v.(type) {
	case string:
		if isNumberLiteral(x) && !strings.ContainsAny(x, "eE") && strings.ContainsRune(x, '.') {
			return x, nil
		}
		b, err := base64.StdEncoding.DecodeString(x)
		if err != nil {
			return "", errDecimal("Decimal is not base64")
		}
		if len(b) == 0 {
			return "", errDecimal("Decimal has no bytes")
		}
		return formatUnscaled(b, scale), nil
	case int64:
		return formatFloatDecimal(float64(x), scale, strconv.FormatInt(x, 10)), nil
	case float64:
		return formatFloatDecimal(x, scale, ""), nil
	}
	return "", errDecimal("Decimal is not a string or number")
}

type errDecimal string

func (e errDecimal) Error() string { return string(e) }

func formatFloatDecimal(f float64, scale int32, intText string) string {
	if intText != "" && scale == 0 {
		return intText
	}
	return strconv.FormatFloat(f, 'f', int(scale), 64)
}

// formatUnscaled renders a two's-complement big-endian integer divided by
// 10^scale.
func formatUnscaled(b []byte, scale int32) string {
	var digits string
	neg := b[0]&0x80 != 0
	if len(b) <= 8 {
		var u uint64
		for _, c := range b {
			u = u<<8 | uint64(c)
		}
		if neg {
			u |= math.MaxUint64 << (8 * uint(len(b))) // sign-extend
			if len(b) == 8 {
				u = ^u + 1
			} else {
				u = uint64(-int64(u))
			}
		}
		digits = strconv.FormatUint(u, 10)
	} else {
		n := new(big.Int).SetBytes(b)
		if neg {
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
			n.Neg(n)
		}
		digits = n.String()
	}
	if scale > 0 {
		if pad := int(scale) + 1 - len(digits); pad > 0 {
			digits = strings.Repeat("0", pad) + digits
		}
		digits = digits[:len(digits)-int(scale)] + "." + digits[len(digits)-int(scale):]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

func isIntLiteral(s string) bool {
	p := jsonParser{data: []byte(s)}
	_, isFloat, err := p.scanNumber()
	return err == nil && !isFloat && p.pos == len(s)
}

func isNumberLiteral(s string) bool {
	if s == "" {
		return false
	}
	p := jsonParser{data: []byte(s)}
	_, _, err := p.scanNumber()
	return err == nil && p.pos == len(s)
}

// schemaCache keeps parsed Connect schemas keyed by their exact bytes. The
// JSON converter repeats the schema in every message and it changes only
// with DDL, so the common case is the same bytes as the previous message:
// last answers that with one comparison and no hashing or locking. Other
// schemas (another table on the same topic, the key schema, the previous
// version during a schema change) are in a bounded LRU keyed by a hash of
// the bytes, with the bytes compared on a hit.
type schemaCache struct {
	last atomic.Pointer[connectSchema]
	lru  *lru.Cache[uint64, *connectSchema]
	seed maphash.Seed
}

func newSchemaCache(size int) (*schemaCache, error) {
	c, err := lru.New[uint64, *connectSchema](size)
	if err != nil {
		return nil, err
	}
	return &schemaCache{lru: c, seed: maphash.MakeSeed()}, nil
}

// read consumes the schema value at p's position and returns it parsed. A
// schema equal to a cached one is stepped over without being parsed: a
// cached schema is a complete JSON value, so when the input starts with its
// bytes the value ends exactly there.
func (c *schemaCache) read(p *jsonParser) (*connectSchema, error) {
	p.ws()
	rest := p.data[p.pos:]
	if s := c.last.Load(); s != nil && bytes.HasPrefix(rest, s.raw) {
		p.pos += len(s.raw)
		return s, nil
	}
	start := p.pos
	if err := p.skipExtent(); err != nil {
		return nil, err
	}
	raw := p.data[start:p.pos]
	h := maphash.Bytes(c.seed, raw)
	if s, ok := c.lru.Get(h); ok && bytes.Equal(s.raw, raw) {
		c.last.Store(s)
		return s, nil
	}
	s, err := compileSchema(bytes.Clone(raw))
	if err != nil {
		return nil, err
	}
	c.lru.Add(h, s)
	c.last.Store(s)
	return s, nil
}
