package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/traverse"
)

// The JSON body of POST /v1/traversals. Pointers tell "absent" (take the
// default) from a value.
type traversalBody struct {
	Start        []nodeRef `json:"start"`
	Hops         []hopBody `json:"hops"`
	MaxResults   *jsonInt  `json:"max_results"`
	IncludePaths bool      `json:"include_paths"`
	TimeBudgetMS *jsonInt  `json:"time_budget_ms"`
	Cursor       string    `json:"cursor"`
}

type nodeRef struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type hopBody struct {
	EdgeTypes []string       `json:"edge_types"`
	Direction *string        `json:"direction"`
	Limit     *jsonInt       `json:"limit"`
	Since     *string        `json:"since"`
	Until     *string        `json:"until"`
	NodeTypes []string       `json:"node_types"`
	Where     map[string]any `json:"where"`
	EdgeWhere map[string]any `json:"edge_where"`
	Order     *string        `json:"order"`
}

// hopSpec is what of a hop the cursor codec needs.
type hopSpec struct {
	edgeTypes []string
}

func (h hopSpec) edgeIndex(et string) int { return slices.Index(h.edgeTypes, et) }

// parsedTraversal is a traversal request parsed, defaulted and bound to
// its cursor, ready for the engine (which checks it against the schema).
type parsedTraversal struct {
	req     traverse.Request
	hops    []hopSpec
	windows [][]window // per hop and edge type, as resolved
	fp      uint64
	budget  time.Duration
}

// decodeJSON decodes exactly one JSON value from r into dst, refusing
// unknown fields and text that is not UTF-8 (encoding/json would replace
// it silently). Numbers in untyped places stay json.Number.
func decodeJSON(r io.Reader, dst any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err // *http.MaxBytesError, or the client went away
	}
	if !utf8.Valid(data) {
		return apiErr(kindMalformed, "", "the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err, data, dst)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apiErr(kindMalformed, "", "the body holds more than one JSON value")
	}
	return nil
}

func jsonError(err error, data []byte, dst any) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return apiErr(kindMalformed, "", "the body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apiErr(kindMalformed, "", "the body ends in the middle of a JSON value")
	case errors.As(err, &syn):
		return apiErr(kindMalformed, "", "invalid JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		field := jsonPathAt(data, typ.Offset)
		if field == "" {
			field = typ.Field
		}
		if field == "" {
			field = "(body)"
		}
		return apiErr(kindMalformed, field, "a JSON %s cannot be %s", typ.Value, jsonKind(typ.Type.String()))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field := strings.Trim(name, `"`)
		if p := unknownFieldPath(data, dst, field); p != "" {
			field = p
		}
		return apiErr(kindMalformed, field, "unknown field %s", name)
	}
	return apiErr(kindMalformed, "", "invalid JSON: %s", err.Error())
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "api."):
		return "an object"
	case strings.HasPrefix(goType, "int"), goType == "*int", goType == "*int64":
		return "an integer"
	case goType == "bool":
		return "a boolean"
	}
	return "a string"
}

// parseTime parses an RFC 3339 time from field. RFC 3339 lets the T and
// Z be lowercase, as the spec's date-time format does; Go's layout wants
// them uppercase, and a time holds no other letter.
func parseTime(s, field string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	if err != nil {
		return time.Time{}, apiErr(kindInvalidParameter, field, "%q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", s)
	}
	return t.UTC(), nil
}

