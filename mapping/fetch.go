package mapping

import (
	"fmt"
	"reflect"

	"github.com/expr-lang/expr/ast"
	exprruntime "github.com/expr-lang/expr/vm/runtime"
)

// fetchFunc is the variable (env.Fetch) holding the function every field
// and index access of an expression is compiled into (fetchPatcher). Its
// name is not one a mapping file would use by accident, and calling it
// directly is harmless.
const fetchFunc = "__rtgraph_fetch"

// fetch reads a field or an element. The values expressions read are
// event attributes and cache documents: map[string]any and []any. expr's
// own access goes through reflection, which allocates for every value read
// out of a map[string]any; mapping reads a dozen per event, so these two
// shapes get a direct path, and anything else falls back to expr's.
//
// Reading anything of null is null, so that "attrs.user.id" on an event
// without a user is null (and an id expression then fails as
// non_conforming: id is null) rather than an evaluation error.
//
// It is called as a typed function (func(any, any) any), the one call form
// expr makes without allocating, so it reports errors by panicking with
// them: the VM recovers the panic and returns it as the evaluation's error.
func fetch(from, key any) any {
	switch x := from.(type) {
	case nil:
		return nil
	case map[string]any:
		k, ok := key.(string)
		if !ok {
			panic(fmt.Errorf("cannot read key %v (%T) of an object: keys are strings", key, key))
		}
		return x[k]
	case []any:
		i, ok := intIndex(key)
		if !ok {
			panic(fmt.Errorf("cannot index a list with %v (%T)", key, key))
		}
		if i < 0 {
			i += len(x)
		}
		if i < 0 || i >= len(x) {
			panic(fmt.Errorf("index %v out of range (list length is %d)", key, len(x)))
		}
		return x[i]
	}
	return exprruntime.Fetch(from, key)
}

func intIndex(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case float64:
		if x == float64(int(x)) {
			return int(x), true
		}
	}
	return 0, false
}

// fetchPatcher rewrites field and index access (a.b, a?.b, a[k]) on values
// into calls of fetchFunc. Access to struct fields (there are none in the
// variables, but time.Time methods are calls, not fields) is left to expr.
type fetchPatcher struct{}

func (fetchPatcher) Visit(n *ast.Node) {
	m, ok := (*n).(*ast.MemberNode)
	if !ok || m.Method {
		return
	}
	if t := m.Node.Type(); t != nil {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() == reflect.Struct {
			return
		}
	}
	ast.Patch(n, &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: fetchFunc},
		Arguments: []ast.Node{m.Node, m.Property},
	})
}
