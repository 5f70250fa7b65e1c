package mapping

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/normalize"
)

// Limits that keep a mapping, and so the work per event, bounded.
const (
	MaxFiles         = 256
	MaxRulesPerFile  = 256
	MaxJoinsPerRule  = 8
	MaxEmitsPerRule  = 32
	MaxExprLen       = 4096
	maxExprNodes     = 2000
	maxNameLen       = 64
	defaultFileLimit = 1 << 20 // bytes per mapping file
)

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// missPolicy is what a join does when its key is not in the cache.
type missPolicy uint8

const (
	missPass       missPolicy = iota + 1 // join.<name> is nil, the name is added to missed
	missDeadLetter                       // the envelope fails with join_failed
)

// opSet is a set of normalize ops.
type opSet uint16

var opBits = map[normalize.Op]opSet{
	normalize.OpCreate:   1 << 0,
	normalize.OpUpdate:   1 << 1,
	normalize.OpDelete:   1 << 2,
	normalize.OpRead:     1 << 3,
	normalize.OpUpsert:   1 << 4,
	normalize.OpTruncate: 1 << 5,
}

// defaultOps are the ops that carry the entity's new state.
var defaultOps = opBits[normalize.OpCreate] | opBits[normalize.OpUpdate] | opBits[normalize.OpRead] | opBits[normalize.OpUpsert]

type program struct {
	prog  *vm.Program
	short shortcut  // when the expression is simple enough to skip the VM
	reads attrReads // the attributes it reads, for unavailable ones
	field string    // within the rule, for run-time errors
	line  int       // in the mapping file, for start-up errors
}

type join struct {
	name   string
	cache  string
	key    program
	onMiss missPolicy
}

type prop struct {
	name string
	typ  graph.PropType
	expr program
}

type endpoint struct {
	typ string
	id  program
}

type nodeEmit struct {
	typ      string
	id       program // unset for a truncate
	when     *program
	del      bool
	truncate bool // every node of typ, as of the event (no id, no props)
	props    []prop
	field    string
}

type edgeEmit struct {
	typ      string
	from, to endpoint
	when     *program
	del      bool
	props    []prop
	field    string
}

type rule struct {
	ref   string // "<file>#<name>"
	name  string
	topic string
	ops   opSet
	when  *program
	joins []join
	nodes []nodeEmit
	edges []edgeEmit
	// skip: the rule selects events on purpose to map them to nothing (a
	// request log's non-2xx responses, actions the graph does not keep).
	skip bool
	// version, when set, gives the position of the rule's mutations in
	// place of the envelope's (see Position).
	version *program
	stats   *ruleStats
}

// unmatched is what happens to an envelope of a mapped topic that no rule
// selects.
type unmatched uint8

const (
	unmatchedDeadLetter unmatched = iota // the default: unknown_entity
	unmatchedIgnore                      // Map returns no mutations and no error
)

type topicInfo struct {
	rules     []*rule
	unmatched unmatched
	uses      uses   // the scalar variables the topic's rules read
	file      string // where the topic's unmatched policy is declared; "" when not declared
	line      int
	stats     *topicStats
	// warnedDrops is set once the topic's dropped deletes were logged.
	warnedDrops atomic.Bool
}

// loader holds what every file's compilation needs.
type loader struct {
	schema *graph.Schema
	joins  Lookup
	names  map[string]string // rule name → "<file>:<line>"
	topics map[string]*topicInfo
	rules  []*rule
	uses   uses // of the rule being compiled
}

