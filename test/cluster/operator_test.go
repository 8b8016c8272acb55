//go:build cluster

package cluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// The chart installed the operator as a Deployment running the image built from this tree (make
// image: non-root, no shell), and the admission webhook is served by its pods.
func TestOperatorRunsAsPodsAndServesItsWebhook(t *testing.T) {
	deployment := &appsv1.Deployment{}
	if err := get(deployment, "tenant-operator-system", "tenant-operator"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(testenv.RepoRoot(), "hack", "images.sh"), "ref", "operator").Output()
	if err != nil {
		t.Fatal(err)
	}
	image := strings.TrimSpace(string(out))
	if got := deployment.Spec.Template.Spec.Containers[0].Image; got != image {
		t.Errorf("the Deployment runs %s, want the image make cluster built, %s", got, image)
	}
	if want := *deployment.Spec.Replicas; want < 1 || deployment.Status.AvailableReplicas != want || deployment.Status.UpdatedReplicas != want {
		t.Errorf("Deployment: %d of %d replicas available, %d updated", deployment.Status.AvailableReplicas, want, deployment.Status.UpdatedReplicas)
	}
	pods := &corev1.PodList{}
	if err := k8s.List(context.Background(), pods, client.InNamespace("tenant-operator-system"),
		client.MatchingLabels(deployment.Spec.Selector.MatchLabels)); err != nil {
		t.Fatal(err)
	}
	for _, pod := range pods.Items {
		if pod.Status.Phase != corev1.PodRunning {
			continue
		}
		// The image has no shell: exec'ing one fails.
		if _, err := kubectlErr("", "-n", pod.Namespace, "exec", pod.Name, "--", "/bin/sh", "-c", "true"); err == nil ||
			!strings.Contains(err.Error(), "stat /bin/sh: no such file or directory") {
			t.Errorf("pod %s: exec of /bin/sh did not fail for want of a shell: %v", pod.Name, err)
		}
		if uid := pod.Status.ContainerStatuses[0].User; uid != nil && uid.Linux != nil && uid.Linux.UID == 0 {
			t.Errorf("pod %s runs as root", pod.Name)
		}
	}
	// Only the webhook refuses a grant in a namespace that is not a tenant's.
	grant := "apiVersion: tenancy.tenantctl.io/v1alpha1\nkind: RoleBinding\nmetadata: {name: not-a-tenant, namespace: default}\n" +
		"spec:\n  role: viewer\n  subjects:\n  - {kind: User, name: 'oidc:carol@acme.example'}\n"
	out2, err := kubectlErr(grant, "apply", "-f", "-")
	if err == nil {
		t.Fatalf("a grant in namespace default was accepted:\n%s", out2)
	}
	for _, want := range []string{"admission webhook", "metadata.namespace: Forbidden: namespace default is not a tenant namespace"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal lacks %q: %v", want, err)
		}
	}
}

// TestOperatorImageCarriesItsSBOM reads the operator's image as make cluster built and loaded it: it
// carries a CycloneDX SBOM, and the SBOM describes the binary beside it (the Go that built it and
// the module versions linked in, as the binary's own build information records them).
func TestOperatorImageCarriesItsSBOM(t *testing.T) {
	out, err := exec.Command(filepath.Join(testenv.RepoRoot(), "hack", "images.sh"), "path", "operator").Output()
	if err != nil {
		t.Fatal(err)
	}
	files := imageFiles(t, strings.TrimSpace(string(out)), "manager", "usr/share/doc/tenant-operator/sbom.cdx.json")
	var sbom struct {
		BOMFormat string `json:"bomFormat"`
		Metadata  struct {
			Component struct{ Name string } `json:"component"`
		} `json:"metadata"`
		Components []struct{ Name, Version string } `json:"components"`
	}
	if err := json.Unmarshal(files["usr/share/doc/tenant-operator/sbom.cdx.json"], &sbom); err != nil {
		t.Fatalf("the image's SBOM is not JSON: %v", err)
	}
	info, err := buildinfo.Read(bytes.NewReader(files["manager"]))
	if err != nil {
		t.Fatalf("the image's manager has no build information: %v", err)
	}
	if sbom.BOMFormat != "CycloneDX" || sbom.Metadata.Component.Name != info.Main.Path {
		t.Errorf("SBOM format %q of %q, want CycloneDX of %s", sbom.BOMFormat, sbom.Metadata.Component.Name, info.Main.Path)
	}
	versions := map[string]string{}
	for _, c := range sbom.Components {
		versions[c.Name] = c.Version
	}
	if versions["std"] != info.GoVersion {
		t.Errorf("the SBOM's standard library is %q, the binary was built with %s", versions["std"], info.GoVersion)
	}
	linked := 0
	for _, dep := range info.Deps {
		if versions[dep.Path] != dep.Version {
			t.Errorf("the binary links %s %s, the SBOM says %q", dep.Path, dep.Version, versions[dep.Path])
		}
		linked++
	}
	t.Logf("the SBOM lists %d components; the binary (%s) links %d modules, each as the SBOM says", len(sbom.Components), info.GoVersion, linked)
}

// imageFiles reads the named files out of a docker-save tarball's layers.
func imageFiles(t *testing.T, tarball string, names ...string) map[string][]byte {
	t.Helper()
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	found := map[string][]byte{}
	outer := tar.NewReader(f)
	for {
		h, err := outer.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(h.Name, ".tar.gz") {
			continue
		}
		gz, err := gzip.NewReader(outer)
		if err != nil {
			t.Fatal(err)
		}
		layer := tar.NewReader(gz)
		for {
			lh, err := layer.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if want[lh.Name] {
				if found[lh.Name], err = io.ReadAll(layer); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, n := range names {
		if found[n] == nil {
			t.Fatalf("the image %s has no %s", tarball, n)
		}
	}
	return found
}
