package export

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtgraph/rtgraph/graph"
	"github.com/rtgraph/rtgraph/graph/storetest"
)

// TestPythonReadback reads an export with pyarrow and pandas
// (testdata/readback.py) and checks that the Parquet files say what the
// JSON Lines files say, column types included. The interpreter is
// $RTGRAPH_TEST_PYTHON, which must then have pyarrow and pandas (the test fails
// otherwise); without it, python3 is used when it has them. `make test`
// sets it to the Python client's virtual environment, which has both. Where
// neither can import them the test is skipped, naming the variable, except
// under CI=true, where it fails: CI must run it.
func TestPythonReadback(t *testing.T) {
	python, required := os.LookupEnv("RTGRAPH_TEST_PYTHON")
	if !required {
		python = "python3"
	}
	if out, err := exec.Command(python, "-c", "import pyarrow, pandas").CombinedOutput(); err != nil {
		if required || os.Getenv("CI") == "true" {
			t.Fatalf("%s cannot import pyarrow and pandas (RTGRAPH_TEST_PYTHON names the interpreter; make test sets it): %v\n%s", python, err, out)
		}
		t.Skipf("python3 cannot import pyarrow and pandas (%v); set RTGRAPH_TEST_PYTHON to an interpreter that can to run this check", err)
	}
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			st := sc.open(t, wideSchema(t), clock)
			populate(t, st, base)
			for _, exp := range []struct {
				name   string
				schema *graph.Schema
			}{{"storetest-schema", storetest.Schema()}, {"wide-schema", wideSchema(t)}} {
				dir := filepath.Join(t.TempDir(), exp.name)
				if _, err := Run(context.Background(), Options{Schema: exp.schema, Source: st, Dir: dir}); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(python, "testdata/readback.py", dir).CombinedOutput()
				if err != nil {
					t.Fatalf("%s: readback.py: %v\n%s", exp.name, err, out)
				}
				want := fmt.Sprintf("readback ok: %d types, ", len(exp.schema.NodeTypes())+len(exp.schema.EdgeTypes()))
				if !strings.HasPrefix(string(out), want) {
					t.Errorf("%s: readback.py said %q, want it to start with %q", exp.name, out, want)
				}
				t.Logf("%s: %s", exp.name, strings.TrimSpace(string(out)))
			}
		})
	}
}
