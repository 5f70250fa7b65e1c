package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/traverse"
)

// ProblemTypePrefix starts the type URI of every problem the API returns.
const ProblemTypePrefix = "urn:rtgraph:problem:"

// kind is one problem type of the API's closed vocabulary.
type kind struct {
	slug   string
	status int
	title  string
}

// The problem types. Each is documented in openapi.yaml under Problem.
var (
	kindMalformed        = kind{"malformed-request", http.StatusBadRequest, "Malformed request"}
	kindInvalidParameter = kind{"invalid-parameter", http.StatusBadRequest, "Invalid parameter"}
	kindUnknownType      = kind{"unknown-type", http.StatusBadRequest, "Unknown node or edge type"}
	kindInvalidQuery     = kind{"invalid-query", http.StatusBadRequest, "Query not possible on this graph"}
	kindInvalidCursor    = kind{"invalid-cursor", http.StatusBadRequest, "Invalid cursor"}
	kindUnauthenticated  = kind{"unauthenticated", http.StatusUnauthorized, "Missing or invalid API key"}
	kindForbidden        = kind{"forbidden", http.StatusForbidden, "API key lacks the scope"}
	kindNotFound         = kind{"not-found", http.StatusNotFound, "Not found"}
	kindMethodNotAllowed = kind{"method-not-allowed", http.StatusMethodNotAllowed, "Method not allowed"}
	kindBodyTooLarge     = kind{"body-too-large", http.StatusRequestEntityTooLarge, "Request body too large"}
	kindUnsupportedMedia = kind{"unsupported-media-type", http.StatusUnsupportedMediaType, "Unsupported media type"}
	kindOverCap          = kind{"over-cap", http.StatusUnprocessableEntity, "Over a server limit"}
	kindRateLimited      = kind{"rate-limited", http.StatusTooManyRequests, "Rate limit exceeded"}
	kindClientClosed     = kind{"client-closed-request", 499, "Client closed request"}
	kindInternal         = kind{"internal", http.StatusInternalServerError, "Internal error"}
	kindUnavailable      = kind{"unavailable", http.StatusServiceUnavailable, "Service unavailable"}
	kindNotImplemented   = kind{"not-implemented", http.StatusNotImplemented, "Not implemented here"}
	kindTimeout          = kind{"time-budget-exceeded", http.StatusGatewayTimeout, "Time budget exceeded"}
)

// Error is an error the API answers with a specific problem. Handlers
// return it for bad input; anything else goes through problemFor too.
type Error struct {
	kind   kind
	Field  string // the request field concerned, when one is
	Cap    int64  // the server limit exceeded, for over-cap
	Detail string
	// RetryAfter, in seconds, is sent as Retry-After when positive.
	RetryAfter int
}

func (e *Error) Error() string {
	s := "api: " + e.kind.slug
	if e.Field != "" {
		s += ": " + e.Field
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func apiErr(k kind, field, format string, args ...any) *Error {
	return &Error{kind: k, Field: field, Detail: fmt.Sprintf(format, args...)}
}

func overCap(field string, limit int64, format string, args ...any) *Error {
	e := apiErr(kindOverCap, field, format, args...)
	e.Cap = limit
	return e
}

// errBudget is the cause of a request context whose time budget ran out.
var errBudget = errors.New("api: time budget exceeded")

// Problem is an RFC 9457 problem details object, with rtgraph's extension
// members.
type Problem struct {
	Type      string     `json:"type"`
	Title     string     `json:"title"`
	Status    int        `json:"status"`
	Detail    string     `json:"detail,omitempty"`
	Instance  string     `json:"instance,omitempty"`
	RequestID string     `json:"request_id,omitempty"`
	Field     string     `json:"field,omitempty"`
	Cap       *int64     `json:"cap,omitempty"`
	Watermark *Watermark `json:"watermark,omitempty"`
}

// problemFor is the one place errors become problems: every status code the
// API answers with other than 2xx is chosen here. It returns the problem and
// the Retry-After seconds (0 for none).
func problemFor(ctx context.Context, err error) (Problem, int) {
	k, field, detail, retry := kindInternal, "", "", 0
	var cap *int64
	var ae *Error
	var re *traverse.RequestError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		k, field, detail, retry = ae.kind, ae.Field, ae.Detail, ae.RetryAfter
		if ae.kind == kindOverCap {
			c := ae.Cap
			cap = &c
		}
	case errors.As(err, &mbe):
		k, detail = kindBodyTooLarge, fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit)
		c := mbe.Limit
		cap = &c
	case errors.As(err, &re):
		k, field, detail = kindInvalidQuery, re.Field, re.Msg
		if errors.Is(err, traverse.ErrUnknownType) {
			k = kindUnknownType
		}
		if field == "cursor" {
			k = kindInvalidCursor
		}
	case errors.Is(err, graph.ErrInvalidCursor):
		k, field, detail = kindInvalidCursor, "cursor", "the store refused the cursor: it belongs to another query"
	case errors.Is(err, graph.ErrInvalidQuery):
		k, detail = kindInvalidQuery, queryDetail(err)
	case errors.Is(context.Cause(ctx), errBudget):
		// Checked before IsRetryable: a store call cut by our own budget
		// comes back as a retryable context error. A store that does not
		// answer in time is a transient condition too: Retry-After says when
		// to ask again.
		k, detail, retry = kindTimeout, "the request's time budget ran out before the store answered", 1
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		k, detail = kindClientClosed, "the client went away"
	case graph.IsRetryable(err), errors.Is(err, graph.ErrClosed):
		k, detail, retry = kindUnavailable, "the graph store is unavailable; retry later", 1
	}
	p := Problem{
		Type:      ProblemTypePrefix + k.slug,
		Title:     k.title,
		Status:    k.status,
		Detail:    detail,
		RequestID: requestIDFrom(ctx),
		Field:     field,
		Cap:       cap,
	}
	if wm, ok := watermarkFrom(ctx); ok {
		p.Watermark = &wm
	}
	return p, retry
}

// queryDetail keeps what follows "graph: invalid query: " in a store's
// error, which names the problem without the backend's call chain.
func queryDetail(err error) string {
	s := err.Error()
	if i := strings.Index(s, graph.ErrInvalidQuery.Error()); i >= 0 {
		s = strings.TrimPrefix(s[i+len(graph.ErrInvalidQuery.Error()):], ": ")
	}
	return s
}

// writeProblem answers r with the problem err maps to.
func (s *server) writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p, retry := problemFor(r.Context(), err)
	p.Instance = r.URL.Path
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retry))
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rtgraph"`)
	}
	s.m.problems.WithLabelValues(strings.TrimPrefix(p.Type, ProblemTypePrefix)).Inc()
	if p.Status >= 500 && p.Status != kindClientClosed.status {
		s.log.Warn("api request failed", "request_id", p.RequestID, "status", p.Status, "problem", p.Type, "err", err.Error())
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
