package cassandra

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Migration errors.
var (
	// ErrMigrationChanged means a file already applied has been edited
	// since: its checksum no longer matches the recorded one.
	ErrMigrationChanged = errors.New("cassandra: applied migration changed")
	// ErrMigrationFile means the migration files themselves are unusable:
	// a bad name, a duplicate version, an unterminated literal.
	ErrMigrationFile = errors.New("cassandra: bad migration file")
)

// migrationNameRE is the file name rule: a 4-digit version, a name.
var migrationNameRE = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.cql$`)

type migration struct {
	version  int
	file     string
	checksum string // sha256 of the file, hex
	stmts    []statement
}

// Migrate brings cfg.Keyspace up to date with the *.cql files at the root of
// fsys (pass schemas.CQLMigrations()):
//
//  1. creates the keyspace with cfg.Replication if it does not exist (an
//     existing keyspace's replication is left alone);
//  2. creates schema_migrations (version, name, checksum, applied_at);
//  3. applies, in version order, each NNNN_name.cql file not yet recorded
//     there, statement by statement (split on ';' outside literals and
//     comments), waiting for schema agreement after each, and records it.
//
// It returns the names of the files it applied; a second run returns none.
// An applied file whose checksum changed is refused with
// ErrMigrationChanged, before anything is applied. A statement that fails
// stops the run with an error naming the file, the statement's number and
// line, and its start; the file is not recorded, so the next run starts it
// again from its first statement: migration statements must be idempotent
// (IF NOT EXISTS). Migrate must not run concurrently with itself against
// one cluster (concurrent CREATE TABLE races in Cassandra); run it from one
// process, before the Stores start.
func Migrate(ctx context.Context, cfg Config, fsys fs.FS, logger *slog.Logger) (applied []string, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	migs, err := readMigrations(fsys)
	if err != nil {
		return nil, err
	}
	r := &retrier{cfg: cfg.Retry}

	if err := createKeyspace(ctx, cfg, r, logger); err != nil {
		return nil, err
	}
	s, err := newSession(ctx, cfg, cfg.Keyspace, logger)
	if err != nil {
		return nil, err
	}
	defer s.Close()

	ddl := func(stmt string) error {
		return r.do(ctx, opMigrate, func(ctx context.Context) error {
			if err := s.Query(stmt).ExecContext(ctx); err != nil {
				return err
			}
			return s.AwaitSchemaAgreement(ctx)
		})
	}
	if err := ddl(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version    int PRIMARY KEY,
		name       text,
		checksum   text,
		applied_at timestamp
	) WITH comment = 'rtgraph applied CQL migrations'`); err != nil {
		return nil, fmt.Errorf("cassandra: migrate: create schema_migrations: %w", err)
	}

	done := map[int]struct{ name, checksum string }{}
	err = r.do(ctx, opMigrate, func(ctx context.Context) error {
		clear(done)
		iter := s.Query(`SELECT version, name, checksum FROM schema_migrations`).
			Consistency(gocql.ParseConsistency(cfg.Consistency.Read)).IterContext(ctx)
		var v int
		var name, sum string
		for iter.Scan(&v, &name, &sum) {
			done[v] = struct{ name, checksum string }{name, sum}
		}
		return iter.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("cassandra: migrate: read schema_migrations: %w", err)
	}

	// Refuse every changed file before applying anything.
	known := map[int]bool{}
	for _, m := range migs {
		known[m.version] = true
		if d, ok := done[m.version]; ok && d.checksum != m.checksum {
			return nil, fmt.Errorf("%w: %s was applied (as %s) with sha256 %s, the file now has sha256 %s; add a new migration instead of editing an applied one",
				ErrMigrationChanged, m.file, d.name, d.checksum, m.checksum)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(done)) {
		if !known[v] {
			// A newer binary applied it; an older one may still run.
			logger.Warn("cassandra migration applied but unknown to this binary",
				slog.Int("version", v), slog.String("file", done[v].name))
		}
	}

	for _, m := range migs {
		if _, ok := done[m.version]; ok {
			continue
		}
		for i, st := range m.stmts {
			if err := ddl(st.Text); err != nil {
				return applied, fmt.Errorf("cassandra: migration %s statement %d (line %d) %q: %w",
					m.file, i+1, st.Line, excerpt(st.Text), err)
			}
		}
		err := r.do(ctx, opMigrate, func(ctx context.Context) error {
			return s.Query(`INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`,
				m.version, m.file, m.checksum, time.Now()).ExecContext(ctx)
		})
		if err != nil {
			return applied, fmt.Errorf("cassandra: migration %s: record it: %w", m.file, err)
		}
		logger.Info("cassandra migration applied", slog.String("file", m.file), slog.Int("statements", len(m.stmts)))
		applied = append(applied, m.file)
	}
	return applied, nil
}

func createKeyspace(ctx context.Context, cfg Config, r *retrier, logger *slog.Logger) error {
	s, err := newSession(ctx, cfg, "", logger)
	if err != nil {
		return err
	}
	defer s.Close()
	stmt := "CREATE KEYSPACE IF NOT EXISTS " + cfg.Keyspace + " WITH replication = " + replicationMap(cfg.Replication)
	err = r.do(ctx, opMigrate, func(ctx context.Context) error {
		if err := s.Query(stmt).ExecContext(ctx); err != nil {
			return err
		}
		return s.AwaitSchemaAgreement(ctx)
	})
	if err != nil {
		return fmt.Errorf("cassandra: migrate: create keyspace %s: %w", cfg.Keyspace, err)
	}
	return nil
}

// replicationMap renders the CQL replication map. Validate has rejected
// datacenter names that could break out of the quotes.
func replicationMap(r ReplicationConfig) string {
	if r.Class == SimpleStrategy {
		return fmt.Sprintf("{'class': 'SimpleStrategy', 'replication_factor': %d}", r.ReplicationFactor)
	}
	var b strings.Builder
	b.WriteString("{'class': 'NetworkTopologyStrategy'")
	for _, dc := range slices.Sorted(maps.Keys(r.Datacenters)) {
		fmt.Fprintf(&b, ", '%s': %d", dc, r.Datacenters[dc])
	}
	b.WriteString("}")
	return b.String()
}

// readMigrations reads and splits every *.cql file at the root of fsys,
// sorted by version. Any other file there is an error, so a misnamed
// migration is never silently skipped.
func readMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("cassandra: read migrations: %w", err)
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := e.Name()
		sm := migrationNameRE.FindStringSubmatch(name)
		if sm == nil {
			return nil, fmt.Errorf("%w: %s: name must be NNNN_name.cql (4 digits, then [a-z0-9_])", ErrMigrationFile, name)
		}
		v, _ := strconv.Atoi(sm[1])
		if prev, ok := seen[v]; ok {
			return nil, fmt.Errorf("%w: %s: version %04d already used by %s", ErrMigrationFile, name, v, prev)
		}
		seen[v] = name
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("cassandra: read migration %s: %w", name, err)
		}
		stmts, err := splitCQL(string(data))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrMigrationFile, name, err)
		}
		if len(stmts) == 0 {
			return nil, fmt.Errorf("%w: %s: no statements", ErrMigrationFile, name)
		}
		sum := sha256.Sum256(data)
		out = append(out, migration{version: v, file: name, checksum: hex.EncodeToString(sum[:]), stmts: stmts})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

// excerpt is the start of a statement, on one line, for error messages.
func excerpt(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
