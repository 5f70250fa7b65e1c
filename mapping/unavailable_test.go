package mapping_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/normalize"
)

// toastRules read attributes in every place an unavailable one matters.
const toastRules = `
rules:
  - name: account
    select: {topic: t.accounts}
    emit:
      nodes:
        - type: account
          id: key
          props:
            country: attrs.country
            age: after.profile?.age
            score: attrs[key]
            vip: attrs.vip
      edges:
        - type: watched
          when: attrs.title != nil
          from: {type: account, id: key}
          to: {type: title, id: attrs.title}
          props: {event_id: attrs.note}
        - type: owns
          from: {type: account, id: key}
          to: {type: device, id: attrs.device}
  - name: gated
    select: {topic: t.gated, when: 'attrs.kind == "x"'}
    emit: {nodes: [{type: account, id: key}]}
  - name: keyed
    select: {topic: t.keyed}
    emit: {nodes: [{type: account, id: attrs.account_id}]}
  - name: edge_when
    select: {topic: t.edge_when}
    emit:
      edges:
        - {type: owns, when: 'attrs.owned == true', from: {type: account, id: key}, to: {type: device, id: '"d1"'}}
`

func toastMapper(t *testing.T, opts ...mapping.Option) *mapping.Mapper {
	t.Helper()
	m, err := mapping.Load(files("toast.yaml", toastRules), testSchema(t), testLookup(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// unavailable builds an update whose named fields the source did not send.
func unavailable(topic string, attrs map[string]any, names ...string) *normalize.Envelope {
	e := envelope(topic, normalize.OpUpdate, "a1", attrs)
	e.Unavailable = names
	return e
}

func TestMapUnavailableKeepsNodeProperties(t *testing.T) {
	reg := prometheus.NewRegistry()
	met, err := mapping.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m := toastMapper(t, mapping.WithMetrics(met))
	attrs := map[string]any{"country": "KR", "profile": map[string]any{"age": 30}, "vip": true, "title": "t1", "note": "n", "device": "d9"}
	tests := []struct {
		name      string
		names     []string
		props     graph.Props
		keep      []string
		edges     []string // edge types emitted
		withheldN float64
	}{
		{"none unavailable", nil,
			graph.Props{"country": "KR", "age": int64(30), "vip": true}, nil, []string{"watched", "owns"}, 0},
		{"one read by name", []string{"country"},
			graph.Props{"age": int64(30), "vip": true}, []string{"country", "score"}, []string{"watched", "owns"}, 0},
		{"read through after", []string{"profile"},
			graph.Props{"country": "KR", "vip": true}, []string{"age", "score"}, []string{"watched", "owns"}, 0},
		{"an edge property: the edge is not emitted", []string{"note"},
			graph.Props{"country": "KR", "age": int64(30), "vip": true}, []string{"score"}, []string{"owns"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := map[string]any{}
			for k, v := range attrs {
				if !slices.Contains(tt.names, k) {
					a[k] = v
				}
			}
			muts, err := m.Map(context.Background(), unavailable("t.accounts", a, tt.names...))
			if err != nil {
				t.Fatal(err)
			}
			node := muts[0]
			if node.Op != graph.OpUpsertNode || dump(node.Props) != dump(tt.props) || !slices.Equal(node.Keep, tt.keep) {
				t.Errorf("node: props %v keep %v; want %v keep %v", node.Props, node.Keep, tt.props, tt.keep)
			}
			var edges []string
			for _, mu := range muts[1:] {
				edges = append(edges, mu.Edge.Type)
			}
			if !slices.Equal(edges, tt.edges) {
				t.Errorf("edges %v, want %v", edges, tt.edges)
			}
		})
	}
	if got := counterValue(t, reg, "rtgraph_mapping_unavailable_edges_total", map[string]string{"rule": "account"}); got != 1 {
		t.Errorf("unavailable edges counted %v, want 1", got)
	}
}

func TestMapUnavailableDeadLetters(t *testing.T) {
	m := toastMapper(t)
	tests := []struct {
		name, topic, rule, field string
		unavailable              []string
	}{
		{"select condition", "t.gated", "toast.yaml#gated", "select.when", []string{"kind"}},
		{"node id", "t.keyed", "toast.yaml#keyed", "emit.nodes[0].id", []string{"account_id"}},
		{"edge end", "t.accounts", "toast.yaml#account", "emit.edges[1].to.id", []string{"device"}},
		{"edge condition", "t.edge_when", "toast.yaml#edge_when", "emit.edges[0].when", []string{"owned"}},
		{"emit condition", "t.accounts", "toast.yaml#account", "emit.edges[0].when", []string{"title"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Map(context.Background(), unavailable(tt.topic, map[string]any{"x": 1}, tt.unavailable...))
			assertMapError(t, err, mapping.ClassUnavailableValue, tt.rule, tt.field, `reads attribute "`+tt.unavailable[0]+`"`)
		})
	}
}

// TestMapToastCapture maps the real Debezium 3.6.1 update of profile p1
// whose TOASTed name was unchanged, in the three shapes: the name is kept,
// the other columns written.
func TestMapToastCapture(t *testing.T) {
	schema, err := graph.LoadSchema(fstest.MapFS{"s.yaml": {Data: []byte(`
node_types:
  profile:
    properties: {name: string, kids: bool, account_id: int}
`)}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	m, err := mapping.Load(files("p.yaml", `
rules:
  - name: profile
    select: {topic: profiles}
    emit:
      nodes:
        - type: profile
          id: key
          props: {name: attrs.name, kids: attrs.kids, account_id: attrs.account_id}
`), schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "normalize", "testdata", "debezium")
	for _, shape := range []string{"wrapped", "noschema", "flattened"} {
		t.Run(shape, func(t *testing.T) {
			read := func(suffix string) []byte {
				b, err := os.ReadFile(filepath.Join(dir, "pg-3.6-"+shape+"-update-toast-unchanged"+suffix))
				if err != nil {
					t.Fatal(err)
				}
				return bytes.TrimSpace(b)
			}
			dec, err := normalize.New(normalize.Config{Format: normalize.FormatDebezium, EntityType: "profile"})
			if err != nil {
				t.Fatal(err)
			}
			envs, err := dec.Decode(normalize.Message{Topic: "profiles", Key: read("-key.json"), Value: read(".json")})
			if err != nil {
				t.Fatal(err)
			}
			muts, err := m.Map(context.Background(), &envs[0])
			if err != nil {
				t.Fatal(err)
			}
			want := `[{"op":1,"node":{"type":"profile","id":"p1"},"props":{"account_id":1,"kids":true},"keep":["name"],`
			if got := dump(muts); !strings.HasPrefix(got, want) {
				t.Errorf("got %s\nwant prefix %s", got, want)
			}
		})
	}
}

func TestMapTombstoneDeletesDropped(t *testing.T) {
	reg := prometheus.NewRegistry()
	met, err := mapping.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	m := unitMapper(t, mapping.WithMetrics(met), mapping.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ts := envelope("t.accounts", normalize.OpTombstone, "a1", nil)
	for range 3 {
		if muts, err := m.Map(context.Background(), ts); muts != nil || err != nil {
			t.Fatalf("plain tombstone: %v %v", muts, err)
		}
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("a plain tombstone logged %q", logs.String())
	}
	ts.DeletesDropped = true
	for range 3 {
		if muts, err := m.Map(context.Background(), ts); muts != nil || err != nil {
			t.Fatalf("tombstone: %v %v", muts, err)
		}
	}
	if got := counterValue(t, reg, "rtgraph_mapping_tombstones_deletes_dropped_total", map[string]string{"topic": "t.accounts"}); got != 3 {
		t.Errorf("counted %v, want 3", got)
	}
	out := logs.String()
	if strings.Count(out, "level=WARN") != 1 {
		t.Fatalf("want one warning, got %q", out)
	}
	for _, want := range []string{"topic=t.accounts", "delete.handling.mode", "delete.tombstone.handling.mode=rewrite", "tombstone_deletes: true"} {
		if !strings.Contains(out, want) {
			t.Errorf("warning %q lacks %q", out, want)
		}
	}
}

// TestToastCaptureKeepsStoredValue follows the real capture of profile p1:
// an UPDATE that writes a 12 kB name, then one under REPLICA IDENTITY
// DEFAULT that leaves it unchanged (the placeholder). Applied one by one,
// and folded into one batch, the stored name is the 12 kB value, never the
// placeholder, and the second update's other columns are written.
func TestToastCaptureKeepsStoredValue(t *testing.T) {
	schema, err := graph.LoadSchema(fstest.MapFS{"s.yaml": {Data: []byte(`
node_types:
  profile:
    properties: {name: string, kids: bool, account_id: int}
`)}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	m, err := mapping.Load(files("p.yaml", `
rules:
  - name: profile
    select: {topic: w.public.profiles}
    emit:
      nodes:
        - type: profile
          id: key
          props: {name: attrs.name, kids: attrs.kids, account_id: attrs.account_id}
`), schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := normalize.New(normalize.Config{Format: normalize.FormatDebezium, EntityType: "profile"})
	if err != nil {
		t.Fatal(err)
	}
	var batch []graph.Mutation
	var fullName string
	for _, c := range readCapture(t, "w.public.profiles.toast.jsonl") {
		envs, err := dec.Decode(normalize.Message{Topic: "w.public.profiles", Partition: c.Partition, Offset: c.Offset, Key: c.Key, Value: c.Value})
		if err != nil {
			t.Fatal(err)
		}
		if name, ok := envs[0].Attributes["name"].(string); ok {
			fullName = name
		}
		muts, err := m.Map(context.Background(), &envs[0])
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, muts...)
	}
	if len(batch) != 2 || len(fullName) < 10000 || !slices.Equal(batch[1].Keep, []string{"name"}) {
		t.Fatalf("capture: %d mutations, name of %d bytes, keep %v", len(batch), len(fullName), batch[len(batch)-1].Keep)
	}
	p1 := graph.NodeKey{Type: "profile", ID: "p1"}
	for name, apply := range map[string][][]graph.Mutation{
		"one by one": {batch[:1], batch[1:]},
		"folded":     {mapping.Fold(batch)},
	} {
		s := memstore.New(schema, memstore.Options{})
		for _, b := range apply {
			if err := s.Apply(context.Background(), b); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.GetNodes(context.Background(), []graph.NodeKey{p1})
		if err != nil {
			t.Fatal(err)
		}
		props := got[p1].Props
		if props["name"] != fullName || props["kids"] != true {
			t.Errorf("%s: name of %d bytes (%.40v…), kids %v; want the %d-byte name and kids true", name, len(fmt.Sprint(props["name"])), props["name"], props["kids"], len(fullName))
		}
	}
}
