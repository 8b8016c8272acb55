package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A test never builds a component: with an empty cache, asking for one fails at once with the make
// target that provides it, and leaves the cache as it was.
func TestMissingComponentFailsNamingTheMakeTarget(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("TENANT_OPERATOR_CACHE", cache)
	t.Setenv("KUBEBUILDER_ASSETS", "")
	for _, name := range []string{"vault", "eso", "helm", "cnpg"} {
		_, err := ComponentBinary(name)
		if err == nil || !strings.Contains(err.Error(), "make components (or make component-"+name+")") {
			t.Errorf("ComponentBinary(%q) with an empty cache: %v, want an error naming make component-%s", name, err, name)
		}
	}
	if _, err := Assets(); err == nil || !strings.Contains(err.Error(), "make components") {
		t.Errorf("Assets() with an empty cache: %v, want an error naming make components", err)
	}
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("asking for missing components wrote %d entries to the cache; a test must never build", len(entries))
	}
}

// RepoRoot is the module's root wherever this package sits: the suites find config/, charts/ and
// hack/ through it.
func TestRepoRootHoldsTheModule(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(RepoRoot(), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "module github.com/tenantctl/tenant-operator\n") {
		t.Errorf("RepoRoot() = %s holds another module's go.mod", RepoRoot())
	}
}
