package traverse

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/rtgraph/rtgraph/graph"
)

// MaxHops is the most hops one traversal may have.
const MaxHops = 4

// Bounds on the size of one request, whatever the server's configuration.
const (
	MaxStartNodes   = 1000
	MaxEdgeTypes    = 16 // per hop
	MaxNodeTypes    = 16 // per hop
	MaxPropFilters  = 16 // per hop, node and edge filters each
	MaxContinuation = 1 << 16
)

// Direction is the direction a hop follows edges in.
type Direction uint8

// Hop directions.
const (
	Out  Direction = iota + 1 // from the frontier node along its edges
	In                        // to the frontier node, against its edges
	Both                      // Out, then In
)

func (d Direction) String() string {
	switch d {
	case Out:
		return "out"
	case In:
		return "in"
	case Both:
		return "both"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// ParseDirection parses "out", "in" or "both".
func ParseDirection(s string) (Direction, bool) {
	switch s {
	case "out":
		return Out, true
	case "in":
		return In, true
	case "both":
		return Both, true
	}
	return 0, false
}

func (d Direction) graphDirs() []graph.Direction {
	switch d {
	case Out:
		return []graph.Direction{graph.Out}
	case In:
		return []graph.Direction{graph.In}
	case Both:
		return []graph.Direction{graph.Out, graph.In}
	}
	return nil
}

// EdgeSpec is one edge type a hop follows and the event-time window of the
// edges it returns (Since inclusive, Until exclusive, zero = unbounded).
type EdgeSpec struct {
	Type  string
	Since time.Time
	Until time.Time
}

// Hop is one level of a traversal.
type Hop struct {
	// Edges are the edge types followed, read in this order. At least one.
	Edges     []EdgeSpec
	Direction Direction
	// Limit is the most edges this hop returns. Positive.
	Limit int
	// NodeCap is the supernode cap: the most edges read from one node for one
	// edge type and direction in this hop, matching or not. Positive.
	NodeCap int
	// NodeTypes keeps only edges whose far node has one of these types;
	// empty keeps all.
	NodeTypes []string
	// NodeProps keeps only edges whose far node has every one of these
	// property values. Reading them costs a node read per adjacency page.
	NodeProps graph.Props
	// EdgeProps keeps only edges that have every one of these property values.
	EdgeProps graph.Props
	// Order is the order adjacency is read in, and so which edges a limit keeps.
	Order graph.Order
}

// Request is one traversal.
type Request struct {
	// Start are the nodes the first hop expands. Ignored when Resume is set.
	Start []graph.NodeKey
	Hops  []Hop
	// MaxResults is the most edges the whole traversal returns. Positive.
	MaxResults int
	// IncludePaths asks for the path from a start node to every edge of the
	// deepest hop that returned edges.
	IncludePaths bool
	// Deadline is the time budget; zero means none (only ctx bounds the run).
	Deadline time.Time
	// Resume continues a previous traversal of the same Hops from the
	// continuation one of its hops returned.
	Resume *Continuation
}

// ErrInvalidRequest is wrapped by every error about a request that can never
// succeed as it is.
var ErrInvalidRequest = errors.New("traverse: invalid request")

// ErrUnknownType is wrapped, besides ErrInvalidRequest, by the errors about
// a node or edge type the schema does not declare.
var ErrUnknownType = errors.New("traverse: unknown type")

// RequestError names the field of the request that is wrong, spelt as in the
// API's JSON request ("hops[1].edge_types[0]").
type RequestError struct {
	Field string
	Msg   string
	// Err is ErrUnknownType or nil.
	Err error
}

func (e *RequestError) Error() string { return "traverse: " + e.Field + ": " + e.Msg }

// Unwrap makes every RequestError match ErrInvalidRequest, and Err.
func (e *RequestError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidRequest, e.Err}
	}
	return []error{ErrInvalidRequest}
}

