package mapping

import (
	"fmt"
	"testing"

	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/rtgraph/rtgraph/normalize"
)

// TestShortcutsAgreeWithTheVM evaluates expressions both ways against
// environments that make every step of a path meet an object, null, a
// missing field and a scalar, and requires the shortcut either to decline
// or to give the VM's result.
func TestShortcutsAgreeWithTheVM(t *testing.T) {
	exprs := []struct {
		src    string
		asBool bool
		kind   shortcutKind
	}{
		{"key", false, shortcutPath},
		{"attrs", false, shortcutPath},
		{"attrs.user.id", false, shortcutPath},
		{"before?.account_id", false, shortcutPath},
		{"attrs?.user?.id", false, shortcutPath},
		{"join.title.name", false, shortcutPath},
		{"join.title != nil", true, shortcutNotNil},
		{"nil == attrs.user", true, shortcutIsNil},
		{"attrs.user.id == nil", true, shortcutIsNil},
		{"1", false, shortcutLiteral},
		{"1.5", false, shortcutLiteral},
		{`"login"`, false, shortcutLiteral},
		{"true", false, shortcutLiteral},
		{"nil", false, shortcutLiteral},
		// Not shortcuts: the VM runs them.
		{"attrs.list[0]", false, shortcutNone},
		{"attrs[key]", false, shortcutPath},
		{"join.title[attrs.user.id]", false, shortcutPath},
		{"join.title?.[attrs.user.id] != nil", true, shortcutNotNil},
		{"attrs.user.id ?? 'x'", false, shortcutNone},
		{"attrs.flag", true, shortcutNone},
		{"attrs.user.id != 'x'", true, shortcutNone},
	}
	envs := []map[string]any{
		nil,
		{"user": nil},
		{"user": map[string]any{"id": "u1"}},
		{"user": map[string]any{}},
		{"user": "a string"},
		{"user": int64(5), "list": []any{"x"}},
		{"user": map[string]any{"id": map[string]any{"deep": true}}},
		{"user": map[string]any{"id": "id"}},
		{"user": map[string]any{"id": int64(0)}},
		{"user": map[string]any{"id": "k1"}, "k1": "value of k1"},
		{"user": []any{"x"}},
	}
	p := &fileParser{loader: &loader{}, file: "t.yaml"}
	for _, e := range exprs {
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: e.src, Line: 1}
		prog, err := p.compile(n, "f", e.asBool)
		if err != nil {
			t.Fatalf("%s: %v", e.src, err)
		}
		if prog.short.kind != e.kind {
			t.Errorf("%s: shortcut kind %d, want %d", e.src, prog.short.kind, e.kind)
		}
		for i, attrs := range envs {
			v := newEnv()
			v.set(&normalize.Envelope{Key: "k1", Attributes: attrs, Before: attrs}, ^uses(0))
			if attrs != nil {
				v.join()["title"] = attrs["user"]
			}
			want, werr := (&vm.VM{}).Run(prog.prog, map[string]any(v))
			got, ok := prog.short.eval(v)
			if !ok {
				continue
			}
			if werr != nil {
				t.Errorf("%s env %d: shortcut gave %v, the VM failed: %v", e.src, i, got, werr)
				continue
			}
			if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
				t.Errorf("%s env %d: shortcut gave %#v, the VM %#v", e.src, i, got, want)
			}
		}
	}
}
