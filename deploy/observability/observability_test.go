package observability_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/rtgraph/rtgraph/api"
	"github.com/rtgraph/rtgraph/enrich"
	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/cassandra"
	"github.com/rtgraph/rtgraph/graph/cassandra/cassandratest"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/ingest"
	"github.com/rtgraph/rtgraph/internal/lifecycle"
	"github.com/rtgraph/rtgraph/internal/telemetry"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/vertical"
)

// The files under test, relative to this directory.
const (
	rulesFile     = "../prometheus/alerts.yml"
	dashboardFile = "../grafana/rtgraph.json"
)

// scrapeSeries are the series the Prometheus server itself writes for every
// scrape target. rtgraph cannot register them, yet a rule needs one to see
// a process that is down: nothing it registers is scraped then. Nothing
// else is allowed past the registry check.
var scrapeSeries = map[string]bool{"up": true}

// targetLabels are attached by the Prometheus server to every scraped
// series, whatever the process registered.
var targetLabels = []string{"job", "instance"}

// grafanaIntervals are Grafana's interval macros; the test reads them as a
// typical value, since Grafana replaces them before Prometheus sees the query.
var grafanaIntervals = []string{"$__rate_interval", "$__interval", "$__range"}

// kind is what a registered metric family is, as far as PromQL cares: the
// suffixes a histogram or summary adds to its name.
type kind int

const (
	kindPlain kind = iota
	kindHistogram
	kindSummary
)

// family is one registered metric: its label names (variable and
// constant) and its kind.
type family struct {
	labels map[string]bool
	kind   kind
}

// registry is every metric family a real rtgraph process registers.
type registry map[string]*family

// recorder is a prometheus.Registerer that registers on an inner registry
// and records every collector's descriptors, so that metric vectors count
// even before they have a child (a Gather would not show them).
type recorder struct {
	inner prometheus.Registerer
	seen  registry
	errs  []error
}

