package vertical_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rtgraph/rtgraph/normalize"
	"github.com/rtgraph/rtgraph/vertical"
	"github.com/rtgraph/rtgraph/verticals"
)

var clock = vertical.WithClock(func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) })

// TestBuiltin: the embedded streaming vertical loads, in file order, with
// its caches and counted edge types.
func TestBuiltin(t *testing.T) {
	v, err := vertical.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"streaming.public.accounts", "streaming.public.profiles", "streaming.public.devices", "billing.public.subscriptions",
		"requests.login", "requests.title_page", "requests.playback", "requests.ads"}
	if got := v.TopicNames(); !slices.Equal(got, want) {
		t.Errorf("topics %v, want %v", got, want)
	}
	if got := v.CacheTopics(); !slices.Equal(got, []string{"meta.titles", "meta.campaigns"}) {
		t.Errorf("cache topics %v", got)
	}
	if v.Name != "streaming" || !slices.Equal(v.CountEdgeTypes, []string{"impressed"}) || v.Enrich.IdleProbe != time.Second {
		t.Errorf("name %q, counts %v, idle probe %s", v.Name, v.CountEdgeTypes, v.Enrich.IdleProbe)
	}
	if v.TopicConfigs()["requests.ads"].RequestLog.IDField != "request_id" {
		t.Errorf("requests.ads decoder: %+v", v.TopicConfigs()["requests.ads"])
	}
}

// TestShippedVerticalsCheck: every folder under verticals/ passes its own
// check without warnings, and so does the embedded copy of the built-in.
func TestShippedVerticalsCheck(t *testing.T) {
	entries, err := os.ReadDir("../verticals")
	if err != nil {
		t.Fatal(err)
	}
	folders := map[string]fs.FS{"embedded streaming": verticals.Streaming()}
	for _, e := range entries {
		if e.IsDir() {
			folders[e.Name()] = os.DirFS(filepath.Join("../verticals", e.Name()))
		}
	}
	if len(folders) < 3 {
		t.Fatalf("expected verticals/streaming and verticals/shop, found %v", entries)
	}
	for name, fsys := range folders {
		rep := vertical.Check(context.Background(), fsys, name, clock)
		if !rep.OK() || rep.Count(vertical.StatusWarn)+rep.Count(vertical.StatusSkip) > 0 {
			t.Errorf("%s:\n%s", name, report(rep))
		}
	}
}

func report(rep *vertical.Report) string {
	var b strings.Builder
	for _, r := range rep.Results {
		b.WriteString(r.String() + "\n")
	}
	return b.String()
}

