package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/rtgraph/rtgraph/graph"
)

// CountFactory opens a count store for one case: it counts the edge types
// of cfg, checks impressions against schema, and reads the time from now
// (for retention, lateness and a query's default as_of). Each call must
// return a usable store; stores may share storage (the suite namespaces its
// user ids). The factory registers its own cleanup with t.Cleanup, which
// must tolerate the suite having closed the store already.
type CountFactory func(t *testing.T, schema *graph.Schema, cfg graph.CountConfig, now func() time.Time) graph.CountStore

// CountOptions size the count cases. The zero value runs them all at the
// default sizes.
type CountOptions struct {
	// PropertyImpressions bounds the distinct impressions of one property
	// case (default 60).
	PropertyImpressions int
}

// CountConfig is the configuration the count cases run with: both of the
// suite schema's user-to-thing edge types are counted ("viewed" to items,
// "likes" to items and tags), with the default lateness.
func CountConfig() graph.CountConfig {
	c := graph.DefaultCountConfig()
	c.EdgeTypes = []string{"viewed", "likes"}
	return c
}

// RunCounts runs every count conformance case as a subtest of t.
//
// Clocks. Each case gets a manual clock that starts two hours behind the
// wall clock and only moves forward by less than that, so that a backend
// whose expiry is driven by the server's clock (Cassandra TTL) never drops
// data earlier than the case's clock says; impressions are written with
// event times relative to the case's clock.
func RunCounts(t *testing.T, open CountFactory, opts CountOptions) {
	if opts.PropertyImpressions <= 0 {
		opts.PropertyImpressions = 60
	}
	schema := Schema()
	cases := []struct {
		name string
		fn   func(t *testing.T, h *countHarness)
	}{
		{"WindowBoundaries", testCountBoundaries},
		{"DuplicatesCountOnce", testCountDuplicates},
		{"Identity", testCountIdentity},
		{"AsOf", testCountAsOf},
		{"LateAndFuture", testCountLateAndFuture},
		{"Isolation", testCountIsolation},
		{"HundredTargets", testCountHundredTargets},
		{"InvalidImpressions", testCountInvalidImpressions},
		{"InvalidQueries", testCountInvalidQueries},
		{"CancelledContext", testCountCancelled},
		{"PurgeUser", testCountPurgeUser},
		{"Closed", testCountClosed},
		{"PropertyMatchesBruteForce", func(t *testing.T, h *countHarness) { testCountProperty(t, h, opts) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := &manualClock{t: time.Now().UTC().Truncate(time.Second).Add(-2 * time.Hour)}
			h := &countHarness{clock: clk, ns: namespace(), cfg: CountConfig()}
			h.s = open(t, schema, h.cfg, clk.Now)
			c.fn(t, h)
		})
	}
}

// manualClock is a clock that tests move; safe for concurrent use.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type countHarness struct {
	s     graph.CountStore
	clock *manualClock
	ns    string
	cfg   graph.CountConfig
}

func (h *countHarness) user(id string) graph.NodeKey {
	return graph.NodeKey{Type: "user", ID: h.ns + "-" + id}
}

func item(id string) graph.NodeKey { return graph.NodeKey{Type: "item", ID: id} }
func tag(id string) graph.NodeKey  { return graph.NodeKey{Type: "tag", ID: id} }

func imp(user graph.NodeKey, edgeType string, target graph.NodeKey, id string, at time.Time) graph.Impression {
	return graph.Impression{User: user, EdgeType: edgeType, Target: target, EventID: id, EventTime: at}
}

func (h *countHarness) record(t tb, imps ...graph.Impression) graph.RecordResult {
	t.Helper()
	res, err := h.s.RecordImpressions(context.Background(), imps)
	if err != nil {
		t.Fatalf("record %d impressions: %v", len(imps), err)
	}
	return res
}

