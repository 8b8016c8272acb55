package main

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantctl/tenant-operator/internal/test/golden"
)

// sample is testdata/results.json: minimal at 100, 1,000 and 10,000, database at 1,000, secrets at
// 100, and the unrelated-objects measurement. Its values meet some targets and miss others.
func sample(t *testing.T) *Results {
	t.Helper()
	r, err := loadResults(filepath.Join("testdata", "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Scenarios) != 5 || r.Unrelated == nil {
		t.Fatalf("testdata/results.json has %d scenarios and unrelated %v; the tests expect 5 and a measurement", len(r.Scenarios), r.Unrelated)
	}
	return r
}

func TestRender(t *testing.T) {
	r := sample(t)
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "performance")
	doc := filepath.Join(tmp, "performance.md")
	const notes = "The floor at 10,000 is etcd's, not ours.\n\n- a list, kept as written\n"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.md"), []byte(notes), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := render(r, dir, doc); err != nil {
		t.Fatal(err)
	}

	for _, pf := range plotFiles {
		checkPNG(t, filepath.Join(dir, pf.file))
	}

	data, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	md := string(data)
	if first, _, _ := strings.Cut(md, "\n"); first != generatedHeader {
		t.Errorf("first line is %q, want the generated header", first)
	}
	for _, want := range []string{
		// One row per scenario, in shape then N order: shape, N, deletion, Ready/s, floor/s, ratio,
		// p50, p95, p99, requests, writes, idle, restart writes and object reads, heap KiB, RSS
		// MiB, delete s.
		"| minimal | 100 | Delete | 38.5 | 61.2 | 0.63 | 0.41 | 0.92 | 1.35 | 14.3 | 9.0 | 0 in 60 s | 0 | 0 | 31.2 | 58 | 7.4 |",
		"| minimal | 1,000 | Delete | 41.7 | 49.0 | 0.85 | 2.10 | 4.90 | 6.80 | 13.6 | 9.0 | 0 in 60 s | 0 | 0 | 19.4 | 92 | 61.3 |",
		"| minimal | 10,000 | Delete | 22.4 | 27.9 | 0.80 | 8.70 | 15.20 | 19.80 | 13.7 | 9.3 | 3 in 60 s | 0 | 0 | 17.9 | 310 | 622.0 |",
		"| database | 1,000 | Retain | 18.2 | 31.5 | 0.58 | 4.20 | 9.10 | 11.60 | 18.1 | 12.0 | 0 in 60 s | 0 | 0 | 27.5 | 121 | 9.8 |",
		"| secrets | 100 | Delete | 9.6 | 44.0 | 0.22 | 3.20 | 6.90 | 8.40 | 19.0 | 11.0 | 0 in 60 s | 0 | 0 | 45.3 | 66 | 14.2 |",
		// The machine and the command.
		"| CPU model | AMD EPYC 7B13 |",
		"```sh\nmake bench\n```",
		// The targets, with the verdicts the sample's values call for.
		"| throughput ≥ 0.8× the floor's (minimal, N=1,000) | minimal, N=1,000 | 0.85× (41.7/s against 49.0/s) | met |",
		"| ≥ 25 tenants Ready/s sustained (minimal, largest N) | minimal, N=10,000 | 22.4/s | **missed** |",
		"| create-to-Ready p99 ≤ 5 s (minimal, N=1,000) | minimal, N=1,000 | 6.80 s | **missed** |",
		"| ≤ 12 writes and ≤ 15 requests per new minimal tenant | minimal, N=1,000 | 9.0 writes, 13.6 requests | met |",
		"| no requests while idle, but informers' timed watch renewals (every scenario) | all | minimal, N=10,000: 3 in 60 s (get 3) | **missed** |",
		"| no writes after a restart, and no reads that grow with the tenants (every scenario) | all | none in 5 scenarios | met |",
		"| ≤ 20 KiB heap per tenant (minimal, N=10,000) | minimal, N=10,000 | 17.9 KiB | met |",
		"| heap does not grow with objects the operator does not own (< 100 B per object) | unrelated objects | +300 KiB over 21,000 objects (14.6 B per object) | met |",
		// The analysis, verbatim, under its heading.
		"## Where it falls short and why\n\n" + notes,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the document lacks\n%s", want)
		}
	}
	for _, pf := range plotFiles {
		if link := "](performance/" + pf.file + ")"; !strings.Contains(md, "![") || !strings.Contains(md, link) {
			t.Errorf("the document does not embed %s", link)
		}
	}

	golden.Assert(t, "performance", md)
}