// Load reads every *.yaml and *.yml file directly under the root of fsys, in
// name order, and compiles their rules against schema: every node type, edge
// type, endpoint type and property a rule emits must be declared, and every
// join must name a cache that joins has. Expressions are compiled once here.
// Errors are *LoadError (wrapping ErrInvalidMapping) naming file, line, rule
// and field, except when a file cannot be read. joins may be nil when no
// rule has joins.
func Load(fsys fs.FS, schema *graph.Schema, joins Lookup, opts ...Option) (*Mapper, error) {
	if schema == nil {
		return nil, errors.New("mapping: load: nil schema")
	}
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("mapping: load: %w", err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if ext := path.Ext(e.Name()); ext == ".yaml" || ext == ".yml" {
			files = append(files, e.Name())
		}
	}
	if len(files) == 0 {
		return nil, &LoadError{File: ".", Msg: "no *.yaml mapping files"}
	}
	if len(files) > MaxFiles {
		return nil, &LoadError{File: ".", Msg: fmt.Sprintf("%d mapping files; at most %d", len(files), MaxFiles)}
	}
	sort.Strings(files)
	l := &loader{schema: schema, joins: joins, names: map[string]string{}, topics: map[string]*topicInfo{}}
	for _, f := range files {
		data, err := readLimited(fsys, f)
		if err != nil {
			return nil, err
		}
		if err := l.file(f, data); err != nil {
			return nil, err
		}
	}
	for _, name := range sortedKeys(l.topics) {
		if t := l.topics[name]; len(t.rules) == 0 {
			return nil, &LoadError{File: t.file, Line: t.line, Field: "topics." + name, Msg: "no rule selects this topic"}
		}
	}
	return newMapper(l, o), nil
}

func readLimited(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("mapping: load: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, defaultFileLimit+1))
	if err != nil {
		return nil, fmt.Errorf("mapping: load %s: %w", name, err)
	}
	if len(data) > defaultFileLimit {
		return nil, &LoadError{File: name, Msg: fmt.Sprintf("larger than %d bytes", defaultFileLimit)}
	}
	return data, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fileParser walks one file's YAML node tree by hand, like graph.LoadSchema,
// so that every error names the line, and unknown keys fail at every level.
type fileParser struct {
	*loader
	file string
	rule string // the rule being parsed, for errors
}

type entry struct {
	key, val *yaml.Node
}

func (p *fileParser) errf(n *yaml.Node, field, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &LoadError{File: p.file, Line: line, Rule: p.rule, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// mapping checks that n is a mapping with string keys, no duplicates and only
// allowed keys, and returns its entries by key.
func (p *fileParser) mapping(n *yaml.Node, field string, allowed ...string) (map[string]entry, error) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return map[string]entry{}, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, field, "must be a mapping")
	}
	out := make(map[string]entry, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return nil, p.errf(k, field, "keys must be strings")
		}
		sub := joinField(field, k.Value)
		if len(allowed) > 0 && !slices.Contains(allowed, k.Value) {
			return nil, p.errf(k, sub, "unknown field (allowed: %s)", strings.Join(allowed, ", "))
		}
		if prev, ok := out[k.Value]; ok {
			return nil, p.errf(k, sub, "duplicate key (first at line %d)", prev.key.Line)
		}
		out[k.Value] = entry{key: k, val: v}
	}
	return out, nil
}

// orderOf returns the keys of m in file order.
func orderOf(m map[string]entry) []string {
	names := sortedKeys(m)
	sort.SliceStable(names, func(i, j int) bool {
		a, b := m[names[i]].key, m[names[j]].key
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return names
}

func joinField(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// resolve follows YAML aliases (*name) to the anchored node, so that
// shared property blocks can be written once.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// sequence checks that n is a list and returns its items.
func (p *fileParser) sequence(n *yaml.Node, field string, nonEmpty bool, what string) ([]*yaml.Node, error) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode || (nonEmpty && len(n.Content) == 0) {
		return nil, p.errf(n, field, "must be a %slist of %s", map[bool]string{true: "non-empty "}[nonEmpty], what)
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, it := range n.Content {
		items[i] = resolve(it)
	}
	return items, nil
}

func (p *fileParser) scalar(n *yaml.Node, field string) (string, error) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", p.errf(n, field, "must be a value")
	}
	return n.Value, nil
}

func (p *fileParser) name(n *yaml.Node, field string) (string, error) {
	s, err := p.scalar(n, field)
	if err != nil {
		return "", err
	}
	if !nameRE.MatchString(s) || len(s) > maxNameLen {
		return "", p.errf(n, field, "%q must match [a-z][a-z0-9_]* and be at most %d bytes", s, maxNameLen)
	}
	return s, nil
}

func (p *fileParser) boolean(n *yaml.Node, field string) (bool, error) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return false, p.errf(n, field, "must be true or false")
	}
	return n.Value == "true", nil
}

