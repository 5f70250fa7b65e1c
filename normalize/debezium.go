package normalize

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// debeziumDecoder decodes every shape of Debezium JSON a topic may carry;
// it tells them apart per message, so a topic may mix them.
//
//   - {"schema":…,"payload":…}: the JSON converter with schemas.enable=true.
//     The schema types the row values (decimals, temporal types) and is
//     cached by its bytes (schemaCache). A wrapper written payload first is
//     understood too, without the cache.
//   - the envelope alone (schemas.enable=false): numbers and strings as they
//     are, since nothing says a string is a base64 decimal.
//   - a flattened row (ExtractNewRecordState), with or without schema, with
//     the metadata it adds under DebeziumConfig.FieldPrefix.
//   - a tombstone: a nil or empty value, the JSON null, or the legacy
//     {"schema":null,"payload":null}.
//
// A value is an envelope when its schema is one (fields op and source) or,
// without schema, when it has an op and an object source; any other
// object is a flattened row.
type debeziumDecoder struct {
	cfg    Config
	kind   Kind
	prefix string
	// Flattened metadata field names for errors, built once.
	prefixOp, prefixSourceTs, prefixTs string
	now                                func() time.Time
	values                             *schemaCache // value schemas
	keys                               *schemaCache // key schemas
	names                              keyInterner  // object keys of schemaless rows
	// placeholder is the unavailable-value placeholder, placeholder64 the
	// base64 text of its bytes (how the JSON converter writes a bytes
	// column); both "" when detection is off.
	placeholder, placeholder64 string
	// rows says whether the last flattened row of the topic had a deleted
	// member (rowsUnseen until one arrives). Tombstones read it to tell
	// that the connector drops delete events. It is written only when it
	// changes, so concurrent decodes of one topic do not contend on it.
	rows atomic.Uint32
}

// The values of debeziumDecoder.rows.
const (
	rowsUnseen uint32 = iota
	rowsWithoutDeleted
	rowsWithDeleted
)

func newDebeziumDecoder(cfg Config, o options) (*debeziumDecoder, error) {
	size := cfg.SchemaCacheSize
	if size == 0 {
		size = DefaultSchemaCacheSize
	}
	values, err := newSchemaCache(size)
	if err != nil {
		return nil, err
	}
	keys, err := newSchemaCache(size)
	if err != nil {
		return nil, err
	}
	d := &debeziumDecoder{cfg: cfg, kind: cfg.Kind, prefix: cfg.Debezium.FieldPrefix, now: o.now, values: values, keys: keys}
	if d.kind == "" {
		d.kind = KindCDC
	}
	if d.prefix == "" {
		d.prefix = "__"
	}
	d.prefixOp, d.prefixSourceTs, d.prefixTs = d.prefix+"op", d.prefix+"source_ts_ms", d.prefix+"ts_ms"
	if d.placeholder = cfg.Debezium.placeholder(); d.placeholder != "" {
		d.placeholder64 = base64.StdEncoding.EncodeToString([]byte(d.placeholder))
	}
	return d, nil
}

// rawEvent is a Debezium envelope as read, before interpretation.
type rawEvent struct {
	before, after    map[string]any
	afterSchema      *converter // the after image's schema; nil without one
	op               string
	hasOp, hasSource bool
	tsMs, tsUs, tsNs int64 // when the connector processed the event
	src              sourceInfo
}

// sourceInfo is what decoding needs from the envelope's source block.
type sourceInfo struct {
	name, db, schema, table, file   string
	tsMs, tsUs, tsNs, lsn, pos, row int64
	hasLSN                          bool
}

// Decode implements Decoder.
func (d *debeziumDecoder) Decode(msg Message) ([]Envelope, error) {
	if len(msg.Value) == 0 {
		return d.tombstone(&msg)
	}
	p := jsonParser{data: msg.Value, field: "value", keys: &d.names}
	switch p.peek() {
	case '{':
		return d.decodeObject(&msg, &p)
	case 'n':
		if err := p.literal("null"); err != nil {
			return nil, err
		}
		if err := p.end(); err != nil {
			return nil, err
		}
		return d.tombstone(&msg)
	case 0:
		return nil, p.fail("the value is only whitespace")
	}
	if _, err := p.value(); err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	return nil, schemaViolation("", "the value is not a JSON object")
}

