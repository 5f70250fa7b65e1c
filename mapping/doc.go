// Package mapping owns the declarative mapping from events to the graph: it
// loads the mapping files (a vertical's mappings/*.yaml), compiles their rules
// once, and turns each normalized envelope into typed graph mutations checked
// against the graph schema. A new business vertical is a new file, not code.
//
// # Contract with the pipeline
//
// [Load] compiles the files against a *graph.Schema and a [Lookup] (the
// enrichment caches, implemented by enrich.Enricher). [Mapper.Map] is then
// called once per envelope, concurrently from every partition worker; it
// returns mutations already passed through graph.(*Schema).Check, or an
// [*Error] whose [Class] goes into the dead-letter headers. [Fold] reduces a
// batch before it is written. [Mapper.Topics] lists the event topics to
// consume.
//
// # File format
//
// A file holds rules, and optionally the policy of the topics they read.
// Unknown keys are errors at every level; every start-up error is a
// [*LoadError] naming file, line, rule and field.
//
//	topics:                      # optional
//	  requests.playback:
//	    unmatched: ignore        # or dead_letter (the default)
//	rules:
//	  - name: playback_start     # [a-z][a-z0-9_]*, unique across all files
//	    select:
//	      topic: requests.playback
//	      ops: [create]          # default [create, update, read, upsert]
//	      when: 'attrs.event == "playback_start"'   # optional condition
//	    joins:                   # optional, evaluated in order
//	      - name: title
//	        cache: titles        # an enrichment cache
//	        key: 'attrs.title_id'
//	        on_miss: pass        # or dead_letter
//	    version: 'attrs.seq'     # optional: the position of the rule's mutations
//	    emit:
//	      nodes:
//	        - type: title        # a node type of the graph schema
//	          id: 'attrs.title_id'
//	          when: 'join.title != nil'   # optional, per emitted item
//	          props:
//	            name: 'join.title.name'
//	      edges:
//	        - type: played       # an edge type of the graph schema
//	          from: {type: profile, id: 'attrs.profile_id'}
//	          to: {type: title, id: 'attrs.title_id'}
//	          props:
//	            event_id: 'id'
//	        - type: owns_device
//	          from: {type: account, id: 'before.account_id'}
//	          to: {type: device, id: 'key'}
//	          delete: true       # a delete; carries no props
//	  - name: failed_requests    # selects events to map them to nothing
//	    select:
//	      topic: requests.playback
//	      when: 'attrs.status >= 400'
//	    skip: true               # no joins, no emit
//	  - name: accounts_truncate  # a TRUNCATE of the table accounts come from
//	    select:
//	      topic: streaming.public.accounts
//	      ops: [truncate]        # exactly [truncate] for a truncate entry
//	    emit:
//	      nodes:
//	        - type: account      # declared and not implicit
//	          truncate: true     # every node of the type; no id, props or delete
//
// Every value under when, key, id and props is an expression
// (github.com/expr-lang/expr) over these variables:
//
//	id           string          the envelope's idempotency id (keep it as an
//	                             edge property where events are counted)
//	kind, op     string          "cdc", "request", "metadata"; "create", "update", "delete", ...
//	entity_type  string
//	key          string          the entity key
//	key_fields   map             key column → value
//	event_time   time.Time       the source time of the event
//	topic        string
//	after        map or nil      the CDC after image (without unavailable fields)
//	before       map or nil      the CDC before image
//	attrs        map or nil      the state to map: after, before for deletes, the request log
//	join         map             join name → document (a map), or nil on a miss
//	missed       []string        the names of the joins that missed (on_miss: pass)
//
// Time helpers render a time.Time in UTC: unix_s, unix_ms, unix_us (int),
// iso_ms ("2006-01-02T15:04:05.000Z"), iso (RFC 3339, fraction as needed)
// and day ("2006-01-02"); nil gives nil, another type is an
// expression_error (timefuncs.go).
//
// # Versions
//
// Every mutation carries the version of its event: the event time, then a
// position ([Position]) that orders events of the same event time — the LSN
// or binlog coordinates of a CDC change (two updates of a row in one
// transaction share their commit time), the offset of a record of a topic
// without source positions, or the id of a request log. Stores keep, per node
// and edge, the write with the greatest version (package graph). A rule's
// version expression replaces the position: a non-negative integer (a
// sequence number the source puts in its records), a string (compared like a
// request id) or a list of two non-negative integers compared in order; null
// or another value is an expression_error.
//
// A rule with skip: true selects events on purpose to map them to nothing
// (non-2xx requests, actions the graph does not keep): they count as
// matched, so they are neither unknown_entity nor in need of a dummy emit.
//
// A missing field reads as nil, and so does any field or element of nil:
// attrs.user.id is nil for an event without a user, join.title.name is nil
// when the title join missed. Reading a field of a number or a string, or an
// index out of a list's range, is an expression_error. Optional chaining
// (a?.b) and nil coalescing (a ?? "default") are available. now() is
// disabled and time functions use UTC, so that replaying an event gives the
// same mutations. Expressions are compiled and type-checked against these
// variables, so a misspelt variable, a syntax error, a type error such as
// key + 1, a condition that is not a bool, or join.<name> for a join the rule
// does not declare fails at start-up.
//
// Results: an id (and a join key) must be a string or an integer (rendered
// in decimal); anything else is non_conforming (null) or expression_error
// (join keys). A property whose expression gives nil is left out, since an
// upsert replaces the whole property set. A time.Time becomes RFC 3339 text
// for a string property, Unix microseconds for an int property and
// canonical text (graph.CanonicalTime) for a time property, which also
// takes RFC 3339 text of any offset and precision; other
// values must have the declared type, or Check rejects the mutation as
// non_conforming.
//
// # Selection and the unmatched policy
//
// Every rule whose select matches an envelope (topic, op, condition) emits;
// a topic may have any number of rules, across files. An envelope that no
// rule selects is an unknown_entity error, unless its topic is declared
// `unmatched: ignore` (a request log topic that carries events the graph
// does not need, such as playback heartbeats): then Map returns nothing.
// Envelopes of topics that no file names are unknown_entity errors too.
//
// Tombstones are never mapped. A tombstone that is the only record of a
// delete (normalize.Envelope.DeletesDropped: a topic flattened by
// ExtractNewRecordState without __deleted, whose connector drops delete
// events, as Debezium 3 does when given the older option
// delete.handling.mode=rewrite, which it ignores) is counted in
// rtgraph_mapping_tombstones_deletes_dropped_total{topic}, and Map logs a
// warning once per topic naming both fixes: delete.tombstone.handling.mode=
// rewrite on the connector, or debezium.tombstone_deletes: true on the
// topic, which decodes tombstones as deletes.
//
// # Truncates
//
// A truncate (op truncate, no key: a TRUNCATE of the table) is mapped only
// by a rule that selects op truncate; otherwise it follows the unmatched
// policy, so by default it is dead-lettered rather than silently dropped. A
// node entry `truncate: true` (with a type, and no id, props or delete; a
// when is allowed) emits graph.OpTruncateType of its type at the event's
// version: every node of the type whose newest upsert is not newer is
// deleted, as by a delete of each (package graph), and upserts after it
// live. It is allowed only in a rule whose select.ops is exactly
// [truncate], and the type must be declared and not implicit (implicit
// nodes need not be written, so they cannot be truncated); both are load
// errors. [Fold] passes truncates through.
//
// # Unchanged TOASTed columns
//
// A Debezium PostgreSQL update under REPLICA IDENTITY DEFAULT that leaves a
// TOASTed column unchanged does not carry its value; normalize takes the
// placeholder out of the event and names the column in
// normalize.Envelope.Unavailable (missing from attrs and after). Which
// attributes an expression reads is found at load from its compiled form:
// attrs.<name> and after.<name> read one field, a nil test (after != nil)
// none; any other use of attrs or after (attrs[k], len(after),
// toJSON(attrs)) may read any. For an event
// with unavailable attributes:
//
//   - A node property whose expression reads one is not written but kept:
//     the upsert names it in graph.Mutation.Keep, and the store keeps the
//     value the node holds (absent when the node is not live or is newer).
//     [Fold] fills kept properties from an older upsert of the node in the
//     same batch.
//   - A node id, an edge end's id, a condition (select.when or an emit's
//     when), a join key or the version that reads one fails the event with
//     unavailable_value: nothing can be decided without it.
//   - An edge upsert whose properties read one is not emitted by that event:
//     the stored edge stays as it was (the column did not change), counted in
//     rtgraph_mapping_unavailable_edges_total{rule}. Known limit: an edge is
//     one value without kept properties, so an edge whose properties mix
//     changed columns and unchanged TOASTed ones misses the changed ones in
//     that event; they arrive with the next event that carries every column
//     it reads (any update that changes the TOASTed column, or a snapshot).
//     Properties that read only columns PostgreSQL never TOASTs (numbers,
//     short text) are not affected.
//
// # Joins
//
// A join evaluates its key and reads the named cache. On a hit join.<name> is
// the cached document. On a miss, on_miss: pass leaves join.<name> nil and
// appends the name to missed (so a rule can record that the event was not
// enriched); on_miss: dead_letter fails the envelope with join_failed. A key
// that evaluates to nil is a miss. See package enrich for when a miss is
// authoritative.
package mapping
