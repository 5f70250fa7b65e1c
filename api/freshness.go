package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"regexp"
	"time"
)

// Freshness tells how fresh the graph is. The API calls Watermark once per
// /v1 request, before reading the store, from many goroutines at once; it
// must be safe for concurrent use and fast (an in-memory read), and honour
// ctx. The watermark is the event time up to which ingestion is complete:
// every event at or before it is visible to reads. A zero time or an error
// means unknown, which the response says.
type Freshness interface {
	Watermark(ctx context.Context) (time.Time, error)
}

// HeaderWatermark carries the watermark on every /v1 response: an RFC 3339
// time, or "unknown".
const HeaderWatermark = "RTGraph-Watermark"

// Watermark is the freshness watermark as responses carry it.
type Watermark struct {
	// EventTime is null when unknown.
	EventTime *time.Time `json:"event_time"`
	Known     bool       `json:"known"`
}

func (w Watermark) header() string {
	if !w.Known {
		return "unknown"
	}
	return w.EventTime.UTC().Format(time.RFC3339Nano)
}

type watermarkKey struct{}

func watermarkFrom(ctx context.Context) (Watermark, bool) {
	w, ok := ctx.Value(watermarkKey{}).(Watermark)
	return w, ok
}

// stampWatermark reads the watermark before the handler reads the store (so
// that what the response holds is at least that fresh), sets the header, and
// keeps it for the body.
func (s *server) stampWatermark(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var wm Watermark
		if s.fresh != nil {
			t, err := s.fresh.Watermark(r.Context())
			if err == nil && !t.IsZero() {
				t = t.UTC()
				wm = Watermark{EventTime: &t, Known: true}
			}
		}
		w.Header().Set(HeaderWatermark, wm.header())
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), watermarkKey{}, wm)))
	})
}

// HeaderRequestID carries the request id, taken from the request when it
// is a sane token and made up otherwise.
const HeaderRequestID = "X-Request-Id"

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

type requestIDKey struct{}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !requestIDRE.MatchString(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set(HeaderRequestID, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}
