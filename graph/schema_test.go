package graph_test

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/schemas"
)

func TestLoadSchemaValid(t *testing.T) {
	s, err := graph.LoadSchema(os.DirFS("testdata/schema"), "valid")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if got, want := s.NodeTypes(), []string{"city", "company", "person"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("node types %v, want %v", got, want)
	}
	if got, want := s.EdgeTypes(), []string{"lives_in", "located_in", "works_at"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("edge types %v, want %v", got, want)
	}
	person, _ := s.NodeType("person")
	if city, _ := s.NodeType("city"); !city.Implicit || person.Implicit {
		t.Fatalf("implicit: city %v, person %v; want true, false", city.Implicit, person.Implicit)
	}
	wantProps := map[string]graph.PropType{"name": graph.PropString, "age": graph.PropInt, "height_m": graph.PropFloat, "verified": graph.PropBool}
	if !reflect.DeepEqual(person.Props, wantProps) || person.File != "valid/nodes.yml" || person.Line != 3 {
		t.Fatalf("person: %+v", person)
	}
	cases := []struct {
		name     string
		from, to []string
		ttl      time.Duration
		reverse  bool
	}{
		{"lives_in", []string{"person"}, []string{"city"}, 0, true},
		{"works_at", []string{"person"}, []string{"company"}, 36 * time.Hour, false},
		{"located_in", []string{"company", "person"}, []string{"city"}, 90 * time.Second, false},
	}
	for _, c := range cases {
		et, ok := s.EdgeType(c.name)
		if !ok {
			t.Fatalf("edge type %s missing", c.name)
		}
		if !reflect.DeepEqual(et.From, c.from) || !reflect.DeepEqual(et.To, c.to) || et.TTL != c.ttl || et.Reverse != c.reverse {
			t.Fatalf("edge type %s: %+v, want from %v to %v ttl %s reverse %v", c.name, et, c.from, c.to, c.ttl, c.reverse)
		}
	}
	if _, ok := s.EdgeType("nope"); ok {
		t.Fatal("unknown edge type found")
	}
}

// TestShippedGraphSchema loads the schema the binary embeds.
func TestShippedGraphSchema(t *testing.T) {
	s, err := graph.LoadSchema(schemas.GraphSchema(), ".")
	if err != nil {
		t.Fatalf("load shipped schema: %v", err)
	}
	imp, ok := s.EdgeType("impressed")
	if !ok || imp.TTL != 7*24*time.Hour+time.Hour || !imp.AllowsTo("campaign") || !imp.AllowsTo("creative") {
		t.Fatalf("impressed: %+v", imp)
	}
	for _, name := range []string{"has_profile", "uses_device", "subscribes", "logged_in", "runs", "identifies"} {
		if _, ok := s.EdgeType(name); !ok {
			t.Fatalf("edge type %s missing", name)
		}
	}
}

