package mapping

// Lookup is the enrichment side of the mapping: the metadata caches that
// joins read. enrich.Enricher implements it; tests use a map.
//
// Load calls Has once per join, so that a join naming a cache that is not
// configured fails at start-up. Map calls Get from every pipeline worker at
// once, so Get must be safe for concurrent use and must not block on I/O:
// it answers from memory. A document returned by Get is shared and must not
// be modified; Map only reads it.
type Lookup interface {
	// Has reports whether a cache called name is configured.
	Has(cache string) bool
	// Get returns the document stored under key in cache, and false when
	// there is none (a miss).
	Get(cache, key string) (doc map[string]any, ok bool)
}

// MapLookup is a Lookup over fixed documents: cache name → key → document.
// It is for tests and for tools that map recorded events offline.
type MapLookup map[string]map[string]map[string]any

// Has implements Lookup.
func (m MapLookup) Has(cache string) bool { _, ok := m[cache]; return ok }

// Get implements Lookup.
func (m MapLookup) Get(cache, key string) (map[string]any, bool) {
	d, ok := m[cache][key]
	return d, ok
}
