package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/graph/memstore"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

// wideSchema is storetest's schema with more user properties: a time, and
// one named like a fixed column. A store written with it and exported with
// storetest.Schema() has properties its export schema does not declare.
func wideSchema(t *testing.T) *graph.Schema {
	t.Helper()
	b, err := os.ReadFile("../../graph/storetest/schema.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "      name: string\n      age: int\n",
		"      name: string\n      age: int\n      nickname: string\n      joined: time\n      id: string\n", 1)
	if y == string(b) {
		t.Fatal("storetest schema.yaml changed: user properties not found")
	}
	s, err := graph.LoadSchema(fstest.MapFS{"schema.yaml": {Data: []byte(y)}}, ".")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type fixture struct {
	base  time.Time
	nodes []graph.Node // what the store holds, as it returns them
	edges []graph.Edge // every visible edge
	// unreachable are the visible edges the export cannot reach (see
	// coverage): from a never-written implicit node, without a reverse path.
	unreachable []graph.EdgeKey
}

func u(id string) graph.NodeKey { return graph.NodeKey{Type: "user", ID: id} }
func it(id string) graph.NodeKey {
	return graph.NodeKey{Type: "item", ID: id}
}
func tg(id string) graph.NodeKey { return graph.NodeKey{Type: "tag", ID: id} }

func ek(typ string, from, to graph.NodeKey) graph.EdgeKey {
	return graph.EdgeKey{Type: typ, From: from, To: to}
}

// populate writes the fixture through the wide schema.
func populate(t *testing.T, st graph.Writer, base time.Time) fixture {
	t.Helper()
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	f := fixture{base: base}
	var muts []graph.Mutation
	node := func(k graph.NodeKey, s int, p graph.Props) {
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertNode, Node: k, Props: p, EventTime: at(s)})
	}
	edge := func(k graph.EdgeKey, s int, p graph.Props) {
		muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge, Edge: k, Props: p, EventTime: at(s)})
	}
	joined := "2024-02-29T23:59:59.000001Z"
	node(u("u1"), 1, graph.Props{"name": "Ann \"quoted\" ✓", "age": int64(-42), "score": 2.0, "vip": true, "nickname": "annie", "joined": joined, "id": "ext-1"})
	node(u("u2"), 2, graph.Props{"name": "Bob", "vip": false, "score": 0.1})
	node(u("u3"), 3, nil)
	node(u("u4"), 4, graph.Props{"name": "gone"})
	node(it("i1"), 5, graph.Props{"title": "Book", "price": 12.5})
	node(it("i2"), 6, graph.Props{"price": 3.0})
	node(tg("t1"), 7, graph.Props{"label": "red"})
	node(tg("t2"), 8, nil)
	edge(ek("follows", u("u1"), u("u2")), 10, graph.Props{"weight": 0.5, "since": int64(2020)})
	edge(ek("follows", u("u2"), u("u1")), 11, nil)
	edge(ek("follows", u("ghostA"), u("u1")), 12, graph.Props{"weight": 1.0})
	edge(ek("follows", u("ghostA"), u("ghostB")), 13, nil)
	edge(ek("likes", u("u1"), it("i1")), 14, graph.Props{"rating": int64(5)})
	edge(ek("likes", u("u1"), tg("t1")), 15, nil)
	edge(ek("likes", u("ghostC"), it("i1")), 16, graph.Props{"rating": int64(1)})
	edge(ek("tagged", it("i1"), tg("t1")), 17, graph.Props{"note": "n"})
	edge(ek("tagged", it("ghostI"), tg("t2")), 18, nil)
	edge(ek("tagged", u("u2"), tg("t1")), 19, nil)
	edge(ek("viewed", u("u1"), it("i1")), 20, graph.Props{"ms": int64(1500), "complete": true})
	edge(ek("blocks", u("u1"), u("u3")), 21, nil)
	edge(ek("blocks", u("u4"), u("u1")), 22, nil)
	edge(ek("owned_by", it("i2"), u("u2")), 23, graph.Props{"share": int64(100)})
	// u4 is deleted: it and its edges are gone.
	muts = append(muts, graph.Mutation{Op: graph.OpDeleteNode, Node: u("u4"), EventTime: at(30)})
	if err := st.Apply(context.Background(), muts); err != nil {
		t.Fatal(err)
	}

	n := func(k graph.NodeKey, s int, p graph.Props) {
		if p == nil {
			p = graph.Props{}
		}
		f.nodes = append(f.nodes, graph.Node{Key: k, Props: p, EventTime: at(s)})
	}
	n(u("u1"), 1, graph.Props{"name": "Ann \"quoted\" ✓", "age": int64(-42), "score": 2.0, "vip": true, "nickname": "annie", "joined": joined, "id": "ext-1"})
	n(u("u2"), 2, graph.Props{"name": "Bob", "vip": false, "score": 0.1})
	n(u("u3"), 3, nil)
	n(it("i1"), 5, graph.Props{"title": "Book", "price": 12.5})
	n(it("i2"), 6, graph.Props{"price": 3.0})
	n(tg("t1"), 7, graph.Props{"label": "red"})
	n(tg("t2"), 8, nil)
	e := func(k graph.EdgeKey, s int, p graph.Props, ttl time.Duration) {
		if p == nil {
			p = graph.Props{}
		}
		x := graph.Edge{Key: k, Props: p, EventTime: at(s)}
		if ttl > 0 {
			x.ExpiresAt = at(s).Add(ttl)
		}
		f.edges = append(f.edges, x)
	}
	e(ek("follows", u("u1"), u("u2")), 10, graph.Props{"weight": 0.5, "since": int64(2020)}, 0)
	e(ek("follows", u("u2"), u("u1")), 11, nil, 0)
	e(ek("follows", u("ghostA"), u("u1")), 12, graph.Props{"weight": 1.0}, 0)
	e(ek("follows", u("ghostA"), u("ghostB")), 13, nil, 0)
	e(ek("likes", u("u1"), it("i1")), 14, graph.Props{"rating": int64(5)}, 0)
	e(ek("likes", u("u1"), tg("t1")), 15, nil, 0)
	e(ek("likes", u("ghostC"), it("i1")), 16, graph.Props{"rating": int64(1)}, 0)
	e(ek("tagged", it("i1"), tg("t1")), 17, graph.Props{"note": "n"}, 0)
	e(ek("tagged", it("ghostI"), tg("t2")), 18, nil, 0)
	e(ek("tagged", u("u2"), tg("t1")), 19, nil, 0)
	e(ek("viewed", u("u1"), it("i1")), 20, graph.Props{"ms": int64(1500), "complete": true}, time.Hour)
	e(ek("blocks", u("u1"), u("u3")), 21, nil, 0)
	e(ek("owned_by", it("i2"), u("u2")), 23, graph.Props{"share": int64(100)}, 0)
	f.unreachable = []graph.EdgeKey{
		ek("follows", u("ghostA"), u("ghostB")), // both ends never written
		ek("likes", u("ghostC"), it("i1")),      // likes keeps no reverse index
	}
	return f
}

