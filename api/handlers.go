package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/traverse"
)

// JSON shapes of responses. They are documented in openapi.yaml, and the
// handler tests validate real responses against it.

type nodeKeyJSON struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Properties are written as the canonical JSON the store keeps
// (graph.EncodeProps), passed through without a decode and re-encode when
// the store hands over its bytes.

type nodeJSON struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`
	Props     json.RawMessage `json:"props"`
	EventTime time.Time       `json:"event_time"`
}

type edgeJSON struct {
	Type      string          `json:"type"`
	From      nodeKeyJSON     `json:"from"`
	To        nodeKeyJSON     `json:"to"`
	Props     json.RawMessage `json:"props"`
	EventTime time.Time       `json:"event_time"`
	ExpiresAt *time.Time      `json:"expires_at,omitempty"`
	Hop       int             `json:"hop,omitempty"`
}

type nodeResponse struct {
	Node      nodeJSON  `json:"node"`
	Watermark Watermark `json:"watermark"`
}

type windowJSON struct {
	Since *time.Time `json:"since"`
	Until *time.Time `json:"until"`
}

type edgesResponse struct {
	Node       nodeKeyJSON `json:"node"`
	EdgeType   string      `json:"edge_type"`
	Direction  string      `json:"direction"`
	Order      string      `json:"order"`
	Window     windowJSON  `json:"window"`
	Edges      []edgeJSON  `json:"edges"`
	HasMore    bool        `json:"has_more"`
	NextCursor string      `json:"next_cursor,omitempty"`
	Watermark  Watermark   `json:"watermark"`
}

type traversalNodeJSON struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`
	Status    string          `json:"status"`
	Hop       int             `json:"hop"`
	Props     json.RawMessage `json:"props,omitempty"`
	EventTime *time.Time      `json:"event_time,omitempty"`
}

type hopJSON struct {
	Hop            int      `json:"hop"`
	Edges          int      `json:"edges"`
	NewNodes       int      `json:"new_nodes"`
	Skipped        bool     `json:"skipped"`
	Truncated      bool     `json:"truncated"`
	Reasons        []string `json:"reasons"`
	UnreadEdges    int      `json:"unread_edges"`
	UnreadExact    bool     `json:"unread_exact"`
	Cursor         string   `json:"cursor,omitempty"`
	CursorTooLarge bool     `json:"cursor_too_large,omitempty"`
}

type statsJSON struct {
	StoreReads int     `json:"store_reads"`
	DurationMS float64 `json:"duration_ms"`
}

type traversalResponse struct {
	Nodes      []traversalNodeJSON `json:"nodes"`
	Edges      []edgeJSON          `json:"edges"`
	Paths      [][]int             `json:"paths,omitempty"`
	Hops       []hopJSON           `json:"hops"`
	Truncated  bool                `json:"truncated"`
	NextCursor string              `json:"next_cursor,omitempty"`
	Watermark  Watermark           `json:"watermark"`
	Stats      statsJSON           `json:"stats"`
}

func keyJSON(k graph.NodeKey) nodeKeyJSON { return nodeKeyJSON{Type: k.Type, ID: k.ID} }

func toEdgeJSON(e graph.Edge, hop int) (edgeJSON, error) {
	props, err := e.PropsBytes()
	if err != nil {
		return edgeJSON{}, err
	}
	out := edgeJSON{Type: e.Key.Type, From: keyJSON(e.Key.From), To: keyJSON(e.Key.To), Props: props, EventTime: e.EventTime, Hop: hop}
	if !e.ExpiresAt.IsZero() {
		t := e.ExpiresAt
		out.ExpiresAt = &t
	}
	return out, nil
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *server) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// withBudget bounds r by d: store calls past it fail, and problemFor turns
// that into 504.
func withBudget(r *http.Request, d time.Duration) (*http.Request, context.CancelFunc) {
	ctx, cancel := context.WithTimeoutCause(r.Context(), d, errBudget)
	return r.WithContext(ctx), cancel
}