func reqErr(field, format string, args ...any) error {
	return &RequestError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func unknownType(field, what, name string) error {
	return &RequestError{Field: field, Msg: fmt.Sprintf("unknown %s type %q", what, name), Err: ErrUnknownType}
}

// validate checks req against the schema and normalises the property
// filters' values in place (JSON numbers become int64 or float64).
func validate(s *graph.Schema, req *Request) error {
	if len(req.Hops) == 0 {
		return reqErr("hops", "at least one hop is required")
	}
	if len(req.Hops) > MaxHops {
		return reqErr("hops", "%d hops; at most %d", len(req.Hops), MaxHops)
	}
	if req.MaxResults <= 0 {
		return reqErr("max_results", "must be positive")
	}
	if req.Resume == nil {
		if len(req.Start) == 0 {
			return reqErr("start", "at least one start node is required")
		}
		if len(req.Start) > MaxStartNodes {
			return reqErr("start", "%d start nodes; at most %d", len(req.Start), MaxStartNodes)
		}
		for i, k := range req.Start {
			if err := checkNodeKey(s, k, fmt.Sprintf("start[%d]", i)); err != nil {
				return err
			}
		}
	}
	for i := range req.Hops {
		if err := validateHop(s, &req.Hops[i], fmt.Sprintf("hops[%d]", i)); err != nil {
			return err
		}
	}
	if req.Resume != nil {
		return validateResume(s, req)
	}
	return nil
}

func checkNodeKey(s *graph.Schema, k graph.NodeKey, field string) error {
	if _, ok := s.NodeType(k.Type); !ok {
		return unknownType(field+".type", "node", k.Type)
	}
	if k.ID == "" {
		return reqErr(field+".id", "must not be empty")
	}
	if len(k.ID) > graph.MaxIDLen {
		return reqErr(field+".id", "%d bytes; at most %d", len(k.ID), graph.MaxIDLen)
	}
	return nil
}

func validateHop(s *graph.Schema, h *Hop, field string) error {
	if len(h.Edges) == 0 {
		return reqErr(field+".edge_types", "at least one edge type is required")
	}
	if len(h.Edges) > MaxEdgeTypes {
		return reqErr(field+".edge_types", "%d edge types; at most %d", len(h.Edges), MaxEdgeTypes)
	}
	dirs := h.Direction.graphDirs()
	if dirs == nil {
		return reqErr(field+".direction", "must be out, in or both")
	}
	// far collects the node types an edge of this hop can lead to, for
	// checking node type and node property filters.
	far := map[string]bool{}
	seen := map[string]bool{}
	for j, es := range h.Edges {
		f := fmt.Sprintf("%s.edge_types[%d]", field, j)
		et, ok := s.EdgeType(es.Type)
		if !ok {
			return unknownType(f, "edge", es.Type)
		}
		if seen[es.Type] {
			return reqErr(f, "edge type %q listed twice", es.Type)
		}
		seen[es.Type] = true
		if h.Direction != Out && !et.Reverse {
			return reqErr(field+".direction", "edge type %q keeps no reverse index, so direction %s is not available", es.Type, h.Direction)
		}
		if !es.Since.IsZero() && !es.Until.IsZero() && !es.Since.Before(es.Until) {
			return reqErr(field+".since", "since %s is not before until %s",
				es.Since.Format(time.RFC3339Nano), es.Until.Format(time.RFC3339Nano))
		}
		for _, d := range dirs {
			ends := et.To
			if d == graph.In {
				ends = et.From
			}
			for _, t := range ends {
				far[t] = true
			}
		}
	}
	if h.Limit <= 0 {
		return reqErr(field+".limit", "must be positive")
	}
	if h.NodeCap <= 0 {
		return reqErr(field+".node_cap", "must be positive")
	}
	if h.Order != graph.OrderLatest && h.Order != graph.OrderKey {
		return reqErr(field+".order", "unknown order %s", h.Order)
	}
	if len(h.NodeTypes) > MaxNodeTypes {
		return reqErr(field+".node_types", "%d node types; at most %d", len(h.NodeTypes), MaxNodeTypes)
	}
	if len(h.NodeTypes) > 0 {
		kept := map[string]bool{}
		for j, t := range h.NodeTypes {
			if _, ok := s.NodeType(t); !ok {
				return unknownType(fmt.Sprintf("%s.node_types[%d]", field, j), "node", t)
			}
			if far[t] {
				kept[t] = true
			}
		}
		far = kept
	}
	nodeDecl := func(name string) []graph.PropType {
		var out []graph.PropType
		for t := range far {
			nt, _ := s.NodeType(t)
			if pt, ok := nt.Props[name]; ok {
				out = append(out, pt)
			}
		}
		return out
	}
	if err := normaliseFilter(h.NodeProps, field+".where", nodeDecl); err != nil {
		return err
	}
	edgeDecl := func(name string) []graph.PropType {
		var out []graph.PropType
		for _, es := range h.Edges {
			et, _ := s.EdgeType(es.Type)
			if pt, ok := et.Props[name]; ok {
				out = append(out, pt)
			}
		}
		return out
	}
	return normaliseFilter(h.EdgeProps, field+".edge_where", edgeDecl)
}

// normaliseFilter checks that every filtered property is declared by at
// least one type the filter can meet, with a type its value can equal, and
// turns JSON numbers into int64 or float64.
func normaliseFilter(p graph.Props, field string, declared func(string) []graph.PropType) error {
	if len(p) > MaxPropFilters {
		return reqErr(field, "%d filters; at most %d", len(p), MaxPropFilters)
	}
	for _, name := range sortedProps(p) {
		f := field + "." + name
		types := declared(name)
		if len(types) == 0 {
			return reqErr(f, "property %q is not declared by any type this hop can reach", name)
		}
		v, ok := normaliseValue(p[name])
		if !ok {
			return reqErr(f, "value must be a string, number or boolean")
		}
		if slices.Contains(types, graph.PropTime) {
			// A time is compared as its canonical text.
			if c, ok := graph.CanonicalTime(v); ok {
				v = c
			}
		}
		if !slices.ContainsFunc(types, func(t graph.PropType) bool { return valueFits(t, v) }) {
			want := make([]string, len(types))
			for i, t := range types {
				want[i] = t.String()
			}
			slices.Sort(want)
			return reqErr(f, "value %v is not a %s", v, strings.Join(slices.Compact(want), " or "))
		}
		p[name] = v
	}
	return nil
}

func sortedProps(p graph.Props) []string {
	out := make([]string, 0, len(p))
	for k := range p {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func normaliseValue(v any) (any, bool) {
	switch x := v.(type) {
	case string, bool, int64:
		return x, true
	case int:
		return int64(x), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false
		}
		return x, true
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true
		}
		f, err := x.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		return f, true
	}
	return nil, false
}

func valueFits(t graph.PropType, v any) bool {
	switch t {
	case graph.PropString:
		_, ok := v.(string)
		return ok
	case graph.PropTime:
		s, ok := v.(string)
		if ok {
			c, isTime := graph.CanonicalTime(s)
			ok = isTime && c == s
		}
		return ok
	case graph.PropBool:
		_, ok := v.(bool)
		return ok
	case graph.PropInt:
		switch x := v.(type) {
		case int64:
			return true
		case float64:
			return x == math.Trunc(x) && x >= -(1<<63) && x < 1<<63
		}
	case graph.PropFloat:
		switch v.(type) {
		case int64, float64:
			return true
		}
	}
	return false
}

// propEqual compares a stored property value with a normalised filter value;
// numbers compare by value whatever their Go type.
func propEqual(stored, want any) bool {
	switch w := want.(type) {
	case string:
		s, ok := stored.(string)
		return ok && s == w
	case bool:
		b, ok := stored.(bool)
		return ok && b == w
	case int64:
		switch s := stored.(type) {
		case int64:
			return s == w
		case float64:
			return s == float64(w)
		}
	case float64:
		switch s := stored.(type) {
		case int64:
			return float64(s) == w
		case float64:
			return s == w
		}
	}
	return false
}

func matches(props graph.Props, filter graph.Props) bool {
	for k, want := range filter {
		v, ok := props[k]
		if !ok || !propEqual(v, want) {
			return false
		}
	}
	return true
}

func validateResume(s *graph.Schema, req *Request) error {
	c := req.Resume
	if c.Hop < 0 || c.Hop >= len(req.Hops) {
		return reqErr("cursor", "continues hop %d of a %d-hop request", c.Hop+1, len(req.Hops))
	}
	if len(c.Work) == 0 || len(c.Work) > MaxContinuation {
		return reqErr("cursor", "continuation has %d sources", len(c.Work))
	}
	h := &req.Hops[c.Hop]
	for _, src := range c.Work {
		if err := checkNodeKey(s, src.Node, "cursor"); err != nil {
			return err
		}
		if !slices.ContainsFunc(h.Edges, func(es EdgeSpec) bool { return es.Type == src.EdgeType }) ||
			!slices.Contains(h.Direction.graphDirs(), src.Direction) {
			return reqErr("cursor", "continuation does not match hop %d", c.Hop+1)
		}
		et, _ := s.EdgeType(src.EdgeType)
		if !sourceAllowed(et, src.Node.Type, src.Direction) {
			return reqErr("cursor", "continuation does not match hop %d", c.Hop+1)
		}
	}
	return nil
}

func sourceAllowed(et *graph.EdgeType, nodeType string, d graph.Direction) bool {
	if d == graph.In {
		return et.Reverse && et.AllowsTo(nodeType)
	}
	return et.AllowsFrom(nodeType)
}
