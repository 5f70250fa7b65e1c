package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/cassandra"
	"github.com/rtgraph/rtgraph/graph/storetest"
	"github.com/rtgraph/rtgraph/internal/testenv"
	"github.com/rtgraph/rtgraph/schemas"
)

// openCassandra migrates a keyspace of its own on the real Cassandra that
// testenv names, loads muts into it, and drops it when the test ends.
func openCassandra(t testing.TB, muts []graph.Mutation) graph.Store {
	t.Helper()
	addr := testenv.Cassandra(t)
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s=%q: %v", testenv.EnvCassandra, addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatalf("%s=%q: %v", testenv.EnvCassandra, addr, err)
	}
	var b [5]byte
	_, _ = rand.Read(b[:])
	cfg := cassandra.DefaultConfig()
	cfg.Hosts, cfg.Port, cfg.Keyspace = []string{host}, port, "rtgraph_api_"+hex.EncodeToString(b[:])
	cfg.Timeout = 30 * time.Second // DDL on a busy two-core machine
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := cassandra.Migrate(ctx, cfg, schemas.CQLMigrations(), nil); err != nil {
		t.Fatalf("migrate %s: %v", cfg.Keyspace, err)
	}
	session, err := cassandra.NewSession(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	store, err := cassandra.New(session, cfg, storetest.Schema(), cassandra.Options{Registerer: prometheus.NewRegistry(), Now: func() time.Time { return clock }})
	if err != nil {
		session.Close()
		t.Fatalf("store: %v", err)
	}
	t.Cleanup(func() {
		_ = store.Close()
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer dcancel()
		if err := session.Query("DROP KEYSPACE IF EXISTS " + cfg.Keyspace).ExecContext(dctx); err != nil {
			t.Errorf("drop keyspace %s: %v", cfg.Keyspace, err)
		}
		session.Close()
	})
	if len(muts) > 0 {
		if err := store.Apply(ctx, muts); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	return store
}

// TestTraversalsOnCassandra runs the same traversal scenarios as the Pebble
// handler tests, through the API, against real Cassandra.
func TestTraversalsOnCassandra(t *testing.T) {
	traversalScenarios(t, openCassandra(t, seed()))
}

// TestWorkbenchOnCassandra runs the listing and degree checks of the Pebble
// handler tests against real Cassandra.
func TestWorkbenchOnCassandra(t *testing.T) {
	t.Run("list", func(t *testing.T) { listScenarios(t, openCassandra(t, listSeed())) })
	t.Run("degree", func(t *testing.T) { degreeScenarios(t, openCassandra(t, seed())) })
}
