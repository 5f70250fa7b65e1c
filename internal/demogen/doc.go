// Package demogen owns the demo's event generator: it publishes the demo
// vertical (verticals/streaming) to Kafka as its upstream services would — Debezium
// change events of four tables, request logs, ad impressions and metadata
// documents — at a chosen rate, so that `rtgraph demo` has a live graph to
// show.
//
// # What it publishes
//
// Formats are those of verticals/streaming/samples/*.jsonl, topic by topic:
//
//   - streaming.public.accounts and streaming.public.profiles: Debezium's
//     plain JSON envelope (before, after, source, op, ts_ms), keyed by the
//     primary key, a tombstone after each delete;
//   - streaming.public.devices: rows flattened by ExtractNewRecordState
//     (__op, __lsn, __source_ts_ms…, deletes rewritten with __deleted "true",
//     no tombstones);
//   - billing.public.subscriptions: the schema/payload wrapper, its Connect
//     schemas taken from the sample, price as a Decimal, times as
//     MicroTimestamps;
//   - requests.login, requests.title_page, requests.playback (logouts and
//     heartbeats included, which the mapping ignores) and requests.ads;
//   - meta.titles and meta.campaigns: one document per key.
//
// A fresh generator publishes the metadata first (SeedMetadata), then an
// initial snapshot of the tables (op r), then a mix of inserts, updates and
// deletes of the rows it created (deleting an account cascades to its
// profiles, their devices and its subscription, as ON DELETE CASCADE does),
// request logs of existing accounts, profiles and devices, ad impressions
// from bounded pools of users, campaigns and creatives (skewed, so some
// users reach their frequency caps), and now and then a campaign revision or
// a new title. Ad users of accounts ("u-<account_id+8000>") are the ids
// successful logins tie to the account, which makes two-hop traversals from
// an impression to a household. About one record in a hundred is malformed
// on purpose (truncated JSON, a request without its id or with a time that
// is none, an insert without its row, a price that is not a Decimal) and
// ends on the dead-letter topic.
//
// # Determinism and restarts
//
// The sequence of rows and requests is a function of the seed (and the
// clock, for times). The state — the rows of each table, the random
// source, the counters — is saved to Config.StateFile every
// CheckpointInterval and when Run stops, only at points where every record
// generated so far was acknowledged. A restarted generator loads it and
// carries on: it updates and deletes the rows it created before, and it
// does not publish the metadata again.
//
// It never publishes one event id with two contents. Event times strictly
// increase across the stream and across restarts (the clock, or the last
// time plus 1µs), and each CDC event's LSN is its event time, so CDC ids
// (which contain the LSN) are new; request ids contain a run tag, the run's
// start in Unix milliseconds made greater than every saved run's and saved
// before it is used. After a crash the records published since the last
// checkpoint are generated again from the saved state: the same rows, under
// new ids and later times.
//
// # Rate
//
// Run admits bursts of a twentieth of a second's worth of records through a
// token bucket (golang.org/x/time/rate); a step that yields more records
// than were left (a delete and its tombstone, a cascade) is paid back from
// the next burst, so the long-run rate is the configured one. Rate 0
// publishes nothing.
//
// # Metrics
//
// rtgraph_demogen_records_total{topic,kind}, rtgraph_demogen_malformed_total{class},
// rtgraph_demogen_send_failures_total, on the registerer given to New.
package demogen