// shop returns the files of verticals/shop, to be changed by a test.
func shop(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	root := "../verticals/shop"
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: data}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// edit replaces old with new in file of m, failing when old is absent.
func edit(t *testing.T, m fstest.MapFS, file, old, new string) {
	t.Helper()
	f, ok := m[file]
	if !ok || !strings.Contains(string(f.Data), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	m[file] = &fstest.MapFile{Data: []byte(strings.Replace(string(f.Data), old, new, 1))}
}

// TestLoadErrorsNameFileLineAndField: each broken vertical.yaml fails to
// load with an error naming the file, the line and the field.
func TestLoadErrorsNameFileLineAndField(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		want     string
	}{
		{"yaml syntax", "name: shop", "name: [shop", "vertical.yaml:"},
		{"unknown top-level key", "name: shop", "name: shop\ntopcs: {}", "vertical.yaml:6 topcs: unknown key"},
		{"unknown decoder key", "    entity_type: order\n", "    entity_typ: order\n", "vertical.yaml:13: field entity_typ not found"},
		{"no name", "name: shop\n", "", "vertical.yaml:5 name: required"},
		{"bad name", "name: shop", "name: Shop!", `vertical.yaml:5 name: "Shop!" must match`},
		{"bad format", "format: debezium", "format: avro", `vertical.yaml:10 topics.shop.public.orders: normalize: unknown format: "avro"`},
		{"request log without id field", "request_log: {id_field: view_id, time_field: ts, time_format: rfc3339}", "request_log: {time_field: ts}",
			"vertical.yaml:16 topics.shop.page_views: normalize: missing setting: request_log.id_field"},
		{"bad topic name", "  shop.page_views:", "  shop page views:", `vertical.yaml:16 topics.shop page views: "shop page views" is not a valid topic name`},
		{"duplicate topic", "  shop.page_views:", "  shop.public.orders:", "vertical.yaml:16"},
		{"bad cache", "{name: products, topic: shop.products, size: 100000}", "{name: Products, topic: shop.products}",
			`vertical.yaml:27 enrich.caches[0].name: "Products" must match`},
		{"cache without topic", "{name: products, topic: shop.products, size: 100000}", "{name: products}", "vertical.yaml:27 enrich.caches[0].topic: required"},
		{"idle probe", "enrich:\n", "enrich:\n  idle_probe: 2s\n", "vertical.yaml:26 enrich.idle_probe: a setting of the process"},
		{"empty counts", "enrich:\n", "counts: {edge_types: []}\nenrich:\n", "vertical.yaml:25 counts.edge_types: empty"},
		{"no topics", "topics:\n", "topics: {}\nold_topics:\n", "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := shop(t)
			edit(t, m, vertical.FileName, tt.old, tt.new)
			_, err := vertical.Load(m, "shop")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := vertical.Load(fstest.MapFS{}, "empty"); err == nil || !strings.Contains(err.Error(), "vertical.yaml: missing: empty is not a vertical folder") {
		t.Errorf("empty folder: %v", err)
	}
	if _, err := vertical.LoadDir("/nonexistent/vertical"); err == nil || !strings.Contains(err.Error(), "/nonexistent/vertical") {
		t.Errorf("missing dir: %v", err)
	}
}

// TestCheckFailures: a broken part of a vertical fails its check with a
// line naming file, line and field; the rest is still checked.
func TestCheckFailures(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, m fstest.MapFS)
		want   []string // FAIL lines (prefixes), in order
		skip   bool     // samples are skipped
	}{
		{"bad YAML in vertical.yaml", func(t *testing.T, m fstest.MapFS) {
			edit(t, m, "vertical.yaml", "topics:\n", "topics:\n  - [\n")
		}, []string{"FAIL  vertical.yaml:"}, true},
		{"decoder setting", func(t *testing.T, m fstest.MapFS) {
			edit(t, m, "vertical.yaml", "time_format: rfc3339", "time_format: unix_days")
		}, []string{`FAIL  vertical.yaml:16 topics.shop.page_views: normalize: bad setting: request_log.time_format "unix_days"`}, true},
		{"graph schema", func(t *testing.T, m fstest.MapFS) {
			edit(t, m, "graph/shop.yaml", "price_cents: int", "price_cents: integer")
		}, []string{`FAIL  graph/shop.yaml:15 node_types.product.properties.price_cents: unknown type "integer"`}, true},
		{"mapping that does not compile", func(t *testing.T, m fstest.MapFS) {
			edit(t, m, "mappings/page_views.yaml", "            referrer: attrs.referrer\n", "            referrer: attrs.referrer\n            user_agent: attrs.user_agent\n")
		}, []string{"FAIL  mappings/page_views.yaml:31 rule page_view emit.edges[0].props.user_agent: "}, true},
		{"join of an unknown cache", func(t *testing.T, m fstest.MapFS) {
			edit(t, m, "mappings/page_views.yaml", "cache: products", "cache: catalogue")
		}, []string{"FAIL  mappings/page_views.yaml:"}, true},
		{"rule of an undeclared topic", func(t *testing.T, m fstest.MapFS) {
			edit(t, m, "mappings/page_views.yaml", "topic: shop.page_views", "topic: shop.pageviews")
		}, []string{
			"FAIL  mappings/page_views.yaml:7 rule page_view select.topic: topic shop.pageviews is not an event topic of vertical.yaml",
			"FAIL  vertical.yaml:16 topics.shop.page_views: no mapping rule selects this topic",
		}, true},
		{"sample that dead-letters", func(t *testing.T, m fstest.MapFS) {
			edit(t, m, "samples/shop.page_views.jsonl", `,"headers":{"rtgraph.expect":"dead_letter:join_failed"}`, "")
		}, []string{`FAIL  samples/shop.page_views.jsonl:3: dead letter map join_failed at joins[0].key in page_views.yaml#page_view: ` +
			`mapping: join_failed in page_views.yaml#page_view at "joins[0].key": join product: no document under key p-999 in cache products; ` +
			`if the record is meant to fail, say so with "headers": {"rtgraph.expect": "dead_letter:join_failed"}`}, false},
		{"sample that fails to decode", func(t *testing.T, m fstest.MapFS) {
			edit(t, m, "samples/shop.page_views.jsonl", `"ts":"2026-11-25T08:58:10Z"`, `"ts":"yesterday"`)
		}, []string{`FAIL  samples/shop.page_views.jsonl:1: dead letter decode bad_time at ts: `}, false},
		{"expected dead letter that maps", func(t *testing.T, m fstest.MapFS) {
			edit(t, m, "samples/shop.page_views.jsonl", `"product_id":"p-999"`, `"product_id":"p-100"`)
		}, []string{"FAIL  samples/shop.page_views.jsonl:3: expected a dead letter (rtgraph.expect: dead_letter:join_failed) but it mapped to 3 mutations"}, false},
		{"dead letter of another class", func(t *testing.T, m fstest.MapFS) {
			edit(t, m, "samples/shop.page_views.jsonl", "dead_letter:join_failed", "dead_letter:bad_time")
		}, []string{"FAIL  samples/shop.page_views.jsonl:3: expected dead letter class bad_time, got map join_failed"}, false},
		{"bad expect header", func(t *testing.T, m fstest.MapFS) {
			edit(t, m, "samples/shop.page_views.jsonl", "dead_letter:join_failed", "dead")
		}, []string{`FAIL  samples/shop.page_views.jsonl:3: headers.rtgraph.expect: "dead" is not dead_letter or dead_letter:<class>`}, false},
		{"sample not in produce's format", func(t *testing.T, m fstest.MapFS) {
			edit(t, m, "samples/shop.public.orders.jsonl", `"timestamp":"2026-11-25T09:01:00.120Z"`, `"timestamp":"9am"`)
		}, []string{`FAIL  samples/shop.public.orders.jsonl:2: timestamp: parsing time "9am"`}, false},
		{"sample of an unknown topic", func(t *testing.T, m fstest.MapFS) {
			m["samples/shop.orders.jsonl"] = &fstest.MapFile{Data: []byte(`{"value":{}}` + "\n")}
		}, []string{"FAIL  samples/shop.orders.jsonl: shop.orders is neither an event topic nor a cache topic of vertical.yaml"}, false},
		{"cache document that is not an object", func(t *testing.T, m fstest.MapFS) {
			edit(t, m, "samples/shop.products.jsonl", `"value":{"product_id":"p-101","name":"Rain Shell","category":"jackets","price_cents":12900}`, `"value":["p-101"]`)
		}, []string{`FAIL  samples/shop.products.jsonl:2: cache products: key "p-101": enrich: document is not a JSON object`}, true},
		{"counted edge type not in the schema", func(t *testing.T, m fstest.MapFS) {
			edit(t, m, "vertical.yaml", "enrich:\n", "counts: {edge_types: [impressed]}\nenrich:\n")
		}, []string{`FAIL  vertical.yaml:25 counts.edge_types: graph: invalid count config: counts.edge_types: "impressed" is not an edge type of the graph schema`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := shop(t)
			tt.change(t, m)
			rep := vertical.Check(context.Background(), m, "shop", clock)
			if rep.OK() {
				t.Fatalf("check passed:\n%s", report(rep))
			}
			var fails []string
			for _, r := range rep.Results {
				if r.Status == vertical.StatusFail {
					fails = append(fails, r.String())
				}
			}
			if len(fails) != len(tt.want) {
				t.Fatalf("%d failures, want %d:\n%s", len(fails), len(tt.want), report(rep))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(fails[i], w) {
					t.Errorf("failure %d:\n got %s\nwant %s...", i, fails[i], w)
				}
			}
			skipped := slices.ContainsFunc(rep.Results, func(r vertical.Result) bool {
				return r.Status == vertical.StatusSkip && strings.HasPrefix(r.Subject, "samples/")
			})
			if skipped != tt.skip {
				t.Errorf("samples skipped: %v, want %v:\n%s", skipped, tt.skip, report(rep))
			}
		})
	}
}

