package mapping

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/normalize"
)

// This file parses a rule's emit section: its nodes (upserts, deletes and
// truncates) and edges, with their conditions and properties.

func (p *fileParser) parseEmit(r *rule, n *yaml.Node, joins map[string]bool) error {
	m, err := p.mapping(n, "emit", "nodes", "edges")
	if err != nil {
		return err
	}
	count := 0
	if ne, ok := m["nodes"]; ok {
		items, err := p.sequence(ne.val, "emit.nodes", false, "nodes")
		if err != nil {
			return err
		}
		if len(items) > MaxEmitsPerRule {
			return p.errf(ne.val, "emit.nodes", "%d nodes; at most %d emits per rule", len(items), MaxEmitsPerRule)
		}
		for i, nn := range items {
			e, err := p.parseNode(nn, fmt.Sprintf("emit.nodes[%d]", i), r.ops, joins)
			if err != nil {
				return err
			}
			r.nodes = append(r.nodes, e)
		}
		count += len(items)
	}
	if ee, ok := m["edges"]; ok {
		items, err := p.sequence(ee.val, "emit.edges", false, "edges")
		if err != nil {
			return err
		}
		if len(items) > MaxEmitsPerRule {
			return p.errf(ee.val, "emit.edges", "%d edges; at most %d emits per rule", len(items), MaxEmitsPerRule)
		}
		for i, en := range items {
			e, err := p.parseEdge(en, fmt.Sprintf("emit.edges[%d]", i), joins)
			if err != nil {
				return err
			}
			r.edges = append(r.edges, e)
		}
		count += len(items)
	}
	if count == 0 {
		return p.errf(n, "emit", "must emit at least one node or edge")
	}
	if count > MaxEmitsPerRule {
		return p.errf(n, "emit", "%d emits; at most %d per rule", count, MaxEmitsPerRule)
	}
	return nil
}

func (p *fileParser) parseNode(n *yaml.Node, field string, ops opSet, joins map[string]bool) (nodeEmit, error) {
	m, err := p.mapping(n, field, "type", "id", "when", "delete", "truncate", "props")
	if err != nil {
		return nodeEmit{}, err
	}
	if te, ok := m["truncate"]; ok {
		return p.parseTruncate(m, te, field, ops, joins)
	}
	e := nodeEmit{field: field}
	te, ok := required(m, "type")
	if !ok {
		return nodeEmit{}, p.errf(n, field+".type", "required")
	}
	if e.typ, err = p.scalar(te.val, field+".type"); err != nil {
		return nodeEmit{}, err
	}
	nt, ok := p.schema.NodeType(e.typ)
	if !ok {
		return nodeEmit{}, p.errf(te.val, field+".type", "node type %q is not declared in the graph schema", e.typ)
	}
	ie, ok := required(m, "id")
	if !ok {
		return nodeEmit{}, p.errf(n, field+".id", "required")
	}
	if e.id, err = p.compile(ie.val, field+".id", false); err != nil {
		return nodeEmit{}, err
	}
	if err := p.checkJoinRefs(&e.id, joins); err != nil {
		return nodeEmit{}, err
	}
	if e.when, e.del, err = p.whenDelete(m, field, joins); err != nil {
		return nodeEmit{}, err
	}
	if e.props, err = p.parseProps(m, field, nt.Props, "node type "+e.typ, e.del, joins); err != nil {
		return nodeEmit{}, err
	}
	return e, nil
}

// parseTruncate parses a node entry with truncate: true: it deletes every
// node of its type as of the event, as the TRUNCATE of the table the type
// comes from does (graph.OpTruncateType), so it belongs only to rules that
// select truncates alone, and names no node.
func (p *fileParser) parseTruncate(m map[string]entry, te entry, field string, ops opSet, joins map[string]bool) (nodeEmit, error) {
	f := field + ".truncate"
	b, err := p.boolean(te.val, f)
	if err != nil {
		return nodeEmit{}, err
	}
	if !b {
		return nodeEmit{}, p.errf(te.val, f, "truncate: false is the default; leave it out")
	}
	for _, other := range []string{"id", "delete", "props"} {
		if o, ok := m[other]; ok {
			return nodeEmit{}, p.errf(o.key, field+"."+other, "a truncate deletes every node of its type; it has no %s", other)
		}
	}
	if ops != opBits[normalize.OpTruncate] {
		return nodeEmit{}, p.errf(te.key, f, "a truncate belongs to a rule whose select.ops is exactly [truncate]")
	}
	e := nodeEmit{field: field, truncate: true}
	tn, ok := required(m, "type")
	if !ok {
		return nodeEmit{}, p.errf(te.key, field+".type", "required")
	}
	if e.typ, err = p.scalar(tn.val, field+".type"); err != nil {
		return nodeEmit{}, err
	}
	nt, ok := p.schema.NodeType(e.typ)
	if !ok {
		return nodeEmit{}, p.errf(tn.val, field+".type", "node type %q is not declared in the graph schema", e.typ)
	}
	if nt.Implicit {
		return nodeEmit{}, p.errf(tn.val, field+".type", "node type %q is implicit (edges create its nodes): it cannot be truncated", e.typ)
	}
	if e.when, _, err = p.whenDelete(m, field, joins); err != nil {
		return nodeEmit{}, err
	}
	return e, nil
}

