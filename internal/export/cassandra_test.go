package export

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
	"github.com/rtgraph/rtgraph/internal/testenv"
	"github.com/rtgraph/rtgraph/schemas"
)

// cassandraCase is the export's store case on real Cassandra: a keyspace of
// its own (a listing scans the whole nodes table), dropped at the end.
var cassandraCase = storeCase{"cassandra", func(t *testing.T, s *graph.Schema, now func() time.Time) graph.Store {
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
	cfg.Hosts, cfg.Port, cfg.Keyspace = []string{host}, port, "rtgraph_export_"+hex.EncodeToString(b[:])
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
	st, err := cassandra.New(session, cfg, s, cassandra.Options{Registerer: prometheus.NewRegistry(), Now: now})
	if err != nil {
		session.Close()
		t.Fatalf("store: %v", err)
	}
	t.Cleanup(func() {
		_ = st.Close()
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer dcancel()
		if err := session.Query("DROP KEYSPACE IF EXISTS " + cfg.Keyspace).ExecContext(dctx); err != nil {
			t.Errorf("drop keyspace %s: %v", cfg.Keyspace, err)
		}
		session.Close()
	})
	return st
}, true}

// TestExportMatchesStoreOnCassandra is TestExportMatchesStore on real
// Cassandra.
func TestExportMatchesStoreOnCassandra(t *testing.T) {
	exportMatchesStore(t, cassandraCase)
}
