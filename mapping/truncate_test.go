package mapping_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/normalize"
)

const truncateRules = `
rules:
  - name: accounts_truncate
    select: {topic: t.accounts, ops: [truncate]}
    emit:
      nodes:
        - {type: account, truncate: true}
`

func TestMapTruncate(t *testing.T) {
	m, err := mapping.Load(files("t.yaml", truncateRules), testSchema(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := envelope("t.accounts", normalize.OpTruncate, "", nil)
	e.Version = normalize.Version{Scheme: normalize.VersionLSN, LSN: 42}
	muts, err := m.Map(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	want := []graph.Mutation{{Op: graph.OpTruncateType, Node: graph.NodeKey{Type: "account"}, EventTime: t0.UTC().Truncate(time.Microsecond), Pos: graph.PosUint64(42)}}
	if dump(muts) != dump(want) {
		t.Fatalf("got %s\nwant %s", dump(muts), dump(want))
	}
	if u := m.Unwritten(); len(u) != 0 {
		t.Errorf("a truncate counts as a write: %v", u)
	}

	// Through Fold and the reference store: an account upserted before the
	// truncate ends hidden, one upserted after it stays, whatever the
	// order in the batch.
	before := graph.Mutation{Op: graph.OpUpsertNode, Node: graph.NodeKey{Type: "account", ID: "a1"}, EventTime: t0.Add(-time.Second), Props: graph.Props{}}
	after := graph.Mutation{Op: graph.OpUpsertNode, Node: graph.NodeKey{Type: "account", ID: "a2"}, EventTime: t0.Add(time.Second), Props: graph.Props{}}
	for _, batch := range [][]graph.Mutation{{muts[0], before, after}, {before, after, muts[0]}, {after, muts[0], before}} {
		s := memstore.New(testSchema(t), memstore.Options{})
		if err := s.Apply(context.Background(), mapping.Fold(batch)); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetNodes(context.Background(), []graph.NodeKey{before.Node, after.Node})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := got[before.Node]; ok || len(got) != 1 {
			t.Errorf("batch %s: visible %v, want only a2", dump(batch), got)
		}
	}
}

func TestLoadTruncateErrors(t *testing.T) {
	schema, err := graph.LoadSchema(fstest.MapFS{"s.yaml": {Data: []byte(strings.Replace(testSchemaYAML,
		"  device: {}\n", "  device: {}\n  city:\n    implicit: true\n", 1))}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	rule := func(ops, node string) string {
		return "rules:\n  - name: tr\n    select: {topic: t, ops: " + ops + "}\n    emit:\n      nodes:\n        - " + node + "\n"
	}
	tests := []struct {
		name, file, field, msg string
		line                   int
	}{
		{"other ops", rule("[truncate, delete]", "{type: account, truncate: true}"), "emit.nodes[0].truncate", "exactly [truncate]", 6},
		{"default ops", "rules:\n  - name: tr\n    select: {topic: t}\n    emit:\n      nodes:\n        - {type: account, truncate: true}\n", "emit.nodes[0].truncate", "exactly [truncate]", 6},
		{"with an id", rule("[truncate]", "{type: account, truncate: true, id: key}"), "emit.nodes[0].id", "it has no id", 6},
		{"with props", rule("[truncate]", "{type: account, truncate: true, props: {age: '1'}}"), "emit.nodes[0].props", "it has no props", 6},
		{"with delete", rule("[truncate]", "{type: account, truncate: true, delete: true}"), "emit.nodes[0].delete", "it has no delete", 6},
		{"implicit type", rule("[truncate]", "{type: city, truncate: true}"), "emit.nodes[0].type", "implicit", 6},
		{"undeclared type", rule("[truncate]", "{type: planet, truncate: true}"), "emit.nodes[0].type", "not declared", 6},
		{"false", rule("[truncate]", "{type: account, truncate: false}"), "emit.nodes[0].truncate", "leave it out", 6},
		{"not a bool", rule("[truncate]", "{type: account, truncate: yes please}"), "emit.nodes[0].truncate", "true or false", 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mapping.Load(files("a.yaml", tt.file), schema, nil)
			var le *mapping.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("got %v, want a *LoadError", err)
			}
			if le.File != "a.yaml" || le.Line != tt.line || le.Rule != "tr" || le.Field != tt.field || !strings.Contains(le.Msg, tt.msg) {
				t.Errorf("got %v; want a.yaml:%d %s containing %q", err, tt.line, tt.field, tt.msg)
			}
		})
	}
}