// checkPNG fails unless file is a PNG of plausible size that draws more than a blank canvas.
func checkPNG(t *testing.T, file string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 4<<10 || st.Size() > 1<<20 {
		t.Errorf("%s is %d bytes; want a small plot, between 4 KiB and 1 MiB", file, st.Size())
	}
	img, err := png.Decode(f)
	if err != nil {
		t.Errorf("%s: %v", file, err)
		return
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
		t.Errorf("%s is %dx%d pixels", file, b.Dx(), b.Dy())
	}
	if colors := distinctColors(img, 8); colors < 8 {
		t.Errorf("%s has %d colours; a plot with data has more", file, colors)
	}
}

// distinctColors counts img's colours, up to limit.
func distinctColors(img image.Image, limit int) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}

// TestTargetVerdicts checks each target's verdict on the sample, in the order the document lists
// them.
func TestTargetVerdicts(t *testing.T) {
	want := []verdict{met, missed, missed, met, missed, met, met, met}
	got := targets(sample(t))
	if len(got) != len(want) {
		t.Fatalf("%d targets, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Verdict != want[i] {
			t.Errorf("%q: %s, want %s (measured %s)", got[i].Goal, got[i].Verdict, want[i], got[i].Measured)
		}
	}
}

// TestTargetsNotMeasured: a target whose scenario is missing says so, rather than passing or
// failing; a per-tenant target falls back to the largest minimal scenario.
func TestTargetsNotMeasured(t *testing.T) {
	r := sample(t)
	var kept []Scenario
	for _, s := range r.Scenarios {
		if s.Shape != "minimal" || s.N == 100 {
			kept = append(kept, s)
		}
	}
	r.Scenarios, r.Unrelated = kept, nil
	r.Scenarios[1].IdleSeconds = 0 // database: idle not measured

	want := []struct {
		scenario string
		verdict  verdict
	}{
		{"—", notMeasured},
		{"minimal, N=100", met},
		{"—", notMeasured},
		{"minimal, N=100", met},
		{"all", met},
		{"all", met},
		{"—", notMeasured},
		{"unrelated objects", notMeasured},
	}
	got := targets(r)
	for i := range want {
		if got[i].Scenario != want[i].scenario || got[i].Verdict != want[i].verdict {
			t.Errorf("%q: %s on %q, want %s on %q", got[i].Goal, got[i].Verdict, got[i].Scenario, want[i].verdict, want[i].scenario)
		}
	}
	if idle := got[4].Measured; idle != "none in 2 scenarios; not measured in database, N=1,000" {
		t.Errorf("idle measured %q", idle)
	}

	md := markdown(r, "performance", "", false)
	for _, want := range []string{
		"| ≤ 20 KiB heap per tenant (minimal, N=10,000) | — | — | not measured |",
		"it goes in [performance/notes.md](performance/notes.md)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the document lacks\n%s", want)
		}
	}
}

func TestRenderNoScenarios(t *testing.T) {
	tmp := t.TempDir()
	doc := filepath.Join(tmp, "docs", "performance.md")
	if err := render(&Results{Command: "make bench"}, filepath.Join(tmp, "docs", "performance"), doc); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "No scenario was measured.") {
		t.Errorf("the document does not say nothing was measured:\n%s", data)
	}
}