type storeCase struct {
	name string
	open func(t *testing.T, s *graph.Schema, now func() time.Time) graph.Store
	// realTime: the backend expires TTL edges by the wall clock (Cassandra),
	// so the fixture is written ten minutes before now, not at base.
	realTime bool
}

var stores = []storeCase{
	{"memstore", func(t *testing.T, s *graph.Schema, now func() time.Time) graph.Store {
		return memstore.New(s, memstore.Options{Now: now})
	}, false},
	{"embedded", func(t *testing.T, s *graph.Schema, now func() time.Time) graph.Store {
		cfg := embedded.DefaultConfig()
		cfg.Dir = t.TempDir()
		cfg.Sync = false
		st, err := embedded.Open(cfg, s, embedded.Deps{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}, false},
}

// base is a fixed instant with microseconds, and now a clock 10 minutes
// after it, so that the fixture's one-hour TTL edge is live.
var base = time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)

func clock() time.Time { return base.Add(10 * time.Minute) }

func TestExportMatchesStore(t *testing.T) { exportMatchesStore(t, stores...) }

// exportMatchesStore exports a populated store of each case, with the
// storetest schema and with the wider one, and reads every file back.
func exportMatchesStore(t *testing.T, cases ...storeCase) {
	for _, sc := range cases {
		t.Run(sc.name, func(t *testing.T) {
			b, now := base, clock
			if sc.realTime {
				b = time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second).Add(123456 * time.Microsecond)
				now = func() time.Time { return b.Add(10 * time.Minute) }
			}
			st := sc.open(t, wideSchema(t), now)
			fx := populate(t, st, b)
			for _, exp := range []struct {
				name   string
				schema *graph.Schema
			}{{"storetest-schema", storetest.Schema()}, {"wide-schema", wideSchema(t)}} {
				t.Run(exp.name, func(t *testing.T) {
					dir := filepath.Join(t.TempDir(), "out")
					var progress bytes.Buffer
					m, err := Run(context.Background(), Options{
						Schema: exp.schema, Source: st, Dir: dir, Backend: sc.name, Consistency: "test",
						Progress: &progress, ListLimit: 2, AdjacencyLimit: 1, GetNodesBatch: 2, Parallel: 3,
					})
					if err != nil {
						t.Fatal(err)
					}
					checkExport(t, dir, exp.schema, m, fx)
					for _, typ := range exp.schema.NodeTypes() {
						if !strings.Contains(progress.String(), "export: nodes/"+typ+": ") {
							t.Errorf("no progress line for nodes/%s in:\n%s", typ, progress.String())
						}
					}
				})
			}
		})
	}
}

