//go:build cluster

package cluster

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// runbookStep is one sh block of a runbook, under the heading it follows.
type runbookStep struct {
	heading, script string
	started         time.Time
}

// runbookSteps reads the sh blocks of a runbook in docs/, in order, each with the "## " heading
// above it. Other blocks (yaml, text) are examples and are not run.
func runbookSteps(t *testing.T, doc string) []runbookStep {
	t.Helper()
	f, err := os.Open(filepath.Join(testenv.RepoRoot(), "docs", doc))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []runbookStep
	var heading string
	var block *strings.Builder
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		line := lines.Text()
		switch {
		case block != nil && line == "```":
			steps = append(steps, runbookStep{heading: heading, script: block.String()})
			block = nil
		case block != nil:
			block.WriteString(line + "\n")
		case line == "```sh":
			block = &strings.Builder{}
		case strings.HasPrefix(line, "## "):
			heading = strings.TrimPrefix(line, "## ")
		}
	}
	if err := lines.Err(); err != nil {
		t.Fatal(err)
	}
	if block != nil || len(steps) == 0 {
		t.Fatalf("docs/%s: an unterminated sh block, or none", doc)
	}
	return steps
}

// runRunbook executes a runbook's sh blocks exactly as written, in order, in one bash with set -euo
// pipefail, in a directory of its own, as a platform engineer pasting them would, with kubectl on
// the PATH and the variables the runbook asks for in env. It fails the test with the transcript if
// a step fails, and returns the steps with the time each started.
func runRunbook(t *testing.T, doc string, env ...string) []runbookStep {
	t.Helper()
	steps := runbookSteps(t, doc)
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for i, s := range steps {
		// A marker before each step: its start time, read back from the transcript.
		script.WriteString("echo \"### step " + strconv.Itoa(i) + " $(date +%s.%N)\"\n" + s.script)
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), append(env, "PATH="+filepath.Dir(kubectlBin)+":"+os.Getenv("PATH"))...)
	out, err := cmd.CombinedOutput()
	var transcript strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "### step "); ok {
			fields := strings.Fields(rest)
			i, _ := strconv.Atoi(fields[0])
			at, _ := strconv.ParseFloat(fields[1], 64)
			steps[i].started = time.Unix(0, int64(at*1e9))
			transcript.WriteString("--- " + steps[i].heading + "\n")
			continue
		}
		transcript.WriteString(line + "\n")
	}
	t.Logf("docs/%s, with %s:\n%s", doc, strings.Join(env, " "), transcript.String())
	if err != nil {
		t.Fatalf("docs/%s failed: %v", doc, err)
	}
	return steps
}

// stepStarted is when the first step under the heading that starts with prefix started.
func stepStarted(t *testing.T, steps []runbookStep, prefix string) time.Time {
	t.Helper()
	for _, s := range steps {
		if strings.HasPrefix(s.heading, prefix) {
			return s.started
		}
	}
	t.Fatalf("the runbook has no step %q", prefix)
	return time.Time{}
}
