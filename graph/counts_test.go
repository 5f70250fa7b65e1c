package graph

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func countSchema(t *testing.T) *Schema {
	t.Helper()
	s, err := NewSchema(
		[]NodeType{{Name: "user"}, {Name: "campaign"}, {Name: "creative"}},
		[]EdgeType{
			{Name: "impressed", From: []string{"user"}, To: []string{"campaign", "creative"}, TTL: MaxWindow + time.Hour},
			{Name: "clicked", From: []string{"user"}, To: []string{"campaign"}},
		})
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	return s
}

func countRules(t *testing.T) *CountRules {
	t.Helper()
	r, err := NewCountRules(DefaultCountConfig(), countSchema(t))
	if err != nil {
		t.Fatalf("rules: %v", err)
	}
	return r
}

func TestCountConfigValidate(t *testing.T) {
	cases := []struct {
		name  string
		mod   func(*CountConfig)
		field string // "" = valid
	}{
		{"defaults", func(*CountConfig) {}, ""},
		{"zero lateness", func(c *CountConfig) { c.Lateness = 0 }, ""},
		{"no edge types", func(c *CountConfig) { c.EdgeTypes = nil }, "counts.edge_types"},
		{"bad name", func(c *CountConfig) { c.EdgeTypes = []string{"Impressed"} }, "counts.edge_types"},
		{"duplicate", func(c *CountConfig) { c.EdgeTypes = []string{"a", "a"} }, "counts.edge_types"},
		{"negative lateness", func(c *CountConfig) { c.Lateness = -time.Second }, "counts.lateness"},
		{"lateness too long", func(c *CountConfig) { c.Lateness = 25 * time.Hour }, "counts.lateness"},
		{"lateness fraction", func(c *CountConfig) { c.Lateness = 1500 * time.Millisecond }, "counts.lateness"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultCountConfig()
			c.mod(&cfg)
			err := cfg.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidCountConfig) || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("Validate = %v, want ErrInvalidCountConfig naming %s", err, c.field)
			}
		})
	}
}

func TestNewCountRules(t *testing.T) {
	s := countSchema(t)
	if _, err := NewCountRules(DefaultCountConfig(), nil); err == nil {
		t.Fatal("nil schema accepted")
	}
	cfg := DefaultCountConfig()
	cfg.EdgeTypes = []string{"impressed", "viewed"}
	if _, err := NewCountRules(cfg, s); !errors.Is(err, ErrInvalidCountConfig) || !strings.Contains(err.Error(), `"viewed"`) {
		t.Fatalf("unknown edge type: err = %v", err)
	}
	cfg.EdgeTypes = nil
	if _, err := NewCountRules(cfg, s); !errors.Is(err, ErrInvalidCountConfig) {
		t.Fatalf("invalid config: err = %v", err)
	}
	r := countRules(t)
	if !r.Counted("impressed") || r.Counted("clicked") {
		t.Fatal("Counted disagrees with the config")
	}
	if got := r.Retention(); got != 7*24*time.Hour+time.Hour {
		t.Fatalf("Retention = %s", got)
	}
	c := r.Config()
	c.EdgeTypes[0] = "changed"
	if !r.Counted("impressed") || r.Config().EdgeTypes[0] != "impressed" {
		t.Fatal("Config returned shared state")
	}
}

func TestImpressionsFromMutations(t *testing.T) {
	r := countRules(t)
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	u := NodeKey{"user", "u1"}
	camp, cre := NodeKey{"campaign", "c1"}, NodeKey{"creative", "k1"}
	muts := []Mutation{
		{Op: OpUpsertNode, Node: u, EventTime: at},
		{Op: OpUpsertEdge, Edge: EdgeKey{Type: "impressed", From: u, To: camp}, EventTime: at},
		{Op: OpUpsertEdge, Edge: EdgeKey{Type: "clicked", From: u, To: camp}, EventTime: at},
		{Op: OpDeleteEdge, Edge: EdgeKey{Type: "impressed", From: u, To: cre}, EventTime: at},
		{Op: OpUpsertEdge, Edge: EdgeKey{Type: "impressed", From: u, To: cre}, EventTime: at},
	}
	prev := Impression{EventID: "earlier"}
	got := r.Impressions("req-1", muts, []Impression{prev})
	want := []Impression{
		prev,
		{User: u, EdgeType: "impressed", Target: camp, EventID: "req-1", EventTime: at},
		{User: u, EdgeType: "impressed", Target: cre, EventID: "req-1", EventTime: at},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Impressions = %+v, want %+v", got, want)
	}
}