// TestRenderDegenerate: one scenario with nothing measured still renders, plots included (a log
// axis over a single N, no verbs to stack, all values zero).
func TestRenderDegenerate(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "performance")
	r := &Results{Scenarios: []Scenario{{Shape: "minimal", N: 1}}}
	if err := render(r, dir, filepath.Join(tmp, "performance.md")); err != nil {
		t.Fatal(err)
	}
	for _, pf := range plotFiles {
		if _, err := os.Stat(filepath.Join(dir, pf.file)); err != nil {
			t.Error(err)
		}
	}
}

func TestLoadResultsRejectsUnknownFields(t *testing.T) {
	file := filepath.Join(t.TempDir(), "results.json")
	if err := os.WriteFile(file, []byte(`{"scenarios": [{"shape": "minimal", "throughputt": 1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadResults(file); err == nil || !strings.Contains(err.Error(), "throughputt") {
		t.Errorf("loadResults: %v, want an unknown-field error", err)
	}
}

func TestNumbers(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {-12345, "-12,345"}, {1234567, "1,234,567"}} {
		if got := thousands(c.n); got != c.want {
			t.Errorf("thousands(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	for _, c := range []struct {
		v    float64
		want string
	}{{25, "25"}, {0.8, "0.80"}, {14.62, "14.6"}, {1234.4, "1,234"}, {10000, "10,000"}} {
		if got := num(c.v); got != c.want {
			t.Errorf("num(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}

// TestIdleAndRestartTargets: an informer's timed watch renewal, once per resource, is not an idle
// request; anything else, or a second renewal of one resource, is. Restart reads that are the same
// in every scenario do not grow with the tenants; reads that differ do, and so does any write.
func TestIdleAndRestartTargets(t *testing.T) {
	for name, tc := range map[string]struct {
		idle          map[string]int
		reads         [2]int // restart object reads of the two scenarios
		writes        int    // restart writes of the second
		idleOK, rstOK bool
	}{
		"renewals only, constant reads": {idle: map[string]int{"watch namespaces": 1, "watch tenancy.tenantctl.io/tenants": 1}, reads: [2]int{2, 2}, idleOK: true, rstOK: true},
		"a get in idle":                 {idle: map[string]int{"watch namespaces": 1, "get namespaces": 1}, reads: [2]int{2, 2}, rstOK: true},
		"two renewals of one resource":  {idle: map[string]int{"watch namespaces": 2}, reads: [2]int{2, 2}, rstOK: true},
		"reads grow with N":             {reads: [2]int{2, 102}, idleOK: true},
		"a write after restart":         {reads: [2]int{2, 2}, writes: 1, idleOK: true},
	} {
		t.Run(name, func(t *testing.T) {
			r := &Results{Scenarios: []Scenario{
				{Shape: "minimal", N: 100, IdleSeconds: 60, RestartSeconds: 5, RestartObjectReads: tc.reads[0]},
				{Shape: "minimal", N: 1000, IdleSeconds: 300, IdleRequests: tc.idle, RestartSeconds: 9, RestartObjectReads: tc.reads[1], RestartWrites: tc.writes},
			}}
			var idle, restart *target
			for _, tg := range targets(r) {
				switch {
				case strings.HasPrefix(tg.Goal, "no requests while idle"):
					idle = &tg
				case strings.HasPrefix(tg.Goal, "no writes after a restart"):
					restart = &tg
				}
			}
			if idle == nil || restart == nil {
				t.Fatal("no idle or restart target")
			}
			if got := idle.Verdict == met; got != tc.idleOK {
				t.Errorf("idle verdict %s (%s), want met=%v", idle.Verdict, idle.Measured, tc.idleOK)
			}
			if got := restart.Verdict == met; got != tc.rstOK {
				t.Errorf("restart verdict %s (%s), want met=%v", restart.Verdict, restart.Measured, tc.rstOK)
			}
		})
	}
}
