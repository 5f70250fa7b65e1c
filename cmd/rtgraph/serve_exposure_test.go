package main

import (
	"strings"
	"testing"
)

// TestServeRefusesOpenAPIOffLoopback: without API keys, serve refuses a
// non-loopback http.addr before listening, naming the settings that fix
// it. 192.0.2.1 (TEST-NET-1) is not an address of this machine, so nothing
// can listen there whatever happens.
func TestServeRefusesOpenAPIOffLoopback(t *testing.T) {
	env := []string{"RTGRAPH_HTTP_ADDR=192.0.2.1:0", "RTGRAPH_EMBEDDED_DIR=" + t.TempDir(), "RTGRAPH_STORE_BACKEND=embedded"}
	code, _, stderr := runCmd([]string{"serve"}, env)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"api.keys", "http.addr", "api.allow_unauthenticated_non_loopback"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the error does not name %s:\n%s", want, stderr)
		}
	}
	// Allowed explicitly, serve goes on to listen (and fails there, as the
	// address is not this machine's).
	code, _, stderr = runCmd([]string{"serve"}, append(env, "RTGRAPH_API_ALLOW_UNAUTHENTICATED_NON_LOOPBACK=true"))
	if code != 1 || strings.Contains(stderr, "api.allow_unauthenticated_non_loopback") || !strings.Contains(stderr, "listen on http.addr") {
		t.Fatalf("allowed: exit %d, stderr:\n%s", code, stderr)
	}
}
