package mapping

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/normalize"
)

// Option adjusts a Mapper beyond its files.
type Option func(*options)

type options struct {
	metrics *Metrics
	log     *slog.Logger
}

// WithMetrics counts rule matches, join hits and misses and errors on m
// (see NewMetrics). Without it nothing is counted.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

// WithLogger sets the logger Load reports the loaded rules to, and Map
// warns on (once per topic) about tombstones that are the only record of a
// delete. Default: none.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// Mapper turns envelopes into graph mutations by the rules of the mapping
// files. It is immutable after Load and safe for concurrent use: the
// pipeline calls Map from every partition worker at once.
type Mapper struct {
	schema *graph.Schema
	joins  Lookup
	topics map[string]*topicInfo
	rules  []*rule
	log    *slog.Logger // nil: no logging
	pool   sync.Pool    // *state
}

// state is the per-call scratch space, pooled so that a Map call allocates
// only what it returns.
type state struct {
	vm     vm.VM
	env    env
	missed []string
}

func newMapper(l *loader, o options) *Mapper {
	m := &Mapper{schema: l.schema, joins: l.joins, topics: l.topics, rules: l.rules, log: o.log}
	m.pool.New = func() any { return &state{env: newEnv()} }
	for name, t := range l.topics {
		t.stats = o.metrics.topic(name)
	}
	for _, r := range l.rules {
		r.stats = o.metrics.rule(r)
	}
	if o.log != nil {
		o.log.Info("mapping loaded", "rules", len(l.rules), "topics", len(l.topics))
	}
	return m
}

// Topics returns the topics the rules select, sorted: the event topics the
// pipeline must consume.
func (m *Mapper) Topics() []string { return sortedKeys(m.topics) }

// Unwritten returns the node types some rule names as an end of an edge
// upsert but no rule writes as a node (an upsert), sorted, each with the
// rules (<file>#<name>) that name it. Unless such a type is implicit, or
// another process writes its nodes, those edges are never seen: an edge
// needs both its end nodes (package graph).
func (m *Mapper) Unwritten() map[string][]string {
	written := map[string]bool{}
	for _, r := range m.rules {
		for _, n := range r.nodes {
			if !n.del && !n.truncate {
				written[n.typ] = true
			}
		}
	}
	out := map[string][]string{}
	for _, r := range m.rules {
		for _, e := range r.edges {
			if e.del {
				continue
			}
			for _, end := range []string{e.from.typ, e.to.typ} {
				if !written[end] && !slices.Contains(out[end], r.ref) {
					out[end] = append(out[end], r.ref)
				}
			}
		}
	}
	return out
}

// Map returns the mutations the rules make of env, each already checked and
// normalised by graph.(*Schema).Check (TTL filled, event time in UTC at
// microsecond precision). Every rule whose select matches contributes, in
// file and rule order; within a rule, nodes come before edges, each in
// declaration order. The envelope maps as a whole or not at all: on error
// no mutations are returned.
//
// A tombstone maps to no mutations and no error (the delete before it
// carried the change, see normalize.OpTombstone). When it is the only
// record of a delete (normalize.Envelope.DeletesDropped: a flattened topic
// whose connector drops delete events), Map counts it and warns once per
// topic, since the row it stands for stays in the graph. An envelope of a
// topic no mapping file names, or one that no rule selects on a topic not
// declared `unmatched: ignore`, is an unknown_entity error; on an ignore
// topic it maps to no mutations and no error. Errors are *Error, permanent, and belong in
// the dead-letter topic with their Class. The one exception is ctx.Err(),
// returned as is when ctx is already done when Map is called; Map does no
// I/O, so it does not check ctx again.
//
// The returned mutations share no maps with env or with the caches.
func (m *Mapper) Map(ctx context.Context, env *normalize.Envelope) ([]graph.Mutation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if env.Op == normalize.OpTombstone {
		if env.DeletesDropped {
			m.deletesDropped(env)
		}
		return nil, nil
	}
	t, ok := m.topics[env.Origin.Topic]
	if !ok {
		return nil, &Error{Class: ClassUnknownEntity, Field: "origin.topic",
			Err: fmt.Errorf("no mapping rule selects topic %q", env.Origin.Topic)}
	}
	bit := opBits[env.Op]
	st := m.pool.Get().(*state)
	defer func() {
		st.env.reset()
		clear(st.missed)
		st.missed = st.missed[:0]
		m.pool.Put(st)
	}()
	st.env.set(env, t.uses)
	var out []graph.Mutation
	matched := false
	for _, r := range t.rules {
		if r.ops&bit == 0 {
			continue
		}
		if r.when != nil {
			if a := r.when.reads.unavailable(env.Unavailable); a != "" {
				r.stats.failed(ClassUnavailableValue)
				return nil, r.fail(ClassUnavailableValue, r.when.field, errUnavailable(a))
			}
			ok, err := st.test(r.when)
			if err != nil {
				r.stats.failed(ClassExpressionError)
				return nil, r.fail(ClassExpressionError, r.when.field, err)
			}
			if !ok {
				continue
			}
		}
		matched = true
		r.stats.matched()
		if r.skip {
			continue
		}
		var err error
		if out, err = m.apply(st, t, r, env, out); err != nil {
			r.stats.failed(ClassOf(err))
			return nil, err
		}
	}
	if !matched {
		if t.unmatched == unmatchedIgnore {
			t.stats.ignored()
			return nil, nil
		}
		t.stats.unmatched()
		return nil, &Error{Class: ClassUnknownEntity, Field: "select",
			Err: fmt.Errorf("no rule selects this %s event on topic %q", env.Op, env.Origin.Topic)}
	}
	return out, nil
}