// decodeObject reads a value that starts with '{'. The schema/payload
// wrapper is read in one pass, stepping over a cached schema; anything else
// is read as one map and classified.
func (d *debeziumDecoder) decodeObject(msg *Message, p *jsonParser) ([]Envelope, error) {
	start := p.pos
	empty, err := p.objectStart()
	if err != nil {
		return nil, err
	}
	if !empty {
		k, err := p.objectKey()
		if err != nil {
			return nil, err
		}
		if string(k) == "schema" {
			envs, wrapped, err := d.decodeWrapped(msg, p)
			if err != nil || wrapped {
				return envs, err
			}
		}
	}
	// Not the wrapper: an envelope without schema, or a flattened row.
	p.pos, p.depth = start, 0
	row, src, meta, err := parseUnwrapped(p, d.prefix)
	if err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	return d.fromUnwrapped(msg, row, src, meta)
}

// fromUnwrapped interprets what parseUnwrapped read: an envelope when it has
// an op and an object source, else a flattened row.
func (d *debeziumDecoder) fromUnwrapped(msg *Message, row map[string]any, src []byte, meta []keyPart) ([]Envelope, error) {
	if len(row) == 2 && src == nil && meta == nil {
		if envs, ok, err := d.fromReorderedWrapper(msg, row); ok {
			return envs, err
		}
	}
	if f := missingEnvelopeMember(row, src != nil); f != "" {
		return nil, decodeErr(ClassMissingField, f, "a Debezium change event (before/after with op or source) without "+f+"; it is never read as a flattened row")
	}
	if _, hasOp := row["op"]; hasOp && src != nil {
		ev, err := eventFromMap(row)
		if err != nil {
			return nil, err
		}
		ev.hasSource = true
		sp := jsonParser{data: src, field: "source"}
		if err := parseSource(&sp, &ev.src); err != nil {
			return nil, err
		}
		return d.fromEvent(msg, ev)
	}
	if src != nil {
		sp := jsonParser{data: src, field: "source"}
		m, err := sp.objectValue()
		if err != nil {
			return nil, err
		}
		row["source"] = m
	}
	return d.fromRow(msg, row, meta, nil)
}

// fromReorderedWrapper handles {"payload":…,"schema":…}: the JSON converter
// writes the schema first, and only that order takes the fast path, but a
// producer that writes the payload first still means the wrapper. ok is
// false when row is not such a wrapper.
func (d *debeziumDecoder) fromReorderedWrapper(msg *Message, row map[string]any) (envs []Envelope, ok bool, err error) {
	schema, hasSchema := row["schema"]
	payload, hasPayload := row["payload"]
	sm, isObj := schema.(map[string]any)
	if !hasSchema || !hasPayload || (schema != nil && !isObj) {
		return nil, false, nil
	}
	if payload == nil {
		envs, err = d.tombstone(msg)
		return envs, true, err
	}
	pm, isObj := payload.(map[string]any)
	if !isObj {
		return nil, true, schemaViolation("payload", "the payload is not an object")
	}
	if sm == nil {
		envs, err = d.fromMapUnwrapped(msg, pm)
		return envs, true, err
	}
	root, err := compileConverter(sm, "schema")
	if err != nil {
		return nil, true, err
	}
	cs := classifySchema(nil, root)
	if !cs.envelope {
		if err := convertRow(pm, cs.row, ""); err != nil {
			return nil, true, err
		}
		envs, err = d.fromRow(msg, pm, d.splitMeta(pm), cs.row)
		return envs, true, err
	}
	ev, err := eventFromMap(pm)
	if err == nil {
		err = convertRow(ev.before, cs.before, "before")
	}
	if err == nil {
		err = convertRow(ev.after, cs.after, "after")
	}
	if err != nil {
		return nil, true, err
	}
	ev.afterSchema = cs.after
	envs, err = d.fromEvent(msg, ev)
	return envs, true, err
}

// fromMapUnwrapped interprets an already built map as fromUnwrapped does.
func (d *debeziumDecoder) fromMapUnwrapped(msg *Message, m map[string]any) ([]Envelope, error) {
	_, srcObj := m["source"].(map[string]any)
	if f := missingEnvelopeMember(m, srcObj); f != "" {
		return nil, decodeErr(ClassMissingField, f, "a Debezium change event (before/after with op or source) without "+f+"; it is never read as a flattened row")
	}
	if _, hasOp := m["op"]; hasOp {
		if _, isObj := m["source"].(map[string]any); isObj {
			ev, err := eventFromMap(m)
			if err != nil {
				return nil, err
			}
			return d.fromEvent(msg, ev)
		}
	}
	return d.fromRow(msg, m, d.splitMeta(m), nil)
}

