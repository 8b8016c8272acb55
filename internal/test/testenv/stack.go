package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// The operator's ServiceAccount as config/default deploys it, and its Vault role as
// hack/vault-bootstrap.sh creates it.
const (
	OperatorNamespace      = "tenant-operator-system"
	OperatorServiceAccount = "tenant-operator-controller-manager"
	OperatorVaultRole      = "tenant-operator"
)

// StackOptions configure a whole local platform: control plane, Vault, External Secrets Operator and
// the operator binary.
type StackOptions struct {
	// Dir receives the kubeconfigs, the operator configuration, the Vault token file and the logs.
	Dir string
	// Manager is the operator binary to run.
	Manager string
	// OperatorConfig is the operator configuration file; a vault section pointing at the stack's
	// Vault is added to it.
	OperatorConfig string
	// VaultResync is the operator's vault.resyncInterval (default: the operator's default).
	VaultResync string
	// StoreRequeue is how often ESO re-validates SecretStores (default: ESO's 5m).
	StoreRequeue string
	// ConfigureControlPlane, when set, configures the control plane before it starts (kube-apiserver
	// flags such as an audit policy).
	ConfigureControlPlane func(*envtest.Environment)
	// OperatorArgs replace the flags the suites run the operator with (no leader election, verbose
	// logs) by others, for example the chart's; the stack's own addresses, configuration and webhook
	// flags are always added.
	OperatorArgs []string
	// ControllerManager runs kube-controller-manager (make component-kube-node) with only its
	// namespace and garbage-collector controllers: namespaces really finalize and owned objects are
	// really collected, with nothing standing in for either.
	ControllerManager bool
	// OperatorAPI, when set, puts something between the operator and the API server (the fault
	// campaign's proxy): it is given the operator's identity each time the operator starts, and
	// returns the address the operator talks to instead, in plain HTTP without credentials.
	OperatorAPI func(operator *rest.Config) (string, error)
}

// Stack is a running local platform. Everything in it is real: kube-apiserver and etcd, a Vault dev
// server bootstrapped by hack/vault-bootstrap.sh, the ESO controller and the operator, each its own
// process, built by `make components` through the Go module proxy. The operator's CRDs, roles,
// admission policies and webhook configuration are installed with helm from charts/tenant-operator,
// as a platform team would; the operator (outside the cluster: no kubelet here) serves the webhook
// itself, at a URL the chart is given, with its self-managed certificate. There is one way to start
// it, so make dev, the dev test and the e2e suite all run the admission a Helm install runs.
type Stack struct {
	Env *Environment
	// Admin is a cluster-admin client; AdminKubeconfig is the same identity for kubectl and ESO.
	Admin           client.Client
	AdminKubeconfig string
	KubectlBinary   string
	Vault           *Vault
	ESO, Operator   *Process
	// ControllerManager is kube-controller-manager, when StackOptions.ControllerManager asks for it.
	ControllerManager *Process
	// OperatorMetrics is the address of the running operator's metrics endpoint (plain HTTP).
	OperatorMetrics string
	opts            StackOptions
	webhookAddr     string // the operator's webhook, when the chart is installed
}

// Process is a component running as its own process, logging to a file.
type Process struct {
	Name, Log string
	cmd       *exec.Cmd
	exited    chan struct{}
}

// StartProcess starts bin with args and env added to this process's environment. Its output is
// appended to logPath: a process started again after a crash logs after the one before.
func StartProcess(name, logPath string, env []string, bin string, args ...string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.exited) }()
	return p, nil
}

