package normalize

import (
	"strconv"
	"strings"
	"time"
)

// keyPart is one named field of a message key, in key order.
type keyPart struct {
	name  string
	value any
}

// messageKey is a parsed Kafka message key.
type messageKey struct {
	present bool
	parts   []keyPart // a key object's fields, in order
	scalar  any       // a key that is a JSON scalar; parts is nil then
	isObj   bool
}

func (k *messageKey) lookup(name string) (any, bool) {
	for _, p := range k.parts {
		if p.name == name {
			return p.value, true
		}
	}
	return nil, false
}

// key derives an event's key. With Config.KeyFields each field comes from
// the row image, else from the message key; without, the message key is the
// key. The message key is parsed only when needed, so a key that is not JSON
// is no obstacle when the image has every key field.
func (d *debeziumDecoder) key(msg *Message, image map[string]any) (string, map[string]any, error) {
	if n := len(d.cfg.KeyFields); n > 0 {
		var mk *messageKey
		fields := make(map[string]any, n)
		vals := make([]any, n)
		for i, f := range d.cfg.KeyFields {
			v, ok := image[f]
			if !ok || v == nil {
				if mk == nil {
					k, err := d.parseKey(msg.Key)
					if err != nil {
						return "", nil, err
					}
					mk = &k
				}
				v, ok = mk.lookup(f)
			}
			if !ok || v == nil {
				return "", nil, decodeErr(ClassMissingField, "key."+f, "key field "+strconv.Quote(f)+" is in neither the row image nor the message key")
			}
			if err := checkType(d.cfg.KeyTypes[f], v, "key."+f); err != nil {
				return "", nil, err
			}
			fields[f], vals[i] = v, v
		}
		s, err := joinKey("key.", d.cfg.KeyFields, vals)
		return s, fields, err
	}
	mk, err := d.parseKey(msg.Key)
	if err != nil {
		return "", nil, err
	}
	switch {
	case !mk.present:
		return "", nil, decodeErr(ClassMissingField, "key", "the record has no key and key_fields is not configured")
	case !mk.isObj:
		s, err := joinKey("key.", []string{""}, []any{mk.scalar})
		return s, nil, err
	case len(mk.parts) == 0:
		return "", nil, decodeErr(ClassMissingField, "key", "the record key is an empty object")
	}
	names := make([]string, len(mk.parts))
	vals := make([]any, len(mk.parts))
	fields := make(map[string]any, len(mk.parts))
	for i, p := range mk.parts {
		if err := checkType(d.cfg.KeyTypes[p.name], p.value, "key."+p.name); err != nil {
			return "", nil, err
		}
		names[i], vals[i] = p.name, p.value
		fields[p.name] = p.value
	}
	s, err := joinKey("key.", names, vals)
	return s, fields, err
}

// parseKey reads a message key: absent, JSON null, a JSON scalar, an
// object, or the converter's {"schema":…,"payload":…} wrapper around either,
// whose schema then types the fields like a row's.
func (d *debeziumDecoder) parseKey(b []byte) (messageKey, error) {
	if len(b) == 0 {
		return messageKey{}, nil
	}
	p := jsonParser{data: b, field: "key", keys: &d.names}
	if p.peek() != '{' {
		v, err := p.value()
		if err != nil {
			return messageKey{}, err
		}
		if err := p.end(); err != nil {
			return messageKey{}, err
		}
		return messageKey{present: v != nil, scalar: v}, nil
	}
	if mk, ok, err := d.parseWrappedKey(&p); ok || err != nil {
		return mk, err
	}
	p = jsonParser{data: b, field: "key", keys: &d.names}
	parts, err := orderedObject(&p)
	if err != nil {
		return messageKey{}, err
	}
	if err := p.end(); err != nil {
		return messageKey{}, err
	}
	return messageKey{present: true, isObj: true, parts: parts}, nil
}

// parseWrappedKey reads {"schema":…,"payload":…}; ok is false when the key
// is some other object.
func (d *debeziumDecoder) parseWrappedKey(p *jsonParser) (mk messageKey, ok bool, err error) {
	if _, err := p.objectStart(); err != nil {
		return mk, false, err
	}
	if p.peek() != '"' {
		return mk, false, nil
	}
	k, err := p.objectKey()
	if err != nil || string(k) != "schema" {
		return mk, false, err
	}
	var cs *connectSchema
	switch p.peek() {
	case 'n':
		if err := p.literal("null"); err != nil {
			return mk, true, err
		}
	case '{':
		if cs, err = d.keys.read(p); err != nil {
			return mk, true, err
		}
	default:
		return mk, false, nil
	}
	if more, err := p.objectNext(); err != nil || !more {
		return mk, false, err
	}
	if k, err = p.objectKey(); err != nil || string(k) != "payload" {
		return mk, false, err
	}
	switch p.peek() {
	case '{':
		parts, err := orderedObject(p)
		if err != nil {
			return mk, true, err
		}
		mk = messageKey{present: true, isObj: true, parts: parts}
	default:
		v, err := p.value()
		if err != nil {
			return mk, true, err
		}
		mk = messageKey{present: v != nil, scalar: v}
	}
	if more, err := p.objectNext(); err != nil || more {
		return messageKey{}, false, err
	}
	if err := p.end(); err != nil {
		return messageKey{}, true, err
	}
	if cs != nil && cs.row != nil && mk.isObj {
		for i := range mk.parts {
			for _, f := range cs.row.fields {
				if f.name == mk.parts[i].name {
					v, err := f.conv.convert(mk.parts[i].value, "key", f.name)
					if err != nil {
						return messageKey{}, true, err
					}
					mk.parts[i].value = v
				}
			}
		}
	}
	return mk, true, nil
}

// orderedObject reads an object's members in order.
func orderedObject(p *jsonParser) ([]keyPart, error) {
	empty, err := p.objectStart()
	if err != nil || empty {
		return nil, err
	}
	var parts []keyPart
	for {
		k, err := p.objectKey()
		if err != nil {
			return nil, err
		}
		name := p.keys.key(k)
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		parts = append(parts, keyPart{name: name, value: v})
		more, err := p.objectNext()
		if err != nil {
			return nil, err
		}
		if !more {
			return parts, nil
		}
	}
}

// joinKey renders key values as the envelope's Key: one value as its text;
// several joined with "/", each with "\" and "/" escaped by a backslash so
// that the joined form is unambiguous. Errors name the field prefix+name
// (prefix "key." for message keys; "" for paths into the value).
func joinKey(prefix string, names []string, vals []any) (string, error) {
	if len(vals) == 1 {
		s, err := keyText(vals[0], prefix, names[0])
		if err == nil && s == "" {
			err = decodeErr(ClassMissingField, keyField(prefix, names[0]), "empty key value")
		}
		return s, err
	}
	var b strings.Builder
	for i, v := range vals {
		s, err := keyText(v, prefix, names[i])
		if err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteByte('/')
		}
		for j := 0; j < len(s); j++ {
			if s[j] == '/' || s[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[j])
		}
	}
	return b.String(), nil
}

// keyText renders one scalar key value; prefix and name locate it for
// errors.
func keyText(v any, prefix, name string) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case nil:
		return "", decodeErr(ClassMissingField, keyField(prefix, name), "null key value")
	}
	return "", schemaViolation(keyField(prefix, name), "a key value must be a string, number, boolean or time")
}

func keyField(prefix, name string) string {
	if name == "" {
		return "key"
	}
	return prefix + name
}