// missingEnvelopeMember names the member a Debezium change event lacks
// ("op" or "source"), or returns "" when row is a whole event or a
// flattened row. An object is taken for a change event when it has a
// before or after member that is an object or null, together with an op or
// an object source: a flattened row has neither an op column (the op is
// __op) nor row images. Guessing otherwise would read an event that lost
// its op as an upsert of a row whose columns are before, after and source.
func missingEnvelopeMember(row map[string]any, srcObj bool) string {
	image := false
	for _, k := range [...]string{"before", "after"} {
		if v, ok := row[k]; ok {
			if _, isObj := v.(map[string]any); isObj || v == nil {
				image = true
			}
		}
	}
	if !image {
		return ""
	}
	_, hasOp := row["op"]
	switch {
	case hasOp && !srcObj:
		return "source"
	case srcObj && !hasOp:
		return "op"
	}
	return ""
}

// splitMeta takes the flattened metadata members out of a row built as a
// map.
func (d *debeziumDecoder) splitMeta(row map[string]any) []keyPart {
	var meta []keyPart
	for k, v := range row {
		if strings.HasPrefix(k, d.prefix) {
			meta = append(meta, keyPart{name: k, value: v})
			delete(row, k)
		}
	}
	return meta
}

// parseUnwrapped reads an object that is either an envelope or a flattened
// row. An object-valued source member is only stepped over and returned as
// bytes: an envelope's source is then read typed (parseSource) instead of
// into a map, and a row's "source" column is read into a map. Members whose
// key has metaPrefix are returned in meta rather than in the row.
func parseUnwrapped(p *jsonParser, metaPrefix string) (row map[string]any, src []byte, meta []keyPart, err error) {
	empty, err := p.objectStart()
	if err != nil {
		return nil, nil, nil, err
	}
	row = make(map[string]any, 8)
	if empty {
		return row, nil, nil, nil
	}
	for {
		k, err := p.objectKey()
		if err != nil {
			return nil, nil, nil, err
		}
		key := envelopeKey(k)
		switch {
		case key == "source" && p.peek() == '{':
			start := p.pos
			if err := p.skip(); err != nil {
				return nil, nil, nil, err
			}
			src = p.data[start:p.pos]
			delete(row, "source")
		case key == "" && bytes.HasPrefix(k, []byte(metaPrefix)):
			name := p.keys.key(k)
			v, err := p.value()
			if err != nil {
				return nil, nil, nil, err
			}
			if meta == nil {
				meta = make([]keyPart, 0, 8)
			}
			meta = append(meta, keyPart{name: name, value: v})
		default:
			if key == "" {
				key = p.keys.key(k)
			}
			v, err := p.value()
			if err != nil {
				return nil, nil, nil, err
			}
			row[key] = v
			if key == "source" {
				src = nil
			}
		}
		more, err := p.objectNext()
		if err != nil {
			return nil, nil, nil, err
		}
		if !more {
			return row, src, meta, nil
		}
	}
}

// envelopeKey returns the envelope member names as constants, so that they
// are not allocated per message; "" for other keys.
func envelopeKey(k []byte) string {
	switch string(k) {
	case "before":
		return "before"
	case "after":
		return "after"
	case "source":
		return "source"
	case "op":
		return "op"
	case "ts_ms":
		return "ts_ms"
	case "ts_us":
		return "ts_us"
	case "ts_ns":
		return "ts_ns"
	case "transaction":
		return "transaction"
	}
	return ""
}

// decodeWrapped reads the rest of an object whose first member is "schema".
// wrapped is false when the object turns out not to be exactly
// {"schema":…,"payload":…}; the caller then reads it as a plain object.
func (d *debeziumDecoder) decodeWrapped(msg *Message, p *jsonParser) (envs []Envelope, wrapped bool, err error) {
	var cs *connectSchema
	if p.peek() == 'n' {
		if err := p.literal("null"); err != nil {
			return nil, true, err
		}
	} else {
		if p.peek() != '{' {
			return nil, false, nil
		}
		if cs, err = d.values.read(p); err != nil {
			return nil, true, err
		}
	}
	more, err := p.objectNext()
	if err != nil {
		return nil, true, err
	}
	if !more {
		return nil, false, nil
	}
	k, err := p.objectKey()
	if err != nil {
		return nil, true, err
	}
	if string(k) != "payload" {
		return nil, false, nil
	}
	var (
		ev        *rawEvent
		row       map[string]any
		src       []byte
		meta      []keyPart
		tombstone bool
	)
	p.field = "payload"
	switch c := p.peek(); {
	case c == 'n':
		if err := p.literal("null"); err != nil {
			return nil, true, err
		}
		tombstone = true
	case c != '{':
		if err := p.skip(); err != nil {
			return nil, true, err
		}
		return nil, true, schemaViolation("payload", "the payload is not an object")
	case cs != nil && cs.envelope:
		if ev, err = parseEnvelope(p, cs); err != nil {
			return nil, true, err
		}
	case cs != nil:
		if row, meta, err = p.row(cs.row, "", d.prefix); err != nil {
			return nil, true, err
		}
	default:
		if row, src, meta, err = parseUnwrapped(p, d.prefix); err != nil {
			return nil, true, err
		}
	}
	p.field = "value"
	if more, err = p.objectNext(); err != nil {
		return nil, true, err
	}
	if more {
		return nil, false, nil
	}
	if err := p.end(); err != nil {
		return nil, true, err
	}
	switch {
	case tombstone:
		envs, err = d.tombstone(msg)
	case ev != nil:
		ev.afterSchema = cs.after
		envs, err = d.fromEvent(msg, ev)
	case cs == nil:
		envs, err = d.fromUnwrapped(msg, row, src, meta)
	default:
		envs, err = d.fromRow(msg, row, meta, cs.row)
	}
	return envs, true, err
}