// checkExport reads every file back and compares it with the fixture, and
// the manifest with what was read.
func checkExport(t *testing.T, dir string, schema *graph.Schema, m *Manifest, fx fixture) {
	t.Helper()
	var onDisk Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &onDisk); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&onDisk, m) {
		t.Errorf("manifest on disk differs from the one returned:\n%s\n%+v", b, m)
	}
	if m.FormatVersion != 1 || m.Watermark != nil || m.FinishedAt.Before(m.StartedAt) {
		t.Errorf("manifest header: %s", b)
	}
	if got := len(m.Nodes); got != len(schema.NodeTypes()) {
		t.Errorf("manifest lists %d node types, want %d", got, len(schema.NodeTypes()))
	}
	var maxAt time.Time
	for _, typ := range schema.NodeTypes() {
		var want []graph.Node
		for _, n := range fx.nodes {
			if n.Key.Type == typ {
				want = append(want, n)
				maxAt = later(maxAt, n.EventTime)
			}
		}
		e := entry(t, m.Nodes, typ)
		if e.Rows != int64(len(want)) || e.Files["parquet"] != "nodes/"+typ+".parquet" || e.Files["jsonl"] != "nodes/"+typ+".jsonl" {
			t.Errorf("manifest entry of nodes/%s: %+v, want %d rows", typ, e, len(want))
		}
		if len(want) > 0 && (e.MaxEventTime == nil || !e.MaxEventTime.Equal(want[len(want)-1].EventTime)) {
			t.Errorf("nodes/%s max_event_time %v", typ, e.MaxEventTime)
		}
		pq := readNodesParquet(t, schema, filepath.Join(dir, e.Files["parquet"]), typ, e.Columns)
		js := readNodesJSONL(t, schema, filepath.Join(dir, e.Files["jsonl"]))
		sortNodes(pq)
		sortNodes(js)
		if !nodesEqual(pq, want) {
			t.Errorf("nodes/%s.parquet:\n got %v\nwant %v", typ, pq, want)
		}
		if !nodesEqual(js, want) {
			t.Errorf("nodes/%s.jsonl:\n got %v\nwant %v", typ, js, want)
		}
	}
	for _, typ := range schema.EdgeTypes() {
		var want []graph.Edge
		for _, x := range fx.edges {
			if x.Key.Type == typ && !slices.Contains(fx.unreachable, x.Key) {
				want = append(want, x)
				maxAt = later(maxAt, x.EventTime)
			}
		}
		e := entry(t, m.Edges, typ)
		if e.Rows != int64(len(want)) || e.Files["parquet"] != "edges/"+typ+".parquet" {
			t.Errorf("manifest entry of edges/%s: %+v, want %d rows", typ, e, len(want))
		}
		pq := readEdgesParquet(t, schema, filepath.Join(dir, e.Files["parquet"]), typ, e.Columns)
		js := readEdgesJSONL(t, schema, filepath.Join(dir, e.Files["jsonl"]))
		sortEdges(pq)
		sortEdges(js)
		sortEdges(want)
		if !edgesEqual(pq, want) {
			t.Errorf("edges/%s.parquet:\n got %v\nwant %v", typ, pq, want)
		}
		if !edgesEqual(js, want) {
			t.Errorf("edges/%s.jsonl:\n got %v\nwant %v", typ, js, want)
		}
	}
	wantCoverage := map[string]string{
		"follows": "incomplete: edges whose from node (implicit type user) and to node (implicit type user) were both never written are not exported; edges from a never-written node to a written one are found through the reverse index",
		"likes":   "incomplete: edges whose from node (implicit type user) was never written are not exported: no listing returns that node and the edge type keeps no reverse index",
		"tagged":  CoverageComplete,
		"lists":   CoverageComplete,
		"blocks":  "incomplete: edges whose from node (implicit type user) was never written are not exported: no listing returns that node and the edge type keeps no reverse index",
	}
	for typ, want := range wantCoverage {
		if got := entry(t, m.Edges, typ).Coverage; got != want {
			t.Errorf("coverage of %s = %q, want %q", typ, got, want)
		}
	}
	if got := entry(t, m.Edges, "follows").ViaReverse; got != 1 {
		t.Errorf("follows rows_via_reverse = %d, want 1 (ghostA -> u1)", got)
	}
	if got := entry(t, m.Edges, "tagged").ViaReverse; got != 1 {
		t.Errorf("tagged rows_via_reverse = %d, want 1 (ghostI -> t2)", got)
	}
	if m.MaxEventTime == nil || !m.MaxEventTime.Equal(maxAt) {
		t.Errorf("max_event_time %v, want %v", m.MaxEventTime, maxAt)
	}
	assertNoPartial(t, dir)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func entry(t *testing.T, es []TypeEntry, typ string) TypeEntry {
	t.Helper()
	for _, e := range es {
		if e.Type == typ {
			return e
		}
	}
	t.Fatalf("manifest has no entry for %s", typ)
	return TypeEntry{}
}

