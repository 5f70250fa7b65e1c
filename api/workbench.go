package api

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rtgraph/rtgraph/graph"
)

// The routes that describe the graph rather than walk it: the schema, a
// type's listing and a node's degree.

const (
	// defaultListLimit and maxListLimit bound GET /v1/nodes/{type}.
	defaultListLimit = 100
	maxListLimit     = 5000
	// degreePage is the adjacency page a degree count reads at a time.
	degreePage = 5000
	// maxFieldsLen bounds the fields parameter of a listing.
	maxFieldsLen = 4096
)

type nodeTypeJSON struct {
	Name     string            `json:"name"`
	Props    map[string]string `json:"props"`
	Implicit bool              `json:"implicit"`
}

type edgeTypeJSON struct {
	Name         string            `json:"name"`
	From         []string          `json:"from"`
	To           []string          `json:"to"`
	Props        map[string]string `json:"props"`
	TTLSeconds   int64             `json:"ttl_seconds,omitempty"`
	Multiplicity string            `json:"multiplicity"`
	Reverse      bool              `json:"reverse"`
}

type schemaResponse struct {
	NodeTypes []nodeTypeJSON `json:"node_types"`
	EdgeTypes []edgeTypeJSON `json:"edge_types"`
	Watermark Watermark      `json:"watermark"`
}

type nodesResponse struct {
	Type       string     `json:"type"`
	Nodes      []nodeJSON `json:"nodes"`
	HasMore    bool       `json:"has_more"`
	NextCursor string     `json:"next_cursor,omitempty"`
	Watermark  Watermark  `json:"watermark"`
}

type degreeJSON struct {
	EdgeType  string `json:"edge_type"`
	Direction string `json:"direction"`
	Count     int64  `json:"count"`
}

type degreeResponse struct {
	Node      nodeKeyJSON  `json:"node"`
	Window    *windowJSON  `json:"window,omitempty"`
	Degrees   []degreeJSON `json:"degrees"`
	Watermark Watermark    `json:"watermark"`
	Stats     statsJSON    `json:"stats"`
}

func propTypesJSON(props map[string]graph.PropType) map[string]string {
	out := make(map[string]string, len(props))
	for name, t := range props {
		out[name] = t.String()
	}
	return out
}

func (s *server) getSchema(w http.ResponseWriter, r *http.Request) {
	if err := checkNoQuery(r); err != nil {
		s.writeProblem(w, r, err)
		return
	}
	resp := schemaResponse{NodeTypes: []nodeTypeJSON{}, EdgeTypes: []edgeTypeJSON{}}
	for _, name := range s.schema.NodeTypes() {
		nt, _ := s.schema.NodeType(name)
		resp.NodeTypes = append(resp.NodeTypes, nodeTypeJSON{Name: name, Props: propTypesJSON(nt.Props), Implicit: nt.Implicit})
	}
	for _, name := range s.schema.EdgeTypes() {
		et, _ := s.schema.EdgeType(name)
		m := string(et.Multiplicity)
		if m == "" {
			m = string(graph.MultiplicitySimple)
		}
		resp.EdgeTypes = append(resp.EdgeTypes, edgeTypeJSON{
			Name: name, From: slices.Clone(et.From), To: slices.Clone(et.To), Props: propTypesJSON(et.Props),
			TTLSeconds: int64(et.TTL / time.Second), Multiplicity: m, Reverse: et.Reverse,
		})
	}
	resp.Watermark, _ = watermarkFrom(r.Context())
	s.writeJSON(w, resp)
}

// typeParam reads {type} of a route without {id}.
func (s *server) typeParam(r *http.Request) (string, error) {
	if err := checkPathUTF8(r); err != nil {
		return "", err
	}
	typ := chi.URLParam(r, "type")
	if r.URL.RawPath != "" {
		var err error
		if typ, err = url.PathUnescape(typ); err != nil {
			return "", apiErr(kindInvalidParameter, "type", "not a valid path segment")
		}
	}
	if _, ok := s.schema.NodeType(typ); !ok {
		return "", apiErr(kindUnknownType, "type", "unknown node type %q", typ)
	}
	return typ, nil
}

