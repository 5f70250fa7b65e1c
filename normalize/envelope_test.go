package normalize

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func validEnvelope() Envelope {
	row := map[string]any{"id": int64(1), "at": time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
	return Envelope{
		ID:         "srv:db.t:lsn:5:create:1",
		Kind:       KindCDC,
		Op:         OpCreate,
		EntityType: "db.t",
		Key:        "1",
		KeyFields:  map[string]any{"id": int64(1)},
		EventTime:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		IngestTime: testClock(),
		Version:    Version{Scheme: VersionLSN, LSN: 5},
		After:      row,
		Attributes: row,
		Origin:     Origin{Topic: "t", Partition: 1, Offset: 2, Mapping: "m"},
	}
}

func TestEnvelopeValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Envelope)
		want string // "" = valid
	}{
		{"valid", func(e *Envelope) {}, ""},
		{"truncate", func(e *Envelope) {
			e.Op, e.Key, e.KeyFields, e.After, e.Attributes = OpTruncate, "", nil, nil, nil
		}, ""},
		{"tombstone with zero time", func(e *Envelope) {
			e.Op, e.After, e.Attributes, e.EventTime = OpTombstone, nil, nil, time.Time{}
		}, ""},
		{"delete without image", func(e *Envelope) { e.Op, e.After, e.Attributes = OpDelete, nil, nil }, ""},
		{"create with empty row", func(e *Envelope) { e.After, e.Attributes = map[string]any{}, map[string]any{} }, ""},
		{"no id", func(e *Envelope) { e.ID = "" }, "empty id"},
		{"bad kind", func(e *Envelope) { e.Kind = "x" }, `kind "x"`},
		{"bad op", func(e *Envelope) { e.Op = "merge" }, `op "merge"`},
		{"no entity", func(e *Envelope) { e.EntityType = "" }, "empty entity_type"},
		{"no key", func(e *Envelope) { e.Key = "" }, "op create without key"},
		{"truncate with key", func(e *Envelope) { e.Op, e.After, e.Attributes = OpTruncate, nil, nil }, "truncate with a key"},
		{"zero event time", func(e *Envelope) { e.EventTime = time.Time{} }, "event_time"},
		{"event time beyond 9999", func(e *Envelope) { e.EventTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "event_time"},
		{"zero ingest time", func(e *Envelope) { e.IngestTime = time.Time{} }, "ingest_time"},
		{"create without attributes", func(e *Envelope) { e.Attributes = nil }, "op create without attributes"},
		{"tombstone with images", func(e *Envelope) { e.Op = OpTombstone }, "op tombstone with row images"},
		{"no topic", func(e *Envelope) { e.Origin.Topic = "" }, "origin"},
		{"negative offset", func(e *Envelope) { e.Origin.Offset = -1 }, "origin"},
		{"binlog without file", func(e *Envelope) { e.Version = Version{Scheme: VersionBinlog, Pos: 3} }, "binlog version without file"},
		{"unknown scheme", func(e *Envelope) { e.Version = Version{Scheme: "scn"} }, `version scheme "scn"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEnvelope()
			tt.mod(&e)
			err := e.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if !errors.Is(err, ErrInvalidEnvelope) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			// The JSON Schema agrees with Validate wherever JSON can tell.
			b, merr := json.Marshal(&e)
			if tt.name == "event time beyond 9999" {
				if merr == nil {
					t.Fatal("a year beyond 9999 encoded")
				}
				return
			}
			if merr != nil {
				t.Fatal(merr)
			}
			serr := validateEnvelopeJSON(t, b)
			if (serr == nil) != (tt.want == "") {
				t.Fatalf("JSON Schema says %v for %s", serr, b)
			}
		})
	}
}

// TestEnvelopeSchemaRejects shows the JSON Schema checks what it claims by
// breaking a valid encoding in ways Validate cannot see (it sees Go values).
func TestEnvelopeSchemaRejects(t *testing.T) {
	e := validEnvelope()
	b, err := json.Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateEnvelopeJSON(t, b); err != nil {
		t.Fatalf("valid envelope rejected: %v", err)
	}
	mutations := map[string]func(m map[string]any){
		"unknown member":           func(m map[string]any) { m["extra"] = 1 },
		"missing version":          func(m map[string]any) { delete(m, "version") },
		"event time not a time":    func(m map[string]any) { m["event_time"] = "yesterday" },
		"partition negative":       func(m map[string]any) { m["origin"].(map[string]any)["partition"] = -1 },
		"origin unknown member":    func(m map[string]any) { m["origin"].(map[string]any)["host"] = "x" },
		"lsn scheme with file":     func(m map[string]any) { m["version"].(map[string]any)["file"] = "f" },
		"offset scheme with lsn":   func(m map[string]any) { m["version"] = map[string]any{"scheme": "offset", "lsn": 3} },
		"binlog without file":      func(m map[string]any) { m["version"] = map[string]any{"scheme": "binlog", "pos": 3} },
		"attributes not object":    func(m map[string]any) { m["attributes"] = []any{1} },
		"key empty":                func(m map[string]any) { m["key"] = "" },
		"key fields empty":         func(m map[string]any) { m["key_fields"] = map[string]any{} },
		"truncate with attrs":      func(m map[string]any) { m["op"] = "truncate"; delete(m, "key"); delete(m, "key_fields") },
		"tombstone with after":     func(m map[string]any) { m["op"] = "tombstone" },
		"zero time, not tombstone": func(m map[string]any) { m["event_time"] = "0001-01-01T00:00:00Z" },
		"kind unknown":             func(m map[string]any) { m["kind"] = "log" },
	}
	for name, mutate := range mutations {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		mutate(m)
		mb, _ := json.Marshal(m)
		if err := validateEnvelopeJSON(t, mb); err == nil {
			t.Errorf("%s: the JSON Schema accepted %s", name, mb)
		}
	}
}

func TestVersionCompare(t *testing.T) {
	lsn := func(n uint64) Version { return Version{Scheme: VersionLSN, LSN: n} }
	bin := func(f string, pos, row uint64) Version {
		return Version{Scheme: VersionBinlog, File: f, Pos: pos, Row: row}
	}
	off := func(n int64) Version { return Version{Scheme: VersionOffset, Offset: n} }
	tests := []struct {
		a, b Version
		want int
		ok   bool
	}{
		{lsn(1), lsn(2), -1, true},
		{lsn(2), lsn(2), 0, true},
		{lsn(3), lsn(2), 1, true},
		{bin("mysql-bin.000003", 1442, 0), bin("mysql-bin.000003", 1442, 1), -1, true},
		{bin("mysql-bin.000003", 1831, 0), bin("mysql-bin.000003", 1442, 1), 1, true},
		{bin("mysql-bin.000004", 4, 0), bin("mysql-bin.000003", 1831, 0), 1, true},
		{bin("mysql-bin.999999", 4, 0), bin("mysql-bin.1000000", 4, 0), -1, true},
		{bin("mysql-bin.000010", 4, 0), bin("mysql-bin.10", 4, 0), 0, true},
		{bin("a-bin.000001", 4, 0), bin("b-bin.000001", 4, 0), -1, true},
		{bin("weird", 4, 0), bin("weird.", 4, 0), -1, true},
		{bin("x.1a", 4, 0), bin("x.1b", 4, 0), -1, true},
		{off(5), off(6), -1, true},
		{lsn(5), off(5), 0, false},
		{Version{Scheme: "scn"}, Version{Scheme: "scn"}, 0, false},
	}
	for _, tt := range tests {
		got, ok := tt.a.Compare(tt.b)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%+v vs %+v: got %d %v, want %d %v", tt.a, tt.b, got, ok, tt.want, tt.ok)
		}
		if ok {
			if back, _ := tt.b.Compare(tt.a); back != -got {
				t.Errorf("%+v vs %+v: not antisymmetric", tt.a, tt.b)
			}
		}
	}
}
