package cassandra

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitCQL(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []statement
	}{
		{"two statements", "CREATE TABLE a (k int PRIMARY KEY);\nCREATE TABLE b (k int PRIMARY KEY);\n",
			[]statement{{"CREATE TABLE a (k int PRIMARY KEY)", 1}, {"CREATE TABLE b (k int PRIMARY KEY)", 2}}},
		{"no final semicolon", "SELECT 1", []statement{{"SELECT 1", 1}}},
		{"semicolon in string", "INSERT INTO t (k, v) VALUES (1, 'a;b');", []statement{{"INSERT INTO t (k, v) VALUES (1, 'a;b')", 1}}},
		{"escaped quote", "INSERT INTO t (v) VALUES ('it''s;');", []statement{{"INSERT INTO t (v) VALUES ('it''s;')", 1}}},
		{"quoted identifier", `CREATE TABLE "we;ird" (k int PRIMARY KEY);`, []statement{{`CREATE TABLE "we;ird" (k int PRIMARY KEY)`, 1}}},
		{"dollar string", "CREATE FUNCTION f() RETURNS NULL ON NULL INPUT RETURNS int LANGUAGE java AS $$ return 1; $$;",
			[]statement{{"CREATE FUNCTION f() RETURNS NULL ON NULL INPUT RETURNS int LANGUAGE java AS $$ return 1; $$", 1}}},
		{"comments", "-- intro; not a statement\n// also; not\n/* block;\n comment */ CREATE TABLE c (k int PRIMARY KEY); -- trailing;\n",
			[]statement{{"CREATE TABLE c (k int PRIMARY KEY)", 4}}},
		{"only comments", "-- nothing here;\n/* ; */\n", nil},
		{"empty statements", ";;\n ; SELECT 1;", []statement{{"SELECT 1", 2}}},
		{"multiline statement line", "\n\nCREATE TABLE d (\n k int PRIMARY KEY\n);",
			[]statement{{"CREATE TABLE d (\n k int PRIMARY KEY\n)", 3}}},
		{"comment inside", "CREATE TABLE e ( -- key;\n k int PRIMARY KEY);", []statement{{"CREATE TABLE e (  \n k int PRIMARY KEY)", 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := splitCQL(c.src)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestSplitCQLUnterminated(t *testing.T) {
	cases := map[string]string{
		"string":     "SELECT 1;\nINSERT INTO t (v) VALUES ('open);",
		"identifier": "SELECT 1;\nCREATE TABLE \"open (k int);",
		"block":      "SELECT 1;\n/* never closed",
		"dollar":     "SELECT 1;\nCREATE FUNCTION f() AS $$ body",
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := splitCQL(src)
			if err == nil || !strings.HasPrefix(err.Error(), "line 2: unterminated") {
				t.Fatalf("got %v, want an unterminated error at line 2", err)
			}
		})
	}
}

// FuzzSplitCQL checks that splitting never panics, and that a script that
// splits cleanly has statements that are trimmed, non-empty and in order.
func FuzzSplitCQL(f *testing.F) {
	for _, s := range []string{"SELECT 1;", "a 'b;c' \"d\" $$e;$$ -- f\n/* g */;", "/*", "'", "x;;y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		stmts, err := splitCQL(src)
		if err != nil {
			return
		}
		prev := 0
		for _, st := range stmts {
			if st.Text == "" || st.Text != strings.TrimSpace(st.Text) {
				t.Fatalf("statement %q not trimmed or empty", st.Text)
			}
			if st.Line < prev || st.Line < 1 {
				t.Fatalf("line %d after %d", st.Line, prev)
			}
			prev = st.Line
		}
	})
}
