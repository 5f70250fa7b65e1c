package broker

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config configures the embedded broker.
type Config struct {
	// Addr is the host:port to listen on; port 0 picks a free port. The
	// broker advertises the address it actually listens on. Default
	// 127.0.0.1:9092.
	Addr string
	// Dir is where the broker keeps its state (the demo uses
	// <data-dir>/kafka). Empty keeps everything in memory, lost on Close.
	Dir string
	// Topics are created, each with Partitions partitions, when missing.
	Topics []string
	// CompactedTopics are created like Topics, with cleanup.policy=compact
	// [cleanup.policy]. A name must not be in both lists.
	CompactedTopics []string
	// Partitions of each topic Start creates [num.partitions]. Default 3.
	Partitions int32
	// CompactionInterval is how often compacted topics are compacted
	// [log.cleaner.backoff.ms]. Default 1m.
	CompactionInterval time.Duration
	// SyncWrites fsyncs every record batch before acknowledging it
	// [log.flush.interval.messages=1]. Default false: like Kafka, batches are
	// synced on segment roll and on Close, so only a crash can lose the
	// newest of them.
	SyncWrites bool
}

// DefaultConfig returns the defaults: 127.0.0.1:9092, in memory, no topics.
func DefaultConfig() Config {
	return Config{Addr: "127.0.0.1:9092", Partitions: 3, CompactionInterval: time.Minute}
}

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("broker: invalid config")

// Validate reports every unacceptable field, each named broker.<field>.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: broker.%s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if host, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "%q is not host:port", c.Addr)
	} else if host == "" {
		// An empty host listens on every interface; the demo broker has no
		// authentication, so it must be asked for an address explicitly.
		bad("addr", "%q has no host (use 127.0.0.1)", c.Addr)
	}
	if c.Partitions < 1 {
		bad("partitions", "%d is not positive", c.Partitions)
	}
	if c.CompactionInterval <= 0 {
		bad("compaction_interval", "must be positive")
	}
	seen := map[string]bool{}
	for _, list := range []struct {
		field string
		names []string
	}{{"topics", c.Topics}, {"compacted_topics", c.CompactedTopics}} {
		for i, t := range list.names {
			switch {
			case t == "":
				bad(fmt.Sprintf("%s[%d]", list.field, i), "empty topic name")
			case seen[t]:
				bad(fmt.Sprintf("%s[%d]", list.field, i), "topic %q is listed twice", t)
			}
			seen[t] = true
		}
	}
	return errors.Join(errs...)
}
