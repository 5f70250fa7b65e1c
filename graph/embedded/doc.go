// Package embedded owns rtgraph's single-process graph store: a graph.Store
// on a Pebble database in one directory, the backend of the embedded mode
// (make run) and of tests that need real persistence without servers.
//
// It keeps the semantics of package graph exactly as graph/cassandra does,
// which the shared conformance suite (graph/storetest) checks:
//
//   - Last write wins by event time, with Cassandra's tie rule. Writes are
//     read-modify-write under one writer lock (see Store), which makes the
//     comparison exact and cheap: each node and edge record holds only its
//     winning upsert and its newest delete time.
//   - Tombstones are kept forever. A delete leaves a small record (key and
//     delete time) so that an older upsert arriving later, however late,
//     cannot resurrect the item. There is no grace period to tune, at the
//     cost of one record per deleted node or edge.
//   - TTL: an edge expires at its event time plus its type's TTL. Reads hide
//     expired edges from that instant; a background sweep (Config.
//     SweepInterval) removes them from disk through an expiry queue ordered
//     by expiry time, so sweeping costs what it removes, not a full scan.
//   - Node deletes hide, purges erase. A node delete writes only the node's
//     tombstone; Adjacency reads, from one snapshot of the database, the
//     queried node's record and each returned neighbour's (through one
//     node-table iterator) and keeps an edge only while both ends are
//     present (package graph: they exist, or an implicit end is not
//     deleted), so a re-inserted node shows its edges again. A purge
//     (graph.OpPurgeNode) is immediate and physical: the Apply removes every
//     edge at either end written at or before it, found through the out
//     records and the in index (kept for every edge type for this purpose;
//     edge types without schema reverse index store an empty in entry, and
//     refuse Direction In queries), deletes the node and records the purge
//     version (key p <node>), which refuses edges arriving later with an
//     older version. Edge upserts check their ends for a purge through an
//     in-memory Bloom filter of the purge keys (purges.go), so the usual
//     answer, no purge, costs no read. A purge costs time proportional to
//     the node's degree, committed in batches of at most Config.CommitEvery
//     entries.
//   - Truncates and kept properties. A truncate (graph.OpTruncateType)
//     writes only its type's version (key t <node type>); every read of a
//     node's state (GetNodes, Adjacency's ends, kept properties) compares
//     the node's upsert with it in the same snapshot, so truncated nodes
//     read as deleted at once and stay on disk. A node upsert with kept
//     properties (graph.Mutation.Keep, an unchanged TOASTed column) takes
//     them from the stored record it reads anyway.
//   - Reads hand over stored property bytes (graph.Edge.PropsJSON,
//     graph.Node.PropsJSON) and decode them only when asked to: a page
//     gathers its far-end ids and property bytes in two arenas, so it
//     costs a few allocations, not several per edge; GetNodesRaw and
//     graph.AdjacencyQuery.RawProps skip the decode.
//   - Frequency-cap counts (counts.go) keep one key per impression, and
//     hourly rollups of the busy hours of heavy users (rollup.go) that
//     lookups read in place of the impressions they count.
//   - Adjacency reads one index range: out or in, in key order or newest
//     first (an index keyed by inverted event time). Cursors carry a
//     version byte, the query's fingerprint and the last key read, so they
//     survive concurrent writes and a cursor from another query is refused.
//
// The key layout is described in keys.go.
package embedded
