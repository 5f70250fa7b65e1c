package mapping_test

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/normalize"
)

// TestTimePropertyIsCanonical: a timestamptz column of a real Debezium
// 3.6.1 connector arrives as a ZonedTimestamp of the schema-wrapped shape
// (decoded to a time) and as the connector's text in the flattened shape.
// Declared `time`, both become the same canonical text; declared `string`,
// they differ ("…01:00:00Z" against "…01:00:00.000000Z"), which is why the
// type exists.
func TestTimePropertyIsCanonical(t *testing.T) {
	props := func(typ string) map[string]map[string]any {
		t.Helper()
		schema, err := graph.LoadSchema(fstest.MapFS{"s.yaml": {Data: []byte(`
node_types:
  account: {properties: {created_at: ` + typ + `}}
  flat_account: {properties: {created_at: ` + typ + `}}
`)}}, ".")
		if err != nil {
			t.Fatal(err)
		}
		m, err := mapping.Load(files("t.yaml", `
topics:
  w.accounts.all: {unmatched: ignore}
  f.accounts.all: {unmatched: ignore}
rules:
  - name: wrapped
    select: {topic: w.accounts.all, ops: [create, read]}
    emit: {nodes: [{type: account, id: key, props: {created_at: attrs.created_at}}]}
  - name: flat
    select: {topic: f.accounts.all, ops: [create, read]}
    emit: {nodes: [{type: flat_account, id: key, props: {created_at: attrs.created_at}}]}
`), schema, mapping.MapLookup{})
		if err != nil {
			t.Fatal(err)
		}
		dec, err := normalize.New(normalize.Config{Format: normalize.FormatDebezium})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]map[string]any{}
		for _, src := range []struct{ file, topic string }{{"w.accounts.some.jsonl", "w.accounts.all"}, {"f.accounts.all.jsonl", "f.accounts.all"}} {
			for _, c := range readCapture(t, src.file) {
				if string(c.Value) == "null" {
					continue
				}
				envs, err := dec.Decode(normalize.Message{Topic: src.topic, Partition: c.Partition, Offset: c.Offset, Key: c.Key, Value: c.Value, Timestamp: time.Now()})
				if err != nil {
					t.Fatalf("%s offset %d: %v", src.file, c.Offset, err)
				}
				for i := range envs {
					out, err := m.Map(context.Background(), &envs[i])
					if err != nil {
						t.Fatalf("%s offset %d: %v", src.file, c.Offset, err)
					}
					for _, mut := range out {
						if err := schema.Check(&mut); err != nil {
							t.Fatalf("%s offset %d: %v", src.file, c.Offset, err)
						}
						if got[mut.Node.ID] == nil {
							got[mut.Node.ID] = map[string]any{}
						}
						if _, seen := got[mut.Node.ID][mut.Node.Type]; !seen { // the row's first image
							got[mut.Node.ID][mut.Node.Type] = mut.Props["created_at"]
						}
					}
				}
			}
		}
		return got
	}
	want := map[string]string{
		"1": "2026-01-02T03:04:05.123456Z", "2": "2026-02-03T01:00:00.000000Z",
		"9007199254740993": "1999-12-31T23:59:59.999999Z", "4": "2026-03-04T05:06:07.000001Z",
	}
	canon := props("time")
	for id, w := range want {
		if canon[id]["account"] != w || canon[id]["flat_account"] != w {
			t.Errorf("account %s as time: wrapped %v, flattened %v; want both %s", id, canon[id]["account"], canon[id]["flat_account"], w)
		}
	}
	if raw := props("string"); raw["2"]["account"] == raw["2"]["flat_account"] {
		t.Errorf("as string the two shapes agree (%v): the capture no longer shows why time exists", raw["2"]["account"])
	}
}
