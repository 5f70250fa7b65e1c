// Package normalize owns the event envelope and the decoders that turn each
// Kafka record of an input topic into envelopes: Debezium change events in
// every shape upstream services publish, and JSON request/response logs.
//
// # The envelope
//
// Every event becomes an [Envelope]: an idempotency ID, the kind (cdc,
// request, metadata), the op, the entity type and key, the source event time
// and ingest time, an ordering [Version], the row images and the attributes
// to map, and its [Origin] (topic, partition, offset, mapping). The contract
// is on [Envelope]; [Envelope.Validate] checks it, and its JSON encoding is
// described by schemas/envelope.schema.json (embedded as
// schemas.EnvelopeSchema).
//
// # Decoding
//
// [New] builds the [Decoder] for one topic from its [Config]. Decode never
// panics; a message it cannot decode yields a [*DecodeError] whose Class
// (malformed_json, schema_violation, unsupported_op, missing_field,
// bad_time, wrong_type) is what the pipeline puts in the dead-letter headers. Decoding
// is deterministic: the same message and config give the same envelopes
// (ingest time aside, and a tombstone's DeletesDropped mark, which says how
// the topic's rows decoded so far look), which is what makes the IDs
// idempotency keys.
//
// Debezium (see debeziumDecoder for how shapes are told apart):
//
//   - ops c, u, d, r, t map to create, update, delete, read, truncate; m
//     (logical decoding messages) and unknown ops are unsupported_op. Old
//     MySQL connectors sent snapshot rows as c with source.snapshot "true";
//     they stay create, since the op says what the connector meant.
//   - event time is source.ts_ns, ts_us or ts_ms, the finest present; when
//     the source time is 0 (snapshot rows of old MySQL connectors) the
//     envelope's own ts_* (connector time) stands in. Flattened rows use
//     __source_ts_*, then __ts_*, then the record's Kafka timestamp.
//   - an object with a row image (before or after: an object or null)
//     together with an op or an object source is a change event, and one
//     missing the other member is missing_field ("op" or "source"): an event
//     that lost its op is never guessed to be a flattened row, which would
//     upsert a row whose columns are before, after and source.
//   - the version is source.lsn (PostgreSQL), else file/pos/row (MySQL),
//     else the Kafka offset.
//   - with the schema/payload wrapper, values follow their Connect types:
//     Decimal and VariableScaleDecimal become decimal strings ("2.99"); Date
//     becomes "2006-01-02"; Time, MicroTime, NanoTime become "15:04:05.000…";
//     Timestamp, MicroTimestamp, NanoTimestamp and ZonedTimestamp become
//     time.Time in UTC (out-of-range values such as PostgreSQL's infinity keep
//     their raw value); Json, Uuid, Enum, bytes stay strings. Without the
//     wrapper values are as the JSON has them.
//   - a tombstone (nil or empty value, JSON null, or the legacy
//     {"schema":null,"payload":null}) decodes to one envelope with Op
//     [OpTombstone], its Key, no attributes, the record's Kafka timestamp as
//     event time and entity type Config.EntityType or the topic. Graph mapping
//     skips it: the delete before it already carried the change. This keeps
//     "one message, at least one envelope or an error" true for every record
//     and lets the pipeline count tombstones. [DebeziumConfig.TombstoneDeletes]
//     makes them deletes instead, for topics whose deletes are dropped
//     upstream. Without it, a tombstone of a topic whose last flattened row
//     had no __deleted member is marked [Envelope].DeletesDropped: there the
//     connector drops delete events (Debezium 3 ignores the older
//     delete.handling.mode=rewrite), so nothing else records the delete, and
//     graph mapping warns.
//   - unchanged TOASTed columns: a PostgreSQL UPDATE under REPLICA IDENTITY
//     DEFAULT that leaves a TOASTed column unchanged carries
//     unavailable.value.placeholder ([DebeziumConfig].UnavailableValuePlaceholder,
//     default "__debezium_unavailable_value") in the after image instead of
//     the value: the text for text, json, jsonb and xml columns, its bytes
//     (base64 text) for bytea, a list of it for arrays. Such a field, in
//     every shape (with the schema, base64 only for bytes fields; without,
//     either form), leaves the after image and attributes and is named in
//     [Envelope].Unavailable, so that it does not overwrite the stored value.
//   - truncate yields one envelope with Op truncate, the table as entity
//     type and no key.
//
// Key and id types: Config.KeyTypes declares key fields integer, string or
// uuid, and RequestLogConfig.IDType the request id; they are checked in
// every shape (wrapped, schemaless, flattened, tombstone, message key,
// request log), and a value of another type is wrong_type naming the field
// rather than a node, edge or count under a bogus id.
//
// Request logs: Op create, ID from the configured id field, time from the
// configured time field, key from the configured key fields, attributes the
// whole object (or the configured fields), version scheme id: events of one
// event time are ordered by their id.
//
// Metadata topics (format metadata: compacted, key → JSON document): Op
// upsert with the document as attributes, or Op delete without an image for
// a tombstone; the key is the record key as text (a JSON string key is
// unquoted, as enrichment caches read it; key_types names it "key"); the
// event time is the record's Kafka timestamp and the version its offset.
//
// # Cost
//
// Decoding dominates ingest CPU, so the decoders read JSON with their own
// reader (json_parse.go) rather than encoding/json: it steps over what is
// not needed, reads the source block typed, and builds values without
// reflection. The Connect schema, repeated in every wrapped message and most
// of its bytes, is parsed once per distinct schema and then stepped over by
// a byte comparison (schemaCache, bounded by Config.SchemaCacheSize); its
// field names double as the row's map keys. Schemaless rows and request logs
// take their keys from a bounded interner (keyInterner). A decoder holds no
// other state but one atomic flag (whether the topic's last flattened row
// had a __deleted member, for tombstones), so it is safe for concurrent use. docs/bench-normalize.md
// records the measured figures.
package normalize
