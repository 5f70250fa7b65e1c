package mapping_test

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"go.uber.org/goleak"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/mapping"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testSchemaYAML is a small graph schema the unit tests map to, independent
// of the demo vertical so that the demo can change without breaking them.
const testSchemaYAML = `
node_types:
  account:
    properties:
      country: string
      age: int
      score: float
      vip: bool
      seen_at: string
      seen_us: int
  title:
    properties:
      name: string
  device: {}
edge_types:
  watched:
    from: account
    to: title
    ttl: 1h
    properties:
      event_id: string
      n: int
  owns:
    from: account
    to: device
`

func testSchema(t testing.TB) *graph.Schema {
	t.Helper()
	s, err := graph.LoadSchema(fstest.MapFS{"s.yaml": {Data: []byte(testSchemaYAML)}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testLookup() mapping.MapLookup {
	return mapping.MapLookup{
		"titles": {
			"t1": {"name": "One", "year": int64(2001)},
			"7":  {"name": "Seven"},
		},
	}
}

// files builds an fs.FS of mapping files.
func files(kv ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := 0; i+1 < len(kv); i += 2 {
		fsys[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1])}
	}
	return fsys
}

// okRule is a valid rule; error cases change one thing in it.
const okRule = `
rules:
  - name: acc
    select: {topic: t.accounts}
    emit:
      nodes:
        - type: account
          id: key
`

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		fsys  fstest.MapFS
		file  string
		line  int
		rule  string
		field string
		msg   string
	}{
		{name: "no files", fsys: files("README.md", "x"), file: ".", msg: "no *.yaml mapping files"},
		{name: "empty file", fsys: files("a.yaml", ""), file: "a.yaml", msg: "empty file"},
		{name: "yaml syntax", fsys: files("a.yaml", "rules:\n  - name: [x\n"), file: "a.yaml", msg: "yaml: line 1: did not find expected ','"},
		{name: "unknown top-level field", fsys: files("a.yaml", "rulez: []\n"), file: "a.yaml", line: 1, field: "rulez", msg: "unknown field"},
		{name: "rules missing", fsys: files("a.yaml", "topics: {}\n"), file: "a.yaml", line: 1, field: "rules", msg: "required"},
		{name: "rules empty", fsys: files("a.yaml", "rules: []\n"), file: "a.yaml", line: 1, field: "rules", msg: "non-empty list"},
		{name: "rules not a list", fsys: files("a.yaml", "rules: {a: b}\n"), file: "a.yaml", line: 1, field: "rules", msg: "non-empty list"},
		{name: "rule not a mapping", fsys: files("a.yaml", "rules:\n  - just text\n"), file: "a.yaml", line: 2, field: "rules[0]", msg: "must be a mapping"},
		{name: "rule unknown field", fsys: files("a.yaml", "rules:\n  - name: a\n    emits: {}\n"), file: "a.yaml", line: 3, field: "rules[0].emits", msg: "unknown field"},
		{name: "rule without name", fsys: files("a.yaml", "rules:\n  - select: {topic: t}\n"), file: "a.yaml", line: 2, field: "rules[0].name", msg: "required"},
		{name: "rule name invalid", fsys: files("a.yaml", "rules:\n  - name: Bad-Name\n"), file: "a.yaml", line: 2, field: "rules[0].name", msg: "must match"},
		{name: "duplicate key", fsys: files("a.yaml", "rules:\n  - name: a\n    name: b\n"), file: "a.yaml", line: 3, field: "rules[0].name", msg: "duplicate key (first at line 2)"},
		{name: "rule name in two files", fsys: files("a.yaml", okRule, "b.yaml", okRule), file: "b.yaml", line: 3, field: "rules[0].name", msg: `rule "acc" already declared at a.yaml:3`},
		{name: "select missing", fsys: files("a.yaml", "rules:\n  - name: a\n    emit: {}\n"), file: "a.yaml", line: 2, rule: "a", field: "select", msg: "required"},
		{name: "select topic missing", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {ops: [create]}\n"), file: "a.yaml", line: 3, rule: "a", field: "select.topic", msg: "required"},
		{name: "select topic not a value", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: [x]}\n"), file: "a.yaml", line: 3, rule: "a", field: "select.topic", msg: "must be a value"},
		{name: "op tombstone", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t, ops: [tombstone]}\n"), file: "a.yaml", line: 3, rule: "a", field: "select.ops[0]", msg: "tombstones are never mapped"},
		{name: "op twice", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t, ops: [create, create]}\n"), file: "a.yaml", line: 3, rule: "a", field: "select.ops[1]", msg: "listed twice"},
		{name: "ops empty", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t, ops: []}\n"), file: "a.yaml", line: 3, rule: "a", field: "select.ops", msg: "non-empty list of ops"},
		{name: "when syntax", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t, when: 'after.x =='}\n"), file: "a.yaml", line: 3, rule: "a", field: "select.when", msg: "expression"},
		{name: "when not bool", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t, when: '1 + 1'}\n"), file: "a.yaml", line: 3, rule: "a", field: "select.when", msg: "bool"},
		{name: "when empty", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t, when: '  '}\n"), file: "a.yaml", line: 3, rule: "a", field: "select.when", msg: "empty expression"},
		{name: "unknown variable", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t, when: 'afterr.x == 1'}\n"), file: "a.yaml", line: 3, rule: "a", field: "select.when", msg: "unknown name afterr"},
		{name: "now disabled", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t, when: 'now() > event_time'}\n"), file: "a.yaml", line: 3, rule: "a", field: "select.when", msg: "now"},
		{name: "when reads join", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t, when: 'join.t != nil'}\n    emit: {}\n"), file: "a.yaml", line: 3, rule: "a", field: "select.when", msg: "reads join.t but no join is visible here"},
		{name: "joins not a list", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    joins: {name: x}\n"), file: "a.yaml", line: 4, rule: "a", field: "joins", msg: "must be a list"},
		{name: "join field missing", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    joins:\n      - {name: t, cache: titles, key: key}\n"), file: "a.yaml", line: 5, rule: "a", field: "joins[0].on_miss", msg: "required"},
		{name: "join unknown field", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    joins:\n      - {name: t, cache: titles, key: key, on_miss: pass, default: 1}\n"), file: "a.yaml", line: 5, rule: "a", field: "joins[0].default", msg: "unknown field"},
		{name: "join name twice", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    joins:\n      - {name: t, cache: titles, key: key, on_miss: pass}\n      - {name: t, cache: titles, key: key, on_miss: pass}\n"), file: "a.yaml", line: 6, rule: "a", field: "joins[1].name", msg: "declared twice"},
		{name: "join unknown cache", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    joins:\n      - {name: t, cache: movies, key: key, on_miss: pass}\n"), file: "a.yaml", line: 5, rule: "a", field: "joins[0].cache", msg: `no enrichment cache "movies"`},
		{name: "join bad on_miss", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    joins:\n      - {name: t, cache: titles, key: key, on_miss: retry}\n"), file: "a.yaml", line: 5, rule: "a", field: "joins[0].on_miss", msg: `"retry" is not one of pass, dead_letter`},
		{name: "join key syntax", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    joins:\n      - {name: t, cache: titles, key: 'attrs.', on_miss: pass}\n"), file: "a.yaml", line: 5, rule: "a", field: "joins[0].key", msg: "expression"},
		{name: "join key reads join", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    joins:\n      - {name: t, cache: titles, key: 'join.t.id', on_miss: pass}\n"), file: "a.yaml", line: 5, rule: "a", field: "joins[0].key", msg: "reads join.t"},
		{name: "too many joins", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    joins:\n"+strings.Repeat("      - {name: t, cache: titles, key: key, on_miss: pass}\n", 9)), file: "a.yaml", line: 5, rule: "a", field: "joins", msg: "at most 8"},
		{name: "emit missing", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n"), file: "a.yaml", line: 2, rule: "a", field: "emit", msg: "required"},
		{name: "emit nothing", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit: {nodes: []}\n"), file: "a.yaml", line: 4, rule: "a", field: "emit", msg: "at least one node or edge"},
		{name: "emit unknown field", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit: {vertices: []}\n"), file: "a.yaml", line: 4, rule: "a", field: "emit.vertices", msg: "unknown field"},
		{name: "nodes not a list", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit: {nodes: {type: account}}\n"), file: "a.yaml", line: 4, rule: "a", field: "emit.nodes", msg: "must be a list"},
		{name: "unknown node type", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      nodes:\n        - {type: acount, id: key}\n"), file: "a.yaml", line: 6, rule: "a", field: "emit.nodes[0].type", msg: `node type "acount" is not declared`},
		{name: "node type missing", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      nodes:\n        - {id: key}\n"), file: "a.yaml", line: 6, rule: "a", field: "emit.nodes[0].type", msg: "required"},
		{name: "node id missing", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      nodes:\n        - {type: account}\n"), file: "a.yaml", line: 6, rule: "a", field: "emit.nodes[0].id", msg: "required"},
		{name: "node id syntax", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      nodes:\n        - {type: account, id: 'key +'}\n"), file: "a.yaml", line: 6, rule: "a", field: "emit.nodes[0].id", msg: "expression"},
		{name: "undeclared property", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      nodes:\n        - type: account\n          id: key\n          props:\n            colour: after.colour\n"), file: "a.yaml", line: 9, rule: "a", field: "emit.nodes[0].props.colour", msg: `property "colour" is not declared for node type account`},
		{name: "props not a mapping", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      nodes:\n        - {type: account, id: key, props: [country]}\n"), file: "a.yaml", line: 6, rule: "a", field: "emit.nodes[0].props", msg: "must be a mapping"},
		{name: "property expression", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      nodes:\n        - type: account\n          id: key\n          props:\n            country: 'after.country +* 1'\n"), file: "a.yaml", line: 9, rule: "a", field: "emit.nodes[0].props.country", msg: "expression"},
		{name: "property reads undeclared join", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    joins:\n      - {name: title, cache: titles, key: key, on_miss: pass}\n    emit:\n      edges:\n        - type: watched\n          from: {type: account, id: key}\n          to: {type: title, id: key}\n          props:\n            event_id: join.movie.id\n"), file: "a.yaml", line: 12, rule: "a", field: "emit.edges[0].props.event_id", msg: "reads join.movie; the rule's joins are [title]"},
		{name: "delete with props", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      nodes:\n        - type: account\n          id: key\n          delete: true\n          props: {country: after.country}\n"), file: "a.yaml", line: 9, rule: "a", field: "emit.nodes[0].props", msg: "a delete carries no properties"},
		{name: "delete not bool", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      nodes:\n        - {type: account, id: key, delete: 'yes please'}\n"), file: "a.yaml", line: 6, rule: "a", field: "emit.nodes[0].delete", msg: "must be true or false"},
		{name: "emit when not bool", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      nodes:\n        - {type: account, id: key, when: '1 + 2'}\n"), file: "a.yaml", line: 6, rule: "a", field: "emit.nodes[0].when", msg: "bool"},
		{name: "unknown edge type", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      edges:\n        - {type: likes, from: {type: account, id: key}, to: {type: title, id: key}}\n"), file: "a.yaml", line: 6, rule: "a", field: "emit.edges[0].type", msg: `edge type "likes" is not declared`},
		{name: "edge from wrong type", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      edges:\n        - {type: watched, from: {type: title, id: key}, to: {type: title, id: key}}\n"), file: "a.yaml", line: 6, rule: "a", field: "emit.edges[0].from.type", msg: `must be one of [account], not "title"`},
		{name: "edge to missing", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      edges:\n        - {type: watched, from: {type: account, id: key}}\n"), file: "a.yaml", line: 6, rule: "a", field: "emit.edges[0].to", msg: "required"},
		{name: "edge endpoint id missing", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      edges:\n        - {type: watched, from: {type: account}, to: {type: title, id: key}}\n"), file: "a.yaml", line: 6, rule: "a", field: "emit.edges[0].from.id", msg: "required"},
		{name: "edge endpoint unknown field", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      edges:\n        - {type: watched, from: {type: account, id: key, key: x}, to: {type: title, id: key}}\n"), file: "a.yaml", line: 6, rule: "a", field: "emit.edges[0].from.key", msg: "unknown field"},
		{name: "edge undeclared property", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t}\n    emit:\n      edges:\n        - type: owns\n          from: {type: account, id: key}\n          to: {type: device, id: key}\n          props: {weight: '1.0'}\n"), file: "a.yaml", line: 9, rule: "a", field: "emit.edges[0].props.weight", msg: "not declared for edge type owns"},
		{name: "expression too long", fsys: files("a.yaml", "rules:\n  - name: a\n    select: {topic: t, when: '"+strings.Repeat("true && ", 600)+"true'}\n"), file: "a.yaml", line: 3, rule: "a", field: "select.when", msg: "at most 4096"},
		{name: "unmatched policy unknown", fsys: files("a.yaml", "topics:\n  t: {unmatched: drop}\n"+okRule), file: "a.yaml", line: 2, field: "topics.t.unmatched", msg: `"drop" is not one of ignore, dead_letter`},
		{name: "topics unknown field", fsys: files("a.yaml", "topics:\n  t: {partial: true}\n"+okRule), file: "a.yaml", line: 2, field: "topics.t.partial", msg: "unknown field"},
		{name: "unmatched policies conflict", fsys: files("a.yaml", "topics:\n  t.accounts: {unmatched: ignore}\n"+okRule, "b.yaml", "topics:\n  t.accounts: {unmatched: dead_letter}\nrules:\n  - name: b\n    select: {topic: t.accounts}\n    emit: {nodes: [{type: account, id: key}]}\n"), file: "b.yaml", line: 2, field: "topics.t.accounts", msg: "conflicts with the declaration at a.yaml:2"},
		{name: "topic without rules", fsys: files("a.yaml", "topics:\n  t.other: {unmatched: ignore}\n"+okRule), file: "a.yaml", line: 2, field: "topics.t.other", msg: "no rule selects this topic"},
		{name: "file too large", fsys: files("a.yaml", okRule+"#"+strings.Repeat("x", 1<<20)), file: "a.yaml", msg: "larger than"},
	}
	s := testSchema(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mapping.Load(tt.fsys, s, testLookup())
			if err == nil {
				t.Fatal("Load succeeded")
			}
			var le *mapping.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T is not a *LoadError: %v", err, err)
			}
			if !errors.Is(err, mapping.ErrInvalidMapping) {
				t.Errorf("error does not wrap ErrInvalidMapping")
			}
			if le.File != tt.file || le.Line != tt.line || le.Rule != tt.rule || le.Field != tt.field {
				t.Errorf("located at file %q line %d rule %q field %q; want %q %d %q %q (%v)",
					le.File, le.Line, le.Rule, le.Field, tt.file, tt.line, tt.rule, tt.field, err)
			}
			if !strings.Contains(le.Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", le.Msg, tt.msg)
			}
		})
	}
}

func TestLoadErrorString(t *testing.T) {
	err := &mapping.LoadError{File: "ads.yaml", Line: 12, Rule: "impression", Field: "emit.edges[0].type", Msg: "edge type \"x\" is not declared"}
	want := `mapping ads.yaml:12: rule impression: emit.edges[0].type: edge type "x" is not declared`
	if err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
}

func TestLoadNeedsSchemaAndLookup(t *testing.T) {
	if _, err := mapping.Load(files("a.yaml", okRule), nil, nil); err == nil || errors.Is(err, mapping.ErrInvalidMapping) {
		t.Errorf("nil schema: got %v, want a plain error", err)
	}
	// A nil Lookup is fine without joins, and a start-up error with them.
	if _, err := mapping.Load(files("a.yaml", okRule), testSchema(t), nil); err != nil {
		t.Errorf("no joins, nil lookup: %v", err)
	}
	withJoin := "rules:\n  - name: a\n    select: {topic: t}\n    joins:\n      - {name: t, cache: titles, key: key, on_miss: pass}\n    emit: {nodes: [{type: account, id: key}]}\n"
	_, err := mapping.Load(files("a.yaml", withJoin), testSchema(t), nil)
	var le *mapping.LoadError
	if !errors.As(err, &le) || le.Field != "joins[0].cache" {
		t.Errorf("join with nil lookup: got %v", err)
	}
}

func TestLoadUnreadableDirectory(t *testing.T) {
	_, err := mapping.Load(fstest.MapFS{"a.yaml/x": {Data: []byte("x")}}, testSchema(t), nil)
	var le *mapping.LoadError
	if !errors.As(err, &le) || le.File != "." {
		t.Errorf("a directory named a.yaml is skipped, leaving no files: got %v", err)
	}
}

// TestDemoMappingsLoad guards the shipped files: every one compiles against
// the shipped graph schema and the demo caches.
func TestDemoMappingsLoad(t *testing.T) {
	m := demoMapper(t)
	want := []string{
		"billing.public.subscriptions", "requests.ads", "requests.login", "requests.playback",
		"requests.title_page", "streaming.public.accounts", "streaming.public.devices", "streaming.public.profiles",
	}
	if got := m.Topics(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("topics %v, want %v", got, want)
	}
}
