package normalize

import (
	"fmt"
	"strings"
	"time"
)

// Format names the wire format of a topic's values.
type Format string

// The supported formats.
const (
	// FormatDebezium: Debezium change events from the JSON converter, with or
	// without the schema/payload wrapper, flattened by ExtractNewRecordState or
	// not, and tombstones.
	FormatDebezium Format = "debezium"
	// FormatRequestLog: one JSON object per record, fields named by
	// RequestLogConfig.
	FormatRequestLog Format = "request_log"
	// FormatMetadata: a compacted topic of key → JSON document, read as
	// entities: the record key is the key, the document the attributes
	// (op upsert), a tombstone a delete (op delete, no image). The record's
	// Kafka timestamp is the event time and its offset the version: give the
	// topic message.timestamp.type=LogAppendTime when producers' clocks
	// cannot be trusted to be monotonic per key.
	FormatMetadata Format = "metadata"
)

// DefaultSchemaCacheSize is the number of distinct Connect schemas a decoder
// keeps parsed. A topic normally carries one value schema and one key schema,
// and a new one only after a table's DDL changes.
const DefaultSchemaCacheSize = 64

// Config is the decoder configuration of one topic.
type Config struct {
	// Mapping is the name of the mapping the topic feeds; it is copied into
	// Origin.Mapping. Optional.
	Mapping string `yaml:"mapping"`
	// Format is required.
	Format Format `yaml:"format"`
	// Kind defaults to cdc for debezium and request for request_log; set it
	// to metadata for topics that feed enrichment caches.
	Kind Kind `yaml:"kind"`
	// EntityType, when set, is the entity type of every event of the topic.
	// Debezium default: source db, schema and table joined with "." (for
	// flattened rows __db, __schema, __table; the topic name when the event
	// names no table, as tombstones never do). request_log: required unless
	// RequestLog.EntityTypeField is set.
	EntityType string `yaml:"entity_type"`
	// KeyFields are the fields that make up the entity key, in key order.
	// debezium: optional; when empty the whole Kafka message key is the key;
	// when set, each field is taken from the message key if it has it, else
	// from the row image (after, or before for deletes). request_log:
	// required, dotted paths into the object.
	KeyFields []string `yaml:"key_fields"`
	// KeyTypes declares the type of key fields (integer, string, uuid),
	// by name: a name of KeyFields, or, for debezium without KeyFields, a
	// field of the message key. A value of another type is a dead letter of
	// class wrong_type naming the field, in every shape. Fields not named
	// accept any scalar.
	KeyTypes map[string]FieldType `yaml:"key_types"`
	// Debezium settings; used with FormatDebezium.
	Debezium DebeziumConfig `yaml:"debezium"`
	// RequestLog settings; used with FormatRequestLog.
	RequestLog RequestLogConfig `yaml:"request_log"`
	// SchemaCacheSize bounds the parsed Connect schemas kept (debezium).
	// Default DefaultSchemaCacheSize.
	SchemaCacheSize int `yaml:"schema_cache_size"`
}

// DebeziumConfig holds the Debezium-specific settings.
type DebeziumConfig struct {
	// FieldPrefix is the prefix ExtractNewRecordState puts on the metadata it
	// adds (its add.fields.prefix). Default "__".
	FieldPrefix string `yaml:"field_prefix"`
	// TombstoneDeletes decodes a tombstone as an OpDelete of its key, timed
	// by the record's Kafka timestamp. Use it only for topics flattened with
	// delete.tombstone.handling.mode=tombstone, where the delete event itself
	// is dropped and the tombstone is all that says a row went. Default false:
	// tombstones decode to OpTombstone, marked Envelope.DeletesDropped when
	// the topic's flattened rows carry no deleted member (which graph
	// mapping counts and warns about).
	TombstoneDeletes bool `yaml:"tombstone_deletes"`
	// UnavailableValuePlaceholder is the connector's
	// unavailable.value.placeholder: what PostgreSQL connectors send, in an
	// after image, for a TOASTed column an UPDATE left unchanged (under
	// REPLICA IDENTITY DEFAULT the old value is not in the WAL). A field that
	// holds it — the text itself, its bytes (base64 text) for a bytes
	// column, or a list of nothing but it for an array column — is taken
	// out of the attributes and named in Envelope.Unavailable, so that the
	// value stored before is kept rather than overwritten with the
	// placeholder. Unset: DefaultUnavailableValuePlaceholder; an explicit
	// empty string turns the detection off.
	UnavailableValuePlaceholder *string `yaml:"unavailable_value_placeholder,omitempty"`
}

// DefaultUnavailableValuePlaceholder is Debezium's default
// unavailable.value.placeholder.
const DefaultUnavailableValuePlaceholder = "__debezium_unavailable_value"

// placeholder returns the placeholder in effect: the default when unset, ""
// when detection is off.
func (c *DebeziumConfig) placeholder() string {
	if c.UnavailableValuePlaceholder == nil {
		return DefaultUnavailableValuePlaceholder
	}
	return *c.UnavailableValuePlaceholder
}

// TimeFormat says how a request log's time field is written.
type TimeFormat string

// The time formats.
const (
	TimeRFC3339 TimeFormat = "rfc3339" // a string such as "2026-11-25T10:00:00.123Z"
	TimeUnixS   TimeFormat = "unix_s"  // a number of seconds (fractions allowed)
	TimeUnixMs  TimeFormat = "unix_ms" // an integer number of milliseconds
	TimeUnixUs  TimeFormat = "unix_us" // an integer number of microseconds
	TimeUnixNs  TimeFormat = "unix_ns" // an integer number of nanoseconds
	// TimeAuto accepts an RFC 3339 string or an integer of milliseconds. It is
	// the default.
	TimeAuto TimeFormat = "auto"
)