func (p *fileParser) parseEdge(n *yaml.Node, field string, joins map[string]bool) (edgeEmit, error) {
	m, err := p.mapping(n, field, "type", "from", "to", "when", "delete", "props")
	if err != nil {
		return edgeEmit{}, err
	}
	e := edgeEmit{field: field}
	te, ok := required(m, "type")
	if !ok {
		return edgeEmit{}, p.errf(n, field+".type", "required")
	}
	if e.typ, err = p.scalar(te.val, field+".type"); err != nil {
		return edgeEmit{}, err
	}
	et, ok := p.schema.EdgeType(e.typ)
	if !ok {
		return edgeEmit{}, p.errf(te.val, field+".type", "edge type %q is not declared in the graph schema", e.typ)
	}
	for _, end := range []struct {
		key    string
		dst    *endpoint
		allows func(string) bool
		want   []string
	}{{"from", &e.from, et.AllowsFrom, et.From}, {"to", &e.to, et.AllowsTo, et.To}} {
		f := field + "." + end.key
		ee, ok := required(m, end.key)
		if !ok {
			return edgeEmit{}, p.errf(n, f, "required")
		}
		em, err := p.mapping(ee.val, f, "type", "id")
		if err != nil {
			return edgeEmit{}, err
		}
		tn, ok := required(em, "type")
		if !ok {
			return edgeEmit{}, p.errf(ee.val, f+".type", "required")
		}
		if end.dst.typ, err = p.scalar(tn.val, f+".type"); err != nil {
			return edgeEmit{}, err
		}
		if !end.allows(end.dst.typ) {
			return edgeEmit{}, p.errf(tn.val, f+".type", "edge type %s %s must be one of %v, not %q", e.typ, end.key, end.want, end.dst.typ)
		}
		in, ok := required(em, "id")
		if !ok {
			return edgeEmit{}, p.errf(ee.val, f+".id", "required")
		}
		if end.dst.id, err = p.compile(in.val, f+".id", false); err != nil {
			return edgeEmit{}, err
		}
		if err := p.checkJoinRefs(&end.dst.id, joins); err != nil {
			return edgeEmit{}, err
		}
	}
	if e.when, e.del, err = p.whenDelete(m, field, joins); err != nil {
		return edgeEmit{}, err
	}
	if e.props, err = p.parseProps(m, field, et.Props, "edge type "+e.typ, e.del, joins); err != nil {
		return edgeEmit{}, err
	}
	return e, nil
}

func (p *fileParser) whenDelete(m map[string]entry, field string, joins map[string]bool) (*program, bool, error) {
	var when *program
	if we, ok := m["when"]; ok {
		pr, err := p.compile(we.val, field+".when", true)
		if err != nil {
			return nil, false, err
		}
		if err := p.checkJoinRefs(&pr, joins); err != nil {
			return nil, false, err
		}
		when = &pr
	}
	del := false
	if de, ok := m["delete"]; ok {
		b, err := p.boolean(de.val, field+".delete")
		if err != nil {
			return nil, false, err
		}
		del = b
	}
	return when, del, nil
}

func (p *fileParser) parseProps(m map[string]entry, field string, declared map[string]graph.PropType, what string, del bool, joins map[string]bool) ([]prop, error) {
	pe, ok := m["props"]
	if !ok {
		return nil, nil
	}
	if del {
		return nil, p.errf(pe.key, field+".props", "a delete carries no properties")
	}
	pm, err := p.mapping(pe.val, field+".props")
	if err != nil {
		return nil, err
	}
	var out []prop
	for _, name := range orderOf(pm) {
		e := pm[name]
		f := field + ".props." + name
		t, ok := declared[name]
		if !ok {
			return nil, p.errf(e.key, f, "property %q is not declared for %s", name, what)
		}
		pr, err := p.compile(e.val, f, false)
		if err != nil {
			return nil, err
		}
		if err := p.checkJoinRefs(&pr, joins); err != nil {
			return nil, err
		}
		out = append(out, prop{name: name, typ: t, expr: pr})
	}
	return out, nil
}
