package enrich

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Defaults.
const (
	// DefaultCacheSize is the number of documents a cache holds when
	// CacheConfig.Size is 0. Size it to hold every live key of the topic:
	// see the package documentation for what an eviction costs.
	DefaultCacheSize = 100_000
	// DefaultMaxDocumentBytes bounds one document when
	// CacheConfig.MaxDocumentBytes is 0; Kafka's own default record limit
	// (message.max.bytes) is about the same.
	DefaultMaxDocumentBytes = 1 << 20
	// MaxCaches bounds the number of caches.
	MaxCaches = 64
)

// Config is the enrichment configuration: the caches and how they load.
type Config struct {
	// Caches to load from compacted topics. Default none.
	Caches []CacheConfig `yaml:"caches"`
	// IdleProbe is how long a partition that has not yet reached the high
	// watermark it had at start may stay without new records before the
	// feeder checks, with one direct fetch, whether all that remains below
	// the watermark is transaction markers or aborted records (which a
	// consumer never delivers). Default 1s.
	IdleProbe time.Duration `yaml:"idle_probe"`
}

// CacheConfig is one cache: a compacted topic of key → JSON document.
type CacheConfig struct {
	// Name is what mapping joins refer to (joins[].cache). Required,
	// [a-z][a-z0-9_]*.
	Name string `yaml:"name"`
	// Topic is the compacted topic that feeds the cache. Required.
	Topic string `yaml:"topic"`
	// Size is the most documents the cache holds; the least recently used
	// is evicted beyond it. Default DefaultCacheSize.
	Size int `yaml:"size"`
	// MaxDocumentBytes bounds one record value; a larger one is counted as
	// invalid and its key removed. Default DefaultMaxDocumentBytes.
	MaxDocumentBytes int `yaml:"max_document_bytes"`
}

// DefaultConfig returns the defaults: no caches, a 1s idle probe.
func DefaultConfig() Config {
	return Config{IdleProbe: time.Second}
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Validate reports every bad field, named enrich.<field>.
func (c Config) Validate() error {
	var errs []error
	if len(c.Caches) > MaxCaches {
		errs = append(errs, fmt.Errorf("enrich.caches: %d caches; at most %d", len(c.Caches), MaxCaches))
	}
	if c.IdleProbe <= 0 {
		errs = append(errs, errors.New("enrich.idle_probe: must be positive"))
	}
	names := map[string]int{}
	for i, cc := range c.Caches {
		f := fmt.Sprintf("enrich.caches[%d]", i)
		if !nameRE.MatchString(cc.Name) {
			errs = append(errs, fmt.Errorf("%s.name: %q must match [a-z][a-z0-9_]* and be at most 64 bytes", f, cc.Name))
		} else if j, ok := names[cc.Name]; ok {
			errs = append(errs, fmt.Errorf("%s.name: %q is also enrich.caches[%d].name", f, cc.Name, j))
		} else {
			names[cc.Name] = i
		}
		if cc.Topic == "" {
			errs = append(errs, fmt.Errorf("%s.topic: required", f))
		}
		if cc.Size < 0 {
			errs = append(errs, fmt.Errorf("%s.size: %d must not be negative", f, cc.Size))
		}
		if cc.MaxDocumentBytes < 0 {
			errs = append(errs, fmt.Errorf("%s.max_document_bytes: %d must not be negative", f, cc.MaxDocumentBytes))
		}
	}
	return errors.Join(errs...)
}

func (cc CacheConfig) size() int {
	if cc.Size == 0 {
		return DefaultCacheSize
	}
	return cc.Size
}

func (cc CacheConfig) maxDocumentBytes() int {
	if cc.MaxDocumentBytes == 0 {
		return DefaultMaxDocumentBytes
	}
	return cc.MaxDocumentBytes
}
