package mapping

import (
	"fmt"
	"slices"

	"github.com/expr-lang/expr/ast"
)

// attrReads is what an expression reads of the event's state: the fields of
// attrs and after (one map for the ops that carry state, which are the only
// ones with unavailable fields) it reads by constant name, and whether it
// reads the map some other way (attrs[k], len(after), toJSON(attrs)), which
// may read any field; a nil test (after != nil) reads none. It is found once, at load, from the compiled
// expression, so that an event whose envelope names unavailable fields
// (normalize.Envelope.Unavailable) costs no analysis.
type attrReads struct {
	names []string // sorted, without duplicates
	all   bool
}

// attrReadsOf analyses a compiled (and patched) expression: a constant field
// read is fetch(attrs, "name") there (fetchPatcher).
func attrReadsOf(node ast.Node) attrReads {
	var r attrReads
	named := map[*ast.IdentifierNode]bool{}
	ast.Walk(&node, visitFunc(func(n *ast.Node) {
		if b, ok := (*n).(*ast.BinaryNode); ok && (b.Operator == "==" || b.Operator == "!=") {
			// after != nil tests the image, not a field of it.
			for _, pair := range [][2]ast.Node{{b.Left, b.Right}, {b.Right, b.Left}} {
				if id, ok := pair[0].(*ast.IdentifierNode); ok && stateVar(id.Value) {
					if _, isNil := pair[1].(*ast.NilNode); isNil {
						named[id] = true
					}
				}
			}
			return
		}
		c, ok := (*n).(*ast.CallNode)
		if !ok || len(c.Arguments) != 2 {
			return
		}
		if f, ok := c.Callee.(*ast.IdentifierNode); !ok || f.Value != fetchFunc {
			return
		}
		id, ok := c.Arguments[0].(*ast.IdentifierNode)
		if !ok || !stateVar(id.Value) {
			return
		}
		if s, ok := c.Arguments[1].(*ast.StringNode); ok {
			named[id] = true
			r.names = append(r.names, s.Value)
		}
	}))
	ast.Walk(&node, visitFunc(func(n *ast.Node) {
		if id, ok := (*n).(*ast.IdentifierNode); ok && stateVar(id.Value) && !named[id] {
			r.all = true
		}
	}))
	slices.Sort(r.names)
	r.names = slices.Compact(r.names)
	return r
}

func stateVar(name string) bool { return name == varAttrs || name == varAfter }

type visitFunc func(*ast.Node)

func (f visitFunc) Visit(n *ast.Node) { f(n) }

// unavailable returns a field of unavail (sorted) that the expression
// reads, or "" when it reads none.
func (r *attrReads) unavailable(unavail []string) string {
	if len(unavail) == 0 {
		return ""
	}
	if r.all {
		return unavail[0]
	}
	i, j := 0, 0
	for i < len(r.names) && j < len(unavail) {
		switch {
		case r.names[i] == unavail[j]:
			return unavail[j]
		case r.names[i] < unavail[j]:
			i++
		default:
			j++
		}
	}
	return ""
}

// errUnavailable is the cause of an unavailable_value error.
func errUnavailable(field string) error {
	return fmt.Errorf("reads attribute %q, which the source did not send (an unchanged TOASTed column: the event carries a placeholder, not the value)", field)
}
