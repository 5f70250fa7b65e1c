// Package produce owns `rtgraph produce`: publishing a file of JSON events
// to a Kafka topic, so that users can feed rtgraph their own Debezium events
// or request logs without writing a producer.
//
// # Input formats
//
// A file is either JSON Lines (one JSON value per line; blank lines are
// skipped) or one JSON array; the first character that is not white space
// tells them apart. Each value is one record:
//
//   - a record object {"key": …, "value": …, "timestamp": …, "headers": …},
//     the format of verticals/*/samples/*.jsonl: key optional (a string is
//     the key's text, any other JSON its encoding, null or absent no key),
//     value the record value (null is a tombstone, which needs a key),
//     timestamp optional RFC 3339 (the Kafka record timestamp; absent: the
//     time of sending), headers optional object of strings;
//     Byte-exact fields: key_encoding and value_encoding (json, the
//     default; utf8: a JSON string sent as its UTF-8 bytes, for text that
//     is not JSON; base64: a JSON string decoded to raw bytes) and
//     headers_encoding (utf8 or base64 for header values); headers may also
//     be an array of {"key","value"} (repeated keys, null values); partition
//     sends to a partition, partition_key is hashed instead of the key;
//   - any other JSON value is the record value itself, sent without a key.
//
// FormatAuto (the default) takes an object whose keys are all among key,
// value, timestamp and headers, value included, as a record object;
// FormatRecords and FormatValues force one reading. FormatLines sends every
// non-blank line as it is, without reading it as JSON, which is how to
// publish deliberately malformed events and watch the dead-letter topic.
//
// # Guarantees
//
// The whole file is read and checked before anything is sent, so a bad
// line fails the command with its line number and publishes nothing.
// Records are sent in file order through an idempotent producer acknowledged
// by all in-sync replicas, in batches of at most BatchSize; keyed records go
// to the partition the Java client would choose (murmur2), like Debezium's.
// A record over Options.MaxMessageBytes (--max-message-bytes) fails the
// check with its line. Options.Create (--create-partitions,
// --replication-factor, --topic-config) creates the topic first when it does
// not exist. When sending fails part-way, the count returned says how many records the
// broker acknowledged, in file order.
package produce
