package mapping_test

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/normalize"
)

const metaSchemaYAML = `
node_types:
  campaign: {properties: {name: string}}
  advertiser: {implicit: true, properties: {}}  # only edges name advertisers
edge_types:
  advertised_by: {from: [campaign], to: [advertiser]}
`

const metaRules = `
rules:
  - name: campaign_doc
    select: {topic: meta.campaigns, ops: [upsert]}
    emit:
      nodes: [{type: campaign, id: key, props: {name: attrs.name}}]
      edges:
        - type: advertised_by
          when: attrs.advertiser_id != nil
          from: {type: campaign, id: key}
          to: {type: advertiser, id: attrs.advertiser_id}
  - name: campaign_gone
    select: {topic: meta.campaigns, ops: [delete]}
    emit: {nodes: [{type: campaign, id: key, delete: true}]}
`

// TestMetadataTopicAsEntities: a compacted metadata topic is a mapping
// source. Every key becomes a node whether or not anything joins it, a
// tombstone deletes it (and hides its edges), and a document rewritten in
// the same millisecond is ordered by its offset, also when the older record
// is applied last.
func TestMetadataTopicAsEntities(t *testing.T) {
	schema, err := graph.LoadSchema(fstest.MapFS{"s.yaml": {Data: []byte(metaSchemaYAML)}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	m, err := mapping.Load(files("m.yaml", metaRules), schema, mapping.MapLookup{})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := normalize.New(normalize.Config{Format: normalize.FormatMetadata, EntityType: "campaign"})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	records := []normalize.Message{
		{Offset: 10, Key: []byte("c1"), Value: []byte(`{"name":"Zeta","advertiser_id":"a1"}`), Timestamp: ts},
		{Offset: 11, Key: []byte("c1"), Value: []byte(`{"name":"Alpha","advertiser_id":"a1"}`), Timestamp: ts},
		{Offset: 12, Key: []byte("c2"), Value: []byte(`{"name":"Two","advertiser_id":"a2"}`), Timestamp: ts},
		{Offset: 13, Key: []byte("c2"), Timestamp: ts.Add(time.Second)}, // tombstone
		{Offset: 14, Key: []byte(`"c3"`), Value: []byte(`{"name":"Three"}`), Timestamp: ts},
	}
	var muts []graph.Mutation
	for _, r := range records {
		r.Topic = "meta.campaigns"
		envs, err := dec.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.Map(context.Background(), &envs[0])
		if err != nil {
			t.Fatalf("offset %d: %v", r.Offset, err)
		}
		muts = append(muts, out...)
	}
	// Newest first: the older same-millisecond document arrives last.
	ref := memstore.New(schema, memstore.Options{})
	for i := len(muts) - 1; i >= 0; i-- {
		if err := ref.Apply(context.Background(), muts[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	nodes := ref.Nodes()
	if len(nodes) != 2 || nodes[0].Key.ID != "c1" || nodes[0].Props["name"] != "Alpha" || nodes[1].Key.ID != "c3" {
		t.Fatalf("nodes %+v, want c1 Alpha and c3", nodes)
	}
	edges := ref.Edges()
	if len(edges) != 1 || edges[0].Key.From.ID != "c1" || edges[0].Key.To.ID != "a1" {
		t.Fatalf("edges %+v, want only c1 → a1 (c2's is hidden by its tombstone)", edges)
	}
}