func required(m map[string]entry, key string) (entry, bool) {
	e, ok := m[key]
	return e, ok
}

func (l *loader) file(file string, data []byte) error {
	p := &fileParser{loader: l, file: file}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &LoadError{File: file, Msg: "empty file"}
		}
		// The YAML library's message keeps its own line number, which for
		// some errors is the line where the enclosing construct started; it
		// is not copied into Line so as not to claim more precision.
		return &LoadError{File: file, Msg: "yaml: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	top, err := p.mapping(root, "", "topics", "rules")
	if err != nil {
		return err
	}
	if e, ok := top["topics"]; ok {
		if err := p.topics(e.val); err != nil {
			return err
		}
	}
	e, ok := top["rules"]
	if !ok {
		return p.errf(root, "rules", "required")
	}
	items, err := p.sequence(e.val, "rules", true, "rules")
	if err != nil {
		return err
	}
	if len(items) > MaxRulesPerFile {
		return p.errf(e.val, "rules", "%d rules; at most %d per file", len(items), MaxRulesPerFile)
	}
	for i, rn := range items {
		p.rule = ""
		l.uses = 0
		r, err := p.parseRule(rn, i)
		if err != nil {
			return err
		}
		l.rules = append(l.rules, r)
		t := l.topic(r.topic)
		t.rules = append(t.rules, r)
		t.uses |= l.uses
	}
	return nil
}

func (l *loader) topic(name string) *topicInfo {
	t, ok := l.topics[name]
	if !ok {
		t = &topicInfo{}
		l.topics[name] = t
	}
	return t
}

func (p *fileParser) topics(n *yaml.Node) error {
	m, err := p.mapping(n, "topics")
	if err != nil {
		return err
	}
	for _, name := range orderOf(m) {
		e := m[name]
		field := "topics." + name
		if name == "" {
			return p.errf(e.key, "topics", "topic name must not be empty")
		}
		tm, err := p.mapping(e.val, field, "unmatched")
		if err != nil {
			return err
		}
		u := unmatchedDeadLetter
		if v, ok := tm["unmatched"]; ok {
			s, err := p.scalar(v.val, field+".unmatched")
			if err != nil {
				return err
			}
			switch s {
			case "ignore":
				u = unmatchedIgnore
			case "dead_letter":
			default:
				return p.errf(v.val, field+".unmatched", "%q is not one of ignore, dead_letter", s)
			}
		}
		t := p.topic(name)
		if t.file != "" {
			if t.unmatched != u {
				return p.errf(e.key, field, "unmatched policy conflicts with the declaration at %s:%d", t.file, t.line)
			}
			continue
		}
		t.unmatched, t.file, t.line = u, p.file, e.key.Line
	}
	return nil
}

