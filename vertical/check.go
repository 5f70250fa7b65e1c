package vertical

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/mapping"
	"github.com/rtgraph/rtgraph/normalize"
)

// Status is the outcome of one check.
type Status string

// The statuses. Only StatusFail fails a check run.
const (
	StatusOK   Status = "ok"
	StatusFail Status = "FAIL"
	StatusWarn Status = "warn"
	StatusSkip Status = "skip"
)

// Result is one checked thing: what was checked (a file of the folder, a
// line, a field) and what was found.
type Result struct {
	Status  Status `json:"status"`
	Subject string `json:"subject"`
	Msg     string `json:"message"`
}

func (r Result) String() string { return fmt.Sprintf("%-4s  %s: %s", r.Status, r.Subject, r.Msg) }

// Report is what Check found, in the order it checked.
type Report struct {
	// Name is the vertical's name; empty when vertical.yaml does not give
	// one.
	Name    string
	Results []Result
}

// Count returns how many results have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

// OK reports whether no check failed.
func (r *Report) OK() bool { return r.Count(StatusFail) == 0 }

func (r *Report) add(s Status, subject, format string, args ...any) {
	r.Results = append(r.Results, Result{Status: s, Subject: subject, Msg: fmt.Sprintf(format, args...)})
}

// addErr adds a failure for err: located when it is a *Problem (or wraps
// one, or a graph or mapping LoadError), else under subject.
func (r *Report) addErr(subject string, err error) {
	if p := problemOf(err); p != nil {
		r.add(StatusFail, p.Location(), "%s", p.Msg)
		return
	}
	r.add(StatusFail, subject, "%v", err)
}

// problemOf locates err in the folder, or returns nil.
func problemOf(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var ge *graph.LoadError
	if errors.As(err, &ge) {
		return &Problem{File: ge.File, Line: ge.Line, Field: ge.Field, Msg: ge.Msg}
	}
	var me *mapping.LoadError
	if errors.As(err, &me) {
		field := me.Field
		if me.Rule != "" {
			field = strings.TrimSpace("rule " + me.Rule + " " + field)
		}
		return &Problem{File: path.Join(MappingsDir, me.File), Line: me.Line, Field: field, Msg: me.Msg}
	}
	return nil
}