func (h *countHarness) counts(t tb, q graph.CountQuery) graph.CountResult {
	t.Helper()
	res, err := h.s.Counts(context.Background(), q)
	if err != nil {
		t.Fatalf("counts of %s %s as of %v: %v", q.User, q.EdgeType, q.AsOf, err)
	}
	if len(res.Targets) != len(q.Targets) || !slices.Equal(res.Windows, q.Windows) {
		t.Fatalf("counts of %s: result shape %d targets %v, want %d targets %v", q.User, len(res.Targets), res.Windows, len(q.Targets), q.Windows)
	}
	for i, tc := range res.Targets {
		if tc.Target != q.Targets[i] || len(tc.Counts) != len(q.Windows) {
			t.Fatalf("counts of %s: target %d is %s with %d counts, want %s with %d", q.User, i, tc.Target, len(tc.Counts), q.Targets[i], len(q.Windows))
		}
	}
	return res
}

// countsOf returns the counts as a [target][window] matrix.
func countsOf(res graph.CountResult) [][]int64 {
	out := make([][]int64, len(res.Targets))
	for i, tc := range res.Targets {
		out[i] = tc.Counts
	}
	return out
}

func matrixEqual(a, b [][]int64) bool {
	return slices.EqualFunc(a, b, func(x, y []int64) bool { return slices.Equal(x, y) })
}

// bruteForce counts, for each target and window, the distinct impression
// identities with event time in (asOf−W, asOf]: the definition, with no
// shortcut.
func bruteForce(stored map[impressionID]struct{}, user graph.NodeKey, edgeType string, targets []graph.NodeKey, windows []time.Duration, asOf time.Time) [][]int64 {
	out := make([][]int64, len(targets))
	for i, tgt := range targets {
		out[i] = make([]int64, len(windows))
		for id := range stored {
			if id.user != user || id.edgeType != edgeType || id.target != tgt {
				continue
			}
			for j, w := range windows {
				if id.at.After(asOf.Add(-w)) && !id.at.After(asOf) {
					out[i][j]++
				}
			}
		}
	}
	return out
}

// impressionID is an impression's identity.
type impressionID struct {
	user     graph.NodeKey
	edgeType string
	target   graph.NodeKey
	eventID  string
	at       time.Time
}

func idOf(im graph.Impression) impressionID {
	return impressionID{im.User, im.EdgeType, im.Target, im.EventID, im.EventTime.UTC().Truncate(time.Microsecond)}
}

func testCountBoundaries(t *testing.T, h *countHarness) {
	now := h.clock.Now()
	u := h.user("u")
	a, b, k := item("a"), item("b"), item("k")
	us := time.Microsecond
	offsets := []time.Duration{
		0,                       // every window (the end is included)
		-time.Minute + us,       // every window
		-time.Minute,            // not 1m (the start is excluded)
		-5*time.Minute + us,     // 5m and up
		-5 * time.Minute,        // 1h and up
		-time.Hour,              // 1d and up
		-24*time.Hour + us,      // 1d and up
		-24 * time.Hour,         // 7d only
		-7*24*time.Hour + us,    // 7d only
		-7 * 24 * time.Hour,     // no window
		-7*24*time.Hour - 30*us, // no window, still stored (lateness)
		us,                      // after as_of: no window
		30 * time.Minute,        // after as_of
	}
	var imps []graph.Impression
	stored := map[impressionID]struct{}{}
	for i, off := range offsets {
		im := imp(u, "viewed", a, fmt.Sprintf("e%d", i), now.Add(off))
		imps = append(imps, im)
		stored[idOf(im)] = struct{}{}
	}
	// A sub-microsecond event time is truncated: this one is at now.
	odd := imp(u, "viewed", k, "odd\x00id", now.Add(999*time.Nanosecond))
	imps = append(imps, odd)
	stored[idOf(odd)] = struct{}{}
	if res := h.record(t, imps...); res != (graph.RecordResult{Accepted: len(imps)}) {
		t.Fatalf("record: %+v, want all %d accepted", res, len(imps))
	}
	q := graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{a, b, k}, Windows: graph.DefaultWindows()}
	got := countsOf(h.counts(t, q))
	want := [][]int64{{2, 4, 5, 7, 9}, {0, 0, 0, 0, 0}, {1, 1, 1, 1, 1}}
	if !matrixEqual(got, want) {
		t.Fatalf("counts as of now (1m,5m,1h,1d,7d) per target a,b,k = %v, want %v", got, want)
	}
	if bf := bruteForce(stored, u, "viewed", q.Targets, q.Windows, now); !matrixEqual(bf, want) {
		t.Fatalf("the brute-force reference disagrees with the hand count: %v", bf)
	}
	// The result reports the as_of used, which defaults to the clock.
	res := h.counts(t, q)
	if !res.AsOf.Equal(now) {
		t.Fatalf("as_of = %v, want the store's clock %v", res.AsOf, now)
	}
	// Windows in any order, any whole seconds.
	q.Windows = []time.Duration{7*24*time.Hour - time.Second, 61 * time.Second, 90 * time.Minute}
	q.Targets = []graph.NodeKey{k, a}
	got = countsOf(h.counts(t, q))
	if want := bruteForce(stored, u, "viewed", q.Targets, q.Windows, now); !matrixEqual(got, want) {
		t.Fatalf("odd windows: %v, want %v", got, want)
	}
}