// RequestLogConfig names the fields of a request log to read. Paths are
// dot-separated object keys ("request.id"); arrays are not traversed.
type RequestLogConfig struct {
	// IDField holds the request id, the envelope ID. Required. A string, or
	// an integer.
	IDField string `yaml:"id_field"`
	// IDType, when set, is the type the id must have (integer, string,
	// uuid); another is a dead letter of class wrong_type.
	IDType FieldType `yaml:"id_type"`
	// TimeField holds the event time. Required.
	TimeField string `yaml:"time_field"`
	// TimeFormat of TimeField. Default TimeAuto.
	TimeFormat TimeFormat `yaml:"time_format"`
	// EntityTypeField, when set, holds the entity type (a string); it takes
	// precedence over Config.EntityType, which is then the fallback.
	EntityTypeField string `yaml:"entity_type_field"`
	// AttributeFields, when set, are the only fields copied to Attributes,
	// keyed by their path. Default: the whole object.
	AttributeFields []string `yaml:"attribute_fields"`
}

// Validate checks the configuration and reports the first problem, naming
// the setting.
func (c *Config) Validate() error {
	if c.Kind != "" && !c.Kind.valid() {
		return fmt.Errorf("%w: kind %q", ErrUnknownKind, c.Kind)
	}
	if c.SchemaCacheSize < 0 {
		return fmt.Errorf("%w: schema_cache_size %d is negative", ErrBadSetting, c.SchemaCacheSize)
	}
	for i, f := range c.KeyFields {
		if err := checkPath(f); err != nil {
			return fmt.Errorf("%w: key_fields[%d]: %v", ErrBadSetting, i, err)
		}
	}
	var typed []string // the names key_types may use; nil: any
	if c.Format == FormatMetadata {
		typed = []string{MetadataKeyName}
	} else if len(c.KeyFields) > 0 || c.Format == FormatRequestLog {
		typed = c.KeyFields
		if typed == nil {
			typed = []string{}
		}
	}
	if err := checkTypes(c.KeyTypes, typed); err != nil {
		return err
	}
	switch c.Format {
	case FormatDebezium:
		if c.Kind == KindRequest {
			return fmt.Errorf("%w: kind request with format debezium", ErrBadSetting)
		}
		return nil
	case FormatRequestLog:
		return c.validateRequestLog()
	case FormatMetadata:
		if c.Kind != "" && c.Kind != KindMetadata {
			return fmt.Errorf("%w: kind %s with format metadata", ErrBadSetting, c.Kind)
		}
		if len(c.KeyFields) > 0 {
			return fmt.Errorf("%w: key_fields with format metadata: the record key is the key", ErrBadSetting)
		}
		return nil
	case "":
		return fmt.Errorf("%w: format", ErrMissingSetting)
	}
	return fmt.Errorf("%w: %q", ErrUnknownFormat, c.Format)
}

func (c *Config) validateRequestLog() error {
	r := &c.RequestLog
	if c.Kind == KindCDC {
		return fmt.Errorf("%w: kind cdc with format request_log", ErrBadSetting)
	}
	if r.IDField == "" {
		return fmt.Errorf("%w: request_log.id_field", ErrMissingSetting)
	}
	if r.TimeField == "" {
		return fmt.Errorf("%w: request_log.time_field", ErrMissingSetting)
	}
	if len(c.KeyFields) == 0 {
		return fmt.Errorf("%w: key_fields", ErrMissingSetting)
	}
	if c.EntityType == "" && r.EntityTypeField == "" {
		return fmt.Errorf("%w: entity_type or request_log.entity_type_field", ErrMissingSetting)
	}
	if !r.IDType.valid() {
		return fmt.Errorf("%w: request_log.id_type %q is not one of integer, string, uuid", ErrBadSetting, r.IDType)
	}
	switch r.TimeFormat {
	case "", TimeAuto, TimeRFC3339, TimeUnixS, TimeUnixMs, TimeUnixUs, TimeUnixNs:
	default:
		return fmt.Errorf("%w: request_log.time_format %q", ErrBadSetting, r.TimeFormat)
	}
	paths := map[string]string{"request_log.id_field": r.IDField, "request_log.time_field": r.TimeField}
	if r.EntityTypeField != "" {
		paths["request_log.entity_type_field"] = r.EntityTypeField
	}
	for i, f := range r.AttributeFields {
		paths[fmt.Sprintf("request_log.attribute_fields[%d]", i)] = f
	}
	for name, p := range paths {
		if err := checkPath(p); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrBadSetting, name, err)
		}
	}
	return nil
}

func checkPath(p string) error {
	if p == "" {
		return fmt.Errorf("empty path")
	}
	for _, part := range strings.Split(p, ".") {
		if part == "" {
			return fmt.Errorf("path %q has an empty segment", p)
		}
	}
	return nil
}

// Option adjusts a decoder beyond its Config.
type Option func(*options)

type options struct {
	now func() time.Time
}

// WithClock sets the clock that stamps IngestTime. Default time.Now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New returns the decoder for cfg, after validating it.
func New(cfg Config, opts ...Option) (Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	switch cfg.Format {
	case FormatRequestLog:
		return newRequestLogDecoder(cfg, o), nil
	case FormatMetadata:
		return newMetadataDecoder(cfg, o), nil
	default:
		return newDebeziumDecoder(cfg, o)
	}
}
