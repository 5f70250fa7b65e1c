package api

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/traverse"
)

// Scopes an API key may hold. Admin implies the others.
const (
	ScopeGraphRead  = "graph:read"
	ScopeCountsRead = "counts:read"
	ScopeAdmin      = "admin"
)

var knownScopes = []string{ScopeGraphRead, ScopeCountsRead, ScopeAdmin}

// Config is the query API's configuration: the "api" section of the rtgraph
// configuration file, RTGRAPH_API_<FIELD> in the environment. Lists of keys
// can only come from the file.
type Config struct {
	// DefaultHopLimit is the edges a hop (and an edges page) returns when
	// the request names no limit. Default 300.
	DefaultHopLimit int `yaml:"default_hop_limit"`
	// DefaultLookback is how far back in event time a hop or an edges page
	// reads when the request names no since. Default 2400h (100 days).
	DefaultLookback time.Duration `yaml:"default_lookback"`
	// EdgeTypes overrides the two defaults above per edge type (file only).
	// When a hop follows several edge types its default limit is the
	// smallest of theirs; each edge type keeps its own lookback.
	EdgeTypes map[string]EdgeTypeDefaults `yaml:"edge_types"`
	// MaxHops caps the hops of a traversal. Default and ceiling 4.
	MaxHops int `yaml:"max_hops"`
	// MaxHopLimit caps a hop's limit and an edges page's limit. Default 5000.
	MaxHopLimit int `yaml:"max_hop_limit"`
	// DefaultMaxResults is a traversal's max_results when the request names
	// none. Default 1000.
	DefaultMaxResults int `yaml:"default_max_results"`
	// MaxResults caps the edges one traversal returns. Default 10000.
	MaxResults int `yaml:"max_results"`
	// MaxStartNodes caps a traversal's start nodes. Default 100.
	MaxStartNodes int `yaml:"max_start_nodes"`
	// SupernodeCap is the most edges a hop reads from one node per edge type
	// and direction, matching or not; a node with more is cut there and the
	// hop reports supernode_cap. Default 5000.
	SupernodeCap int `yaml:"supernode_cap"`
	// ReadConcurrency is the most store calls one request has in flight.
	// Default 8.
	ReadConcurrency int `yaml:"read_concurrency"`
	// MaxInFlight is the most requests served at once; more get 503.
	// Default 256.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxBodyBytes caps a request body; larger bodies get 413. Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// DefaultTimeBudget bounds a request that names no time_budget_ms.
	// Default 1s.
	DefaultTimeBudget time.Duration `yaml:"default_time_budget"`
	// MaxTimeBudget caps time_budget_ms. Default 10s. The HTTP server's
	// write timeout must be longer (see MinWriteTimeout).
	MaxTimeBudget time.Duration `yaml:"max_time_budget"`
	// CursorSecret signs cursors (HMAC-SHA256); at least 32 bytes. Every
	// replica behind one load balancer needs the same. When neither it nor
	// CursorSecretFile is set, a random secret is made at start-up: cursors
	// then work only against the process that issued them, until it stops.
	CursorSecret     string `yaml:"cursor_secret" secret:"true"`
	CursorSecretFile string `yaml:"cursor_secret_file"`
	// Keys are the API keys (file only).
	Keys []Key `yaml:"keys"`
	// AuthRequired makes every /v1 request present a valid key. Default
	// true. With false, requests without a key are served as anonymous with
	// graph:read and counts:read, and a key that is presented is still
	// checked. When no key is configured at all the API is open whatever
	// this says, and New logs a warning.
	AuthRequired bool `yaml:"auth_required"`
	// RateLimit limits graph:read requests (nodes, edges, traversals) per
	// key, and per client address for anonymous requests. Default 50 per
	// second, burst 100: a traversal can read thousands of edges.
	RateLimit RateLimit `yaml:"rate_limit"`
	// CountsRateLimit limits counts:read requests (/v1/counts) per key, and
	// per client address for anonymous requests. A count read is one small
	// store read and an ad server makes one per ad request, so the default
	// is far higher: 5000 per second, burst 10000.
	CountsRateLimit RateLimit `yaml:"counts_rate_limit"`
	// AuthFailureLimit limits, per client address, requests whose key is
	// missing (when one is required) or wrong: past it an address is
	// answered 429 without its key being checked, whatever it sends, so
	// keys cannot be guessed at speed. Default 1 per second, burst 10.
	AuthFailureLimit RateLimit `yaml:"auth_failure_limit"`
	// RateLimitClients bounds each rate-limit table (graph reads, count
	// reads, failed authentications): past it the least recently seen
	// client is forgotten. Default 65536 (a few MiB per table).
	RateLimitClients int `yaml:"rate_limit_clients"`
	// TrustedProxies are the addresses or CIDR prefixes of reverse proxies
	// whose X-Forwarded-For is believed: for a connection from one of them,
	// the client address (for rate limits and failed authentications) is
	// the rightmost X-Forwarded-For entry that is not itself a trusted
	// proxy. Default none: the header is ignored, as any client can set it.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// AllowUnauthenticatedNonLoopback lets `rtgraph serve` run the API
	// without keys on an address other than loopback. Default false: an
	// open API reachable from the network is refused at start-up.
	AllowUnauthenticatedNonLoopback bool `yaml:"allow_unauthenticated_non_loopback"`
	// Metrics serves GET /metrics. Default true.
	Metrics bool `yaml:"metrics"`
	// MetricsRequireKey makes /metrics require a key with the admin scope.
	// Default false.
	MetricsRequireKey bool `yaml:"metrics_require_key"`
	// MaxAsOfSkew is how far past the server's clock a counts request's
	// as_of may be; later is a 422. Counts of the future are not known yet,
	// and a cap judged on them would allow what is not allowed; the skew
	// forgives a client clock slightly ahead. Default 5s, at most 1m.
	MaxAsOfSkew time.Duration `yaml:"max_as_of_skew"`
}