// TestCheckWarnsOfMissingSamples: a topic or a cache without samples is a
// warning, not a failure.
func TestCheckWarnsOfMissingSamples(t *testing.T) {
	m := shop(t)
	delete(m, "samples/shop.products.jsonl")
	delete(m, "samples/shop.public.orders.jsonl")
	// Without the catalogue every view misses its join.
	m["samples/shop.page_views.jsonl"] = &fstest.MapFile{Data: []byte(
		`{"value":{"view_id":"pv-1","ts":"2026-11-25T08:58:10Z","customer_id":42,"product_id":"p-100"},"headers":{"rtgraph.expect":"dead_letter"}}` + "\n")}
	rep := vertical.Check(context.Background(), m, "shop", clock)
	if !rep.OK() || rep.Count(vertical.StatusWarn) != 2 {
		t.Fatalf("want 2 warnings and no failure:\n%s", report(rep))
	}
	for _, want := range []string{
		"warn  vertical.yaml:27 enrich.caches[0]: no samples/shop.products.jsonl: joins on cache products miss in check and try",
		"warn  vertical.yaml:10 topics.shop.public.orders: no samples/shop.public.orders.jsonl: nothing exercises its decoder and rules",
		"ok    samples/shop.page_views.jsonl: 1 record: 0 mapped (0 mutations), 1 dead-lettered as expected (join_failed)",
	} {
		if !strings.Contains(report(rep), want+"\n") {
			t.Errorf("report lacks %q:\n%s", want, report(rep))
		}
	}
}

