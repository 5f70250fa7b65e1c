package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/rtgraph/rtgraph/internal/testenv"
	"github.com/rtgraph/rtgraph/verticals/rides/ridesgen"
	"github.com/rtgraph/rtgraph/verticals/rides/ridesoracle"
)

// The rides vertical end to end: ridesgen's seeded adversarial records are
// published with `rtgraph produce`, the pipeline ingests them, and every
// node, every edge list (with paging), every count and the dead letters read
// back through the REST API are compared with what ridesoracle — written
// from the rules, not from rtgraph's code — computes from the same records.
// RIDES_SEED picks another seed (default 1).

const ridesVerticalDir = "../../verticals/rides"

func ridesSeed(t *testing.T) int64 {
	s := os.Getenv("RIDES_SEED")
	if s == "" {
		return 1
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("RIDES_SEED: %v", err)
	}
	return n
}

// ridesGenerate writes the records into a temporary directory.
func ridesGenerate(t *testing.T) (string, time.Time) {
	t.Helper()
	asOf := time.Now().UTC().Truncate(time.Millisecond)
	out := ridesgen.Generate(ridesgen.Options{Seed: ridesSeed(t), AsOf: asOf})
	dir := t.TempDir()
	if err := out.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("rides: seed %d, %d records as of %s", ridesSeed(t), out.Count(), out.AsOf.Format(time.RFC3339Nano))
	return dir, out.AsOf
}

// TestRidesVerticalEmbedded runs `rtgraph demo --vertical verticals/rides`:
// the embedded broker and the Pebble store.
func TestRidesVerticalEmbedded(t *testing.T) {
	bin := buildBinary(t)
	dir, asOf := ridesGenerate(t)
	kafkaAddr, httpAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "demo", "--vertical", ridesVerticalDir, "--data-dir", t.TempDir(),
		"--kafka-addr", kafkaAddr, "--http-addr", httpAddr, "--progress", "2s")
	cmd.Env = append(os.Environ(), "RTGRAPH_API_RATE_LIMIT_REQUESTS_PER_SECOND=0")
	d := &demoProcess{t: t, cmd: cmd, base: "http://" + httpAddr, stdout: &syncBuffer{}, stderr: &syncBuffer{}, kafkaAddr: kafkaAddr}
	cmd.Stdout, cmd.Stderr = d.stdout, d.stderr
	d.watch()
	d.waitFor("ready", 90*time.Second, func() bool {
		code, _ := d.get("/readyz")
		return code == 200
	})
	ridesRun(t, d, bin, kafkaAddr, "", dir, asOf)
	d.stop()
}