// EdgeTypeDefaults are one edge type's defaults; zero fields fall back to
// the API-wide ones.
type EdgeTypeDefaults struct {
	HopLimit int           `yaml:"hop_limit"`
	Lookback time.Duration `yaml:"lookback"`
}

// Key is one API key. Exactly one of Key and KeyFile is set; a key is at
// least 16 bytes.
type Key struct {
	Name    string   `yaml:"name"`
	Key     string   `yaml:"key" secret:"true"`
	KeyFile string   `yaml:"key_file"`
	Scopes  []string `yaml:"scopes"`
}

// RateLimit is a token bucket per client: Burst requests at once, refilled
// at RequestsPerSecond. RequestsPerSecond 0 turns limiting off. Limits are
// per process: behind a load balancer over N replicas a client gets up to N
// times as much.
type RateLimit struct {
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	Burst             int     `yaml:"burst"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		DefaultHopLimit:   300,
		DefaultLookback:   2400 * time.Hour,
		MaxHops:           traverse.MaxHops,
		MaxHopLimit:       5000,
		DefaultMaxResults: 1000,
		MaxResults:        10000,
		MaxStartNodes:     100,
		SupernodeCap:      5000,
		ReadConcurrency:   8,
		MaxInFlight:       256,
		MaxBodyBytes:      1 << 20,
		DefaultTimeBudget: time.Second,
		MaxTimeBudget:     10 * time.Second,
		AuthRequired:      true,
		RateLimit:         RateLimit{RequestsPerSecond: 50, Burst: 100},
		CountsRateLimit:   RateLimit{RequestsPerSecond: 5000, Burst: 10000},
		AuthFailureLimit:  RateLimit{RequestsPerSecond: 1, Burst: 10},
		RateLimitClients:  65536,
		Metrics:           true,
		MaxAsOfSkew:       5 * time.Second,
	}
}

// MinWriteTimeout is the shortest HTTP server write timeout that lets a
// request use its whole time budget and still write its answer.
func (c Config) MinWriteTimeout() time.Duration { return c.MaxTimeBudget + 5*time.Second }

// maxPageLimit is the largest adjacency page every backend accepts
// (graph/embedded and graph/cassandra both refuse more than 10000); an edges
// page is one store call, so max_hop_limit may not exceed it.
const maxPageLimit = 10000

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("api: invalid config")

var keyNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate checks every field and names each bad one as api.<field>.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: api.%s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	positive := func(field string, v int) {
		if v <= 0 {
			bad(field, "must be positive")
		}
	}
	positive("default_hop_limit", c.DefaultHopLimit)
	positive("max_hop_limit", c.MaxHopLimit)
	positive("default_max_results", c.DefaultMaxResults)
	positive("max_results", c.MaxResults)
	positive("max_start_nodes", c.MaxStartNodes)
	positive("supernode_cap", c.SupernodeCap)
	positive("read_concurrency", c.ReadConcurrency)
	positive("max_in_flight", c.MaxInFlight)
	if c.MaxHopLimit > maxPageLimit {
		bad("max_hop_limit", "at most %d, the largest page the stores serve", maxPageLimit)
	}
	if c.DefaultHopLimit > c.MaxHopLimit {
		bad("default_hop_limit", "%d is above max_hop_limit %d", c.DefaultHopLimit, c.MaxHopLimit)
	}
	if c.DefaultMaxResults > c.MaxResults {
		bad("default_max_results", "%d is above max_results %d", c.DefaultMaxResults, c.MaxResults)
	}
	if c.MaxStartNodes > traverse.MaxStartNodes {
		bad("max_start_nodes", "at most %d", traverse.MaxStartNodes)
	}
	if c.MaxHops < 1 || c.MaxHops > traverse.MaxHops {
		bad("max_hops", "must be between 1 and %d", traverse.MaxHops)
	}
	if c.DefaultLookback <= 0 {
		bad("default_lookback", "must be positive")
	}
	if c.MaxBodyBytes < 1024 {
		bad("max_body_bytes", "must be at least 1024")
	}
	if c.DefaultTimeBudget <= 0 {
		bad("default_time_budget", "must be positive")
	}
	if c.MaxTimeBudget < c.DefaultTimeBudget {
		bad("max_time_budget", "must be at least default_time_budget")
	}
	if c.MaxAsOfSkew < 0 || c.MaxAsOfSkew > time.Minute {
		bad("max_as_of_skew", "must be between 0 and 1m")
	}
	for _, name := range sortedNames(c.EdgeTypes) {
		d := c.EdgeTypes[name]
		if d.HopLimit < 0 || d.HopLimit > c.MaxHopLimit {
			bad("edge_types."+name+".hop_limit", "must be between 0 (use the default) and max_hop_limit %d", c.MaxHopLimit)
		}
		if d.Lookback < 0 {
			bad("edge_types."+name+".lookback", "must not be negative")
		}
	}
	if c.CursorSecret != "" && c.CursorSecretFile != "" {
		bad("cursor_secret", "set cursor_secret or cursor_secret_file, not both")
	}
	if c.CursorSecret != "" && len(c.CursorSecret) < 32 {
		bad("cursor_secret", "must be at least 32 bytes")
	}
	names := map[string]bool{}
	for i, k := range c.Keys {
		f := fmt.Sprintf("keys[%d]", i)
		if !keyNameRE.MatchString(k.Name) {
			bad(f+".name", "must match %s", keyNameRE)
		} else if names[k.Name] {
			bad(f+".name", "%q is used twice", k.Name)
		}
		names[k.Name] = true
		switch {
		case k.Key != "" && k.KeyFile != "":
			bad(f+".key", "set key or key_file, not both")
		case k.Key == "" && k.KeyFile == "":
			bad(f+".key", "set key or key_file")
		case k.Key != "" && len(k.Key) < 16:
			bad(f+".key", "must be at least 16 bytes")
		}
		if len(k.Scopes) == 0 {
			bad(f+".scopes", "must name at least one of %v", knownScopes)
		}
		for _, s := range k.Scopes {
			if !slices.Contains(knownScopes, s) {
				bad(f+".scopes", "unknown scope %q (known: %v)", s, knownScopes)
			}
		}
	}
	for _, l := range []struct {
		field string
		rl    RateLimit
	}{{"rate_limit", c.RateLimit}, {"counts_rate_limit", c.CountsRateLimit}, {"auth_failure_limit", c.AuthFailureLimit}} {
		if l.rl.RequestsPerSecond < 0 || math.IsNaN(l.rl.RequestsPerSecond) || math.IsInf(l.rl.RequestsPerSecond, 0) {
			bad(l.field+".requests_per_second", "must be a finite number, not negative")
		}
		if l.rl.RequestsPerSecond > 0 && l.rl.Burst < 1 {
			bad(l.field+".burst", "must be positive when rate limiting is on")
		}
	}
	positive("rate_limit_clients", c.RateLimitClients)
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		bad("trusted_proxies", "%v", err)
	}
	return errors.Join(errs...)
}

// checkSchema checks what Validate cannot: that per-edge-type defaults name
// edge types the schema declares.
func (c Config) checkSchema(s *graph.Schema) error {
	var errs []error
	for _, name := range sortedNames(c.EdgeTypes) {
		if _, ok := s.EdgeType(name); !ok {
			errs = append(errs, fmt.Errorf("%w: api.edge_types.%s: not an edge type of the graph schema", ErrInvalidConfig, name))
		}
	}
	return errors.Join(errs...)
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// hopLimit is the default limit for a hop over edgeTypes.
func (c Config) hopLimit(edgeTypes []string) int {
	limit := 0
	for _, et := range edgeTypes {
		l := c.DefaultHopLimit
		if d := c.EdgeTypes[et].HopLimit; d > 0 {
			l = d
		}
		if limit == 0 || l < limit {
			limit = l
		}
	}
	if limit == 0 {
		return c.DefaultHopLimit
	}
	return limit
}

func (c Config) lookback(edgeType string) time.Duration {
	if d := c.EdgeTypes[edgeType].Lookback; d > 0 {
		return d
	}
	return c.DefaultLookback
}

// readSecret reads a secret file, dropping one trailing newline.
func readSecret(path, field string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: api.%s: %w", ErrInvalidConfig, field, err)
	}
	return string(bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))), nil
}

// CheckListen refuses to serve an API without keys on addr unless addr is
// a loopback address or AllowUnauthenticatedNonLoopback says so: an open
// API reachable from the network answers anyone with every scope. addr is
// host:port; an empty host or an unspecified address (0.0.0.0, ::) listens
// on every interface, and a name other than localhost may resolve to any.
func (c Config) CheckListen(addr string) error {
	if len(c.Keys) > 0 || c.AllowUnauthenticatedNonLoopback || isLoopback(addr) {
		return nil
	}
	return fmt.Errorf("%w: api.keys: none configured, so the API would serve anyone with every scope on http.addr %s, which is not a loopback address; configure api.keys, listen on 127.0.0.1, or set api.allow_unauthenticated_non_loopback: true", ErrInvalidConfig, addr)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// parsePrefixes reads CIDR prefixes and single addresses (a /32 or /128).
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range list {
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR prefix", v)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
