package cassandra

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	if cfg.Consistency.Read != "LOCAL_QUORUM" || cfg.Consistency.Write != "LOCAL_QUORUM" {
		t.Fatalf("default consistency %+v, want LOCAL_QUORUM both", cfg.Consistency)
	}
}

func TestValidateNamesTheBadField(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"no hosts", func(c *Config) { c.Hosts = nil }, "hosts"},
		{"blank host", func(c *Config) { c.Hosts = []string{"a", " "} }, "hosts[1]"},
		{"port zero", func(c *Config) { c.Port = 0 }, "port"},
		{"port too big", func(c *Config) { c.Port = 70000 }, "port"},
		{"keyspace with dash", func(c *Config) { c.Keyspace = "rt-graph" }, "keyspace"},
		{"keyspace empty", func(c *Config) { c.Keyspace = "" }, "keyspace"},
		{"keyspace too long", func(c *Config) { c.Keyspace = strings.Repeat("k", 49) }, "keyspace"},
		{"read consistency", func(c *Config) { c.Consistency.Read = "MOST" }, "consistency.read"},
		{"write consistency", func(c *Config) { c.Consistency.Write = "" }, "consistency.write"},
		{"serial write", func(c *Config) { c.Consistency.Write = "SERIAL" }, "consistency.write"},
		{"timeout", func(c *Config) { c.Timeout = 0 }, "timeout"},
		{"connect timeout", func(c *Config) { c.ConnectTimeout = -time.Second }, "connect_timeout"},
		{"schema agreement", func(c *Config) { c.SchemaAgreementTimeout = 0 }, "schema_agreement_timeout"},
		{"num conns", func(c *Config) { c.NumConns = 0 }, "num_conns"},
		{"max concurrent", func(c *Config) { c.MaxConcurrentRequests = 0 }, "max_concurrent_requests"},
		{"attempts", func(c *Config) { c.Retry.MaxAttempts = 0 }, "retry.max_attempts"},
		{"backoff order", func(c *Config) { c.Retry.InitialBackoff = time.Minute }, "retry.initial_backoff"},
		{"max backoff", func(c *Config) { c.Retry.MaxBackoff = 0 }, "retry.max_backoff"},
		{"cert without key", func(c *Config) { c.TLS = TLSConfig{Enabled: true, CertFile: "c.pem"} }, "tls.cert_file"},
		{"insecure with ca", func(c *Config) { c.TLS = TLSConfig{Enabled: true, CAFile: "ca.pem", InsecureSkipVerify: true} }, "tls.insecure_skip_verify"},
		{"tls fields while disabled", func(c *Config) { c.TLS.CAFile = "ca.pem" }, "tls.enabled"},
		{"password and file", func(c *Config) { c.Username, c.Password, c.PasswordFile = "u", "p", "/f" }, "password_file"},
		{"password without user", func(c *Config) { c.Password = "p" }, "username"},
		{"user without password", func(c *Config) { c.Username = "u" }, "password"},
		{"unknown class", func(c *Config) { c.Replication.Class = "LocalStrategy" }, "replication.class"},
		{"simple rf", func(c *Config) { c.Replication.ReplicationFactor = 0 }, "replication.replication_factor"},
		{"simple with dcs", func(c *Config) { c.Replication.Datacenters = map[string]int{"dc1": 3} }, "replication.datacenters"},
		{"nts without dcs", func(c *Config) { c.Replication.Class = NetworkTopologyStrategy }, "replication.datacenters"},
		{"nts rf", func(c *Config) {
			c.Replication = ReplicationConfig{Class: NetworkTopologyStrategy, Datacenters: map[string]int{"dc1": 0}}
		}, "replication.datacenters.dc1"},
		{"nts quote in dc", func(c *Config) {
			c.Replication = ReplicationConfig{Class: NetworkTopologyStrategy, Datacenters: map[string]int{"dc'1": 3}}
		}, "replication.datacenters"},
		{"local dc without replicas", func(c *Config) {
			c.LocalDC = "dc2"
			c.Replication = ReplicationConfig{Class: NetworkTopologyStrategy, Datacenters: map[string]int{"dc1": 3}}
		}, "local_dc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.edit(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != c.field {
				t.Fatalf("error %v: want field %q", err, c.field)
			}
			if !strings.HasPrefix(err.Error(), "cassandra."+c.field+": ") {
				t.Fatalf("message %q does not start with cassandra.%s: ", err, c.field)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
hosts: [10.0.0.1, 10.0.0.2]
port: 9142
keyspace: graph
local_dc: dc1
consistency: {read: LOCAL_ONE, write: EACH_QUORUM}
timeout: 3s
retry: {max_attempts: 7, initial_backoff: 50ms, max_backoff: 2s}
tls: {enabled: true, ca_file: /etc/ca.pem, server_name: cassandra.internal}
username: rtgraph
password_file: /run/secrets/cassandra
replication: {class: NetworkTopologyStrategy, datacenters: {dc1: 3, dc2: 2}}
`
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if cfg.Timeout != 3*time.Second || cfg.Retry.MaxAttempts != 7 || cfg.Replication.Datacenters["dc2"] != 2 ||
		cfg.NumConns != 2 || cfg.TLS.ServerName != "cassandra.internal" {
		t.Fatalf("decoded %+v", cfg)
	}
	if got := replicationMap(cfg.Replication); got != "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}" {
		t.Fatalf("replication map %s", got)
	}
	if got := replicationMap(DefaultConfig().Replication); got != "{'class': 'SimpleStrategy', 'replication_factor': 1}" {
		t.Fatalf("replication map %s", got)
	}
}

func TestPasswordFromFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "pw")
	if err := os.WriteFile(good, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Username, cfg.PasswordFile = "u", good
	if pw, err := cfg.password(); err != nil || pw != "s3cret" {
		t.Fatalf("password() = %q, %v", pw, err)
	}
	cfg.PasswordFile = empty
	var ce *ConfigError
	if _, err := cfg.password(); !errors.As(err, &ce) || ce.Field != "password_file" {
		t.Fatalf("empty file: %v", err)
	}
	cfg.PasswordFile = filepath.Join(dir, "missing")
	if _, err := cfg.password(); err == nil || !strings.Contains(err.Error(), "password_file") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Username, cfg.Password = "rtgraph", "hunter2-very-secret"
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("open", slog.Any("cassandra", cfg))
	if strings.Contains(buf.String(), cfg.Password) {
		t.Fatalf("log line holds the password: %s", buf.String())
	}
	if !strings.Contains(buf.String(), `"auth":true`) {
		t.Fatalf("log line does not say auth is on: %s", buf.String())
	}
}

// writeCert writes a self-signed certificate and its key, PEM-encoded.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rtgraph test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	notPEM := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(notPEM, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	tc, err := tlsConfig(TLSConfig{Enabled: true, CAFile: cert, CertFile: cert, KeyFile: key, ServerName: "db"})
	if err != nil {
		t.Fatal(err)
	}
	if tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "db" || tc.InsecureSkipVerify {
		t.Fatalf("tls config %+v", tc)
	}
	bad := []struct {
		name  string
		c     TLSConfig
		field string
	}{
		{"missing ca", TLSConfig{Enabled: true, CAFile: filepath.Join(dir, "nope.pem")}, "tls.ca_file"},
		{"ca not pem", TLSConfig{Enabled: true, CAFile: notPEM}, "tls.ca_file"},
		{"key mismatch", TLSConfig{Enabled: true, CertFile: cert, KeyFile: notPEM}, "tls.cert_file"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := tlsConfig(b.c)
			if err == nil || !strings.Contains(err.Error(), b.field) {
				t.Fatalf("got %v, want an error naming %s", err, b.field)
			}
		})
	}
}