// parseEnvelope reads a payload known (from its schema) to be an envelope,
// building only the row images, converted as it goes by the schema's
// converters, and stepping over what decoding does not use.
func parseEnvelope(p *jsonParser, cs *connectSchema) (*rawEvent, error) {
	ev := &rawEvent{}
	empty, err := p.objectStart()
	if err != nil || empty {
		return ev, err
	}
	for {
		k, err := p.objectKey()
		if err != nil {
			return nil, err
		}
		switch string(k) {
		case "source":
			if p.peek() == '{' {
				ev.hasSource = true
				err = parseSource(p, &ev.src)
				break
			}
			err = readEnvelopeField(p, ev, "source")
		case "before":
			ev.before, err = p.optRow(cs.before, "before")
		case "after":
			ev.after, err = p.optRow(cs.after, "after")
		case "op":
			if p.peek() == 'n' {
				err = p.literal("null")
				break
			}
			ev.op, err = p.optString("op")
			ev.hasOp = err == nil
		case "ts_ms":
			ev.tsMs, _, err = p.optInt("ts_ms")
		case "ts_us":
			ev.tsUs, _, err = p.optInt("ts_us")
		case "ts_ns":
			ev.tsNs, _, err = p.optInt("ts_ns")
		default:
			err = p.skip()
		}
		if err != nil {
			return nil, err
		}
		more, err := p.objectNext()
		if err != nil {
			return nil, err
		}
		if !more {
			return ev, nil
		}
	}
}

func readEnvelopeField(p *jsonParser, ev *rawEvent, name string) error {
	v, err := p.value()
	if err != nil {
		return err
	}
	return setEnvelopeField(ev, name, v)
}

// parseSource reads the source block, keeping only the members decoding
// uses (sourceFieldName) and stepping over the others (query, gtid, thread,
// txId, sequence, …). Values are read typed, without building interfaces.
func parseSource(p *jsonParser, si *sourceInfo) error {
	empty, err := p.objectStart()
	if err != nil || empty {
		return err
	}
	for {
		k, err := p.objectKey()
		if err != nil {
			return err
		}
		switch name := sourceFieldName(k); name {
		case "":
			err = p.skip()
		case "name", "db", "schema", "table", "file":
			var s string
			if s, err = p.optString(sourcePath(name)); err == nil {
				setSourceString(si, name, s)
			}
		default:
			var n int64
			var null bool
			if n, null, err = p.optInt(sourcePath(name)); err == nil {
				setSourceInt(si, name, n, null)
			}
		}
		if err != nil {
			return err
		}
		more, err := p.objectNext()
		if err != nil || !more {
			return err
		}
	}
}

// sourceFieldName returns the canonical name of a source member decoding
// uses, or "" for one it does not. It returns constants so that callers
// keep no reference to the parser's buffer.
func sourceFieldName(k []byte) string {
	switch string(k) {
	case "name":
		return "name"
	case "db":
		return "db"
	case "schema":
		return "schema"
	case "table":
		return "table"
	case "file":
		return "file"
	case "ts_ms":
		return "ts_ms"
	case "ts_us":
		return "ts_us"
	case "ts_ns":
		return "ts_ns"
	case "lsn":
		return "lsn"
	case "pos":
		return "pos"
	case "row":
		return "row"
	}
	return ""
}

