package ridesgen_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/rtgraph/rtgraph/verticals/rides/ridesgen"
	"github.com/rtgraph/rtgraph/verticals/rides/ridesoracle"
)

func generate(t *testing.T, seed int64) (*ridesgen.Output, *ridesoracle.Expected) {
	t.Helper()
	asOf := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	out := ridesgen.Generate(ridesgen.Options{Seed: seed, AsOf: asOf})
	dir := t.TempDir()
	if err := out.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	x, err := ridesoracle.Compute(dir, asOf, asOf.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return out, x
}

// TestDeterministic: one seed, one output.
func TestDeterministic(t *testing.T) {
	a := ridesgen.Generate(ridesgen.Options{Seed: 3, AsOf: time.Unix(1.8e9, 0)})
	b := ridesgen.Generate(ridesgen.Options{Seed: 3, AsOf: time.Unix(1.8e9, 0)})
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs of one seed differ")
	}
	if n := a.Count(); n < 2000 || n > 20000 {
		t.Errorf("%d records, want a few thousand", n)
	}
}

// TestAdversarialCasesPresent: the deliberate cases are in the output and
// the oracle reads them as the rules say.
func TestAdversarialCasesPresent(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		_, x := generate(t, seed)
		// Dead letters of every class generated.
		want := map[string]map[string]int{
			ridesgen.TopicRiders:     {"wrong_type": 1, "missing_field": 1, "malformed_json": 1},
			ridesgen.TopicDrivers:    {"wrong_type": 1},
			ridesgen.TopicVehicles:   {"wrong_type": 1},
			ridesgen.TopicTrips:      {"wrong_type": 1},
			ridesgen.TopicRequests:   {"wrong_type": 2},
			ridesgen.TopicSurgeViews: {"wrong_type": 1, "malformed_json": 1},
		}
		for tp, classes := range want {
			for c, n := range classes {
				if x.DeadLetters[tp][c] < n {
					t.Errorf("seed %d: %s: %d dead letters of class %s, want at least %d", seed, tp, x.DeadLetters[tp][c], c, n)
				}
			}
		}
		// Ids that need care exist as nodes or edge ends.
		known := map[ridesoracle.NodeKey]bool{}
		for _, k := range x.Known {
			known[k] = true
		}
		for _, k := range []ridesoracle.NodeKey{
			{Type: "rider", ID: string(ridesgen.RiderAbove2p53)}, {Type: "rider", ID: string(ridesgen.RiderMaxInt64)},
			{Type: "rider", ID: string(ridesgen.RiderAbove2p64)}, {Type: "driver", ID: "drv/7"}, {Type: "driver", ID: "drv%2F9"},
			{Type: "driver", ID: "운전자-1"}, {Type: "zone", ID: "강남/역삼"}, {Type: "city", ID: "서울"},
		} {
			if !known[k] {
				t.Errorf("seed %d: %s is named by no mutation", seed, k)
			}
		}
		// The ts_us case: the update with the greater ts_us wins over the
		// one with the greater LSN.
		found := false
		for _, n := range x.Nodes {
			if n.Key.Type == "rider" && n.Props["name"] == "LsnWins" {
				t.Errorf("seed %d: rider %s: the greater LSN beat the greater ts_us", seed, n.Key.ID)
			}
			if n.Key.Type == "rider" && n.Props["name"] == "TsUsWins" {
				found = true
			}
		}
		if !found {
			t.Errorf("seed %d: no rider named TsUsWins", seed)
		}
		// Equal versions of a node: Tie-Beta beats Tie-Alpha.
		names := map[any]int{}
		for _, n := range x.Nodes {
			names[n.Props["name"]]++
		}
		if names["Tie-Alpha"] > 0 || names["Tie-Beta"] == 0 {
			t.Errorf("seed %d: node tie: Tie-Alpha %d, Tie-Beta %d", seed, names["Tie-Alpha"], names["Tie-Beta"])
		}
		// Equal versions: fare 999 beats 1000 (canonical JSON).
		found = false
		for _, e := range x.Edges {
			if e.Props["request_id"] == "rq-tie" {
				found = true
				if e.Props["fare_estimate_cents"] != json.Number("999") {
					t.Errorf("seed %d: rq-tie: %v", seed, e.Props)
				}
			}
		}
		if !found {
			t.Errorf("seed %d: no visible rq-tie edge", seed)
		}
		// Vehicles whose owner changed: at most one drives edge each.
		per := map[ridesoracle.NodeKey]int{}
		for _, e := range x.Edges {
			if e.Type == "drives" || e.Type == "driven_by" || e.Type == "in_city" {
				per[e.From]++
				if per[e.From] > 1 {
					t.Errorf("seed %d: %s has %d %s edges", seed, e.From, per[e.From], e.Type)
				}
			}
		}
		// Counts at window boundaries: something is counted in 7d that
		// 1d does not, and in 1d that 1h does not.
		var d7, d1, h1 int64
		for _, l := range x.Counts {
			for _, c := range l.Counts {
				d7 += c["7d"]
				d1 += c["1d"]
				h1 += c["1h"]
			}
		}
		if !(d7 > d1 && d1 > h1 && h1 > 0) {
			t.Errorf("seed %d: counts not spread over windows: 7d %d, 1d %d, 1h %d", seed, d7, d1, h1)
		}
	}
}
