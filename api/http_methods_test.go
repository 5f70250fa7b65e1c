package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestMethodNotAllowedCarriesAllow: a 405 lists in Allow the methods the
// path serves, HEAD along with GET.
func TestMethodNotAllowedCarriesAllow(t *testing.T) {
	h := newHarness(t, nil, nil)
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodDelete, "/v1/nodes/user/alice", "GET, HEAD"},
		{http.MethodPost, "/v1/nodes/user/alice/edges", "GET, HEAD"},
		{http.MethodGet, "/v1/traversals", "POST"},
		{http.MethodHead, "/v1/traversals", "POST"},
		{http.MethodPost, "/v1/counts/user/alice", "GET, HEAD"},
		{http.MethodGet, "/v1/counts:batch", "POST"},
		{http.MethodPost, "/livez", "GET, HEAD"},
		{http.MethodPut, "/openapi.yaml", "GET, HEAD"},
	} {
		r := h.do(req{method: c.method, path: c.path, noValidate: true})
		if c.method == http.MethodHead {
			if r.StatusCode != 405 {
				t.Errorf("HEAD %s: %d, want 405", c.path, r.StatusCode)
			}
		} else {
			wantProblem(t, r, 405, "method-not-allowed", "")
		}
		if got := r.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
}

// TestHeadAnswersLikeGet: every GET route answers HEAD with the same
// status and headers and no body, through a real HTTP server.
func TestHeadAnswersLikeGet(t *testing.T) {
	h := newHarness(t, nil, nil)
	srv := httptest.NewServer(h.h)
	defer srv.Close()
	send := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		rq, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		rq.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := srv.Client().Do(rq)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	for _, path := range []string{
		"/v1/nodes/user/alice",
		"/v1/nodes/user/nobody",
		"/v1/nodes/user/hub/edges?edge_type=follows&limit=2",
		"/v1/nodes/user/hub/edges?edge_type=nope",
		"/livez", "/readyz", "/openapi.yaml",
	} {
		get, getBody := send(http.MethodGet, path)
		head, headBody := send(http.MethodHead, path)
		if head.StatusCode != get.StatusCode {
			t.Errorf("HEAD %s: status %d, GET %d", path, head.StatusCode, get.StatusCode)
		}
		if len(getBody) == 0 || len(headBody) != 0 {
			t.Errorf("%s: GET body %d bytes, HEAD body %d bytes", path, len(getBody), len(headBody))
		}
		for _, k := range []string{"Content-Type", "Content-Length", HeaderWatermark, "Cache-Control", "Retry-After"} {
			if head.Header.Get(k) != get.Header.Get(k) {
				t.Errorf("HEAD %s: %s %q, GET %q", path, k, head.Header.Get(k), get.Header.Get(k))
			}
		}
	}
}