// Check validates the vertical folder fsys offline, without Kafka or a
// store: vertical.yaml, each topic's decoder, the caches, the graph
// schema, the counted edge types, the mappings compiled against the schema
// and the caches, that every rule's topic is declared and every declared
// topic has a rule, and that every sample record decodes and maps — or is
// dead-lettered when, and as, its rtgraph.expect header says. The join
// caches are filled from the samples of their topics. source names the
// folder; opts set the clock (for records without timestamp).
func Check(ctx context.Context, fsys fs.FS, source string, opts ...RunnerOption) *Report {
	rep := &Report{}
	v, err := parse(fsys, source)
	if err != nil {
		rep.addErr(FileName, err)
		// The graph schema does not depend on vertical.yaml.
		checkSchema(rep, fsys)
		rep.add(StatusSkip, MappingsDir+"/", "needs a valid %s (the caches its joins read, the topics its rules select)", FileName)
		rep.add(StatusSkip, SamplesDir+"/", "needs a valid %s", FileName)
		return rep
	}
	rep.Name = v.Name
	counts := "no frequency-cap counts"
	if len(v.CountEdgeTypes) > 0 {
		counts = "frequency-cap counts of " + strings.Join(v.CountEdgeTypes, ", ")
	}
	rep.add(StatusOK, FileName, "vertical %s: %s, %s, %s", v.Name, plural(len(v.Topics), "event topic"), plural(len(v.Enrich.Caches), "cache"), counts)

	valid := true
	for _, t := range v.Topics {
		subject := (&Problem{File: FileName, Line: t.Line, Field: "topics." + t.Name}).Location()
		if err := v.topicError(t); err != nil {
			rep.addErr(subject, err)
			valid = false
			continue
		}
		rep.add(StatusOK, subject, "%s", describeDecoder(t.Decoder))
	}
	if errs := v.cacheErrors(); len(errs) > 0 {
		for _, err := range errs {
			rep.addErr(FileName+" enrich.caches", err)
		}
		valid = false
	} else {
		for i, c := range v.Enrich.Caches {
			subject := (&Problem{File: FileName, Line: v.cacheLine(i), Field: fmt.Sprintf("enrich.caches[%d]", i)}).Location()
			rep.add(StatusOK, subject, "cache %s fed by topic %s", c.Name, c.Topic)
		}
	}

	schema := checkSchema(rep, fsys)
	if schema != nil && len(v.CountEdgeTypes) > 0 {
		subject := (&Problem{File: FileName, Line: v.countsLine, Field: "counts.edge_types"}).Location()
		cfg := graph.DefaultCountConfig()
		cfg.EdgeTypes = v.CountEdgeTypes
		if _, err := graph.NewCountRules(cfg, schema); err != nil {
			rep.add(StatusFail, subject, "%v", err)
		} else {
			rep.add(StatusOK, subject, "%s counted for frequency caps", strings.Join(v.CountEdgeTypes, ", "))
		}
	}

	var mapper *mapping.Mapper
	switch {
	case schema == nil:
		rep.add(StatusSkip, MappingsDir+"/", "needs a valid graph schema")
	case !valid:
		rep.add(StatusSkip, MappingsDir+"/", "needs valid caches and topics in %s", FileName)
	default:
		lookup := mapping.MapLookup{}
		for _, c := range v.Enrich.Caches {
			lookup[c.Name] = map[string]map[string]any{}
		}
		rules, policies := mappingRefs(v.MappingsFS())
		m, err := mapping.Load(v.MappingsFS(), schema, lookup)
		if err != nil {
			rep.addErr(MappingsDir+"/", err)
			break
		}
		mapper = m
		files := map[string]bool{}
		for _, r := range rules {
			files[r.file] = true
		}
		rep.add(StatusOK, MappingsDir+"/", "%s in %s compile against the graph schema and the caches", plural(len(rules), "rule"), plural(len(files), "file"))
		if !checkRuleTopics(rep, v, m, rules, policies) {
			mapper = nil
		}
		checkUnwritten(rep, schema, m)
	}

	checkSamples(ctx, rep, v, mapper, opts)
	return rep
}

// checkUnwritten warns of node types that rules give edges but never write,
// unless the schema declares them implicit: an edge is seen only while
// both its end nodes exist.
func checkUnwritten(rep *Report, schema *graph.Schema, m *mapping.Mapper) {
	un := m.Unwritten()
	for _, typ := range slices.Sorted(maps.Keys(un)) {
		nt, ok := schema.NodeType(typ)
		if !ok || nt.Implicit {
			continue
		}
		subject := (&Problem{File: nt.File, Line: nt.Line, Field: "node_types." + typ}).Location()
		rep.add(StatusWarn, subject, "%s give edges to %s nodes but no rule writes one: those edges are never seen (an edge needs both end nodes); declare it implicit: true, or write its nodes",
			strings.Join(un[typ], ", "), typ)
	}
}

// checkSchema loads graph/ and reports it; nil when it is not valid.
func checkSchema(rep *Report, fsys fs.FS) *graph.Schema {
	s, err := graph.LoadSchema(fsys, GraphDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			rep.add(StatusFail, GraphDir+"/", "missing: the graph schema (node_types and edge_types in *.yaml files)")
			return nil
		}
		rep.addErr(GraphDir+"/", err)
		return nil
	}
	rep.add(StatusOK, GraphDir+"/", "%s (%s), %s (%s)",
		plural(len(s.NodeTypes()), "node type"), strings.Join(s.NodeTypes(), ", "),
		plural(len(s.EdgeTypes()), "edge type"), strings.Join(s.EdgeTypes(), ", "))
	return s
}