// sourcePath returns "source."+name for the names sourceFieldName returns,
// as constants: building it per field would allocate on every message.
func sourcePath(name string) string {
	switch name {
	case "name":
		return "source.name"
	case "db":
		return "source.db"
	case "schema":
		return "source.schema"
	case "table":
		return "source.table"
	case "file":
		return "source.file"
	case "ts_ms":
		return "source.ts_ms"
	case "ts_us":
		return "source.ts_us"
	case "ts_ns":
		return "source.ts_ns"
	case "lsn":
		return "source.lsn"
	case "pos":
		return "source.pos"
	case "row":
		return "source.row"
	}
	return "source." + name
}

func setEnvelopeField(ev *rawEvent, name string, v any) error {
	switch name {
	case "before", "after":
		var m map[string]any
		switch x := v.(type) {
		case nil:
		case map[string]any:
			m = x
		default:
			return schemaViolation(name, "the row image is not an object")
		}
		if name == "before" {
			ev.before = m
		} else {
			ev.after = m
		}
	case "op":
		switch x := v.(type) {
		case nil:
		case string:
			ev.op, ev.hasOp = x, true
		default:
			return schemaViolation("op", "op is not a string")
		}
	case "source":
		switch x := v.(type) {
		case nil:
		case map[string]any:
			ev.hasSource = true
			for k, sv := range x {
				if n := sourceFieldName([]byte(k)); n != "" {
					if err := setSourceField(&ev.src, n, sv); err != nil {
						return err
					}
				}
			}
		default:
			return schemaViolation("source", "source is not an object")
		}
	case "ts_ms", "ts_us", "ts_ns":
		n, err := optInt(v, name)
		if err != nil {
			return err
		}
		switch name {
		case "ts_ms":
			ev.tsMs = n
		case "ts_us":
			ev.tsUs = n
		default:
			ev.tsNs = n
		}
	}
	return nil
}

func setSourceField(si *sourceInfo, name string, v any) error {
	switch name {
	case "name", "db", "schema", "table", "file":
		s, ok := v.(string)
		if !ok && v != nil {
			return schemaViolation(sourcePath(name), "not a string")
		}
		setSourceString(si, name, s)
		return nil
	}
	n, err := optInt(v, sourcePath(name))
	if err != nil {
		return err
	}
	setSourceInt(si, name, n, v == nil)
	return nil
}

func setSourceString(si *sourceInfo, name, s string) {
	switch name {
	case "name":
		si.name = s
	case "db":
		si.db = s
	case "schema":
		si.schema = s
	case "table":
		si.table = s
	default:
		si.file = s
	}
}

func setSourceInt(si *sourceInfo, name string, n int64, null bool) {
	switch name {
	case "ts_ms":
		si.tsMs = n
	case "ts_us":
		si.tsUs = n
	case "ts_ns":
		si.tsNs = n
	case "lsn":
		si.lsn, si.hasLSN = n, !null
	case "pos":
		si.pos = n
	case "row":
		si.row = n
	}
}

// optInt reads an optional integer field: null is 0.
func optInt(v any, field string) (int64, error) {
	switch x := v.(type) {
	case nil:
		return 0, nil
	case int64:
		return x, nil
	}
	return 0, schemaViolation(field, "not an integer")
}

func eventFromMap(m map[string]any) (*rawEvent, error) {
	ev := &rawEvent{}
	for _, name := range [...]string{"before", "after", "op", "source", "ts_ms", "ts_us", "ts_ns"} {
		if v, ok := m[name]; ok {
			if err := setEnvelopeField(ev, name, v); err != nil {
				return nil, err
			}
		}
	}
	return ev, nil
}

// debeziumOp maps Debezium's op codes.
func debeziumOp(code string) (Op, error) {
	switch code {
	case "c":
		return OpCreate, nil
	case "u":
		return OpUpdate, nil
	case "d":
		return OpDelete, nil
	case "r":
		return OpRead, nil
	case "t":
		return OpTruncate, nil
	case "m":
		return "", decodeErr(ClassUnsupportedOp, "op", "op \"m\" is a logical decoding message, not a row change")
	}
	return "", decodeErr(ClassUnsupportedOp, "op", "unknown op "+strconv.Quote(code))
}

