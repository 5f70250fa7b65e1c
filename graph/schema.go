package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// PropType is the declared type of a property.
type PropType uint8

// Property types a schema may declare. A time property is stored as
// canonical text, RFC 3339 in UTC with exactly six fraction digits
// ("2026-11-25T10:00:00.000000Z", see [CanonicalTime]), whatever the source
// sent: a temporal column of a schema-wrapped row, an ISO-8601 string of a
// schemaless one, or any offset. Timestamps may also be carried as string
// (as sent) or int (Unix microseconds) properties.
const (
	PropString PropType = iota + 1
	PropInt
	PropFloat
	PropBool
	PropTime
)

// CanonicalTimeLayout is how time properties are stored.
const CanonicalTimeLayout = "2006-01-02T15:04:05.000000Z"

// CanonicalTime renders a time property value canonically: a time.Time, or
// RFC 3339 text with any offset and fraction, becomes UTC text with
// microseconds (finer digits are dropped). Anything else is not a time.
func CanonicalTime(v any) (string, bool) {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case string:
		var err error
		if t, err = time.Parse(time.RFC3339Nano, x); err != nil {
			return "", false
		}
	default:
		return "", false
	}
	t = t.UTC().Truncate(time.Microsecond)
	if t.Year() < 0 || t.Year() > 9999 {
		return "", false
	}
	return t.Format(CanonicalTimeLayout), true
}

func (t PropType) String() string {
	switch t {
	case PropString:
		return "string"
	case PropInt:
		return "int"
	case PropFloat:
		return "float"
	case PropBool:
		return "bool"
	case PropTime:
		return "time"
	}
	return fmt.Sprintf("prop_type(%d)", uint8(t))
}

func parsePropType(s string) (PropType, bool) {
	switch s {
	case "string":
		return PropString, true
	case "int":
		return PropInt, true
	case "float":
		return PropFloat, true
	case "bool":
		return PropBool, true
	case "time":
		return PropTime, true
	}
	return 0, false
}

// Limits that keep every stored key bounded. MaxIDLen is in bytes.
const (
	MaxIDLen       = 1024
	MaxNameLen     = 64
	MaxTTL         = 20 * 365 * 24 * time.Hour // Cassandra's TTL ceiling
	maxSchemaFiles = 256
)

// NodeType is a declared node type.
type NodeType struct {
	Name  string
	Props map[string]PropType
	// Implicit is whether edges may name a node of this type that was
	// never written: a node that edges create (an item bought, a city a
	// zone is in). An edge needs its implicit end only not to be deleted,
	// where any other end must exist (see the package doc).
	Implicit bool
	// File and Line locate the declaration, for error messages.
	File string
	Line int
}

// EdgeType is a declared edge type.
type EdgeType struct {
	Name string
	// From and To are the node types an edge of this type may link, sorted.
	From, To []string
	Props    map[string]PropType
	// TTL is how long after its event time an edge expires; 0 = never.
	// Always whole seconds.
	TTL time.Duration
	// Reverse is whether an In-direction index is kept, so that Adjacency
	// with Direction In is allowed for this type.
	Reverse bool
	// Multiplicity limits how many edges of this type a node may have at an
	// end. Default MultiplicitySimple.
	Multiplicity Multiplicity
	File         string
	Line         int
}

// Multiplicity is an edge type's limit on edges per node, after JanusGraph's
// edge label multiplicities. Every edge type is at least SIMPLE: one edge of
// a type links two nodes in one direction at most once.
type Multiplicity string

// The multiplicities.
const (
	// MultiplicitySimple: any number of edges at each end.
	MultiplicitySimple Multiplicity = "simple"
	// MultiplicityMany2One: a From node has at most one edge of the type (a
	// device has one owner). Writing an edge to another To replaces it when
	// the new edge's version is greater, without a before image.
	MultiplicityMany2One Multiplicity = "many2one"
	// MultiplicityOne2Many: a To node has at most one edge of the type (a
	// child has one mother).
	MultiplicityOne2Many Multiplicity = "one2many"
	// MultiplicityOne2One: both.
	MultiplicityOne2One Multiplicity = "one2one"
)

