package main

import (
	"context"
	"fmt"
	"io"

	"github.com/rtgraph/rtgraph/internal/produce"
)

// cmdProduce: rtgraph produce --topic T --file F [--brokers a,b].
func cmdProduce(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	fs, path := newFlags("produce", stderr)
	topic := fs.String("topic", "", "topic to publish to (required)")
	file := fs.String("file", "", "file of JSON events: JSON Lines, a JSON array, or {\"key\":…,\"value\":…} records (required)")
	format := fs.String("format", "auto", "file format: auto, records ({\"key\",\"value\"} per line), values (JSON Lines or a JSON array), lines")
	var brokers listFlag
	fs.Var(&brokers, "brokers", "Kafka brokers (default kafka.brokers from the configuration)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *topic == "" || *file == "" {
		return fmt.Errorf("%w: --topic and --file are required", errUsage)
	}
	cfg, err := loadConfig(*path, environ)
	if err != nil {
		return err
	}
	if len(brokers) > 0 {
		cfg.Kafka.Brokers = brokers
		if err := cfg.Kafka.Validate(); err != nil {
			return fmt.Errorf("%w: --brokers: %v", errUsage, err)
		}
	}
	n, err := produce.FileWith(ctx, cfg.Kafka, *topic, *file, produce.Options{Format: produce.Format(*format)})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %d events to %s\n", n, *topic)
	return nil
}
