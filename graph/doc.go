// Package graph owns rtgraph's typed property-graph model: nodes, edges and
// the mutations that change them, the typed graph schema that every mutation
// must conform to, and the Store contract that storage backends
// (graph/cassandra, graph/embedded) implement.
//
// Semantics shared by every backend:
//
//   - Last write wins by source event time. Each node and each edge is one
//     value stamped with the EventTime of the mutation that wrote it; a
//     mutation older than the stored value (or than a later delete) changes
//     nothing. Ties on equal event time are broken as Cassandra breaks them:
//     a delete wins over an upsert; between two upserts the one whose encoded
//     properties ([EncodeProps]) compare greater byte-wise wins. So any order
//     of the same mutations, with any duplicates, gives the same state.
//   - An upsert replaces the whole property set (a CDC after-image is the full
//     row); it does not merge with older properties.
//   - A delete at time T removes only what was written at or before T.
//   - Edges expire ExpiresAt = EventTime + TTL of their edge type (0 = never).
package graph
