package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Errors returned by Start and Close, besides ErrInvalidConfig.
var (
	// ErrListen: the address could not be listened on (in use, not local).
	ErrListen = errors.New("broker: listen")
	// ErrDirLocked: another process holds Config.Dir.
	ErrDirLocked = errors.New("broker: data directory in use by another process")
	// ErrPersist: kfake could not load or save its state in Config.Dir.
	ErrPersist = errors.New("broker: persist state")
)

// Broker is a running embedded broker. Its methods are safe for concurrent
// use.
type Broker struct {
	cluster *kfake.Cluster
	addrs   []string
	log     *slog.Logger
	klog    *kfakeLogger
	unlock  func() error

	closeOnce sync.Once
	closeErr  error
}

// Start listens on cfg.Addr, loads the state in cfg.Dir if there is any,
// and creates the configured topics that do not exist yet. ctx bounds
// nothing that blocks for long (kfake starts in-process); it is taken so
// that a cancelled start returns early. The caller must Close the broker,
// or run it as a stage with Run.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := &Broker{log: log, klog: &kfakeLogger{log: log}, unlock: func() error { return nil }}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.WithLogger(b.klog),
		kfake.DefaultNumPartitions(int(cfg.Partitions)),
		kfake.BrokerConfigs(map[string]string{
			"log.cleaner.backoff.ms": strconv.FormatInt(cfg.CompactionInterval.Milliseconds(), 10),
		}),
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("%w: create %s: %v", ErrPersist, cfg.Dir, err)
		}
		unlock, err := lockDir(filepath.Join(cfg.Dir, ".lock"))
		if err != nil {
			return nil, err
		}
		b.unlock = unlock
		opts = append(opts, kfake.DataDir(cfg.Dir))
	}

	// Listening here, not in kfake, gives a clear error for an address in
	// use and honours the configured host: kfake would listen on 127.0.0.1
	// whatever the address asked for.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		_ = b.unlock()
		return nil, fmt.Errorf("%w: %s: %v", ErrListen, cfg.Addr, err)
	}
	handed := false
	opts = append(opts, kfake.ListenFn(func(string, string) (net.Listener, error) {
		if handed {
			return nil, errors.New("broker: kfake asked for a second listener")
		}
		handed = true
		return ln, nil
	}))

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		_ = ln.Close()
		_ = b.unlock()
		return nil, fmt.Errorf("%w: start %s: %v", ErrPersist, cfg.Dir, err)
	}
	b.cluster = c
	b.addrs = c.ListenAddrs()

	created, err := b.ensureTopics(cfg)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	log.Info("kafka broker started", "addr", b.addrs[0], "dir", cfg.Dir, "topics_created", created)
	return b, nil
}

// ensureTopics creates every configured topic that does not exist. It
// returns how many it created.
func (b *Broker) ensureTopics(cfg Config) (int, error) {
	compact := map[string]string{"cleanup.policy": "compact"}
	created := 0
	create := func(topic string, configs map[string]string) error {
		err := b.cluster.CreateTopic(topic, cfg.Partitions, configs)
		switch {
		case err == nil:
			created++
			return nil
		case errors.Is(err, kerr.TopicAlreadyExists):
			return nil
		}
		return fmt.Errorf("broker: create topic %s: %w", topic, err)
	}
	for _, t := range cfg.Topics {
		if err := create(t, nil); err != nil {
			return created, err
		}
	}
	for _, t := range cfg.CompactedTopics {
		if err := create(t, compact); err != nil {
			return created, err
		}
	}
	return created, nil
}

// Addrs returns the bootstrap addresses clients connect to (one: the
// address the broker listens on, with the port it got).
func (b *Broker) Addrs() []string { return append([]string(nil), b.addrs...) }

// Close stops the broker: it stops accepting connections, saves its state
// to Config.Dir and releases the directory. Connected clients see their
// connections closed. Close is idempotent; an ErrPersist error means the
// state on disk may be older than what clients were acknowledged.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.klog.startClosing()
		b.cluster.Close()
		errs := []error{}
		for _, msg := range b.klog.closeErrors() {
			errs = append(errs, fmt.Errorf("%w: %s", ErrPersist, msg))
		}
		if err := b.unlock(); err != nil {
			errs = append(errs, fmt.Errorf("broker: unlock data directory: %w", err))
		}
		b.closeErr = errors.Join(errs...)
		b.log.Info("kafka broker stopped", "addr", b.addrs[0])
	})
	return b.closeErr
}

// Run is a lifecycle stage: it returns after ctx is cancelled, having
// closed the broker. Start the broker's stage before every stage that uses
// it, so that it stops after them (their last commits reach it).
func (b *Broker) Run(ctx context.Context) error {
	<-ctx.Done()
	return b.Close()
}

// kfakeLogger turns kfake's printf logging into slog events. kfake logs
// request-level detail at info and debug, which is noise for the demo, so
// only warnings and errors pass. Errors logged while closing are kept:
// they are how kfake reports a failure to save its state.
type kfakeLogger struct {
	log *slog.Logger

	mu        sync.Mutex
	closing   bool
	closeErrs []string
}

func (l *kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		msg := fmt.Sprintf(format, args...)
		l.mu.Lock()
		if l.closing {
			l.closeErrs = append(l.closeErrs, msg)
		}
		l.mu.Unlock()
		l.log.Error("kafka broker error", "detail", msg)
	case kfake.LogLevelWarn:
		l.log.Warn("kafka broker warning", "detail", fmt.Sprintf(format, args...))
	}
}

func (l *kfakeLogger) startClosing() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closing = true
}

func (l *kfakeLogger) closeErrors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.closeErrs...)
}
