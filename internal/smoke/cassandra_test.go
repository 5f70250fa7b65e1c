package smoke

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/rtgraph/rtgraph/internal/testenv"
)

func cassandraSession(t *testing.T) *gocql.Session {
	t.Helper()
	addr := testenv.Cassandra(t)
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s=%q: %v", testenv.EnvCassandra, addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatalf("%s=%q: bad port: %v", testenv.EnvCassandra, addr, err)
	}
	cluster := gocql.NewCluster(host)
	cluster.Port = port // also used for the hosts the driver discovers, so set it rather than host:port
	cluster.Consistency = gocql.One
	cluster.Timeout = 20 * time.Second // DDL on a 2-core machine can take seconds
	cluster.ConnectTimeout = 10 * time.Second
	session, err := cluster.CreateSession()
	if err != nil {
		t.Fatalf("connect to Cassandra at %s: %v", addr, err)
	}
	t.Cleanup(session.Close)
	return session
}

// TestCassandraWriteTimeAndTTL writes a row USING TIMESTAMP and TTL, reads back WRITETIME and TTL, and
// checks last-write-wins by timestamp: an older write does not replace a newer one, a newer one does.
func TestCassandraWriteTimeAndTTL(t *testing.T) {
	s := cassandraSession(t)
	ctx := t.Context()
	ks := unique("smoke")
	if err := s.Query(`CREATE KEYSPACE ` + ks +
		` WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`).ExecContext(ctx); err != nil {
		t.Fatalf("create keyspace: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Query(`DROP KEYSPACE IF EXISTS ` + ks).Exec(); err != nil {
			t.Logf("drop keyspace %s: %v", ks, err)
		}
	})
	table := ks + ".edges"
	if err := s.Query(`CREATE TABLE ` + table +
		` (src text, dst text, label text, PRIMARY KEY ((src), dst))`).ExecContext(ctx); err != nil {
		t.Fatalf("create table: %v", err)
	}

	insert := `INSERT INTO ` + table + ` (src, dst, label) VALUES (?, ?, ?) USING TIMESTAMP ? AND TTL ?`
	read := func(src, dst string) (label string, writetime int64, ttl *int, err error) {
		err = s.Query(`SELECT label, WRITETIME(label), TTL(label) FROM `+table+` WHERE src = ? AND dst = ?`,
			src, dst).ScanContext(ctx, &label, &writetime, &ttl)
		return
	}

	const ttlSeconds = 3600
	ts := time.Now().UnixMicro() // Cassandra timestamps are microseconds
	if err := s.Query(insert, "a", "b", "knows", ts, ttlSeconds).ExecContext(ctx); err != nil {
		t.Fatalf("insert: %v", err)
	}
	label, wt, ttl, err := read("a", "b")
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if label != "knows" || wt != ts {
		t.Fatalf("read back label %q writetime %d, want %q %d", label, wt, "knows", ts)
	}
	if ttl == nil || *ttl > ttlSeconds || *ttl < ttlSeconds-60 {
		t.Fatalf("TTL(label) = %v, want about %d", fmtPtr(ttl), ttlSeconds)
	}

	// An older timestamp loses: the cell keeps the newer value and its write time.
	if err := s.Query(insert, "a", "b", "stale", ts-1_000_000, 0).ExecContext(ctx); err != nil {
		t.Fatalf("insert older: %v", err)
	}
	if label, wt, _, err = read("a", "b"); err != nil || label != "knows" || wt != ts {
		t.Fatalf("after an older write: label %q writetime %d err %v, want %q %d", label, wt, err, "knows", ts)
	}

	// A newer timestamp wins (TTL 0 = no expiry, so TTL() is null).
	if err := s.Query(insert, "a", "b", "follows", ts+1, 0).ExecContext(ctx); err != nil {
		t.Fatalf("insert newer: %v", err)
	}
	if label, wt, ttl, err = read("a", "b"); err != nil || label != "follows" || wt != ts+1 || ttl != nil {
		t.Fatalf("after a newer write: label %q writetime %d ttl %s err %v, want %q %d <nil>",
			label, wt, fmtPtr(ttl), err, "follows", ts+1)
	}

	// A short TTL really expires.
	if err := s.Query(insert, "a", "c", "brief", time.Now().UnixMicro(), 1).ExecContext(ctx); err != nil {
		t.Fatalf("insert with TTL 1: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, _, _, err := read("a", "c")
		if errors.Is(err, gocql.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatalf("read row with TTL 1: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("row written with TTL 1 still there after 15s")
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func fmtPtr(p *int) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprint(*p)
}
