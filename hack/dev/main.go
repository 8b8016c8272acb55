// Command dev runs tenant-operator on a laptop with only Go installed: it starts a local
// kube-apiserver and etcd with the third-party CRDs, installs the operator's CRDs, roles, admission
// policies and webhook with `helm install charts/tenant-operator`, starts a Vault dev server set up
// by hack/vault-bootstrap.sh, the External Secrets Operator controller and the operator binary
// serving its admission webhook (the same stack as the e2e suite, internal/test/testenv.Stack), seeds the
// sample tenant's secrets in Vault, applies config/samples, prints a kubeconfig and example
// commands, and on Ctrl-C stops everything it started.
//
// Run it with `make dev`, which builds the components first (make components); test/dev drives it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

func main() {
	manager := flag.String("manager", "bin/manager", "operator binary to run")
	samples := flag.String("samples", "config/samples", "directory of sample manifests to apply")
	dir := flag.String("dir", "bin/dev", "directory for the kubeconfig and logs")
	// The chart is always used now; the flag is accepted so that old command lines keep working.
	_ = flag.Bool("chart", true, "deprecated, has no effect: the operator is always installed with helm from charts/tenant-operator")
	flag.Parse()
	if err := run(*manager, *samples, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run(manager, samples, dir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}

	fmt.Println("starting a local control plane, helm install charts/tenant-operator, a Vault dev server")
	fmt.Println("(bootstrapped by hack/vault-bootstrap.sh), the External Secrets Operator controller and the operator ...")
	stack, err := testenv.StartStack(ctx, testenv.StackOptions{
		Dir: dir, Manager: manager, OperatorConfig: "config/dev/operator-config.yaml",
		VaultResync: "30s", StoreRequeue: "30s",
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("stopping the operator, ESO, Vault and the control plane")
		stack.Stop()
	}()
	if err := stack.Admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shared-db"}}); client.IgnoreAlreadyExists(err) != nil {
		return err
	}
	// The sample tenant acme reads these from Vault; they are made-up development values.
	for path, data := range map[string]string{
		"secret/data/tenants/acme/stripe": `{"data":{"api_key":"sk_test_dev_only"}}`,
		"secret/data/tenants/acme/smtp":   `{"data":{"host":"smtp.example","username":"acme","password":"dev-only"}}`,
	} {
		if code, _, err := stack.Vault.Do(ctx, "POST", path, data); err != nil || code != 200 {
			return fmt.Errorf("seed %s in Vault: HTTP %d %v", path, code, err)
		}
	}
	if err := applySamples(ctx, stack.KubectlBinary, stack.AdminKubeconfig, samples); err != nil {
		fmt.Fprintln(os.Stderr, "dev: applying samples:", err)
	}

	fmt.Printf(`
tenant-operator is running against a local control plane, with a real Vault and ESO. It was
installed with helm from charts/tenant-operator and serves its admission webhook, as in a cluster.

  export KUBECONFIG=%[1]s
  alias kubectl=%[2]s
  export VAULT_ADDR=%[3]s VAULT_TOKEN=%[4]s
  alias vault=%[5]s

  kubectl get tenants                       # the samples, with Ready, Phase and Namespace
  kubectl get tenant acme -o yaml           # conditions and status of one tenant
  kubectl get secret smtp -n tenant-acme -o jsonpath='{.data.host}' | base64 -d   # from Vault
  vault kv put secret/tenants/acme/smtp host=smtp2.example username=acme password=rotated
                                            # ... and the Secret follows within its refresh interval
  kubectl explain tenant.spec.secrets       # the API documentation
  kubectl create -f - --as=oidc:alice@acme.example --as-group=system:authenticated <<EOF
  {"apiVersion":"tenancy.tenantctl.io/v1alpha1","kind":"RoleBinding","metadata":{"name":"pwn","namespace":"tenant-acme"},
   "spec":{"role":"admin","subjects":[{"kind":"Group","name":"system:masters"}]}}
  EOF                                       # acme's owner tries to escalate: refused at admission
  tail -f %[6]s/operator.log                # the operator's log (ESO's and Vault's are beside it)

Press Ctrl-C to stop everything this started.
`, stack.AdminKubeconfig, stack.KubectlBinary, stack.Vault.Address, testenv.VaultRootToken, stack.Vault.Binary(), dir) // secretlog:ok: the local dev Vault's fixed root token, printed for the developer who started it

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
			if !stack.Operator.Running() {
				return fmt.Errorf("the operator exited (see %s)", stack.Operator.Log)
			}
		}
	}
}

// applySamples applies the cluster-scoped samples (Tenants) first, then the namespaced ones once
// their namespace exists: tenant namespaces are created by the operator, never by this script.
func applySamples(ctx context.Context, kubectl, kubeconfig, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "tenancy_*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var namespaced []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if strings.Contains(string(data), "\n  namespace:") && strings.Contains(string(data), "kind: RoleBinding") {
			namespaced = append(namespaced, f)
			continue
		}
		if out, err := kubectlRun(ctx, kubectl, kubeconfig, "apply", "--server-side", "-f", f); err != nil {
			return fmt.Errorf("%s: %v: %s", f, err, out)
		}
		fmt.Println("applied", filepath.Base(f))
	}
	var errs []error
	for _, f := range namespaced {
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := kubectlRun(ctx, kubectl, kubeconfig, "apply", "--server-side", "-f", f)
			if err == nil {
				fmt.Println("applied", filepath.Base(f))
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				errs = append(errs, fmt.Errorf("%s not applied (is its tenant namespace there yet?): %s", filepath.Base(f), strings.TrimSpace(out)))
				break
			}
			time.Sleep(time.Second)
		}
	}
	return errors.Join(errs...)
}

func kubectlRun(ctx context.Context, kubectl, kubeconfig string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
