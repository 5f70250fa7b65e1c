package cassandra

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/schemas"
)

func TestReadMigrationsRejects(t *testing.T) {
	cases := map[string]fstest.MapFS{
		"bad name":          {"1_short.cql": {Data: []byte("SELECT 1;")}},
		"upper case name":   {"0001_Graph.cql": {Data: []byte("SELECT 1;")}},
		"not cql":           {"0001_a.cql": {Data: []byte("SELECT 1;")}, "README.md": {Data: []byte("x")}},
		"duplicate version": {"0001_a.cql": {Data: []byte("SELECT 1;")}, "0001_b.cql": {Data: []byte("SELECT 1;")}},
		"unterminated":      {"0001_a.cql": {Data: []byte("INSERT INTO t (v) VALUES ('x);")}},
		"no statements":     {"0001_a.cql": {Data: []byte("-- nothing\n")}},
	}
	for name, fsys := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := readMigrations(fsys)
			if !errors.Is(err, ErrMigrationFile) {
				t.Fatalf("got %v, want ErrMigrationFile", err)
			}
		})
	}
	migs, err := readMigrations(fstest.MapFS{
		"0010_later.cql": {Data: []byte("SELECT 2;")},
		"0002_first.cql": {Data: []byte("SELECT 1; SELECT 1;")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) != 2 || migs[0].file != "0002_first.cql" || migs[1].version != 10 || len(migs[0].stmts) != 2 {
		t.Fatalf("migrations %+v", migs)
	}
}

// freshKeyspace is a config for a keyspace of its own, dropped at the end
// of the run.
func freshKeyspace(t *testing.T) Config {
	t.Helper()
	cfg := baseConfig(t, uniqueKeyspace("rtgraph_mig_"))
	trackKeyspace(cfg.Keyspace)
	return cfg
}

func migrateCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestMigrateAppliesOnceAndRefusesChanges(t *testing.T) {
	cfg := freshKeyspace(t)
	ctx := migrateCtx(t)
	fsys := fstest.MapFS{
		"0001_accounts.cql": {Data: []byte("-- accounts\nCREATE TABLE IF NOT EXISTS accounts (id text PRIMARY KEY, name text);\n")},
		"0002_orders.cql": {Data: []byte("CREATE TABLE IF NOT EXISTS orders (id text PRIMARY KEY);\n" +
			"INSERT INTO accounts (id, name) VALUES ('a;1', 'it''s');\n")},
	}
	applied, err := Migrate(ctx, cfg, fsys, nil)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	if want := []string{"0001_accounts.cql", "0002_orders.cql"}; !slices.Equal(applied, want) {
		t.Fatalf("first run applied %v, want %v", applied, want)
	}
	s, err := NewSession(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var name string
	if err := s.Query(`SELECT name FROM accounts WHERE id = 'a;1'`).ScanContext(ctx, &name); err != nil || name != "it's" {
		t.Fatalf("row written by 0002: %q, %v", name, err)
	}
	var sum string
	if err := s.Query(`SELECT checksum FROM schema_migrations WHERE version = 2`).ScanContext(ctx, &sum); err != nil || len(sum) != 64 {
		t.Fatalf("recorded checksum %q, %v", sum, err)
	}

	applied, err = Migrate(ctx, cfg, fsys, nil)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second run applied %v, %v; want nothing", applied, err)
	}

	fsys["0003_items.cql"] = &fstest.MapFile{Data: []byte("CREATE TABLE IF NOT EXISTS items (id text PRIMARY KEY);")}
	applied, err = Migrate(ctx, cfg, fsys, nil)
	if err != nil || !slices.Equal(applied, []string{"0003_items.cql"}) {
		t.Fatalf("run with a new file applied %v, %v; want only 0003_items.cql", applied, err)
	}

	fsys["0002_orders.cql"] = &fstest.MapFile{Data: []byte("CREATE TABLE IF NOT EXISTS orders (id text PRIMARY KEY, extra int);\n")}
	fsys["0004_more.cql"] = &fstest.MapFile{Data: []byte("CREATE TABLE IF NOT EXISTS more (id text PRIMARY KEY);")}
	applied, err = Migrate(ctx, cfg, fsys, nil)
	if !errors.Is(err, ErrMigrationChanged) || !strings.Contains(err.Error(), "0002_orders.cql") {
		t.Fatalf("changed file: got %v, want ErrMigrationChanged naming 0002_orders.cql", err)
	}
	if len(applied) != 0 {
		t.Fatalf("applied %v despite a changed file", applied)
	}
	if err := s.Query(`SELECT id FROM more LIMIT 1`).ExecContext(ctx); err == nil {
		t.Fatal("0004 was applied although an applied file changed")
	}
}

func TestMigrateBadStatement(t *testing.T) {
	cfg := freshKeyspace(t)
	ctx := migrateCtx(t)
	fsys := fstest.MapFS{
		"0001_good.cql": {Data: []byte("CREATE TABLE IF NOT EXISTS good (id text PRIMARY KEY);")},
		"0002_bad.cql": {Data: []byte("CREATE TABLE IF NOT EXISTS fine (id text PRIMARY KEY);\n\n" +
			"CREATE TABEL oops (id text PRIMARY KEY);\n")},
	}
	applied, err := Migrate(ctx, cfg, fsys, nil)
	if !slices.Equal(applied, []string{"0001_good.cql"}) {
		t.Fatalf("applied %v, want only 0001_good.cql", applied)
	}
	if err == nil || !strings.Contains(err.Error(), "0002_bad.cql statement 2 (line 3)") || !strings.Contains(err.Error(), "CREATE TABEL oops") {
		t.Fatalf("got %v, want an error naming 0002_bad.cql, statement 2 at line 3 and its text", err)
	}
	if !errors.As(err, new(*gocql.RequestErrSyntax)) || graph.IsRetryable(err) {
		t.Fatalf("got %v, want a permanent syntax error", err)
	}
	// Fixed, the file is applied from its first statement (idempotent).
	fsys["0002_bad.cql"] = &fstest.MapFile{Data: []byte("CREATE TABLE IF NOT EXISTS fine (id text PRIMARY KEY);\n" +
		"CREATE TABLE IF NOT EXISTS oops (id text PRIMARY KEY);\n")}
	applied, err = Migrate(ctx, cfg, fsys, nil)
	if err != nil || !slices.Equal(applied, []string{"0002_bad.cql"}) {
		t.Fatalf("after the fix applied %v, %v", applied, err)
	}
}

// TestMigrateRealSchemaIsIdempotent: the shipped migrations, already
// applied to the shared keyspace, apply nothing a second time.
func TestMigrateRealSchemaIsIdempotent(t *testing.T) {
	cfg, _ := sharedSession(t)
	applied, err := Migrate(migrateCtx(t), cfg, schemas.CQLMigrations(), nil)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second run of schemas/cql applied %v, %v", applied, err)
	}
}

func TestMigrateInvalidConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Keyspace = "bad-name"
	if _, err := Migrate(context.Background(), cfg, fstest.MapFS{}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
}
