// Package testenv starts a real kube-apiserver and etcd (controller-runtime's envtest) with every CRD
// the operator works with installed (its own, CloudNativePG's, the Barman Cloud plugin's and External
// Secrets Operator's), the tenant roles and the admission policies. It is the one way tests get a
// control plane.
//
// The binaries come from KUBEBUILDER_ASSETS, or else from the per-user cache that `make components`
// (hack/components.sh) fills by building them from source through the Go module proxy. Nothing here
// builds a component.
// Third-party CRDs load from the Go module cache at the versions pinned here and in go.mod; nothing
// is copied into the repository.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Third-party modules whose CRDs the operator uses, and where in each module they are.
const (
	CNPGModule         = "github.com/cloudnative-pg/cloudnative-pg"
	CNPGVersion        = "v1.30.0"
	BarmanModule       = "github.com/cloudnative-pg/plugin-barman-cloud"
	BarmanVersion      = "v0.13.0"
	ESOModule          = "github.com/external-secrets/external-secrets"
	ESOVersion         = "v0.20.4"
	cnpgCRDDir         = "config/crd/bases"
	barmanCRDDir       = "config/crd/bases"
	esoCRDDir          = "config/crds/bases"
	controlPlaneTimout = 60 * time.Second
)

// esoCRDs are the External Secrets Operator CRDs the operator uses; its generators are left out.
var esoCRDs = []string{
	"external-secrets.io_externalsecrets.yaml",
	"external-secrets.io_secretstores.yaml",
	"external-secrets.io_clustersecretstores.yaml",
	"external-secrets.io_pushsecrets.yaml",
}

// RepoRoot is the root of this repository (the directory holding go.mod): the nearest directory
// above this file that holds one, so moving this package does not silently point it elsewhere.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	for dir := filepath.Dir(file); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if dir == filepath.Dir(dir) {
			panic("testenv: no go.mod above " + file)
		}
	}
}

// Assets returns the directory holding kube-apiserver, etcd and kubectl: KUBEBUILDER_ASSETS, or
// else the binaries `make components` built. It never builds: a missing binary is an error that
// names the make target providing it.
func Assets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	return componentPath("envtest")
}

// ComponentBinary returns the path of a component built by `make components` (hack/components.sh):
// vault, eso, helm, cnpg. It never builds: a missing component is an error that names the make
// target providing it, so a test fails at once rather than building for minutes inside go test.
func ComponentBinary(name string) (string, error) { return componentPath(name) }

func componentPath(name string) (string, error) {
	cmd := exec.Command(filepath.Join(RepoRoot(), "hack", "components.sh"), "path", name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s (%w)", strings.TrimSpace(stderr.String()), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// ModuleDir returns the module cache directory of module@version, downloading it through the module
// proxy when needed. It runs outside this module so that go.mod and go.sum are never touched.
func ModuleDir(module, version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w: %s", module, version, err, stderr.String())
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", module, version, err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", module, version, info.Error)
	}
	return info.Dir, nil
}

// CRDPaths lists every CRD file or directory the operator needs installed: its own and the
// third-party ones, at the pinned versions.
func CRDPaths() ([]string, error) {
	paths := []string{filepath.Join(RepoRoot(), "config", "crd", "bases")}
	cnpg, err := ModuleDir(CNPGModule, CNPGVersion)
	if err != nil {
		return nil, err
	}
	barman, err := ModuleDir(BarmanModule, BarmanVersion)
	if err != nil {
		return nil, err
	}
	eso, err := ModuleDir(ESOModule, ESOVersion)
	if err != nil {
		return nil, err
	}
	paths = append(paths, filepath.Join(cnpg, cnpgCRDDir), filepath.Join(barman, barmanCRDDir))
	for _, f := range esoCRDs {
		paths = append(paths, filepath.Join(eso, esoCRDDir, f))
	}
	return paths, nil
}

// Environment is a running control plane.
type Environment struct {
	*envtest.Environment
	// Config reaches the apiserver as a cluster admin.
	Config *rest.Config
}

// Start starts kube-apiserver and etcd with every CRD installed, and waits until they are served.
func Start() (*Environment, error) { return start(false, true, nil) }

// StartForChart starts a control plane with only the third-party CRDs (CloudNativePG, Barman
// Cloud, External Secrets Operator): the operator's own CRDs, roles, admission policies and
// webhook are for the chart to install.
func StartForChart() (*Environment, error) { return start(false, false, nil) }

// StartForChartWith is StartForChart with the control plane configured before it starts (for
// example kube-apiserver flags: env.ControlPlane.GetAPIServer().Configure()).
func StartForChartWith(configure func(*envtest.Environment)) (*Environment, error) {
	return start(false, false, configure)
}

// StartWithWebhooks is Start plus the operator's ValidatingWebhookConfiguration (config/webhook),
// pointed at a local webhook server: serve it on WebhookInstallOptions' LocalServingHost,
// LocalServingPort and LocalServingCertDir. It fails closed, so creating a tenancy RoleBinding
// needs the operator's webhook running.
func StartWithWebhooks() (*Environment, error) { return start(true, true, nil) }

func start(webhooks, platform bool, configure func(*envtest.Environment)) (*Environment, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	crds, err := CRDPaths()
	if err != nil {
		return nil, err
	}
	if !platform {
		crds = crds[1:] // CRDPaths lists the operator's own CRDs first
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        crds,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: controlPlaneTimout,
		ControlPlaneStopTimeout:  controlPlaneTimout,
	}
	if webhooks {
		env.WebhookInstallOptions = envtest.WebhookInstallOptions{Paths: []string{filepath.Join(RepoRoot(), "config", "webhook", "manifests.yaml")}}
	}
	if configure != nil {
		configure(env)
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop() // envtest may have started etcd and the apiserver before failing
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	c, err := client.New(cfg, client.Options{})
	if err == nil && platform {
		err = ApplyFiles(context.Background(), c, PlatformManifests()...)
	}
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("install the tenant roles and admission policies: %w", err)
	}
	return &Environment{Environment: env, Config: cfg}, nil
}

// ControlPlanePIDs finds this control plane's kube-apiserver and etcd processes (by the etcd
// address both are given), for faults that freeze them.
func (e *Environment) ControlPlanePIDs() (apiserver, etcd int, err error) {
	url := e.ControlPlane.Etcd.URL.String()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, err
	}
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(cmdline), "\x00") {
			switch arg {
			case "--etcd-servers=" + url:
				apiserver = pid
			case "--listen-client-urls=" + url:
				etcd = pid
			}
		}
	}
	if apiserver == 0 || etcd == 0 {
		return 0, 0, fmt.Errorf("the control plane's processes (etcd at %s): kube-apiserver %d, etcd %d", url, apiserver, etcd)
	}
	return apiserver, etcd, nil
}
