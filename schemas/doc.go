// Package schemas owns rtgraph's declarative files and embeds them into the
// binary: CQL migrations (cql/), the typed graph schema (graph/), the event
// envelope's JSON Schema, and later the mapping rules. Code that interprets
// them lives elsewhere (graph, graph/cassandra, normalize); this package only
// ships the files.
package schemas