func assertNoPartial(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, tmpSuffix) {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

// parquetRows reads a Parquet file as one map per row, column name to
// value (absent when null), after checking its columns against cols.
func parquetRows(t *testing.T, path string, cols []Column) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	fields := pf.Schema().Fields()
	if len(fields) != len(cols) {
		t.Fatalf("%s: %d columns, manifest lists %d", path, len(fields), len(cols))
	}
	for i, fl := range fields {
		c := cols[i]
		if fl.Name() != c.Name || fl.Optional() != c.Optional {
			t.Errorf("%s: column %d is %s (optional %v), manifest says %+v", path, i, fl.Name(), fl.Optional(), c)
		}
		lt := fl.Type().LogicalType()
		switch c.Type {
		case colTimestamp:
			ts, ok := logical(lt).(*format.TimestampType)
			if !ok || !ts.IsAdjustedToUTC {
				t.Errorf("%s: column %s is not a UTC timestamp: %v", path, c.Name, lt)
			} else if _, ok := ts.Unit.Value.(*format.MicroSeconds); !ok {
				t.Errorf("%s: column %s is not a UTC microsecond timestamp: %v", path, c.Name, lt)
			}
		case colString:
			if _, ok := logical(lt).(*format.StringType); !ok {
				t.Errorf("%s: column %s is not a string: %v", path, c.Name, lt)
			}
		case colInt64:
			if fl.Type().Kind() != parquet.Int64 {
				t.Errorf("%s: column %s is not int64", path, c.Name)
			}
		case colDouble:
			if fl.Type().Kind() != parquet.Double {
				t.Errorf("%s: column %s is not double", path, c.Name)
			}
		case colBoolean:
			if fl.Type().Kind() != parquet.Boolean {
				t.Errorf("%s: column %s is not boolean", path, c.Name)
			}
		}
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	var out []map[string]any
	buf := make([]parquet.Row, 3)
	for range 1000 {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			m := map[string]any{}
			for _, v := range row {
				if v.IsNull() {
					continue
				}
				c := cols[v.Column()]
				switch c.Type {
				case colString:
					m[c.Name] = string(v.ByteArray())
				case colInt64:
					m[c.Name] = v.Int64()
				case colDouble:
					m[c.Name] = v.Double()
				case colBoolean:
					m[c.Name] = v.Boolean()
				case colTimestamp:
					m[c.Name] = time.UnixMicro(v.Int64()).UTC()
				}
			}
			out = append(out, m)
		}
		if errors.Is(err, io.EOF) {
			if int64(len(out)) != pf.NumRows() {
				t.Fatalf("%s: read %d rows of %d", path, len(out), pf.NumRows())
			}
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("%s: too many rows", path)
	return nil
}

func logical(lt *format.LogicalType) format.LogicalTypeValue {
	if lt == nil {
		return nil
	}
	return lt.Value
}

// propsOf rebuilds the properties of a Parquet row: its property columns
// (a time column back to the stored canonical text) and extra_props.
func propsOf(t *testing.T, row map[string]any, cols []Column, first int) graph.Props {
	t.Helper()
	p := graph.Props{}
	for _, c := range cols[first:] {
		v, ok := row[c.Name]
		if !ok {
			continue
		}
		if c.Name == ExtraPropsColumn {
			extra, err := graph.DecodeProps([]byte(v.(string)))
			if err != nil {
				t.Fatal(err)
			}
			if len(extra) == 0 {
				t.Errorf("extra_props is %q: an empty object should be null", v)
			}
			for k, x := range extra {
				p[k] = x
			}
			continue
		}
		if tm, ok := v.(time.Time); ok {
			v = tm.Format(graph.CanonicalTimeLayout)
		}
		p[c.Property] = v
	}
	return p
}

func readNodesParquet(t *testing.T, schema *graph.Schema, path, typ string, cols []Column) []graph.Node {
	var out []graph.Node
	for _, row := range parquetRows(t, path, cols) {
		out = append(out, graph.Node{
			Key:       graph.NodeKey{Type: typ, ID: row["id"].(string)},
			EventTime: row["event_time"].(time.Time),
			Props:     propsOf(t, row, cols, len(nodeFixed)),
		})
	}
	return out
}

func readEdgesParquet(t *testing.T, schema *graph.Schema, path, typ string, cols []Column) []graph.Edge {
	var out []graph.Edge
	for _, row := range parquetRows(t, path, cols) {
		e := graph.Edge{
			Key: graph.EdgeKey{Type: typ,
				From: graph.NodeKey{Type: row["from_type"].(string), ID: row["from_id"].(string)},
				To:   graph.NodeKey{Type: row["to_type"].(string), ID: row["to_id"].(string)}},
			EventTime: row["event_time"].(time.Time),
			Props:     propsOf(t, row, cols, len(edgeFixed)),
		}
		if x, ok := row["expires_at"]; ok {
			e.ExpiresAt = x.(time.Time)
		}
		out = append(out, e)
	}
	return out
}

func jsonLines(t *testing.T, path string, fn func(line []byte)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fn(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func readNodesJSONL(t *testing.T, schema *graph.Schema, path string) []graph.Node {
	var out []graph.Node
	jsonLines(t, path, func(line []byte) {
		var l struct {
			Type      string          `json:"type"`
			ID        string          `json:"id"`
			Props     json.RawMessage `json:"props"`
			EventTime time.Time       `json:"event_time"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("%s: %v: %s", path, err, line)
		}
		p, err := schema.DecodeNodeProps(l.Type, l.Props)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, graph.Node{Key: graph.NodeKey{Type: l.Type, ID: l.ID}, Props: p, EventTime: l.EventTime})
	})
	return out
}

func readEdgesJSONL(t *testing.T, schema *graph.Schema, path string) []graph.Edge {
	var out []graph.Edge
	jsonLines(t, path, func(line []byte) {
		var l struct {
			Type      string          `json:"type"`
			From      graph.NodeKey   `json:"from"`
			To        graph.NodeKey   `json:"to"`
			Props     json.RawMessage `json:"props"`
			EventTime time.Time       `json:"event_time"`
			ExpiresAt *time.Time      `json:"expires_at"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("%s: %v: %s", path, err, line)
		}
		p, err := schema.DecodeEdgeProps(l.Type, l.Props)
		if err != nil {
			t.Fatal(err)
		}
		e := graph.Edge{Key: graph.EdgeKey{Type: l.Type, From: l.From, To: l.To}, Props: p, EventTime: l.EventTime}
		if l.ExpiresAt != nil {
			e.ExpiresAt = *l.ExpiresAt
		}
		out = append(out, e)
	})
	return out
}

func sortNodes(ns []graph.Node) {
	slices.SortFunc(ns, func(a, b graph.Node) int { return memstore.CompareNodeKeys(a.Key, b.Key) })
}

func sortEdges(es []graph.Edge) {
	slices.SortFunc(es, func(a, b graph.Edge) int { return memstore.CompareEdgeKeys(a.Key, b.Key) })
}

// nodesEqual compares exactly: keys, property names, Go types and values,
// and event times to the microsecond.
func nodesEqual(a, b []graph.Node) bool {
	return slices.EqualFunc(a, b, func(x, y graph.Node) bool {
		return x.Key == y.Key && x.EventTime.Equal(y.EventTime) && reflect.DeepEqual(x.Props, y.Props)
	})
}

func edgesEqual(a, b []graph.Edge) bool {
	return slices.EqualFunc(a, b, func(x, y graph.Edge) bool {
		return x.Key == y.Key && x.EventTime.Equal(y.EventTime) && x.ExpiresAt.Equal(y.ExpiresAt) && reflect.DeepEqual(x.Props, y.Props)
	})
}

// TestExportAgreesWithMemstore checks the fixture's edges against the
// memstore's own list of visible edges, so that the expectations above are
// the store's and not only the fixture's.
func TestExportAgreesWithMemstore(t *testing.T) {
	st := memstore.New(wideSchema(t), memstore.Options{Now: clock})
	fx := populate(t, st, base)
	got := st.Edges()
	sortEdges(got)
	want := slices.Clone(fx.edges)
	sortEdges(want)
	for i := range got {
		if got[i].Props == nil {
			got[i].Props = graph.Props{}
		}
	}
	if !edgesEqual(got, want) {
		t.Fatalf("memstore edges:\n got %v\nwant %v", got, want)
	}
	nodes := st.Nodes()
	sortNodes(nodes)
	wantNodes := slices.Clone(fx.nodes)
	sortNodes(wantNodes)
	for i := range nodes {
		if nodes[i].Props == nil {
			nodes[i].Props = graph.Props{}
		}
	}
	if !nodesEqual(nodes, wantNodes) {
		t.Fatalf("memstore nodes:\n got %v\nwant %v", nodes, wantNodes)
	}
}

func TestColumns(t *testing.T) {
	nt, _ := wideSchema(t).NodeType("user")
	l, err := newLayout("user", nodeFixed, nt.Props)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range l.cols {
		names = append(names, c.Name+":"+c.Type+":"+c.Property)
	}
	want := []string{
		"id:string:", "event_time:timestamp_us_utc:",
		"age:int64:age", "prop_id:string:id", "joined:timestamp_us_utc:joined", "name:string:name",
		"nickname:string:nickname", "score:double:score", "vip:boolean:vip", "extra_props:string:",
	}
	if !slices.Equal(names, want) {
		t.Errorf("columns\n got %v\nwant %v", names, want)
	}
}

func TestSelectionAndFormats(t *testing.T) {
	st := memstore.New(wideSchema(t), memstore.Options{Now: clock})
	fx := populate(t, st, base)
	dir := t.TempDir()
	m, err := Run(context.Background(), Options{
		Schema: storetest.Schema(), Source: st, Dir: dir,
		NodeTypes: []string{"tag", "user", "tag"}, EdgeTypes: []string{}, Formats: []Format{JSONL},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Nodes) != 2 || m.Nodes[0].Type != "tag" || m.Nodes[1].Type != "user" || len(m.Edges) != 0 {
		t.Fatalf("manifest types: %+v / %+v", m.Nodes, m.Edges)
	}
	if m.Nodes[0].Columns != nil || len(m.Nodes[0].Files) != 1 {
		t.Errorf("jsonl only: %+v", m.Nodes[0])
	}
	got := readNodesJSONL(t, storetest.Schema(), filepath.Join(dir, "nodes", "user.jsonl"))
	var want []graph.Node
	for _, n := range fx.nodes {
		if n.Key.Type == "user" {
			want = append(want, n)
		}
	}
	if !nodesEqual(got, want) {
		t.Errorf("user.jsonl\n got %v\nwant %v", got, want)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "nodes"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"tag.jsonl", "user.jsonl"}) {
		t.Errorf("files: %v", names)
	}

	for _, bad := range []Options{
		{NodeTypes: []string{"nope"}},
		{EdgeTypes: []string{"nope"}},
		{NodeTypes: []string{}, EdgeTypes: []string{}},
		{Formats: []Format{"csv"}},
	} {
		bad.Schema, bad.Source, bad.Dir = storetest.Schema(), st, filepath.Join(t.TempDir(), "x")
		if _, err := Run(context.Background(), bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if _, err := ParseFormats([]string{"parquet", "xml"}); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("ParseFormats: %v", err)
	}
}

func TestNonEmptyDirAndOverwrite(t *testing.T) {
	st := memstore.New(wideSchema(t), memstore.Options{Now: clock})
	populate(t, st, base)
	dir := t.TempDir()
	keep := filepath.Join(dir, "README.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{Schema: storetest.Schema(), Source: st, Dir: dir, NodeTypes: []string{"user", "tag"}, EdgeTypes: []string{"follows"}}
	_, err := Run(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "is not empty") || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("non-empty dir: %v", err)
	}
	opts.Overwrite = true
	if _, err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	// A second export of fewer types replaces the first: no file of the
	// first one is left to be mistaken for part of the second.
	opts.NodeTypes, opts.EdgeTypes, opts.Formats = []string{"tag"}, []string{}, []Format{Parquet}
	m, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(files)
	if want := []string{"README.txt", "manifest.json", "nodes/tag.parquet"}; !slices.Equal(files, want) {
		t.Errorf("files after overwrite: %v, want %v", files, want)
	}
	if len(m.Nodes) != 1 || m.Nodes[0].Rows != 2 {
		t.Errorf("manifest: %+v", m.Nodes)
	}
}

// failing fails the listing of one node type after its first page.
type failing struct {
	Source
	typ string
}

var errBroken = errors.New("disk on fire")

func (f failing) ListNodes(ctx context.Context, q graph.NodeListQuery) (graph.NodePage, error) {
	if q.Type == f.typ && q.Cursor != nil {
		return graph.NodePage{}, errBroken
	}
	return f.Source.ListNodes(ctx, q)
}

func TestFailureLeavesNoManifest(t *testing.T) {
	st := memstore.New(wideSchema(t), memstore.Options{Now: clock})
	populate(t, st, base)
	dir := t.TempDir()
	// An earlier complete export is there; the failed one must not leave
	// its manifest claiming the directory holds a complete export.
	opts := Options{Schema: storetest.Schema(), Source: st, Dir: dir}
	if _, err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	opts.Source, opts.Overwrite, opts.ListLimit = failing{Source: st, typ: "user"}, true, 1
	_, err := Run(context.Background(), opts)
	if !errors.Is(err, errBroken) || !strings.Contains(err.Error(), "user") {
		t.Fatalf("error %v, want one naming user and wrapping %v", err, errBroken)
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("manifest after a failure: %v", err)
	}
	for _, p := range []string{"nodes/user.parquet", "nodes/user.jsonl", "edges/follows.parquet"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after the export of it failed: %v", p, err)
		}
	}
	assertNoPartial(t, dir)
}

func TestCancelled(t *testing.T) {
	st := memstore.New(wideSchema(t), memstore.Options{Now: clock})
	populate(t, st, base)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	if _, err := Run(ctx, Options{Schema: storetest.Schema(), Source: st, Dir: dir}); err == nil {
		t.Fatal("no error")
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("manifest after cancel: %v", err)
	}
	assertNoPartial(t, dir)
}

// TestManyRows pages through more nodes and edges than a page holds, in
// parallel, and checks the counts.
func TestManyRows(t *testing.T) {
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			st := sc.open(t, storetest.Schema(), clock)
			var muts []graph.Mutation
			const users = 300
			for i := range users {
				muts = append(muts, graph.Mutation{Op: graph.OpUpsertNode, Node: u(fmt.Sprintf("u%04d", i)), Props: graph.Props{"age": int64(i)}, EventTime: base})
				muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge, Edge: ek("follows", u(fmt.Sprintf("u%04d", i)), u(fmt.Sprintf("u%04d", (i+1)%users))), EventTime: base.Add(time.Duration(i) * time.Microsecond)})
				muts = append(muts, graph.Mutation{Op: graph.OpUpsertEdge, Edge: ek("follows", u(fmt.Sprintf("u%04d", i)), u(fmt.Sprintf("u%04d", (i+7)%users))), EventTime: base})
			}
			if err := st.Apply(context.Background(), muts); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			m, err := Run(context.Background(), Options{Schema: storetest.Schema(), Source: st, Dir: dir, ListLimit: 64, AdjacencyLimit: 1, Parallel: 4})
			if err != nil {
				t.Fatal(err)
			}
			if n := entry(t, m.Nodes, "user").Rows; n != users {
				t.Errorf("users: %d", n)
			}
			if n := entry(t, m.Edges, "follows").Rows; n != 2*users {
				t.Errorf("follows: %d", n)
			}
			got := readEdgesJSONL(t, storetest.Schema(), filepath.Join(dir, "edges", "follows.jsonl"))
			seen := map[graph.EdgeKey]bool{}
			for _, e := range got {
				if seen[e.Key] {
					t.Fatalf("edge %v exported twice", e.Key)
				}
				seen[e.Key] = true
			}
			if want := base.Add((users - 1) * time.Microsecond); m.MaxEventTime == nil || !m.MaxEventTime.Equal(want) {
				t.Errorf("max_event_time %v, want %v", m.MaxEventTime, want)
			}
		})
	}
}

