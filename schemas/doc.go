// Package schemas owns rtgraph's declarative files that belong to no
// vertical and embeds them into the binary: CQL migrations (cql/) and the
// event envelope's JSON Schema. The graph schema and the mapping rules
// belong to a vertical (verticals/<name>/graph and mappings); GraphSchema
// and MappingFiles return the built-in streaming vertical's. Code that
// interprets the files lives elsewhere (graph, graph/cassandra, normalize,
// mapping, vertical); this package only ships them.
package schemas