// deletesDropped reports a tombstone that is the only record of a delete:
// counted always, logged once per topic.
func (m *Mapper) deletesDropped(env *normalize.Envelope) {
	t, ok := m.topics[env.Origin.Topic]
	if !ok {
		return
	}
	t.stats.tombstoneDeletesDropped()
	if m.log != nil && t.warnedDrops.CompareAndSwap(false, true) {
		m.log.Warn("tombstones are the only record of deletes",
			"topic", env.Origin.Topic,
			"cause", "the topic's rows are flattened by ExtractNewRecordState without __deleted, so the connector drops delete events; Debezium 3 ignores the older option delete.handling.mode=rewrite",
			"fix", "set delete.tombstone.handling.mode=rewrite on the connector, or debezium.tombstone_deletes: true on the topic to take tombstones as deletes",
			"effect", "deleted rows stay in the graph")
	}
}

// fail builds the rule's error.
func (r *rule) fail(c Class, field string, err error) *Error {
	return &Error{Class: c, Mapping: r.ref, Field: field, Err: err}
}

// evalError is an expression's run-time error reduced to its first line:
// expr draws the source with a caret on the following lines, which has no
// place in a dead-letter header. Unwrap gives expr's error.
type evalError struct{ err error }

func (e evalError) Error() string { return oneLine(e.err.Error()) }
func (e evalError) Unwrap() error { return e.err }

// run evaluates p.
func (st *state) run(p *program) (any, error) {
	if v, ok := p.short.eval(st.env); ok {
		return v, nil
	}
	v, err := st.vm.Run(p.prog, map[string]any(st.env))
	if err != nil {
		return nil, evalError{err}
	}
	return v, nil
}

// cond runs an emit's condition; errors are the rule's. A condition that
// reads an unavailable attribute cannot be decided: unavailable_value.
func (st *state) cond(r *rule, p *program, unavail []string) (bool, error) {
	if a := p.reads.unavailable(unavail); a != "" {
		return false, r.fail(ClassUnavailableValue, p.field, errUnavailable(a))
	}
	b, err := st.test(p)
	if err != nil {
		return false, r.fail(ClassExpressionError, p.field, err)
	}
	return b, nil
}

// test runs a condition. Conditions are compiled AsBool, so a non-bool
// result can only come from expr itself; it is an expression error anyway.
func (st *state) test(p *program) (bool, error) {
	v, err := st.run(p)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("condition gave %T, not bool", v)
	}
	return b, nil
}

