package embedded_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/embedded"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

// countOracle is the rule of package graph, written from its text: a
// window W of a query as of T counts the distinct impressions (identity:
// user, edge type, target, event time, event id) with T−W < t ≤ T.
type countOracle map[graph.Impression]bool

func (o countOracle) counts(q graph.CountQuery) [][]int64 {
	out := make([][]int64, len(q.Targets))
	for i, tg := range q.Targets {
		out[i] = make([]int64, len(q.Windows))
		for im := range o {
			if im.User != q.User || im.EdgeType != q.EdgeType || im.Target != tg || im.EventTime.After(q.AsOf) {
				continue
			}
			for j, w := range q.Windows {
				if im.EventTime.After(q.AsOf.Add(-w)) {
					out[i][j]++
				}
			}
		}
	}
	return out
}

// TestRollupsStayExact drives a heavy user through sealing, late and
// redelivered impressions into sealed buckets (some while a seal pass
// runs), a purge and the sweep, and after each step compares random
// lookups, whose window edges fall anywhere, including on bucket edges to
// the microsecond, with the oracle. It also checks that lookups read
// rollups instead of impressions once buckets are sealed.
func TestRollupsStayExact(t *testing.T) {
	schema := storetest.Schema()
	s := openAt(t, t.TempDir(), schema)
	// 40 minutes past the hour: as_of values truncated to the hour stay
	// within the lateness a 7-day window allows.
	clk := &fakeClock{t: time.Date(2026, 11, 25, 12, 40, 0, 0, time.UTC)}
	var clkMu sync.Mutex
	now := func() time.Time { clkMu.Lock(); defer clkMu.Unlock(); return clk.t }
	reg := prometheus.NewRegistry()
	c := openCounts(t, s, schema, storetest.CountConfig(), embedded.CountOptions{Now: now, Registerer: reg, SweepInterval: time.Hour})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	heavy := graph.NodeKey{Type: "user", ID: "heavy"}
	light := graph.NodeKey{Type: "user", ID: "light"}
	targets := []graph.NodeKey{{Type: "item", ID: "a"}, {Type: "item", ID: "b\x00"}, {Type: "item", ID: "c"}}
	oracle := countOracle{}
	var all []graph.Impression
	n := 0
	imp := func(u graph.NodeKey, at time.Time) graph.Impression {
		n++
		return graph.Impression{User: u, EdgeType: "viewed", Target: targets[rng.IntN(len(targets))],
			EventID: fmt.Sprintf("e%06d", n), EventTime: at}
	}
	record := func(imps []graph.Impression) {
		t.Helper()
		for len(imps) > 0 {
			k := min(len(imps), 500)
			res, err := c.RecordImpressions(ctx, imps[:k])
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted != k {
				t.Fatalf("recorded %+v of %d", res, k)
			}
			for _, im := range imps[:k] {
				im.EventTime = im.EventTime.Truncate(time.Microsecond)
				oracle[im] = true
			}
			all = append(all, imps[:k]...)
			imps = imps[k:]
		}
	}
	// The heavy user: about 40 impressions an hour over 3 days, some on
	// bucket edges to the microsecond; the light user: a few.
	t0 := now().Add(-72 * time.Hour)
	var batch []graph.Impression
	for i := range 3000 {
		at := t0.Add(time.Duration(rng.Int64N(int64(72 * time.Hour))))
		if i%50 == 0 {
			at = at.Truncate(time.Hour) // the first microsecond of a bucket
		} else if i%50 == 1 {
			at = at.Truncate(time.Hour).Add(-time.Microsecond) // the last one
		}
		batch = append(batch, imp(heavy, at))
	}
	for range 20 {
		batch = append(batch, imp(light, t0.Add(time.Duration(rng.Int64N(int64(72*time.Hour))))))
	}
	record(batch)
	rows := func() float64 { return testutil.ToFloat64(counterOf(t, reg, "rtgraph_embedded_count_rows_read_total")) }
	check := func(step string) {
		t.Helper()
		for range 60 {
			u := heavy
			if rng.IntN(4) == 0 {
				u = light
			}
			asOf := now().Add(-time.Duration(rng.Int64N(int64(35 * time.Minute))))
			switch rng.IntN(3) {
			case 0:
				asOf = asOf.Truncate(time.Hour).Add(-time.Microsecond)
			case 1:
				asOf = asOf.Truncate(time.Hour)
			}
			windows := []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour}
			if rng.IntN(2) == 0 {
				windows = []time.Duration{time.Duration(1+rng.IntN(70)) * time.Hour, time.Duration(1+rng.IntN(4000)) * time.Minute}
			}
			q := graph.CountQuery{User: u, EdgeType: "viewed", Targets: targets, Windows: windows, AsOf: asOf}
			res, err := c.Counts(ctx, q)
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			want := oracle.counts(q)
			for i, tc := range res.Targets {
				for j := range windows {
					if tc.Counts[j] != want[i][j] {
						t.Fatalf("%s: %s target %s window %s as of %s: %d, the rule says %d",
							step, u.ID, tc.Target, windows[j], asOf.Format(time.RFC3339Nano), tc.Counts[j], want[i][j])
					}
				}
			}
		}
	}
	heavyLookup := func() float64 {
		before := rows()
		if _, err := c.Counts(ctx, graph.CountQuery{User: heavy, EdgeType: "viewed", Targets: targets,
			Windows: []time.Duration{7 * 24 * time.Hour}, AsOf: now()}); err != nil {
			t.Fatal(err)
		}
		return rows() - before
	}
	check("before sealing")
	unsealed := heavyLookup()
	sealed, err := c.SealCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sealed < 100 {
		t.Fatalf("sealed %d buckets, want the heavy user's (about 3 targets x 70 hours)", sealed)
	}
	check("sealed")
	if got := heavyLookup(); got > unsealed/4 {
		t.Fatalf("a 7-day lookup of the heavy user read %v rows once sealed, %v before: rollups unused", got, unsealed)
	}
	// Late impressions and redeliveries into sealed buckets: exact before
	// the next pass (markers) and after it.
	var late []graph.Impression
	for range 300 {
		late = append(late, imp(heavy, t0.Add(time.Duration(rng.Int64N(int64(60*time.Hour))))))
	}
	for range 200 {
		late = append(late, all[rng.IntN(len(all))]) // redelivered
	}
	record(late)
	check("late, not sealed again")
	if _, err := c.SealCounts(ctx); err != nil {
		t.Fatal(err)
	}
	check("late, sealed again")
	// Late impressions written while a pass runs.
	var wg sync.WaitGroup
	var more []graph.Impression
	for range 400 {
		more = append(more, imp(heavy, t0.Add(time.Duration(rng.Int64N(int64(60*time.Hour))))))
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 5 {
			if _, err := c.SealCounts(ctx); err != nil {
				t.Error(err)
			}
		}
	}()
	record(more)
	wg.Wait()
	check("written during passes")
	if _, err := c.SealCounts(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the passes")
	// Late impressions into hours of today already sealed; then the day
	// ends, and the pass that seals it must count those hours again.
	dayStart := now().Truncate(24 * time.Hour)
	var today []graph.Impression
	for range 300 {
		today = append(today, imp(heavy, dayStart.Add(time.Duration(rng.Int64N(int64(now().Add(-2*time.Hour).Sub(dayStart)))))))
	}
	record(today)
	clkMu.Lock()
	clk.t = clk.t.Add(24 * time.Hour)
	clkMu.Unlock()
	if _, err := c.SealCounts(ctx); err != nil {
		t.Fatal(err)
	}
	check("a day sealed with marked hours")
	// Time passes: new buckets get sealed, the oldest leave retention.
	clkMu.Lock()
	clk.t = clk.t.Add(4 * 24 * time.Hour)
	clkMu.Unlock()
	var recent []graph.Impression
	for range 1000 {
		recent = append(recent, imp(heavy, now().Add(-time.Duration(rng.Int64N(int64(30*time.Hour))))))
	}
	record(recent)
	if _, err := c.SweepCounts(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SealCounts(ctx); err != nil {
		t.Fatal(err)
	}
	for im := range oracle {
		if !im.EventTime.After(now().Add(-8 * 24 * time.Hour)) {
			delete(oracle, im) // beyond any valid window
		}
	}
	check("after the sweep")
	// A purge of the heavy user up to a time inside a sealed bucket.
	through := now().Add(-20*time.Hour - 17*time.Minute)
	if _, err := c.PurgeUser(ctx, heavy, through); err != nil {
		t.Fatal(err)
	}
	for im := range oracle {
		if im.User == heavy && !im.EventTime.After(through) {
			delete(oracle, im)
		}
	}
	check("purged")
	if _, err := c.SealCounts(ctx); err != nil {
		t.Fatal(err)
	}
	check("purged and sealed again")
}

func counterOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: name}, func() float64 {
				mfs, _ := reg.Gather()
				for _, m := range mfs {
					if m.GetName() == name {
						return m.GetMetric()[0].GetCounter().GetValue()
					}
				}
				return 0
			})
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}
