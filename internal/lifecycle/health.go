package lifecycle

import (
	"encoding/json"
	"net/http"
)

// LiveHandler answers 200 while the process runs: liveness says nothing
// about dependencies, so a slow Cassandra never gets the process restarted.
func LiveHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
}

// ReadyHandler answers 200 when r is ready and 503 with the missing
// conditions otherwise; either way with the details that are set (see
// Readiness.SetDetail) under "detail".
func ReadyHandler(r *Readiness) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ok, missing := r.Ready()
		w.Header().Set("Content-Type", "application/json")
		body := map[string]any{"status": "ready"}
		if !ok {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			body = map[string]any{"status": "not_ready", "waiting_for": missing}
		}
		if d := r.Details(); len(d) > 0 {
			body["detail"] = d
		}
		_ = json.NewEncoder(w).Encode(body)
	})
}