// TestCheckWarnsOfUnwrittenEndNodes: a node type that rules give edges but
// never write is a warning (its edges would never be seen) unless the
// schema declares it implicit.
func TestCheckWarnsOfUnwrittenEndNodes(t *testing.T) {
	m := shop(t)
	// The page-view rule stops writing products: its viewed edges end at
	// nodes nothing writes.
	edit(t, m, "mappings/page_views.yaml", `        - type: product
          id: attrs.product_id
          props:
            name: join.product.name
            category: join.product.category
            price_cents: join.product.price_cents
`, "")
	rep := vertical.Check(context.Background(), m, "shop", clock)
	want := "warn  graph/shop.yaml:11 node_types.product: page_views.yaml#page_view give edges to product nodes but no rule writes one: those edges are never seen (an edge needs both end nodes); declare it implicit: true, or write its nodes"
	if !rep.OK() || !strings.Contains(report(rep), want+"\n") {
		t.Fatalf("report lacks %q:\n%s", want, report(rep))
	}
	edit(t, m, "graph/shop.yaml", "  product:\n", "  product:\n    implicit: true\n")
	if rep := vertical.Check(context.Background(), m, "shop", clock); rep.Count(vertical.StatusWarn) != 0 || !rep.OK() {
		t.Fatalf("an implicit product still warns:\n%s", report(rep))
	}
}

// TestRunnerPipelineSemantics: a record decodes and maps as in the
// pipeline; a decode failure and a mapping failure are dead letters with
// the pipeline's stage and class; a record without timestamp gets the
// clock's time.
func TestRunnerPipelineSemantics(t *testing.T) {
	v, err := vertical.LoadDir("../verticals/shop")
	if err != nil {
		t.Fatal(err)
	}
	r, err := vertical.NewRunner(v, clock)
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Caches(); len(c) != 1 || c[0].Documents != 2 || c[0].File != "samples/shop.products.jsonl" {
		t.Errorf("caches %+v", c)
	}
	recs, err := vertical.ReadRecords(strings.NewReader(
		`{"view_id":"pv-9","ts":"2026-11-25T10:00:00Z","customer_id":7,"product_id":"p-101","referrer":"home"}`+"\n"+
			`{"view_id":"pv-10","ts":"2026-11-25T10:00:00Z","customer_id":7}`+"\n"+
			`{"view_id":"pv-11","ts":"2026-11-25T10:00:00Z","customer_id":7,"product_id":"p-7"}`+"\n"), "views", vertical.FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	msg := r.Message("shop.page_views", 0, &recs[0])
	if !msg.Timestamp.Equal(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)) || msg.Partition != 0 {
		t.Errorf("message %+v", msg)
	}
	out, err := r.Process(ctx, msg)
	if err != nil || out.DeadLetter != nil || out.Mutations() != 3 || len(out.Envelopes) != 1 || out.Envelopes[0].Envelope.ID != "pv-9" {
		t.Fatalf("record 1: %+v, %v", out, err)
	}
	if m := out.Envelopes[0].Mutations[2]; m.Edge.Type != "viewed" || m.TTL != 30*24*time.Hour || m.Props["referrer"] != "home" {
		t.Errorf("viewed edge %+v", m)
	}
	out, _ = r.Process(ctx, r.Message("shop.page_views", 1, &recs[1]))
	if dl := out.DeadLetter; dl == nil || dl.Stage != vertical.StageDecode || dl.Class != string(normalize.ClassMissingField) || dl.Field != "product_id" || dl.Mapping != "shop" {
		t.Errorf("record 2: %+v", dl)
	}
	out, _ = r.Process(ctx, r.Message("shop.page_views", 2, &recs[2]))
	if dl := out.DeadLetter; dl == nil || dl.Stage != vertical.StageMap || dl.Class != "join_failed" || dl.Mapping != "page_views.yaml#page_view" ||
		len(out.Envelopes) != 1 || out.Mutations() != 0 {
		t.Errorf("record 3: %+v %+v", out, dl)
	}
	if _, err := r.Process(ctx, r.Message("shop.products", 0, &recs[0])); err == nil {
		t.Error("a cache topic was processed as an event topic")
	}
}

