package demo_test

import (
	"slices"
	"testing"

	"github.com/rtgraph/rtgraph/schemas/demo"
)

func TestLoad(t *testing.T) {
	v, err := demo.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Topics) != 8 || len(v.Enrich.Caches) != 2 {
		t.Fatalf("%d topics and %d caches, want 8 and 2", len(v.Topics), len(v.Enrich.Caches))
	}
	if v.Enrich.IdleProbe <= 0 {
		t.Error("enrich defaults were not kept")
	}
}

// TestSamples: every topic and every cache topic of the vertical has
// samples, every sample parses, and no sample file is orphaned.
func TestSamples(t *testing.T) {
	v, err := demo.Load()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, tp := range v.Topics {
		want = append(want, tp.Topic)
	}
	for _, c := range v.Enrich.Caches {
		want = append(want, c.Topic)
	}
	slices.Sort(want)
	if got := demo.SampleTopics(); !slices.Equal(got, want) {
		t.Fatalf("sample topics %v, want %v", got, want)
	}
	for _, topic := range want {
		msgs, err := demo.Samples(topic)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			t.Errorf("%s: no samples", topic)
		}
		for i, m := range msgs {
			if m.Topic != topic || m.Offset != int64(i) || m.Timestamp.IsZero() {
				t.Errorf("%s[%d]: %+v", topic, i, m)
			}
		}
	}
	if _, err := demo.Samples("no.such.topic"); err == nil {
		t.Error("samples of an unknown topic")
	}
}
