package demogen

import (
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/enrich"
	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/schemas"
)

// TestRecordsMap runs the well-formed records through the demo's own
// mapping rules and graph schema, with the metadata published so far as the
// caches: none may be refused (that would fill the dead-letter topic with
// records that are not meant to be there), and the graph gets every node and
// edge type of the vertical.
func TestRecordsMap(t *testing.T) {
	schema, err := graph.LoadSchema(schemas.GraphSchema(), ".")
	if err != nil {
		t.Fatal(err)
	}
	lookup := mapping.MapLookup{"titles": {}, "campaigns": {}}
	m, err := mapping.Load(schemas.MappingFiles(), schema, lookup)
	if err != nil {
		t.Fatal(err)
	}
	cap := &capture{}
	g := newGen(t, testConfig(newClock(testStart, time.Millisecond).Now), cap)
	if err := g.SeedMetadata(t.Context()); err != nil {
		t.Fatal(err)
	}
	var recs []record
	for _, msg := range cap.records() {
		recs = append(recs, fromSarama(t, msg))
	}
	recs = append(recs, steps(t, g, 8000)...)

	decs := decoders(t)
	nodes, edges := map[string]int{}, map[string]int{}
	for i, r := range recs {
		switch {
		case r.kind == kindMalformed:
			continue
		case r.topic == TopicTitles || r.topic == TopicCampaigns:
			// The caches apply metadata as it arrives (a stream-table join).
			doc, err := enrich.DecodeDocument(r.value, 0)
			if err != nil {
				t.Fatal(err)
			}
			cache := map[string]string{TopicTitles: "titles", TopicCampaigns: "campaigns"}[r.topic]
			lookup[cache][string(r.key)] = doc
			continue
		}
		envs, err := decs[r.topic].Decode(message(r, int64(i)))
		if err != nil {
			t.Fatalf("record %d on %s: %v", i, r.topic, err)
		}
		for j := range envs {
			muts, err := m.Map(t.Context(), &envs[j])
			if err != nil {
				t.Fatalf("record %d on %s was refused by the mapping: %v\nvalue %s", i, r.topic, err, r.value)
			}
			for _, mu := range muts {
				switch mu.Op {
				case graph.OpUpsertEdge, graph.OpDeleteEdge:
					edges[mu.Edge.Type]++
				default:
					nodes[mu.Node.Type]++
				}
			}
		}
	}
	for _, nt := range []string{"account", "profile", "device", "subscription", "title", "user", "campaign", "creative"} {
		if nodes[nt] == 0 {
			t.Errorf("no %s node mutation (nodes %v)", nt, nodes)
		}
	}
	for _, et := range []string{"has_profile", "uses_device", "subscribes", "logged_in", "identifies", "viewed_title", "started_playback", "impressed", "runs"} {
		if edges[et] == 0 {
			t.Errorf("no %s edge mutation (edges %v)", et, edges)
		}
	}
}