// fromEvent interprets an envelope.
func (d *debeziumDecoder) fromEvent(msg *Message, ev *rawEvent) ([]Envelope, error) {
	if !ev.hasOp {
		return nil, decodeErr(ClassMissingField, "op", "the envelope has no op")
	}
	op, err := debeziumOp(ev.op)
	if err != nil {
		return nil, err
	}
	if !ev.hasSource {
		return nil, decodeErr(ClassMissingField, "source", "the envelope has no source block")
	}
	src := &ev.src
	var image map[string]any
	switch op {
	case OpCreate, OpRead, OpUpdate:
		if ev.after == nil {
			return nil, decodeErr(ClassMissingField, "after", "op "+ev.op+" without an after image")
		}
		image = ev.after
	case OpDelete:
		image = ev.before // nil when the source kept no old row
	case OpTruncate:
		ev.before, ev.after = nil, nil
	}
	t, err := eventTime(
		timeCandidate{src.tsNs, src.tsUs, src.tsMs, "source.ts_ms"},
		timeCandidate{ev.tsNs, ev.tsUs, ev.tsMs, "ts_ms"},
	)
	if err != nil {
		return nil, err
	}
	if t.IsZero() {
		return nil, decodeErr(ClassBadTime, "source.ts_ms", "no event time: source.ts_ms and ts_ms are absent or 0")
	}
	ver, err := sourceVersion(msg, src.hasLSN, src.lsn, src.file, src.pos, src.row, "source.")
	if err != nil {
		return nil, err
	}
	e := Envelope{
		Kind:       d.kind,
		Op:         op,
		EntityType: d.entityType(src.db, src.schema, src.table, msg.Topic),
		EventTime:  t,
		IngestTime: d.now().UTC(),
		Version:    ver,
		Before:     ev.before,
		After:      ev.after,
		Attributes: image,
		Origin:     d.origin(msg),
	}
	if op != OpTruncate {
		if e.Key, e.KeyFields, err = d.key(msg, image); err != nil {
			return nil, err
		}
	}
	if op.carriesState() {
		e.Unavailable = d.unavailable(ev.after, ev.afterSchema)
	}
	e.ID = eventID(firstNonEmpty(src.name, msg.Topic), e.EntityType, msg, ver, op, e.Key)
	return []Envelope{e}, nil
}

// flatMeta is the metadata ExtractNewRecordState adds to a row. add.fields
// names a source member either bare (table → __table) or qualified
// (source.table → __source_table); both are read.
type flatMeta struct {
	op                     string
	hasOp, deleted, hasLSN bool
	hasDeleted             bool // the row has a deleted member, whatever its value
	name, db, schema       string
	table, file            string
	srcNs, srcUs, srcMs    int64
	envNs, envUs, envMs    int64
	lsn, pos, row          int64
}

func (m *flatMeta) set(name string, v any, field string) error {
	str := func(dst *string) error {
		s, ok := v.(string)
		if !ok && v != nil {
			return schemaViolation(field, "not a string")
		}
		*dst = s
		return nil
	}
	num := func(dst *int64) error {
		n, err := optInt(v, field)
		*dst = n
		return err
	}
	switch name {
	case "op":
		m.hasOp = v != nil
		return str(&m.op)
	case "deleted":
		m.hasDeleted = true
		switch x := v.(type) {
		case nil:
		case bool:
			m.deleted = x
		case string:
			m.deleted = x == "true"
		default:
			return schemaViolation(field, "not a string or boolean")
		}
	case "name", "source_name":
		return str(&m.name)
	case "db", "source_db":
		return str(&m.db)
	case "schema", "source_schema":
		return str(&m.schema)
	case "table", "source_table":
		return str(&m.table)
	case "file", "source_file":
		return str(&m.file)
	case "source_ts_ns":
		return num(&m.srcNs)
	case "source_ts_us":
		return num(&m.srcUs)
	case "source_ts_ms":
		return num(&m.srcMs)
	case "ts_ns":
		return num(&m.envNs)
	case "ts_us":
		return num(&m.envUs)
	case "ts_ms":
		return num(&m.envMs)
	case "lsn", "source_lsn":
		m.hasLSN = v != nil
		return num(&m.lsn)
	case "pos", "source_pos":
		return num(&m.pos)
	case "row", "source_row":
		return num(&m.row)
	}
	return nil
}

