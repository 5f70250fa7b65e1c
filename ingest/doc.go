// Package ingest owns rtgraph's ingestion pipeline from Kafka: the
// connection settings shared by every Kafka client (KafkaConfig), the
// consumer-group pipeline that turns input records into acknowledged graph
// writes (Pipeline), the dead-letter topic and its replay (ReplayDLQ), and
// rewinding the group to re-derive the graph (RewindGroup).
//
// # Where to start
//
// NewPipeline takes the `ingest:` Config, the KafkaConfig and four
// collaborators, each a small interface defined here: a Decoder per topic
// (normalize.New), the Mapper (package mapping), the Writer
// (graph.Writer) and optionally a WatermarkWriter (graph.WatermarkStore).
// Pipeline.Run is a lifecycle stage. pipeline.go holds the set-up and the
// group handler, pipeline_worker.go the per-partition worker, which is where
// the delivery guarantees live.
//
// # Consumption
//
// The pipeline is one member of a sarama consumer group (protocol 4.0 or
// newer, cooperative-sticky assignment, OffsetOldest for a group without
// offsets, errors returned and logged). Each claimed partition gets one
// worker goroutine, which keeps the partition's order. A worker decodes and
// maps each record as it arrives and accumulates a batch, closed at
// Batch.Count records, Batch.Bytes bytes, Batch.Period after its first
// record or (when set) Batch.Linger after its last. Writing a batch:
//
//  1. its mutations (folded by Options.Fold when set) go to Writer.Apply in
//     chunks of at most MaxApplyMutations; a transient failure is retried
//     with exponential backoff (Retry) for as long as it lasts;
//  2. records that cannot be decoded or mapped, or whose mutations the store
//     refuses as non-conforming (found by writing halves of the batch), go to
//     the dead-letter topic through an idempotent producer acknowledged by
//     all in-sync replicas, also retried;
//  3. only then is the offset after the batch's last record marked; marked
//     offsets are committed every AutoCommitInterval, on revocation and on
//     shutdown;
//  4. the partition's watermark is recorded (see graph.Watermark for its
//     definition), at most every WatermarkInterval and always on a clean
//     stop or revocation.
//
// Nothing is skipped: a record leaves the pipeline either written or
// dead-lettered, and a permanent store failure other than a schema refusal
// stops the pipeline (Run returns it) with the batch unmarked.
//
// # Backpressure
//
// While a write is retried the worker reads nothing more from its claim.
// The claim's buffer (PartitionBuffer records) fills and sarama stops
// fetching the partition, so a failing store costs bounded memory and no
// busy loop. rtgraph_ingest_stalled_partitions, rtgraph_ingest_stalls_total
// and, per partition, rtgraph_ingest_partition_stalled_seconds show it; a
// partition stalled for StallTimeout is listed in /readyz under
// detail.stalled_partitions with the last error, and the log says so when
// the stall begins, once a minute while it lasts (with the inner error) and
// when it ends.
//
// # Revoked and lost partitions
//
// A partition revoked by a cooperative rebalance (its claim closes while
// the session lives) is flushed, marked and committed before the worker
// returns, within RebalanceTimeout. When the session ends because the
// process is stopping, the same happens within DrainTimeout. When it ends
// because the member lost its generation (heartbeat refused, rebalance
// timeout, fencing), the worker drops its batch and marks nothing: the new
// owner starts from the last commit, and idempotent writes make the
// redelivery harmless. A write in progress when the partition is lost is
// cancelled.
//
// # Dead letters and replay
//
// A dead-letter record carries the source record's key, value and headers,
// plus rtgraph.dlq.* headers (Header* constants): error class, stage,
// reason, field, mapping, source topic, partition, offset and timestamp.
// A dead letter never blocks its partition: one that the producer
// (DeadLetterMaxMessageBytes, checked at start against the topic's
// max.message.bytes) or the topic refuses as too large or invalid is
// produced again at once without the source value, and if need be without
// key and source headers too, with rtgraph.dlq.value_omitted, the value's
// size and SHA-256 and the producer's error in headers (deadletter_send.go).
// Producer errors are told apart by class: sarama's client-side refusal and
// the broker's record-level codes are permanent for the record; every other
// one (no leader, too few replicas, timeouts, authorization) is retried and
// stalls the partition visibly.
//
// ReplayDLQ publishes them back to their source topic and partition after a
// fix, reading omitted values back from the source topic while it still
// holds them (checked by size and SHA-256); RewindGroup moves an inactive group's offsets back to a point in time
// so the graph is re-derived, which, writes being idempotent, ends in the
// state a single pass gives.
//
// # Metrics
//
// rtgraph_ingest_* on the injected registry: records by outcome, mutations,
// dead letters by class, flushes by reason, batch sizes, flush time,
// freshness (event time to acknowledged write), stalls, owned partitions,
// partition ownership events, abandoned batches, and
// rtgraph_ingest_consumer_lag{topic,partition}: high-water mark minus the
// next offset to write.
package ingest