// Constrains reports whether a node at the dir end of an edge of this type
// may have only one such edge: Out for MANY2ONE (the From end), In for
// ONE2MANY, both for ONE2ONE.
func (e *EdgeType) Constrains(dir Direction) bool {
	switch e.Multiplicity {
	case MultiplicityMany2One:
		return dir == Out
	case MultiplicityOne2Many:
		return dir == In
	case MultiplicityOne2One:
		return true
	}
	return false
}

// AllowsFrom reports whether nodeType may be the From end of this edge type.
func (e *EdgeType) AllowsFrom(nodeType string) bool { return slices.Contains(e.From, nodeType) }

// AllowsTo reports whether nodeType may be the To end of this edge type.
func (e *EdgeType) AllowsTo(nodeType string) bool { return slices.Contains(e.To, nodeType) }

// Schema is the typed graph schema: the node and edge types every mutation
// must conform to. It is immutable once built and safe for concurrent use.
type Schema struct {
	nodes map[string]*NodeType
	edges map[string]*EdgeType
}

// NodeType returns the node type called name.
func (s *Schema) NodeType(name string) (*NodeType, bool) {
	t, ok := s.nodes[name]
	return t, ok
}

// EdgeType returns the edge type called name.
func (s *Schema) EdgeType(name string) (*EdgeType, bool) {
	t, ok := s.edges[name]
	return t, ok
}

// NodeTypes returns the node type names, sorted.
func (s *Schema) NodeTypes() []string { return sortedKeys(s.nodes) }

