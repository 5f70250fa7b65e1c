package cassandra

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

func openCounts(t *testing.T, schema *graph.Schema, cfg graph.CountConfig, opts CountOptions) *Counts {
	t.Helper()
	st := openStore(t, schema)
	rules, err := graph.NewCountRules(cfg, schema)
	if err != nil {
		t.Fatalf("count rules: %v", err)
	}
	c, err := NewCounts(st, rules, opts)
	if err != nil {
		t.Fatalf("new counts: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil && !errors.Is(err, graph.ErrClosed) {
			t.Errorf("close counts: %v", err)
		}
	})
	return c
}

// TestCountsConformance runs the count conformance suite against real
// Cassandra, in the run's shared keyspace (the suite namespaces user ids).
func TestCountsConformance(t *testing.T) {
	storetest.RunCounts(t, func(t *testing.T, schema *graph.Schema, cfg graph.CountConfig, now func() time.Time) graph.CountStore {
		return openCounts(t, schema, cfg, CountOptions{Now: now, Registerer: prometheus.NewRegistry()})
	}, storetest.CountOptions{})
}

// TestCountsExpireByTTL writes an impression two seconds from the end of
// its retention, with no clock-skew slack, and waits for Cassandra to drop
// the row by itself.
func TestCountsExpireByTTL(t *testing.T) {
	_, session := sharedSession(t)
	schema := storetest.Schema()
	c := openCounts(t, schema, storetest.CountConfig(), CountOptions{})
	c.ttlSlack = 0
	ctx := context.Background()
	user := "ttl-" + uniqueKeyspace("")
	now := time.Now()
	imps := []graph.Impression{
		{User: graph.NodeKey{Type: "user", ID: user}, EdgeType: "viewed", Target: graph.NodeKey{Type: "item", ID: "a"},
			EventID: "short", EventTime: now.Add(-c.rules.Retention() + 2*time.Second)},
		{User: graph.NodeKey{Type: "user", ID: user}, EdgeType: "viewed", Target: graph.NodeKey{Type: "item", ID: "a"},
			EventID: "long", EventTime: now},
	}
	if res, err := c.RecordImpressions(ctx, imps); err != nil || res.Accepted != 2 {
		t.Fatalf("record: %+v, %v", res, err)
	}
	rowsLeft := func() []string {
		iter := session.Query(`SELECT event_id FROM impressions WHERE user_type = ? AND user_id = ? AND edge_type = ?`,
			"user", []byte(user), "viewed").IterContext(ctx)
		var ids []string
		var id []byte
		for iter.Scan(&id) {
			ids = append(ids, string(id))
		}
		if err := iter.Close(); err != nil {
			t.Fatalf("read impressions: %v", err)
		}
		return ids
	}
	if got := rowsLeft(); len(got) != 2 {
		t.Fatalf("rows right after writing: %v", got)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		got := rowsLeft()
		if len(got) == 1 && got[0] == "long" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rows a minute later: %v, want only the impression within retention", got)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestCountsMetricsAndErrors(t *testing.T) {
	schema := storetest.Schema()
	reg := prometheus.NewRegistry()
	c := openCounts(t, schema, storetest.CountConfig(), CountOptions{Registerer: reg})
	ctx := context.Background()
	now := time.Now()
	u, a := graph.NodeKey{Type: "user", ID: "m-" + uniqueKeyspace("")}, graph.NodeKey{Type: "item", ID: "a"}
	imps := []graph.Impression{
		{User: u, EdgeType: "viewed", Target: a, EventID: "1", EventTime: now},
		{User: u, EdgeType: "viewed", Target: a, EventID: "1", EventTime: now},
		{User: u, EdgeType: "viewed", Target: a, EventID: "2", EventTime: now.Add(-8 * 24 * time.Hour)},
		{User: u, EdgeType: "viewed", Target: a, EventID: "3", EventTime: now.Add(2 * time.Hour)},
	}
	if _, err := c.RecordImpressions(ctx, imps); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RecordImpressions(ctx, []graph.Impression{{User: u, EdgeType: "follows", Target: u, EventID: "x", EventTime: now}}); !errors.Is(err, graph.ErrInvalidImpression) {
		t.Fatalf("invalid: %v", err)
	}
	if _, err := c.Counts(ctx, graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{a}, Windows: graph.DefaultWindows()}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP rtgraph_cassandra_impressions_total Impressions given to the Cassandra count store, by outcome: accepted (written, duplicates included), too_old (at or before now - retention), too_new (beyond now + lateness).
# TYPE rtgraph_cassandra_impressions_total counter
rtgraph_cassandra_impressions_total{outcome="accepted"} 2
rtgraph_cassandra_impressions_total{outcome="too_new"} 1
rtgraph_cassandra_impressions_total{outcome="too_old"} 1
# HELP rtgraph_cassandra_impression_calls_invalid_total RecordImpressions calls refused because an impression was invalid (nothing of them written).
# TYPE rtgraph_cassandra_impression_calls_invalid_total counter
rtgraph_cassandra_impression_calls_invalid_total 1
# HELP rtgraph_cassandra_count_rows_read_total Impression rows read by count lookups (retried attempts included).
# TYPE rtgraph_cassandra_count_rows_read_total counter
rtgraph_cassandra_count_rows_read_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rtgraph_cassandra_impressions_total",
		"rtgraph_cassandra_impression_calls_invalid_total", "rtgraph_cassandra_count_rows_read_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "rtgraph_cassandra_count_read_seconds"); n != 1 {
		t.Fatalf("read histogram series: %d", n)
	}
	// The second Counts on one registry is refused; so are nil arguments.
	rules, _ := graph.NewCountRules(storetest.CountConfig(), schema)
	if _, err := NewCounts(c.s, rules, CountOptions{Registerer: reg}); err == nil {
		t.Fatal("second registration accepted")
	}
	if _, err := NewCounts(nil, rules, CountOptions{}); err == nil {
		t.Fatal("nil store accepted")
	}
	if _, err := NewCounts(c.s, nil, CountOptions{}); err == nil {
		t.Fatal("nil rules accepted")
	}
	// With its Store closed, Counts refuses calls.
	if err := c.s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Counts(ctx, graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{a}, Windows: graph.DefaultWindows()}); !errors.Is(err, graph.ErrClosed) {
		t.Fatalf("counts after the store closed: %v", err)
	}
}