func TestLoadSchemaErrors(t *testing.T) {
	const nodes = "node_types:\n  a:\n    properties:\n      x: int\n  b: {}\n"
	cases := []struct {
		name  string
		files map[string]string
		file  string
		line  int
		field string
		msg   string
	}{
		{"unknown top-level field", map[string]string{"s.yaml": nodes + "edges:\n  e: {}\n"},
			"d/s.yaml", 6, "edges", "unknown field"},
		{"unknown edge field", map[string]string{"s.yaml": nodes + "edge_types:\n  e:\n    from: a\n    to: b\n    tll: 1h\n"},
			"d/s.yaml", 10, "edge_types.e.tll", "unknown field"},
		{"unknown node field", map[string]string{"s.yaml": "node_types:\n  a:\n    props: {}\n"},
			"d/s.yaml", 3, "node_types.a.props", "unknown field"},
		{"unknown property type", map[string]string{"s.yaml": "node_types:\n  a:\n    properties:\n      x: integer\n"},
			"d/s.yaml", 4, "node_types.a.properties.x", `unknown type "integer"`},
		{"bad node type name", map[string]string{"s.yaml": "node_types:\n  Account: {}\n"},
			"d/s.yaml", 2, "node_types.Account", "must match"},
		{"bad property name", map[string]string{"s.yaml": "node_types:\n  a:\n    properties:\n      x-y: int\n"},
			"d/s.yaml", 4, "node_types.a.properties.x-y", "must match"},
		{"missing from", map[string]string{"s.yaml": nodes + "edge_types:\n  e:\n    to: b\n"},
			"d/s.yaml", 7, "edge_types.e.from", "required"},
		{"unknown to node type", map[string]string{"s.yaml": nodes + "edge_types:\n  e:\n    from: a\n    to: [b, c]\n"},
			"d/s.yaml", 7, "edge_types.e.to", `unknown node type "c"`},
		{"empty to list", map[string]string{"s.yaml": nodes + "edge_types:\n  e:\n    from: a\n    to: []\n"},
			"d/s.yaml", 9, "edge_types.e.to", "at least one"},
		{"bad ttl", map[string]string{"s.yaml": nodes + "edge_types:\n  e:\n    from: a\n    to: b\n    ttl: 7x\n"},
			"d/s.yaml", 10, "edge_types.e.ttl", "invalid duration"},
		{"sub-second ttl", map[string]string{"s.yaml": nodes + "edge_types:\n  e:\n    from: a\n    to: b\n    ttl: 1500ms\n"},
			"d/s.yaml", 10, "edge_types.e.ttl", "whole seconds"},
		{"negative ttl", map[string]string{"s.yaml": nodes + "edge_types:\n  e:\n    from: a\n    to: b\n    ttl: -1h\n"},
			"d/s.yaml", 10, "edge_types.e.ttl", "negative"},
		{"ttl too long", map[string]string{"s.yaml": nodes + "edge_types:\n  e:\n    from: a\n    to: b\n    ttl: 7400d\n"},
			"d/s.yaml", 10, "edge_types.e.ttl", "at most"},
		{"implicit not bool", map[string]string{"s.yaml": "node_types:\n  a:\n    implicit: sometimes\n"},
			"d/s.yaml", 3, "node_types.a.implicit", "true or false"},
		{"reverse not bool", map[string]string{"s.yaml": nodes + "edge_types:\n  e:\n    from: a\n    to: b\n    reverse: yes please\n"},
			"d/s.yaml", 10, "edge_types.e.reverse", "true or false"},
		{"unknown multiplicity", map[string]string{"s.yaml": nodes + "edge_types:\n  e:\n    from: a\n    to: b\n    multiplicity: many\n"},
			"d/s.yaml", 10, "edge_types.e.multiplicity", `"many" is not one of simple, many2one, one2many, one2one`},
		{"multi multiplicity", map[string]string{"s.yaml": nodes + "edge_types:\n  e:\n    from: a\n    to: b\n    multiplicity: multi\n"},
			"d/s.yaml", 10, "edge_types.e.multiplicity", "multi is not available"},
		{"multiplicity not a scalar", map[string]string{"s.yaml": nodes + "edge_types:\n  e:\n    from: a\n    to: b\n    multiplicity: [one]\n"},
			"d/s.yaml", 10, "edge_types.e.multiplicity", "must be one of"},
		{"duplicate key", map[string]string{"s.yaml": "node_types:\n  a: {}\n  a: {}\n"},
			"d/s.yaml", 3, "node_types.a", "duplicate key"},
		{"node type in two files", map[string]string{"1.yaml": nodes, "2.yaml": "node_types:\n  b: {}\n"},
			"d/2.yaml", 2, "node_types.b", "already declared at d/1.yaml:5"},
		{"yaml syntax", map[string]string{"s.yaml": "node_types:\n  a: [\n"},
			"d/s.yaml", 2, "", "yaml:"},
		{"not a mapping", map[string]string{"s.yaml": "- a\n- b\n"},
			"d/s.yaml", 1, "", "must be a mapping"},
		{"empty file", map[string]string{"s.yaml": ""},
			"d/s.yaml", 0, "", "empty file"},
		{"no node types", map[string]string{"s.yaml": "edge_types: {}\n"},
			"", 0, "node_types", "no node types"},
		{"no yaml files", map[string]string{"s.txt": nodes},
			"d", 0, "", "no *.yaml files"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, body := range c.files {
				fsys["d/"+name] = &fstest.MapFile{Data: []byte(body)}
			}
			_, err := graph.LoadSchema(fsys, "d")
			var le *graph.LoadError
			if !errors.As(err, &le) || !errors.Is(err, graph.ErrInvalidSchema) {
				t.Fatalf("got %v, want a *graph.LoadError", err)
			}
			if le.File != c.file || le.Line != c.line || le.Field != c.field || !strings.Contains(le.Msg, c.msg) {
				t.Fatalf("got file %q line %d field %q msg %q\nwant file %q line %d field %q msg containing %q",
					le.File, le.Line, le.Field, le.Msg, c.file, c.line, c.field, c.msg)
			}
			if !strings.Contains(err.Error(), c.file) {
				t.Fatalf("message %q does not name the file", err)
			}
		})
	}
}

