// Package testenv tells tests where the real Kafka, Cassandra and Redis
// servers are.
//
// Integration tests call [Kafka], [Cassandra] or [Redis] first. `make test` starts the
// servers (deploy/local) and exports their addresses; a test run without them
// fails with a message that says how to get them, unless the caller asked for
// integration tests to be skipped with RTGRAPH_SKIP_INTEGRATION=1. CI (CI=true)
// never skips: there the variable is refused.
package testenv

import (
	"os"
	"testing"
)

// Environment variables read by this package.
const (
	EnvKafka     = "RTGRAPH_TEST_KAFKA"       // bootstrap address, e.g. 127.0.0.1:9092
	EnvCassandra = "RTGRAPH_TEST_CASSANDRA"   // contact point, e.g. 127.0.0.1:9042
	EnvRedis     = "RTGRAPH_TEST_REDIS"       // address, e.g. 127.0.0.1:16379
	EnvSkip      = "RTGRAPH_SKIP_INTEGRATION" // "1" skips integration tests, loudly
)

// Kafka returns the bootstrap address of the real Kafka broker.
func Kafka(tb testing.TB) string { return lookup(tb, EnvKafka, "Kafka") }

// Cassandra returns the contact point of the real Cassandra node.
func Cassandra(tb testing.TB) string { return lookup(tb, EnvCassandra, "Cassandra") }

// Redis returns the address of the real Redis server (the frequency-capping
// peer of the benchmarks).
func Redis(tb testing.TB) string { return lookup(tb, EnvRedis, "Redis") }

func lookup(tb testing.TB, env, what string) string {
	tb.Helper()
	if addr := os.Getenv(env); addr != "" {
		return addr
	}
	if os.Getenv(EnvSkip) == "1" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s=1 is refused in CI: integration tests must run against real %s", EnvSkip, what)
		}
		tb.Skipf("SKIPPING integration test: %s=1 and %s is unset (needs real %s; `make test` starts it)", EnvSkip, env, what)
	}
	tb.Fatalf("%s is unset: this integration test needs real %s. Run `make test` (it starts the servers), "+
		"or `make infra-up` and export %s, or set %s=1 to skip integration tests", env, what, env, EnvSkip)
	return ""
}
