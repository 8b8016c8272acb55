//go:build cluster

// Package cluster proves the product on the real single-node cluster of `make cluster`
// (docs/test-cluster.md): a kubelet running pods on containerd, kube-controller-manager with its
// garbage collector and namespace controller, CloudNativePG running PostgreSQL, kube-router
// enforcing NetworkPolicy, ESO syncing from Vault, and the operator running as a pod installed by
// its Helm chart. Nothing here stands in for any component: no test writes a CloudNativePG or ESO
// object or status, and every namespace is finalized by the real namespace controller.
//
// Tenants are applied with kubectl, as a platform engineer or a GitOps tool would; applications are
// pods in the tenant's namespace running psql. Passwords are never printed: psql reads them from the
// environment, and pod logs hold only query results and PostgreSQL's error messages.
//
// Run it with `make test-cluster` after `make cluster`, as root.
package cluster

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

const (
	// ready bounds a tenant becoming Ready, its PostgreSQL included (about 30 s on two cores).
	ready = 5 * time.Minute
	// propagation bounds a value crossing CNPG, ESO's PushSecret (it re-reads every minute), Vault
	// and ESO's ExternalSecret.
	propagation = 4 * time.Minute
	// operatorUser is the operator's identity, whose requests the apiserver audits.
	operatorUser = "system:serviceaccount:tenant-operator-system:tenant-operator-controller-manager"
)

var (
	k8s        client.Client
	kubectlBin string
	clusterDir string
	pgImage    string
)

func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func setup() error {
	clusterDir = os.Getenv("TENANT_OPERATOR_CLUSTER_DIR")
	kubeconfig := os.Getenv("KUBECONFIG")
	if clusterDir == "" || kubeconfig == "" {
		return errors.New("no cluster: run `make cluster` first, then `make test-cluster` (which sets KUBECONFIG from hack/cluster.sh env)")
	}
	if _, err := os.Stat(kubeconfig); err != nil {
		return fmt.Errorf("no cluster (%v): run `make cluster` first", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: controllers.NewScheme()}); err != nil {
		return err
	}
	apiserver, err := testenv.ComponentBinary("kube")
	if err != nil {
		return err
	}
	kubectlBin = filepath.Join(filepath.Dir(apiserver), "kubectl")
	out, err := exec.Command(filepath.Join(testenv.RepoRoot(), "hack", "images.sh"), "ref", "postgres").Output()
	if err != nil {
		return fmt.Errorf("hack/images.sh ref postgres: %w", err)
	}
	pgImage = strings.TrimSpace(string(out))
	return nil
}

// ---- helpers ----