// parseTraversal reads, defaults and caps a traversal request. now anchors
// the default lookback. It checks syntax and the server's caps; the schema
// is the engine's to check.
func parseTraversal(body io.Reader, cfg Config, codec cursorCodec, now time.Time) (*parsedTraversal, error) {
	var b traversalBody
	if err := decodeJSON(body, &b); err != nil {
		return nil, err
	}
	p := &parsedTraversal{budget: cfg.DefaultTimeBudget}
	budgetMS, err := optInt(b.TimeBudgetMS, "time_budget_ms")
	if err != nil {
		return nil, err
	}
	if budgetMS != nil {
		ms := *budgetMS
		if ms <= 0 {
			return nil, apiErr(kindInvalidParameter, "time_budget_ms", "must be positive")
		}
		if maxMS := cfg.MaxTimeBudget.Milliseconds(); ms > maxMS {
			return nil, overCap("time_budget_ms", maxMS, "%d ms is over the server's limit of %d ms", ms, maxMS)
		}
		p.budget = time.Duration(ms) * time.Millisecond
	}
	maxResults := cfg.DefaultMaxResults
	mr, err := optInt(b.MaxResults, "max_results")
	if err != nil {
		return nil, err
	}
	if mr != nil {
		if *mr <= 0 {
			return nil, apiErr(kindInvalidParameter, "max_results", "must be positive")
		}
		if *mr > int64(cfg.MaxResults) {
			return nil, overCap("max_results", int64(cfg.MaxResults), "%d is over the server's limit of %d", *mr, cfg.MaxResults)
		}
		maxResults = int(*mr)
	}
	if len(b.Start) > cfg.MaxStartNodes {
		return nil, overCap("start", int64(cfg.MaxStartNodes), "%d start nodes; the server's limit is %d", len(b.Start), cfg.MaxStartNodes)
	}
	if len(b.Hops) == 0 {
		return nil, apiErr(kindInvalidParameter, "hops", "at least one hop is required")
	}
	if len(b.Hops) > cfg.MaxHops {
		return nil, overCap("hops", int64(cfg.MaxHops), "%d hops; the server's limit is %d", len(b.Hops), cfg.MaxHops)
	}
	for i, s := range b.Start {
		// The engine refuses it too, as a 400; a length over a cap is a
		// 422 with the cap on every route.
		if len(s.ID) > graph.MaxIDLen {
			return nil, overCap(fmt.Sprintf("start[%d].id", i), graph.MaxIDLen, "the id is %d bytes; the limit is %d", len(s.ID), graph.MaxIDLen)
		}
	}
	p.req = traverse.Request{MaxResults: maxResults, IncludePaths: b.IncludePaths}
	for _, s := range b.Start {
		p.req.Start = append(p.req.Start, graph.NodeKey{Type: s.Type, ID: s.ID})
	}
	fp := newFingerprint(cursorTraversal)
	fp.num(int64(len(b.Start)))
	for _, s := range b.Start {
		fp.str(s.Type).str(s.ID)
	}
	var windows [][]window
	for i, hb := range b.Hops {
		h, spec, wins, err := parseHop(hb, fmt.Sprintf("hops[%d]", i), cfg, now, fp)
		if err != nil {
			return nil, err
		}
		p.req.Hops = append(p.req.Hops, h)
		p.hops = append(p.hops, spec)
		windows = append(windows, wins)
	}
	p.fp = fp.sum()
	if b.Cursor != "" {
		payload, err := codec.open(cursorTraversal, p.fp, b.Cursor)
		if err != nil {
			return nil, err
		}
		c, err := decodeTraversalCursor(payload, p.hops)
		if err != nil {
			return nil, err
		}
		// The windows the first request resolved hold for every page, so
		// a defaulted lookback does not slide between pages.
		windows = c.windows
		for i := range p.req.Hops {
			for j := range p.req.Hops[i].Edges {
				p.req.Hops[i].Edges[j].Since = windows[i][j].since
				p.req.Hops[i].Edges[j].Until = windows[i][j].until
			}
		}
		cont := c.cont
		p.req.Resume = &cont
	}
	p.windows = windows
	return p, nil
}

