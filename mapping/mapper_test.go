package mapping_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/normalize"
)

// unitRules exercises every path of Map against testSchemaYAML.
const unitRules = `
topics:
  t.requests: {unmatched: ignore}
rules:
  - name: account_upsert
    select: {topic: t.accounts, ops: [create, update, read, upsert]}
    emit:
      nodes:
        - type: account
          id: key
          props:
            country: after.country
            age: after.age
            score: after.score
            vip: after.vip
            seen_at: after.seen
            seen_us: after.seen
  - name: account_delete
    select: {topic: t.accounts, ops: [delete]}
    emit:
      nodes: [{type: account, id: key, delete: true}]
      edges:
        - type: owns
          when: before?.device != nil
          from: {type: account, id: key}
          to: {type: device, id: before.device}
          delete: true
  - name: watch
    select: {topic: t.requests, ops: [create], when: 'attrs.kind == "watch"'}
    joins:
      - {name: title, cache: titles, key: attrs.title, on_miss: pass}
    emit:
      nodes:
        - type: title
          when: join.title != nil
          id: attrs.title
          props: {name: join.title.name}
      edges:
        - type: watched
          from: {type: account, id: attrs.account}
          to: {type: title, id: attrs.title}
          props:
            event_id: id
            n: len(missed)
  - name: strict_watch
    select: {topic: t.requests, ops: [create], when: 'attrs.kind == "strict"'}
    joins:
      - {name: title, cache: titles, key: attrs.title, on_miss: dead_letter}
    emit:
      edges:
        - type: watched
          from: {type: account, id: attrs.account}
          to: {type: title, id: attrs.title}
  - name: second_rule_on_strict
    select: {topic: t.requests, ops: [create], when: 'attrs.kind == "strict" && attrs.fail == true'}
    emit:
      nodes: [{type: account, id: attrs.missing}]
  - name: deep_when
    select: {topic: t.deep, ops: [create], when: 'attrs.a.b + 1 == 2'}
    emit:
      nodes: [{type: account, id: key}]
  - name: fetch_paths
    select: {topic: t.fetch, ops: [create]}
    emit:
      nodes:
        - type: account
          id: key
          props:
            country: attrs.list[attrs.i]
            age: attrs.obj?.deep?.n
  - name: flag_when
    select: {topic: t.flag, ops: [create], when: 'attrs.flag'}
    emit:
      nodes: [{type: account, id: key}]
`

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)

