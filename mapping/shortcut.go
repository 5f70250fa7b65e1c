package mapping

import (
	"github.com/expr-lang/expr/ast"
)

// shortcut evaluates the commonest expressions of a mapping file without
// the expression VM: a variable, a chain of constant field reads from one
// ("attrs.user.id", "before?.account_id"), a literal, and a nil test of a
// chain ("join.title != nil"). Most property and id expressions are of this
// form, and a VM run costs more than the map lookups they need. A shortcut
// gives exactly the VM's result whenever it answers; when a step meets
// something other than an object or null, it declines and the VM runs, so
// errors stay the VM's.
type shortcut struct {
	kind  shortcutKind
	path  fieldPath // shortcutPath, shortcutIsNil, shortcutNotNil
	value any       // shortcutLiteral
}

// fieldPath is a variable followed by field reads. A step's field name is either
// constant or read by another path (join.campaign.creatives[attrs.creative_id]).
type fieldPath struct {
	root  string
	steps []step
}

type step struct {
	name string
	ref  *fieldPath // when the name is read, not written
}

type shortcutKind uint8

const (
	shortcutNone shortcutKind = iota
	shortcutPath
	shortcutLiteral
	shortcutIsNil
	shortcutNotNil
)

// shortcutOf recognises the forms above in a compiled expression's tree.
func shortcutOf(n ast.Node) shortcut {
	switch x := n.(type) {
	case *ast.NilNode:
		return shortcut{kind: shortcutLiteral}
	case *ast.StringNode:
		return shortcut{kind: shortcutLiteral, value: x.Value}
	case *ast.BoolNode:
		return shortcut{kind: shortcutLiteral, value: x.Value}
	case *ast.IntegerNode:
		return shortcut{kind: shortcutLiteral, value: x.Value}
	case *ast.FloatNode:
		return shortcut{kind: shortcutLiteral, value: x.Value}
	case *ast.BinaryNode:
		if x.Operator != "==" && x.Operator != "!=" {
			return shortcut{}
		}
		side := x.Left
		if _, ok := x.Right.(*ast.NilNode); !ok {
			if _, ok := x.Left.(*ast.NilNode); !ok {
				return shortcut{}
			}
			side = x.Right
		}
		p, ok := pathOf(side)
		if !ok {
			return shortcut{}
		}
		if x.Operator == "==" {
			return shortcut{kind: shortcutIsNil, path: p}
		}
		return shortcut{kind: shortcutNotNil, path: p}
	}
	if p, ok := pathOf(n); ok {
		return shortcut{kind: shortcutPath, path: p}
	}
	return shortcut{}
}

// pathOf reads a variable followed by field reads, in the form
// fetchPatcher gives them; a field name may itself be such a path.
func pathOf(n ast.Node) (fieldPath, bool) {
	switch x := n.(type) {
	case *ast.ChainNode:
		return pathOf(x.Node)
	case *ast.IdentifierNode:
		if _, ok := envTypes[x.Value]; !ok || x.Value == fetchFunc {
			return fieldPath{}, false
		}
		return fieldPath{root: x.Value}, true
	case *ast.CallNode:
		f, ok := x.Callee.(*ast.IdentifierNode)
		if !ok || f.Value != fetchFunc || len(x.Arguments) != 2 {
			return fieldPath{}, false
		}
		base, ok := pathOf(x.Arguments[0])
		if !ok {
			return fieldPath{}, false
		}
		var st step
		switch k := x.Arguments[1].(type) {
		case *ast.StringNode:
			st.name = k.Value
		default:
			ref, ok := pathOf(k)
			if !ok {
				return fieldPath{}, false
			}
			st.ref = &ref
		}
		base.steps = append(base.steps, st)
		return base, true
	}
	return fieldPath{}, false
}

// eval answers the shortcut against v; ok is false when the VM must run.
func (s *shortcut) eval(v env) (any, bool) {
	switch s.kind {
	case shortcutLiteral:
		return s.value, true
	case shortcutPath, shortcutIsNil, shortcutNotNil:
		x, ok := walk(v, s.path)
		if !ok {
			return nil, false
		}
		switch s.kind {
		case shortcutIsNil:
			return x == nil, true
		case shortcutNotNil:
			return x != nil, true
		}
		return x, true
	}
	return nil, false
}

func walk(v env, p fieldPath) (any, bool) {
	x := v[p.root]
	for i := range p.steps {
		st := &p.steps[i]
		k := st.name
		if st.ref != nil {
			kv, ok := walk(v, *st.ref)
			if !ok {
				return nil, false
			}
			if k, ok = kv.(string); !ok {
				return nil, false // the VM reports, or reads a list
			}
		}
		switch m := x.(type) {
		case nil:
			return nil, true
		case map[string]any:
			x = m[k]
		default:
			return nil, false
		}
	}
	return x, true
}
