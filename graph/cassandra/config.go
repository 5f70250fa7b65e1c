package cassandra

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Config is how rtgraph reaches Cassandra and what it asks of it. It is the
// `cassandra:` section of the rtgraph configuration file; DefaultConfig holds
// every default.
type Config struct {
	// Hosts are the contact points (IP addresses preferred: Cassandra
	// announces peers by address). Default ["127.0.0.1"].
	Hosts []string `yaml:"hosts"`
	// Port is the CQL native port of every host. Default 9042.
	Port int `yaml:"port"`
	// Keyspace holds every rtgraph table; Migrate creates it. Default "rtgraph".
	Keyspace string `yaml:"keyspace"`
	// LocalDC, when set, keeps requests in that datacenter (DC-aware
	// round robin under token-aware routing) and is required for
	// LOCAL_* consistency to mean anything in a multi-DC cluster. Default "".
	LocalDC string `yaml:"local_dc"`

	Consistency ConsistencyConfig `yaml:"consistency"`

	// ConnectTimeout bounds dialing and connection setup. Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// Timeout bounds one request on the client side; it should exceed the
	// server's own request timeouts (2-10 s by default) so the server's
	// answer, not the client's impatience, decides. Default 12s.
	Timeout time.Duration `yaml:"timeout"`
	// SchemaAgreementTimeout bounds the wait for every node to agree on the
	// schema after each DDL statement of a migration. Default 60s.
	SchemaAgreementTimeout time.Duration `yaml:"schema_agreement_timeout"`
	// NumConns is the number of connections per host. Default 2.
	NumConns int `yaml:"num_conns"`
	// MaxConcurrentRequests bounds the requests a Store has in flight, all
	// calls together (and the goroutines of one call). Default 64.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`

	Retry RetryConfig `yaml:"retry"`
	TLS   TLSConfig   `yaml:"tls"`

	// Username enables PasswordAuthenticator when set. Default "".
	Username string `yaml:"username"`
	// Password for Username. Prefer PasswordFile. Never logged.
	Password string `yaml:"password" secret:"true"`
	// PasswordFile is a file holding the password (trailing newline ignored),
	// e.g. a mounted secret. Mutually exclusive with Password.
	PasswordFile string `yaml:"password_file"`

	Replication ReplicationConfig `yaml:"replication"`
}

// ConsistencyConfig names the consistency levels of reads and writes (any
// level the driver knows, e.g. ONE, LOCAL_ONE, QUORUM, LOCAL_QUORUM, ALL).
// Both default to LOCAL_QUORUM, which on one node is that node. Reads and
// writes at LOCAL_QUORUM overlap, so a read sees every acknowledged write.
type ConsistencyConfig struct {
	Read  string `yaml:"read"`
	Write string `yaml:"write"`
}

// RetryConfig is how a request that failed transiently (timeout,
// unavailable, overloaded, connection lost) is retried: exponential backoff
// with jitter from InitialBackoff to MaxBackoff, MaxAttempts attempts in all.
// After the last attempt the error is a *graph.RetryableError.
type RetryConfig struct {
	MaxAttempts    int           `yaml:"max_attempts"`    // default 5
	InitialBackoff time.Duration `yaml:"initial_backoff"` // default 100ms
	MaxBackoff     time.Duration `yaml:"max_backoff"`     // default 5s
}

// TLSConfig configures client TLS. CAFile verifies the servers (the system
// roots when empty); CertFile and KeyFile, together, present a client
// certificate. ServerName overrides the name verified in the server's
// certificate (the dialed host when empty).
type TLSConfig struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Replication strategies Migrate accepts for the keyspace.
const (
	SimpleStrategy          = "SimpleStrategy"
	NetworkTopologyStrategy = "NetworkTopologyStrategy"
)

// ReplicationConfig is the keyspace replication Migrate creates the keyspace
// with. It is not applied to an existing keyspace: changing replication is
// an operator's ALTER KEYSPACE followed by a repair.
type ReplicationConfig struct {
	// Class is SimpleStrategy (one datacenter, development) or
	// NetworkTopologyStrategy (production). Default SimpleStrategy.
	Class string `yaml:"class"`
	// ReplicationFactor is the SimpleStrategy factor. Default 1.
	ReplicationFactor int `yaml:"replication_factor"`
	// Datacenters maps datacenter name to replication factor for
	// NetworkTopologyStrategy.
	Datacenters map[string]int `yaml:"datacenters"`
}

// DefaultConfig returns the configuration for one local development node.
func DefaultConfig() Config {
	return Config{
		Hosts:    []string{"127.0.0.1"},
		Port:     9042,
		Keyspace: "rtgraph",
		Consistency: ConsistencyConfig{
			Read:  "LOCAL_QUORUM",
			Write: "LOCAL_QUORUM",
		},
		ConnectTimeout:         10 * time.Second,
		Timeout:                12 * time.Second,
		SchemaAgreementTimeout: 60 * time.Second,
		NumConns:               2,
		MaxConcurrentRequests:  64,
		Retry: RetryConfig{
			MaxAttempts:    5,
			InitialBackoff: 100 * time.Millisecond,
			MaxBackoff:     5 * time.Second,
		},
		Replication: ReplicationConfig{
			Class:             SimpleStrategy,
			ReplicationFactor: 1,
		},
	}
}

// ConfigError names one invalid configuration field.
type ConfigError struct {
	Field   string // yaml path below cassandra, e.g. "tls.ca_file"
	Problem string
}

func (e *ConfigError) Error() string { return "cassandra." + e.Field + ": " + e.Problem }