func testCountDuplicates(t *testing.T, h *countHarness) {
	now := h.clock.Now()
	u := h.user("u")
	a := item("a")
	one := imp(u, "viewed", a, "req-1", now.Add(-time.Minute/2))
	two := imp(u, "viewed", a, "req-2", now.Add(-2*time.Hour))
	// In one call, across calls, and from concurrent callers.
	if res := h.record(t, one, one, two, one); res.Accepted != 4 {
		t.Fatalf("record: %+v, want every copy accepted", res)
	}
	h.record(t, two)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := h.s.RecordImpressions(context.Background(), []graph.Impression{two, one}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent record: %v", err)
	}
	// Redelivered later, when the clock has moved on.
	h.clock.Advance(10 * time.Minute)
	h.record(t, one, two)
	q := graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{a}, Windows: []time.Duration{time.Hour, 24 * time.Hour}}
	if got := countsOf(h.counts(t, q)); !matrixEqual(got, [][]int64{{1, 2}}) {
		t.Fatalf("counts after duplicates = %v, want [[1 2]]", got)
	}
}

func testCountIdentity(t *testing.T, h *countHarness) {
	now := h.clock.Now()
	u := h.user("u")
	a, b, tg := item("a"), item("b"), tag("a")
	at := now.Add(-3 * time.Minute)
	h.record(t,
		// One event towards three targets (two of them of different types
		// but equal ids) is one impression per target.
		imp(u, "likes", a, "ev", at), imp(u, "likes", b, "ev", at), imp(u, "likes", tg, "ev", at),
		// Two events at the same instant are two impressions.
		imp(u, "likes", a, "ev2", at),
		// The same event id at another time is another impression.
		imp(u, "likes", a, "ev", at.Add(time.Microsecond)),
		// Ids differing only in case or by a trailing NUL are distinct.
		imp(u, "likes", b, "EV", at), imp(u, "likes", b, "ev\x00", at),
	)
	q := graph.CountQuery{User: u, EdgeType: "likes", Targets: []graph.NodeKey{tg, b, a}, Windows: []time.Duration{time.Minute, 5 * time.Minute}}
	if got := countsOf(h.counts(t, q)); !matrixEqual(got, [][]int64{{0, 1}, {0, 3}, {0, 3}}) {
		t.Fatalf("counts = %v, want [[0 1] [0 3] [0 3]]", got)
	}
}

