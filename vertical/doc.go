// Package vertical reads a vertical: one folder that holds everything
// rtgraph needs to turn a business's event streams into its graph — the
// input topics with their decoders, the metadata caches, the graph schema,
// the mapping rules and sample records. The binary embeds one, the streaming
// vertical (verticals/streaming, package verticals); `--vertical DIR` runs
// another from disk, and `rtgraph vertical check` and `rtgraph vertical
// try` validate and exercise a folder offline, through Check and Runner.
//
// # Layout
//
//	<dir>/
//	  vertical.yaml          name, topics (decoders), enrich (caches), counts
//	  graph/*.yaml           node and edge types (graph.LoadSchema)
//	  mappings/*.yaml        rules: envelope → mutations (mapping.Load)
//	  samples/<topic>.jsonl  sample records of an event or cache topic
//
// Other files (a README) are ignored.
//
// # vertical.yaml
//
//	name: shop                      # required, [a-z][a-z0-9_-]*
//	description: a web shop         # optional
//	topics:                         # required: the shape of ingest.topics
//	  shop.public.orders:           # topic → decoder (a normalize.Config)
//	    format: debezium
//	    entity_type: order
//	    key_fields: [order_id]
//	enrich:                         # optional: the shape of the enrich section
//	  caches:
//	    - {name: products, topic: shop.products}
//	counts:                         # optional: counts.edge_types
//	  edge_types: [impressed]
//
// Unknown keys are errors at every level. topics and enrich are what a
// process configuration's ingest.topics and enrich.caches hold, so a block
// moves between the two unchanged; enrich.idle_probe is a setting of the
// process and is refused here. counts names the edge types whose upserts
// are counted for frequency caps; without it the vertical counts none.
//
// # Samples
//
// samples/<topic>.jsonl holds records of one topic in the format `rtgraph
// produce` reads (ReadRecords): one record object per line,
//
//	{"key": {"order_id": 7001}, "value": {…}, "timestamp": "2026-11-25T09:00:00Z"}
//
// so `rtgraph produce --topic T --file samples/T.jsonl` publishes them as
// they are. Samples of a cache topic fill that cache for check and try (a
// cache without samples is empty). Every sample of an event topic must
// decode and map; one that is meant to be dead-lettered says so in a
// header, which keeps the line in produce's format:
//
//	{"value": {…}, "headers": {"rtgraph.expect": "dead_letter:join_failed"}}
//
// The value is "dead_letter" (any class) or "dead_letter:<class>", a class of
// the dead-letter headers (normalize's decode classes, mapping's classes,
// decode_error, mapping_error). The pipeline ignores the header; published
// with produce, it travels on into the dead letter.
package vertical
