//go:build cluster

package cluster

import (
	"context"
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