var descRE = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: (?:"(?:[^"\\]|\\.)*"), unit: (?:"(?:[^"\\]|\\.)*"), constLabels: \{(.*)\}, variableLabels: \{(.*)\}\}$`)

func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.inner.Register(c); err != nil {
		return err
	}
	k := kindPlain
	switch c := c.(type) {
	case *prometheus.HistogramVec:
		k = kindHistogram
	case *prometheus.SummaryVec:
		k = kindSummary
	case prometheus.Metric:
		var m dto.Metric
		if err := c.Write(&m); err == nil {
			switch {
			case m.Histogram != nil:
				k = kindHistogram
			case m.Summary != nil:
				k = kindSummary
			}
		}
	}
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		name, lbls, err := parseDesc(d.String())
		if err != nil {
			r.errs = append(r.errs, err)
			continue
		}
		r.seen.add(name, k, lbls)
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *recorder) Unregister(c prometheus.Collector) bool { return r.inner.Unregister(c) }

// parseDesc reads the metric name and label names out of Desc.String(),
// the only view client_golang gives of a descriptor.
func parseDesc(s string) (string, []string, error) {
	m := descRE.FindStringSubmatch(s)
	if m == nil {
		return "", nil, fmt.Errorf("descriptor %s: unexpected form", s)
	}
	name, err := strconv.Unquote(m[1])
	if err != nil {
		return "", nil, fmt.Errorf("descriptor %s: %w", s, err)
	}
	var lbls []string
	if m[2] != "" {
		for _, pair := range strings.Split(m[2], ",") {
			k, _, _ := strings.Cut(pair, "=")
			lbls = append(lbls, k)
		}
	}
	if m[3] != "" {
		for _, l := range strings.Split(m[3], ",") {
			lbls = append(lbls, strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"))
		}
	}
	return name, lbls, nil
}

func (r registry) add(name string, k kind, lbls []string) {
	f := r[name]
	if f == nil {
		f = &family{labels: map[string]bool{}}
		r[name] = f
	}
	if k != kindPlain {
		f.kind = k
	}
	for _, l := range lbls {
		f.labels[l] = true
	}
}

// rtgraphRegistry builds rtgraph's collectors the way `rtgraph serve` wires
// them (cmd/rtgraph: openBackend, pipelineStages, httpHandler) on the
// built-in streaming vertical, with both store backends on one registry,
// and returns every family they registered. Nothing connects to Kafka:
// the pipeline and the caches register their metrics when built. The
// Cassandra store needs its keyspace, so it runs on a fresh migrated one,
// dropped at the end.
func rtgraphRegistry(t *testing.T) registry {
	t.Helper()
	reg := telemetry.NewRegistry()
	rec := &recorder{inner: reg, seen: registry{}}
	log := slog.New(slog.DiscardHandler)

	v, err := vertical.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	schema, err := graph.LoadSchema(v.GraphFS(), ".")
	if err != nil {
		t.Fatal(err)
	}
	cc := graph.DefaultCountConfig()
	cc.EdgeTypes = slices.Clone(v.CountEdgeTypes)
	rules, err := graph.NewCountRules(cc, schema)
	if err != nil {
		t.Fatal(err)
	}

	// The embedded (Pebble) store and its counts.
	ecfg := embedded.DefaultConfig()
	ecfg.Dir = t.TempDir()
	st, err := embedded.Open(ecfg, schema, embedded.Deps{Logger: log, Registerer: rec})
	if err != nil {
		t.Fatalf("open embedded store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	counts, err := embedded.NewCounts(st, rules, embedded.CountOptions{Registerer: rec, Logger: log})
	if err != nil {
		t.Fatalf("embedded counts: %v", err)
	}
	t.Cleanup(func() { _ = counts.Close() })

	openCassandra(t, schema, rules, rec, log)

	// The ingest side: enrichment caches, mapping, pipeline.
	kc := ingest.DefaultKafkaConfig()
	sc, err := kc.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	ncfg := enrich.DefaultConfig()
	ncfg.Caches = slices.Clone(v.Enrich.Caches)
	if len(ncfg.Caches) == 0 {
		t.Fatal("the built-in vertical has no enrichment cache: rtgraph_enrich_entries would go unchecked")
	}
	enr, err := enrich.New(ncfg, kc.Brokers, sc, rec, log)
	if err != nil {
		t.Fatalf("enrich: %v", err)
	}
	mm, err := mapping.NewMetrics(rec)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := mapping.Load(v.MappingsFS(), schema, enr, mapping.WithMetrics(mm), mapping.WithLogger(log))
	if err != nil {
		t.Fatalf("mapping: %v", err)
	}
	icfg := ingest.DefaultConfig()
	icfg.Topics = v.TopicConfigs()
	ready := lifecycle.NewReadiness("store", enrich.ReadinessCondition, ingest.ReadinessCondition)
	if err := ready.Register(rec); err != nil {
		t.Fatal(err)
	}
	if err := graph.NewFreshnessCache(st, icfg.GroupID, time.Second, log).Register(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.NewPipeline(ingest.Options{
		Config: icfg, Kafka: kc, Mapper: mapper, Writer: st, Watermarks: st, Fold: mapping.Fold,
		Logger: log, Registerer: rec, Readiness: ready,
	}); err != nil {
		t.Fatalf("pipeline: %v", err)
	}

	// The query API.
	if _, err := api.New(api.Options{
		Config: api.DefaultConfig(), Store: st, Purger: st, CountPurger: counts, Counts: counts, Schema: schema,
		Readiness: ready, Registry: rec, Gatherer: reg, Logger: log,
	}); err != nil {
		t.Fatalf("api: %v", err)
	}

	if len(rec.errs) > 0 {
		t.Fatalf("read descriptors: %v", rec.errs)
	}
	// The Go and process collectors were registered before the recorder
	// wrapped the registry; they always export, so a Gather shows them.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		k := kindPlain
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			k = kindHistogram
		case dto.MetricType_SUMMARY:
			k = kindSummary
		}
		var lbls []string
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				lbls = append(lbls, lp.GetName())
			}
		}
		rec.seen.add(mf.GetName(), k, lbls)
	}
	return rec.seen
}

// openCassandra builds the Cassandra store and its counts on rec, on a
// keyspace of their own (cassandratest.OpenWith).
func openCassandra(t *testing.T, schema *graph.Schema, rules *graph.CountRules, rec prometheus.Registerer, log *slog.Logger) {
	t.Helper()
	cst, _ := cassandratest.OpenWith(t, "obs_", schema, cassandra.Options{Registerer: rec, Logger: log})
	ccounts, err := cassandra.NewCounts(cst, rules, cassandra.CountOptions{Registerer: rec, Logger: log})
	if err != nil {
		t.Fatalf("cassandra counts: %v", err)
	}
	t.Cleanup(func() { _ = ccounts.Close() })
}

// checker checks PromQL expressions against a registry.
type checker struct {
	reg    registry
	parser parser.Parser
}

func newChecker(reg registry) *checker {
	return &checker{reg: reg, parser: parser.NewParser(parser.Options{})}
}

// resolve finds the family a selected series name belongs to and the
// labels its series carry: a histogram's _bucket, _sum and _count, a
// summary's _sum and _count, and le on buckets.
func (c *checker) resolve(name string) (map[string]bool, error) {
	withTarget := func(lbls map[string]bool, extra ...string) map[string]bool {
		out := map[string]bool{}
		for l := range lbls {
			out[l] = true
		}
		for _, l := range append(extra, targetLabels...) {
			out[l] = true
		}
		return out
	}
	if f, ok := c.reg[name]; ok {
		if f.kind == kindHistogram {
			return nil, fmt.Errorf("metric %s is a histogram: select %s_bucket, _sum or _count", name, name)
		}
		if f.kind == kindSummary {
			return withTarget(f.labels, "quantile"), nil
		}
		return withTarget(f.labels), nil
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := c.reg[base]
		switch {
		case !ok:
		case f.kind == kindHistogram && suffix == "_bucket":
			return withTarget(f.labels, "le"), nil
		case f.kind == kindHistogram || f.kind == kindSummary && suffix != "_bucket":
			return withTarget(f.labels), nil
		default:
			return nil, fmt.Errorf("metric %s: %s is not a histogram", name, base)
		}
	}
	if scrapeSeries[name] {
		return withTarget(nil), nil
	}
	return nil, fmt.Errorf("metric %s is not registered by rtgraph", name)
}

// check parses expr and reports a parse error, or every selected metric
// rtgraph does not register and every label its series cannot carry, in
// selectors, in aggregations' by clauses and in vector matching.
func (c *checker) check(expr string) []error {
	root, err := c.parser.ParseExpr(expr)
	if err != nil {
		return []error{fmt.Errorf("parse: %w", err)}
	}
	var errs []error
	// labelsUnder is the union of the labels the selectors below n carry;
	// nil when one of them is not registered (reported on its own).
	labelsUnder := func(n parser.Node) map[string]bool {
		out := map[string]bool{}
		parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				lbls, err := c.resolve(selectorName(vs))
				if err != nil {
					out = nil
				}
				for l := range lbls {
					if out != nil {
						out[l] = true
					}
				}
			}
			return nil
		})
		return out
	}
	parser.Inspect(root, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			name := selectorName(n)
			if name == "" {
				errs = append(errs, fmt.Errorf("selector %s names no metric", n))
				return nil
			}
			lbls, err := c.resolve(name)
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			for _, m := range n.LabelMatchers {
				if m.Name != model.MetricNameLabel && !lbls[m.Name] {
					errs = append(errs, fmt.Errorf("selector %s: %s has no label %q", n, name, m.Name))
				}
			}
		case *parser.AggregateExpr:
			if n.Without {
				return nil
			}
			have := labelsUnder(n.Expr)
			for _, l := range n.Grouping {
				if have != nil && !have[l] {
					errs = append(errs, fmt.Errorf("%s: no series below carries label %q", n, l))
				}
			}
		case *parser.BinaryExpr:
			if n.VectorMatching == nil {
				return nil
			}
			have := labelsUnder(n)
			for _, l := range slices.Concat(n.VectorMatching.MatchingLabels, n.VectorMatching.Include) {
				if have != nil && !have[l] {
					errs = append(errs, fmt.Errorf("%s: no series carries matching label %q", n, l))
				}
			}
		}
		return nil
	})
	return errs
}

func selectorName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

// TestObservabilityNamesRegisteredMetrics checks the alerting rules and the
// dashboard against rtgraph's real collectors.
func TestObservabilityNamesRegisteredMetrics(t *testing.T) {
	reg := rtgraphRegistry(t)
	// Each component must have registered something, or a construction
	// above has silently stopped covering it.
	for _, prefix := range []string{
		"rtgraph_api_", "rtgraph_ingest_", "rtgraph_enrich_", "rtgraph_mapping_",
		"rtgraph_embedded_", "rtgraph_cassandra_", "process_", "go_",
	} {
		if !slices.ContainsFunc(keys(reg), func(n string) bool { return strings.HasPrefix(n, prefix) }) {
			t.Errorf("no metric registered with prefix %s", prefix)
		}
	}
	c := newChecker(reg)

	t.Run("checker", func(t *testing.T) { testChecker(t, c) })
	t.Run("rules", func(t *testing.T) { testRules(t, c) })
	t.Run("dashboard", func(t *testing.T) { testDashboard(t, c) })
}

// testChecker shows that each check of the checker can fail: on names and
// labels no rtgraph collector has, on misused histogram suffixes and on
// text that is not PromQL.
func testChecker(t *testing.T, c *checker) {
	tests := []struct {
		expr string
		want string // in the error; "" means no error
	}{
		{`sum by (topic, partition) (rtgraph_ingest_consumer_lag)`, ""},
		{`histogram_quantile(0.99, sum by (le, route) (rate(rtgraph_api_request_duration_seconds_bucket[5m])))`, ""},
		{`rtgraph_enrich_entries{cache="titles", instance="a"}`, ""},
		{`up{job="rtgraph"} == 0`, ""},
		{`rate(rtgraph_ingest_bogus_total[5m])`, "rtgraph_ingest_bogus_total is not registered"},
		{`rtgraph_ingest_consumer_lag{partiton="1"}`, `no label "partiton"`},
		{`sum by (route) (rtgraph_ingest_consumer_lag)`, `label "route"`},
		{`rtgraph_ingest_messages_total_bucket`, "rtgraph_ingest_messages_total is not a histogram"},
		{`rtgraph_api_request_duration_seconds`, "is a histogram"},
		{`rtgraph_ingest_consumer_lag * on (route) rtgraph_ingest_stalled_partitions`, `matching label "route"`},
		{`{topic="x"}`, "names no metric"},
		{`sum(rate(rtgraph_ingest_messages_total[5m])`, "parse"},
	}
	for _, tt := range tests {
		errs := c.check(tt.expr)
		switch {
		case tt.want == "" && len(errs) > 0:
			t.Errorf("check(%s) = %v, want no error", tt.expr, errs)
		case tt.want != "" && !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tt.want) }):
			t.Errorf("check(%s) = %v, want an error containing %q", tt.expr, errs, tt.want)
		}
	}
}

// testRules parses the rule file as Prometheus loads it (unknown fields
// refused, templates parsed) and checks every alert's expression and the
// fields an on-call page needs.
func testRules(t *testing.T, c *checker) {
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.LegacyValidation, c.parser, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("%v", err)
	}
	if groups == nil {
		t.Fatal("no rule groups")
	}
	n := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			n++
			where := g.Name + "/" + r.Alert + r.Record
			for _, err := range c.check(r.Expr) {
				t.Errorf("%s: %v", where, err)
			}
			if r.Alert == "" {
				continue
			}
			if r.For <= 0 {
				t.Errorf("%s: no for: a single bad scrape would page", where)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: labels.severity = %q, want critical or warning", where, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no annotations.%s", where, a)
				}
			}
		}
	}
	if n == 0 {
		t.Error("the rule file holds no rules")
	}
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Inputs     []input `json:"__inputs"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type input struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	PluginID string `json:"pluginId"`
}