// nodeParam reads {type} and {id}. chi matches on the escaped path when the
// request had escapes (an id holding "/" must be sent as %2F), so the id is
// unescaped here.
func (s *server) nodeParam(r *http.Request) (graph.NodeKey, error) {
	if err := checkPathUTF8(r); err != nil {
		return graph.NodeKey{}, err
	}
	typ, id := chi.URLParam(r, "type"), chi.URLParam(r, "id")
	if r.URL.RawPath != "" {
		var err error
		if id, err = url.PathUnescape(id); err != nil {
			return graph.NodeKey{}, apiErr(kindInvalidParameter, "id", "not a valid path segment")
		}
	}
	if _, ok := s.schema.NodeType(typ); !ok {
		return graph.NodeKey{}, apiErr(kindUnknownType, "type", "unknown node type %q", typ)
	}
	if len(id) > graph.MaxIDLen {
		return graph.NodeKey{}, overCap("id", graph.MaxIDLen, "the id is %d bytes; the limit is %d", len(id), graph.MaxIDLen)
	}
	return graph.NodeKey{Type: typ, ID: id}, nil
}

// checkQueryParams refuses parameters the endpoint does not know,
// parameters given twice and parameters given without a value (but for
// cursor and fields, where an empty value is a value).
func checkQueryParams(q url.Values, allowed ...string) error {
	for name, vs := range q {
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !known {
			return apiErr(kindInvalidParameter, name, "unknown query parameter %q", name)
		}
		if len(vs) > 1 {
			return apiErr(kindInvalidParameter, name, "given %d times", len(vs))
		}
		if vs[0] == "" && name != "cursor" && name != "fields" {
			// A parameter given without a value is refused, not taken as
			// absent: "direction=" is neither out nor in.
			return apiErr(kindInvalidParameter, name, "given without a value")
		}
	}
	return nil
}

func (s *server) getNode(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.stage(r, stageTotal, time.Since(start)) }()
	k, err := s.nodeParam(r)
	var q url.Values
	if err == nil {
		q, err = parseQuery(r)
	}
	if err == nil {
		err = checkQueryParams(q)
	}
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	s.m.stage(r, stageValidation, time.Since(start))
	r, cancel := withBudget(r, s.cfg.DefaultTimeBudget)
	defer cancel()
	t := time.Now()
	var nodes map[graph.NodeKey]graph.Node
	if rr, ok := s.store.(graph.RawNodeReader); ok { // the properties are passed on as stored
		nodes, err = rr.GetNodesRaw(r.Context(), []graph.NodeKey{k})
	} else {
		nodes, err = s.store.GetNodes(r.Context(), []graph.NodeKey{k})
	}
	s.m.stage(r, stageStorage, time.Since(t))
	s.m.storeReads.WithLabelValues(routeOf(r)).Observe(1)
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	n, ok := nodes[k]
	if !ok {
		s.writeProblem(w, r, apiErr(kindNotFound, "", "node %s does not exist", k))
		return
	}
	props, err := n.PropsBytes()
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	wm, _ := watermarkFrom(r.Context())
	s.writeJSON(w, nodeResponse{
		Node:      nodeJSON{Type: k.Type, ID: k.ID, Props: props, EventTime: n.EventTime},
		Watermark: wm,
	})
}

// edgesQuery is GET .../edges parsed.
type edgesQuery struct {
	q            graph.AdjacencyQuery
	since, until *time.Time // as given
}

