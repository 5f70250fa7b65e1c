// Package graph owns rtgraph's typed property-graph model: nodes, edges and
// the mutations that change them, the typed graph schema that every mutation
// must conform to, and the Store contract that storage backends
// (graph/cassandra, graph/embedded) implement.
//
// Semantics shared by every backend:
//
//   - Last write wins by version. A mutation's version is its source event
//     time (microseconds) and then its position [Pos] (the source log
//     position, offset or id of its event), compared as a tuple
//     ([CompareVersions]). Each node and each edge is one value stamped with
//     the version of the mutation that wrote it; a mutation older than the
//     stored value (or than a later delete) changes nothing. So two updates
//     of one row in one transaction, which share the commit time, resolve by
//     their log positions, whatever order they arrive in. On equal versions
//     a delete wins over an upsert; between two upserts the one whose
//     encoded properties ([EncodeProps]) compare greater byte-wise wins. So
//     any order of the same mutations, with any duplicates, gives the same
//     state.
//   - An upsert replaces the whole property set (a CDC after-image is the full
//     row); it does not merge with older properties, except those it names
//     in [Mutation.Keep]: properties the source did not send (an unchanged
//     TOASTed column), which keep their values from the stored node when
//     that node is live and not newer than the upsert (absent otherwise;
//     "not newer" makes a redelivered upsert idempotent). A
//     source delivers one row's changes in order, so the stored node is the
//     row's previous state; the value kept is decided when the upsert is
//     applied (the one place a backend reads before writing).
//   - A delete at version V removes only what was written at or before V.
//   - Edge visibility. An edge is visible (to adjacency, and so to
//     traversals and listings) only while its own upsert is live and both
//     end nodes exist. An end whose node type is implicit
//     ([NodeType.Implicit]: a node that edges create, such as an item
//     bought) need not exist; it hides the edge only while the node is
//     deleted (its newest delete beats its newest upsert). So a node delete
//     hides the node's edges without destroying them: edges owned by other
//     sources (rows of other tables, request logs) are visible again when
//     the node is written again, as in the source database; edges the
//     deleted row owned go with their own deletes.
//   - Purge. OpPurgeNode at version V deletes the node at V and removes, for
//     good, every edge at it written at or before V, whatever happens to
//     the node later; an edge written after V is kept. It is the privacy
//     request's erase, not the CDC delete. (The reference keeps the purge
//     version and hides those edges; Pebble removes them when purging and
//     refuses late ones; Cassandra keeps the version in node_deletes and
//     hides them when reading.)
//   - Truncate. OpTruncateType of node type T at version V deletes, as an
//     OpDeleteNode at V would, every node of T whose newest upsert is not
//     after V (and so hides their edges); a node of T upserted after V is
//     live, and an upsert older than V that arrives later stays hidden. The
//     type's truncate version is the greatest applied. Implicit types
//     cannot be truncated (their nodes need not be written).
//   - Edges expire ExpiresAt = EventTime + TTL of their edge type (0 = never).
//   - Multiplicity. At an end an edge type constrains ([EdgeType.Constrains]:
//     the From end of a MANY2ONE type, the To end of ONE2MANY, both of
//     ONE2ONE) each node holds one claim: the target of the edge upsert of
//     greatest version written at that end (on equal versions the greater
//     target key). An edge of such a type is visible only while it is the
//     claim of every end its type constrains, so a device that moves to
//     another account loses its old owner edge without a before image.
//     Claims are kept per end, independently of edge and node deletes, and
//     converge to the greatest, so every arrival order gives the same state.
//     (The reference and Pebble apply it when writing: a new claim removes
//     the previous claim's edge, and an upsert that is not the claim of
//     every constrained end is not written; Cassandra, which does not read
//     before writing, applies it when reading.)
package graph