func (p *fileParser) parseRule(n *yaml.Node, i int) (*rule, error) {
	field := fmt.Sprintf("rules[%d]", i)
	m, err := p.mapping(n, field, "name", "select", "joins", "emit", "skip", "version")
	if err != nil {
		return nil, err
	}
	ne, ok := required(m, "name")
	if !ok {
		return nil, p.errf(n, field+".name", "required")
	}
	name, err := p.name(ne.val, field+".name")
	if err != nil {
		return nil, err
	}
	if prev, ok := p.names[name]; ok {
		return nil, p.errf(ne.val, field+".name", "rule %q already declared at %s", name, prev)
	}
	p.names[name] = p.file + ":" + strconv.Itoa(ne.val.Line)
	p.rule = name
	r := &rule{ref: p.file + "#" + name, name: name, ops: defaultOps}

	se, ok := required(m, "select")
	if !ok {
		return nil, p.errf(n, "select", "required")
	}
	if err := p.parseSelect(r, se.val); err != nil {
		return nil, err
	}
	if sk, ok := m["skip"]; ok {
		var skip bool
		if err := sk.val.Decode(&skip); err != nil || sk.val.Kind != yaml.ScalarNode {
			return nil, p.errf(sk.val, "skip", "not a boolean")
		}
		if !skip {
			return nil, p.errf(sk.val, "skip", "skip: false is the default; leave it out")
		}
		for _, other := range []string{"joins", "emit", "version"} {
			if o, ok := m[other]; ok {
				return nil, p.errf(o.key, other, "a rule with skip: true maps the events it selects to nothing; it has no %s", other)
			}
		}
		r.skip = true
		return r, p.checkJoinRefs(r.when, nil)
	}
	joinNames := map[string]bool{}
	if je, ok := m["joins"]; ok {
		items, err := p.sequence(je.val, "joins", false, "joins")
		if err != nil {
			return nil, err
		}
		if len(items) > MaxJoinsPerRule {
			return nil, p.errf(je.val, "joins", "%d joins; at most %d", len(items), MaxJoinsPerRule)
		}
		for j, jn := range items {
			jo, err := p.parseJoin(jn, fmt.Sprintf("joins[%d]", j), joinNames)
			if err != nil {
				return nil, err
			}
			r.joins = append(r.joins, jo)
		}
	}
	// Expressions that read join.<name> are checked against the rule's joins;
	// the select condition runs before the joins, so it may not read them.
	if err := p.checkJoinRefs(r.when, nil); err != nil {
		return nil, err
	}
	if ve, ok := m["version"]; ok {
		pr, err := p.compile(ve.val, "version", false)
		if err != nil {
			return nil, err
		}
		if err := p.checkJoinRefs(&pr, joinNames); err != nil {
			return nil, err
		}
		r.version = &pr
	}
	ee, ok := required(m, "emit")
	if !ok {
		return nil, p.errf(n, "emit", "required")
	}
	if err := p.parseEmit(r, ee.val, joinNames); err != nil {
		return nil, err
	}
	return r, nil
}

func (p *fileParser) parseSelect(r *rule, n *yaml.Node) error {
	m, err := p.mapping(n, "select", "topic", "ops", "when")
	if err != nil {
		return err
	}
	te, ok := required(m, "topic")
	if !ok {
		return p.errf(n, "select.topic", "required")
	}
	if r.topic, err = p.scalar(te.val, "select.topic"); err != nil {
		return err
	}
	if oe, ok := m["ops"]; ok {
		items, err := p.sequence(oe.val, "select.ops", true, "ops")
		if err != nil {
			return err
		}
		r.ops = 0
		for k, on := range items {
			f := fmt.Sprintf("select.ops[%d]", k)
			s, err := p.scalar(on, f)
			if err != nil {
				return err
			}
			bit, ok := opBits[normalize.Op(s)]
			if !ok {
				return p.errf(on, f, "%q is not one of create, update, delete, read, upsert, truncate (tombstones are never mapped)", s)
			}
			if r.ops&bit != 0 {
				return p.errf(on, f, "op %q listed twice", s)
			}
			r.ops |= bit
		}
	}
	if we, ok := m["when"]; ok {
		pr, err := p.compile(we.val, "select.when", true)
		if err != nil {
			return err
		}
		r.when = &pr
	}
	return nil
}

func (p *fileParser) parseJoin(n *yaml.Node, field string, names map[string]bool) (join, error) {
	m, err := p.mapping(n, field, "name", "cache", "key", "on_miss")
	if err != nil {
		return join{}, err
	}
	var j join
	for _, k := range []string{"name", "cache", "key", "on_miss"} {
		if _, ok := m[k]; !ok {
			return join{}, p.errf(n, field+"."+k, "required")
		}
	}
	if j.name, err = p.name(m["name"].val, field+".name"); err != nil {
		return join{}, err
	}
	if names[j.name] {
		return join{}, p.errf(m["name"].val, field+".name", "join %q declared twice in the rule", j.name)
	}
	names[j.name] = true
	if j.cache, err = p.scalar(m["cache"].val, field+".cache"); err != nil {
		return join{}, err
	}
	if p.joins == nil || !p.joins.Has(j.cache) {
		return join{}, p.errf(m["cache"].val, field+".cache", "no enrichment cache %q is configured", j.cache)
	}
	if j.key, err = p.compile(m["key"].val, field+".key", false); err != nil {
		return join{}, err
	}
	if err := p.checkJoinRefs(&j.key, nil); err != nil {
		return join{}, err
	}
	s, err := p.scalar(m["on_miss"].val, field+".on_miss")
	if err != nil {
		return join{}, err
	}
	switch s {
	case "pass":
		j.onMiss = missPass
	case "dead_letter":
		j.onMiss = missDeadLetter
	default:
		return join{}, p.errf(m["on_miss"].val, field+".on_miss", "%q is not one of pass, dead_letter", s)
	}
	return j, nil
}

