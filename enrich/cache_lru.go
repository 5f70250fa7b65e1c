package enrich

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Cache is one metadata cache: key → decoded JSON document, bounded by a
// least-recently-used policy. Safe for concurrent use: one feeder goroutine
// per partition writes, every pipeline worker reads.
//
// The documents it returns are shared and must not be modified.
type Cache struct {
	name     string
	topic    string
	maxBytes int
	lru      *lru.Cache[string, map[string]any]
	log      *slog.Logger

	evictions atomic.Uint64
	stats     cacheStats
}

func newCache(cc CacheConfig, m *Metrics, log *slog.Logger) (*Cache, error) {
	l, err := lru.New[string, map[string]any](cc.size())
	if err != nil {
		return nil, fmt.Errorf("enrich: cache %s: %w", cc.Name, err)
	}
	c := &Cache{name: cc.Name, topic: cc.Topic, maxBytes: cc.maxDocumentBytes(), lru: l, log: log}
	if c.stats, err = m.cache(cc.Name, func() float64 { return float64(c.lru.Len()) }); err != nil {
		return nil, err
	}
	return c, nil
}

// Name returns the cache's name.
func (c *Cache) Name() string { return c.name }

// Get returns the document under key. A miss is authoritative only while
// Evictions is zero: once the cache has evicted, a missing key may exist on
// the topic, and the miss is counted as miss_after_eviction.
func (c *Cache) Get(key string) (map[string]any, bool) {
	doc, ok := c.lru.Get(key)
	switch {
	case ok:
		c.stats.hit.Inc()
	case c.evictions.Load() > 0:
		c.stats.missEvicted.Inc()
	default:
		c.stats.miss.Inc()
	}
	return doc, ok
}

// Len returns the number of documents held.
func (c *Cache) Len() int { return c.lru.Len() }

// Evictions returns how many documents the size limit has pushed out.
func (c *Cache) Evictions() uint64 { return c.evictions.Load() }

// Put stores doc under key, replacing what was there.
func (c *Cache) Put(key string, doc map[string]any) {
	if c.lru.Add(key, doc) {
		if c.evictions.Add(1) == 1 {
			c.log.Warn("enrich cache evicting: lookups of evicted keys now miss although the topic has them; raise the cache size",
				"cache", c.name, "topic", c.topic, "size", c.lru.Len())
		}
		c.stats.evictions.Inc()
	}
}

// Delete removes key.
func (c *Cache) Delete(key string) { c.lru.Remove(key) }

// Apply applies one record of the cache's topic: a tombstone (nil or empty
// value) deletes the key; a JSON object is decoded once and stored. A value
// that is not a JSON object, or is larger than the configured limit, removes
// the key (the topic's latest value for it is unusable, and keeping an older
// one would make the cache disagree with the topic) and returns an error
// wrapping ErrNotObject, ErrInvalidJSON or ErrTooLarge. A record without a
// key returns ErrNoKey.
func (c *Cache) Apply(key, value []byte) error {
	k, ok := RecordKey(key)
	if !ok {
		c.stats.invalid.Inc()
		return ErrNoKey
	}
	if len(value) == 0 {
		c.Delete(k)
		c.stats.deletes.Inc()
		return nil
	}
	doc, err := DecodeDocument(value, c.maxBytes)
	if err != nil {
		c.Delete(k)
		c.stats.invalid.Inc()
		return fmt.Errorf("key %q: %w", k, err)
	}
	c.Put(k, doc)
	c.stats.upserts.Inc()
	return nil
}

// ErrNoKey is returned by Apply for a record without a key: a compacted
// topic keeps nothing useful under no key.
var ErrNoKey = errors.New("enrich: record has no key")

type cacheStats struct {
	hit, miss, missEvicted    prometheus.Counter
	upserts, deletes, invalid prometheus.Counter
	evictions                 prometheus.Counter
	loaded                    prometheus.Gauge
}
