package mapping_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/normalize"
)

// skipRules maps watches and deliberately maps failed requests to nothing
// on a topic whose unmatched policy is dead_letter.
const skipRules = `
rules:
  - name: failed_requests
    select: {topic: t.requests, ops: [create], when: 'attrs.status >= 400'}
    skip: true
  - name: watch
    select: {topic: t.requests, ops: [create], when: 'attrs.status < 400'}
    emit:
      nodes:
        - type: account
          id: attrs.account
          props:
            seen_at: iso_ms(event_time)
            seen_us: unix_ms(attrs.at)
            country: day(event_time)
            age: unix_s(attrs.missing)
`

// TestMapSkipRule: a skip rule selects events to map them to nothing, so
// they are neither dead-lettered as unknown_entity nor need a dummy emit;
// the rule counts them as matched.
func TestMapSkipRule(t *testing.T) {
	reg := prometheus.NewRegistry()
	met, err := mapping.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mapping.Load(files("skip.yaml", skipRules), testSchema(t), testLookup(), mapping.WithMetrics(met))
	if err != nil {
		t.Fatal(err)
	}
	muts, err := m.Map(context.Background(), request(map[string]any{"status": int64(503), "account": "a1"}))
	if err != nil || len(muts) != 0 {
		t.Fatalf("failed request: %+v, %v; want nothing and no error", muts, err)
	}
	if got := ruleMatches(t, reg, "failed_requests"); got != 1 {
		t.Errorf("matches of the skip rule = %v, want 1", got)
	}
	// A topic no rule names is still unknown_entity.
	_, err = m.Map(context.Background(), envelope("t.nowhere", normalize.OpCreate, "k", map[string]any{"status": int64(503)}))
	var me *mapping.Error
	if !errors.As(err, &me) || me.Class != mapping.ClassUnknownEntity {
		t.Fatalf("unmapped topic: %v, want unknown_entity", err)
	}
}

// TestMapTimeHelpers: the time helpers render in UTC whatever the input's
// zone, and give nil (the property left out) for a missing time.
func TestMapTimeHelpers(t *testing.T) {
	m, err := mapping.Load(files("skip.yaml", skipRules), testSchema(t), testLookup())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 1, 2, 3, 4_000_000, time.FixedZone("X", 5*3600))
	env := request(map[string]any{"status": int64(200), "account": "a1", "at": at})
	env.EventTime = time.Date(2026, 11, 25, 23, 59, 59, 120_000_000, time.FixedZone("Y", -3*3600))
	muts, err := m.Map(context.Background(), env)
	if err != nil || len(muts) != 1 {
		t.Fatalf("Map = %+v, %v", muts, err)
	}
	want := graph.Props{"seen_at": "2026-11-26T02:59:59.120Z", "seen_us": at.UnixMilli(), "country": "2026-11-26"}
	got := muts[0].Props
	if len(got) != len(want) {
		t.Fatalf("props = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v (%T), want %v", k, got[k], got[k], v)
		}
	}
	// A helper given a value that is not a time is an expression error.
	env = request(map[string]any{"status": int64(200), "account": "a1", "at": "yesterday"})
	_, err = m.Map(context.Background(), env)
	var me *mapping.Error
	if !errors.As(err, &me) || me.Class != mapping.ClassExpressionError {
		t.Fatalf("unix_ms of a string: %v, want expression_error", err)
	}
}

func TestLoadSkipRuleErrors(t *testing.T) {
	for name, src := range map[string]string{
		"skip with emit":  "rules:\n  - name: a\n    select: {topic: t}\n    skip: true\n    emit: {nodes: [{type: account, id: key}]}\n",
		"skip with joins": "rules:\n  - name: a\n    select: {topic: t}\n    skip: true\n    joins:\n      - {name: t, cache: titles, key: key, on_miss: pass}\n",
		"skip false":      "rules:\n  - name: a\n    select: {topic: t}\n    skip: false\n    emit: {nodes: [{type: account, id: key}]}\n",
		"skip not bool":   "rules:\n  - name: a\n    select: {topic: t}\n    skip: maybe\n",
		"helper arity":    "rules:\n  - name: a\n    select: {topic: t, when: 'unix_ms(event_time, 1) > 0'}\n    skip: true\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := mapping.Load(files("a.yaml", src), testSchema(t), testLookup())
			var le *mapping.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Load = %v, want a LoadError", err)
			}
		})
	}
}

// ruleMatches reads rtgraph_mapping_rule_matches_total of one rule.
func ruleMatches(t *testing.T, g prometheus.Gatherer, rule string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "rtgraph_mapping_rule_matches_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == rule {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
