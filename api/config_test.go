package api

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph/storetest"
	"github.com/rtgraph/rtgraph/internal/config"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.DefaultHopLimit != 300 || c.DefaultLookback != 100*24*time.Hour || c.MaxHops != 4 || !c.AuthRequired || !c.Metrics {
		t.Fatalf("defaults = %+v", c)
	}
	if c.MinWriteTimeout() <= c.MaxTimeBudget {
		t.Fatal("write timeout must exceed the largest budget")
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		field string
		mod   func(*Config)
	}{
		{"api.default_hop_limit", func(c *Config) { c.DefaultHopLimit = 0 }},
		{"api.default_hop_limit", func(c *Config) { c.DefaultHopLimit = c.MaxHopLimit + 1 }},
		{"api.max_hop_limit", func(c *Config) { c.MaxHopLimit = -1 }},
		{"api.max_hop_limit", func(c *Config) { c.MaxHopLimit = 20000 }},
		{"api.default_max_results", func(c *Config) { c.DefaultMaxResults = c.MaxResults + 1 }},
		{"api.max_results", func(c *Config) { c.MaxResults = 0 }},
		{"api.max_start_nodes", func(c *Config) { c.MaxStartNodes = 5000 }},
		{"api.supernode_cap", func(c *Config) { c.SupernodeCap = 0 }},
		{"api.read_concurrency", func(c *Config) { c.ReadConcurrency = 0 }},
		{"api.max_in_flight", func(c *Config) { c.MaxInFlight = 0 }},
		{"api.max_hops", func(c *Config) { c.MaxHops = 5 }},
		{"api.max_hops", func(c *Config) { c.MaxHops = 0 }},
		{"api.default_lookback", func(c *Config) { c.DefaultLookback = 0 }},
		{"api.max_body_bytes", func(c *Config) { c.MaxBodyBytes = 10 }},
		{"api.default_time_budget", func(c *Config) { c.DefaultTimeBudget = 0 }},
		{"api.max_time_budget", func(c *Config) { c.MaxTimeBudget = time.Millisecond }},
		{"api.edge_types.follows.hop_limit", func(c *Config) { c.EdgeTypes = map[string]EdgeTypeDefaults{"follows": {HopLimit: 1 << 20}} }},
		{"api.edge_types.follows.lookback", func(c *Config) { c.EdgeTypes = map[string]EdgeTypeDefaults{"follows": {Lookback: -1}} }},
		{"api.cursor_secret", func(c *Config) { c.CursorSecret = "short" }},
		{"api.cursor_secret", func(c *Config) { c.CursorSecret, c.CursorSecretFile = strings.Repeat("s", 32), "/x" }},
		{"api.keys[0].name", func(c *Config) { c.Keys = []Key{{Name: "bad name", Key: testKey, Scopes: []string{ScopeAdmin}}} }},
		{"api.keys[1].name", func(c *Config) {
			c.Keys = []Key{{Name: "a", Key: testKey, Scopes: []string{ScopeAdmin}}, {Name: "a", Key: testKey + "x", Scopes: []string{ScopeAdmin}}}
		}},
		{"api.keys[0].key", func(c *Config) { c.Keys = []Key{{Name: "a", Scopes: []string{ScopeAdmin}}} }},
		{"api.keys[0].key", func(c *Config) { c.Keys = []Key{{Name: "a", Key: "short", Scopes: []string{ScopeAdmin}}} }},
		{"api.keys[0].key", func(c *Config) {
			c.Keys = []Key{{Name: "a", Key: testKey, KeyFile: "/k", Scopes: []string{ScopeAdmin}}}
		}},
		{"api.keys[0].scopes", func(c *Config) { c.Keys = []Key{{Name: "a", Key: testKey}} }},
		{"api.keys[0].scopes", func(c *Config) { c.Keys = []Key{{Name: "a", Key: testKey, Scopes: []string{"graph:write"}}} }},
		{"api.rate_limit.requests_per_second", func(c *Config) { c.RateLimit.RequestsPerSecond = -1 }},
		{"api.rate_limit.burst", func(c *Config) { c.RateLimit.Burst = 0 }},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			cfg := DefaultConfig()
			c.mod(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.field+":") {
				t.Fatalf("err = %v, want one naming %s", err, c.field)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	store := openEmbedded(t, nil)
	base := func() Options {
		return Options{Config: testConfig(), Store: store, Schema: storetest.Schema(), Readiness: lifecycle.NewReadiness()}
	}
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("tiny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Options{Config: testConfig(), Store: store, Schema: storetest.Schema(), Readiness: lifecycle.NewReadiness(), Registry: reg, Gatherer: reg}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"invalid config", func(o *Options) { o.Config.MaxHops = 9 }, "api.max_hops"},
		{"nil store", func(o *Options) { o.Store = nil }, "nil Store"},
		{"nil schema", func(o *Options) { o.Schema = nil }, "nil Schema"},
		{"nil readiness", func(o *Options) { o.Readiness = nil }, "nil Readiness"},
		{"unknown edge type default", func(o *Options) { o.Config.EdgeTypes = map[string]EdgeTypeDefaults{"knows": {HopLimit: 5}} }, "api.edge_types.knows"},
		{"registry without gatherer", func(o *Options) { o.Registry = prometheus.NewRegistry() }, "Gatherer"},
		{"metrics registered twice", func(o *Options) { o.Registry, o.Gatherer = reg, reg }, "register metrics"},
		{"missing secret file", func(o *Options) { o.Config.CursorSecret, o.Config.CursorSecretFile = "", filepath.Join(dir, "none") }, "api.cursor_secret_file"},
		{"short secret file", func(o *Options) { o.Config.CursorSecret, o.Config.CursorSecretFile = "", short }, "at least 32 bytes"},
		{"missing key file", func(o *Options) {
			o.Config.Keys = []Key{{Name: "k", KeyFile: filepath.Join(dir, "none"), Scopes: []string{ScopeAdmin}}}
		}, "api.keys[0].key_file"},
		{"short key file", func(o *Options) { o.Config.Keys = []Key{{Name: "k", KeyFile: short, Scopes: []string{ScopeAdmin}}} }, "at least 16 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := base()
			c.mod(&o)
			if _, err := New(o); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestGeneratedCursorSecretIsLogged(t *testing.T) {
	logs := &syncBuffer{}
	o := Options{Config: testConfig(), Store: openEmbedded(t, nil), Schema: storetest.Schema(), Readiness: lifecycle.NewReadiness(),
		Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	o.Config.CursorSecret = ""
	if _, err := New(o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"msg":"api cursor secret generated"`) {
		t.Fatalf("logs: %s", logs)
	}
}

// TestConfigFromFileAndEnv loads the section the way rtgraph does: a YAML
// file, then RTGRAPH_API_* variables.
func TestConfigFromFileAndEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rtgraph.yaml")
	yml := `api:
  default_hop_limit: 100
  edge_types:
    follows: {hop_limit: 50, lookback: 720h}
  keys:
    - {name: svc, key: svc-key-0123456789abcdef, scopes: [graph:read]}
  rate_limit: {requests_per_second: 10, burst: 20}
`
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	var root struct {
		API Config `yaml:"api"`
	}
	root.API = DefaultConfig()
	env := []string{"RTGRAPH_API_MAX_RESULTS=500", "RTGRAPH_API_DEFAULT_MAX_RESULTS=200", "RTGRAPH_API_AUTH_REQUIRED=false", "RTGRAPH_API_MAX_TIME_BUDGET=3s", "RTGRAPH_API_CURSOR_SECRET=" + strings.Repeat("e", 32)}
	if err := config.Load(file, env, &root); err != nil {
		t.Fatalf("load: %v", err)
	}
	c := root.API
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.DefaultHopLimit != 100 || c.EdgeTypes["follows"].HopLimit != 50 || c.EdgeTypes["follows"].Lookback != 720*time.Hour ||
		len(c.Keys) != 1 || c.RateLimit.Burst != 20 || c.MaxResults != 500 || c.AuthRequired || c.MaxTimeBudget != 3*time.Second {
		t.Fatalf("loaded %+v", c)
	}
	if c.hopLimit([]string{"follows", "likes"}) != 50 || c.hopLimit([]string{"likes"}) != 100 || c.lookback("likes") != c.DefaultLookback {
		t.Fatal("per-edge-type defaults")
	}
	var printed strings.Builder
	if err := config.Print(&printed, &root); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(printed.String(), "svc-key-0123456789abcdef") || strings.Contains(printed.String(), strings.Repeat("e", 32)) {
		t.Fatalf("a secret was printed:\n%s", printed.String())
	}
}