// TestReadRecords reads the format of `rtgraph produce`: record objects
// with encodings and headers, plain values, JSON arrays, lines.
func TestReadRecords(t *testing.T) {
	in := `{"key":"k1","value":{"a": 1},"timestamp":"2026-11-25T09:00:00Z","headers":{"h":"v","rtgraph.expect":"dead_letter"}}

{"key":{"id": 2},"value":null}
{"value":"bm90IGpzb24=","value_encoding":"base64","key":"a2V5","key_encoding":"base64","partition":2}
{"value":"not json {","value_encoding":"utf8","headers":[{"key":"x","value":null},{"key":"x","value":"2"}]}
{"a":1,"b":2}
[1,2]
`
	recs, err := vertical.ReadRecords(strings.NewReader(in), "in.jsonl", vertical.FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		line      int
		key, val  string
		nilKey    bool
		tombstone bool
		partition int32
	}
	want := []rec{
		{1, "k1", `{"a":1}`, false, false, -1},
		{3, `{"id":2}`, "", false, true, -1},
		{4, "key", "not json", false, false, 2},
		{5, "", "not json {", true, false, -1},
		{6, "", `{"a":1,"b":2}`, true, false, -1},
		{7, "", `[1,2]`, true, false, -1},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, w := range want {
		g := recs[i]
		if g.Line != w.line || string(g.Key) != w.key || (g.Key == nil) != w.nilKey || string(g.Value) != w.val || (g.Value == nil) != w.tombstone || g.Partition != w.partition {
			t.Errorf("record %d: line %d key %q value %q partition %d; want %+v", i, g.Line, g.Key, g.Value, g.Partition, w)
		}
	}
	if !recs[0].Timestamp.Equal(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("timestamp %v", recs[0].Timestamp)
	}
	if exp, err := vertical.ExpectOf(&recs[0]); err != nil || !exp.DeadLetter || exp.Class != "" {
		t.Errorf("expect %+v %v", exp, err)
	}
	if v, ok := recs[3].Header("x"); !ok || v != "2" {
		t.Errorf("last header x = %q %v", v, ok)
	}

	arr, err := vertical.ReadRecords(strings.NewReader("[\n {\"value\": {\"a\": 1}},\n\n {\"key\": \"k\", \"value\": null}\n]\n"), "a.json", vertical.FormatAuto)
	if err != nil || len(arr) != 2 || arr[1].Line != 4 || string(arr[0].Value) != `{"a":1}` {
		t.Fatalf("array: %+v %v", arr, err)
	}
	lines, err := vertical.ReadRecords(strings.NewReader("{broken\n\n{\"value\":1}\n"), "l", vertical.FormatLines)
	if err != nil || len(lines) != 2 || string(lines[0].Value) != "{broken" || lines[1].Line != 3 {
		t.Fatalf("lines: %+v %v", lines, err)
	}
	values, err := vertical.ReadRecords(strings.NewReader(`{"value":1,"key":"k"}`+"\n"), "v", vertical.FormatValues)
	if err != nil || len(values) != 1 || values[0].Key != nil || string(values[0].Value) != `{"value":1,"key":"k"}` {
		t.Fatalf("values: %+v %v", values, err)
	}

	for _, tt := range []struct{ in, format, want string }{
		{`{"value":1}` + "\n" + `{"value":`, "auto", "f:2: not JSON"},
		{`null`, "auto", "f:1: a null value is a tombstone, which needs a key"},
		{`{"value":null}`, "auto", "f:1: a tombstone (null value) needs a key"},
		{`{"value":1,"extra":2}`, "records", `f:1: unknown field "extra"`},
		{`[1]`, "records", "f:1: not a record object"},
		{`{"value":"x","value_encoding":"base64"}`, "auto", "f:1: value: not base64"},
		{`{"value":1,"partition":-1}`, "auto", "f:1: partition: -1 is not a partition number"},
		{`{"value":1,"headers":{"h":1}}`, "auto", "f:1: headers: not an object of strings"},
		{`{"value":1,"key_encoding":"hex"}`, "auto", `f:1: key_encoding: "hex" is not one of json, utf8, base64`},
		{"[\n{\"value\":1},\n{\"value\":\n]", "auto", "f:3:"},
		{"[{\"value\":1}] 2", "auto", "f:1: data after the array"},
		{`{"value":1}`, "xml", `unknown format "xml"`},
	} {
		_, err := vertical.ReadRecords(strings.NewReader(tt.in), "f", vertical.Format(tt.format))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q as %s: error %v, want %q", tt.in, tt.format, err, tt.want)
		}
		var re *vertical.RecordError
		if err != nil && tt.format != "xml" && !errors.As(err, &re) {
			t.Errorf("%q: %T is not a *RecordError", tt.in, err)
		}
	}
}
