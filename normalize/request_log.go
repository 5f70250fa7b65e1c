package normalize

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// requestLogDecoder decodes request/response logs: one JSON object per
// record, whose id, time, entity type and key fields the config names.
type requestLogDecoder struct {
	cfg        Config
	kind       Kind
	now        func() time.Time
	timeFormat TimeFormat
	id, time   []string
	entityType []string // nil: Config.EntityType
	keys       [][]string
	attrs      [][]string // nil: the whole object
	names      keyInterner
}

func splitPath(p string) []string { return strings.Split(p, ".") }

func newRequestLogDecoder(cfg Config, o options) *requestLogDecoder {
	r := cfg.RequestLog
	d := &requestLogDecoder{
		cfg:        cfg,
		kind:       cfg.Kind,
		now:        o.now,
		timeFormat: r.TimeFormat,
		id:         splitPath(r.IDField),
		time:       splitPath(r.TimeField),
	}
	if d.kind == "" {
		d.kind = KindRequest
	}
	if d.timeFormat == "" {
		d.timeFormat = TimeAuto
	}
	if r.EntityTypeField != "" {
		d.entityType = splitPath(r.EntityTypeField)
	}
	for _, k := range cfg.KeyFields {
		d.keys = append(d.keys, splitPath(k))
	}
	for _, a := range r.AttributeFields {
		d.attrs = append(d.attrs, splitPath(a))
	}
	return d
}

// lookupPath walks nested objects; ok is false when a step is missing or
// not an object.
func lookupPath(m map[string]any, path []string) (any, bool) {
	var v any = m
	for _, step := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[step]; !ok {
			return nil, false
		}
	}
	return v, true
}

// Decode implements Decoder.
func (d *requestLogDecoder) Decode(msg Message) ([]Envelope, error) {
	if len(msg.Value) == 0 {
		return nil, decodeErr(ClassMissingField, "", "the record has no value")
	}
	m, err := wholeObject(msg.Value, &d.names, "a JSON object")
	if err != nil {
		return nil, err
	}
	r := &d.cfg.RequestLog

	id, err := d.requiredScalar(m, d.id, r.IDField)
	if err != nil {
		return nil, err
	}
	if r.IDType != TypeAny {
		v, _ := lookupPath(m, d.id)
		if err := checkType(r.IDType, v, r.IDField); err != nil {
			return nil, err
		}
	}
	t, err := d.eventTime(m)
	if err != nil {
		return nil, err
	}
	entity := d.cfg.EntityType
	if d.entityType != nil {
		v, ok := lookupPath(m, d.entityType)
		switch s, isStr := v.(string); {
		case ok && isStr && s != "":
			entity = s
		case ok && v != nil && !isStr:
			return nil, schemaViolation(r.EntityTypeField, "the entity type is not a string")
		case entity == "":
			return nil, decodeErr(ClassMissingField, r.EntityTypeField, "no entity type")
		}
	}
	names := d.cfg.KeyFields
	vals := make([]any, len(d.keys))
	fields := make(map[string]any, len(d.keys))
	for i, path := range d.keys {
		v, ok := lookupPath(m, path)
		if !ok || v == nil {
			return nil, decodeErr(ClassMissingField, names[i], "key field absent or null")
		}
		if err := checkType(d.cfg.KeyTypes[names[i]], v, names[i]); err != nil {
			return nil, err
		}
		vals[i], fields[names[i]] = v, v
	}
	key, err := joinKey("", names, vals)
	if err != nil {
		return nil, err
	}
	attrs := m
	if d.attrs != nil {
		attrs = make(map[string]any, len(d.attrs))
		for i, path := range d.attrs {
			if v, ok := lookupPath(m, path); ok {
				attrs[r.AttributeFields[i]] = v
			}
		}
	}
	return []Envelope{{
		ID:         id,
		Kind:       d.kind,
		Op:         OpCreate,
		EntityType: entity,
		Key:        key,
		KeyFields:  fields,
		EventTime:  t,
		IngestTime: d.now().UTC(),
		Version:    Version{Scheme: VersionID},
		Attributes: attrs,
		Origin:     Origin{Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset, Mapping: d.cfg.Mapping},
	}}, nil
}

// requiredScalar reads a field that must hold a non-empty string or an
// integer, as text.
func (d *requestLogDecoder) requiredScalar(m map[string]any, path []string, field string) (string, error) {
	v, _ := lookupPath(m, path)
	switch x := v.(type) {
	case string:
		if x != "" {
			return x, nil
		}
	case int64:
		return strconv.FormatInt(x, 10), nil
	case nil:
	default:
		return "", schemaViolation(field, "not a string or integer")
	}
	return "", decodeErr(ClassMissingField, field, "absent, null or empty")
}

func (d *requestLogDecoder) eventTime(m map[string]any) (time.Time, error) {
	field := d.cfg.RequestLog.TimeField
	v, ok := lookupPath(m, d.time)
	if !ok || v == nil {
		return time.Time{}, decodeErr(ClassMissingField, field, "no event time")
	}
	bad := func(reason string) (time.Time, error) {
		return time.Time{}, decodeErr(ClassBadTime, field, reason)
	}
	var t time.Time
	switch f := d.timeFormat; {
	case f == TimeRFC3339 || (f == TimeAuto && isString(v)):
		s, ok := v.(string)
		if !ok {
			return bad("want an RFC 3339 string")
		}
		var err error
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return bad(strconv.Quote(s) + " is not RFC 3339")
		}
	case f == TimeUnixS:
		switch x := v.(type) {
		case int64:
			if x > 253402300799 || x < -62135596800 {
				return bad("out of range")
			}
			t = time.Unix(x, 0)
		case float64:
			if x > 253402300799 || x < -62135596800 {
				return bad("out of range")
			}
			sec := math.Floor(x)
			t = time.Unix(int64(sec), int64(math.Round((x-sec)*1e9)))
		default:
			return bad("want a number of seconds")
		}
	default:
		n, ok := v.(int64)
		if !ok {
			if f == TimeAuto {
				return bad("want an RFC 3339 string or an integer of milliseconds")
			}
			return bad("want an integer")
		}
		switch f {
		case TimeUnixUs:
			t = time.UnixMicro(n)
		case TimeUnixNs:
			t = time.Unix(0, n)
		default: // unix_ms, auto
			t = time.UnixMilli(n)
		}
	}
	t = t.UTC()
	if !validTime(t) {
		return bad("outside years 0001-9999")
	}
	return t, nil
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}