func testCountAsOf(t *testing.T, h *countHarness) {
	now := h.clock.Now()
	u := h.user("u")
	a := item("a")
	stored := map[impressionID]struct{}{}
	var imps []graph.Impression
	for i := range 48 {
		// One impression every 3h10m over the last 6 days.
		im := imp(u, "viewed", a, fmt.Sprintf("e%d", i), now.Add(-time.Duration(i)*(3*time.Hour+10*time.Minute)))
		imps = append(imps, im)
		stored[idOf(im)] = struct{}{}
	}
	h.record(t, imps...)
	all := []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
	// As of now, as of the earliest valid instant for 7d, exactly at an
	// impression (included), exactly a window after one (excluded), and in
	// the future (a later reader's view).
	for _, asOf := range []time.Time{
		now,
		now.Add(-h.cfg.Lateness),
		imps[3].EventTime,
		imps[3].EventTime.Add(time.Hour),
		now.Add(-time.Minute + 7*time.Microsecond),
		now.Add(3 * time.Hour),
	} {
		// Only the windows that lie inside the retained data are valid.
		var windows []time.Duration
		for _, w := range all {
			if !asOf.Add(-w).Before(now.Add(-h.cfg.Retention())) {
				windows = append(windows, w)
			}
		}
		q := graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{a}, Windows: windows, AsOf: asOf}
		res := h.counts(t, q)
		if !res.AsOf.Equal(asOf) {
			t.Fatalf("result as_of %v, want %v", res.AsOf, asOf)
		}
		if got, want := countsOf(res), bruteForce(stored, u, "viewed", q.Targets, windows, asOf); !matrixEqual(got, want) {
			t.Fatalf("as of %v: counts %v, want %v", asOf, got, want)
		}
	}
	// A 1d window may look much further back than a 7d one.
	q := graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{a}, Windows: []time.Duration{24 * time.Hour}, AsOf: now.Add(-5 * 24 * time.Hour)}
	if got, want := countsOf(h.counts(t, q)), bruteForce(stored, u, "viewed", q.Targets, q.Windows, q.AsOf); !matrixEqual(got, want) {
		t.Fatalf("1d as of 5 days ago: %v, want %v", got, want)
	}
}

func testCountLateAndFuture(t *testing.T, h *countHarness) {
	now := h.clock.Now()
	u := h.user("u")
	a := item("a")
	ret := h.cfg.Retention()
	late := imp(u, "viewed", a, "late", now.Add(-7*24*time.Hour-30*time.Minute)) // within lateness: kept
	tooOld := imp(u, "viewed", a, "old", now.Add(-ret))                          // at the horizon: dropped
	ahead := imp(u, "viewed", a, "ahead", now.Add(h.cfg.Lateness))               // kept
	tooNew := imp(u, "viewed", a, "new", now.Add(h.cfg.Lateness+time.Second))    // dropped
	res := h.record(t, late, tooOld, ahead, tooNew)
	if res != (graph.RecordResult{Accepted: 2, TooOld: 1, TooNew: 1}) {
		t.Fatalf("record: %+v, want 2 accepted, 1 too old, 1 too new", res)
	}
	// The late one counts in the windows that contain it.
	q := graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{a}, Windows: []time.Duration{7 * 24 * time.Hour}, AsOf: now.Add(-45 * time.Minute)}
	if got := countsOf(h.counts(t, q)); !matrixEqual(got, [][]int64{{1}}) {
		t.Fatalf("7d as of 45m ago: %v, want the late impression", got)
	}
	// The one an hour ahead is stored; the one beyond is not.
	q = graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{a}, Windows: []time.Duration{time.Hour, 2 * time.Hour}, AsOf: now.Add(2 * time.Hour)}
	if got := countsOf(h.counts(t, q)); !matrixEqual(got, [][]int64{{0, 1}}) {
		t.Fatalf("as of 2h ahead: %v, want [[0 1]]", got)
	}
	// Once the clock passes the late impression's retention, reads that
	// could see it are refused rather than answered from expired data.
	h.clock.Advance(45 * time.Minute)
	q = graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{a}, Windows: []time.Duration{7 * 24 * time.Hour}, AsOf: now.Add(-45 * time.Minute)}
	if _, err := h.s.Counts(context.Background(), q); !errors.Is(err, graph.ErrInvalidQuery) {
		t.Fatalf("as_of reaching before retention: err = %v, want ErrInvalidQuery", err)
	}
	// And a redelivery of it now is dropped as too old.
	if res := h.record(t, late); res != (graph.RecordResult{TooOld: 1}) {
		t.Fatalf("late redelivery: %+v, want too old", res)
	}
}