// EdgeTypes returns the edge type names, sorted.
func (s *Schema) EdgeTypes() []string { return sortedKeys(s.edges) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ErrInvalidSchema is wrapped by every error LoadSchema and NewSchema return
// for a schema that is not valid (as opposed to a file that cannot be read).
var ErrInvalidSchema = errors.New("graph: invalid schema")

// LoadError locates a problem in a schema file.
type LoadError struct {
	File  string // path within the fs.FS
	Line  int    // 1-based; 0 when unknown
	Field string // dotted path, e.g. "edge_types.impressed.ttl"
	Msg   string
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString("graph schema")
	if e.File != "" {
		b.WriteString(" ")
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes every LoadError match ErrInvalidSchema.
func (e *LoadError) Unwrap() error { return ErrInvalidSchema }

var (
	nameRE     = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	yamlLineRE = regexp.MustCompile(`line (\d+)`)
)

func checkName(name string) string {
	if !nameRE.MatchString(name) {
		return "must match [a-z][a-z0-9_]*"
	}
	if len(name) > MaxNameLen {
		return fmt.Sprintf("longer than %d bytes", MaxNameLen)
	}
	return ""
}

// LoadSchema reads every *.yaml and *.yml file directly under dir in fsys
// (sorted by name) and builds one Schema from all of them. A node or edge type
// may be declared in one file only; edge types may refer to node types of any
// file. Errors wrap ErrInvalidSchema and are *LoadError naming file, line and
// field, except when a file cannot be read at all.
//
// File format (unknown keys are errors):
//
//	node_types:
//	  account:
//	    implicit: false     # optional: true lets edges name nodes never written
//	    properties:
//	      email: string     # string | int | float | bool | time
//	edge_types:
//	  has_profile:
//	    from: account       # a node type, or a list of them
//	    to: [profile]
//	    ttl: 7d1h           # optional; Go duration, plus "d" for 24h; whole seconds
//	    reverse: true       # optional, default false: keep an In index
//	    multiplicity: simple  # optional: simple (default), many2one, one2many, one2one
//	    properties:
//	      primary: bool
func LoadSchema(fsys fs.FS, dir string) (*Schema, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("graph: load schema: %w", err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if ext := path.Ext(e.Name()); ext == ".yaml" || ext == ".yml" {
			files = append(files, path.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, &LoadError{File: dir, Msg: "no *.yaml files"}
	}
	if len(files) > maxSchemaFiles {
		return nil, &LoadError{File: dir, Msg: fmt.Sprintf("more than %d files", maxSchemaFiles)}
	}
	var nodes []NodeType
	var edges []EdgeType
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("graph: load schema: %w", err)
		}
		n, e, err := parseSchemaFile(f, data)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n...)
		edges = append(edges, e...)
	}
	return NewSchema(nodes, edges)
}

// NewSchema builds a Schema from declarations, checking the same rules as
// LoadSchema (names, duplicates, edge endpoints, TTL). Edge types' From and To
// are sorted and deduplicated; File and Line are used in error messages.
func NewSchema(nodes []NodeType, edges []EdgeType) (*Schema, error) {
	s := &Schema{nodes: make(map[string]*NodeType, len(nodes)), edges: make(map[string]*EdgeType, len(edges))}
	if len(nodes) == 0 {
		return nil, &LoadError{Field: "node_types", Msg: "no node types declared"}
	}
	for i := range nodes {
		n := nodes[i]
		field := "node_types." + n.Name
		if msg := checkName(n.Name); msg != "" {
			return nil, &LoadError{File: n.File, Line: n.Line, Field: field, Msg: "name " + msg}
		}
		if prev, ok := s.nodes[n.Name]; ok {
			return nil, &LoadError{File: n.File, Line: n.Line, Field: field,
				Msg: fmt.Sprintf("already declared at %s:%d", prev.File, prev.Line)}
		}
		if err := checkProps(n.Props, n.File, n.Line, field); err != nil {
			return nil, err
		}
		n.Props = cloneMap(n.Props)
		s.nodes[n.Name] = &n
	}
	for i := range edges {
		e := edges[i]
		field := "edge_types." + e.Name
		if msg := checkName(e.Name); msg != "" {
			return nil, &LoadError{File: e.File, Line: e.Line, Field: field, Msg: "name " + msg}
		}
		if prev, ok := s.edges[e.Name]; ok {
			return nil, &LoadError{File: e.File, Line: e.Line, Field: field,
				Msg: fmt.Sprintf("already declared at %s:%d", prev.File, prev.Line)}
		}
		for _, end := range []struct {
			name  string
			types *[]string
		}{{"from", &e.From}, {"to", &e.To}} {
			if len(*end.types) == 0 {
				return nil, &LoadError{File: e.File, Line: e.Line, Field: field + "." + end.name, Msg: "must name at least one node type"}
			}
			for _, t := range *end.types {
				if _, ok := s.nodes[t]; !ok {
					return nil, &LoadError{File: e.File, Line: e.Line, Field: field + "." + end.name,
						Msg: fmt.Sprintf("unknown node type %q", t)}
				}
			}
			ts := slices.Clone(*end.types)
			slices.Sort(ts)
			*end.types = slices.Compact(ts)
		}
		switch {
		case e.TTL < 0:
			return nil, &LoadError{File: e.File, Line: e.Line, Field: field + ".ttl", Msg: "must not be negative"}
		case e.TTL%time.Second != 0:
			return nil, &LoadError{File: e.File, Line: e.Line, Field: field + ".ttl", Msg: "must be whole seconds"}
		case e.TTL > MaxTTL:
			return nil, &LoadError{File: e.File, Line: e.Line, Field: field + ".ttl", Msg: fmt.Sprintf("must be at most %s (20 years)", MaxTTL)}
		}
		if err := checkProps(e.Props, e.File, e.Line, field); err != nil {
			return nil, err
		}
		e.Props = cloneMap(e.Props)
		s.edges[e.Name] = &e
	}
	return s, nil
}

func cloneMap(m map[string]PropType) map[string]PropType {
	out := make(map[string]PropType, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func checkProps(props map[string]PropType, file string, line int, field string) error {
	for _, name := range sortedKeys(props) {
		if msg := checkName(name); msg != "" {
			return &LoadError{File: file, Line: line, Field: field + ".properties." + name, Msg: "name " + msg}
		}
		if t := props[name]; t < PropString || t > PropTime {
			return &LoadError{File: file, Line: line, Field: field + ".properties." + name, Msg: fmt.Sprintf("invalid type %s", t)}
		}
	}
	return nil
}

// parseSchemaFile walks the YAML node tree by hand rather than decoding into
// structs, so that every error, semantic ones included, can name the line of
// the offending field, and so unknown keys are rejected at every level.
func parseSchemaFile(file string, data []byte) ([]NodeType, []EdgeType, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		line := 0
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		if errors.Is(err, io.EOF) {
			return nil, nil, &LoadError{File: file, Msg: "empty file"}
		}
		return nil, nil, &LoadError{File: file, Line: line, Msg: "yaml: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	p := fileParser{file: file}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	top, err := p.mapping(root, "", "node_types", "edge_types")
	if err != nil {
		return nil, nil, err
	}
	var nodes []NodeType
	var edges []EdgeType
	if v, ok := top["node_types"]; ok {
		m, err := p.mapping(v.val, "node_types")
		if err != nil {
			return nil, nil, err
		}
		for _, name := range orderOf(m) {
			n, err := p.nodeType(name, m[name])
			if err != nil {
				return nil, nil, err
			}
			nodes = append(nodes, n)
		}
	}
	if v, ok := top["edge_types"]; ok {
		m, err := p.mapping(v.val, "edge_types")
		if err != nil {
			return nil, nil, err
		}
		for _, name := range orderOf(m) {
			e, err := p.edgeType(name, m[name])
			if err != nil {
				return nil, nil, err
			}
			edges = append(edges, e)
		}
	}
	return nodes, edges, nil
}

type fileParser struct{ file string }

type entry struct {
	key *yaml.Node
	val *yaml.Node
	pos int
}

func orderOf(m map[string]entry) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return m[names[i]].pos < m[names[j]].pos })
	return names
}

func (p fileParser) errf(n *yaml.Node, field, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &LoadError{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// mapping checks that n is a mapping with string keys, no duplicates, and (if
// allowed is not empty) only the allowed keys.
func (p fileParser) mapping(n *yaml.Node, field string, allowed ...string) (map[string]entry, error) {
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return map[string]entry{}, nil
		}
		return nil, p.errf(n, field, "must be a mapping")
	}
	out := make(map[string]entry, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := joinField(field, k.Value)
		if k.Kind != yaml.ScalarNode {
			return nil, p.errf(k, field, "keys must be strings")
		}
		if len(allowed) > 0 && !slices.Contains(allowed, k.Value) {
			return nil, p.errf(k, sub, "unknown field (allowed: %s)", strings.Join(allowed, ", "))
		}
		if prev, ok := out[k.Value]; ok {
			return nil, p.errf(k, sub, "duplicate key (first at line %d)", prev.key.Line)
		}
		out[k.Value] = entry{key: k, val: v, pos: i}
	}
	return out, nil
}

func joinField(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func (p fileParser) nodeType(name string, e entry) (NodeType, error) {
	field := "node_types." + name
	if msg := checkName(name); msg != "" {
		return NodeType{}, p.errf(e.key, field, "name %s", msg)
	}
	m, err := p.mapping(e.val, field, "implicit", "properties")
	if err != nil {
		return NodeType{}, err
	}
	props, err := p.props(m, field)
	if err != nil {
		return NodeType{}, err
	}
	nt := NodeType{Name: name, Props: props, File: p.file, Line: e.key.Line}
	if v, ok := m["implicit"]; ok {
		if v.val.Kind != yaml.ScalarNode || v.val.Tag != "!!bool" {
			return NodeType{}, p.errf(v.val, field+".implicit", "must be true or false")
		}
		nt.Implicit = v.val.Value == "true"
	}
	return nt, nil
}

func (p fileParser) edgeType(name string, e entry) (EdgeType, error) {
	field := "edge_types." + name
	if msg := checkName(name); msg != "" {
		return EdgeType{}, p.errf(e.key, field, "name %s", msg)
	}
	m, err := p.mapping(e.val, field, "from", "to", "ttl", "reverse", "multiplicity", "properties")
	if err != nil {
		return EdgeType{}, err
	}
	et := EdgeType{Name: name, File: p.file, Line: e.key.Line}
	for _, end := range []struct {
		key string
		dst *[]string
	}{{"from", &et.From}, {"to", &et.To}} {
		v, ok := m[end.key]
		if !ok {
			return EdgeType{}, p.errf(e.key, field+"."+end.key, "required")
		}
		names, err := p.nameList(v.val, field+"."+end.key)
		if err != nil {
			return EdgeType{}, err
		}
		*end.dst = names
	}
	if v, ok := m["ttl"]; ok {
		if v.val.Kind != yaml.ScalarNode {
			return EdgeType{}, p.errf(v.val, field+".ttl", "must be a duration such as 7d1h or 90s")
		}
		d, err := ParseTTL(v.val.Value)
		if err != nil {
			return EdgeType{}, p.errf(v.val, field+".ttl", "%v", err)
		}
		et.TTL = d
	}
	if v, ok := m["reverse"]; ok {
		if v.val.Kind != yaml.ScalarNode || v.val.Tag != "!!bool" {
			return EdgeType{}, p.errf(v.val, field+".reverse", "must be true or false")
		}
		et.Reverse = v.val.Value == "true"
	}
	et.Multiplicity = MultiplicitySimple
	if v, ok := m["multiplicity"]; ok {
		switch mu := Multiplicity(v.val.Value); {
		case v.val.Kind != yaml.ScalarNode:
			return EdgeType{}, p.errf(v.val, field+".multiplicity", "must be one of simple, many2one, one2many, one2one")
		case mu == MultiplicitySimple || mu == MultiplicityMany2One || mu == MultiplicityOne2Many || mu == MultiplicityOne2One:
			et.Multiplicity = mu
		case mu == "multi":
			return EdgeType{}, p.errf(v.val, field+".multiplicity",
				"multi is not available: an edge of a type links two nodes in one direction at most once (keep repeated events as counts, or as nodes)")
		default:
			return EdgeType{}, p.errf(v.val, field+".multiplicity", "%q is not one of simple, many2one, one2many, one2one", v.val.Value)
		}
	}
	props, err := p.props(m, field)
	if err != nil {
		return EdgeType{}, err
	}
	et.Props = props
	return et, nil
}

func (p fileParser) nameList(n *yaml.Node, field string) ([]string, error) {
	var items []*yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		items = []*yaml.Node{n}
	case yaml.SequenceNode:
		items = n.Content
	default:
		return nil, p.errf(n, field, "must be a node type or a list of node types")
	}
	if len(items) == 0 {
		return nil, p.errf(n, field, "must name at least one node type")
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if it.Kind != yaml.ScalarNode || it.Tag != "!!str" || it.Value == "" {
			return nil, p.errf(it, field, "must be a node type name")
		}
		out = append(out, it.Value)
	}
	return out, nil
}

func (p fileParser) props(m map[string]entry, field string) (map[string]PropType, error) {
	v, ok := m["properties"]
	if !ok {
		return map[string]PropType{}, nil
	}
	field += ".properties"
	pm, err := p.mapping(v.val, field)
	if err != nil {
		return nil, err
	}
	props := make(map[string]PropType, len(pm))
	for _, name := range orderOf(pm) {
		e := pm[name]
		sub := field + "." + name
		if msg := checkName(name); msg != "" {
			return nil, p.errf(e.key, sub, "name %s", msg)
		}
		if e.val.Kind != yaml.ScalarNode {
			return nil, p.errf(e.val, sub, "must be one of string, int, float, bool, time")
		}
		t, ok := parsePropType(e.val.Value)
		if !ok {
			return nil, p.errf(e.val, sub, "unknown type %q (want string, int, float, bool or time)", e.val.Value)
		}
		props[name] = t
	}
	return props, nil
}

// ParseTTL parses a TTL: a Go duration ("90s", "1h30m") where "d" is also
// accepted as 24h and may lead ("7d1h"). It must be non-negative whole seconds.
func ParseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	var days int64
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 32)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		days = n
		s = s[i+1:]
	}
	var rest time.Duration
	if s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		rest = d
	} else if days == 0 {
		return 0, nil
	}
	d := time.Duration(days)*24*time.Hour + rest
	switch {
	case d < 0:
		return 0, errors.New("must not be negative")
	case d%time.Second != 0:
		return 0, errors.New("must be whole seconds")
	case d > MaxTTL:
		return 0, fmt.Errorf("must be at most %s (20 years)", MaxTTL)
	}
	return d, nil
}