// TestRidesVerticalOnRealKafkaAndCassandra runs `rtgraph serve --vertical`
// on real Kafka and Cassandra (internal/testenv), with the vertical's topics
// renamed under a per-run prefix so that earlier runs' records are not read.
func TestRidesVerticalOnRealKafkaAndCassandra(t *testing.T) {
	kafkaAddr := testenv.Kafka(t)
	cassHost, cassPort, err := net.SplitHostPort(testenv.Cassandra(t))
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	dir, asOf := ridesGenerate(t)
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	prefix := "t" + suffix + "."
	keyspace := "rtgraph_rides_" + suffix
	dlq := "rtgraph.rides-test.dlq." + suffix
	group := "rtgraph-rides-test-" + suffix

	// The vertical, its topics renamed.
	vdir := filepath.Join(t.TempDir(), "rides")
	copyVertical(t, ridesVerticalDir, vdir, prefix)

	sc := sarama.NewConfig()
	sc.Version = sarama.V4_0_0_0
	admin, err := sarama.NewClusterAdmin([]string{kafkaAddr}, sc)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range append(append([]string{}, ridesgen.Topics...), "") {
		name, detail := prefix+tp, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}
		if tp == "" {
			name, detail = dlq, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}
		}
		if err := admin.CreateTopic(name, detail, false); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("create topic %s: %v", name, err)
		}
	}
	admin.Close()
	t.Cleanup(func() {
		if a, err := sarama.NewClusterAdmin([]string{kafkaAddr}, sc); err == nil {
			for _, tp := range ridesgen.Topics {
				_ = a.DeleteTopic(prefix + tp)
			}
			_ = a.DeleteTopic(dlq)
			a.Close()
		}
		cluster := gocql.NewCluster(cassHost)
		cluster.Port, _ = strconv.Atoi(cassPort)
		cluster.Timeout = 30 * time.Second
		if s, err := cluster.CreateSession(); err == nil {
			_ = s.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec()
			s.Close()
		}
	})

	cfgFile := filepath.Join(t.TempDir(), "rtgraph.yaml")
	cfg := fmt.Sprintf(`store:
  backend: cassandra
kafka:
  brokers: [%q]
cassandra:
  hosts: [%q]
  port: %s
  keyspace: %s
ingest:
  group_id: %s
  dead_letter_topic: %s
api:
  rate_limit: {requests_per_second: 0}
`, kafkaAddr, cassHost, cassPort, keyspace, group, dlq)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "migrate", "--config", cfgFile).CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	httpAddr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--config", cfgFile, "--vertical", vdir)
	cmd.Env = append(os.Environ(), "RTGRAPH_HTTP_ADDR="+httpAddr)
	d := &demoProcess{t: t, cmd: cmd, base: "http://" + httpAddr, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = d.stdout, d.stderr
	d.watch()
	d.waitFor("ready (store open, in the consumer group)", 120*time.Second, func() bool {
		code, _ := d.get("/readyz")
		return code == 200
	})
	ridesRun(t, d, bin, kafkaAddr, prefix, dir, asOf)
	d.stop()
}

// copyVertical copies the vertical's vertical.yaml, graph/ and mappings/,
// prefixing every topic name.
func copyVertical(t *testing.T, src, dst, prefix string) {
	t.Helper()
	copyVerticalWith(t, src, dst, func(sub, s string) string {
		if sub != "graph" {
			for _, tp := range ridesgen.Topics {
				s = regexp.MustCompile(`(^|[\s:])`+regexp.QuoteMeta(tp)+`(:|\s|$)`).ReplaceAllString(s, "${1}"+prefix+tp+"${2}")
			}
		}
		return s
	})
}