// fromRow interprets a flattened row, already converted by its schema if it
// had one (rowSchema; nil without), and its metadata members (those with
// the field prefix), which the caller has taken out of the row. Unknown
// metadata is dropped: it describes the event, not the entity; the row is
// the entity's state.
func (d *debeziumDecoder) fromRow(msg *Message, row map[string]any, metaParts []keyPart, rowSchema *converter) ([]Envelope, error) {
	var meta flatMeta
	for _, kp := range metaParts {
		if err := meta.set(kp.name[len(d.prefix):], kp.value, kp.name); err != nil {
			return nil, err
		}
	}
	rows := rowsWithoutDeleted
	if meta.hasDeleted {
		rows = rowsWithDeleted
	}
	if d.rows.Load() != rows {
		d.rows.Store(rows)
	}
	op := OpUpsert
	if meta.hasOp {
		var err error
		if op, err = debeziumOp(meta.op); err != nil {
			err.(*DecodeError).Field = d.prefixOp
			return nil, err
		}
	}
	if meta.deleted {
		op = OpDelete
	}
	t, err := eventTime(
		timeCandidate{meta.srcNs, meta.srcUs, meta.srcMs, d.prefixSourceTs},
		timeCandidate{meta.envNs, meta.envUs, meta.envMs, d.prefixTs},
	)
	if err != nil {
		return nil, err
	}
	if t.IsZero() {
		// Nothing in the row says when it changed: the record's Kafka
		// timestamp, set when the connector produced it, is the closest.
		if t = msg.Timestamp.UTC(); !validTime(t) {
			return nil, decodeErr(ClassBadTime, d.prefixSourceTs, "no event time: the row has no "+d.prefixSourceTs+" or "+d.prefixTs+" and the record no timestamp")
		}
	}
	ver, err := sourceVersion(msg, meta.hasLSN, meta.lsn, meta.file, meta.pos, meta.row, d.prefix)
	if err != nil {
		return nil, err
	}
	entity := d.cfg.EntityType
	if entity == "" && meta.table != "" {
		entity = d.entityType(meta.db, meta.schema, meta.table, msg.Topic)
	}
	e := Envelope{
		Kind:       d.kind,
		Op:         op,
		EntityType: firstNonEmpty(entity, msg.Topic),
		EventTime:  t,
		IngestTime: d.now().UTC(),
		Version:    ver,
		Origin:     d.origin(msg),
	}
	switch op {
	case OpTruncate:
	case OpDelete:
		e.Before, e.Attributes = row, row
	default:
		e.After, e.Attributes = row, row
	}
	if op != OpTruncate {
		if e.Key, e.KeyFields, err = d.key(msg, row); err != nil {
			return nil, err
		}
	}
	if op.carriesState() {
		e.Unavailable = d.unavailable(row, rowSchema)
	}
	e.ID = eventID(firstNonEmpty(meta.name, msg.Topic), e.EntityType, msg, ver, op, e.Key)
	return []Envelope{e}, nil
}

// tombstone decodes a record without a value. It is keyed like the delete
// before it; its only time is the record's Kafka timestamp.
func (d *debeziumDecoder) tombstone(msg *Message) ([]Envelope, error) {
	key, fields, err := d.key(msg, nil)
	if err != nil {
		return nil, err
	}
	op, t := OpTombstone, msg.Timestamp.UTC()
	if d.cfg.Debezium.TombstoneDeletes {
		op = OpDelete
		if !validTime(t) {
			return nil, decodeErr(ClassBadTime, "", "a tombstone taken as a delete needs the record's Kafka timestamp")
		}
	}
	ver := Version{Scheme: VersionOffset, Offset: msg.Offset}
	e := Envelope{
		Kind:       d.kind,
		Op:         op,
		EntityType: firstNonEmpty(d.cfg.EntityType, msg.Topic),
		Key:        key,
		KeyFields:  fields,
		EventTime:  t,
		IngestTime: d.now().UTC(),
		Version:    ver,
		// Rows without a deleted member: the connector drops delete events
		// (see Envelope), so this tombstone is the only sign of one.
		DeletesDropped: op == OpTombstone && d.rows.Load() == rowsWithoutDeleted,
		Origin:         d.origin(msg),
	}
	e.ID = eventID(msg.Topic, e.EntityType, msg, ver, op, key)
	return []Envelope{e}, nil
}

func (d *debeziumDecoder) origin(msg *Message) Origin {
	return Origin{Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset, Mapping: d.cfg.Mapping}
}

// entityType is Config.EntityType, else the data collection the event
// names: its db, schema and table joined with ".", else the topic.
func (d *debeziumDecoder) entityType(db, schema, table, topic string) string {
	if d.cfg.EntityType != "" {
		return d.cfg.EntityType
	}
	if table == "" {
		return topic
	}
	var b strings.Builder
	for _, s := range [...]string{db, schema} {
		if s != "" {
			b.WriteString(s)
			b.WriteByte('.')
		}
	}
	b.WriteString(table)
	return b.String()
}

// timeCandidate is one source of event time at up to three precisions.
type timeCandidate struct {
	ns, us, ms int64
	field      string
}