// Rule names a schema rule a mutation can break.
type Rule string

// The rules [Schema.Check] enforces.
const (
	RuleUnknownOp           Rule = "unknown_op"
	RuleMissingEventTime    Rule = "missing_event_time"
	RuleEventTimeRange      Rule = "event_time_out_of_range"
	RuleEmptyID             Rule = "empty_id"
	RuleIDTooLong           Rule = "id_too_long"
	RuleUnknownNodeType     Rule = "unknown_node_type"
	RuleUnknownEdgeType     Rule = "unknown_edge_type"
	RuleWrongFromType       Rule = "wrong_from_type"
	RuleWrongToType         Rule = "wrong_to_type"
	RuleUnknownProperty     Rule = "unknown_property"
	RuleWrongPropertyType   Rule = "wrong_property_type"
	RulePropertiesOnDelete  Rule = "properties_on_delete"
	RuleInvalidPropertyName Rule = "invalid_property_name"
	RuleTruncateImplicit    Rule = "truncate_implicit_type"
	RuleInvalidKeep         Rule = "invalid_keep"
)

// ErrNonConforming is wrapped by every *SchemaError: the mutation breaks the
// graph schema. It is permanent; the mutation belongs in the dead-letter topic.
var ErrNonConforming = errors.New("graph: mutation does not conform to schema")

