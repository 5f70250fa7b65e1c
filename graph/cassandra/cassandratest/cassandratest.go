// Package cassandratest opens graph stores for tests outside package
// cassandra: each on a migrated keyspace of its own on the real Cassandra
// that internal/testenv names, dropped when the test ends.
package cassandratest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"strconv"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/cassandra"
	"github.com/rtgraph/rtgraph/internal/testenv"
	"github.com/rtgraph/rtgraph/schemas"
)

// Open migrates a new keyspace named prefix plus a random suffix, opens a
// store on it with schema and the clock now, and registers the store's
// close and the keyspace's drop with tb.Cleanup.
func Open(tb testing.TB, prefix string, schema *graph.Schema, now func() time.Time) *cassandra.Store {
	tb.Helper()
	store, _ := OpenSession(tb, prefix, schema, now)
	return store
}

// OpenSession is Open that also returns the store's session, whose
// keyspace is the store's: for benchmarks that measure a raw client
// beside the store on the same tables.
func OpenSession(tb testing.TB, prefix string, schema *graph.Schema, now func() time.Time) (*cassandra.Store, *gocql.Session) {
	tb.Helper()
	return OpenWith(tb, prefix, schema, cassandra.Options{Registerer: prometheus.NewRegistry(), Now: now})
}

// OpenWith is OpenSession with the store's options given whole (a registry
// under test, a logger).
func OpenWith(tb testing.TB, prefix string, schema *graph.Schema, opts cassandra.Options) (*cassandra.Store, *gocql.Session) {
	tb.Helper()
	addr := testenv.Cassandra(tb)
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatalf("%s=%q: %v", testenv.EnvCassandra, addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		tb.Fatalf("%s=%q: %v", testenv.EnvCassandra, addr, err)
	}
	var b [5]byte
	_, _ = rand.Read(b[:])
	cfg := cassandra.DefaultConfig()
	cfg.Hosts, cfg.Port, cfg.Keyspace = []string{host}, port, prefix+hex.EncodeToString(b[:])
	cfg.Timeout = 30 * time.Second // DDL on a busy two-core machine
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := cassandra.Migrate(ctx, cfg, schemas.CQLMigrations(), nil); err != nil {
		tb.Fatalf("migrate %s: %v", cfg.Keyspace, err)
	}
	session, err := cassandra.NewSession(ctx, cfg, nil)
	if err != nil {
		tb.Fatalf("session: %v", err)
	}
	store, err := cassandra.New(session, cfg, schema, opts)
	if err != nil {
		session.Close()
		tb.Fatalf("store: %v", err)
	}
	tb.Cleanup(func() {
		_ = store.Close()
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer dcancel()
		if err := session.Query("DROP KEYSPACE IF EXISTS " + cfg.Keyspace).ExecContext(dctx); err != nil {
			tb.Errorf("drop keyspace %s: %v", cfg.Keyspace, err)
		}
		session.Close()
	})
	return store, session
}

// WaitQuiet waits until the node runs no compaction or other sstable task
// (system_views.sstable_tasks is empty) on two reads a second apart, or
// until limit passes, and returns how long it waited and whether the node
// was quiet. Benchmarks call it after loading so that their reads are not
// timed against the compactions the load set off.
func WaitQuiet(tb testing.TB, session *gocql.Session, limit time.Duration) (time.Duration, bool) {
	tb.Helper()
	start := time.Now()
	quiet := 0
	for time.Since(start) < limit {
		var tasks int
		iter := session.Query(`SELECT keyspace_name FROM system_views.sstable_tasks`).Iter()
		for scanner := iter.Scanner(); scanner.Next(); {
			tasks++
		}
		if err := iter.Close(); err != nil {
			tb.Fatalf("read system_views.sstable_tasks: %v", err)
		}
		if tasks == 0 {
			if quiet++; quiet == 2 {
				return time.Since(start), true
			}
		} else {
			quiet = 0
		}
		time.Sleep(time.Second)
	}
	return time.Since(start), false
}