func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := kubectlErr(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// kubectlErr runs kubectl and returns its standard output; its standard error (warnings) is
// returned only within an error.
func kubectlErr(stdin string, args ...string) (string, error) {
	cmd := exec.Command(kubectlBin, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return string(out), nil
}

func randomValue(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func ns(tenant string) string { return "tenant-" + tenant }

// applyTenant applies a Tenant with kubectl, as a platform engineer or a GitOps tool would.
func applyTenant(t *testing.T, name, spec string) {
	t.Helper()
	kubectl(t, fmt.Sprintf("apiVersion: tenancy.tenantctl.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: %s\nspec:\n%s", name, spec),
		"apply", "--server-side", "--field-manager=platform-gitops", "-f", "-")
}

// dedicated is a Tenant spec with a Dedicated database of n instances whose credentials reach the
// namespace from Vault as the Secret app-db.
func dedicated(instances int, deletion string) string {
	return fmt.Sprintf(`  owners:
  - {kind: User, name: "oidc:owner@example.com"}
  deletionPolicy: %s
  database:
    mode: Dedicated
    instances: %d
    postgresVersion: 15
    storage: {size: 1Gi}
    confirmDeletionWithoutBackup: true
  secrets:
    items:
    - {name: app-db, remoteKey: database, refreshInterval: 10s}
`, deletion, instances)
}

func shared(deletion string) string {
	return fmt.Sprintf(`  owners:
  - {kind: User, name: "oidc:owner@example.com"}
  deletionPolicy: %s
  database:
    mode: Shared
  secrets:
    items:
    - {name: app-db, remoteKey: database, refreshInterval: 10s}
`, deletion)
}

// waitReady waits as a user would: kubectl wait for the Ready condition.
func waitReady(t *testing.T, name string) {
	t.Helper()
	if out, err := kubectlErr("", "wait", "--for=condition=Ready", "tenant/"+name, "--timeout="+ready.String()); err != nil {
		conditions, _ := kubectlErr("", "get", "tenant", name, "-o", `jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}`)
		t.Fatalf("tenant %s not Ready within %s: %v\n%s\n%s", name, ready, err, out, conditions)
	}
}

func deleteTenant(t *testing.T, name string) {
	t.Helper()
	kubectl(t, "", "delete", "tenant", name, "--wait=true", "--timeout=5m")
}

// psqlPod is an application: a pod in namespace running a bash script with psql, connecting with
// the credentials of the Secret credentials (from Vault) and TLS verified against the CA in caSecret.
type psqlPod struct {
	namespace, name string
	credentials     string // Secret with username, password, dbname, host
	caSecret        string // Secret whose ca.crt verifies the server
	script          string
}

// reach is the start of every application's script: a new pod's address reaches kube-router's
// NetworkPolicy sets a moment after the pod starts, and until then its packets are rejected, so an
// application retries the server, as real ones do, for up to 30 s. `reach` fails if the server never
// answered (the pod prints UNREACHABLE where its script says so).
const reach = `reach() { for i in $(seq 1 30); do pg_isready -q -t 2 && return 0; sleep 1; done; return 1; }
`

// run starts the pod, waits for it to finish and returns its phase and log.
func (p psqlPod) run(t *testing.T) (succeeded bool, log string) {
	t.Helper()
	// A pod name of its own each run: a deleted pod of the same name may still be terminating.
	p.name += "-" + randomValue(t)[:6]
	env := func(name, key string) string {
		return fmt.Sprintf("    - {name: %s, valueFrom: {secretKeyRef: {name: %s, key: %s}}}\n", name, p.credentials, key)
	}
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s, labels: {app: psql}}
spec:
  restartPolicy: Never
  securityContext: {runAsNonRoot: true, runAsUser: 26, runAsGroup: 26, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: psql
    image: %s
    imagePullPolicy: Never
    command: [bash, -ec, %q]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
    env:
%s%s%s%s    - {name: PGSSLMODE, value: verify-full}
    - {name: PGSSLROOTCERT, value: /ca/ca.crt}
    - {name: PGCONNECT_TIMEOUT, value: "5"}
    volumeMounts: [{name: ca, mountPath: /ca}]
  volumes: [{name: ca, secret: {secretName: %s, items: [{key: ca.crt, path: ca.crt}]}}]
`, p.name, p.namespace, pgImage, reach+p.script,
		env("PGUSER", "username"), env("PGPASSWORD", "password"), env("PGDATABASE", "dbname"), env("PGHOST", "host"), p.caSecret)
	kubectl(t, manifest, "apply", "-f", "-")
	defer kubectl(t, "", "-n", p.namespace, "delete", "pod", p.name, "--wait=false")
	var phase corev1.PodPhase
	testenv.Eventually(t, 2*time.Minute, func() error {
		pod := &corev1.Pod{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: p.namespace, Name: p.name}, pod); err != nil {
			return err
		}
		phase = pod.Status.Phase
		if phase != corev1.PodSucceeded && phase != corev1.PodFailed {
			return fmt.Errorf("pod %s/%s is %s", p.namespace, p.name, phase)
		}
		return nil
	})
	log = kubectl(t, "", "-n", p.namespace, "logs", p.name)
	return phase == corev1.PodSucceeded, log
}

// mustRun runs the pod and fails the test unless it succeeds.
func (p psqlPod) mustRun(t *testing.T) string {
	t.Helper()
	ok, log := p.run(t)
	if !ok {
		t.Fatalf("pod %s/%s failed:\n%s", p.namespace, p.name, log)
	}
	return log
}

// instanceSQL runs a query as the postgres superuser over the instance's local socket (peer
// authentication inside the pod), for what only a superuser may read.
func instanceSQL(t *testing.T, namespace, pod, query string) string {
	t.Helper()
	return strings.TrimSpace(kubectl(t, "", "-n", namespace, "exec", pod, "-c", "postgres", "--",
		"psql", "-X", "-tA", "-d", "postgres", "-c", query))
}

// auditedWrites returns the operator's write requests the apiserver audited since `since`, leader
// election's lease renewals aside.
func auditedWrites(t *testing.T, since time.Time) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(clusterDir, "logs", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var writes []string
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		var event struct {
			Verb      string                    `json:"verb"`
			User      struct{ Username string } `json:"user"`
			ObjectRef struct {
				Resource, Namespace, Name, Subresource string
			} `json:"objectRef"`
			RequestReceived metav1.MicroTime `json:"requestReceivedTimestamp"`
		}
		if err := json.Unmarshal(scanner.Bytes(), &event); err != nil {
			t.Fatalf("audit log: %v", err)
		}
		if event.User.Username != operatorUser || event.RequestReceived.Time.Before(since) || event.ObjectRef.Resource == "leases" {
			continue
		}
		o := event.ObjectRef
		writes = append(writes, fmt.Sprintf("%s %s %s/%s %s", event.Verb, o.Resource, o.Namespace, o.Name, o.Subresource))
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	return writes
}

func get(obj client.Object, namespace, name string) error {
	return k8s.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, obj)
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