// SchemaError says which rule a mutation broke.
type SchemaError struct {
	Rule     Rule
	Op       Op
	Type     string // node or edge type concerned, when known
	Property string // property concerned, when the rule is about one
	Detail   string
}

func (e *SchemaError) Error() string {
	var b strings.Builder
	b.WriteString("graph: schema: ")
	b.WriteString(string(e.Rule))
	b.WriteString(": ")
	b.WriteString(e.Op.String())
	if e.Type != "" {
		b.WriteString(" ")
		b.WriteString(e.Type)
	}
	if e.Property != "" {
		b.WriteString(" property ")
		b.WriteString(e.Property)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap makes every SchemaError match ErrNonConforming.
func (e *SchemaError) Unwrap() error { return ErrNonConforming }

var (
	minEventTime = time.Unix(0, 0).UTC()
	maxEventTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// Check validates m against the schema and normalises it in place: event time
// is truncated to microseconds (the precision every backend keeps) and made
// UTC; property values are converted to the declared type where that loses
// nothing (an integral float64 or json.Number to int64 for an int property, any
// number to float64 for a float property); null values are dropped, since an
// upsert replaces the whole property set and absent means null; edge
// mutations get TTL from their edge type, node mutations a zero TTL. When
// m.Props needs changing a new map is assigned, so a map shared between
// mutations is never modified. Errors are *SchemaError.
func (s *Schema) Check(m *Mutation) error {
	fail := func(r Rule, typ, prop, format string, args ...any) error {
		return &SchemaError{Rule: r, Op: m.Op, Type: typ, Property: prop, Detail: fmt.Sprintf(format, args...)}
	}
	if m.EventTime.IsZero() {
		return fail(RuleMissingEventTime, "", "", "event time is zero")
	}
	if m.EventTime.Before(minEventTime) || m.EventTime.After(maxEventTime) {
		return fail(RuleEventTimeRange, "", "", "event time %s outside 1970..9999", m.EventTime.Format(time.RFC3339))
	}
	m.EventTime = m.EventTime.UTC().Truncate(time.Microsecond)
	var declared map[string]PropType
	var typ string
	if len(m.Keep) > 0 && m.Op != OpUpsertNode {
		return fail(RuleInvalidKeep, "", "", "only a node upsert keeps properties, not a %s", m.Op)
	}
	switch m.Op {
	case OpTruncateType:
		typ = m.Node.Type
		nt, ok := s.nodes[typ]
		if !ok {
			return fail(RuleUnknownNodeType, typ, "", "node type %q is not declared", typ)
		}
		if nt.Implicit {
			return fail(RuleTruncateImplicit, typ, "", "node type %q is implicit (edges create its nodes): it cannot be truncated", typ)
		}
		if m.Node.ID != "" {
			return fail(RuleUnknownOp, typ, "", "a truncate names a type, not a node (id %q)", m.Node.ID)
		}
		m.TTL = 0
		if len(m.Props) > 0 {
			return fail(RulePropertiesOnDelete, typ, "", "a truncate carries no properties")
		}
		return nil
	case OpUpsertNode, OpDeleteNode, OpPurgeNode:
		typ = m.Node.Type
		nt, ok := s.nodes[typ]
		if !ok {
			return fail(RuleUnknownNodeType, typ, "", "node type %q is not declared", typ)
		}
		if err := checkID(m.Node, "node", fail); err != nil {
			return err
		}
		declared = nt.Props
		m.TTL = 0
		if err := checkKeep(m, declared, typ, fail); err != nil {
			return err
		}
	case OpUpsertEdge, OpDeleteEdge:
		typ = m.Edge.Type
		et, ok := s.edges[typ]
		if !ok {
			return fail(RuleUnknownEdgeType, typ, "", "edge type %q is not declared", typ)
		}
		if !et.AllowsFrom(m.Edge.From.Type) {
			return fail(RuleWrongFromType, typ, "", "from node type %q, want one of %v", m.Edge.From.Type, et.From)
		}
		if !et.AllowsTo(m.Edge.To.Type) {
			return fail(RuleWrongToType, typ, "", "to node type %q, want one of %v", m.Edge.To.Type, et.To)
		}
		if err := checkID(m.Edge.From, "from", fail); err != nil {
			return err
		}
		if err := checkID(m.Edge.To, "to", fail); err != nil {
			return err
		}
		declared = et.Props
		m.TTL = et.TTL
	default:
		return fail(RuleUnknownOp, "", "", "op %d", uint8(m.Op))
	}
	if m.Op == OpDeleteNode || m.Op == OpDeleteEdge || m.Op == OpPurgeNode {
		if len(m.Props) > 0 {
			return fail(RulePropertiesOnDelete, typ, "", "a delete carries no properties")
		}
		return nil
	}
	return normaliseProps(m, declared, typ, fail)
}

// checkKeep checks m.Keep: declared names, none also in Props; it sorts and
// de-duplicates them (into a new slice when that changes anything).
func checkKeep(m *Mutation, declared map[string]PropType, typ string, fail func(Rule, string, string, string, ...any) error) error {
	if len(m.Keep) == 0 {
		m.Keep = nil
		return nil
	}
	for _, name := range m.Keep {
		if _, ok := declared[name]; !ok {
			return fail(RuleInvalidKeep, typ, name, "kept property %q is not declared", name)
		}
		if _, ok := m.Props[name]; ok {
			return fail(RuleInvalidKeep, typ, name, "property %q is both written and kept", name)
		}
	}
	if !slices.IsSorted(m.Keep) || len(slices.Compact(slices.Clone(m.Keep))) != len(m.Keep) {
		k := slices.Clone(m.Keep)
		slices.Sort(k)
		m.Keep = slices.Compact(k)
	}
	return nil
}

func checkID(k NodeKey, which string, fail func(Rule, string, string, string, ...any) error) error {
	if k.ID == "" {
		return fail(RuleEmptyID, k.Type, "", "%s id is empty", which)
	}
	if len(k.ID) > MaxIDLen {
		return fail(RuleIDTooLong, k.Type, "", "%s id is %d bytes, max %d", which, len(k.ID), MaxIDLen)
	}
	return nil
}

func normaliseProps(m *Mutation, declared map[string]PropType, typ string, fail func(Rule, string, string, string, ...any) error) error {
	var out Props
	changed := false
	for name, v := range m.Props {
		t, ok := declared[name]
		if !ok {
			return fail(RuleUnknownProperty, typ, name, "property %q is not declared", name)
		}
		if v == nil {
			changed = true
			continue
		}
		nv, ok := convertProp(t, v)
		if !ok {
			return fail(RuleWrongPropertyType, typ, name, "value %v (%T) is not a %s", v, v, t)
		}
		if !sameValue(nv, v) {
			changed = true
		}
		if out == nil {
			out = make(Props, len(m.Props))
		}
		out[name] = nv
	}
	if changed {
		if out == nil {
			out = Props{}
		}
		m.Props = out
	}
	return nil
}

// sameValue reports whether conversion kept v's dynamic type and value, so
// the original map can be kept as is.
func sameValue(nv, v any) bool {
	switch x := v.(type) {
	case string:
		y, ok := nv.(string)
		return ok && x == y
	case bool:
		return true
	case int64:
		y, ok := nv.(int64)
		return ok && x == y
	case float64:
		y, ok := nv.(float64)
		return ok && x == y
	}
	return false
}

func convertProp(t PropType, v any) (any, bool) {
	switch t {
	case PropString:
		s, ok := v.(string)
		return s, ok
	case PropBool:
		b, ok := v.(bool)
		return b, ok
	case PropTime:
		return CanonicalTime(v)
	case PropInt:
		return toInt64(v)
	case PropFloat:
		f, ok := toFloat64(v)
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		return f, true
	}
	return nil, false
}

func toInt64(v any) (any, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint:
		if uint64(x) > math.MaxInt64 {
			return nil, false
		}
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return nil, false
		}
		return int64(x), true
	case float32:
		return floatToInt(float64(x))
	case float64:
		return floatToInt(x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true
		}
		f, err := x.Float64()
		if err != nil {
			return nil, false
		}
		return floatToInt(f)
	}
	return nil, false
}

// floatToInt accepts only integral values that round-trip exactly; 2^63 is
// the first float64 above MaxInt64, so the upper bound is exclusive.
func floatToInt(f float64) (any, bool) {
	if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return nil, false
	}
	return int64(f), true
}

