// Package observability holds the checks that keep the operator's view of
// rtgraph true to the code: the Grafana dashboard (deploy/grafana) and the
// Prometheus alerting rules (deploy/prometheus) may name only series that
// rtgraph registers.
//
// The package has no code of its own; its test parses every rule and panel
// query with Prometheus's own PromQL parser and compares each metric and
// label it selects with the descriptors of rtgraph's real collectors, built
// the way `rtgraph serve` builds them (the API, the ingest pipeline, the
// mapping, the enrichment caches, the embedded store and the Cassandra
// store, each with its count store). A metric renamed in the code, or a typo
// in a dashboard, fails `go test ./...` instead of leaving an empty panel or
// an alert that can never fire.
//
// The Cassandra store registers its metrics only once connected, so the
// test needs the real Cassandra that internal/testenv names
// (RTGRAPH_TEST_CASSANDRA).
package observability
