package ridesoracle

import (
	"testing"
	"time"
)

// TestComputeOnSamples: the oracle reads the vertical's samples.
func TestComputeOnSamples(t *testing.T) {
	asOf := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	x, err := Compute("../samples", asOf, asOf.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Nodes) == 0 || len(x.Edges) == 0 {
		t.Fatalf("nothing expected: %d nodes, %d edges", len(x.Nodes), len(x.Edges))
	}
}