func (s *server) parseEdgesQuery(r *http.Request) (edgesQuery, error) {
	var eq edgesQuery
	k, err := s.nodeParam(r)
	if err != nil {
		return eq, err
	}
	v, err := parseQuery(r)
	if err != nil {
		return eq, err
	}
	if err := checkQueryParams(v, "edge_type", "direction", "limit", "cursor", "since", "until", "order"); err != nil {
		return eq, err
	}
	q := graph.AdjacencyQuery{Node: k, EdgeType: v.Get("edge_type"), Direction: graph.Out, Order: graph.OrderLatest}
	if q.EdgeType == "" {
		return eq, apiErr(kindInvalidParameter, "edge_type", "required")
	}
	if _, ok := s.schema.EdgeType(q.EdgeType); !ok {
		return eq, apiErr(kindUnknownType, "edge_type", "unknown edge type %q", q.EdgeType)
	}
	switch d := v.Get("direction"); {
	case d == "out" || !v.Has("direction"):
	case d == "in":
		q.Direction = graph.In
	default:
		return eq, apiErr(kindInvalidParameter, "direction", "%q is not one of out, in", d)
	}
	switch o := v.Get("order"); {
	case o == "latest" || !v.Has("order"):
	case o == "key":
		q.Order = graph.OrderKey
	default:
		return eq, apiErr(kindInvalidParameter, "order", "%q is not one of latest, key", o)
	}
	q.Limit = s.cfg.hopLimit([]string{q.EdgeType})
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return eq, apiErr(kindInvalidParameter, "limit", "%q is not a positive integer", l)
		}
		if n > s.cfg.MaxHopLimit {
			return eq, overCap("limit", int64(s.cfg.MaxHopLimit), "%d is over the server's limit of %d", n, s.cfg.MaxHopLimit)
		}
		q.Limit = n
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"since", &eq.since}, {"until", &eq.until}} {
		if raw := v.Get(p.name); raw != "" {
			t, err := parseTime(raw, p.name)
			if err != nil {
				return eq, err
			}
			*p.dst = &t
		}
	}
	if eq.since != nil {
		q.Since = *eq.since
	} else {
		q.Since = s.now().Add(-s.cfg.lookback(q.EdgeType)).Truncate(time.Microsecond)
	}
	if eq.until != nil {
		q.Until = *eq.until
	}
	eq.q = q
	if c := v.Get("cursor"); c != "" {
		payload, err := s.codec.open(cursorEdges, s.edgesFingerprint(eq), c)
		if err != nil {
			return eq, err
		}
		ec, err := decodeEdgesCursor(payload)
		if err != nil {
			return eq, err
		}
		q.Since, q.Until, q.Cursor = ec.since, ec.until, ec.store
	}
	if _, err := s.schema.CheckQuery(q); err != nil {
		return eq, err
	}
	eq.q = q
	return eq, nil
}

func (s *server) edgesFingerprint(eq edgesQuery) uint64 {
	q := eq.q
	return newFingerprint(cursorEdges).str(q.Node.Type).str(q.Node.ID).str(q.EdgeType).
		num(int64(q.Direction)).num(int64(q.Order)).optTime(eq.since).optTime(eq.until).sum()
}

func (s *server) getEdges(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.stage(r, stageTotal, time.Since(start)) }()
	eq, err := s.parseEdgesQuery(r)
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	s.m.stage(r, stageValidation, time.Since(start))
	r, cancel := withBudget(r, s.cfg.DefaultTimeBudget)
	defer cancel()
	t := time.Now()
	eq.q.RawProps = true // the properties are passed on as stored
	page, err := s.store.Adjacency(r.Context(), eq.q)
	s.m.stage(r, stageStorage, time.Since(t))
	s.m.storeReads.WithLabelValues(routeOf(r)).Observe(1)
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	wm, _ := watermarkFrom(r.Context())
	resp := edgesResponse{
		Node:      keyJSON(eq.q.Node),
		EdgeType:  eq.q.EdgeType,
		Direction: eq.q.Direction.String(),
		Order:     eq.q.Order.String(),
		Window:    windowJSON{Since: optTime(eq.q.Since), Until: optTime(eq.q.Until)},
		Edges:     []edgeJSON{}, // filled in by writeJSONEdges
		HasMore:   page.Next != nil,
		Watermark: wm,
	}
	edges := make([]edgeJSON, 0, len(page.Edges))
	for _, e := range page.Edges {
		ej, err := toEdgeJSON(e, 0)
		if err != nil {
			s.writeProblem(w, r, err)
			return
		}
		edges = append(edges, ej)
	}
	if page.Next != nil {
		resp.NextCursor = s.codec.seal(cursorEdges, s.edgesFingerprint(eq),
			edgesCursor{since: eq.q.Since, until: eq.q.Until, store: page.Next}.encode())
	}
	s.writeJSONEdges(w, r, resp, edges)
}