// signalWriter collects progress lines and closes seen at the first
// rows-so-far line written after the first type is done.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	once sync.Once
	seen chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(p, []byte("rows so far, 1 of 2 types done")) {
		w.once.Do(func() { close(w.seen) })
	}
	return w.buf.Write(p)
}

// waiting holds the listing of users until the progress ticker has
// written a line.
type waiting struct {
	Source
	seen <-chan struct{}
}

func (w waiting) ListNodes(ctx context.Context, q graph.NodeListQuery) (graph.NodePage, error) {
	if q.Type == "user" {
		select {
		case <-w.seen:
		case <-time.After(10 * time.Second):
			return graph.NodePage{}, errors.New("no progress line within 10s")
		}
	}
	return w.Source.ListNodes(ctx, q)
}

func TestProgressLines(t *testing.T) {
	st := memstore.New(wideSchema(t), memstore.Options{Now: clock})
	populate(t, st, base)
	w := &signalWriter{seen: make(chan struct{})}
	_, err := Run(context.Background(), Options{
		Schema: storetest.Schema(), Source: waiting{Source: st, seen: w.seen}, Dir: t.TempDir(),
		NodeTypes: []string{"tag", "user"}, EdgeTypes: []string{}, Parallel: 1,
		Progress: w, ProgressEvery: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := w.buf.String()
	for _, want := range []string{"export: nodes/tag: 2 rows (", "rows so far, 1 of 2 types done (", "export: nodes/user: 3 rows (", "export: done: 5 rows of 2 types in "} {
		if !strings.Contains(out, want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}
}

// flaky fails every other call retryably.
type flaky struct {
	Source
	mu    sync.Mutex
	calls int
}

func (f *flaky) fail() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.calls%2 == 1
}

func (f *flaky) ListNodes(ctx context.Context, q graph.NodeListQuery) (graph.NodePage, error) {
	if f.fail() {
		return graph.NodePage{}, &graph.RetryableError{Op: "list nodes", Err: errors.New("timeout")}
	}
	return f.Source.ListNodes(ctx, q)
}

func (f *flaky) Adjacency(ctx context.Context, q graph.AdjacencyQuery) (graph.AdjacencyPage, error) {
	if f.fail() {
		return graph.AdjacencyPage{}, &graph.RetryableError{Op: "adjacency", Err: errors.New("timeout")}
	}
	return f.Source.Adjacency(ctx, q)
}

func TestRetriesRetryableErrors(t *testing.T) {
	st := memstore.New(wideSchema(t), memstore.Options{Now: clock})
	fx := populate(t, st, base)
	dir := t.TempDir()
	m, err := Run(context.Background(), Options{
		Schema: storetest.Schema(), Source: &flaky{Source: st}, Dir: dir,
		NodeTypes: []string{"tag"}, EdgeTypes: []string{"viewed"}, Parallel: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if entry(t, m.Nodes, "tag").Rows != 2 || entry(t, m.Edges, "viewed").Rows != 1 {
		t.Errorf("rows: %+v %+v", m.Nodes, m.Edges)
	}
	got := readEdgesJSONL(t, storetest.Schema(), filepath.Join(dir, "edges", "viewed.jsonl"))
	var want []graph.Edge
	for _, e := range fx.edges {
		if e.Key.Type == "viewed" {
			want = append(want, e)
		}
	}
	if !edgesEqual(got, want) {
		t.Errorf("viewed\n got %v\nwant %v", got, want)
	}
}