// eventTime returns the first candidate's time that is set, at its finest
// precision; zero when none is set.
func eventTime(cands ...timeCandidate) (time.Time, error) {
	for _, c := range cands {
		if c.ns < 0 || c.us < 0 || c.ms < 0 {
			return time.Time{}, decodeErr(ClassBadTime, c.field, "negative timestamp")
		}
		var t time.Time
		switch {
		case c.ns > 0:
			t = time.Unix(0, c.ns)
		case c.us > 0:
			t = time.UnixMicro(c.us)
		case c.ms > 0:
			t = time.UnixMilli(c.ms)
		default:
			continue
		}
		t = t.UTC()
		if !validTime(t) {
			return time.Time{}, decodeErr(ClassBadTime, c.field, "timestamp beyond year 9999")
		}
		return t, nil
	}
	return time.Time{}, nil
}

// sourceVersion picks the ordering version: the LSN, else the binlog
// position, else the Kafka offset.
func sourceVersion(msg *Message, hasLSN bool, lsn int64, file string, pos, row int64, prefix string) (Version, error) {
	switch {
	case hasLSN:
		if lsn < 0 {
			return Version{}, schemaViolation(prefix+"lsn", "negative LSN")
		}
		return Version{Scheme: VersionLSN, LSN: uint64(lsn)}, nil
	case file != "":
		if pos < 0 || row < 0 {
			return Version{}, schemaViolation(prefix+"pos", "negative binlog position")
		}
		return Version{Scheme: VersionBinlog, File: file, Pos: uint64(pos), Row: uint64(row)}, nil
	}
	return Version{Scheme: VersionOffset, Offset: msg.Offset}, nil
}

// eventID builds the idempotency id described on Envelope, in one
// allocation.
func eventID(name, entity string, msg *Message, v Version, op Op, key string) string {
	var num [20]byte
	var b strings.Builder
	b.Grow(len(name) + len(entity) + len(key) + len(v.File) + len(msg.Topic) + len(op) + 64)
	b.WriteString(name)
	b.WriteByte(':')
	b.WriteString(entity)
	b.WriteByte(':')
	switch v.Scheme {
	case VersionLSN:
		b.WriteString("lsn:")
		b.Write(strconv.AppendUint(num[:0], v.LSN, 10))
	case VersionBinlog:
		b.WriteString("binlog:")
		b.WriteString(v.File)
		b.WriteByte(':')
		b.Write(strconv.AppendUint(num[:0], v.Pos, 10))
		b.WriteByte(':')
		b.Write(strconv.AppendUint(num[:0], v.Row, 10))
	default:
		b.WriteString("kafka:")
		b.WriteString(msg.Topic)
		b.WriteByte(':')
		b.Write(strconv.AppendInt(num[:0], int64(msg.Partition), 10))
		b.WriteByte(':')
		b.Write(strconv.AppendInt(num[:0], msg.Offset, 10))
	}
	b.WriteByte(':')
	b.WriteString(string(op))
	if key != "" {
		b.WriteByte(':')
		b.WriteString(key)
	}
	return b.String()
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// unavailable takes out of an after image the fields that hold the
// unavailable-value placeholder and returns their names, sorted; nil, without
// allocating, when none does. With a schema the placeholder's form follows
// the field's type (its base64 text for bytes, the text for the others);
// without one, where nothing says a string is base64, both are taken.
func (d *debeziumDecoder) unavailable(image map[string]any, schema *converter) []string {
	if d.placeholder == "" {
		return nil
	}
	var names []string
	for name, v := range image {
		text, b64 := d.placeholderForms(v)
		if !text && !b64 {
			continue
		}
		if schema != nil && schema.kind == convStruct {
			if i := schema.fieldIndex([]byte(name), 0); i >= 0 {
				bytesField := isBytes(schema.fields[i].conv)
				if (bytesField && !b64) || (!bytesField && !text) {
					continue
				}
			}
		}
		names = append(names, name)
	}
	if names == nil {
		return nil
	}
	for _, name := range names {
		delete(image, name)
	}
	slices.Sort(names)
	return names
}

// placeholderForms reports whether v is the placeholder as text, or as the
// base64 text of its bytes: the value itself, or a non-empty list of which
// every element is it.
func (d *debeziumDecoder) placeholderForms(v any) (text, b64 bool) {
	switch x := v.(type) {
	case string:
		return x == d.placeholder, x == d.placeholder64
	case []any:
		if len(x) == 0 {
			return false, false
		}
		text, b64 = true, true
		for _, el := range x {
			s, ok := el.(string)
			text = text && ok && s == d.placeholder
			b64 = b64 && ok && s == d.placeholder64
		}
		return text, b64
	}
	return false, false
}

// isBytes reports whether c is bytes, or a list of bytes.
func isBytes(c *converter) bool {
	if c != nil && c.kind == convArray {
		c = c.elem
	}
	return c != nil && c.kind == convBytes
}