// fieldSet parses a listing's fields parameter: nil when absent (every
// property), else the names asked for (none for an empty value).
func fieldSet(v url.Values) (map[string]bool, error) {
	if !v.Has("fields") {
		return nil, nil
	}
	raw := v.Get("fields")
	if len(raw) > maxFieldsLen {
		return nil, overCap("fields", maxFieldsLen, "%d bytes; the limit is %d", len(raw), maxFieldsLen)
	}
	set := map[string]bool{}
	if raw == "" {
		return set, nil
	}
	for _, name := range strings.Split(raw, ",") {
		if name == "" {
			return nil, apiErr(kindInvalidParameter, "fields", "an empty property name in %q", raw)
		}
		set[name] = true
	}
	return set, nil
}

func listFingerprint(typ string) uint64 {
	return newFingerprint(cursorNodes).str(typ).sum()
}

func (s *server) listNodes(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.stage(r, stageTotal, time.Since(start)) }()
	typ, err := s.typeParam(r)
	var v url.Values
	if err == nil {
		v, err = parseQuery(r)
	}
	if err == nil {
		err = checkQueryParams(v, "limit", "cursor", "fields")
	}
	q := graph.NodeListQuery{Type: typ, Limit: defaultListLimit}
	if err == nil && v.Has("limit") {
		l := v.Get("limit")
		n, perr := strconv.Atoi(l)
		switch {
		case perr != nil || n <= 0:
			err = apiErr(kindInvalidParameter, "limit", "%q is not a positive integer", l)
		case n > maxListLimit:
			err = overCap("limit", maxListLimit, "%d is over the limit of %d", n, maxListLimit)
		default:
			q.Limit = n
		}
	}
	var fields map[string]bool
	if err == nil {
		fields, err = fieldSet(v)
	}
	if err == nil && v.Get("cursor") != "" {
		q.Cursor, err = s.codec.open(cursorNodes, listFingerprint(typ), v.Get("cursor"))
	}
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	lister, ok := s.store.(graph.Lister)
	if !ok {
		s.writeProblem(w, r, apiErr(kindNotImplemented, "", "this server's store cannot list nodes"))
		return
	}
	s.m.stage(r, stageValidation, time.Since(start))
	r, cancel := withBudget(r, s.cfg.DefaultTimeBudget)
	defer cancel()
	t := time.Now()
	page, err := lister.ListNodes(r.Context(), q)
	s.m.stage(r, stageStorage, time.Since(t))
	s.m.storeReads.WithLabelValues(routeOf(r)).Observe(1)
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	resp := nodesResponse{Type: typ, Nodes: make([]nodeJSON, 0, len(page.Nodes)), HasMore: page.Next != nil}
	for _, n := range page.Nodes {
		props := graph.Props{}
		for name, x := range n.Props {
			if fields == nil || fields[name] {
				props[name] = x
			}
		}
		b, err := graph.EncodeProps(props)
		if err != nil {
			s.writeProblem(w, r, err)
			return
		}
		resp.Nodes = append(resp.Nodes, nodeJSON{Type: n.Key.Type, ID: n.Key.ID, Props: b, EventTime: n.EventTime})
	}
	if page.Next != nil {
		resp.NextCursor = s.codec.seal(cursorNodes, listFingerprint(typ), page.Next)
	}
	resp.Watermark, _ = watermarkFrom(r.Context())
	s.writeJSON(w, resp)
}

// degreeQuery is GET .../degree parsed: one adjacency query per edge type
// and direction to count, without limit or cursor.
type degreeQuery struct {
	node         graph.NodeKey
	queries      []graph.AdjacencyQuery
	since, until *time.Time
	budget       time.Duration
}