// Running says whether the process has not exited; Pid identifies it.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop interrupts the process and kills it if it has not exited within 10 seconds.
func (p *Process) Stop() {
	if p == nil || !p.Running() {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// StartStack starts the platform. On error, whatever was started is stopped.
func StartStack(ctx context.Context, opts StackOptions) (_ *Stack, reterr error) {
	s := &Stack{opts: opts}
	defer func() {
		if reterr != nil {
			s.Stop()
		}
	}()
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if s.Env, err = StartForChartWith(opts.ConfigureControlPlane); err != nil {
		return nil, err
	}
	s.KubectlBinary = filepath.Join(s.Env.BinaryAssetsDirectory, "kubectl")
	if err := installESOGenerators(s.Env); err != nil {
		return nil, err
	}
	if s.Admin, err = client.New(s.Env.Config, client.Options{}); err != nil {
		return nil, err
	}
	admin, err := s.Env.AddUser(envtest.User{Name: "platform-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	s.AdminKubeconfig = filepath.Join(opts.Dir, "kubeconfig")
	if err := writeKubeconfig(admin, s.AdminKubeconfig); err != nil {
		return nil, err
	}

	if s.webhookAddr, err = FreeAddr(); err != nil {
		return nil, err
	}
	if err := s.installChart(); err != nil {
		return nil, err
	}
	if s.Vault, err = StartVault(); err != nil {
		return nil, err
	}
	if err := s.BootstrapVault(ctx); err != nil {
		return nil, err
	}
	if opts.ControllerManager {
		if err := s.startControllerManager(); err != nil {
			return nil, err
		}
	}
	if err := s.startESO(); err != nil {
		return nil, err
	}
	if err := s.startOperator(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Stop stops every component, the operator first.
func (s *Stack) Stop() {
	s.Operator.Stop()
	s.ESO.Stop()
	s.ControllerManager.Stop()
	if s.Vault != nil {
		_ = s.Vault.Stop()
	}
	if s.Env != nil {
		_ = s.Env.Stop()
	}
}

// BootstrapVault does the one-time setup docs/vault.md describes, against the stack's Vault and
// control plane: Vault's token reviewer (config/vault/token-reviewer.yaml, a token of it for a
// Vault outside the cluster), then hack/vault-bootstrap.sh. Run it again after a Vault rebuild.
func (s *Stack) BootstrapVault(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: OperatorNamespace}}
	if err := s.Admin.Create(ctx, ns); client.IgnoreAlreadyExists(err) != nil {
		return err
	}
	if err := ApplyFiles(ctx, s.Admin, filepath.Join(RepoRoot(), "config", "vault", "token-reviewer.yaml")); err != nil {
		return err
	}
	reviewer, err := s.ServiceAccountToken(ctx, OperatorNamespace, "vault-token-reviewer", "")
	if err != nil {
		return err
	}
	reviewerPath := filepath.Join(s.opts.Dir, "vault-token-reviewer.jwt")
	ca := filepath.Join(s.opts.Dir, "apiserver-ca.crt")
	if err := os.WriteFile(reviewerPath, []byte(reviewer), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(ca, s.Env.Config.CAData, 0o600); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(RepoRoot(), "hack", "vault-bootstrap.sh"))
	cmd.Env = append(os.Environ(), "VAULT="+s.Vault.bin, "VAULT_ADDR="+s.Vault.Address, "VAULT_TOKEN="+VaultRootToken,
		"KUBERNETES_HOST="+s.Env.Config.Host, "KUBERNETES_CA_FILE="+ca, "TOKEN_REVIEWER_JWT_FILE="+reviewerPath,
		"HOME="+s.opts.Dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hack/vault-bootstrap.sh: %v: %s", err, out)
	}
	return nil
}

func (s *Stack) startESO() error {
	bin, err := ComponentBinary("eso")
	if err != nil {
		return err
	}
	metrics, err := FreeAddr()
	if err != nil {
		return err
	}
	live, err := FreeAddr()
	if err != nil {
		return err
	}
	args := []string{"--enable-leader-election=false", "--metrics-addr=" + metrics, "--live-addr=" + live,
		"--enable-cluster-store-reconciler=false", "--enable-cluster-external-secret-reconciler=false",
		"--enable-cluster-push-secret-reconciler=false", "--enable-generator-state=false", "--zap-time-encoding=iso8601"}
	if s.opts.StoreRequeue != "" {
		args = append(args, "--store-requeue-interval="+s.opts.StoreRequeue)
	}
	s.ESO, err = StartProcess("external-secrets", filepath.Join(s.opts.Dir, "external-secrets.log"),
		[]string{"KUBECONFIG=" + s.AdminKubeconfig}, bin, args...)
	return err
}

// startOperator runs the operator binary as its own identity (bound to the generated manager role
// only), logging in to Vault with a token of its ServiceAccount, as it would in a cluster.
func (s *Stack) startOperator(ctx context.Context) error {
	// Verbosity 1: the log says why each apply was sent (internal/apply), which the request-counting
	// tests need when they fail.
	args := []string{"--leader-elect=false", "--zap-log-level=1"}
	if s.opts.OperatorArgs != nil {
		args = append([]string(nil), s.opts.OperatorArgs...)
	}
	p, metrics, err := s.launchOperator(ctx, "operator", s.webhookAddr, s.opts.Manager, args)
	if err != nil {
		return err
	}
	s.Operator, s.OperatorMetrics = p, metrics
	return nil
}

// Replica is another operator process beside the stack's own, as a second replica of the
// Deployment (or a stray one) would be.
type Replica struct {
	*Process
	// Metrics is the replica's metrics endpoint (plain HTTP).
	Metrics string
}

// StartReplica starts another operator process named name, from the binary manager ("" for the
// stack's), with args (for example --leader-elect=true), talking to the API server as the stack's
// does. Its webhook serves at an address of its own, which the API server does not call.
func (s *Stack) StartReplica(ctx context.Context, name, manager string, args []string) (*Replica, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	if manager == "" {
		manager = s.opts.Manager
	}
	p, metrics, err := s.launchOperator(ctx, name, addr, manager, args)
	if err != nil {
		return nil, err
	}
	return &Replica{Process: p, Metrics: metrics}, nil
}

// launchOperator runs an operator binary named name as the operator's identity (bound to the
// generated manager role only), logging in to Vault with a token of its ServiceAccount, as it would
// in a cluster, its webhook at webhookAddr; it returns once the process is ready.
func (s *Stack) launchOperator(ctx context.Context, name, webhookAddr, manager string, args []string) (*Process, string, error) {
	user, err := s.Env.OperatorUser(ctx, s.Admin)
	if err != nil {
		return nil, "", err
	}
	kubeconfig := filepath.Join(s.opts.Dir, name+".kubeconfig")
	if s.opts.OperatorAPI != nil {
		host, err := s.opts.OperatorAPI(user.Config())
		if err != nil {
			return nil, "", err
		}
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters["api"] = &clientcmdapi.Cluster{Server: host}
		cfg.AuthInfos["operator"] = &clientcmdapi.AuthInfo{}
		cfg.Contexts["api"] = &clientcmdapi.Context{Cluster: "api", AuthInfo: "operator"}
		cfg.CurrentContext = "api"
		if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
			return nil, "", err
		}
	} else if err := writeKubeconfig(user, kubeconfig); err != nil {
		return nil, "", err
	}
	tokenPath := filepath.Join(s.opts.Dir, name+"-vault-token")
	if err := s.operatorToken(ctx, tokenPath); err != nil {
		return nil, "", err
	}
	configPath, err := s.operatorConfig(tokenPath)
	if err != nil {
		return nil, "", err
	}
	_, port, _ := strings.Cut(webhookAddr, ":")
	logPath := filepath.Join(s.opts.Dir, name+".log")
	// A free port can be taken by another process between FreeAddr and the operator's bind (the
	// suites run side by side): the operator then exits at once, and is started on other ports.
	for attempt := 1; ; attempt++ {
		metrics, err := FreeAddr()
		if err != nil {
			return nil, "", err
		}
		probes, err := FreeAddr()
		if err != nil {
			return nil, "", err
		}
		all := append(append([]string(nil), args...), "--config="+configPath, "--metrics-bind-address="+metrics, "--metrics-secure=false",
			"--health-probe-bind-address="+probes, "--webhook-port="+port, "--webhook-cert-dir="+filepath.Join(s.opts.Dir, name+"-webhook-certs"),
			"--webhook-cert-mode=self-managed", "--webhook-cert-extra-hosts=127.0.0.1")
		logged := int64(0)
		if info, err := os.Stat(logPath); err == nil {
			logged = info.Size()
		}
		p, err := StartProcess("tenant-operator", logPath,
			[]string{"KUBECONFIG=" + kubeconfig, "POD_NAMESPACE=" + OperatorNamespace}, manager, all...)
		if err != nil {
			return nil, "", err
		}
		err = waitOK("http://"+probes+"/readyz", p.Running)
		if err == nil {
			return p, metrics, nil
		}
		if attempt < 3 && !p.Running() && logSince(logPath, logged, "address already in use") {
			continue
		}
		return nil, "", fmt.Errorf("the operator %s did not become ready: %w (log: %s)", name, err, p.Log)
	}
}

// logSince says whether what was appended to a log after offset holds text.
func logSince(path string, offset int64, text string) bool {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) < offset {
		return false
	}
	return strings.Contains(string(data[offset:]), text)
}

// Kill kills the process with SIGKILL, as the OOM killer or a node failure would: no shutdown, no
// lease released, requests cut mid-flight. It returns once the process has exited.
func (p *Process) Kill() {
	if p == nil || !p.Running() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Signal sends sig to the process (SIGSTOP and SIGCONT freeze and thaw it).
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// StopESO stops the External Secrets Operator; StartESO starts it again.
func (s *Stack) StopESO() { s.ESO.Stop() }

// StartESO starts the External Secrets Operator again after StopESO.
func (s *Stack) StartESO() error { return s.startESO() }

// StartOperator starts the operator again after Operator.Stop or Operator.Kill.
func (s *Stack) StartOperator(ctx context.Context) error { return s.startOperator(ctx) }

// CrashOperator kills the operator with SIGKILL and starts it again at once, as a crash-looping pod
// would be: the new process starts with empty caches and nothing in memory, and logs after the
// killed one.
func (s *Stack) CrashOperator(ctx context.Context) error {
	s.Operator.Kill()
	return s.startOperator(ctx)
}

// RestartOperator stops the operator process and starts a new one, as a rollout or a crash would:
// the new process starts with empty caches and nothing in memory.
func (s *Stack) RestartOperator(ctx context.Context) error {
	s.Operator.Stop()
	// Keep the stopped process's log beside the new one.
	if err := os.Rename(s.Operator.Log, s.Operator.Log+".before-restart"); err != nil {
		return err
	}
	return s.startOperator(ctx)
}

// operatorToken writes a token of the operator's ServiceAccount for Vault's audience, where the
// kubelet would project it in a cluster.
func (s *Stack) operatorToken(ctx context.Context, path string) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: OperatorNamespace, Name: OperatorServiceAccount}}
	if err := s.Admin.Create(ctx, sa); client.IgnoreAlreadyExists(err) != nil {
		return err
	}
	token, err := s.ServiceAccountToken(ctx, OperatorNamespace, OperatorServiceAccount, "vault")
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(token), 0o600)
}

