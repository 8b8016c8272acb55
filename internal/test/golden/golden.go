// Package golden compares a test's output with a file under testdata, and rewrites the file when
// the test runs with -update.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from the builders' output")

// Assert compares objs, marshalled as YAML documents, with testdata/<name>.yaml next to the test;
// with -update it rewrites the file instead. YAML map keys are sorted, so the output is stable.
func Assert(t *testing.T, name string, objs ...any) {
	t.Helper()
	var out []byte
	for _, o := range objs {
		data, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, "---\n"...), data...)
	}
	path := filepath.Join("testdata", name+".yaml")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != string(out) {
		t.Errorf("%s differs from the builders' output (review, then go test -update):\n--- want\n%s\n--- got\n%s", path, want, out)
	}
}
