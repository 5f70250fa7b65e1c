package embedded

import "github.com/cockroachdb/pebble/v2"

// PebbleDB is the store's database, for tests that compare it with another
// database or wait for its background work; they must not write to it.
func PebbleDB(s *Store) *pebble.DB { return s.db }
