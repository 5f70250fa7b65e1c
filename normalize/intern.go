package normalize

import (
	"sync"
	"sync/atomic"
)

// maxInternedKeys bounds a keyInterner. Column and field names of a topic
// number in the tens or hundreds; a topic whose objects use data as keys
// fills the interner once and then simply stops being helped by it.
const maxInternedKeys = 1024

// keyInterner hands out one string per distinct object key, so that
// decoding a row does not allocate its column names again for every
// message. Reads are lock-free: the map is never changed once published;
// adding a key publishes a copy (copy-on-write), which happens only the
// first few times each key is seen.
type keyInterner struct {
	snap atomic.Pointer[map[string]string]
	mu   sync.Mutex // serialises writers
}

// key returns the interned string equal to b.
func (ki *keyInterner) key(b []byte) string {
	if ki == nil {
		return string(b)
	}
	m := ki.snap.Load()
	if m != nil {
		if s, ok := (*m)[string(b)]; ok {
			return s
		}
		if len(*m) >= maxInternedKeys {
			return string(b)
		}
	}
	s := string(b)
	ki.mu.Lock()
	defer ki.mu.Unlock()
	old := ki.snap.Load()
	if old != nil {
		if t, ok := (*old)[s]; ok {
			return t
		}
		if len(*old) >= maxInternedKeys {
			return s
		}
	}
	next := make(map[string]string, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[s] = s
	ki.snap.Store(&next)
	return s
}

func lenOf(m *map[string]string) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