// compile compiles the expression held by a scalar node. Expressions see the
// env struct's variables only; now() is disabled, since a mapping must give
// the same mutations for the same event whenever it is replayed, and time
// functions use UTC for the same reason.
func (p *fileParser) compile(n *yaml.Node, field string, asBool bool) (program, error) {
	src, err := p.scalar(n, field)
	if err != nil {
		return program{}, err
	}
	if strings.TrimSpace(src) == "" {
		return program{}, p.errf(n, field, "empty expression")
	}
	if len(src) > MaxExprLen {
		return program{}, p.errf(n, field, "expression is %d bytes; at most %d", len(src), MaxExprLen)
	}
	opts := []expr.Option{expr.Env(envTypes), expr.DisableBuiltin("now"), expr.Timezone("UTC"), expr.MaxNodes(maxExprNodes),
		expr.Patch(fetchPatcher{})}
	opts = append(opts, timeFunctions...)
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return program{}, p.errf(n, field, "expression %q: %s", src, oneLine(err.Error()))
	}
	node := prog.Node()
	ast.Walk(&node, usesVisitor{&p.uses})
	short := shortcutOf(node)
	if asBool && short.kind != shortcutIsNil && short.kind != shortcutNotNil {
		// A condition's value must be a bool; only the nil tests are known
		// to give one without the VM's check.
		short = shortcut{}
	}
	return program{prog: prog, short: short, reads: attrReadsOf(node), field: field, line: n.Line}, nil
}

// oneLine keeps the first line of expr's error (its message; the following
// lines draw the source with a caret).
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// checkJoinRefs fails when the program reads join.<name> for a name that is
// not one of joins (nil: no joins are visible there). Dynamic access
// (join[expr]) cannot be checked and is allowed.
func (p *fileParser) checkJoinRefs(pr *program, joins map[string]bool) error {
	if pr == nil {
		return nil
	}
	var bad string
	v := &joinVisitor{check: func(name string) {
		if bad == "" && !joins[name] {
			bad = name
		}
	}}
	node := pr.prog.Node()
	ast.Walk(&node, v)
	if bad != "" {
		known := sortedKeys(joins)
		if len(known) == 0 {
			return &LoadError{File: p.file, Line: pr.line, Rule: p.rule, Field: pr.field, Msg: fmt.Sprintf("reads join.%s but no join is visible here", bad)}
		}
		return &LoadError{File: p.file, Line: pr.line, Rule: p.rule, Field: pr.field, Msg: fmt.Sprintf("reads join.%s; the rule's joins are %v", bad, known)}
	}
	return nil
}

// usesVisitor records which scalar variables an expression reads.
type usesVisitor struct{ u *uses }

func (v usesVisitor) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok {
		*v.u |= useOf[id.Value]
	}
}

type joinVisitor struct{ check func(string) }

// Visit finds join.<name> in its compiled form, fetch(join, "<name>").
func (v *joinVisitor) Visit(n *ast.Node) {
	c, ok := (*n).(*ast.CallNode)
	if !ok || len(c.Arguments) != 2 {
		return
	}
	if f, ok := c.Callee.(*ast.IdentifierNode); !ok || f.Value != fetchFunc {
		return
	}
	id, ok := c.Arguments[0].(*ast.IdentifierNode)
	if !ok || id.Value != "join" {
		return
	}
	if s, ok := c.Arguments[1].(*ast.StringNode); ok {
		v.check(s.Value)
	}
}