// checkNoQuery refuses any query string on a route that takes none, as the
// GET routes refuse parameters they do not know: a parameter the server
// ignores would look honoured to the client.
func checkNoQuery(r *http.Request) error {
	q, err := parseQuery(r)
	if err != nil {
		return err
	}
	return checkQueryParams(q)
}

// checkJSONBody refuses a body that does not declare itself JSON.
func checkJSONBody(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return apiErr(kindUnsupportedMedia, "", "send the body as application/json (got %q)", ct)
	}
	return nil
}

func (s *server) postTraversal(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.stage(r, stageTotal, time.Since(start)) }()
	if err := checkJSONBody(r); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	if err := checkNoQuery(r); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	p, err := parseTraversal(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), s.cfg, s.codec, s.now())
	if err == nil {
		err = s.engine.Validate(&p.req)
	}
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	s.m.stage(r, stageValidation, time.Since(start))
	// The budget counts from the request's arrival; running out truncates
	// the answer (200, reason time_budget) instead of failing it.
	p.req.Deadline = start.Add(p.budget)
	t := time.Now()
	res, err := s.engine.Run(r.Context(), p.req)
	s.m.stage(r, stageStorage, time.Since(t))
	if err != nil {
		var pe *traverse.PanicError
		if errors.As(err, &pe) {
			s.m.panics.Inc()
			s.log.Error("api panic recovered", "request_id", requestIDFrom(r.Context()), "route", routeOf(r), "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
		}
		s.writeProblem(w, r, err)
		return
	}
	s.m.storeReads.WithLabelValues(routeOf(r)).Observe(float64(res.StoreReads))
	wm, _ := watermarkFrom(r.Context())
	resp := traversalResponse{
		Nodes:     make([]traversalNodeJSON, 0, len(res.Nodes)),
		Edges:     []edgeJSON{}, // filled in by writeJSONEdges
		Paths:     res.Paths,
		Hops:      make([]hopJSON, 0, len(res.Hops)),
		Truncated: res.Truncated(),
		Watermark: wm,
	}
	for _, n := range res.Nodes {
		nj := traversalNodeJSON{Type: n.Key.Type, ID: n.Key.ID, Status: n.Status.String(), Hop: n.Hop}
		if n.Status == traverse.NodeFound {
			props, err := n.Node.PropsBytes()
			if err != nil {
				s.writeProblem(w, r, err)
				return
			}
			if string(props) != "{}" { // a node without properties lists none, as before
				nj.Props = props
			}
			et := n.Node.EventTime
			nj.EventTime = &et
		}
		resp.Nodes = append(resp.Nodes, nj)
	}
	edges := make([]edgeJSON, 0, len(res.Edges))
	for _, e := range res.Edges {
		ej, err := toEdgeJSON(e.Edge, e.Hop)
		if err != nil {
			s.writeProblem(w, r, err)
			return
		}
		edges = append(edges, ej)
	}
	// A cursor must fit in a request body, with room for the request, to
	// be of use.
	maxCursor := int(s.cfg.MaxBodyBytes) / 2
	for _, h := range res.Hops {
		hj := hopJSON{Hop: h.Hop, Edges: h.Edges, NewNodes: h.NewNodes, Skipped: h.Skipped, Truncated: h.Truncated(),
			Reasons: make([]string, 0, len(h.Reasons)), UnreadEdges: h.UnreadEdges, UnreadExact: h.UnreadExact}
		for _, reason := range h.Reasons {
			hj.Reasons = append(hj.Reasons, string(reason))
			s.m.truncations.WithLabelValues(string(reason)).Inc()
		}
		if h.Continue != nil {
			c := s.codec.seal(cursorTraversal, p.fp, traversalCursor{windows: p.windows, cont: *h.Continue}.encode(p.hops))
			if len(c) <= maxCursor {
				hj.Cursor = c
			} else {
				hj.CursorTooLarge = true
			}
		}
		if resp.NextCursor == "" && hj.Cursor != "" {
			resp.NextCursor = hj.Cursor
		}
		resp.Hops = append(resp.Hops, hj)
	}
	resp.Stats = statsJSON{StoreReads: res.StoreReads, DurationMS: float64(time.Since(start).Microseconds()) / 1000}
	s.writeJSONEdges(w, r, resp, edges)
}