func parseHop(hb hopBody, field string, cfg Config, now time.Time, fp *fingerprint) (traverse.Hop, hopSpec, []window, error) {
	var h traverse.Hop
	if len(hb.EdgeTypes) == 0 {
		return h, hopSpec{}, nil, apiErr(kindInvalidParameter, field+".edge_types", "at least one edge type is required")
	}
	if len(hb.EdgeTypes) > traverse.MaxEdgeTypes {
		return h, hopSpec{}, nil, overCap(field+".edge_types", traverse.MaxEdgeTypes, "%d edge types; the limit is %d", len(hb.EdgeTypes), traverse.MaxEdgeTypes)
	}
	if len(hb.NodeTypes) > traverse.MaxNodeTypes {
		return h, hopSpec{}, nil, overCap(field+".node_types", traverse.MaxNodeTypes, "%d node types; the limit is %d", len(hb.NodeTypes), traverse.MaxNodeTypes)
	}
	if len(hb.Where) > traverse.MaxPropFilters {
		return h, hopSpec{}, nil, overCap(field+".where", traverse.MaxPropFilters, "%d filters; the limit is %d", len(hb.Where), traverse.MaxPropFilters)
	}
	if len(hb.EdgeWhere) > traverse.MaxPropFilters {
		return h, hopSpec{}, nil, overCap(field+".edge_where", traverse.MaxPropFilters, "%d filters; the limit is %d", len(hb.EdgeWhere), traverse.MaxPropFilters)
	}
	dir := traverse.Out
	if hb.Direction != nil {
		d, ok := traverse.ParseDirection(*hb.Direction)
		if !ok {
			return h, hopSpec{}, nil, apiErr(kindInvalidParameter, field+".direction", "%q is not one of out, in, both", *hb.Direction)
		}
		dir = d
	}
	order := graph.OrderLatest
	if hb.Order != nil {
		switch *hb.Order {
		case "latest":
		case "any":
			// Key order: a stable order every backend reads without sorting.
			order = graph.OrderKey
		default:
			return h, hopSpec{}, nil, apiErr(kindInvalidParameter, field+".order", "%q is not one of latest, any", *hb.Order)
		}
	}
	limit := cfg.hopLimit(hb.EdgeTypes)
	l, err := optInt(hb.Limit, field+".limit")
	if err != nil {
		return h, hopSpec{}, nil, err
	}
	if l != nil {
		if *l <= 0 {
			return h, hopSpec{}, nil, apiErr(kindInvalidParameter, field+".limit", "must be positive")
		}
		if *l > int64(cfg.MaxHopLimit) {
			return h, hopSpec{}, nil, overCap(field+".limit", int64(cfg.MaxHopLimit), "%d is over the server's limit of %d", *l, cfg.MaxHopLimit)
		}
		limit = int(*l)
	}
	var since, until *time.Time
	if hb.Since != nil {
		t, err := parseTime(*hb.Since, field+".since")
		if err != nil {
			return h, hopSpec{}, nil, err
		}
		since = &t
	}
	if hb.Until != nil {
		t, err := parseTime(*hb.Until, field+".until")
		if err != nil {
			return h, hopSpec{}, nil, err
		}
		until = &t
	}
	h = traverse.Hop{
		Direction: dir, Limit: limit, NodeCap: cfg.SupernodeCap, Order: order,
		NodeTypes: hb.NodeTypes, NodeProps: graph.Props(hb.Where), EdgeProps: graph.Props(hb.EdgeWhere),
	}
	wins := make([]window, len(hb.EdgeTypes))
	for i, et := range hb.EdgeTypes {
		w := window{}
		switch {
		case since != nil:
			w.since = *since
		default:
			w.since = now.Add(-cfg.lookback(et)).Truncate(time.Microsecond)
		}
		if until != nil {
			w.until = *until
		}
		wins[i] = w
		h.Edges = append(h.Edges, traverse.EdgeSpec{Type: et, Since: w.since, Until: w.until})
	}
	fp.num(int64(len(hb.EdgeTypes)))
	for _, et := range hb.EdgeTypes {
		fp.str(et)
	}
	fp.num(int64(dir)).num(int64(order)).optTime(since).optTime(until)
	fp.num(int64(len(hb.NodeTypes)))
	for _, t := range hb.NodeTypes {
		fp.str(t)
	}
	filterFingerprint(fp, hb.Where)
	filterFingerprint(fp, hb.EdgeWhere)
	return h, hopSpec{edgeTypes: slices.Clone(hb.EdgeTypes)}, wins, nil
}

// filterFingerprint hashes a property filter in key order, values by their
// JSON text, which is canonical enough: a client resending its own query
// sends the same text.
func filterFingerprint(fp *fingerprint, m map[string]any) {
	fp.num(int64(len(m)))
	for _, k := range sortedNames(m) {
		v, _ := json.Marshal(m[k])
		fp.str(k).str(string(bytes.TrimSpace(v)))
	}
}
