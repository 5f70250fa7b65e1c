package mapping

import (
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestAttrReadsOf(t *testing.T) {
	tests := []struct {
		src   string
		names []string
		all   bool
	}{
		{"attrs.a", []string{"a"}, false},
		{"after?.b.c", []string{"b"}, false},
		{"attrs.a ?? attrs.b", []string{"a", "b"}, false},
		{`"x" + attrs.c + after.c`, []string{"c"}, false},
		{"before.x", nil, false},
		{"join.t.name", nil, false},
		{"key", nil, false},
		{"attrs[key]", nil, true},
		{"attrs[attrs.k]", []string{"k"}, true},
		{"len(attrs)", nil, true},
		{"after == nil", nil, false},
		{"nil != attrs && attrs.a > 1", []string{"a"}, false},
		{"after == attrs", nil, true},
	}
	for _, tt := range tests {
		p := &fileParser{loader: &loader{}}
		pr, err := p.compile(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: tt.src}, "f", false)
		if err != nil {
			t.Fatalf("%s: %v", tt.src, err)
		}
		if !slices.Equal(pr.reads.names, tt.names) || pr.reads.all != tt.all {
			t.Errorf("%s: reads %v all %v; want %v all %v", tt.src, pr.reads.names, pr.reads.all, tt.names, tt.all)
		}
	}
	r := attrReads{names: []string{"b", "d"}}
	for _, tt := range []struct {
		unavail []string
		want    string
	}{{nil, ""}, {[]string{"a", "c"}, ""}, {[]string{"a", "d"}, "d"}, {[]string{"b"}, "b"}} {
		if got := r.unavailable(tt.unavail); got != tt.want {
			t.Errorf("unavailable(%v) = %q, want %q", tt.unavail, got, tt.want)
		}
	}
	if got := (&attrReads{all: true}).unavailable([]string{"z"}); got != "z" {
		t.Errorf("reading all: %q", got)
	}
}
