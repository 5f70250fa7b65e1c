package normalize

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind says what an event is about.
type Kind string

// The event kinds.
const (
	KindCDC      Kind = "cdc"      // a row change captured from a database
	KindRequest  Kind = "request"  // a request/response log line
	KindMetadata Kind = "metadata" // a change to reference data that enrich caches
)

func (k Kind) valid() bool { return k == KindCDC || k == KindRequest || k == KindMetadata }

// Op is what happened to the entity.
type Op string

// The ops. Create, update, read and upsert all carry the entity's full new
// state in Attributes; graph mapping treats them alike (an upsert) and may
// select on them to tell them apart.
const (
	OpCreate   Op = "create"   // Debezium c; every request log
	OpUpdate   Op = "update"   // Debezium u
	OpDelete   Op = "delete"   // Debezium d, or a flattened row with __deleted "true"
	OpRead     Op = "read"     // Debezium r: a snapshot read of an existing row
	OpTruncate Op = "truncate" // Debezium t: every row of EntityType is gone; no Key
	// OpUpsert is a flattened row that does not say which op produced it
	// (ExtractNewRecordState without add.fields=op): the row's current state.
	OpUpsert Op = "upsert"
	// OpTombstone is the null-valued record Kafka compaction needs after a
	// delete. It is not a graph change by itself (the delete before it carries
	// the change): it has a Key and no Attributes, and graph mapping must not
	// map it. DebeziumConfig.TombstoneDeletes turns tombstones into OpDelete
	// instead, for topics whose delete events are dropped upstream.
	OpTombstone Op = "tombstone"
)

func (o Op) valid() bool {
	switch o {
	case OpCreate, OpUpdate, OpDelete, OpRead, OpTruncate, OpUpsert, OpTombstone:
		return true
	}
	return false
}

// carriesState reports whether an event of this op holds the entity's new
// state in Attributes.
func (o Op) carriesState() bool {
	return o == OpCreate || o == OpUpdate || o == OpRead || o == OpUpsert
}

// VersionScheme names how a Version orders events.
type VersionScheme string

// The version schemes.
const (
	// VersionLSN: PostgreSQL WAL position of the change (source.lsn). Changes
	// to one row never interleave across transactions, so for one entity the
	// change LSN orders like the commit order.
	VersionLSN VersionScheme = "lsn"
	// VersionBinlog: MySQL/MariaDB binlog file, position of the event, and row
	// index within a multi-row event.
	VersionBinlog VersionScheme = "binlog"
	// VersionOffset: no source position was available; the Kafka offset of the
	// record orders events within Origin's topic partition only.
	VersionOffset VersionScheme = "offset"
	// VersionID: request logs. Events of one event time are ordered by the
	// envelope's idempotency id; the version itself holds nothing else.
	VersionID VersionScheme = "id"
)

// Version is the ordering version of an event within its source. Snapshot
// reads all carry the position at which the snapshot started, so equal
// versions are normal; the event time and ID still tell them apart.
type Version struct {
	Scheme VersionScheme `json:"scheme"`
	LSN    uint64        `json:"lsn,omitempty"`    // VersionLSN
	File   string        `json:"file,omitempty"`   // VersionBinlog
	Pos    uint64        `json:"pos,omitempty"`    // VersionBinlog
	Row    uint64        `json:"row,omitempty"`    // VersionBinlog
	Offset int64         `json:"offset,omitempty"` // VersionOffset
}

// Compare orders two versions of the same source: -1, 0 or +1 as v is before,
// equal to or after o. ok is false when the schemes differ, which means the
// versions are not comparable. Offsets compare only within one partition; the
// caller knows whether both came from the same one. Two VersionID versions
// are equal: the envelopes' IDs order them.
func (v Version) Compare(o Version) (c int, ok bool) {
	if v.Scheme != o.Scheme {
		return 0, false
	}
	switch v.Scheme {
	case VersionLSN:
		return cmp.Compare(v.LSN, o.LSN), true
	case VersionBinlog:
		if c := compareBinlogFiles(v.File, o.File); c != 0 {
			return c, true
		}
		if c := cmp.Compare(v.Pos, o.Pos); c != 0 {
			return c, true
		}
		return cmp.Compare(v.Row, o.Row), true
	case VersionOffset:
		return cmp.Compare(v.Offset, o.Offset), true
	case VersionID:
		return 0, true
	}
	return 0, false
}

// compareBinlogFiles orders binlog names such as "mysql-bin.000003": by stem,
// then by the numeric suffix as a number, so "mysql-bin.999999" comes before
// "mysql-bin.1000000" (MySQL widens the suffix past six digits).
func compareBinlogFiles(a, b string) int {
	sa, na, oka := splitBinlog(a)
	sb, nb, okb := splitBinlog(b)
	if !oka || !okb || sa != sb {
		return strings.Compare(a, b)
	}
	na, nb = strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
	if c := cmp.Compare(len(na), len(nb)); c != 0 {
		return c
	}
	return strings.Compare(na, nb)
}

func splitBinlog(f string) (stem, num string, ok bool) {
	i := strings.LastIndexByte(f, '.')
	if i < 0 || i == len(f)-1 {
		return "", "", false
	}
	for _, c := range f[i+1:] {
		if c < '0' || c > '9' {
			return "", "", false
		}
	}
	return f[:i], f[i+1:], true
}

// Origin says where an event was read and which mapping it feeds. It is what
// the dead-letter headers carry, and with the ID it makes an event traceable.
type Origin struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Mapping   string `json:"mapping,omitempty"`
}

