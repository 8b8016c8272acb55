// Command dev runs tenant-operator on a laptop with only Go installed: it starts a local
// kube-apiserver and etcd (the binaries hack/envtest.sh provides), installs the operator's CRDs and
// the CloudNativePG, Barman Cloud and External Secrets Operator CRDs, runs the operator binary
// against it, applies config/samples, prints a kubeconfig and example commands, and on Ctrl-C stops
// everything it started.
//
// Run it with `make dev`.
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
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tenantctl/tenant-operator/internal/testenv"
)

func main() {
	manager := flag.String("manager", "bin/manager", "operator binary to run")
	samples := flag.String("samples", "config/samples", "directory of sample manifests to apply")
	dir := flag.String("dir", "bin/dev", "directory for the kubeconfig and logs")
	flag.Parse()
	if err := run(*manager, *samples, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run(manager, samples, dir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dir, _ = filepath.Abs(dir)

	fmt.Println("starting a local control plane (kube-apiserver, etcd) with the operator's and third-party CRDs ...")
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("stopping the control plane")
		_ = env.Stop()
	}()

	user, err := env.AddUser(envtest.User{Name: "dev-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("create admin user: %w", err)
	}
	kubeconfigData, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kubeconfigData, 0o600); err != nil {
		return err
	}
	kubectl := filepath.Join(env.BinaryAssetsDirectory, "kubectl")

	// The operator runs as its own identity, bound to the generated manager ClusterRole only, as in
	// a cluster: the admission policies exempt exactly that identity.
	adminClient, err := client.New(env.Config, client.Options{})
	if err != nil {
		return err
	}
	opUser, err := env.OperatorUser(ctx, adminClient)
	if err != nil {
		return err
	}
	opKubeconfigData, err := opUser.KubeConfig()
	if err != nil {
		return err
	}
	opKubeconfig := filepath.Join(dir, "operator.kubeconfig")
	if err := os.WriteFile(opKubeconfig, opKubeconfigData, 0o600); err != nil {
		return err
	}

	logPath := filepath.Join(dir, "operator.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	if err := adminClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shared-db"}}); client.IgnoreAlreadyExists(err) != nil {
		return err
	}
	op := exec.Command(manager, "--leader-elect=false", "--config=config/dev/operator-config.yaml", "--metrics-bind-address=127.0.0.1:8080",
		"--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:8081", "--zap-devel")
	op.Env = append(os.Environ(), "KUBECONFIG="+opKubeconfig)
	op.Stdout, op.Stderr = logFile, logFile
	if err := op.Start(); err != nil {
		return fmt.Errorf("start the operator (%s; run `make build` first): %w", manager, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- op.Wait() }()
	defer func() {
		fmt.Println("stopping the operator")
		_ = op.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = op.Process.Kill()
		}
	}()

	if err := applySamples(ctx, kubectl, kubeconfig, samples); err != nil {
		fmt.Fprintln(os.Stderr, "dev: applying samples:", err)
	}

	fmt.Printf(`
tenant-operator is running against a local control plane.

  export KUBECONFIG=%[1]s
  alias kubectl=%[2]s

  kubectl get tenants                       # the samples, with Ready, Phase and Namespace
  kubectl get tenant acme -o yaml           # conditions and status of one tenant
  kubectl explain tenant.spec.database      # the API documentation
  kubectl get rolebindings.tenancy.tenantctl.io -A
  tail -f %[3]s                             # the operator's log

Press Ctrl-C to stop everything this started.
`, kubeconfig, kubectl, logPath)

	select {
	case <-ctx.Done():
		return nil
	case err := <-exited:
		return fmt.Errorf("the operator exited (see %s): %v", logPath, err)
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
