package cassandra

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"go.uber.org/goleak"

	"github.com/rtgraph/rtgraph/internal/testenv"
	"github.com/rtgraph/rtgraph/schemas"
)

// The package's integration tests share one keyspace per test run: DDL is
// slow, so it is created (and migrated) once, on first use, and dropped
// when the run ends.
var shared struct {
	once    sync.Once
	err     error
	cfg     Config
	session *gocql.Session
	// extra are keyspaces tests created besides the shared one, and
	// sessions on them still open.
	mu       sync.Mutex
	extra    []string
	sessions []*gocql.Session
}

func TestMain(m *testing.M) {
	code := m.Run()
	cleanupKeyspaces()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// baseConfig is DefaultConfig pointed at the test server, with keyspace ks.
func baseConfig(tb testing.TB, ks string) Config {
	tb.Helper()
	addr := testenv.Cassandra(tb)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatalf("%s=%q: want host:port: %v", testenv.EnvCassandra, addr, err)
	}
	cfg := DefaultConfig()
	cfg.Hosts = []string{host}
	cfg.Port, err = strconv.Atoi(port)
	if err != nil {
		tb.Fatalf("%s=%q: bad port: %v", testenv.EnvCassandra, addr, err)
	}
	cfg.Keyspace = ks
	// DDL on a small shared machine can take several seconds.
	cfg.Timeout = 30 * time.Second
	return cfg
}

func uniqueKeyspace(prefix string) string {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// sharedStore returns the migrated shared keyspace's config and session.
func sharedSession(tb testing.TB) (Config, *gocql.Session) {
	tb.Helper()
	cfg := baseConfig(tb, uniqueKeyspace("rtgraph_test_"))
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if _, err := Migrate(ctx, cfg, schemas.CQLMigrations(), slog.New(slog.DiscardHandler)); err != nil {
			shared.err = err
			shared.cfg = cfg // dropped at the end even when half-made
			return
		}
		shared.cfg = cfg
		shared.session, shared.err = NewSession(ctx, cfg, nil)
	})
	if shared.err != nil {
		tb.Fatalf("set up keyspace %s: %v", shared.cfg.Keyspace, shared.err)
	}
	return shared.cfg, shared.session
}

// trackKeyspace registers a keyspace a test creates, to be dropped at the end.
func trackKeyspace(ks string) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.extra = append(shared.extra, ks)
}

// trackSession registers a session to close before the keyspaces go.
func trackSession(s *gocql.Session) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.sessions = append(shared.sessions, s)
}

func cleanupKeyspaces() {
	if shared.session != nil {
		shared.session.Close()
	}
	for _, s := range shared.sessions {
		s.Close()
	}
	var all []string
	if shared.cfg.Keyspace != "" {
		all = append(all, shared.cfg.Keyspace)
	}
	all = append(all, shared.extra...)
	if len(all) == 0 {
		return
	}
	cfg := shared.cfg
	if cfg.Keyspace == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := newSession(ctx, cfg, "", nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "drop test keyspaces %v: %v\n", all, err)
		return
	}
	defer s.Close()
	for _, ks := range all {
		if err := s.Query("DROP KEYSPACE IF EXISTS " + ks).ExecContext(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "drop keyspace %s: %v\n", ks, err)
		}
	}
}
