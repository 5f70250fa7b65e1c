// Package enrich owns the metadata caches that enrichment joins read: each
// cache holds the latest JSON document per key of one compacted Kafka topic
// (titles, campaigns…), bounded by a least-recently-used size limit, and is
// fed by a plain sarama partition consumer per partition.
//
// # Loading and readiness
//
// [Enricher.Run] reads every partition from its oldest offset. A partition is
// loaded when the consumer has delivered the record before the high
// watermark the partition had when Run started, or when a direct
// read_committed fetch shows that only transaction markers or aborted records
// remain below it (a consumer never delivers those, so waiting for them
// would never end). [Enricher.Loaded] closes when every partition of every
// cache is loaded; the process keeps readiness off and the pipeline maps no
// event until then, so an event is never joined against a cache that has not
// yet seen the metadata that existed at start. After loading the feeders
// follow live updates: a join sees the latest metadata applied at the
// moment it runs, which is the usual stream-table join (an event and a
// metadata update racing each other may join either way).
//
// Records: the key is the record key as text (a JSON string key is
// unquoted); a tombstone deletes the key; a value is decoded once into a
// map (numbers as int64 or float64, as in normalize's attributes) and shared
// by every lookup. A value that is not a JSON object, or is too large,
// deletes the key and is counted as invalid.
//
// # Size and evictions: the policy
//
// A cache must be sized to hold every live key of its topic. Kafka offers no
// lookup by key, so a document pushed out by the size limit cannot be
// fetched again on demand, and a lookup of it misses although the topic has
// it: such a miss is not deterministic (it depends on what else was read
// recently). So the size is a memory bound, not a working-set knob. The
// first eviction of a cache is logged as a warning,
// rtgraph_enrich_evictions_total counts them, and every later miss is
// counted as result="miss_after_eviction" rather than "miss", so that
// alerting can tell authoritative misses from ones that may be wrong. The
// join's miss policy (mapping on_miss) applies to both.
//
// # Metrics
//
// rtgraph_enrich_lookups_total{cache,result}, rtgraph_enrich_records_total{cache,result},
// rtgraph_enrich_evictions_total{cache}, rtgraph_enrich_entries{cache},
// rtgraph_enrich_loaded{cache}, all on the registerer given to [New].
package enrich