func TestMultiplicityConstrains(t *testing.T) {
	const doc = `
node_types: {a: {}, b: {}}
edge_types:
  s: {from: a, to: b}
  m2o: {from: a, to: b, multiplicity: many2one}
  o2m: {from: a, to: b, multiplicity: one2many}
  o2o: {from: a, to: b, multiplicity: one2one}
`
	s, err := graph.LoadSchema(fstest.MapFS{"d/s.yaml": {Data: []byte(doc)}}, "d")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][2]bool{"s": {false, false}, "m2o": {true, false}, "o2m": {false, true}, "o2o": {true, true}} {
		et, _ := s.EdgeType(name)
		if got := [2]bool{et.Constrains(graph.Out), et.Constrains(graph.In)}; got != want {
			t.Errorf("%s (%s): constrains out/in %v, want %v", name, et.Multiplicity, got, want)
		}
	}
	if et, _ := s.EdgeType("s"); et.Multiplicity != graph.MultiplicitySimple {
		t.Errorf("default multiplicity %q", et.Multiplicity)
	}
}

func TestLoadSchemaMissingDir(t *testing.T) {
	_, err := graph.LoadSchema(fstest.MapFS{}, "nowhere")
	if err == nil || errors.Is(err, graph.ErrInvalidSchema) {
		t.Fatalf("got %v, want a read error that is not ErrInvalidSchema", err)
	}
}

func TestNewSchemaErrors(t *testing.T) {
	person := graph.NodeType{Name: "person", Props: map[string]graph.PropType{"n": graph.PropString}}
	cases := []struct {
		name  string
		nodes []graph.NodeType
		edges []graph.EdgeType
		msg   string
	}{
		{"invalid prop type", []graph.NodeType{{Name: "a", Props: map[string]graph.PropType{"x": 9}}}, nil, "invalid type"},
		{"edge without from", []graph.NodeType{person}, []graph.EdgeType{{Name: "e", To: []string{"person"}}}, "at least one"},
		{"ttl not whole seconds", []graph.NodeType{person}, []graph.EdgeType{{Name: "e", From: []string{"person"}, To: []string{"person"}, TTL: time.Millisecond}}, "whole seconds"},
		{"duplicate edge", []graph.NodeType{person}, []graph.EdgeType{
			{Name: "e", From: []string{"person"}, To: []string{"person"}},
			{Name: "e", From: []string{"person"}, To: []string{"person"}}}, "already declared"},
		{"long name", []graph.NodeType{{Name: strings.Repeat("a", graph.MaxNameLen+1)}}, nil, "longer than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := graph.NewSchema(c.nodes, c.edges)
			if !errors.Is(err, graph.ErrInvalidSchema) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want ErrInvalidSchema containing %q", err, c.msg)
			}
		})
	}
}

