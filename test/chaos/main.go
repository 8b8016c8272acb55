// Command chaos runs the fault campaign (docs/reliability.md) at full size: `make chaos`. It
// builds the operator from main.go, starts a local platform with every component real (the control
// plane with kube-controller-manager's namespace and garbage-collector controllers, Vault, ESO, the
// operator binary), runs each fault class, prints one line per class and exits non-zero if any
// class found a problem. The e2e suite runs a smaller campaign (main_test.go).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tenantctl/tenant-operator/internal/test/testenv"
	"github.com/tenantctl/tenant-operator/test/chaos/campaign"
	"github.com/tenantctl/tenant-operator/test/chaos/faultproxy"
)

func main() {
	faults := flag.Int("faults", 200, "faults per class (rounds of the script)")
	tenants := flag.Int("tenants", 12, "tenants in the script")
	seed := flag.Int64("seed", time.Now().UnixNano(), "seed of the script and the fault timings")
	maxDelay := flag.Duration("max-delay", 500*time.Millisecond, "faults strike at a random moment up to this long after a round's actions")
	outage := flag.Duration("outage", 30*time.Second, "how long each dependency stays away")
	outages := flag.Int("outages", 10, "rounds of the dependencies class (five dependencies in turn)")
	classes := flag.String("classes", "crash,api,dependencies,stray,leader,upgrade", "the fault classes to run, in order")
	upgradeFrom := flag.String("upgrade-from", "HEAD~1", "the commit whose operator the upgrade class starts from")
	upgradeTenants := flag.Int("upgrade-tenants", 100, "tenants in place during the upgrade")
	rounds := flag.String("rounds", "api=60,stray=50", "rounds of some classes instead of -faults or -outages (api: ten of each API fault; stray: one stray throughout)")
	keep := flag.Bool("keep", false, "keep the logs of the components even when every class passes")
	flag.Parse()
	perClass := map[string]int{}
	for _, kv := range strings.Split(*rounds, ",") {
		if name, n, ok := strings.Cut(kv, "="); ok {
			v, err := strconv.Atoi(n)
			if err != nil {
				fmt.Fprintln(os.Stderr, "chaos: -rounds:", err)
				os.Exit(2)
			}
			perClass[name] = v
		}
	}
	// Interrupted (Ctrl-C, SIGTERM), the campaign stops and every component it started goes with it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := runCampaign(ctx, strings.Split(*classes, ","), *upgradeFrom, campaign.Options{Seed: *seed, Tenants: *tenants, Faults: *faults, MaxDelay: *maxDelay, Outage: *outage, Outages: *outages, UpgradeTenants: *upgradeTenants, Rounds: perClass,
		Logf: func(format string, args ...any) { fmt.Printf("chaos: "+format+"\n", args...) }}, *keep)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// runCampaign starts the platform, runs every fault class with o, and prints the report.
func runCampaign(ctx context.Context, classes []string, upgradeFrom string, o campaign.Options, keep bool) (ok bool, err error) {
	ctrllog.SetLogger(logr.Discard()) // the campaign's clients log nothing; the components log to files
	dir, err := os.MkdirTemp("", "tenant-operator-chaos-")
	if err != nil {
		return false, err
	}
	stack, proxy, err := startStack(ctx, dir)
	if err != nil {
		return false, fmt.Errorf("%w (logs in %s)", err, dir)
	}
	defer func() {
		stack.Stop()
		proxy.Stop()
		if ok && !keep {
			err = os.RemoveAll(dir)
		} else {
			o.Logf("logs of the operator, ESO, Vault and kube-controller-manager are kept in %s", dir)
		}
	}()
	o.Stack, o.Proxy = stack, proxy
	for _, c := range classes {
		if c == "upgrade" {
			if o.Previous, err = buildAt(ctx, upgradeFrom, dir); err != nil {
				return false, err
			}
		}
	}
	o.Logf("seed %d; logs in %s", o.Seed, dir)
	var results []campaign.Result
	for _, name := range classes {
		class, known := campaign.Classes[name]
		if !known {
			return false, fmt.Errorf("no fault class %q", name)
		}
		r := class(ctx, o)
		results = append(results, r)
		// Each class's line as soon as it is done: a long campaign stopped half-way keeps them.
		o.Logf("%s done:\n%s", name, campaign.Table([]campaign.Result{r}))
	}
	ok = true
	for _, r := range results {
		for _, p := range r.Problems {
			o.Logf("%s: PROBLEM: %s", r.Class, p)
		}
		ok = ok && !r.Failed()
	}
	fmt.Print(campaign.Table(results))
	return ok, nil
}

// buildAt builds the operator of another commit, in a worktree of its own.
func buildAt(ctx context.Context, ref, dir string) (string, error) {
	tree := filepath.Join(dir, "previous-tree")
	bin := filepath.Join(dir, "manager-previous")
	add := exec.CommandContext(ctx, "git", "worktree", "add", "--detach", tree, ref)
	add.Dir = testenv.RepoRoot()
	if out, err := add.CombinedOutput(); err != nil {
		return "", fmt.Errorf("check out %s: %v: %s", ref, err, out)
	}
	defer func() {
		remove := exec.Command("git", "worktree", "remove", "--force", tree)
		remove.Dir = testenv.RepoRoot()
		_ = remove.Run()
	}()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = tree
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the operator of %s: %v: %s", ref, err, out)
	}
	return bin, nil
}

// startStack builds the operator from main.go and starts the platform around it, the operator
// talking to the API server through the fault proxy.
func startStack(ctx context.Context, dir string) (*testenv.Stack, *faultproxy.Proxy, error) {
	manager := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", manager, ".")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("build the operator from main.go: %v: %s", err, out)
	}
	var proxy *faultproxy.Proxy
	stack, err := testenv.StartStack(ctx, testenv.StackOptions{
		Dir: dir, Manager: manager, ControllerManager: true,
		OperatorConfig: filepath.Join(testenv.RepoRoot(), "config", "dev", "operator-config.yaml"),
		VaultResync:    "5s", StoreRequeue: "5s",
		OperatorAPI: func(operator *rest.Config) (string, error) {
			if proxy == nil {
				var err error
				if proxy, err = faultproxy.Start(operator); err != nil {
					return "", err
				}
			}
			return proxy.URL(), nil
		},
	})
	if err != nil && proxy != nil {
		proxy.Stop()
	}
	return stack, proxy, err
}