// TestCountsUnavailable points a Counts at a session whose keyspace lacks
// the impressions table: the failure is permanent (invalid request), not
// retried forever.
func TestCountsWithoutTable(t *testing.T) {
	cfg, _ := sharedSession(t)
	ks := uniqueKeyspace("rtgraph_nocounts_")
	trackKeyspace(ks)
	ctx := context.Background()
	admin, err := newSession(ctx, cfg, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Query("CREATE KEYSPACE " + ks + " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}").ExecContext(ctx); err != nil {
		t.Fatal(err)
	}
	kcfg := cfg
	kcfg.Keyspace = ks
	session, err := NewSession(ctx, kcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	schema := storetest.Schema()
	st, err := New(session, kcfg, schema, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rules, _ := graph.NewCountRules(storetest.CountConfig(), schema)
	c, err := NewCounts(st, rules, CountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u, a := graph.NodeKey{Type: "user", ID: "u"}, graph.NodeKey{Type: "item", ID: "a"}
	_, errW := c.RecordImpressions(ctx, []graph.Impression{{User: u, EdgeType: "viewed", Target: a, EventID: "1", EventTime: time.Now()}})
	_, errR := c.Counts(ctx, graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{a}, Windows: []time.Duration{time.Hour}})
	for what, err := range map[string]error{"record": errW, "counts": errR} {
		if err == nil || graph.IsRetryable(err) || !strings.Contains(err.Error(), "impressions") {
			t.Errorf("%s without the table: %v, want a permanent error naming the table", what, err)
		}
	}
}
