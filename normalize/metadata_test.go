package normalize

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMetadataDecoder(t *testing.T) {
	ts := time.Date(2026, 12, 3, 10, 0, 0, 123000000, time.UTC)
	dec, err := New(Config{Format: FormatMetadata, EntityType: "campaign", KeyTypes: map[string]FieldType{"key": TypeInteger}})
	if err != nil {
		t.Fatal(err)
	}
	msg := Message{Topic: "meta.campaigns", Partition: 2, Offset: 41, Key: []byte(`"12"`), Timestamp: ts,
		Value: []byte(`{"name":"Winter","advertiser_id":7,"budget":12.5}`)}
	envs, err := dec.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	e := envs[0]
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	if e.Op != OpUpsert || e.Kind != KindMetadata || e.Key != "12" || e.EntityType != "campaign" || !e.EventTime.Equal(ts) ||
		e.Version != (Version{Scheme: VersionOffset, Offset: 41}) || e.Attributes["advertiser_id"] != int64(7) || e.Attributes["name"] != "Winter" {
		t.Fatalf("upsert: %+v", e)
	}
	if e.ID != "meta.campaigns:campaign:kafka:meta.campaigns:2:41:upsert:12" {
		t.Errorf("id %q", e.ID)
	}

	// A tombstone deletes; a bare (unquoted) key reads as the same id.
	msg.Value, msg.Key, msg.Offset = nil, []byte("12"), 42
	envs, err = dec.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if e := envs[0]; e.Op != OpDelete || e.Key != "12" || e.Attributes != nil || e.Validate() != nil {
		t.Fatalf("tombstone: %+v %v", e, e.Validate())
	}

	// Failures, each with the input that triggers it.
	for name, c := range map[string]struct {
		msg   Message
		class ErrorClass
		field string
	}{
		"no key":           {Message{Topic: "m", Value: []byte(`{}`), Timestamp: ts}, ClassMissingField, "key"},
		"wrong-typed key":  {Message{Topic: "m", Key: []byte("twelve"), Value: []byte(`{}`), Timestamp: ts}, ClassWrongType, "key"},
		"no timestamp":     {Message{Topic: "m", Key: []byte("1"), Value: []byte(`{}`)}, ClassBadTime, ""},
		"not an object":    {Message{Topic: "m", Key: []byte("1"), Value: []byte(`[1,2]`), Timestamp: ts}, ClassSchemaViolation, ""},
		"not JSON":         {Message{Topic: "m", Key: []byte("1"), Value: []byte(`{"a":`), Timestamp: ts}, ClassMalformedJSON, "value"},
		"trailing garbage": {Message{Topic: "m", Key: []byte("1"), Value: []byte(`{"a":1} x`), Timestamp: ts}, ClassMalformedJSON, "value"},
		"key not UTF-8":    {Message{Topic: "m", Key: []byte{0xff, 0xfe}, Value: []byte(`{}`), Timestamp: ts}, ClassSchemaViolation, "key"},
	} {
		_, err := dec.Decode(c.msg)
		var de *DecodeError
		if !errors.As(err, &de) || de.Class != c.class || !strings.HasPrefix(de.Field, c.field) {
			t.Errorf("%s: %v, want class %s field %q", name, err, c.class, c.field)
		}
	}

	// Settings that make no sense for a metadata topic are refused.
	for name, cfg := range map[string]Config{
		"key_fields":        {Format: FormatMetadata, KeyFields: []string{"id"}},
		"kind cdc":          {Format: FormatMetadata, Kind: KindCDC},
		"key_types on name": {Format: FormatMetadata, KeyTypes: map[string]FieldType{"id": TypeInteger}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
