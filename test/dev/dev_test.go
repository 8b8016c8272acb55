//go:build e2e

// Package dev drives `make dev`'s environment as a new user meets it: hack/dev.sh (what make dev
// runs once make has built the operator and the components) is started as its own process, and the
// test then acts through kubectl with the kubeconfig it prints, as the people docs/rbac.md names. It
// proves that the first thing a user runs serves the same admission as a Helm install: every grant
// that docs/rbac.md lists as refused is refused, a valid one is accepted and put in force, and a
// refused update changes nothing. Ctrl-C (SIGINT to the dev program alone) must stop every process
// it started.
//
// Run it with `make test-e2e` (it needs `make components`).
package dev

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

const (
	// startup bounds how long hack/dev.sh may take to print its ready message with every component
	// already built: a control plane, helm install, Vault, ESO and the operator on 2 cores.
	startup = 4 * time.Minute
	wait    = 90 * time.Second
	// The sample Tenant acme (config/samples): owner alice, SSO prefix "oidc:".
	alice     = "oidc:alice@acme.example"
	namespace = "tenant-acme"
)

type devEnv struct {
	kubectl, kubeconfig string
}

// run runs kubectl as the platform admin, or as user (with the groups every authenticated user has).
func (d *devEnv) run(stdin, user string, args ...string) (string, error) {
	full := []string{"--kubeconfig", d.kubeconfig}
	if user != "" {
		full = append(full, "--as="+user, "--as-group=system:authenticated")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.kubectl, append(full, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (d *devEnv) must(t *testing.T, stdin, user string, args ...string) string {
	t.Helper()
	out, err := d.run(stdin, user, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// startDev runs hack/dev.sh in a process group of its own and waits for its ready message. Cleanup
// sends SIGINT to the dev program alone, as make forwards Ctrl-C, and fails the test if any process
// of the group is still running 60 s later.
func startDev(t *testing.T) *devEnv {
	t.Helper()
	root := testenv.RepoRoot()
	dir := t.TempDir()
	manager := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", manager, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the operator from main.go (make dev's `make build`): %v: %s", err, out)
	}
	assets, err := testenv.Assets()
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(filepath.Join(root, "hack", "dev.sh"), "-dir", filepath.Join(dir, "dev"), "-manager", manager)
	cmd.Dir = root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The dev program prints Vault's dev root token among its instructions: read, never logged.
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "dev.stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), "Press Ctrl-C to stop everything") {
				close(ready)
				signalled = true
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("make dev did not exit cleanly on Ctrl-C: %v (stderr: %s)", err, logFile.Name())
			}
		case <-time.After(60 * time.Second):
			t.Errorf("make dev still running 60 s after Ctrl-C")
		}
		deadline := time.Now().Add(30 * time.Second)
		for syscall.Kill(-pgid, 0) == nil {
			if time.Now().After(deadline) {
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				t.Errorf("processes of make dev were still running 30 s after it exited: killed them")
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		logFile.Close()
	})
	select {
	case <-ready:
	case err := <-exited:
		exited <- err
		t.Fatalf("make dev exited before it was ready: %v (stderr: %s)", err, logFile.Name())
	case <-time.After(startup):
		t.Fatalf("make dev not ready within %s (stderr: %s, logs: %s)", startup, logFile.Name(), filepath.Join(dir, "dev"))
	}
	return &devEnv{kubectl: filepath.Join(assets, "kubectl"), kubeconfig: filepath.Join(dir, "dev", "kubeconfig")}
}

func grant(name, ns, spec string) string {
	return fmt.Sprintf("apiVersion: tenancy.tenantctl.io/v1alpha1\nkind: RoleBinding\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n%s", name, ns, spec)
}

func TestMakeDevServesTheAdmissionOfAHelmInstall(t *testing.T) {
	d := startDev(t)

	// make dev applies the samples: acme's namespace and its sample grant bob-developer must exist
	// before acme's owner acts.
	testenv.Eventually(t, wait, func() error {
		if out, err := d.run("", "", "get", "rolebindings.rbac.authorization.k8s.io", "tenancy:bob-developer", "-n", namespace); err != nil {
			return fmt.Errorf("the sample grant bob-developer is not in force: %s", out)
		}
		return nil
	})

	// A helpdesk user that the platform allowed to create grants in tenant-acme, and nothing else.
	d.must(t, `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: grant-writer, namespace: tenant-acme}
rules:
- apiGroups: [tenancy.tenantctl.io]
  resources: [rolebindings]
  verbs: [create, get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: helpdesk-grant-writer, namespace: tenant-acme}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: grant-writer}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "oidc:helpdesk@acme.example"}
`, "", "apply", "--server-side", "-f", "-")

	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	// Every refusal of docs/rbac.md's admission table, each by the identity it protects against.
	cases := map[string]struct {
		user     string   // the requester ("" is the platform admin, system:masters)
		manifest string   // the grant requested
		want     []string // what the refusal must say: the field, and why
	}{
		"cluster-admin to system:masters, by acme's owner": {
			user:     alice,
			manifest: grant("pwn", namespace, "  role: cluster-admin\n  subjects:\n  - kind: Group\n    name: system:masters\n"),
			want:     []string{`spec.role: Unsupported value: "cluster-admin"`, `spec.subjects[0].name: Forbidden: group "system:masters" is a Kubernetes system identity`},
		},
		"a tenant role to system:masters, by acme's owner": {
			user:     alice,
			manifest: grant("pwn-admin", namespace, "  role: admin\n  subjects:\n  - kind: Group\n    name: system:masters\n"),
			want:     []string{`spec.subjects[0].name: Forbidden: group "system:masters" is a Kubernetes system identity`},
		},
		"another tenant's ServiceAccount, by acme's owner": {
			user:     alice,
			manifest: grant("foreign-sa", namespace, "  role: developer\n  subjects:\n  - kind: ServiceAccount\n    name: deployer\n    namespace: tenant-globex\n"),
			want:     []string{"spec.subjects[0].namespace: Forbidden: ServiceAccount tenant-globex/deployer is not of tenant acme"},
		},
		"a user without the tenant's SSO prefix, by acme's owner": {
			user:     alice,
			manifest: grant("no-prefix", namespace, "  role: viewer\n  subjects:\n  - kind: User\n    name: mallory@globex.example\n"),
			want:     []string{`spec.subjects[0].name: Forbidden: user "mallory@globex.example" does not carry tenant acme's SSO prefix "oidc:"`},
		},
		"an expiry in the past, by acme's owner": {
			user:     alice,
			manifest: grant("expired", namespace, fmt.Sprintf("  role: viewer\n  subjects:\n  - kind: User\n    name: oidc:carol@acme.example\n  expiresAt: %q\n", past)),
			want:     []string{"spec.expiresAt: Invalid value: \"" + past + "\": must be in the future"},
		},
		"a namespace that is not a tenant's, even by the platform admin": {
			manifest: grant("not-a-tenant", "default", "  role: viewer\n  subjects:\n  - kind: User\n    name: oidc:carol@acme.example\n"),
			want:     []string{"metadata.namespace: Forbidden: namespace default is not a tenant namespace"},
		},
		"admin, by someone who may create grants but does not hold admin": {
			user:     "oidc:helpdesk@acme.example",
			manifest: grant("helpdesk-escalates", namespace, "  role: admin\n  subjects:\n  - kind: User\n    name: oidc:helpdesk@acme.example\n"),
			want:     []string{"spec.role: Forbidden: oidc:helpdesk@acme.example may not grant admin (ClusterRole tenant-admin) in tenant-acme: they may not bind it"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := d.run(tc.manifest, tc.user, "create", "-f", "-")
			if err == nil {
				t.Fatalf("accepted at admission, want refused:\n%s", out)
			}
			if !strings.Contains(out, "admission webhook") {
				t.Errorf("refused, but not by the admission webhook:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("refusal does not say %q:\n%s", w, out)
				}
			}
		})
	}

	t.Run("a refused update changes nothing", func(t *testing.T) {
		before := d.must(t, "", "", "get", "trb", "bob-developer", "-n", namespace, "-o", "jsonpath={.spec}")
		out, err := d.run("", alice, "patch", "trb", "bob-developer", "-n", namespace, "--type=merge",
			"-p", `{"spec":{"subjects":[{"kind":"Group","name":"system:masters"}]}}`)
		if err == nil || !strings.Contains(out, "spec.subjects[0].name: Forbidden") {
			t.Fatalf("the update was not refused by the webhook: %v\n%s", err, out)
		}
		if after := d.must(t, "", "", "get", "trb", "bob-developer", "-n", namespace, "-o", "jsonpath={.spec}"); after != before {
			t.Errorf("a refused update changed the grant: %s -> %s", before, after)
		}
		subjects := d.must(t, "", "", "get", "rolebindings.rbac.authorization.k8s.io", "tenancy:bob-developer", "-n", namespace, "-o", "jsonpath={.subjects}")
		if strings.Contains(subjects, "system:masters") || !strings.Contains(subjects, "oidc:bob@acme.example") {
			t.Errorf("the RBAC binding of bob-developer changed: %s", subjects)
		}
	})

	t.Run("a valid grant by acme's owner is accepted and put in force", func(t *testing.T) {
		d.must(t, grant("carol-viewer", namespace, fmt.Sprintf("  role: viewer\n  subjects:\n  - kind: User\n    name: oidc:carol@acme.example\n  expiresAt: %q\n  reason: CHG-1\n", future)),
			alice, "create", "-f", "-")
		testenv.Eventually(t, wait, func() error {
			out, err := d.run("", "oidc:carol@acme.example", "auth", "can-i", "list", "pods", "-n", namespace)
			if err != nil || strings.TrimSpace(out) != "yes" {
				return fmt.Errorf("carol may not list pods in tenant-acme: %s", strings.TrimSpace(out))
			}
			return nil
		})
	})

	// Nothing refused above may exist.
	for _, name := range []string{"pwn", "pwn-admin", "foreign-sa", "no-prefix", "expired", "helpdesk-escalates"} {
		if out, err := d.run("", "", "get", "trb", name, "-n", namespace); err == nil {
			t.Errorf("refused grant %s exists:\n%s", name, out)
		}
	}
}
