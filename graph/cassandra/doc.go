// Package cassandra owns rtgraph's Cassandra backend: the graph.Store over
// the tables of schemas/cql, the session it runs on (Config, NewSession) and
// the migrations that create those tables (Migrate).
//
// # Last write wins is Cassandra's
//
// Every write carries the mutation's event time as its timestamp (USING
// TIMESTAMP, microseconds), deletes included. A node's or an edge's
// properties are one blob cell (graph.EncodeProps), so Cassandra's cell
// reconciliation is exactly the rule of package graph: the newer timestamp
// wins; at equal timestamps a tombstone wins over a value, and between two
// values the greater byte string wins (unsigned, as bytes.Compare). Any
// order of the same mutations, with duplicates, leaves the same state, and
// no write reads first. Event times are read back as WRITETIME(props).
//
// # Tables
//
//   - nodes: one partition per (type, id).
//   - node_deletes: the newest delete time of each node ever deleted.
//   - edges_by_key: adjacency in neighbour-key order, forward (direction
//     out) and reverse (direction in, only for edge types whose schema keeps
//     a reverse index). Partition (node, edge type, direction, bucket), with
//     bucket = FNV-1a(neighbour key) mod 8, clustered by neighbour key. A
//     row holds the properties, expires_at and last_time (the event time of
//     the newest upsert, which an edge delete leaves in place).
//   - edges_by_time: adjacency newest first. Partition (node, edge type,
//     direction, UTC day of the event time), clustered by (event time DESC,
//     neighbour key).
//   - edge_days: per (node, edge type, direction), the days edges_by_time
//     has rows for: one small partition (a row per active day, expiring with
//     the day's last edge).
//
// # Partition bounds
//
// An edges_by_key partition holds about 1/8 of one node's live edges of one
// type in one direction; an edges_by_time partition holds the edges of one
// node, type and direction upserted with event times in one UTC day. A row
// is the neighbour key plus the encoded properties (typically 50-300
// bytes). Against Cassandra's guidance of ~100k rows / 100 MB per
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
// edges_by_key row still has that event time, which one batched IN read per
// bucket per page checks. since/until restrict the clustering range of
// edges_by_time and filter edges_by_key rows.
//
// Writes never read. An upsert that moves an edge to a newer time leaves
// its old edges_by_time row behind, and an edge delete removes only the
// edge's properties and expiry in edges_by_key (a column delete at the
// delete's timestamp), leaving last_time and the edges_by_time rows. A
// newest-first read recognises such rows as dead for good, skips them and
// deletes them in the background at their own timestamp, which removes
// exactly that row version: when the edge's properties were written after
// the row's time (the write time only moves forward), or are deleted while
// last_time is at or after the row's time (that upsert was written, then
// hidden by a delete at or after it, which also hides any replay of it). A
// row whose edges_by_key row is missing or older is skipped and kept: its
// upsert may be in flight. Dead rows no read visits stay until their TTL, or
// for good in types without TTL; so does the small edges_by_key row (the
// neighbour key and last_time) of a deleted edge. That is the price of a
// write path without reads (rtgraph_cassandra_stale_index_rows_total counts
// the rows skipped and repaired).
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
// # Node deletes
//
// Deleting a node writes a partition tombstone in nodes and its delete time
// in node_deletes, both at the delete's event time. Its edges are hidden at
// read time, in both directions and for every edge type (with or without a
// reverse index): an edge is returned only if its event time is after the
// delete time of both ends. The node's own delete time narrows the scan; the
// neighbours' come from one IN read of node_deletes per page. The effect is
// immediate once Apply returns; an edge upserted later than the delete is
// visible again. Edge rows of a deleted node are not removed physically:
// they expire with their TTL, if their type has one, or stay hidden.
//
// # TTL
//
// An edge expires at event time + its type's TTL. Rows are written with the
// remaining lifetime (rounded up to a second), so Cassandra drops them after
// they expire; reads also compare expires_at with the clock, so expiry is
// exact to the microsecond. An upsert already expired when applied is not
// written (rtgraph_cassandra_expired_writes_skipped_total).
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
