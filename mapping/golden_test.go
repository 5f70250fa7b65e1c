package mapping_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/enrich"
	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/normalize"
	"github.com/rtgraph/rtgraph/schemas"
	"github.com/rtgraph/rtgraph/schemas/demo"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

var ingestTime = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// demoLookup is the demo's enrichment: an enrich.Enricher whose caches are
// filled from the metadata samples by Cache.Apply, the call its feeders
// make for every record of the cache topics. It is not run, so it never
// connects.
func demoLookup(t testing.TB) mapping.Lookup {
	t.Helper()
	v, err := demo.Load()
	if err != nil {
		t.Fatal(err)
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V4_0_0_0
	e, err := enrich.New(v.Enrich, []string{"127.0.0.1:9"}, sc, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range v.Enrich.Caches {
		cache, ok := e.Cache(c.Name)
		if !ok {
			t.Fatalf("cache %s missing", c.Name)
		}
		msgs, err := demo.Samples(c.Topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if err := cache.Apply(m.Key, m.Value); err != nil {
				t.Fatalf("%s offset %d: %v", c.Topic, m.Offset, err)
			}
		}
	}
	return e
}

var _ mapping.Lookup = (*enrich.Enricher)(nil)

func demoSchema(t testing.TB) *graph.Schema {
	t.Helper()
	s, err := graph.LoadSchema(schemas.GraphSchema(), ".")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func demoMapper(t testing.TB, opts ...mapping.Option) *mapping.Mapper {
	t.Helper()
	m, err := mapping.Load(schemas.MappingFiles(), demoSchema(t), demoLookup(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// goldenEvent is one decoded envelope and what mapping made of it.
type goldenEvent struct {
	Offset    int64            `json:"offset"`
	ID        string           `json:"id"`
	Op        normalize.Op     `json:"op"`
	Mutations []goldenMutation `json:"mutations,omitempty"`
	Error     *goldenError     `json:"error,omitempty"`
}

// goldenMutation is graph.Mutation with its op and TTL spelt out, so that the
// golden files read as what they say.
type goldenMutation struct {
	Op        string         `json:"op"`
	Node      *graph.NodeKey `json:"node,omitempty"`
	Edge      *graph.EdgeKey `json:"edge,omitempty"`
	Props     graph.Props    `json:"props,omitempty"`
	EventTime time.Time      `json:"event_time"`
	Pos       graph.Pos      `json:"pos,omitzero"`
	TTL       string         `json:"ttl,omitempty"`
}

func goldenMutations(muts []graph.Mutation) []goldenMutation {
	var out []goldenMutation
	for _, m := range muts {
		g := goldenMutation{Op: m.Op.String(), Props: m.Props, EventTime: m.EventTime, Pos: m.Pos}
		switch m.Op {
		case graph.OpUpsertNode, graph.OpDeleteNode:
			g.Node = &m.Node
		default:
			g.Edge = &m.Edge
		}
		if m.TTL != 0 {
			g.TTL = m.TTL.String()
		}
		out = append(out, g)
	}
	return out
}

type goldenError struct {
	Class   mapping.Class `json:"class"`
	Mapping string        `json:"mapping,omitempty"`
	Field   string        `json:"field,omitempty"`
	Message string        `json:"message"`
}

// TestGoldenDemo decodes every sample record of every demo topic with the
// topic's configured decoder, maps the envelopes, and compares the result
// with testdata/golden/<topic>.json.
func TestGoldenDemo(t *testing.T) {
	v, err := demo.Load()
	if err != nil {
		t.Fatal(err)
	}
	m := demoMapper(t)
	if got, want := len(m.Topics()), len(v.Topics); got != want {
		t.Errorf("mapper selects %d topics %v, the demo has %d", got, m.Topics(), want)
	}
	for _, tc := range v.Topics {
		t.Run(tc.Topic, func(t *testing.T) {
			dec, err := normalize.New(tc.Decoder, normalize.WithClock(func() time.Time { return ingestTime }))
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := demo.Samples(tc.Topic)
			if err != nil {
				t.Fatal(err)
			}
			var got []goldenEvent
			for _, msg := range msgs {
				envs, err := dec.Decode(msg)
				if err != nil {
					t.Fatalf("offset %d: decode: %v", msg.Offset, err)
				}
				for i := range envs {
					ge := goldenEvent{Offset: msg.Offset, ID: envs[i].ID, Op: envs[i].Op}
					muts, err := m.Map(context.Background(), &envs[i])
					if err != nil {
						var me *mapping.Error
						if !asMappingError(err, &me) {
							t.Fatalf("offset %d: error %T is not *mapping.Error: %v", msg.Offset, err, err)
						}
						ge.Error = &goldenError{Class: me.Class, Mapping: me.Mapping, Field: me.Field, Message: me.Error()}
					}
					ge.Mutations = goldenMutations(muts)
					got = append(got, ge)
				}
			}
			compareGolden(t, filepath.Join("testdata", "golden", tc.Topic+".json"), got)
		})
	}
}

func asMappingError(err error, target **mapping.Error) bool {
	me, ok := err.(*mapping.Error)
	if ok {
		*target = me
	}
	return ok
}

func compareGolden(t *testing.T, path string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the mapping output (run with -update and review the diff):\n%s", path, firstDiff(string(want), string(got)))
	}
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n want: " + w + "\n  got: " + g
		}
	}
	return ""
}