// copyVerticalWith copies the vertical's vertical.yaml, graph/*.yaml and
// mappings/*.yaml from src to dst, each file's text passed through rewrite
// (sub is "", "graph" or "mappings").
func copyVerticalWith(t testing.TB, src, dst string, rewrite func(sub, s string) string) {
	t.Helper()
	for _, sub := range []string{"", "graph", "mappings"} {
		if err := os.MkdirAll(filepath.Join(dst, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(filepath.Join(src, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(src, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, sub, e.Name()), []byte(rewrite(sub, string(b))), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// ridesRun publishes the records, waits until the pipeline has acknowledged
// every one, and compares the API with the oracle.
func ridesRun(t *testing.T, d *demoProcess, bin, kafkaAddr, prefix, dir string, asOf time.Time) {
	t.Helper()
	start := time.Now()
	want := map[string]int{}
	for _, tp := range ridesgen.Topics {
		out, err := exec.Command(bin, "produce", "--brokers", kafkaAddr, "--topic", prefix+tp, "--file", filepath.Join(dir, tp+".jsonl")).CombinedOutput()
		if err != nil {
			t.Fatalf("produce %s: %v\n%s", tp, err, out)
		}
		var n int
		if _, err := fmt.Sscanf(string(out), "published %d events", &n); err != nil {
			t.Fatalf("produce %s: %s", tp, out)
		}
		want[tp] = n
	}
	t.Logf("published in %s", time.Since(start).Round(time.Millisecond))
	var got map[string]float64
	d.waitFor("acknowledging every record", 120*time.Second, func() bool {
		_, body := d.get("/metrics")
		got = map[string]float64{}
		for _, s := range parseMetric(body, "rtgraph_ingest_messages_total") {
			got[strings.TrimPrefix(s.labels["topic"], prefix)] += s.value
		}
		for tp, n := range want {
			if got[tp] < float64(n) {
				return false
			}
		}
		return true
	})
	t.Logf("consumed in %s: %v", time.Since(start).Round(time.Millisecond), got)
	// A record is acknowledged once its batch's writes are: everything is
	// readable now. Edge expiry is judged at this instant.
	now := time.Now()
	x, err := ridesoracle.Compute(dir, asOf, now)
	if err != nil {
		t.Fatal(err)
	}
	for tp, n := range want {
		if x.Records[tp] != n {
			t.Errorf("%s: produce published %d records, the oracle read %d", tp, n, x.Records[tp])
		}
		if got[tp] != float64(n) {
			// Kafka may redeliver after a rebalance; the graph must not mind.
			t.Logf("%s: the pipeline acknowledged %v records of %d (redelivered)", tp, got[tp], n)
		}
	}
	c := &ridesCompare{d: d, x: x, client: &http.Client{Timeout: 20 * time.Second}}
	c.deadLetters(prefix)
	c.run()
	t.Logf("compared %d nodes (%d existing), %d edge lists (%d visible edges), %d count lookups in %s",
		len(x.Known), len(x.Nodes), c.lists, len(x.Edges), len(x.Counts), time.Since(now).Round(time.Millisecond))
	if len(c.diffs) > 0 {
		sort.Strings(c.diffs)
		kinds := map[string]int{}
		for _, s := range c.diffs {
			k, _, _ := strings.Cut(s, ":")
			kinds[k]++
		}
		f := filepath.Join(os.TempDir(), fmt.Sprintf("rides-diffs-%d.txt", time.Now().UnixNano()))
		_ = os.WriteFile(f, []byte(strings.Join(c.diffs, "\n")+"\n"), 0o644)
		shown := c.diffs
		if len(shown) > 400 {
			shown = shown[:400]
		}
		t.Errorf("%d differences from the oracle (by kind %v; all of them in %s):\n%s", len(c.diffs), kinds, f, strings.Join(shown, "\n"))
	}
}

type metricSample struct {
	labels map[string]string
	value  float64
}

var labelRE = regexp.MustCompile(`([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"`)

// parseMetric reads the samples of one metric from Prometheus text.
func parseMetric(body []byte, name string) []metricSample {
	var out []metricSample
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		s := metricSample{labels: map[string]string{}}
		rest := line[len(name):]
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndex(rest, "}")
			for _, m := range labelRE.FindAllStringSubmatch(rest[1:end], -1) {
				s.labels[m[1]] = m[2]
			}
			rest = rest[end+1:]
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		s.value = v
		out = append(out, s)
	}
	return out
}

type ridesCompare struct {
	d      *demoProcess
	x      *ridesoracle.Expected
	client *http.Client
	mu     sync.Mutex
	diffs  []string
	lists  int
}

func (c *ridesCompare) diff(format string, args ...any) {
	c.mu.Lock()
	c.diffs = append(c.diffs, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

func (c *ridesCompare) get(path string, v any) (int, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		resp, err := c.client.Get(c.d.base + path)
		if err != nil {
			lastErr = err
			time.Sleep(100 * time.Millisecond)
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			lastErr = err
			continue
		}
		if resp.StatusCode == 200 && v != nil {
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			if err := dec.Decode(v); err != nil {
				return resp.StatusCode, fmt.Errorf("%s: %v: %s", path, err, b)
			}
		}
		if resp.StatusCode != 200 && resp.StatusCode != 404 {
			return resp.StatusCode, fmt.Errorf("%s: %d %s", path, resp.StatusCode, bytes.TrimSpace(b))
		}
		return resp.StatusCode, nil
	}
	return 0, lastErr
}

func (c *ridesCompare) deadLetters(prefix string) {
	_, body := c.d.get("/metrics")
	got := map[string]map[string]float64{}
	for _, s := range parseMetric(body, "rtgraph_ingest_dead_letters_total") {
		tp := strings.TrimPrefix(s.labels["topic"], prefix)
		if got[tp] == nil {
			got[tp] = map[string]float64{}
		}
		got[tp][s.labels["class"]] += s.value
	}
	for _, tp := range ridesgen.Topics {
		classes := map[string]bool{}
		for k := range got[tp] {
			classes[k] = true
		}
		for k := range c.x.DeadLetters[tp] {
			classes[k] = true
		}
		for k := range classes {
			if w, g := float64(c.x.DeadLetters[tp][k]), got[tp][k]; w != g {
				c.diff("dead_letters: %s class %s: want %v, got %v", tp, k, w, g)
			}
		}
	}
}

type apiNode struct {
	Node struct {
		Type      string         `json:"type"`
		ID        string         `json:"id"`
		Props     map[string]any `json:"props"`
		EventTime string         `json:"event_time"`
	} `json:"node"`
}

type apiEdge struct {
	Type      string              `json:"type"`
	From      ridesoracle.NodeKey `json:"from"`
	To        ridesoracle.NodeKey `json:"to"`
	Props     map[string]any      `json:"props"`
	EventTime string              `json:"event_time"`
	ExpiresAt string              `json:"expires_at"`
}

type apiEdges struct {
	Edges      []apiEdge `json:"edges"`
	HasMore    bool      `json:"has_more"`
	NextCursor string    `json:"next_cursor"`
}

func canonProps(p map[string]any) string {
	if len(p) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(p)
	return string(b)
}

func sameTime(s string, t time.Time) bool {
	got, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && got.Equal(t)
}

func nodePath(k ridesoracle.NodeKey) string {
	return "/v1/nodes/" + url.PathEscape(k.Type) + "/" + url.PathEscape(k.ID)
}

func (c *ridesCompare) run() {
	jobs := make(chan func(), 64)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j()
			}
		}()
	}
	for _, k := range c.x.Known {
		// Implicit nodes too: one never written (or deleted) is a 404.
		jobs <- func() { c.node(k) }
		for _, et := range sortedEdgeTypes() {
			info := ridesoracle.EdgeTypes[et]
			if info.From == k.Type {
				c.lists++
				jobs <- func() { c.edges(k, et, true) }
			}
			if info.To == k.Type && info.Reverse {
				c.lists++
				jobs <- func() { c.edges(k, et, false) }
			}
		}
	}
	for _, l := range c.x.Counts {
		jobs <- func() { c.counts(l) }
	}
	close(jobs)
	wg.Wait()
}

func sortedEdgeTypes() []string {
	var ts []string
	for et := range ridesoracle.EdgeTypes {
		ts = append(ts, et)
	}
	sort.Strings(ts)
	return ts
}

func (c *ridesCompare) node(k ridesoracle.NodeKey) {
	var got apiNode
	code, err := c.get(nodePath(k), &got)
	if err != nil {
		c.diff("error: GET %s: %v", nodePath(k), err)
		return
	}
	want := c.x.Nodes[k]
	switch {
	case want == nil && code == 200:
		c.diff("node: %s: want absent (404), got %s at %s", k, canonProps(got.Node.Props), got.Node.EventTime)
	case want != nil && code == 404:
		c.diff("node: %s: want %s at %s, got 404", k, canonProps(want.Props), want.EventTime.Format(time.RFC3339Nano))
	case want != nil:
		if canonProps(got.Node.Props) != canonProps(want.Props) || !sameTime(got.Node.EventTime, want.EventTime) {
			c.diff("node: %s: want %s at %s, got %s at %s", k, canonProps(want.Props), want.EventTime.Format(time.RFC3339Nano), canonProps(got.Node.Props), got.Node.EventTime)
		}
	}
}

func (c *ridesCompare) edges(k ridesoracle.NodeKey, et string, out bool) {
	dir := "in"
	if out {
		dir = "out"
	}
	var got []apiEdge
	cursor := ""
	for pages := 0; ; pages++ {
		q := url.Values{"edge_type": {et}, "direction": {dir}, "limit": {"7"}}
		if pages > 0 || len(c.x.Adjacency(k, et, out)) > 20 {
			q.Set("limit", "1000")
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page apiEdges
		path := nodePath(k) + "/edges?" + q.Encode()
		if _, err := c.get(path, &page); err != nil {
			c.diff("error: GET %s: %v", path, err)
			return
		}
		got = append(got, page.Edges...)
		if !page.HasMore || page.NextCursor == "" || pages > 1000 {
			break
		}
		cursor = page.NextCursor
	}
	other := func(from, to ridesoracle.NodeKey) ridesoracle.NodeKey {
		if out {
			return to
		}
		return from
	}
	want := map[ridesoracle.NodeKey]ridesoracle.Edge{}
	for _, e := range c.x.Adjacency(k, et, out) {
		want[other(e.From, e.To)] = e
	}
	seen := map[ridesoracle.NodeKey]bool{}
	for _, g := range got {
		o := other(g.From, g.To)
		if seen[o] {
			c.diff("edge: %s %s %s: %s listed twice", k, dir, et, o)
			continue
		}
		seen[o] = true
		w, ok := want[o]
		if !ok {
			c.diff("edge: %s -%s-> %s (listed %s of %s): want none, got %s at %s", g.From, et, g.To, dir, k, canonProps(g.Props), g.EventTime)
			continue
		}
		if canonProps(g.Props) != canonProps(w.Props) || !sameTime(g.EventTime, w.EventTime) {
			c.diff("edge: %s (listed %s of %s): want %s at %s, got %s at %s", w, dir, k, canonProps(w.Props), w.EventTime.Format(time.RFC3339Nano), canonProps(g.Props), g.EventTime)
		}
	}
	for o, w := range want {
		if !seen[o] {
			c.diff("edge: %s (listed %s of %s): want %s at %s, missing", w, dir, k, canonProps(w.Props), w.EventTime.Format(time.RFC3339Nano))
		}
	}
	if len(got) != len(want) {
		c.diff("degree: %s %s %s: want %d, got %d", k, dir, et, len(want), len(got))
	}
	// The degree route counts the same edges without listing them.
	var deg struct {
		Degrees []struct {
			Count int `json:"count"`
		} `json:"degrees"`
	}
	path := nodePath(k) + "/degree?" + url.Values{"edge_type": {et}, "direction": {dir}, "time_budget_ms": {"10000"}}.Encode()
	code, err := c.get(path, &deg)
	switch {
	case err == nil && code == 404 && len(want) == 0:
		// A node that does not exist (not implicit) has no degree to ask.
	case err != nil || code != 200 || len(deg.Degrees) != 1:
		c.diff("error: GET %s: %d %v %+v", path, code, err, deg)
	case deg.Degrees[0].Count != len(want):
		c.diff("degree route: %s %s %s: want %d, got %d", k, dir, et, len(want), deg.Degrees[0].Count)
	}
}

func (c *ridesCompare) counts(l ridesoracle.CountLookup) {
	q := url.Values{"edge_type": {l.EdgeType}, "windows": {strings.Join(ridesoracle.Windows, ",")},
		"as_of": {c.x.AsOf.Format(time.RFC3339Nano)}}
	for _, tg := range l.Targets {
		q.Add("target", tg.Type+":"+tg.ID)
	}
	path := "/v1/counts/" + url.PathEscape(l.User.Type) + "/" + url.PathEscape(l.User.ID) + "?" + q.Encode()
	var got struct {
		Targets []struct {
			Target string                 `json:"target"`
			Counts map[string]json.Number `json:"counts"`
		} `json:"targets"`
	}
	code, err := c.get(path, &got)
	if err != nil || code != 200 {
		c.diff("error: GET %s: %d %v", path, code, err)
		return
	}
	byTarget := map[string]map[string]json.Number{}
	for _, tg := range got.Targets {
		byTarget[tg.Target] = tg.Counts
	}
	for _, tg := range l.Targets {
		g := byTarget[tg.Type+":"+tg.ID]
		for _, w := range ridesoracle.Windows {
			want := l.Counts[tg][w]
			if g[w].String() != strconv.FormatInt(want, 10) {
				c.diff("count: %s %s %s window %s as of %s: want %d, got %q", l.User, l.EdgeType, tg, w, c.x.AsOf.Format(time.RFC3339Nano), want, g[w].String())
			}
		}
	}
}
