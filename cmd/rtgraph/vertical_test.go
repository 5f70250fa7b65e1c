package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/rtgraph/rtgraph/ingest"
	"github.com/rtgraph/rtgraph/internal/broker"
	"github.com/rtgraph/rtgraph/internal/produce"
	"github.com/rtgraph/rtgraph/vertical"
)

const shopDir = "../../verticals/shop"

// pinClock fixes the clock of vertical check and try for the test.
func pinClock(t *testing.T) {
	t.Helper()
	old := verticalClock
	verticalClock = func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }
	t.Cleanup(func() { verticalClock = old })
}

// copyDir copies the folder src to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// editFile replaces old with new in the file at path.
func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(data, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVerticalCheckCommand(t *testing.T) {
	pinClock(t)
	code, out, errs := runCmd([]string{"vertical", "check", shopDir}, nil)
	want := `ok    vertical.yaml: vertical shop: 2 event topics, 1 cache, no frequency-cap counts
ok    vertical.yaml:10 topics.shop.public.orders: debezium decoder, entity order, key order_id
ok    vertical.yaml:16 topics.shop.page_views: request_log decoder, entity page_view, key customer_id, product_id
ok    vertical.yaml:27 enrich.caches[0]: cache products fed by topic shop.products
ok    graph/: 3 node types (customer, order, product), 2 edge types (placed, viewed)
ok    mappings/: 3 rules in 2 files compile against the graph schema and the caches
ok    vertical.yaml:10 topics.shop.public.orders: mapped by orders.yaml#order_upsert, orders.yaml#order_delete
ok    vertical.yaml:16 topics.shop.page_views: mapped by page_views.yaml#page_view
ok    samples/shop.products.jsonl: 2 documents for cache products
ok    samples/shop.public.orders.jsonl: 5 records: 5 mapped (10 mutations)
ok    samples/shop.page_views.jsonl: 3 records: 2 mapped (6 mutations), 1 dead-lettered as expected (join_failed)
vertical shop: 11 ok
`
	if code != exitOK || out != want || errs != "" {
		t.Fatalf("code %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", code, out, want, errs)
	}
	// The folder may come after the flags, too.
	if code, _, errs := runCmd([]string{"vertical", "check", "--", shopDir}, nil); code != exitOK {
		t.Errorf("vertical check -- DIR: %d %s", code, errs)
	}
}

func TestVerticalCheckCommandFailures(t *testing.T) {
	pinClock(t)
	dir := filepath.Join(t.TempDir(), "myshop")
	copyDir(t, shopDir, dir)
	// A rule of a topic vertical.yaml does not declare (a typo), and so a
	// declared topic without rules.
	editFile(t, filepath.Join(dir, "mappings", "page_views.yaml"), "topic: shop.page_views", "topic: shop.pageviews")
	code, out, errs := runCmd([]string{"vertical", "check", dir}, nil)
	for _, want := range []string{
		"FAIL  mappings/page_views.yaml:7 rule page_view select.topic: topic shop.pageviews is not an event topic of vertical.yaml; its topics: shop.public.orders, shop.page_views\n",
		"FAIL  vertical.yaml:16 topics.shop.page_views: no mapping rule selects this topic: every event of it would be dead-lettered (unknown_entity)\n",
		"skip  samples/: needs valid mappings\n",
		"vertical shop: 7 ok, 2 failed, 1 skipped\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if code != exitError || errs != "rtgraph: vertical check "+dir+": 2 failed\n" {
		t.Errorf("code %d, stderr %q", code, errs)
	}

	// Bad YAML: the file and line, and what could still be checked.
	if err := os.WriteFile(filepath.Join(dir, "vertical.yaml"), []byte("name: myshop\ntopics:\n  shop.page_views: {format: request_log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd([]string{"vertical", "check", dir}, nil)
	if code != exitError || !strings.HasPrefix(out, "FAIL  vertical.yaml:2: did not find expected ',' or '}'\nok    graph/:") {
		t.Errorf("bad YAML: code %d\n%s", code, out)
	}

	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"vertical"}, exitUsage, "vertical needs a subcommand: check, try"},
		{[]string{"vertical", "lint"}, exitUsage, `vertical needs a subcommand: check, try (not "lint")`},
		{[]string{"vertical", "check"}, exitUsage, "rtgraph vertical check needs the vertical's folder (DIR)"},
		{[]string{"vertical", "check", shopDir, "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"vertical", "check", "/nonexistent/shop"}, exitError, "rtgraph vertical check: stat /nonexistent/shop: no such file or directory"},
		{[]string{"vertical", "check", shopDir + "/vertical.yaml"}, exitError, "vertical.yaml is not a directory"},
	} {
		code, out, errs := runCmd(tt.args, nil)
		if code != tt.code || !strings.Contains(out+errs, tt.want) {
			t.Errorf("rtgraph %v: code %d, output %q; want %d containing %q", tt.args, code, out+errs, tt.code, tt.want)
		}
	}
}

func TestVerticalTryCommand(t *testing.T) {
	pinClock(t)
	file := filepath.Join(shopDir, "samples", "shop.page_views.jsonl")
	code, out, errs := runCmd([]string{"vertical", "try", shopDir, "--topic", "shop.page_views", "--file", file}, nil)
	if code != exitOK || errs != "join caches: products from samples/shop.products.jsonl (2 documents)\n" {
		t.Fatalf("code %d, stderr %q", code, errs)
	}
	for _, want := range []string{
		"record 1 (line 1, no key):\n  envelope pv-0001: request create page_view, key 42/p-100, event time 2026-11-25T08:58:10Z\n",
		`    attributes {"customer_id":42,"product_id":"p-100","referrer":"search","ts":"2026-11-25T08:58:10Z","user_agent":"Mozilla/5.0","view_id":"pv-0001"}` + "\n",
		"  3 mutations:\n    upsert_node customer:42\n" +
			`    upsert_node product:p-100 {"category":"shoes","name":"Trail Runner 2","price_cents":8900}` + "\n" +
			`    upsert_edge customer:42 -viewed-> product:p-100 {"event_id":"pv-0001","referrer":"search"} ttl 30d` + "\n",
		"  dead letter: stage map, class join_failed, field joins[0].key, mapping page_views.yaml#page_view (expected)\n" +
			`    mapping: join_failed in page_views.yaml#page_view at "joins[0].key": join product: no document under key p-999 in cache products` + "\n",
		"3 records: 2 mapped (6 mutations), 1 dead-lettered\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}

	// --json: one object per record; CDC envelopes with their images.
	orders := filepath.Join(shopDir, "samples", "shop.public.orders.jsonl")
	code, out, errs = runCmd([]string{"vertical", "try", "--json", "--topic", "shop.public.orders", "--file", orders, shopDir}, nil)
	if code != exitOK || !strings.Contains(errs, "5 records: 5 mapped (10 mutations), 0 dead-lettered") {
		t.Fatalf("--json: code %d, stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("--json: %d lines, want 5:\n%s", len(lines), out)
	}
	var recs []tryRecord
	for _, l := range lines {
		var r tryRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		recs = append(recs, r)
	}
	first := recs[0]
	if first.Record != 1 || first.Offset != 0 || first.Key == nil || *first.Key != `{"order_id":7001}` || len(first.Envelopes) != 1 ||
		first.Envelopes[0].Envelope.After["status"] != "placed" || !first.Envelopes[0].Envelope.IngestTime.Equal(verticalClock()) {
		t.Errorf("record 1: %+v", first)
	}
	var ops []string
	for _, m := range first.Envelopes[0].Mutations {
		ops = append(ops, m.Op)
	}
	if !slices.Equal(ops, []string{"upsert_node", "upsert_node", "upsert_edge"}) || first.Envelopes[0].Mutations[2].Edge.Type != "placed" {
		t.Errorf("record 1 mutations: %+v", first.Envelopes[0].Mutations)
	}
	if last := recs[4]; !last.Tombstone || len(last.Envelopes) != 1 || len(last.Envelopes[0].Mutations) != 0 || last.Envelopes[0].Envelope.Op != "tombstone" {
		t.Errorf("record 5 (tombstone): %+v", last)
	}
	code, out, _ = runCmd([]string{"vertical", "try", shopDir, "--json", "--topic", "shop.page_views", "--file", file}, nil)
	var third tryRecord
	if code != exitOK || json.Unmarshal([]byte(strings.Split(strings.TrimSpace(out), "\n")[2]), &third) != nil ||
		third.DeadLetter == nil || third.DeadLetter.Class != "join_failed" || third.DeadLetter.Stage != "map" || third.Expect != "dead_letter:join_failed" {
		t.Errorf("--json dead letter: %d %+v", code, third)
	}

	// stdin, as lines: a malformed record is a decode dead letter.
	old := verticalStdin
	verticalStdin = strings.NewReader(`{"view_id":"pv-9","ts":"2026-11-25T10:00:00Z","customer_id":7,"product_id":"p-101"}` + "\n{\"view_id\": \"pv-10\", \"ts\n")
	t.Cleanup(func() { verticalStdin = old })
	code, out, _ = runCmd([]string{"vertical", "try", shopDir, "--topic", "shop.page_views", "--file", "-", "--format", "lines"}, nil)
	if code != exitOK || !strings.Contains(out, "record 2 (line 2, no key):\n  dead letter: stage decode, class malformed_json") ||
		!strings.Contains(out, "2 records: 1 mapped (3 mutations), 1 dead-lettered\n") {
		t.Errorf("stdin: code %d\n%s", code, out)
	}

	// A vertical without samples of its cache: said once, joins miss.
	dir := filepath.Join(t.TempDir(), "bare")
	copyDir(t, shopDir, dir)
	if err := os.Remove(filepath.Join(dir, "samples", "shop.products.jsonl")); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCmd([]string{"vertical", "try", dir, "--topic", "shop.page_views", "--file", file}, nil)
	if code != exitOK || errs != "join caches: products empty (no samples/shop.products.jsonl)\n" || !strings.Contains(out, "3 records: 0 mapped (0 mutations), 3 dead-lettered") {
		t.Errorf("empty cache: code %d, stderr %q\n%s", code, errs, out)
	}

	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"value\":1}\n{\"value\":\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"vertical", "try", shopDir, "--topic", "shop.page_views"}, exitUsage, "--topic and --file are required"},
		{[]string{"vertical", "try", shopDir, "--topic", "shop.orders", "--file", file}, exitUsage,
			"--topic shop.orders is not a topic of vertical shop (its topics: shop.public.orders, shop.page_views)"},
		{[]string{"vertical", "try", shopDir, "--topic", "shop.products", "--file", file}, exitUsage,
			"--topic shop.products feeds cache products; its records are documents, not events"},
		{[]string{"vertical", "try", shopDir, "--topic", "shop.page_views", "--file", bad}, exitError, "bad.jsonl:2: not JSON"},
		{[]string{"vertical", "try", shopDir, "--topic", "shop.page_views", "--file", "/nonexistent.jsonl"}, exitError, "/nonexistent.jsonl"},
		{[]string{"vertical", "try", shopDir, "--topic", "shop.page_views", "--file", file, "--format", "xml"}, exitError, `unknown format "xml"`},
		{[]string{"vertical", "try", "/nonexistent", "--topic", "t", "--file", file}, exitError, "stat /nonexistent"},
	} {
		code, out, errs := runCmd(tt.args, nil)
		if code != tt.code || !strings.Contains(out+errs, tt.want) {
			t.Errorf("rtgraph %v: code %d, output %q; want %d containing %q", tt.args, code, out+errs, tt.code, tt.want)
		}
	}

	// A folder that does not load is refused with its problem.
	broken := filepath.Join(t.TempDir(), "broken")
	copyDir(t, shopDir, broken)
	editFile(t, filepath.Join(broken, "vertical.yaml"), "format: debezium", "format: avro")
	code, _, errs = runCmd([]string{"vertical", "try", broken, "--topic", "shop.page_views", "--file", file}, nil)
	if code != exitError || !strings.Contains(errs, `vertical.yaml:10 topics.shop.public.orders: normalize: unknown format: "avro"`) {
		t.Errorf("broken vertical: code %d, %s", code, errs)
	}
}

// TestVerticalConfig: --vertical puts the folder's topics, caches, schema,
// mappings and counted edge types in place of the configuration's, and
// refuses a configuration that sets them too, naming both.
func TestVerticalConfig(t *testing.T) {
	streamingDir := "../../verticals/streaming"
	cfg, err := loadConfigWith("", nil, shopDir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.vertical == nil || cfg.vertical.Name != "shop" || len(cfg.Ingest.Topics) != 2 || cfg.Ingest.Topics["shop.page_views"].RequestLog.IDField != "view_id" ||
		len(cfg.Enrich.Caches) != 1 || cfg.Enrich.Caches[0].Topic != "shop.products" || !cfg.countsOff {
		t.Errorf("shop: %+v", cfg)
	}
	if s, err := loadSchema(cfg); err != nil || len(s.NodeTypes()) != 3 {
		t.Errorf("shop schema: %v", err)
	}
	if _, err := fs.Stat(mappingsFS(cfg), "page_views.yaml"); err != nil {
		t.Errorf("shop mappings: %v", err)
	}
	// The configuration may name counted edge types the vertical does not.
	cfg, err = loadConfigWith("", []string{"RTGRAPH_COUNTS_EDGE_TYPES=viewed"}, shopDir)
	if err != nil || cfg.countsOff || !slices.Equal(cfg.Counts.EdgeTypes, []string{"viewed"}) {
		t.Errorf("shop with counts.edge_types: %v %+v", err, cfg)
	}
	cfg, err = loadConfigWith("", nil, streamingDir)
	if err != nil || cfg.countsOff || !slices.Equal(cfg.Counts.EdgeTypes, []string{"impressed"}) || len(cfg.Ingest.Topics) != 8 {
		t.Errorf("streaming: %v %+v", err, cfg)
	}

	file := filepath.Join(t.TempDir(), "rtgraph.yaml")
	yaml := "ingest:\n  topics:\n    shop.public.orders: {format: debezium}\nenrich:\n  caches:\n    - {name: sellers, topic: shop.sellers}\n" +
		"schemas:\n  graph_dir: /etc/rtgraph/graph\n  mappings_dir: /etc/rtgraph/mappings\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = loadConfigWith(file, nil, shopDir)
	want := "--vertical " + shopDir + " conflicts with ingest.topics, enrich.caches, schemas.graph_dir and schemas.mappings_dir in the configuration (" + file + " and RTGRAPH_* variables)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("conflict: %v\nwant %s", err, want)
	}
	_, err = loadConfigWith("", []string{"RTGRAPH_COUNTS_EDGE_TYPES=impressed"}, streamingDir)
	if err == nil || !strings.Contains(err.Error(), "--vertical "+streamingDir+" conflicts with counts.edge_types in the configuration (RTGRAPH_* variables)") {
		t.Errorf("counts conflict: %v", err)
	}

	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve", "--vertical", shopDir, "--config", file}, exitUsage, want},
		{[]string{"ingest", "--vertical", shopDir, "--config", file}, exitUsage, want},
		{[]string{"demo", "--vertical", shopDir, "--config", file}, exitUsage, want},
		{[]string{"group", "rewind", "--to", "2026-11-25T00:00:00Z", "--vertical", shopDir, "--config", file}, exitUsage, want},
		{[]string{"serve", "--vertical", "/nonexistent/shop"}, exitError, "vertical /nonexistent/shop: stat /nonexistent/shop"},
		{[]string{"demo", "--vertical", shopDir, "--rate", "10"}, exitUsage, "--rate drives the built-in vertical's generator; with --vertical nothing is generated"},
	} {
		code, out, errs := runCmd(tt.args, nil)
		if code != tt.code || !strings.Contains(out+errs, tt.want) {
			t.Errorf("rtgraph %v: code %d, output %q; want %d containing %q", tt.args, code, out+errs, tt.code, tt.want)
		}
	}
	// The built-in demo refuses schema folders too: it runs its own.
	if err := os.WriteFile(file, []byte("schemas:\n  graph_dir: /etc/rtgraph/graph\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd([]string{"demo", "--config", file}, nil)
	if code != exitUsage || !strings.Contains(out+errs, "would ignore schemas.graph_dir of the configuration") {
		t.Errorf("built-in demo with schemas.graph_dir: %d %s", code, out+errs)
	}
}

// startBroker starts an in-process Kafka-protocol broker with the
// vertical's topics (one partition each, so records keep file order).
func startBroker(t *testing.T, v *vertical.Vertical, extra ...string) string {
	t.Helper()
	bcfg := broker.DefaultConfig()
	bcfg.Addr = "127.0.0.1:0"
	bcfg.Dir = t.TempDir()
	bcfg.Partitions = 1
	bcfg.Topics = append(append(v.TopicNames(), "rtgraph.dlq"), extra...)
	bcfg.CompactedTopics = v.CacheTopics()
	brk, err := broker.Start(context.Background(), bcfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = brk.Close() })
	return brk.Addrs()[0]
}

// publishSamples publishes the vertical's samples, caches first, with
// `rtgraph produce`'s code.
func publishSamples(t *testing.T, addr, dir string, v *vertical.Vertical) {
	t.Helper()
	k := ingest.DefaultKafkaConfig()
	k.Brokers = []string{addr}
	for _, topic := range append(v.CacheTopics(), v.TopicNames()...) {
		if _, err := produce.File(t.Context(), k, topic, filepath.Join(dir, "samples", topic+".jsonl")); err != nil {
			t.Fatal(err)
		}
	}
}

func getURL(url string) (int, string) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitURL(t *testing.T, what string, done <-chan int, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		select {
		case code := <-done:
			t.Fatalf("exited (%d) before %s", code, what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %s after 60s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeAndIngestWithVertical runs `rtgraph serve --vertical` and
// `rtgraph ingest --vertical` in process against an embedded broker: the
// vertical's samples, published by produce, become its graph.
func TestServeAndIngestWithVertical(t *testing.T) {
	v, err := vertical.LoadDir(shopDir)
	if err != nil {
		t.Fatal(err)
	}
	addr := startBroker(t, v)
	publishSamples(t, addr, shopDir, v)
	for _, name := range []string{"serve", "ingest"} {
		t.Run(name, func(t *testing.T) {
			httpAddr := freeAddr(t)
			env := []string{"RTGRAPH_KAFKA_BROKERS=" + addr, "RTGRAPH_HTTP_ADDR=" + httpAddr, "RTGRAPH_EMBEDDED_DIR=" + t.TempDir(),
				"RTGRAPH_INGEST_GROUP_ID=rtgraph-" + name, "RTGRAPH_LOG_LEVEL=warn"}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan int, 1)
			var stderr syncBuffer
			go func() { done <- run(ctx, []string{name, "--vertical", shopDir}, io.Discard, &stderr, env) }()
			base := "http://" + httpAddr
			waitURL(t, "ready", done, func() bool { code, _ := getURL(base + "/readyz"); return code == 200 })
			if name == "serve" {
				waitURL(t, "showing product p-100", done, func() bool {
					code, body := getURL(base + "/v1/nodes/product/p-100")
					return code == 200 && strings.Contains(body, `"name":"Trail Runner 2"`)
				})
				if code, body := getURL(base + "/v1/nodes/order/7001"); code != 200 || !strings.Contains(body, `"status":"paid"`) {
					t.Errorf("order 7001: %d %s", code, body)
				}
				if code, _ := getURL(base + "/v1/nodes/order/7002"); code != 404 {
					t.Errorf("deleted order 7002: %d", code)
				}
				// The vertical counts nothing: counts are off.
				if code, _ := getURL(base + "/v1/counts/customer/42?edge_type=viewed&target=product:p-100&windows=1h"); code != 404 {
					t.Errorf("/v1/counts: %d, want 404", code)
				}
			} else {
				// 8 event records: 7 written, 1 dead letter (the unknown product).
				waitURL(t, "consuming every sample", done, func() bool {
					_, body := getURL(base + "/metrics")
					return strings.Contains(body, `rtgraph_ingest_messages_total{outcome="written",topic="shop.page_views"} 2`) &&
						strings.Contains(body, `rtgraph_ingest_messages_total{outcome="dead_lettered",topic="shop.page_views"} 1`) &&
						strings.Contains(body, `rtgraph_ingest_messages_total{outcome="written",topic="shop.public.orders"} 5`)
				})
			}
			cancel()
			select {
			case code := <-done:
				if code != exitOK {
					t.Errorf("exit %d:\n%s", code, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("did not stop")
			}
		})
	}
}

// TestReadRecordsIsProduceFormat: vertical.ReadRecords reads a file as
// `rtgraph produce` sends it — keys, values, tombstones, headers and
// timestamps byte for byte — for every sample of the shipped verticals and
// for the format's corners.
func TestReadRecordsIsProduceFormat(t *testing.T) {
	corners := filepath.Join(t.TempDir(), "corners.json")
	if err := os.WriteFile(corners, []byte(`[
 {"key": "k1", "value": {"a": 1, "b": [1, 2]}, "timestamp": "2026-11-25T09:00:00.5Z", "headers": {"h1": "v1", "h2": "v2"}},
 {"key": {"id": 7}, "value": null, "timestamp": "2026-11-25T09:00:01Z"},
 {"key": "a2V5", "key_encoding": "base64", "value": "AAEC/w==", "value_encoding": "base64", "timestamp": "2026-11-25T09:00:02Z"},
 {"value": "not json {", "value_encoding": "utf8", "headers": [{"key": "x", "value": null}, {"key": "x", "value": "2"}], "timestamp": "2026-11-25T09:00:03Z"},
 {"view_id": "pv-1", "nested": {"k": "v"}}
]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"corners": corners}
	for _, dir := range []string{"../../verticals/shop", "../../verticals/streaming"} {
		matches, _ := filepath.Glob(filepath.Join(dir, "samples", "*.jsonl"))
		for _, m := range matches {
			files[filepath.Base(dir)+"."+strings.TrimSuffix(filepath.Base(m), ".jsonl")] = m
		}
	}
	var topics []string
	for topic := range files {
		topics = append(topics, topic)
	}
	addr := startBroker(t, &vertical.Vertical{}, topics...)
	k := ingest.DefaultKafkaConfig()
	k.Brokers = []string{addr}
	sc := sarama.NewConfig()
	sc.Version = sarama.V4_0_0_0
	consumer, err := sarama.NewConsumer([]string{addr}, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for topic, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := vertical.ReadRecords(f, path, vertical.FormatAuto)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		n, err := produce.File(t.Context(), k, topic, path)
		if err != nil || n != len(want) {
			t.Fatalf("%s: produce sent %d, %v; ReadRecords read %d", topic, n, err, len(want))
		}
		pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range want {
			var got *sarama.ConsumerMessage
			select {
			case got = <-pc.Messages():
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: record %d not consumed", topic, i)
			}
			var hs []string
			for _, h := range got.Headers {
				hs = append(hs, string(h.Key)+"="+string(h.Value)+"/"+boolText(h.Value == nil))
			}
			var whs []string
			for _, h := range w.Headers {
				whs = append(whs, h.Key+"="+string(h.Value)+"/"+boolText(h.Value == nil))
			}
			if !bytes.Equal(got.Key, w.Key) || (got.Key == nil) != (w.Key == nil) || !bytes.Equal(got.Value, w.Value) || (got.Value == nil) != (w.Value == nil) ||
				!slices.Equal(hs, whs) || (!w.Timestamp.IsZero() && !got.Timestamp.Equal(w.Timestamp)) {
				t.Errorf("%s record %d (line %d):\n sent key %q value %q headers %v at %v\n read key %q value %q headers %v at %v",
					topic, i, w.Line, got.Key, got.Value, hs, got.Timestamp, w.Key, w.Value, whs, w.Timestamp)
			}
		}
		pc.AsyncClose()
	}
}

func boolText(b bool) string {
	if b {
		return "nil"
	}
	return "set"
}

// TestDemoVerticalEndToEnd uses the binary as the README's "Bring your own
// vertical" does: `rtgraph demo --vertical` on a copied folder, says on
// stderr that nothing is generated and where to publish; `rtgraph produce`
// of its samples; the graph answers; a clean stop.
func TestDemoVerticalEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "myshop")
	copyDir(t, shopDir, dir)
	kafkaAddr, httpAddr := freeAddr(t), freeAddr(t)
	d := startDemo(t, bin, t.TempDir(), kafkaAddr, httpAddr, "--vertical", dir)
	if want := "rtgraph demo: vertical shop has no generator: ingesting whatever is published to " + kafkaAddr +
		"; publish to its topics shop.public.orders, shop.page_views, and its caches' documents to shop.products"; !strings.Contains(d.stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, tail(d.stderr.String(), 4000))
	}
	if want := "  rtgraph produce --brokers " + kafkaAddr + " --topic shop.products --file " + filepath.Join(dir, "samples", "shop.products.jsonl"); !strings.Contains(d.stdout.String(), want) {
		t.Errorf("banner lacks %q:\n%s", want, d.stdout.String())
	}
	for _, topic := range []string{"shop.products", "shop.public.orders", "shop.page_views"} {
		out, err := exec.Command(bin, "produce", "--brokers", kafkaAddr, "--topic", topic, "--file", filepath.Join(dir, "samples", topic+".jsonl")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "published ") {
			t.Fatalf("produce %s: %v\n%s", topic, err, out)
		}
	}
	d.waitFor("showing customer 43's view of p-101", 60*time.Second, func() bool {
		code, body := d.post("/v1/traversals", `{"start":[{"type":"customer","id":"43"}],"hops":[{"edge_types":["viewed"],"direction":"out"}]}`)
		return code == 200 && strings.Contains(string(body), `"name":"Rain Shell"`)
	})
	d.waitFor("reporting a dead letter", 30*time.Second, func() bool {
		return strings.Contains(d.stdout.String(), "dead letters 1\n")
	})
	if strings.Contains(d.stdout.String(), "published") {
		t.Errorf("a generator seems to run:\n%s", d.stdout.String())
	}
	d.stop()
}