func testCountIsolation(t *testing.T, h *countHarness) {
	now := h.clock.Now()
	u1, u2 := h.user("u1"), h.user("u2")
	a, ta := item("a"), tag("a")
	at := now.Add(-time.Hour / 2)
	h.record(t,
		imp(u1, "viewed", a, "1", at),
		imp(u1, "likes", a, "2", at), imp(u1, "likes", a, "3", at),
		imp(u1, "likes", ta, "4", at), imp(u1, "likes", ta, "5", at), imp(u1, "likes", ta, "6", at),
		imp(u2, "viewed", a, "1", at), imp(u2, "viewed", a, "7", at), imp(u2, "viewed", a, "8", at), imp(u2, "viewed", a, "9", at),
	)
	// A user whose id extends another's must not see its impressions.
	u1x := graph.NodeKey{Type: "user", ID: u1.ID + "x"}
	w := []time.Duration{time.Hour}
	cases := []struct {
		user    graph.NodeKey
		typ     string
		targets []graph.NodeKey
		want    [][]int64
	}{
		{u1, "viewed", []graph.NodeKey{a}, [][]int64{{1}}},
		{u1, "likes", []graph.NodeKey{a, ta}, [][]int64{{2}, {3}}},
		{u2, "viewed", []graph.NodeKey{a}, [][]int64{{4}}},
		{u2, "likes", []graph.NodeKey{a, ta}, [][]int64{{0}, {0}}},
		{u1x, "viewed", []graph.NodeKey{a}, [][]int64{{0}}},
	}
	for _, c := range cases {
		q := graph.CountQuery{User: c.user, EdgeType: c.typ, Targets: c.targets, Windows: w}
		if got := countsOf(h.counts(t, q)); !matrixEqual(got, c.want) {
			t.Errorf("%s %s: %v, want %v", c.user, c.typ, got, c.want)
		}
	}
}

func testCountHundredTargets(t *testing.T, h *countHarness) {
	now := h.clock.Now()
	u := h.user("u")
	targets := make([]graph.NodeKey, graph.MaxCountTargets)
	want := make([][]int64, len(targets))
	var imps []graph.Impression
	for i := range targets {
		targets[i] = item(fmt.Sprintf("c%03d", i))
		n := i % 7
		for j := range n {
			imps = append(imps, imp(u, "viewed", targets[i], fmt.Sprintf("e%d", j), now.Add(-time.Duration(j)*20*time.Minute)))
		}
		// j*20m for j < n: within 1h are j = 0, 1, 2.
		want[i] = []int64{int64(min(n, 3)), int64(n)}
	}
	h.record(t, imps...)
	// Ask in an order unlike storage order.
	slices.Reverse(targets)
	slices.Reverse(want)
	q := graph.CountQuery{User: u, EdgeType: "viewed", Targets: targets, Windows: []time.Duration{time.Hour, 24 * time.Hour}}
	if got := countsOf(h.counts(t, q)); !matrixEqual(got, want) {
		t.Fatalf("100 targets: %v, want %v", got, want)
	}
}

func testCountInvalidImpressions(t *testing.T, h *countHarness) {
	now := h.clock.Now()
	u := h.user("u")
	a := item("a")
	good := imp(u, "viewed", a, "good", now)
	for name, bad := range map[string]graph.Impression{
		"uncounted edge type": imp(u, "follows", h.user("v"), "x", now),
		"wrong target type":   imp(u, "viewed", tag("t"), "x", now),
		"empty event id":      imp(u, "viewed", a, "", now),
		"zero event time":     imp(u, "viewed", a, "x", time.Time{}),
	} {
		_, err := h.s.RecordImpressions(context.Background(), []graph.Impression{good, bad})
		if !errors.Is(err, graph.ErrInvalidImpression) || graph.IsRetryable(err) {
			t.Errorf("%s: err = %v, want permanent ErrInvalidImpression", name, err)
		}
	}
	_, err := h.s.RecordImpressions(context.Background(), make([]graph.Impression, graph.MaxImpressionsPerCall+1))
	if !errors.Is(err, graph.ErrInvalidImpression) {
		t.Errorf("oversized call: err = %v, want ErrInvalidImpression", err)
	}
	// Nothing of a refused call is written.
	q := graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{a}, Windows: []time.Duration{time.Hour}}
	if got := countsOf(h.counts(t, q)); !matrixEqual(got, [][]int64{{0}}) {
		t.Fatalf("a refused call wrote: %v", got)
	}
	// An empty call is fine.
	if res := h.record(t); res != (graph.RecordResult{}) {
		t.Fatalf("empty call: %+v", res)
	}
}

