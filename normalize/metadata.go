package normalize

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// metadataDecoder decodes a compacted metadata topic as entities: the
// record key is the entity's key, the value its whole document (a JSON
// object), and a record without a value (a tombstone) deletes it. Such
// topics carry no op and no time: every document is an upsert timed by the
// record's Kafka timestamp, and the offset orders records of one timestamp.
type metadataDecoder struct {
	cfg   Config
	kind  Kind
	now   func() time.Time
	names keyInterner
}

func newMetadataDecoder(cfg Config, o options) *metadataDecoder {
	d := &metadataDecoder{cfg: cfg, kind: cfg.Kind, now: o.now}
	if d.kind == "" {
		d.kind = KindMetadata
	}
	return d
}

// MetadataKeyName is the name key_types gives the record key of a metadata
// topic.
const MetadataKeyName = "key"

// Decode implements Decoder.
func (d *metadataDecoder) Decode(msg Message) ([]Envelope, error) {
	key, err := d.key(msg.Key)
	if err != nil {
		return nil, err
	}
	t := msg.Timestamp.UTC()
	if !validTime(t) {
		return nil, decodeErr(ClassBadTime, "", "a metadata record is timed by its Kafka timestamp, and this record has none")
	}
	entity := d.cfg.EntityType
	if entity == "" {
		entity = msg.Topic
	}
	e := Envelope{
		Kind:       d.kind,
		Op:         OpUpsert,
		EntityType: entity,
		Key:        key,
		KeyFields:  map[string]any{MetadataKeyName: key},
		EventTime:  t,
		IngestTime: d.now().UTC(),
		Version:    Version{Scheme: VersionOffset, Offset: msg.Offset},
		Origin:     Origin{Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset, Mapping: d.cfg.Mapping},
	}
	if len(msg.Value) == 0 {
		e.Op = OpDelete
	} else {
		doc, err := wholeObject(msg.Value, &d.names, "a JSON object (a metadata document)")
		if err != nil {
			return nil, err
		}
		e.After, e.Attributes = doc, doc
	}
	e.ID = eventID(msg.Topic, entity, &msg, e.Version, e.Op, key)
	return []Envelope{e}, nil
}

// key reads the record key the way enrichment caches do, so that an entity
// and a join agree on it: the key's bytes as text, or the text of a JSON
// string key. A declared type is checked on that text.
func (d *metadataDecoder) key(b []byte) (string, error) {
	if len(b) == 0 {
		return "", decodeErr(ClassMissingField, MetadataKeyName, "a metadata record needs a key: it is the entity's id")
	}
	s := string(b)
	if b[0] == '"' {
		var q string
		if err := json.Unmarshal(b, &q); err == nil {
			s = q
		}
	}
	if s == "" || !utf8.ValidString(s) {
		return "", schemaViolation(MetadataKeyName, "the record key is empty or not UTF-8 text")
	}
	ok := true
	switch t := d.cfg.KeyTypes[MetadataKeyName]; t {
	case TypeInteger:
		_, err := strconv.ParseInt(s, 10, 64)
		ok = err == nil || isBigIntLiteral(s)
	case TypeUUID:
		_, err := uuid.Parse(s)
		ok = err == nil && len(s) == 36
	}
	if !ok {
		return "", decodeErr(ClassWrongType, MetadataKeyName, "want "+string(d.cfg.KeyTypes[MetadataKeyName])+", got the text "+strconv.Quote(truncateText(s, 64)))
	}
	return s, nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
