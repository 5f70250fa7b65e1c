package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/rtgraph/rtgraph/internal/produce"
)

// cmdProduce: rtgraph produce --topic T --file F [--brokers a,b]
// [--max-message-bytes N] [--create-partitions N [--replication-factor R]
// [--topic-config k=v,...]].
func cmdProduce(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	fs, path := newFlags("produce", stderr)
	topic := fs.String("topic", "", "topic to publish to (required)")
	file := fs.String("file", "", "file of events: JSON Lines, a JSON array, or {\"key\":…,\"value\":…} records (required)")
	format := fs.String("format", "auto", "file format: auto, records ({\"key\",\"value\"} per line), values (JSON Lines or a JSON array), lines")
	maxBytes := fs.Int("max-message-bytes", produce.MaxLineBytes, "largest record to send [max.request.size]; a larger one fails the command before anything is sent")
	partitions := fs.Int("create-partitions", 0, "create the topic with this many partitions when it does not exist (0: do not create)")
	rf := fs.Int("replication-factor", 0, "replication factor of a created topic (0: the broker's default)")
	var brokers, topicConfig listFlag
	fs.Var(&brokers, "brokers", "Kafka brokers (default kafka.brokers from the configuration)")
	fs.Var(&topicConfig, "topic-config", "configs of a created topic, k=v,k2=v2 (e.g. max.message.bytes=4194304,cleanup.policy=compact)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *topic == "" || *file == "" {
		return fmt.Errorf("%w: --topic and --file are required", errUsage)
	}
	if *maxBytes < 1 {
		return fmt.Errorf("%w: --max-message-bytes must be positive", errUsage)
	}
	opts := produce.Options{Format: produce.Format(*format), MaxMessageBytes: *maxBytes}
	switch {
	case *partitions < 0 || *partitions > 1<<20:
		return fmt.Errorf("%w: --create-partitions must be between 0 and %d", errUsage, 1<<20)
	case *rf < 0 || *rf > 1<<14:
		return fmt.Errorf("%w: --replication-factor must be between 0 and %d", errUsage, 1<<14)
	case *partitions == 0 && (len(topicConfig) > 0 || *rf > 0):
		return fmt.Errorf("%w: --topic-config and --replication-factor need --create-partitions", errUsage)
	case *partitions > 0:
		spec := &produce.TopicSpec{Partitions: int32(*partitions), ReplicationFactor: int16(*rf), Configs: map[string]string{}}
		for _, kv := range topicConfig {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("%w: --topic-config %q is not k=v", errUsage, kv)
			}
			spec.Configs[k] = v
		}
		opts.Create = spec
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
	n, err := produce.FileWith(ctx, cfg.Kafka, *topic, *file, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %d events to %s\n", n, *topic)
	return nil
}
