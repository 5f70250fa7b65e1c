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
	path  []string // variable, then field names
	value any      // shortcutLiteral
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

// pathOf reads a variable followed by constant field reads, in the form
// fetchPatcher gives them.
func pathOf(n ast.Node) ([]string, bool) {
	switch x := n.(type) {
	case *ast.ChainNode:
		return pathOf(x.Node)
	case *ast.IdentifierNode:
		if _, ok := envTypes[x.Value]; !ok || x.Value == fetchFunc {
			return nil, false
		}
		return []string{x.Value}, true
	case *ast.CallNode:
		f, ok := x.Callee.(*ast.IdentifierNode)
		if !ok || f.Value != fetchFunc || len(x.Arguments) != 2 {
			return nil, false
		}
		key, ok := x.Arguments[1].(*ast.StringNode)
		if !ok {
			return nil, false
		}
		base, ok := pathOf(x.Arguments[0])
		if !ok {
			return nil, false
		}
		return append(base, key.Value), true
	}
	return nil, false
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

func walk(v env, path []string) (any, bool) {
	x := v[path[0]]
	for _, k := range path[1:] {
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