// checkRuleTopics reports that every topic the rules name is declared in
// vertical.yaml, and that every declared topic has a rule.
func checkRuleTopics(rep *Report, v *Vertical, m *mapping.Mapper, rules []ruleRef, policies []ruleRef) bool {
	declared := v.TopicNames()
	ok := true
	for _, topic := range m.Topics() {
		if slices.Contains(declared, topic) {
			continue
		}
		ok = false
		where := MappingsDir + "/"
		for _, r := range append(slices.Clone(rules), policies...) {
			if r.topic == topic {
				where = (&Problem{File: path.Join(MappingsDir, r.file), Line: r.topicLine, Field: r.field()}).Location()
				break
			}
		}
		cache := ""
		if c, isCache := v.cacheOf(topic); isCache {
			cache = fmt.Sprintf(" (it is the topic of cache %s, which the pipeline does not map)", c.Name)
		}
		rep.add(StatusFail, where, "topic %s is not an event topic of %s%s; its topics: %s", topic, FileName, cache, strings.Join(declared, ", "))
	}
	selected := m.Topics()
	for _, t := range v.Topics {
		subject := (&Problem{File: FileName, Line: t.Line, Field: "topics." + t.Name}).Location()
		if !slices.Contains(selected, t.Name) {
			ok = false
			rep.add(StatusFail, subject, "no mapping rule selects this topic: every event of it would be dead-lettered (unknown_entity)")
			continue
		}
		var names []string
		for _, r := range rules {
			if r.topic == t.Name {
				names = append(names, r.file+"#"+r.name)
			}
		}
		rep.add(StatusOK, subject, "mapped by %s", strings.Join(names, ", "))
	}
	return ok
}

// checkSamples fills the caches from their samples and runs every sample
// record of the event topics through the decoders and mappings.
func checkSamples(ctx context.Context, rep *Report, v *Vertical, mapper *mapping.Mapper, opts []RunnerOption) {
	topics, err := v.SampleTopics()
	if err != nil {
		rep.add(StatusFail, SamplesDir+"/", "%v", err)
		return
	}
	known := map[string]bool{}
	for _, t := range v.Topics {
		known[t.Name] = true
	}
	for _, c := range v.Enrich.Caches {
		known[c.Topic] = true
	}
	for _, t := range topics {
		if !known[t] {
			rep.add(StatusFail, samplePath(t), "%s is neither an event topic nor a cache topic of %s; name samples files <topic>.jsonl", t, FileName)
		}
	}
	if mapper == nil {
		rep.add(StatusSkip, SamplesDir+"/", "needs valid mappings")
		return
	}
	_, fills, errs := v.fillCaches()
	for i, c := range fills {
		if c.File == "" {
			subject := (&Problem{File: FileName, Line: v.cacheLine(i), Field: fmt.Sprintf("enrich.caches[%d]", i)}).Location()
			rep.add(StatusWarn, subject, "no %s: joins on cache %s miss in check and try", samplePath(c.Topic), c.Name)
		}
	}
	for _, err := range errs {
		rep.addErr(SamplesDir+"/", err)
	}
	if len(errs) > 0 {
		rep.add(StatusSkip, SamplesDir+"/", "the event topics' samples need the caches' samples to be valid")
		return
	}
	r, err := NewRunner(v, opts...)
	if err != nil {
		rep.addErr(SamplesDir+"/", err)
		return
	}
	for _, c := range r.Caches() {
		if c.File != "" {
			rep.add(StatusOK, c.File, "%s for cache %s", plural(c.Documents, "document"), c.Name)
		}
	}
	for _, t := range v.Topics {
		checkTopicSamples(ctx, rep, v, r, t)
	}
}