func (m *Mapper) apply(st *state, t *topicInfo, r *rule, env *normalize.Envelope, out []graph.Mutation) ([]graph.Mutation, error) {
	at := env.EventTime
	join := st.env.join()
	clear(join)
	st.missed = st.missed[:0]
	unavail := env.Unavailable
	for i := range r.joins {
		j := &r.joins[i]
		if a := j.key.reads.unavailable(unavail); a != "" {
			return out, r.fail(ClassUnavailableValue, j.key.field, errUnavailable(a))
		}
		v, err := st.run(&j.key)
		if err != nil {
			return out, r.fail(ClassExpressionError, j.key.field, err)
		}
		doc, hit := (map[string]any)(nil), false
		if key, ok := idText(v); ok {
			doc, hit = m.joins.Get(j.cache, key)
		} else if v != nil {
			return out, r.fail(ClassExpressionError, j.key.field, fmt.Errorf("join key is %T, want a string or an integer", v))
		}
		r.stats.join(i, hit)
		if !hit {
			if j.onMiss == missDeadLetter {
				if v == nil {
					return out, r.fail(ClassJoinFailed, j.key.field, fmt.Errorf("join %s: key is null", j.name))
				}
				return out, r.fail(ClassJoinFailed, j.key.field, fmt.Errorf("join %s: no document under key %v in cache %s", j.name, v, j.cache))
			}
			st.missed = append(st.missed, j.name)
			continue
		}
		join[j.name] = doc
	}
	if t.uses&useMissed != 0 {
		// Boxed per rule: it is the rule's own misses. A nil slice reads as
		// an empty list.
		st.env[varMissed] = st.missed
	}
	pos := Position(env)
	if r.version != nil {
		if a := r.version.reads.unavailable(unavail); a != "" {
			return out, r.fail(ClassUnavailableValue, r.version.field, errUnavailable(a))
		}
		v, err := st.run(r.version)
		if err != nil {
			return out, r.fail(ClassExpressionError, r.version.field, err)
		}
		if pos, err = versionPos(v); err != nil {
			return out, r.fail(ClassExpressionError, r.version.field, err)
		}
	}
	if out == nil {
		out = make([]graph.Mutation, 0, r.emits())
	}
	for i := range r.nodes {
		e := &r.nodes[i]
		if e.when != nil {
			ok, err := st.cond(r, e.when, unavail)
			if err != nil {
				return out, err
			}
			if !ok {
				continue
			}
		}
		if e.truncate {
			mut := graph.Mutation{Op: graph.OpTruncateType, Node: graph.NodeKey{Type: e.typ}, EventTime: at, Pos: pos}
			if err := m.schema.Check(&mut); err != nil {
				return out, r.fail(ClassNonConforming, e.field, err)
			}
			out = append(out, mut)
			continue
		}
		id, err := st.id(r, &e.id, unavail)
		if err != nil {
			return out, err
		}
		mut := graph.Mutation{Op: graph.OpUpsertNode, Node: graph.NodeKey{Type: e.typ, ID: id}, EventTime: at, Pos: pos}
		if e.del {
			mut.Op = graph.OpDeleteNode
		} else if mut.Props, mut.Keep, err = st.props(r, e.props, unavail); err != nil {
			return out, err
		}
		if err := m.schema.Check(&mut); err != nil {
			return out, r.fail(ClassNonConforming, checkField(e.field, err), err)
		}
		out = append(out, mut)
	}
	for i := range r.edges {
		e := &r.edges[i]
		if e.when != nil {
			ok, err := st.cond(r, e.when, unavail)
			if err != nil {
				return out, err
			}
			if !ok {
				continue
			}
		}
		from, err := st.id(r, &e.from.id, unavail)
		if err != nil {
			return out, err
		}
		to, err := st.id(r, &e.to.id, unavail)
		if err != nil {
			return out, err
		}
		mut := graph.Mutation{Op: graph.OpUpsertEdge, EventTime: at, Pos: pos, Edge: graph.EdgeKey{Type: e.typ,
			From: graph.NodeKey{Type: e.from.typ, ID: from}, To: graph.NodeKey{Type: e.to.typ, ID: to}}}
		if e.del {
			mut.Op = graph.OpDeleteEdge
		} else {
			var keep []string
			if mut.Props, keep, err = st.props(r, e.props, unavail); err != nil {
				return out, err
			}
			if keep != nil {
				// An edge is one value without kept properties: the event
				// leaves it as stored (see the package doc's known limit).
				r.stats.withheldEdge()
				continue
			}
		}
		if err := m.schema.Check(&mut); err != nil {
			return out, r.fail(ClassNonConforming, checkField(e.field, err), err)
		}
		out = append(out, mut)
	}
	return out, nil
}

// emits is the most mutations the rule can produce.
func (r *rule) emits() int { return len(r.nodes) + len(r.edges) }

// checkField names the emit's field a schema error is about.
func checkField(field string, err error) string {
	var se *graph.SchemaError
	if errors.As(err, &se) && se.Property != "" {
		return field + ".props." + se.Property
	}
	return field
}

func (st *state) id(r *rule, p *program, unavail []string) (string, error) {
	if a := p.reads.unavailable(unavail); a != "" {
		return "", r.fail(ClassUnavailableValue, p.field, errUnavailable(a))
	}
	v, err := st.run(p)
	if err != nil {
		return "", r.fail(ClassExpressionError, p.field, err)
	}
	s, ok := idText(v)
	if !ok {
		if v == nil {
			return "", r.fail(ClassNonConforming, p.field, errors.New("id is null"))
		}
		return "", r.fail(ClassNonConforming, p.field, fmt.Errorf("id is %T, want a string or an integer", v))
	}
	return s, nil
}

// idText renders a value usable as an id or a cache key: strings as they
// are, integers (and integral floats, which is how JSON numbers sometimes
// arrive) in decimal.
func idText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int:
		return strconv.Itoa(x), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10), true
		}
	}
	return "", false
}

// props evaluates an emit's properties. A property whose expression reads
// an unavailable attribute is not evaluated: its name is returned in keep
// (in declaration order; Check sorts), for the store to keep its value.
func (st *state) props(r *rule, ps []prop, unavail []string) (out graph.Props, keep []string, err error) {
	if len(ps) == 0 {
		return graph.Props{}, nil, nil
	}
	out = make(graph.Props, len(ps))
	for i := range ps {
		p := &ps[i]
		if p.expr.reads.unavailable(unavail) != "" {
			keep = append(keep, p.name)
			continue
		}
		v, err := st.run(&p.expr)
		if err != nil {
			return nil, nil, r.fail(ClassExpressionError, p.expr.field, err)
		}
		if v == nil {
			continue // absent means null: an upsert replaces the whole property set
		}
		if t, ok := v.(time.Time); ok {
			// Times follow the convention graph.PropType documents: RFC 3339
			// text for a string property, Unix microseconds for an int one;
			// a time property takes the time itself (Check renders it).
			switch p.typ {
			case graph.PropString:
				v = t.UTC().Format(time.RFC3339Nano)
			case graph.PropInt:
				v = t.UnixMicro()
			}
		}
		out[p.name] = v
	}
	return out, keep, nil
}
