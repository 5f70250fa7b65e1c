// Package ingest owns rtgraph's connection to Kafka: the client settings
// shared by every consumer and producer (brokers, protocol version, TLS and
// SASL), built into sarama configurations.
package ingest