func testCountInvalidQueries(t *testing.T, h *countHarness) {
	u := h.user("u")
	many := make([]graph.NodeKey, graph.MaxCountTargets+1)
	for i := range many {
		many[i] = item(fmt.Sprint(i))
	}
	valid := graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{item("a")}, Windows: []time.Duration{time.Hour}}
	for name, mod := range map[string]func(*graph.CountQuery){
		"uncounted edge type": func(q *graph.CountQuery) { q.EdgeType = "follows" },
		"no targets":          func(q *graph.CountQuery) { q.Targets = nil },
		"101 targets":         func(q *graph.CountQuery) { q.Targets = many },
		"duplicate target":    func(q *graph.CountQuery) { q.Targets = []graph.NodeKey{item("a"), item("a")} },
		"window too short":    func(q *graph.CountQuery) { q.Windows = []time.Duration{time.Second} },
		"window too long":     func(q *graph.CountQuery) { q.Windows = []time.Duration{8 * 24 * time.Hour} },
		"no windows":          func(q *graph.CountQuery) { q.Windows = nil },
		"as_of too early": func(q *graph.CountQuery) {
			q.Windows = []time.Duration{graph.MaxWindow}
			q.AsOf = h.clock.Now().Add(-h.cfg.Lateness - time.Second)
		},
	} {
		q := valid
		mod(&q)
		if _, err := h.s.Counts(context.Background(), q); !errors.Is(err, graph.ErrInvalidQuery) || graph.IsRetryable(err) {
			t.Errorf("%s: err = %v, want permanent ErrInvalidQuery", name, err)
		}
	}
}

func testCountCancelled(t *testing.T, h *countHarness) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	u := h.user("u")
	_, errW := h.s.RecordImpressions(ctx, []graph.Impression{imp(u, "viewed", item("a"), "x", h.clock.Now())})
	_, errR := h.s.Counts(ctx, graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{item("a")}, Windows: []time.Duration{time.Hour}})
	for what, err := range map[string]error{"record": errW, "counts": errR} {
		if !errors.Is(err, context.Canceled) || !graph.IsRetryable(err) {
			t.Errorf("%s with a cancelled context: %v, want retryable context.Canceled", what, err)
		}
	}
}

func testCountClosed(t *testing.T, h *countHarness) {
	if err := h.s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	u := h.user("u")
	_, errW := h.s.RecordImpressions(context.Background(), []graph.Impression{imp(u, "viewed", item("a"), "x", h.clock.Now())})
	_, errR := h.s.Counts(context.Background(), graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{item("a")}, Windows: []time.Duration{time.Hour}})
	for what, err := range map[string]error{"record": errW, "counts": errR, "close": h.s.Close()} {
		if !errors.Is(err, graph.ErrClosed) || graph.IsRetryable(err) {
			t.Errorf("%s after close: %v, want permanent ErrClosed", what, err)
		}
	}
}