func checkTopicSamples(ctx context.Context, rep *Report, v *Vertical, r *Runner, t Topic) {
	recs, file, err := v.sampleRecords(t.Name)
	if errors.Is(err, fs.ErrNotExist) {
		subject := (&Problem{File: FileName, Line: t.Line, Field: "topics." + t.Name}).Location()
		rep.add(StatusWarn, subject, "no %s: nothing exercises its decoder and rules", file)
		return
	}
	if err != nil {
		rep.addErr(file, err)
		return
	}
	if len(recs) == 0 {
		rep.add(StatusWarn, file, "no records")
		return
	}
	var mapped, muts, expectedDead int
	var classes []string
	failed := false
	for i := range recs {
		rec := &recs[i]
		subject := file + ":" + strconv.Itoa(rec.Line)
		exp, err := ExpectOf(rec)
		if err != nil {
			rep.add(StatusFail, subject, "%v", err)
			failed = true
			continue
		}
		out, err := r.Process(ctx, r.Message(t.Name, int64(i), rec))
		if err != nil {
			rep.add(StatusFail, subject, "%v", err)
			failed = true
			continue
		}
		dl := out.DeadLetter
		switch {
		case dl == nil && !exp.DeadLetter:
			mapped++
			muts += out.Mutations()
		case dl == nil:
			rep.add(StatusFail, subject, "expected a dead letter (%s: %s) but it mapped to %s", ExpectHeader, exp, plural(out.Mutations(), "mutation"))
			failed = true
		case !exp.DeadLetter:
			rep.add(StatusFail, subject, "dead letter %s; if the record is meant to fail, say so with \"headers\": {%q: %q}",
				describeDeadLetter(dl), ExpectHeader, "dead_letter:"+dl.Class)
			failed = true
		case exp.Class != "" && exp.Class != dl.Class:
			rep.add(StatusFail, subject, "expected dead letter class %s, got %s", exp.Class, describeDeadLetter(dl))
			failed = true
		default:
			expectedDead++
			if !slices.Contains(classes, dl.Class) {
				classes = append(classes, dl.Class)
			}
		}
	}
	if failed {
		return
	}
	msg := fmt.Sprintf("%s: %d mapped (%s)", plural(len(recs), "record"), mapped, plural(muts, "mutation"))
	if expectedDead > 0 {
		msg += fmt.Sprintf(", %d dead-lettered as expected (%s)", expectedDead, strings.Join(classes, ", "))
	}
	rep.add(StatusOK, file, "%s", msg)
}

// describeDecoder says what a topic's decoder reads, in a few words.
func describeDecoder(c normalize.Config) string {
	var parts []string
	parts = append(parts, string(c.Format)+" decoder")
	switch {
	case c.RequestLog.EntityTypeField != "":
		parts = append(parts, "entity type from "+c.RequestLog.EntityTypeField)
	case c.EntityType != "":
		parts = append(parts, "entity "+c.EntityType)
	default:
		parts = append(parts, "entity from the source table")
	}
	if len(c.KeyFields) > 0 {
		parts = append(parts, "key "+strings.Join(c.KeyFields, ", "))
	} else {
		parts = append(parts, "key from the record key")
	}
	return strings.Join(parts, ", ")
}

// describeDeadLetter is "map join_failed at joins[0].key in x.yaml#rule: reason".
func describeDeadLetter(dl *DeadLetter) string {
	s := dl.Stage + " " + dl.Class
	if dl.Field != "" {
		s += " at " + dl.Field
	}
	if strings.Contains(dl.Mapping, "#") {
		s += " in " + dl.Mapping
	}
	return s + ": " + dl.Reason
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// ruleRef locates a rule's topic, or a topic policy, in a mapping file.
type ruleRef struct {
	file      string // within mappings/
	name      string // the rule; empty for a policy (topics: …)
	topic     string
	topicLine int
}

func (r ruleRef) field() string {
	if r.name == "" {
		return "topics." + r.topic
	}
	return "rule " + r.name + " select.topic"
}

// mappingRefs reads where each rule names its topic, and each topic
// policy, in the mapping files. mapping.Load has the final word on the
// files; this only locates what it accepted, so it skips what it cannot
// read.
func mappingRefs(fsys fs.FS) (rules, policies []ruleRef) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, nil
	}
	var files []string
	for _, e := range entries {
		if ext := path.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, e.Name())
		}
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := readFile(fsys, f)
		if err != nil {
			continue
		}
		var root yaml.Node
		if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
			continue
		}
		top := resolve(root.Content[0])
		if tn := resolve(valueOf(top, "topics")); tn != nil && tn.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(tn.Content); i += 2 {
				policies = append(policies, ruleRef{file: f, topic: tn.Content[i].Value, topicLine: tn.Content[i].Line})
			}
		}
		rn := resolve(valueOf(top, "rules"))
		if rn == nil || rn.Kind != yaml.SequenceNode {
			continue
		}
		for _, item := range rn.Content {
			item = resolve(item)
			ref := ruleRef{file: f, topicLine: item.Line}
			if n := resolve(valueOf(item, "name")); n != nil {
				ref.name = n.Value
			}
			if sel := resolve(valueOf(item, "select")); sel != nil {
				if tp := resolve(valueOf(sel, "topic")); tp != nil {
					ref.topic, ref.topicLine = tp.Value, tp.Line
				}
			}
			rules = append(rules, ref)
		}
	}
	return rules, policies
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}
