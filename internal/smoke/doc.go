// Package smoke holds the smoke integration tests of the local real-server harness (deploy/local):
// they prove that the Kafka broker and the Cassandra node started by `deploy/local/infra.sh up` do what
// rtgraph relies on, with the same Go clients rtgraph uses (IBM/sarama and gocql v2).
//
// Run them with `deploy/local/with-infra.sh go test -race ./internal/smoke/` (or `make test`); they find
// the servers through internal/testenv.
package smoke
