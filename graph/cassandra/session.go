package cassandra

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// NewSession validates cfg and connects to the cluster with cfg.Keyspace as
// the session keyspace (run Migrate first: the keyspace must exist). Requests
// are routed token-aware, to a replica of the partition, falling back to
// round robin over the hosts of LocalDC when it is set, or of all hosts. The
// session's default consistency is cfg.Consistency.Write; the Store sets the
// read level on each read. The driver does not retry by itself: the Store
// retries with backoff and counts it. ctx bounds the connection attempt. The
// caller closes the session, after closing every Store that uses it.
func NewSession(ctx context.Context, cfg Config, logger *slog.Logger) (*gocql.Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newSession(ctx, cfg, cfg.Keyspace, logger)
}

// newSession connects with keyspace as the session keyspace ("" for none,
// which Migrate needs to create the keyspace).
func newSession(ctx context.Context, cfg Config, keyspace string, logger *slog.Logger) (*gocql.Session, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cluster := gocql.NewCluster(cfg.Hosts...)
	cluster.Port = cfg.Port
	cluster.Keyspace = keyspace
	cluster.ConnectTimeout = cfg.ConnectTimeout
	cluster.Timeout = cfg.Timeout
	cluster.WriteTimeout = cfg.Timeout
	cluster.MaxWaitSchemaAgreement = cfg.SchemaAgreementTimeout
	cluster.NumConns = cfg.NumConns
	// Validate has checked both levels.
	cluster.Consistency = gocql.ParseConsistency(cfg.Consistency.Write)
	// Native protocol v5 (Cassandra 4.0 and later): the Store sets
	// now_in_seconds on writes of expiring cells (see keyExpiry), which
	// older protocols cannot carry. Asking for it outright makes an older
	// cluster fail here, plainly, rather than at the first such write.
	cluster.ProtoVersion = 5
	// Every rtgraph statement is idempotent (writes carry their own
	// timestamp), so the default lets speculative retries and the driver's
	// own reconnects resend them.
	cluster.DefaultIdempotence = true
	// The Store retries with backoff itself, so it can count retries and
	// return *graph.RetryableError when they are exhausted; a driver-level
	// retry would multiply attempts.
	cluster.RetryPolicy = nil
	// Row timestamps always come from the mutation (USING TIMESTAMP); the
	// client-side default timestamp only applies to statements without one
	// (DDL, migrations bookkeeping).
	cluster.DefaultTimestamp = true
	fallback := gocql.RoundRobinHostPolicy()
	if cfg.LocalDC != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(cfg.LocalDC)
	}
	cluster.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(fallback)
	cluster.Logger = slogAdapter{logger.With(slog.String("component", "gocql"))}

	if cfg.TLS.Enabled {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		cluster.SslOpts = &gocql.SslOptions{Config: tc, EnableHostVerification: !cfg.TLS.InsecureSkipVerify}
	}
	if cfg.Username != "" {
		pw, err := cfg.password()
		if err != nil {
			return nil, err
		}
		cluster.Authenticator = gocql.PasswordAuthenticator{Username: cfg.Username, Password: pw}
	}

	// CreateSession takes no context; run it aside so ctx can abandon the
	// wait, and close the session if it arrives after that.
	type result struct {
		s   *gocql.Session
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := cluster.CreateSession()
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("cassandra: connect to %v port %d: %w", cfg.Hosts, cfg.Port, r.err)
		}
		logger.Info("cassandra session open", slog.Any("cassandra", cfg))
		return r.s, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.s != nil {
				r.s.Close()
			}
		}()
		return nil, fmt.Errorf("cassandra: connect to %v port %d: %w", cfg.Hosts, cfg.Port, ctx.Err())
	}
}

func tlsConfig(c TLSConfig) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // opt-in, documented as for tests only
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cassandra: tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{Field: "tls.ca_file", Problem: "holds no PEM certificate"}
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cassandra: tls.cert_file/tls.key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// slogAdapter sends the driver's log lines to slog. The driver never logs
// credentials; its fields are host addresses, errors and counts.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) attrs(fields []gocql.LogField) []any {
	out := make([]any, 0, len(fields))
	for _, f := range fields {
		out = append(out, slog.Any(f.Name, f.Value.Any()))
	}
	return out
}

func (a slogAdapter) Error(msg string, fields ...gocql.LogField) { a.l.Error(msg, a.attrs(fields)...) }
func (a slogAdapter) Warning(msg string, fields ...gocql.LogField) {
	a.l.Warn(msg, a.attrs(fields)...)
}
func (a slogAdapter) Info(msg string, fields ...gocql.LogField)  { a.l.Info(msg, a.attrs(fields)...) }
func (a slogAdapter) Debug(msg string, fields ...gocql.LogField) { a.l.Debug(msg, a.attrs(fields)...) }