// ServiceAccountToken requests a token of a ServiceAccount for an audience ("" for the apiserver's).
func (s *Stack) ServiceAccountToken(ctx context.Context, namespace, name, audience string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)}}
	if audience != "" {
		tr.Spec.Audiences = []string{audience}
	}
	if err := s.Admin.SubResource("token").Create(ctx, sa, tr); err != nil {
		return "", fmt.Errorf("token for %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// operatorConfig writes the operator configuration: the given file plus the stack's Vault.
func (s *Stack) operatorConfig(tokenPath string) (string, error) {
	cfg := map[string]any{}
	if s.opts.OperatorConfig != "" {
		data, err := os.ReadFile(s.opts.OperatorConfig)
		if err != nil {
			return "", err
		}
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			return "", err
		}
	}
	vault := map[string]any{
		"address": s.Vault.Address,
		"auth":    map[string]any{"method": "kubernetes", "role": OperatorVaultRole, "tokenPath": tokenPath},
	}
	if s.opts.VaultResync != "" {
		vault["resyncInterval"] = s.opts.VaultResync
	}
	cfg["vault"] = vault
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(s.opts.Dir, "operator-config.yaml")
	return path, os.WriteFile(path, data, 0o600)
}

// Kubectl runs kubectl as the platform admin, with stdin when given.
func (s *Stack) Kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.KubectlBinary, append([]string{"--kubeconfig", s.AdminKubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startControllerManager runs kube-controller-manager's namespace and garbage-collector
// controllers as the cluster admin, serving nothing.
func (s *Stack) startControllerManager() error {
	kubelet, err := ComponentBinary("kube-node")
	if err != nil {
		return err
	}
	bin := filepath.Join(filepath.Dir(kubelet), "kube-controller-manager")
	s.ControllerManager, err = StartProcess("kube-controller-manager", filepath.Join(s.opts.Dir, "kube-controller-manager.log"), nil, bin,
		"--kubeconfig="+s.AdminKubeconfig, "--controllers=namespace-controller,garbage-collector-controller",
		"--leader-elect=false", "--secure-port=0")
	return err
}

// installESOGenerators installs the ESO CRDs the operator does not use but the ESO controller
// watches (its generators), so that ESO itself can start.
func installESOGenerators(env *Environment) error {
	eso, err := ModuleDir(ESOModule, ESOVersion)
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(eso, esoCRDDir, "generators.external-secrets.io_*.yaml"))
	if err != nil {
		return err
	}
	files = append(files, filepath.Join(eso, esoCRDDir, "external-secrets.io_clusterexternalsecrets.yaml"),
		filepath.Join(eso, esoCRDDir, "external-secrets.io_clusterpushsecrets.yaml"))
	_, err = envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: files, ErrorIfPathMissing: true})
	return err
}

func writeKubeconfig(user *envtest.AuthenticatedUser, path string) error {
	data, err := user.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// installChart installs charts/tenant-operator with the helm CLI (make component-helm),
// its webhook pointed at the operator running outside the cluster.
func (s *Stack) installChart() error {
	helm, err := ComponentBinary("helm")
	if err != nil {
		return err
	}
	home := filepath.Join(s.opts.Dir, "helm")
	cmd := exec.Command(helm, "install", "tenant-operator", filepath.Join(RepoRoot(), "charts", "tenant-operator"),
		"--kubeconfig", s.AdminKubeconfig, "--namespace", OperatorNamespace, "--create-namespace",
		"--set", "webhook.url=https://"+s.webhookAddr)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("helm install: %v: %s", err, out)
	}
	return nil
}