// Unwrap makes every ConfigError match ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// ErrInvalidConfig is wrapped by every *ConfigError.
var ErrInvalidConfig = errors.New("cassandra: invalid config")

// keyspaceRE is Cassandra's rule for unquoted keyspace names (48 characters
// at most); rtgraph never quotes it, so it must hold.
var keyspaceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_]{0,47}$`)

// Validate checks every field and returns all problems joined, each a
// *ConfigError naming its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if len(c.Hosts) == 0 {
		bad("hosts", "must list at least one host")
	}
	for i, h := range c.Hosts {
		if strings.TrimSpace(h) == "" {
			bad(fmt.Sprintf("hosts[%d]", i), "must not be empty")
		}
	}
	if c.Port < 1 || c.Port > 65535 {
		bad("port", "must be within 1..65535, got %d", c.Port)
	}
	if !keyspaceRE.MatchString(c.Keyspace) {
		bad("keyspace", "must be 1-48 letters, digits or underscores starting with a letter or digit, got %q", c.Keyspace)
	}
	if _, err := gocql.ParseConsistencyWrapper(c.Consistency.Read); err != nil {
		bad("consistency.read", "unknown consistency level %q", c.Consistency.Read)
	}
	if w, err := gocql.ParseConsistencyWrapper(c.Consistency.Write); err != nil {
		bad("consistency.write", "unknown consistency level %q", c.Consistency.Write)
	} else if w == gocql.Serial || w == gocql.LocalSerial {
		bad("consistency.write", "%s is only for lightweight transactions", c.Consistency.Write)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"connect_timeout", c.ConnectTimeout},
		{"timeout", c.Timeout},
		{"schema_agreement_timeout", c.SchemaAgreementTimeout},
		{"retry.initial_backoff", c.Retry.InitialBackoff},
		{"retry.max_backoff", c.Retry.MaxBackoff},
	} {
		if d.v <= 0 {
			bad(d.field, "must be positive, got %s", d.v)
		}
	}
	if c.Retry.MaxBackoff > 0 && c.Retry.InitialBackoff > c.Retry.MaxBackoff {
		bad("retry.initial_backoff", "must not exceed retry.max_backoff (%s)", c.Retry.MaxBackoff)
	}
	if c.Retry.MaxAttempts < 1 {
		bad("retry.max_attempts", "must be at least 1, got %d", c.Retry.MaxAttempts)
	}
	if c.NumConns < 1 || c.NumConns > 64 {
		bad("num_conns", "must be within 1..64, got %d", c.NumConns)
	}
	if c.MaxConcurrentRequests < 1 || c.MaxConcurrentRequests > 4096 {
		bad("max_concurrent_requests", "must be within 1..4096, got %d", c.MaxConcurrentRequests)
	}
	if c.TLS.Enabled {
		if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
			bad("tls.cert_file", "tls.cert_file and tls.key_file must be set together")
		}
		if c.TLS.InsecureSkipVerify && c.TLS.CAFile != "" {
			bad("tls.insecure_skip_verify", "contradicts tls.ca_file: verification would be skipped")
		}
	} else if c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.KeyFile != "" || c.TLS.ServerName != "" || c.TLS.InsecureSkipVerify {
		bad("tls.enabled", "is false but other tls fields are set")
	}
	if c.Password != "" && c.PasswordFile != "" {
		bad("password_file", "must not be set together with password")
	}
	if c.Username == "" && (c.Password != "" || c.PasswordFile != "") {
		bad("username", "must be set when a password is")
	}
	if c.Username != "" && c.Password == "" && c.PasswordFile == "" {
		bad("password", "must be set (or password_file) when username is")
	}
	switch c.Replication.Class {
	case SimpleStrategy:
		if c.Replication.ReplicationFactor < 1 {
			bad("replication.replication_factor", "must be at least 1, got %d", c.Replication.ReplicationFactor)
		}
		if len(c.Replication.Datacenters) > 0 {
			bad("replication.datacenters", "only applies to %s", NetworkTopologyStrategy)
		}
	case NetworkTopologyStrategy:
		if len(c.Replication.Datacenters) == 0 {
			bad("replication.datacenters", "must name at least one datacenter for %s", NetworkTopologyStrategy)
		}
		for dc, rf := range c.Replication.Datacenters {
			if dc == "" || strings.ContainsAny(dc, "'\\") {
				bad("replication.datacenters", "invalid datacenter name %q", dc)
			}
			if rf < 1 {
				bad("replication.datacenters."+dc, "replication factor must be at least 1, got %d", rf)
			}
		}
		if c.LocalDC != "" {
			if _, ok := c.Replication.Datacenters[c.LocalDC]; !ok {
				bad("local_dc", "%q has no replicas in replication.datacenters", c.LocalDC)
			}
		}
	default:
		bad("replication.class", "must be %s or %s, got %q", SimpleStrategy, NetworkTopologyStrategy, c.Replication.Class)
	}
	return errors.Join(errs...)
}

// password returns the configured secret, reading PasswordFile if set.
func (c Config) password() (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		// The path is not secret; the error from os never holds the content.
		return "", fmt.Errorf("cassandra: read password_file: %w", err)
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", &ConfigError{Field: "password_file", Problem: "file is empty"}
	}
	return p, nil
}

// LogValue renders the connection settings for logs, never the password.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("hosts", c.Hosts),
		slog.Int("port", c.Port),
		slog.String("keyspace", c.Keyspace),
		slog.String("local_dc", c.LocalDC),
		slog.String("read_consistency", c.Consistency.Read),
		slog.String("write_consistency", c.Consistency.Write),
		slog.Bool("tls", c.TLS.Enabled),
		slog.Bool("auth", c.Username != ""),
	)
}
