// Command vulndb builds the Go vulnerability database that `govulncheck -db file://DIR` reads, from
// the OSV reports of golang.org/x/vulndb as the Go module proxy serves them (its data/osv). This is
// how `make vulncheck` works where vuln.go.dev cannot be reached; where it can, the same target can
// use it instead (VULNDB=https://vuln.go.dev).
//
// It writes the database's v1 layout:
//
//	DIR/index/db.json       {"modified": T}, the newest entry's time
//	DIR/index/modules.json  [{"path": M, "vulns": [{"id", "modified"}]}], by path, then by id
//	DIR/ID/<ID>.json        each OSV entry, as it is
//
// The reports in the module carry no times (the database's own deployment stamps them from its Git
// history, which a module does not have): -stamp gives them one, the commit time of the vulndb
// version used. No entry says which version fixed it ("fixed" is left out of the index), so
// govulncheck reads the full version ranges of every entry of a module it finds in the code, which
// is always correct, and only slower.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

type entry struct {
	ID       string `json:"id"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
	} `json:"affected"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
}

type module struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

func main() {
	in := flag.String("osv", "", "the directory of <ID>.json OSV reports (golang.org/x/vulndb's data/osv)")
	out := flag.String("out", "", "the database directory to write")
	stamp := flag.String("stamp", "", "the time (RFC 3339) to give every report: the vulndb version's commit time")
	flag.Parse()
	if err := run(*in, *out, *stamp); err != nil {
		fmt.Fprintln(os.Stderr, "vulndb:", err)
		os.Exit(1)
	}
}

func run(in, out, stamp string) error {
	at, err := time.Parse(time.RFC3339, stamp)
	if err != nil {
		return fmt.Errorf("-stamp: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(in, "*.json"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no OSV reports in %s", in)
	}
	for _, dir := range []string{"index", "ID"} {
		if err := os.MkdirAll(filepath.Join(out, dir), 0o755); err != nil {
			return err
		}
	}
	modules := map[string]*module{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var e entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if filepath.Base(f) != e.ID+".json" {
			return fmt.Errorf("%s: the file is not named after its id %q", f, e.ID)
		}
		// Every field as it is, but the two times.
		var full map[string]json.RawMessage
		if err := json.Unmarshal(raw, &full); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		t, _ := json.Marshal(at)
		full["modified"], full["published"] = t, t
		if err := writeJSON(filepath.Join(out, "ID", e.ID+".json"), full); err != nil {
			return err
		}
		for _, a := range e.Affected {
			m := modules[a.Package.Name]
			if m == nil {
				m = &module{Path: a.Package.Name}
				modules[a.Package.Name] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: at})
		}
	}
	index := make([]*module, 0, len(modules))
	for _, m := range modules {
		sort.Slice(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		index = append(index, m)
	}
	sort.Slice(index, func(i, j int) bool { return index[i].Path < index[j].Path })
	if err := writeJSON(filepath.Join(out, "index", "modules.json"), index); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(out, "index", "db.json"), map[string]time.Time{"modified": at}); err != nil {
		return err
	}
	fmt.Printf("vulndb: %d reports of %d modules, dated %s, in %s\n", len(files), len(index), at.Format(time.RFC3339), out)
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
