// Package cassandra owns rtgraph's Cassandra backend: the graph.Store over
// the tables of schemas/cql, the session it runs on (Config, NewSession) and
// the migrations that create those tables (Migrate).
//
// # Last write wins is Cassandra's
//
// A mutation's version is its event time, then its position (graph.Pos).
// Every write carries the event time as its timestamp (USING TIMESTAMP,
// microseconds), deletes included, and a node's or an edge's state is one
// blob cell whose value starts with the position (layout.go):
//
//	[0x80] [16-byte position] [0x01 live] [graph.EncodeProps JSON]
//	[0x80] [16-byte position] [0x02 deleted]
//
// Cassandra keeps the cell of the newer timestamp and, at equal timestamps,
// the greater value (unsigned bytes, as bytes.Compare): the greater
// position, then the delete (0x02 > 0x01), then the greater properties,
// which is the rule of package graph. A delete is therefore such a value (a
// soft delete), never a tombstone: Cassandra lets a tombstone win every tie,
// so a DELETE and an INSERT of one key in one transaction (one commit time)
// would lose the row whatever their positions. Any order of the same
// mutations, with duplicates, leaves the same state, and no write reads
// first. Event times are read back as WRITETIME(props), positions from the
// value.
//
// Cells that expire (edge types with a TTL) need one more thing. At equal
// timestamps Cassandra 5.0 (Cells.resolveRegular) compares expiry before
// values: an expiring cell beats one that never expires, then the later
// local deletion time wins, then the smaller TTL, and only then the greater
// value. So every edges_by_key write of one event time, upsert or delete,
// binds the same TTL (the type's, in whole seconds) and sets the request's
// now_in_seconds (native protocol v5, which NewSession asks for) so that the
// local deletion time is expires_at rounded up to the second: both are
// functions of the event time alone, not of when the write is applied, and
// the value decides. Writes of one partition with different now_in_seconds
// go in different requests.
//
// What stays inexact: values written before this format (the bare JSON)
// read as live at the zero position, but at equal timestamps any value of
// this format beats them (0x80 > '{'), even an upsert at the zero position
// whose JSON is smaller; tombstones written then (edge and node deletes)
// still beat every write of their timestamp, and legacy cells of TTL types
// were stamped with the writer's clock, so at their timestamp the later
// expiry wins. A change of an edge type's TTL makes writes of one event
// time made before and after it compare by expiry (the later expiry wins,
// and any TTL beats none) rather than by position.
//
// # Tables
//
//   - nodes: one partition per (type, id); props is the node's value, live
//     or deleted.
//   - node_deletes: the version (deleted_at, deleted_pos) of the newest
//     purge of each node ever purged (graph.OpPurgeNode; rows written by
//     node deletes before deletes and purges were told apart read as
//     purges).
//   - edges_by_key: adjacency in neighbour-key order, forward (direction
//     out) and reverse (direction in, only for edge types whose schema keeps
//     a reverse index). Partition (node, edge type, direction, bucket), with
//     bucket = FNV-1a(neighbour key) mod 8, clustered by neighbour key. A
//     row holds the edge's value (props, live or deleted) and expires_at;
//     rows written before the current value format also hold last_time
//     (the event time of the newest upsert, which a delete left in place).
//   - edges_by_time: adjacency newest first. Partition (node, edge type,
//     direction, UTC day of the event time), clustered by (event time DESC,
//     neighbour key).
//   - edge_days: per (node, edge type, direction), the days edges_by_time
//     has rows for: one small partition (a row per active day, expiring with
//     the day's last edge).
//   - type_truncates: the version (at, pos) of the newest truncate of each
//     node type ever truncated (graph.OpTruncateType), all in one partition.
//   - edge_claims: per (node, edge type, direction) of an end the edge type
//     constrains (multiplicity, below), the node's claim: one single-row
//     partition, keyed (node_type, edge_type, direction, node_id).
//
// # Partition bounds
//
// An edges_by_key partition holds about 1/8 of one node's live edges of one
// type in one direction; an edges_by_time partition holds the edges of one
// node, type and direction upserted with event times in one UTC day. A row
// is the neighbour key plus the value (18 bytes of format, position and
// state, then the encoded properties: typically 50-300 bytes). Against Cassandra's guidance of ~100k rows / 100 MB per
// partition, a node stays within it up to ~800k live edges of one type and
// direction, written at up to ~100k per day. Past that, partitions grow
// linearly (8 times slower than without buckets); the bucket count is part
// of the on-disk format (layout.go), so raising it means rewriting the data.
//
// # Reads
//
// OrderKey merges the 8 edges_by_key partitions of the node (read in
// parallel, each about 1/8 of the page plus slack, refilled on demand).
// OrderLatest reads the edge_days directory, then walks edges_by_time days
// newest first. An edges_by_time row is only a hint: it is the edge if the
// edges_by_key row still holds a live value of that event time, which one
// batched IN read per bucket per page checks. since/until restrict the clustering range of
// edges_by_time and filter edges_by_key rows.
//
// Writes never read. An upsert that moves an edge to a newer time leaves
// its old edges_by_time row behind, and an edge delete writes only the
// deleted value over the edge's props in edges_by_key, leaving expires_at
// and the edges_by_time rows. A newest-first read recognises such rows as
// dead for good, skips them and deletes them in the background at their own
// timestamp, which removes exactly that row version: when the edge's value,
// live or deleted, was written after the row's time (the write time only
// moves forward), or, in rows of the legacy format, when the properties
// are a tombstone while last_time is at or after the row's time (that
// upsert was written, then hidden by a tombstone at or after it, which also
// hides any replay of it). A row whose edges_by_key value is missing or
// older is skipped and kept: its upsert may be in flight. So is a row whose
// edge holds a deleted value of the row's very event time: an upsert of
// that time at a greater position may still come and rewrite that row. Dead
// rows no read visits stay until their TTL, or for good in types without
// TTL; so does the small edges_by_key row (the neighbour key and the
// deleted value) of a deleted edge. That is the price of a write path
// without reads (rtgraph_cassandra_stale_index_rows_total counts the rows
// skipped and repaired).
//
// CountEdges (graph.EdgeCounter, the API's degree) does the work of paging
// OrderKey to its end without building edges: the 8 buckets are read in
// parallel slices and the live rows' neighbours checked in larger IN reads
// while the scan goes on (degree.go). Nothing is precomputed, so it costs
// about two partition reads per edge.
//
// Edge types with a multiplicity differ (see Multiplicity): at an end the
// type constrains, the page is the node's claimed edge alone, looked up
// directly instead of scanned; at the other end, the candidates' claims
// are read with their deletes, in the same round.
//
// A page reads one row more than its limit, so Next is nil exactly when no
// edge follows. Cursors are the position of the last edge returned (event
// time and neighbour key) with the order, the query's fingerprint and a
// CRC, never a driver page state; a scan resumes strictly after it, so an
// edge unchanged during the scan is returned exactly once whatever is
// written between pages. A page holds at most 10,000 edges whatever Limit
// asks, and one call reads at most 100k rows; a call that reaches that
// returns the edges found with a cursor after the last row read.
//
// # Node deletes, edge visibility and purges
//
// Deleting a node writes its deleted value in nodes, nothing else: its
// edges stay. An edge is returned only while both its ends are present
// (package graph): the node's value is live, or its type is implicit and
// it has no deleted value. The queried node's value is read with the first
// round of a query (an absent node has no edges); the neighbours' values
// come from one IN read of nodes per neighbour type and page. So a delete
// hides the node's edges at once, in both directions and for every edge
// type, and a later upsert of the node shows again those that were not
// deleted themselves, as the source database still has them.
//
// Purging a node writes its deleted value and the purge's version in
// node_deletes (deleted_at and deleted_pos, both cells at the purge's
// event time, so between purges of equal time the greater position wins).
// An edge is then returned only if its version (event time, position) is
// after the purge version of both ends (graph.CompareVersions), whatever
// happens to the node later: the node's own purge time narrows the scan;
// the neighbours' come from one IN read of node_deletes per page. Once
// those are written, Apply removes the rows themselves (purge.go): the
// node's edges_by_key and edges_by_time partitions of every type it may
// have edges of, deleted at one microsecond before the purge's time (so a
// later write stays and a late one of an earlier time is shadowed), its
// claims, and the mirrored rows at its neighbours, found by reading its own
// rows first. Three kinds of row stay, hidden for good by node_deletes:
// rows of the purge's very microsecond (a timestamp cannot say that one of
// a greater position outlives the purge, so position decides at read
// time), an edge into the node of a type without a reverse index (only the
// neighbour's partition holds it, and nothing lists those neighbours), and
// a late write of a time before the purge into a partition the purge did
// not delete. edge_days
// rows stay too: they name no neighbour, and each process caches the day
// rows it wrote. A node_deletes row written before deleted_pos existed (or
// whose deleted_pos was written at another time than deleted_at) reads as
// the zero position.
//
// # Truncates and kept properties
//
// A truncate of a node type writes one type_truncates row, at its event time
// (at equal times the greater position wins); nothing else. A node whose
// value is live but not after its type's truncate reads as deleted, in
// GetNodes and wherever a node's state hides edges (the queried node, the
// neighbours). A Store reads type_truncates (one partition) when its copy is
// older than one second, and notes its own truncates at once: a truncate
// applied by another process is seen within a second.
//
// A node upsert with kept properties (graph.Mutation.Keep: properties its
// source did not send, such as an unchanged TOASTed column) is the one
// write that reads first: Apply reads the stored values of those nodes (one
// read per node, in parallel), folds in the mutations before it in the same
// call and the type's truncate, and writes a full value with the kept
// properties of the node when it is live and not newer. A source delivers
// one row's changes in order, so the stored node is the row's previous
// state. Calls without kept properties read nothing.
//
// # Multiplicity
//
// At each end an edge type constrains (graph.EdgeType.Constrains: the From
// end of many2one, the To end of one2many, both ends of one2one) a node
// holds one claim, the target of the edge upsert of greatest version
// written at that end, on equal versions the greater target (package
// graph). Every upsert of such a type writes, beside its edge rows and
// without reading, the claim row of each constrained end:
//
//	edge_claims.claim = [0x80] [16-byte position] [neighbour key of the target]
//
// USING TIMESTAMP its event time. Cassandra keeps the newest timestamp and,
// at equal ones, the greater value: the greater position, then the greater
// target (neighbour keys sort in (type, id) order, layout.go). So the
// stored claim is the claim of the rule whatever the arrival order, and
// claims, like the rule's, are written whether or not the upsert wins and
// are left alone by edge and node deletes.
//
// Nothing is deleted when a claim moves: reads decide. An edge of a
// constrained type is visible only if, besides every other rule (live
// value, since/until, expiry, node deletes), the claim at each of its
// constrained ends names its other end. That is the rule's "an upsert that
// becomes the claim deletes the edge to the previous claim at its own
// version": a displaced edge's upserts are all of versions the displacing
// claim beats, so it stays hidden until an upsert of it beats the claim,
// which then names it again (and rewrites its value, which is visible).
//
//   - At a constrained end (Out of a many2one node, In of a one2many one,
//     either of one2one) the page is at most one edge: the node's claim is
//     read (one row, with the node's own delete), then that one
//     edges_by_key row is looked up directly, with the neighbour's delete
//     (and, for one2one, its claim); no bucket, day or index row is
//     scanned, in either order.
//   - At the other end (In of many2one, Out of one2many) every candidate's
//     claim at its end is read, one IN read per neighbour type and 100
//     candidates, in the round that reads their deletes; hidden candidates
//     are skipped and the page is refilled as for deleted ones, so pages
//     stay full (each refill is scaled by the share of candidates hidden so
//     far, up to 8 times, so a page over many hidden rows takes two or three
//     rounds). Their rows stay in the index (edges_by_key, edges_by_time)
//     and are read again by later scans: a node at the unconstrained end
//     that many edges moved away from costs a read per such row and page
//     through it, like rows of deleted edges.
//   - A node without a claim row constrains nothing at its end: edges
//     written before their type was constrained (or before this table)
//     all stay visible there until the first upsert of the constrained type
//     writes a claim.
//
// Claims of an edge type with a TTL are written with the TTL and
// now_in_seconds of the upsert's edges_by_key cells (keyExpiry): a claim
// expires at the same second as the edge it names, never before it, and
// every edge it can hide (same type, not newer) has expired by then, so
// its absence afterwards hides nothing the rule would show. Claims of one
// event time share that expiry and so compare by value, whenever they are
// applied. An upsert already expired when applied writes no claim either;
// the edges it would displace are expired too.
//
// What stays inexact: two upserts at one end with equal versions and
// different targets. The claim is the greater target and its edge is
// visible in every arrival order here; graph/memstore, applying in order,
// hides it in the orders where an older upsert of that same edge was the
// claim when the smaller target displaced it (deleting it at that very
// version, which wins the tie against the equal upsert arriving after), so
// the reference itself depends on the order there. A partly applied
// Apply (a claim written, its edge rows not yet) shows the claimed edge's
// previous value, if any, until the caller's retry completes it. Claims
// are not displacement deletes: relaxing a type's multiplicity in the
// schema (to simple, or one2one to many2one) brings back the edges its
// claims hid at the ends no longer constrained, whose rows were never
// deleted (graph/embedded deletes them as the rule says). As for
// edges_by_key, a change of a type's TTL makes claims of one event time
// written before and after it compare by expiry first.
//
// # TTL
//
// An edge expires at event time + its type's TTL. Its edges_by_key cells
// are written with the type's TTL and a now_in_seconds that make Cassandra
// drop them at that expiry rounded up to the second, by its own clock, for
// every write of that event time alike (see the first section);
// edges_by_time and edge_days rows are written with the remaining lifetime
// from the Store's clock and the same now_in_seconds, so they expire at the
// same second. Reads also compare expires_at with the clock, so expiry is
// exact to the microsecond. An upsert already expired when applied is not
// written (rtgraph_cassandra_expired_writes_skipped_total).
//
// The deleted value of an edge of a type with TTL expires like an upsert of
// the delete's event time: every upsert it can hide (of that time or older)
// has expired by then. A delete already past that is not written (counted
// in the same metric). In types without TTL the deleted value stays for
// good. A type whose TTL exceeds Cassandra's ceiling (20 years) is written
// without TTL at all; reads alone enforce its expiry.
//
// # Writes
//
// Apply groups the statements of a batch of mutations by partition and
// sends each group as one unlogged batch (single partition: atomic and
// isolated, no batch log), all groups in parallel. Every request of the
// Store, reads included, runs on a fixed pool of max_concurrent_requests
// workers (pool.go): that is the bound on requests in flight, callers queue
// for a worker first come, first served, and no goroutine is started per
// request. Forward and reverse rows of an edge are in
// different partitions and are not written atomically: a logged batch would
// double every edge write (batch log) to protect a state that the caller's
// retry of a failed Apply repairs anyway, since every write is idempotent.
// Statements are prepared by the driver and marked idempotent.
//
// Transient failures (timeouts, unavailable, overloaded, lost connections)
// are retried with exponential backoff and jitter; when the attempts run out
// the error is a *graph.RetryableError. Syntax, invalid-request and
// authorization errors are returned at once, unwrapped from retry. A
// cancelled context gives a *graph.RetryableError wrapping ctx.Err().
package cassandra