type panel struct {
	Title      string      `json:"title"`
	Type       string      `json:"type"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

const dsUID = "${DS_PROMETHEUS}"

var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// testDashboard checks that the dashboard reads Prometheus through the
// DS_PROMETHEUS input and that every panel query and variable query names
// registered series only.
func testDashboard(t *testing.T, c *checker) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if !slices.ContainsFunc(d.Inputs, func(in input) bool {
		return in.Name == "DS_PROMETHEUS" && in.Type == "datasource" && in.PluginID == "prometheus"
	}) {
		t.Error("__inputs has no DS_PROMETHEUS Prometheus datasource input")
	}
	checkDS := func(where string, ds *datasource) {
		if ds == nil || ds.UID != dsUID || ds.Type != "prometheus" {
			t.Errorf("%s: datasource %+v, want prometheus %s", where, ds, dsUID)
		}
	}

	// Variables: label_values(selector, label) queries are checked as the
	// selector they read; their names may appear in panel queries.
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
		if v.Type != "query" {
			continue
		}
		checkDS("variable "+v.Name, v.Datasource)
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				t.Errorf("variable %s: query %s: %v", v.Name, v.Query, err)
				continue
			}
			q = obj.Query
		}
		m := labelValuesRE.FindStringSubmatch(strings.TrimSpace(q))
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q)
			continue
		}
		sel := substitute(m[1], vars)
		for _, err := range c.check(fmt.Sprintf("count by (%s) (%s)", m[2], sel)) {
			t.Errorf("variable %s: %v", v.Name, err)
		}
	}

	n := 0
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			checkDS("panel "+p.Title, p.Datasource)
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for i, tg := range p.Targets {
				n++
				where := fmt.Sprintf("panel %q target %d", p.Title, i)
				checkDS(where, tg.Datasource)
				expr := substitute(tg.Expr, vars)
				if strings.Contains(expr, "$") {
					t.Errorf("%s: unknown variable in %s", where, tg.Expr)
					continue
				}
				for _, err := range c.check(expr) {
					t.Errorf("%s: %v", where, err)
				}
			}
		}
	}
	walk(d.Panels)
	if n == 0 {
		t.Error("the dashboard holds no queries")
	}
}

// substitute replaces Grafana's interval macros with a duration and the
// dashboard's own variables with a regular expression, as Grafana does
// before a query reaches Prometheus. A variable outside a label matcher's
// string therefore still fails to parse.
func substitute(expr string, vars []string) string {
	for _, m := range grafanaIntervals {
		expr = strings.ReplaceAll(expr, m, "5m")
	}
	for _, v := range vars {
		expr = strings.ReplaceAll(expr, "${"+v+"}", ".+")
		expr = regexp.MustCompile(`\$`+regexp.QuoteMeta(v)+`\b`).ReplaceAllString(expr, ".+")
	}
	return expr
}

func keys(r registry) []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