func toFloat64(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// CheckQuery validates an adjacency query against the schema: the edge type
// exists, the node's type can be on the queried side of it, Direction In is
// only asked of an edge type that keeps a reverse index, Direction and Order
// are known, Limit is positive and Since is not after Until. Errors wrap
// ErrInvalidQuery. Every backend calls it first, so they reject alike.
func (s *Schema) CheckQuery(q AdjacencyQuery) (*EdgeType, error) {
	et, ok := s.edges[q.EdgeType]
	if !ok {
		return nil, fmt.Errorf("%w: unknown edge type %q", ErrInvalidQuery, q.EdgeType)
	}
	if q.Node.ID == "" {
		return nil, fmt.Errorf("%w: empty node id", ErrInvalidQuery)
	}
	switch q.Direction {
	case Out:
		if !et.AllowsFrom(q.Node.Type) {
			return nil, fmt.Errorf("%w: edge type %q does not start at node type %q", ErrInvalidQuery, et.Name, q.Node.Type)
		}
	case In:
		if !et.Reverse {
			return nil, fmt.Errorf("%w: edge type %q keeps no reverse index; direction in is not available", ErrInvalidQuery, et.Name)
		}
		if !et.AllowsTo(q.Node.Type) {
			return nil, fmt.Errorf("%w: edge type %q does not end at node type %q", ErrInvalidQuery, et.Name, q.Node.Type)
		}
	default:
		return nil, fmt.Errorf("%w: unknown direction %s", ErrInvalidQuery, q.Direction)
	}
	if q.Order != OrderLatest && q.Order != OrderKey {
		return nil, fmt.Errorf("%w: unknown order %s", ErrInvalidQuery, q.Order)
	}
	if q.Limit <= 0 {
		return nil, fmt.Errorf("%w: limit %d must be positive", ErrInvalidQuery, q.Limit)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Since.After(q.Until) {
		return nil, fmt.Errorf("%w: since %s is after until %s", ErrInvalidQuery,
			q.Since.Format(time.RFC3339Nano), q.Until.Format(time.RFC3339Nano))
	}
	return et, nil
}

// DecodeNodeProps decodes properties stored with [EncodeProps] for a node of
// type nodeType, restoring declared types: JSON cannot tell 2.0 from 2, so
// [DecodeProps] returns int64 for an integral float, which this turns back
// into float64 for a float property. Backends read properties through it.
func (s *Schema) DecodeNodeProps(nodeType string, b []byte) (Props, error) {
	var declared map[string]PropType
	if nt, ok := s.nodes[nodeType]; ok {
		declared = nt.Props
	}
	return decodeTyped(declared, b)
}

// DecodeEdgeProps is [Schema.DecodeNodeProps] for an edge of type edgeType.
func (s *Schema) DecodeEdgeProps(edgeType string, b []byte) (Props, error) {
	var declared map[string]PropType
	if et, ok := s.edges[edgeType]; ok {
		declared = et.Props
	}
	return decodeTyped(declared, b)
}

func decodeTyped(declared map[string]PropType, b []byte) (Props, error) {
	p, err := DecodeProps(b)
	if err != nil {
		return nil, err
	}
	for k, v := range p {
		if i, ok := v.(int64); ok && declared[k] == PropFloat {
			p[k] = float64(i)
		}
	}
	return p, nil
}