func TestCheckImpressions(t *testing.T) {
	r := countRules(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ok := Impression{User: NodeKey{"user", "u"}, EdgeType: "impressed", Target: NodeKey{"campaign", "c"}, EventID: "e", EventTime: now}
	invalid := []struct {
		name string
		mod  func(*Impression)
		want string
	}{
		{"uncounted type", func(i *Impression) { i.EdgeType = "clicked" }, "not counted"},
		{"unknown type", func(i *Impression) { i.EdgeType = "nope" }, "not counted"},
		{"empty user type", func(i *Impression) { i.User.Type = "" }, "user node type is empty"},
		{"empty user id", func(i *Impression) { i.User.ID = "" }, "user id is empty"},
		{"long user id", func(i *Impression) { i.User.ID = strings.Repeat("x", MaxIDLen+1) }, "user id is"},
		{"wrong user type", func(i *Impression) { i.User.Type = "campaign" }, "does not start at"},
		{"empty target id", func(i *Impression) { i.Target.ID = "" }, "target id is empty"},
		{"wrong target type", func(i *Impression) { i.Target.Type = "user" }, "does not end at"},
		{"empty event id", func(i *Impression) { i.EventID = "" }, "empty event id"},
		{"long event id", func(i *Impression) { i.EventID = strings.Repeat("e", MaxEventIDLen+1) }, "event id is"},
		{"zero time", func(i *Impression) { i.EventTime = time.Time{} }, "event time is zero"},
		{"before 1970", func(i *Impression) { i.EventTime = time.Unix(-1, 0) }, "outside 1970..9999"},
	}
	for _, c := range invalid {
		t.Run(c.name, func(t *testing.T) {
			bad := ok
			c.mod(&bad)
			keep, res, err := r.CheckImpressions([]Impression{ok, bad}, now)
			if !errors.Is(err, ErrInvalidImpression) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "impression 1") {
				t.Fatalf("err = %v, want ErrInvalidImpression about impression 1: %s", err, c.want)
			}
			if keep != nil || res != (RecordResult{}) {
				t.Fatalf("invalid call returned %v %+v", keep, res)
			}
		})
	}
	t.Run("too many", func(t *testing.T) {
		_, _, err := r.CheckImpressions(make([]Impression, MaxImpressionsPerCall+1), now)
		if !errors.Is(err, ErrInvalidImpression) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("retention bounds", func(t *testing.T) {
		at := func(d time.Duration, id string) Impression {
			i := ok
			i.EventTime, i.EventID = now.Add(d), id
			return i
		}
		ret := r.Retention()
		in := []Impression{
			at(-ret, "at horizon"),                  // dropped: not after now-retention
			at(-ret+time.Microsecond, "just after"), // kept
			at(0, "now"),
			at(time.Hour, "lateness ahead"),                   // kept: at now+lateness
			at(time.Hour+time.Microsecond, "beyond lateness"), // dropped
			at(-ret-24*time.Hour, "a day too old"),
		}
		in[2].EventTime = now.Add(999 * time.Nanosecond).In(time.FixedZone("x", 3600))
		keep, res, err := r.CheckImpressions(in, now)
		if err != nil {
			t.Fatal(err)
		}
		if res != (RecordResult{Accepted: 3, TooOld: 2, TooNew: 1}) {
			t.Fatalf("result = %+v", res)
		}
		var ids []string
		for _, k := range keep {
			ids = append(ids, k.EventID)
		}
		if !slices.Equal(ids, []string{"just after", "now", "lateness ahead"}) {
			t.Fatalf("kept %v", ids)
		}
		if keep[1].EventTime != now || keep[1].EventTime.Location() != time.UTC {
			t.Fatalf("event time not normalised: %v", keep[1].EventTime)
		}
	})
}

func TestCountPlanErrors(t *testing.T) {
	r := countRules(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	u := NodeKey{"user", "u"}
	c1, c2 := NodeKey{"campaign", "c1"}, NodeKey{"campaign", "c2"}
	valid := CountQuery{User: u, EdgeType: "impressed", Targets: []NodeKey{c1, c2}, Windows: DefaultWindows()}
	many := make([]NodeKey, MaxCountTargets+1)
	for i := range many {
		many[i] = NodeKey{"campaign", strings.Repeat("x", i+1)}
	}
	manyW := make([]time.Duration, MaxCountWindows+1)
	for i := range manyW {
		manyW[i] = time.Duration(i+1) * time.Minute
	}
	cases := []struct {
		name string
		mod  func(*CountQuery)
		want string
	}{
		{"uncounted edge type", func(q *CountQuery) { q.EdgeType = "clicked" }, "not counted"},
		{"empty user", func(q *CountQuery) { q.User.ID = "" }, "user id is empty"},
		{"wrong user type", func(q *CountQuery) { q.User.Type = "creative" }, "does not start at"},
		{"no targets", func(q *CountQuery) { q.Targets = nil }, "no targets"},
		{"too many targets", func(q *CountQuery) { q.Targets = many }, "101 targets"},
		{"empty target", func(q *CountQuery) { q.Targets = []NodeKey{{Type: "campaign"}} }, "target id is empty"},
		{"wrong target type", func(q *CountQuery) { q.Targets = []NodeKey{u} }, "does not end at"},
		{"duplicate target", func(q *CountQuery) { q.Targets = []NodeKey{c1, c2, c1} }, "listed twice"},
		{"duplicate among many targets", func(q *CountQuery) { q.Targets = append(slices.Clone(many[:60]), many[45]) }, "listed twice"},
		{"no windows", func(q *CountQuery) { q.Windows = nil }, "no windows"},
		{"too many windows", func(q *CountQuery) { q.Windows = manyW }, "17 windows"},
		{"window too short", func(q *CountQuery) { q.Windows = []time.Duration{59 * time.Second} }, "between"},
		{"window too long", func(q *CountQuery) { q.Windows = []time.Duration{MaxWindow + time.Second} }, "between"},
		{"window fraction", func(q *CountQuery) { q.Windows = []time.Duration{time.Minute + time.Millisecond} }, "whole seconds"},
		{"duplicate window", func(q *CountQuery) { q.Windows = []time.Duration{time.Hour, time.Minute, time.Hour} }, "listed twice"},
		{"as_of before 1970", func(q *CountQuery) { q.AsOf = time.Unix(-5, 0) }, "outside 1970..9999"},
		{"as_of too far back", func(q *CountQuery) { q.AsOf = now.Add(-time.Hour - time.Microsecond) }, "before the retained data"},
		{"as_of too far back for a day", func(q *CountQuery) {
			q.Windows = []time.Duration{24 * time.Hour}
			q.AsOf = now.Add(-6*24*time.Hour - time.Hour - time.Second)
		}, "before the retained data"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := valid
			c.mod(&q)
			p, err := r.Plan(q, now)
			if !errors.Is(err, ErrInvalidQuery) || !strings.Contains(err.Error(), c.want) || p != nil {
				t.Fatalf("Plan = %v, %v; want ErrInvalidQuery containing %q", p, err, c.want)
			}
		})
	}
	// The boundaries themselves are valid.
	for _, q := range []CountQuery{
		{User: u, EdgeType: "impressed", Targets: []NodeKey{c1}, Windows: []time.Duration{MaxWindow}, AsOf: now.Add(-time.Hour)},
		{User: u, EdgeType: "impressed", Targets: []NodeKey{c1}, Windows: []time.Duration{24 * time.Hour}, AsOf: now.Add(-6*24*time.Hour - time.Hour)},
		{User: u, EdgeType: "impressed", Targets: many[:MaxCountTargets], Windows: manyW[:MaxCountWindows]},
	} {
		if _, err := r.Plan(q, now); err != nil {
			t.Errorf("Plan(%v as of %s): %v", q.Windows, q.AsOf, err)
		}
	}
}

func TestCountPlanWindows(t *testing.T) {
	r := countRules(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	q := CountQuery{User: NodeKey{"user", "u"}, EdgeType: "impressed",
		Targets: []NodeKey{{"campaign", "a"}, {"creative", "b"}},
		Windows: []time.Duration{time.Hour, time.Minute},
		AsOf:    now.Add(-time.Minute + 1500*time.Nanosecond).In(time.FixedZone("x", -7200))}
	p, err := r.Plan(q, now)
	if err != nil {
		t.Fatal(err)
	}
	asOf := now.Add(-time.Minute + time.Microsecond)
	if !p.Query.AsOf.Equal(asOf) || p.Query.AsOf.Location() != time.UTC || p.AsOf != asOf.UnixMicro() {
		t.Fatalf("AsOf = %v (%d), want %v truncated to the microsecond, UTC", p.Query.AsOf, p.AsOf, asOf)
	}
	if p.Since != p.AsOf-time.Hour.Microseconds() {
		t.Fatalf("Since = %d, want AsOf - 1h", p.Since)
	}
	res := p.NewResult()
	if !res.AsOf.Equal(asOf) || !slices.Equal(res.Windows, q.Windows) || len(res.Targets) != 2 || res.Targets[1].Target != q.Targets[1] {
		t.Fatalf("NewResult = %+v", res)
	}
	c := res.Targets[0].Counts
	minute := time.Minute.Microseconds()
	for _, at := range []int64{
		p.AsOf + 1,              // after as_of: nowhere
		p.AsOf,                  // both windows (end included)
		p.AsOf - minute + 1,     // both
		p.AsOf - minute,         // 1h only (start excluded)
		p.AsOf - 60*minute + 1,  // 1h only
		p.AsOf - 60*minute,      // nowhere
		p.AsOf - 600*minute - 7, // nowhere
	} {
		p.Add(c, at)
	}
	if !slices.Equal(c, []int64{4, 2}) {
		t.Fatalf("counts = %v, want [4 2] (1h, 1m)", c)
	}
	if !slices.Equal(res.Targets[1].Counts, []int64{0, 0}) {
		t.Fatalf("other target changed: %v", res.Targets[1].Counts)
	}
	// AsOf zero means now.
	q.AsOf = time.Time{}
	if p, err = r.Plan(q, now); err != nil || p.AsOf != now.UnixMicro() {
		t.Fatalf("zero as_of: %v, %v", p, err)
	}
}

// TestCountPlanRuns checks the run-at-a-time counting readers use against
// the rule itself: a window W of a plan as of T counts t when T−W < t ≤ T.
// Event times are drawn around the window starts (on them, a microsecond
// either side) and beyond as_of, and counted in time order with RunEnd and
// AddN as package embedded's reader does.
func TestCountPlanRuns(t *testing.T) {
	r := countRules(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(7, 8))
	for range 200 {
		var windows []time.Duration
		for range 1 + rng.IntN(5) {
			w := time.Duration(1+rng.IntN(7*24*60)) * time.Minute
			if !slices.Contains(windows, w) {
				windows = append(windows, w)
			}
		}
		q := CountQuery{User: NodeKey{"user", "u"}, EdgeType: "impressed", Targets: []NodeKey{{"campaign", "a"}},
			Windows: windows, AsOf: now.Add(-time.Duration(rng.IntN(3600)) * time.Second)}
		p, err := r.Plan(q, now)
		if err != nil {
			t.Fatal(err)
		}
		var times []int64
		for range rng.IntN(60) {
			switch w := windows[rng.IntN(len(windows))].Microseconds(); rng.IntN(3) {
			case 0:
				times = append(times, p.AsOf-w+int64(rng.IntN(3))-1)
			case 1:
				times = append(times, p.AsOf+int64(rng.IntN(3))-1)
			default:
				times = append(times, p.AsOf-rng.Int64N(8*24*time.Hour.Microseconds()))
			}
		}
		slices.Sort(times)
		want := make([]int64, len(windows))
		for _, at := range times {
			for i, w := range windows {
				if at > p.AsOf-w.Microseconds() && at <= p.AsOf {
					want[i]++
				}
			}
		}
		got := make([]int64, len(windows))
		var runAt, runEnd, runN int64
		for _, at := range times {
			if at > p.AsOf {
				break
			}
			if at > runEnd || runN == 0 {
				p.AddN(got, runAt, runN)
				runAt, runEnd, runN = at, p.RunEnd(at), 0
			}
			runN++
		}
		p.AddN(got, runAt, runN)
		if !slices.Equal(got, want) {
			t.Fatalf("windows %v as of %d, times %v: runs counted %v, the rule %v", windows, p.AsOf, times, got, want)
		}
	}
}