func (s *server) parseDegreeQuery(r *http.Request) (degreeQuery, error) {
	dq := degreeQuery{budget: s.cfg.DefaultTimeBudget}
	k, err := s.nodeParam(r)
	if err != nil {
		return dq, err
	}
	if k.ID == "" {
		return dq, apiErr(kindInvalidParameter, "id", "empty")
	}
	dq.node = k
	v, err := parseQuery(r)
	if err != nil {
		return dq, err
	}
	if err := checkQueryParams(v, "edge_type", "direction", "since", "until", "time_budget_ms"); err != nil {
		return dq, err
	}
	var dirs []graph.Direction
	switch d := v.Get("direction"); {
	case !v.Has("direction"):
		dirs = []graph.Direction{graph.Out, graph.In}
	case d == "out":
		dirs = []graph.Direction{graph.Out}
	case d == "in":
		dirs = []graph.Direction{graph.In}
	default:
		return dq, apiErr(kindInvalidParameter, "direction", "%q is not one of out, in", d)
	}
	types := s.schema.EdgeTypes()
	if et := v.Get("edge_type"); et != "" {
		if _, ok := s.schema.EdgeType(et); !ok {
			return dq, apiErr(kindUnknownType, "edge_type", "unknown edge type %q", et)
		}
		types = []string{et}
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"since", &dq.since}, {"until", &dq.until}} {
		if v.Has(p.name) {
			t, err := parseTime(v.Get(p.name), p.name)
			if err != nil {
				return dq, err
			}
			*p.dst = &t
		}
	}
	if v.Has("time_budget_ms") {
		raw := v.Get("time_budget_ms")
		ms, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || ms <= 0 {
			return dq, apiErr(kindInvalidParameter, "time_budget_ms", "%q is not a positive integer", raw)
		}
		if maxMS := s.cfg.MaxTimeBudget.Milliseconds(); ms > maxMS {
			return dq, overCap("time_budget_ms", maxMS, "%d ms is over the server's limit of %d ms", ms, maxMS)
		}
		dq.budget = time.Duration(ms) * time.Millisecond
	}
	for _, name := range types {
		et, _ := s.schema.EdgeType(name)
		for _, d := range dirs {
			if (d == graph.Out && !et.AllowsFrom(k.Type)) || (d == graph.In && (!et.Reverse || !et.AllowsTo(k.Type))) {
				continue
			}
			q := graph.AdjacencyQuery{Node: k, EdgeType: name, Direction: d, Order: graph.OrderKey, Limit: degreePage}
			if dq.since != nil {
				q.Since = *dq.since
			}
			if dq.until != nil {
				q.Until = *dq.until
			}
			if _, err := s.schema.CheckQuery(q); err != nil {
				return dq, err
			}
			dq.queries = append(dq.queries, q)
		}
	}
	if len(dq.queries) == 0 && v.Get("edge_type") != "" {
		// An edge type named explicitly that cannot be read this way.
		q := graph.AdjacencyQuery{Node: k, EdgeType: v.Get("edge_type"), Direction: dirs[0], Order: graph.OrderKey, Limit: degreePage}
		_, err := s.schema.CheckQuery(q)
		if err == nil {
			err = apiErr(kindInvalidQuery, "edge_type", "edge type %q cannot be read from node type %q", q.EdgeType, k.Type)
		}
		return dq, err
	}
	return dq, nil
}

func (s *server) getDegree(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.stage(r, stageTotal, time.Since(start)) }()
	dq, err := s.parseDegreeQuery(r)
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	s.m.stage(r, stageValidation, time.Since(start))
	r, cancel := withBudget(r, dq.budget)
	defer cancel()
	t := time.Now()
	pages := 0
	defer func() {
		s.m.stage(r, stageStorage, time.Since(t))
		s.m.storeReads.WithLabelValues(routeOf(r)).Observe(float64(1 + pages))
	}()
	nodes, err := s.store.GetNodes(r.Context(), []graph.NodeKey{dq.node})
	if err != nil {
		s.writeProblem(w, r, err)
		return
	}
	if _, ok := nodes[dq.node]; !ok {
		if nt, _ := s.schema.NodeType(dq.node.Type); !nt.Implicit {
			s.writeProblem(w, r, apiErr(kindNotFound, "", "node %s does not exist", dq.node))
			return
		}
	}
	resp := degreeResponse{Node: keyJSON(dq.node), Degrees: make([]degreeJSON, 0, len(dq.queries))}
	if dq.since != nil || dq.until != nil {
		resp.Window = &windowJSON{Since: dq.since, Until: dq.until}
	}
	counter, counts := s.store.(graph.EdgeCounter)
	for _, q := range dq.queries {
		if counts {
			n, err := counter.CountEdges(r.Context(), q)
			pages++
			if err != nil {
				s.writeProblem(w, r, err)
				return
			}
			resp.Degrees = append(resp.Degrees, degreeJSON{EdgeType: q.EdgeType, Direction: q.Direction.String(), Count: n})
			continue
		}
		var n int64
		for {
			page, err := s.store.Adjacency(r.Context(), q)
			pages++
			if err != nil {
				s.writeProblem(w, r, err)
				return
			}
			n += int64(len(page.Edges))
			if page.Next == nil {
				break
			}
			q.Cursor = page.Next
		}
		resp.Degrees = append(resp.Degrees, degreeJSON{EdgeType: q.EdgeType, Direction: q.Direction.String(), Count: n})
	}
	resp.Watermark, _ = watermarkFrom(r.Context())
	resp.Stats = statsJSON{StoreReads: pages, DurationMS: float64(time.Since(start).Microseconds()) / 1000}
	s.writeJSON(w, resp)
}
