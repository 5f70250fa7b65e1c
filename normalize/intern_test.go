package normalize

import (
	"strconv"
	"sync"
	"testing"
	"unsafe"
)

func TestKeyInterner(t *testing.T) {
	var ki keyInterner
	a := ki.key([]byte("customer_id"))
	b := ki.key([]byte("customer_id"))
	if a != "customer_id" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatal("the same key was not interned")
	}
	for i := 0; i < maxInternedKeys+10; i++ {
		if got := ki.key([]byte(strconv.Itoa(i))); got != strconv.Itoa(i) {
			t.Fatalf("key %d came back as %q", i, got)
		}
	}
	if n := len(*ki.snap.Load()); n != maxInternedKeys {
		t.Fatalf("interner holds %d keys, bound is %d", n, maxInternedKeys)
	}
	var nilInterner *keyInterner
	if nilInterner.key([]byte("x")) != "x" {
		t.Fatal("nil interner")
	}
}

// TestKeyInternerConcurrent: run with -race.
func TestKeyInternerConcurrent(t *testing.T) {
	var ki keyInterner
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				k := "k" + strconv.Itoa((i*7+g)%50)
				if got := ki.key([]byte(k)); got != k {
					t.Errorf("got %q, want %q", got, k)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if n := len(*ki.snap.Load()); n != 50 {
		t.Fatalf("interned %d keys, want 50", n)
	}
}
