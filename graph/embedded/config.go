package embedded

import (
	"errors"
	"fmt"
	"time"
)

// Config configures the embedded store. Defaults are in DefaultConfig.
type Config struct {
	// Dir is where the Pebble database lives. Required.
	Dir string `yaml:"dir"`
	// Sync makes Apply return only after the write-ahead log is fsynced.
	// Default true; false trades the last writes before a crash for speed.
	Sync bool `yaml:"sync"`
	// CacheBytes is the block cache size. Default 512 MiB: the writer reads
	// each record before it writes it, and with a cache smaller than the
	// working set of index, filter and data blocks each read is a system
	// call and a decompression (docs/bench-store-embedded.md). Pebble fills
	// it only as blocks are read.
	CacheBytes int64 `yaml:"cache_bytes"`
	// MemTableBytes is the size of one memtable. Default 32 MiB.
	MemTableBytes int64 `yaml:"memtable_bytes"`
	// MaxBatch is the most mutations one Apply may carry. Default 10000.
	MaxBatch int `yaml:"max_batch"`
	// MaxGetNodes is the most keys one GetNodes may ask for. Default 10000.
	MaxGetNodes int `yaml:"max_get_nodes"`
	// MaxPageLimit is the largest adjacency Limit accepted. Default 10000.
	MaxPageLimit int `yaml:"max_page_limit"`
	// MaxScan bounds the index entries one Adjacency call reads (expired or
	// out-of-window entries are read and skipped). When reached, the page
	// ends early with a cursor, so a call's cost stays bounded. Default 100000.
	MaxScan int `yaml:"max_scan"`
	// CommitEvery is how many index entries a node delete or the expiry
	// sweep may queue before committing them, bounding the memory of
	// deleting a supernode. Default 50000.
	CommitEvery int `yaml:"commit_every"`
	// SweepInterval is how often expired edges are removed from disk.
	// Expired edges are invisible from the moment they expire regardless.
	// Default 1m.
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

// DefaultConfig returns the defaults; Dir still has to be set.
func DefaultConfig() Config {
	return Config{
		Sync:          true,
		CacheBytes:    512 << 20,
		MemTableBytes: 32 << 20,
		MaxBatch:      10000,
		MaxGetNodes:   10000,
		MaxPageLimit:  10000,
		MaxScan:       100000,
		CommitEvery:   50000,
		SweepInterval: time.Minute,
	}
}

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("embedded: invalid config")

// Validate names the first field that is not acceptable.
func (c Config) Validate() error {
	bad := func(field, msg string) error { return fmt.Errorf("%w: embedded.%s: %s", ErrInvalidConfig, field, msg) }
	switch {
	case c.Dir == "":
		return bad("dir", "must not be empty")
	case c.CacheBytes < 0:
		return bad("cache_bytes", "must not be negative")
	case c.MemTableBytes < 1<<20 || c.MemTableBytes > 4<<30:
		return bad("memtable_bytes", "must be between 1 MiB and 4 GiB")
	case c.MaxBatch < 1:
		return bad("max_batch", "must be positive")
	case c.MaxGetNodes < 1:
		return bad("max_get_nodes", "must be positive")
	case c.MaxPageLimit < 1:
		return bad("max_page_limit", "must be positive")
	case c.MaxScan < c.MaxPageLimit:
		return bad("max_scan", "must be at least max_page_limit")
	case c.CommitEvery < 100:
		return bad("commit_every", "must be at least 100")
	case c.SweepInterval < time.Second:
		return bad("sweep_interval", "must be at least 1s")
	}
	return nil
}