// Envelope is the one shape every event takes after decoding. The contract,
// checked by Validate and by schemas/envelope.schema.json:
//
//   - ID is the idempotency id: the same source event decodes to the same ID
//     however often Kafka delivers it. CDC: "<source name>:<entity type>:
//     <position>:<op>[:<key>]" with position "lsn:<lsn>", "binlog:<file>:
//     <pos>:<row>" or, without a source position, "kafka:<topic>:<partition>:
//     <offset>"; the key is part of it because all snapshot rows share one
//     position. Request logs: the configured request id field.
//   - EventTime is the source's time of the change (never ingest time), at
//     the best precision the source gives; it is what last-write-wins and
//     windows use. Only a tombstone may lack it.
//   - Key identifies the entity within EntityType; empty only for truncate.
//     One key field gives its value as text; several are joined with "/" in
//     key order, each with "\" and "/" escaped by a backslash.
//   - Attributes is the state to map: After for create, update, read and
//     upsert (never nil for them), Before for delete (nil when the source
//     kept no old image), nil for truncate and tombstone. It is the same map
//     as After or Before, not a copy.
//   - Attribute values are nil, bool, string, int64, float64, time.Time,
//     []any or map[string]any. Integers beyond int64 and numbers beyond
//     float64 keep their JSON text as a string; decimals are decimal strings.
//   - Unavailable names, sorted and without duplicates, the fields of the
//     after image the source did not send: a Debezium PostgreSQL UPDATE
//     that left a TOASTed column unchanged carries a placeholder instead of
//     its value (DebeziumConfig.UnavailableValuePlaceholder). They are not
//     in After or Attributes: the value stored before still holds. Only ops
//     that carry state have them.
//   - DeletesDropped marks a tombstone of a topic whose flattened rows carry
//     no deleted member (__deleted): the connector drops delete events
//     (ExtractNewRecordState without delete.tombstone.handling.mode=rewrite,
//     or with the older delete.handling.mode, which Debezium 3 ignores), so
//     the tombstone is the only record of a delete. It deletes nothing
//     unless DebeziumConfig.TombstoneDeletes is set, which makes it an
//     OpDelete instead.
type Envelope struct {
	ID         string         `json:"id"`
	Kind       Kind           `json:"kind"`
	Op         Op             `json:"op"`
	EntityType string         `json:"entity_type"`
	Key        string         `json:"key,omitempty"`
	KeyFields  map[string]any `json:"key_fields,omitzero"` // key column → value, when the key has named fields
	EventTime  time.Time      `json:"event_time"`
	IngestTime time.Time      `json:"ingest_time"`
	Version    Version        `json:"version"`
	Before     map[string]any `json:"before,omitzero"`
	After      map[string]any `json:"after,omitzero"`
	Attributes map[string]any `json:"attributes,omitzero"`
	// Unavailable: see the contract above.
	Unavailable []string `json:"unavailable,omitempty"`
	// DeletesDropped: see the contract above.
	DeletesDropped bool   `json:"deletes_dropped,omitempty"`
	Origin         Origin `json:"origin"`
}

// ErrInvalidEnvelope is wrapped by Validate's errors.
var ErrInvalidEnvelope = errors.New("normalize: invalid envelope")

// Validate checks the envelope contract. Every envelope a Decoder returns
// passes it; it exists for tests and for producers of envelopes other than
// this package's decoders.
func (e *Envelope) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidEnvelope, fmt.Sprintf(format, args...))
	}
	switch {
	case e.ID == "":
		return bad("empty id")
	case !e.Kind.valid():
		return bad("kind %q", e.Kind)
	case !e.Op.valid():
		return bad("op %q", e.Op)
	case e.EntityType == "":
		return bad("empty entity_type")
	case e.Op != OpTruncate && e.Key == "":
		return bad("op %s without key", e.Op)
	case e.Op == OpTruncate && (e.Key != "" || e.KeyFields != nil):
		return bad("truncate with a key")
	case e.Op != OpTombstone && !validTime(e.EventTime):
		return bad("event_time %v", e.EventTime)
	case !validTime(e.IngestTime):
		return bad("ingest_time %v", e.IngestTime)
	case e.Op.carriesState() && e.Attributes == nil:
		return bad("op %s without attributes", e.Op)
	case (e.Op == OpTruncate || e.Op == OpTombstone) && (e.Attributes != nil || e.Before != nil || e.After != nil):
		return bad("op %s with row images", e.Op)
	case e.Origin.Topic == "" || e.Origin.Partition < 0 || e.Origin.Offset < 0:
		return bad("origin %+v", e.Origin)
	case e.DeletesDropped && e.Op != OpTombstone:
		return bad("deletes_dropped on op %s", e.Op)
	case len(e.Unavailable) > 0 && !e.Op.carriesState():
		return bad("unavailable fields on op %s", e.Op)
	}
	for i, name := range e.Unavailable {
		switch {
		case name == "":
			return bad("unavailable field with an empty name")
		case i > 0 && e.Unavailable[i-1] >= name:
			return bad("unavailable fields not sorted or repeated at %q", name)
		}
		if _, ok := e.Attributes[name]; ok {
			return bad("unavailable field %q is also an attribute", name)
		}
	}
	switch e.Version.Scheme {
	case VersionLSN, VersionOffset, VersionID:
	case VersionBinlog:
		if e.Version.File == "" {
			return bad("binlog version without file")
		}
	default:
		return bad("version scheme %q", e.Version.Scheme)
	}
	return nil
}

// minTime and maxTime bound the times an envelope may hold: the years that
// RFC 3339 (and so the envelope's JSON) can represent.
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

func validTime(t time.Time) bool { return !t.Before(minTime) && !t.After(maxTime) }