func TestParseTTL(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"0", 0, ""},
		{"0d", 0, ""},
		{"90s", 90 * time.Second, ""},
		{"7d1h", 7*24*time.Hour + time.Hour, ""},
		{"2d", 48 * time.Hour, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"", 0, "empty"},
		{"d", 0, "invalid"},
		{"1.5d", 0, "invalid"},
		{"3w", 0, "invalid"},
		{"1s500ms", 0, "whole seconds"},
	}
	for _, c := range cases {
		got, err := graph.ParseTTL(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("ParseTTL(%q) = %v, %v; want error containing %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Fatalf("ParseTTL(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func testSchema(t *testing.T) *graph.Schema {
	t.Helper()
	s, err := graph.LoadSchema(os.DirFS("testdata/schema"), "valid")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheckNormalises(t *testing.T) {
	s := testSchema(t)
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.FixedZone("x", 3600))
	shared := graph.Props{"name": "Ann", "age": 41.0, "height_m": int64(2), "verified": nil}
	m := graph.Mutation{Op: graph.OpUpsertNode, Node: graph.NodeKey{Type: "person", ID: "p1"}, Props: shared, EventTime: at, TTL: time.Hour}
	if err := s.Check(&m); err != nil {
		t.Fatal(err)
	}
	want := graph.Props{"name": "Ann", "age": int64(41), "height_m": 2.0}
	if !reflect.DeepEqual(m.Props, want) {
		t.Fatalf("props %#v, want %#v", m.Props, want)
	}
	if _, ok := shared["verified"]; !ok || shared["age"] != 41.0 {
		t.Fatalf("the caller's map was modified: %#v", shared)
	}
	if !m.EventTime.Equal(at.Truncate(time.Microsecond)) || m.EventTime.Location() != time.UTC || m.TTL != 0 {
		t.Fatalf("event time %v ttl %v", m.EventTime, m.TTL)
	}
	e := graph.Mutation{Op: graph.OpUpsertEdge, EventTime: at,
		Edge:  graph.EdgeKey{Type: "works_at", From: graph.NodeKey{Type: "person", ID: "p"}, To: graph.NodeKey{Type: "company", ID: "c"}},
		Props: graph.Props{"since_year": json.Number("2020"), "title": "cto"}}
	if err := s.Check(&e); err != nil {
		t.Fatal(err)
	}
	if e.TTL != 36*time.Hour || e.Props["since_year"] != int64(2020) {
		t.Fatalf("edge after check: %+v", e)
	}
	// Already-normal props keep their map.
	p := graph.Props{"name": "x"}
	n := graph.Mutation{Op: graph.OpUpsertNode, Node: graph.NodeKey{Type: "city", ID: "c"}, Props: p, EventTime: at}
	if err := s.Check(&n); err != nil || reflect.ValueOf(n.Props).Pointer() != reflect.ValueOf(p).Pointer() {
		t.Fatalf("normal props reallocated or rejected: %v", err)
	}
}

func TestCheckRejects(t *testing.T) {
	s := testSchema(t)
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	person := graph.NodeKey{Type: "person", ID: "p"}
	city := graph.NodeKey{Type: "city", ID: "c"}
	node := func(k graph.NodeKey, p graph.Props) graph.Mutation {
		return graph.Mutation{Op: graph.OpUpsertNode, Node: k, Props: p, EventTime: at}
	}
	edge := func(typ string, from, to graph.NodeKey, p graph.Props) graph.Mutation {
		return graph.Mutation{Op: graph.OpUpsertEdge, Edge: graph.EdgeKey{Type: typ, From: from, To: to}, Props: p, EventTime: at}
	}
	cases := []struct {
		name string
		m    graph.Mutation
		rule graph.Rule
		prop string
	}{
		{"unknown op", graph.Mutation{Op: 7, Node: person, EventTime: at}, graph.RuleUnknownOp, ""},
		{"zero event time", graph.Mutation{Op: graph.OpUpsertNode, Node: person}, graph.RuleMissingEventTime, ""},
		{"event time before 1970", graph.Mutation{Op: graph.OpDeleteNode, Node: person, EventTime: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)}, graph.RuleEventTimeRange, ""},
		{"unknown node type", node(graph.NodeKey{Type: "planet", ID: "x"}, nil), graph.RuleUnknownNodeType, ""},
		{"empty id", node(graph.NodeKey{Type: "person"}, nil), graph.RuleEmptyID, ""},
		{"id too long", node(graph.NodeKey{Type: "person", ID: strings.Repeat("x", graph.MaxIDLen+1)}, nil), graph.RuleIDTooLong, ""},
		{"unknown property", node(person, graph.Props{"shoe": "9"}), graph.RuleUnknownProperty, "shoe"},
		{"string for int", node(person, graph.Props{"age": "41"}), graph.RuleWrongPropertyType, "age"},
		{"fraction for int", node(person, graph.Props{"age": 41.5}), graph.RuleWrongPropertyType, "age"},
		{"int overflow", node(person, graph.Props{"age": uint64(math.MaxUint64)}), graph.RuleWrongPropertyType, "age"},
		{"float out of int range", node(person, graph.Props{"age": 1e19}), graph.RuleWrongPropertyType, "age"},
		{"NaN float", node(person, graph.Props{"height_m": math.NaN()}), graph.RuleWrongPropertyType, "height_m"},
		{"infinite float", node(person, graph.Props{"height_m": math.Inf(1)}), graph.RuleWrongPropertyType, "height_m"},
		{"int for bool", node(person, graph.Props{"verified": 1}), graph.RuleWrongPropertyType, "verified"},
		{"bool for string", node(person, graph.Props{"name": true}), graph.RuleWrongPropertyType, "name"},
		{"nested value", node(person, graph.Props{"name": []string{"a"}}), graph.RuleWrongPropertyType, "name"},
		{"unknown edge type", edge("knows", person, person, nil), graph.RuleUnknownEdgeType, ""},
		{"wrong from type", edge("lives_in", city, city, nil), graph.RuleWrongFromType, ""},
		{"wrong to type", edge("lives_in", person, person, nil), graph.RuleWrongToType, ""},
		{"empty to id", edge("lives_in", person, graph.NodeKey{Type: "city"}, nil), graph.RuleEmptyID, ""},
		{"edge property not declared", edge("lives_in", person, city, graph.Props{"since": int64(1)}), graph.RuleUnknownProperty, "since"},
		{"props on edge delete", graph.Mutation{Op: graph.OpDeleteEdge, Edge: graph.EdgeKey{Type: "lives_in", From: person, To: city}, EventTime: at, Props: graph.Props{"x": 1}}, graph.RulePropertiesOnDelete, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.m
			err := s.Check(&m)
			var se *graph.SchemaError
			if !errors.As(err, &se) || !errors.Is(err, graph.ErrNonConforming) {
				t.Fatalf("got %v, want *graph.SchemaError", err)
			}
			if se.Rule != c.rule || se.Property != c.prop {
				t.Fatalf("rule %s property %q, want %s %q (%v)", se.Rule, se.Property, c.rule, c.prop, err)
			}
			if !strings.Contains(err.Error(), string(c.rule)) {
				t.Fatalf("message %q does not name the rule", err)
			}
		})
	}
}

func TestCheckQuery(t *testing.T) {
	s := testSchema(t)
	p := graph.NodeKey{Type: "person", ID: "p"}
	c := graph.NodeKey{Type: "city", ID: "c"}
	ok := graph.AdjacencyQuery{Node: c, EdgeType: "lives_in", Direction: graph.In, Order: graph.OrderLatest, Limit: 1}
	if et, err := s.CheckQuery(ok); err != nil || et.Name != "lives_in" {
		t.Fatalf("valid query: %v", err)
	}
	bad := []graph.AdjacencyQuery{
		{Node: c, EdgeType: "located_in", Direction: graph.In, Order: graph.OrderKey, Limit: 1}, // no reverse index
		{Node: p, EdgeType: "lives_in", Direction: graph.In, Order: graph.OrderKey, Limit: 1},   // person is never the to end
		{Node: c, EdgeType: "lives_in", Direction: graph.Out, Order: graph.OrderKey, Limit: 1},  // city is never the from end
		{Node: p, EdgeType: "lives_in", Direction: 3, Order: graph.OrderKey, Limit: 1},
		{Node: p, EdgeType: "lives_in", Direction: graph.Out, Order: 3, Limit: 1},
		{Node: p, EdgeType: "lives_in", Direction: graph.Out, Order: graph.OrderKey},
		{Node: p, EdgeType: "x", Direction: graph.Out, Order: graph.OrderKey, Limit: 1},
		{Node: graph.NodeKey{Type: "person"}, EdgeType: "lives_in", Direction: graph.Out, Order: graph.OrderKey, Limit: 1},
		{Node: p, EdgeType: "lives_in", Direction: graph.Out, Order: graph.OrderKey, Limit: 1, Since: time.Unix(10, 0), Until: time.Unix(9, 0)},
	}
	for i, q := range bad {
		if _, err := s.CheckQuery(q); !errors.Is(err, graph.ErrInvalidQuery) {
			t.Fatalf("query %d: got %v, want ErrInvalidQuery", i, err)
		}
	}
}

func TestDecodeTypedProps(t *testing.T) {
	s := testSchema(t)
	enc, err := graph.EncodeProps(graph.Props{"height_m": 2.0, "age": int64(3), "name": "n"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.DecodeNodeProps("person", enc)
	if err != nil {
		t.Fatal(err)
	}
	if want := (graph.Props{"height_m": 2.0, "age": int64(3), "name": "n"}); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
	if _, err := s.DecodeEdgeProps("works_at", []byte("{bad")); err == nil {
		t.Fatal("malformed props decoded")
	}
}

func TestQueryFingerprint(t *testing.T) {
	base := graph.AdjacencyQuery{Node: graph.NodeKey{Type: "a", ID: "b"}, EdgeType: "e", Direction: graph.Out, Order: graph.OrderKey, Limit: 5}
	variants := []graph.AdjacencyQuery{base, base, base, base, base, base}
	variants[0].Node.ID = "c"
	variants[1].EdgeType = "f"
	variants[2].Direction = graph.In
	variants[3].Order = graph.OrderLatest
	variants[4].Since = time.Unix(0, 0)
	variants[5].Until = time.Unix(1, 0)
	fp := graph.QueryFingerprint(base)
	for i, v := range variants {
		if graph.QueryFingerprint(v) == fp {
			t.Fatalf("variant %d has the base fingerprint", i)
		}
	}
	same := base
	same.Limit, same.Cursor = 99, []byte("x")
	if graph.QueryFingerprint(same) != fp {
		t.Fatal("limit or cursor changed the fingerprint")
	}
	// Type/ID boundaries are length-prefixed, so shifting bytes between them differs.
	shifted := base
	shifted.Node = graph.NodeKey{Type: "ab", ID: ""}
	if graph.QueryFingerprint(shifted) == fp {
		t.Fatal("shifted node key collides")
	}
}

// TestTimeProperties: a time property is stored as canonical text (UTC,
// six fraction digits) whatever form and offset the value came in; a
// value that is not a time is wrong_property_type.
func TestTimeProperties(t *testing.T) {
	s, err := graph.NewSchema([]graph.NodeType{{Name: "a", Props: map[string]graph.PropType{"at": graph.PropTime}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   any
		want string
	}{
		{"2026-11-25T10:00:00Z", "2026-11-25T10:00:00.000000Z"},
		{"2026-11-25T10:00:00.000000Z", "2026-11-25T10:00:00.000000Z"},
		{"2026-11-25T11:30:00.123456789+01:30", "2026-11-25T10:00:00.123456Z"},
		{time.Date(2026, 11, 25, 19, 0, 0, 500, time.FixedZone("KST", 9*3600)), "2026-11-25T10:00:00.000000Z"},
	} {
		m := graph.Mutation{Op: graph.OpUpsertNode, Node: graph.NodeKey{Type: "a", ID: "1"}, EventTime: time.Now(), Props: graph.Props{"at": c.in}}
		if err := s.Check(&m); err != nil || m.Props["at"] != c.want {
			t.Errorf("%v: %v, %v; want %s", c.in, m.Props["at"], err, c.want)
		}
	}
	for _, bad := range []any{"yesterday", "2026-11-25 10:00:00", int64(1764064800), true} {
		m := graph.Mutation{Op: graph.OpUpsertNode, Node: graph.NodeKey{Type: "a", ID: "1"}, EventTime: time.Now(), Props: graph.Props{"at": bad}}
		var se *graph.SchemaError
		if err := s.Check(&m); !errors.As(err, &se) || se.Rule != graph.RuleWrongPropertyType || se.Property != "at" {
			t.Errorf("%v (%T): %v; want wrong_property_type on at", bad, bad, err)
		}
	}
	if typ, _ := s.NodeType("a"); typ.Props["at"].String() != "time" {
		t.Errorf("type name %q", typ.Props["at"])
	}
}
