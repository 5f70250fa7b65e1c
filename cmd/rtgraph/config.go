package main

import (
	"errors"
	"fmt"
	"github.com/rtgraph/rtgraph/api"
	"net"
	"strings"
	"time"

	"github.com/rtgraph/rtgraph/enrich"
	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/cassandra"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/ingest"
	"github.com/rtgraph/rtgraph/internal/config"
	"github.com/rtgraph/rtgraph/internal/telemetry"
	"github.com/rtgraph/rtgraph/vertical"
)

// Config is the whole process configuration: one struct per package, each
// with its own defaults and Validate. See internal/config for the file and
// environment rules.
type Config struct {
	Log       telemetry.LogConfig `yaml:"log"`
	HTTP      HTTPConfig          `yaml:"http"`
	Store     StoreConfig         `yaml:"store"`
	Kafka     ingest.KafkaConfig  `yaml:"kafka"`
	Cassandra cassandra.Config    `yaml:"cassandra"`
	Embedded  embedded.Config     `yaml:"embedded"`
	Schemas   SchemasConfig       `yaml:"schemas"`
	Ingest    ingest.Config       `yaml:"ingest"`
	Enrich    enrich.Config       `yaml:"enrich"`
	Counts    graph.CountConfig   `yaml:"counts"`
	API       api.Config          `yaml:"api"`
	// ShutdownTimeout bounds the whole ordered shutdown. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	// vertical, when set (--vertical, or the demo's built-in one), gives
	// the graph schema and the mappings instead of Schemas; its topics and
	// caches are in Ingest.Topics and Enrich.Caches.
	vertical *vertical.Vertical
	// countsOff: the configuration lists no counted edge type
	// (counts.edge_types: []), or the vertical counts none and the
	// configuration names none, so frequency-cap counts are off
	// (/v1/counts answers 404).
	countsOff bool
}

// HTTPConfig is the HTTP server's listener and timeouts.
type HTTPConfig struct {
	// Addr to listen on. Default 127.0.0.1:8080.
	Addr              string        `yaml:"addr"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"` // default 5s
	ReadTimeout       time.Duration `yaml:"read_timeout"`        // default 30s
	WriteTimeout      time.Duration `yaml:"write_timeout"`       // default 30s
	IdleTimeout       time.Duration `yaml:"idle_timeout"`        // default 120s
	// TLS serves HTTPS when a certificate and key are set, for the API,
	// health and metrics alike.
	TLS api.TLSConfig `yaml:"tls"`
}

// SchemasConfig says where the declarative files come from. Empty means
// the built-in streaming vertical's (verticals/streaming/graph and
// mappings); a directory on disk lets a deployment bring its own without a
// new build. --vertical DIR takes both from a vertical folder instead.
type SchemasConfig struct {
	// GraphDir holds the typed graph schema (*.yaml). Default built in.
	GraphDir string `yaml:"graph_dir"`
	// MappingsDir holds the mapping rules (*.yaml). Default built in.
	MappingsDir string `yaml:"mappings_dir"`
}

// StoreConfig selects the graph store backend.
type StoreConfig struct {
	// Backend is embedded (Pebble, in-process) or cassandra. Default embedded.
	Backend string `yaml:"backend"`
}

func defaultConfig() *Config {
	return &Config{
		Log: telemetry.DefaultLogConfig(),
		HTTP: HTTPConfig{
			Addr:              "127.0.0.1:8080",
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			TLS:               api.DefaultTLSConfig(),
		},
		Store:           StoreConfig{Backend: "embedded"},
		Kafka:           ingest.DefaultKafkaConfig(),
		Cassandra:       cassandra.DefaultConfig(),
		Embedded:        defaultEmbedded(),
		Ingest:          ingest.DefaultConfig(),
		Enrich:          enrich.DefaultConfig(),
		Counts:          graph.DefaultCountConfig(),
		API:             api.DefaultConfig(),
		ShutdownTimeout: 30 * time.Second,
	}
}

// Validate checks every section and names each bad field.
func (c *Config) Validate() error {
	errs := []error{c.Log.Validate(), c.HTTP.validate(), c.Kafka.Validate(), c.Cassandra.Validate(), c.Embedded.Validate(), c.Enrich.Validate(), c.API.Validate()}
	if c.Counts.EdgeTypes != nil && len(c.Counts.EdgeTypes) == 0 {
		// `counts: {edge_types: []}`: a deployment that counts nothing.
		c.countsOff = true
	}
	if !c.countsOff {
		errs = append(errs, c.Counts.Validate())
	}
	// Without input topics the server runs without a pipeline (queries
	// only); `rtgraph ingest` insists on topics itself.
	if len(c.Ingest.Topics) > 0 {
		errs = append(errs, c.Ingest.Validate())
	}
	switch c.Store.Backend {
	case "embedded", "cassandra":
	default:
		errs = append(errs, fmt.Errorf("store.backend: %q is not one of embedded, cassandra", c.Store.Backend))
	}
	if min := c.API.MinWriteTimeout(); c.HTTP.WriteTimeout < min {
		errs = append(errs, fmt.Errorf("http.write_timeout: %s is shorter than api.max_time_budget plus a margin (%s): long traversals would be cut mid-answer", c.HTTP.WriteTimeout, min))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("shutdown_timeout: must be positive"))
	}
	return errors.Join(errs...)
}

func (h HTTPConfig) validate() error {
	errs := []error{h.TLS.Validate()}
	if _, _, err := net.SplitHostPort(h.Addr); err != nil {
		errs = append(errs, fmt.Errorf("http.addr: %w", err))
	}
	for name, d := range map[string]time.Duration{
		"read_header_timeout": h.ReadHeaderTimeout, "read_timeout": h.ReadTimeout,
		"write_timeout": h.WriteTimeout, "idle_timeout": h.IdleTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("http.%s: must be positive", name))
		}
	}
	return errors.Join(errs...)
}

// loadConfig reads the file (flag, else RTGRAPH_CONFIG, else none) and the
// environment, then validates.
func loadConfig(path string, environ []string) (*Config, error) {
	c := defaultConfig()
	if err := config.Load(configPath(path, environ), environ, c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return c, nil
}

// configPath is the configuration file: the flag's, else RTGRAPH_CONFIG's,
// else none.
func configPath(path string, environ []string) string {
	if path == "" {
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, "RTGRAPH_CONFIG="); ok {
				path = v
			}
		}
	}
	return path
}

// defaultEmbedded keeps the embedded store in ./data unless configured.
func defaultEmbedded() embedded.Config {
	c := embedded.DefaultConfig()
	c.Dir = "data"
	return c
}