func unitMapper(t testing.TB, opts ...mapping.Option) *mapping.Mapper {
	t.Helper()
	m, err := mapping.Load(files("unit.yaml", unitRules), testSchema(t), testLookup(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func envelope(topic string, op normalize.Op, key string, attrs map[string]any) *normalize.Envelope {
	e := &normalize.Envelope{
		ID: "id-" + key, Kind: normalize.KindCDC, Op: op, EntityType: "x", Key: key,
		EventTime: t0, IngestTime: t0, Version: normalize.Version{Scheme: normalize.VersionOffset},
		Origin: normalize.Origin{Topic: topic, Offset: 1},
	}
	switch op {
	case normalize.OpDelete:
		e.Before, e.Attributes = attrs, attrs
	case normalize.OpTombstone, normalize.OpTruncate:
	default:
		e.After, e.Attributes = attrs, attrs
	}
	return e
}

func request(attrs map[string]any) *normalize.Envelope {
	e := envelope("t.requests", normalize.OpCreate, "k", attrs)
	e.Kind, e.After, e.ID = normalize.KindRequest, nil, "req-1"
	return e
}

func TestMapUpsertConvertsValues(t *testing.T) {
	m := unitMapper(t)
	seen := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600))
	muts, err := m.Map(context.Background(), envelope("t.accounts", normalize.OpUpdate, "a1", map[string]any{
		"country": "NL", "age": float64(42), "score": int64(3), "vip": true, "seen": seen,
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := graph.Mutation{Op: graph.OpUpsertNode, Node: graph.NodeKey{Type: "account", ID: "a1"},
		EventTime: t0.Truncate(time.Microsecond),
		Props: graph.Props{"country": "NL", "age": int64(42), "score": float64(3), "vip": true,
			"seen_at": "2026-01-02T02:04:05.000006Z", "seen_us": seen.UnixMicro()}}
	if len(muts) != 1 || !mutEqual(muts[0], want) {
		t.Fatalf("got %+v\nwant %+v", muts, want)
	}
}

func mutEqual(a, b graph.Mutation) bool {
	ea, _ := graph.EncodeProps(a.Props)
	eb, _ := graph.EncodeProps(b.Props)
	return a.Op == b.Op && a.Node == b.Node && a.Edge == b.Edge && a.EventTime.Equal(b.EventTime) &&
		a.TTL == b.TTL && string(ea) == string(eb)
}

func TestMapNilPropertiesAreLeftOut(t *testing.T) {
	muts, err := unitMapper(t).Map(context.Background(), envelope("t.accounts", normalize.OpCreate, "a1", map[string]any{"country": nil}))
	if err != nil {
		t.Fatal(err)
	}
	if len(muts) != 1 || len(muts[0].Props) != 0 {
		t.Fatalf("got %+v, want one upsert without properties", muts)
	}
}

func TestMapDelete(t *testing.T) {
	m := unitMapper(t)
	muts, err := m.Map(context.Background(), envelope("t.accounts", normalize.OpDelete, "a1", map[string]any{"device": int64(77)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(muts) != 2 || muts[0].Op != graph.OpDeleteNode || muts[1].Op != graph.OpDeleteEdge ||
		muts[1].Edge.To != (graph.NodeKey{Type: "device", ID: "77"}) {
		t.Fatalf("got %+v", muts)
	}
	// Without a before image the edge is skipped by its condition.
	muts, err = m.Map(context.Background(), envelope("t.accounts", normalize.OpDelete, "a1", nil))
	if err != nil || len(muts) != 1 || muts[0].Op != graph.OpDeleteNode {
		t.Fatalf("got %+v, %v", muts, err)
	}
}

func TestMapJoins(t *testing.T) {
	m := unitMapper(t)
	ctx := context.Background()
	// Hit: the title node is written and nothing missed.
	muts, err := m.Map(ctx, request(map[string]any{"kind": "watch", "account": "a1", "title": "t1"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(muts) != 2 || muts[0].Node != (graph.NodeKey{Type: "title", ID: "t1"}) || muts[0].Props["name"] != "One" {
		t.Fatalf("hit: got %+v", muts)
	}
	if e := muts[1]; e.Props["event_id"] != "req-1" || e.Props["n"] != int64(0) || e.TTL != time.Hour {
		t.Errorf("hit: edge %+v", e)
	}
	// An integer key is rendered in decimal for the lookup.
	muts, err = m.Map(ctx, request(map[string]any{"kind": "watch", "account": "a1", "title": int64(7)}))
	if err != nil || len(muts) != 2 || muts[0].Props["name"] != "Seven" {
		t.Fatalf("integer key: got %+v, %v", muts, err)
	}
	// Miss with on_miss pass: no title node, missed names the join.
	muts, err = m.Map(ctx, request(map[string]any{"kind": "watch", "account": "a1", "title": "nope"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(muts) != 1 || muts[0].Props["n"] != int64(1) {
		t.Fatalf("miss pass: got %+v", muts)
	}
	// Miss with on_miss dead_letter.
	_, err = m.Map(ctx, request(map[string]any{"kind": "strict", "account": "a1", "title": "nope"}))
	assertMapError(t, err, mapping.ClassJoinFailed, "unit.yaml#strict_watch", "joins[0].key", "no document under key nope")
	// A null key is a miss.
	_, err = m.Map(ctx, request(map[string]any{"kind": "strict", "account": "a1"}))
	assertMapError(t, err, mapping.ClassJoinFailed, "unit.yaml#strict_watch", "joins[0].key", "key is null")
	// A key of the wrong type is an expression error.
	_, err = m.Map(ctx, request(map[string]any{"kind": "strict", "account": "a1", "title": true}))
	assertMapError(t, err, mapping.ClassExpressionError, "unit.yaml#strict_watch", "joins[0].key", "join key is bool")
}

func assertMapError(t *testing.T, err error, class mapping.Class, rule, field, msg string) {
	t.Helper()
	var me *mapping.Error
	if !errors.As(err, &me) {
		t.Fatalf("error %T is not a *mapping.Error: %v", err, err)
	}
	if me.Class != class || me.Mapping != rule || me.Field != field {
		t.Errorf("got class %q mapping %q field %q; want %q %q %q (%v)", me.Class, me.Mapping, me.Field, class, rule, field, err)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not contain %q", err, msg)
	}
	if !errors.Is(err, &mapping.Error{Class: class}) {
		t.Errorf("errors.Is by class %q fails", class)
	}
	if mapping.ClassOf(err) != class {
		t.Errorf("ClassOf = %q", mapping.ClassOf(err))
	}
}

func TestMapErrors(t *testing.T) {
	m := unitMapper(t)
	tests := []struct {
		name  string
		env   *normalize.Envelope
		class mapping.Class
		rule  string
		field string
		msg   string
	}{
		{"topic no file names", envelope("t.nowhere", normalize.OpCreate, "a", map[string]any{}),
			mapping.ClassUnknownEntity, "", "origin.topic", `no mapping rule selects topic "t.nowhere"`},
		{"op no rule selects", envelope("t.deep", normalize.OpUpdate, "a", map[string]any{}),
			mapping.ClassUnknownEntity, "", "select", "no rule selects this update event"},
		{"condition false on a dead_letter topic", envelope("t.deep", normalize.OpCreate, "a", map[string]any{"a": map[string]any{"b": int64(2)}}),
			mapping.ClassUnknownEntity, "", "select", "no rule selects"},
		{"truncate", envelope("t.accounts", normalize.OpTruncate, "", nil),
			mapping.ClassUnknownEntity, "", "select", "truncate"},
		{"condition fails at run time", envelope("t.deep", normalize.OpCreate, "a", map[string]any{}),
			mapping.ClassExpressionError, "unit.yaml#deep_when", "select.when", "invalid operation"},
		{"condition is not a bool", envelope("t.flag", normalize.OpCreate, "a", map[string]any{"flag": "yes"}),
			mapping.ClassExpressionError, "unit.yaml#flag_when", "select.when", "bool"},
		{"id is null", request(map[string]any{"kind": "watch", "title": "t1"}),
			mapping.ClassNonConforming, "unit.yaml#watch", "emit.edges[0].from.id", "id is null"},
		{"id is a bool", request(map[string]any{"kind": "watch", "account": false, "title": "t1"}),
			mapping.ClassNonConforming, "unit.yaml#watch", "emit.edges[0].from.id", "id is bool"},
		{"id is empty", request(map[string]any{"kind": "watch", "account": "", "title": "t1"}),
			mapping.ClassNonConforming, "unit.yaml#watch", "emit.edges[0]", "empty_id"},
		{"id too long", request(map[string]any{"kind": "watch", "account": strings.Repeat("a", graph.MaxIDLen+1), "title": "t1"}),
			mapping.ClassNonConforming, "unit.yaml#watch", "emit.edges[0]", "id_too_long"},
		{"property of the wrong type", envelope("t.accounts", normalize.OpCreate, "a1", map[string]any{"age": "old"}),
			mapping.ClassNonConforming, "unit.yaml#account_upsert", "emit.nodes[0].props.age", "wrong_property_type"},
		{"property not integral", envelope("t.accounts", normalize.OpCreate, "a1", map[string]any{"age": 1.5}),
			mapping.ClassNonConforming, "unit.yaml#account_upsert", "emit.nodes[0].props.age", "wrong_property_type"},
		{"property is a list", envelope("t.accounts", normalize.OpCreate, "a1", map[string]any{"country": []any{"NL"}}),
			mapping.ClassNonConforming, "unit.yaml#account_upsert", "emit.nodes[0].props.country", "wrong_property_type"},
		{"event time out of range", func() *normalize.Envelope {
			e := envelope("t.accounts", normalize.OpCreate, "a1", map[string]any{})
			e.EventTime = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
			return e
		}(), mapping.ClassNonConforming, "unit.yaml#account_upsert", "emit.nodes[0]", "event_time_out_of_range"},
		{"error in a later rule returns nothing", request(map[string]any{"kind": "strict", "account": "a1", "title": "t1", "fail": true}),
			mapping.ClassNonConforming, "unit.yaml#second_rule_on_strict", "emit.nodes[0].id", "id is null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			muts, err := m.Map(context.Background(), tt.env)
			if muts != nil {
				t.Errorf("mutations returned with an error: %+v", muts)
			}
			assertMapError(t, err, tt.class, tt.rule, tt.field, tt.msg)
		})
	}
}

// TestMapFieldAccess covers how expressions read attributes: objects,
// lists (negative indexes count from the end), and null all the way down.
func TestMapFieldAccess(t *testing.T) {
	m := unitMapper(t)
	tests := []struct {
		name    string
		attrs   map[string]any
		country any
		age     any
		errMsg  string
		errAt   string
	}{
		{"list index", map[string]any{"list": []any{"a", "b"}, "i": int64(1)}, "b", nil, "", ""},
		{"negative index", map[string]any{"list": []any{"a", "b"}, "i": int64(-2)}, "a", nil, "", ""},
		{"float index", map[string]any{"list": []any{"a", "b"}, "i": 0.0}, "a", nil, "", ""},
		{"nested object", map[string]any{"obj": map[string]any{"deep": map[string]any{"n": int64(4)}}}, nil, int64(4), "", ""},
		{"null all the way", map[string]any{"obj": nil}, nil, nil, "", ""},
		{"a list of another type", map[string]any{"list": []string{"x", "y"}, "i": int64(1)}, "y", nil, "", ""},
		{"index out of range", map[string]any{"list": []any{"a"}, "i": int64(3)}, nil, nil, "index 3 out of range", "country"},
		{"index not a number", map[string]any{"list": []any{"a"}, "i": "0"}, nil, nil, "cannot index a list", "country"},
		{"object key not a string", map[string]any{"obj": map[string]any{}, "list": map[string]any{"1": "x"}, "i": int64(1)}, nil, nil, "keys are strings", "country"},
		{"field of a number", map[string]any{"obj": int64(5)}, nil, nil, "cannot fetch deep from int64", "age"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			muts, err := m.Map(context.Background(), envelope("t.fetch", normalize.OpCreate, "a1", tt.attrs))
			if tt.errMsg != "" {
				assertMapError(t, err, mapping.ClassExpressionError, "unit.yaml#fetch_paths", "emit.nodes[0].props."+tt.errAt, tt.errMsg)
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans lines: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := muts[0].Props["country"]; got != tt.country {
				t.Errorf("country = %v, want %v", got, tt.country)
			}
			if got := muts[0].Props["age"]; got != tt.age {
				t.Errorf("age = %v, want %v", got, tt.age)
			}
		})
	}
}

func TestMapSchemaErrorIsWrapped(t *testing.T) {
	_, err := unitMapper(t).Map(context.Background(), envelope("t.accounts", normalize.OpCreate, "a1", map[string]any{"age": "x"}))
	var se *graph.SchemaError
	if !errors.As(err, &se) || se.Rule != graph.RuleWrongPropertyType || !errors.Is(err, graph.ErrNonConforming) {
		t.Fatalf("got %v", err)
	}
}

func TestMapNoMutationsNoError(t *testing.T) {
	m := unitMapper(t)
	tests := []struct {
		name string
		env  *normalize.Envelope
	}{
		{"tombstone", envelope("t.accounts", normalize.OpTombstone, "a1", nil)},
		{"tombstone of an unknown topic", envelope("t.nowhere", normalize.OpTombstone, "a1", nil)},
		{"unselected on an ignore topic", request(map[string]any{"kind": "heartbeat"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			muts, err := m.Map(context.Background(), tt.env)
			if err != nil || muts != nil {
				t.Fatalf("got %+v, %v", muts, err)
			}
		})
	}
}

func TestMapCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := unitMapper(t).Map(ctx, envelope("t.accounts", normalize.OpCreate, "a1", map[string]any{}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestMapMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	met, err := mapping.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m := unitMapper(t, mapping.WithMetrics(met))
	ctx := context.Background()
	_, _ = m.Map(ctx, request(map[string]any{"kind": "watch", "account": "a1", "title": "t1"}))
	_, _ = m.Map(ctx, request(map[string]any{"kind": "watch", "account": "a1", "title": "zz"}))
	_, _ = m.Map(ctx, request(map[string]any{"kind": "strict", "account": "a1", "title": "zz"}))
	_, _ = m.Map(ctx, request(map[string]any{"kind": "heartbeat"}))
	_, _ = m.Map(ctx, envelope("t.deep", normalize.OpUpdate, "a", map[string]any{}))
	_, _ = m.Map(ctx, envelope("t.deep", normalize.OpCreate, "a", map[string]any{}))
	want := `
# HELP rtgraph_mapping_join_lookups_total Enrichment joins evaluated by mapping rules, by result (hit or miss).
# TYPE rtgraph_mapping_join_lookups_total counter
rtgraph_mapping_join_lookups_total{cache="titles",join="title",result="hit",rule="strict_watch"} 0
rtgraph_mapping_join_lookups_total{cache="titles",join="title",result="hit",rule="watch"} 1
rtgraph_mapping_join_lookups_total{cache="titles",join="title",result="miss",rule="strict_watch"} 1
rtgraph_mapping_join_lookups_total{cache="titles",join="title",result="miss",rule="watch"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rtgraph_mapping_join_lookups_total"); err != nil {
		t.Error(err)
	}
	if got := counterValue(t, reg, "rtgraph_mapping_unselected_total", map[string]string{"topic": "t.deep", "action": "dead_letter"}); got != 1 {
		t.Errorf("dead-lettered unselected on t.deep = %v, want 1", got)
	}
	if got := counterValue(t, reg, "rtgraph_mapping_unselected_total", map[string]string{"topic": "t.requests", "action": "ignored"}); got != 1 {
		t.Errorf("ignored unselected on t.requests = %v, want 1", got)
	}
	if got := counterValue(t, reg, "rtgraph_mapping_rule_errors_total", map[string]string{"rule": "strict_watch", "class": "join_failed"}); got != 1 {
		t.Errorf("join_failed errors of strict_watch = %v, want 1", got)
	}
	if got := counterValue(t, reg, "rtgraph_mapping_rule_errors_total", map[string]string{"rule": "deep_when", "class": "expression_error"}); got != 1 {
		t.Errorf("expression errors of deep_when = %v, want 1", got)
	}
	if got := counterValue(t, reg, "rtgraph_mapping_rule_matches_total", map[string]string{"rule": "watch"}); got != 2 {
		t.Errorf("matches of watch = %v, want 2", got)
	}
	// Registering twice on one registry is an error, not a panic.
	if _, err := mapping.NewMetrics(reg); err == nil {
		t.Error("second NewMetrics on the same registry succeeded")
	}
}

// counterValue finds one counter by name and labels in a registry.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s with %v", name, labels)
	return 0
}

// TestMapConcurrent runs Map from many goroutines (with -race) and checks
// every result, so that pooled state never leaks between calls.
func TestMapConcurrent(t *testing.T) {
	m := unitMapper(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				title := []string{"t1", "nope"}[(g+i)%2]
				muts, err := m.Map(context.Background(), request(map[string]any{"kind": "watch", "account": "a1", "title": title}))
				if err != nil {
					errs <- err
					return
				}
				wantLen, wantMissed := 2, int64(0)
				if title == "nope" {
					wantLen, wantMissed = 1, 1
				}
				if len(muts) != wantLen || muts[len(muts)-1].Props["n"] != wantMissed {
					errs <- errors.New("wrong mutations for " + title)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestErrorString(t *testing.T) {
	err := &mapping.Error{Class: mapping.ClassJoinFailed, Mapping: "ads.yaml#impression", Field: "joins[0].key", Err: errors.New("boom")}
	want := `mapping: join_failed in ads.yaml#impression at "joins[0].key": boom`
	if err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
	if errors.Unwrap(err).Error() != "boom" {
		t.Error("Unwrap does not return the cause")
	}
	if errors.Is(err, &mapping.Error{Class: mapping.ClassJoinFailed, Field: "x"}) {
		t.Error("Is matches a target with more than the class set")
	}
	if err.DeadLetterClass() != "join_failed" || err.DeadLetterField() != "joins[0].key" || err.DeadLetterMapping() != "ads.yaml#impression" {
		t.Error("dead-letter labels differ from the error's fields")
	}
	if mapping.ClassOf(errors.New("x")) != "" {
		t.Error("ClassOf of a foreign error is not empty")
	}
}
