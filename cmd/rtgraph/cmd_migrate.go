package main

import (
	"context"
	"fmt"
	"io"

	"github.com/rtgraph/rtgraph/graph/cassandra"
	"github.com/rtgraph/rtgraph/internal/telemetry"
	"github.com/rtgraph/rtgraph/schemas"
)

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	fs, path := newFlags("migrate", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, environ)
	if err != nil {
		return err
	}
	log := telemetry.NewLogger(stderr, cfg.Log)
	applied, err := cassandra.Migrate(ctx, cfg.Cassandra, schemas.CQLMigrations(), log)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "keyspace %s is up to date\n", cfg.Cassandra.Keyspace)
		return nil
	}
	for _, name := range applied {
		fmt.Fprintf(stdout, "applied %s\n", name)
	}
	return nil
}