// testCountProperty records random impression streams, with duplicates,
// redeliveries of earlier calls and events out of order, while the clock
// moves forward, and compares every count with bruteForce over the
// identities the store accepted: those whose event time was within
// (now−Retention, now+Lateness] at some delivery.
func testCountProperty(t *testing.T, h *countHarness, opts CountOptions) {
	start := h.clock.Now()
	ret := h.cfg.Retention()
	rapid.Check(t, func(rt *rapid.T) {
		ih := *h
		ih.ns = namespace()
		// Each check restarts the store's clock where the case began, so
		// that it never runs ahead of the wall clock (see RunCounts).
		clock := h.clock
		clock.Set(start)
		users := []graph.NodeKey{ih.user("u0"), ih.user("u1")}
		targetsOf := map[string][]graph.NodeKey{
			"viewed": {item("i0"), item("i1"), item("i2")},
			"likes":  {item("i0"), tag("i0"), tag("t1")},
		}
		edgeTypes := []string{"viewed", "likes"}
		// Event times on a minute grid, from beyond retention to beyond
		// the lateness ahead, with a microsecond either side of some grid
		// points so that window edges fall exactly on impressions.
		genTime := rapid.Custom(func(rt *rapid.T) time.Duration {
			var d time.Duration
			switch rapid.IntRange(0, 3).Draw(rt, "era") {
			case 0: // the last two hours
				d = -time.Duration(rapid.IntRange(0, 120).Draw(rt, "min")) * time.Minute
			case 1: // the last eight days, beyond retention
				d = -time.Duration(rapid.IntRange(0, 8*24*60).Draw(rt, "min")) * time.Minute
			case 2: // around the retention horizon
				d = -ret + time.Duration(rapid.IntRange(-90, 90).Draw(rt, "min"))*time.Minute
			default: // ahead of the clock
				d = time.Duration(rapid.IntRange(0, 150).Draw(rt, "min")) * time.Minute
			}
			return d + time.Duration(rapid.SampledFrom([]int{0, 0, 1, -1}).Draw(rt, "us"))*time.Microsecond
		})
		genImp := rapid.Custom(func(rt *rapid.T) graph.Impression {
			et := rapid.SampledFrom(edgeTypes).Draw(rt, "edge_type")
			return imp(
				rapid.SampledFrom(users).Draw(rt, "user"),
				et,
				rapid.SampledFrom(targetsOf[et]).Draw(rt, "target"),
				rapid.SampledFrom([]string{"e0", "e1", "e2", "e3"}).Draw(rt, "event_id"),
				start.Add(genTime.Draw(rt, "at")),
			)
		})
		distinct := rapid.SliceOfN(genImp, 1, opts.PropertyImpressions).Draw(rt, "impressions")

		stored := map[impressionID]struct{}{}
		var sent [][]graph.Impression
		deliver := func(batch []graph.Impression) {
			now := clock.Now()
			res := ih.record(rt, batch...)
			var want graph.RecordResult
			for _, im := range batch {
				switch {
				case !im.EventTime.After(now.Add(-ret)):
					want.TooOld++
				case im.EventTime.After(now.Add(ih.cfg.Lateness)):
					want.TooNew++
				default:
					want.Accepted++
					stored[idOf(im)] = struct{}{}
				}
			}
			if res != want {
				rt.Fatalf("record at %v: %+v, want %+v", now, res, want)
			}
			sent = append(sent, batch)
		}
		// Deliver in a random order and random batches; sometimes redeliver
		// an earlier batch (a consumer restart) or a duplicate inside a
		// batch (a producer retry), and let the clock move.
		order := rapid.Permutation(distinct).Draw(rt, "order")
		for len(order) > 0 {
			n := rapid.IntRange(1, min(12, len(order))).Draw(rt, "batch")
			batch := slices.Clone(order[:n])
			order = order[n:]
			if rapid.IntRange(0, 3).Draw(rt, "dup_in_batch") == 0 {
				batch = append(batch, batch[rapid.IntRange(0, len(batch)-1).Draw(rt, "dup")])
			}
			deliver(batch)
			if len(sent) > 1 && rapid.IntRange(0, 3).Draw(rt, "redeliver") == 0 {
				deliver(sent[rapid.IntRange(0, len(sent)-2).Draw(rt, "which")])
			}
			clock.Advance(time.Duration(rapid.IntRange(0, 6).Draw(rt, "advance_min")) * time.Minute)
			if rapid.IntRange(0, 4).Draw(rt, "check_now") == 0 {
				checkAll(rt, &ih, stored, users, edgeTypes, targetsOf, nil)
			}
		}
		checkAll(rt, &ih, stored, users, edgeTypes, targetsOf, distinct)
	})
}

