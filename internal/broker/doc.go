// Package broker owns the embedded Kafka-protocol broker of `rtgraph demo`:
// one in-process broker (github.com/twmb/franz-go/pkg/kfake) listening on a
// loopback address, with its topics created up front and its state kept in
// a directory, so that any Kafka client (sarama, kcat, another service) can
// publish to it and a restarted demo finds its records and its consumer
// groups' committed offsets again.
//
// # What is kept across restarts
//
// With Config.Dir set, kfake writes every record batch, topic, committed
// group offset and producer id to the directory as it goes and saves the
// rest on Close. Start reloads it: the records, each partition's offsets
// and each group's committed offsets are as they were, so a consumer group
// resumes where it committed. Without SyncWrites the record files are not
// fsynced per batch (Kafka's own default), so a crash of the process can
// lose the newest batches; a clean Close loses nothing.
//
// kfake applies Kafka's topic defaults only when it creates state: topics
// seeded at creation are not created again once a directory exists, so
// Start creates every configured topic that is missing itself, on every
// start. A topic that already exists keeps its partition count and configs.
//
// # Compacted topics
//
// Topics listed in Config.CompactedTopics are created with
// cleanup.policy=compact, and kfake compacts them like Kafka does (the
// newest record of each key survives; the last batch of a partition, like
// Kafka's active segment, is never compacted). It does so every
// Config.CompactionInterval (Kafka's log.cleaner.backoff.ms), not when a
// dirty ratio is reached. Consumers must not rely on compaction having
// happened, on either broker.
//
// # One process per directory
//
// kfake itself does not lock its directory; Start takes an exclusive lock on
// Dir/.lock (released by Close, or by the kernel when the process dies), so
// a second demo on the same directory fails with ErrDirLocked instead of
// corrupting the first one's files.
package broker