// checkAll compares every user × edge type at several as_of instants: now,
// random valid ones, and instants on or a window after stored impressions.
func checkAll(rt *rapid.T, h *countHarness, stored map[impressionID]struct{}, users []graph.NodeKey, edgeTypes []string,
	targetsOf map[string][]graph.NodeKey, imps []graph.Impression) {
	now := h.clock.Now()
	ret := h.cfg.Retention()
	pool := []time.Duration{
		time.Minute, 5 * time.Minute, time.Hour, 24 * time.Hour, graph.MaxWindow,
		time.Duration(rapid.IntRange(60, 604800).Draw(rt, "w_any")) * time.Second,
		time.Duration(rapid.IntRange(1, 180).Draw(rt, "w_min")) * time.Minute,
	}
	windows := rapid.SliceOfNDistinct(rapid.SampledFrom(pool), 1, len(pool), func(d time.Duration) time.Duration { return d }).Draw(rt, "windows")
	longest := slices.Max(windows)
	earliest := now.Add(-ret).Add(longest) // the first valid as_of
	asOfs := []time.Time{{}, now}
	span := now.Add(3 * time.Hour).Sub(earliest)
	asOfs = append(asOfs, earliest.Add(time.Duration(rapid.Int64Range(0, int64(span/time.Microsecond)).Draw(rt, "as_of_us"))*time.Microsecond))
	for _, im := range imps {
		for _, at := range []time.Time{im.EventTime, im.EventTime.Add(windows[0]), im.EventTime.Add(-time.Microsecond)} {
			if !at.Before(earliest) && rapid.IntRange(0, 7).Draw(rt, "take_as_of") == 0 {
				asOfs = append(asOfs, at)
			}
		}
	}
	for _, asOf := range asOfs {
		ref := asOf
		if ref.IsZero() {
			ref = now
		}
		for _, u := range users {
			for _, et := range edgeTypes {
				targets := targetsOf[et]
				q := graph.CountQuery{User: u, EdgeType: et, Targets: targets, Windows: windows, AsOf: asOf}
				got := countsOf(h.counts(rt, q))
				if want := bruteForce(stored, u, et, targets, windows, ref); !matrixEqual(got, want) {
					rt.Fatalf("%s %s windows %v as of %v (clock %v): got %v, want %v", u, et, windows, ref, now, got, want)
				}
			}
		}
	}
}

// testCountPurgeUser: a purge removes the user's impressions of every
// counted edge type and target up to its time, keeps later ones, and
// leaves other users alone.
func testCountPurgeUser(t *testing.T, h *countHarness) {
	now := h.clock.Now()
	u, v := h.user("u"), h.user("v")
	h.record(t,
		imp(u, "viewed", item("a"), "1", now.Add(-3*time.Minute)),
		imp(u, "viewed", item("b"), "2", now.Add(-2*time.Minute)),
		imp(u, "likes", tag("t"), "3", now.Add(-2*time.Minute)),
		imp(u, "viewed", item("a"), "4", now.Add(-30*time.Second)), // after the purge
		imp(v, "viewed", item("a"), "5", now.Add(-3*time.Minute)),
	)
	n, err := h.s.PurgeUser(context.Background(), u, now.Add(-time.Minute))
	if err != nil || (n != 3 && n != -1) {
		t.Fatalf("purge: %d, %v; want 3 removed (or -1: not counted)", n, err)
	}
	win := []time.Duration{time.Hour}
	if got := countsOf(h.counts(t, graph.CountQuery{User: u, EdgeType: "viewed", Targets: []graph.NodeKey{item("a"), item("b")}, Windows: win})); !matrixEqual(got, [][]int64{{1}, {0}}) {
		t.Fatalf("u's viewed after the purge: %v, want [[1] [0]] (the later impression only)", got)
	}
	if got := countsOf(h.counts(t, graph.CountQuery{User: u, EdgeType: "likes", Targets: []graph.NodeKey{tag("t")}, Windows: win})); !matrixEqual(got, [][]int64{{0}}) {
		t.Fatalf("u's likes after the purge: %v, want [[0]]", got)
	}
	if got := countsOf(h.counts(t, graph.CountQuery{User: v, EdgeType: "viewed", Targets: []graph.NodeKey{item("a")}, Windows: win})); !matrixEqual(got, [][]int64{{1}}) {
		t.Fatalf("v's viewed after u's purge: %v, want [[1]]", got)
	}
	// A second purge finds nothing more to remove.
	if n, err := h.s.PurgeUser(context.Background(), u, now.Add(-time.Minute)); err != nil || (n != 0 && n != -1) {
		t.Fatalf("second purge: %d, %v", n, err)
	}
}
