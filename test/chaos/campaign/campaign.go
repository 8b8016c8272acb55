package campaign

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// Options size a campaign.
type Options struct {
	// Stack is the platform, started with its kube-controller-manager (StackOptions.ControllerManager).
	Stack *testenv.Stack
	// Seed makes the script and the fault timings reproducible.
	Seed int64
	// Tenants in the script; Faults is the number of rounds, each with one fault.
	Tenants, Faults int
	// MaxDelay is the longest a fault waits after a round's actions: faults strike at a uniformly
	// random moment within it, while the operator is somewhere in its reconciles.
	MaxDelay time.Duration
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// Result is what one fault class found.
type Result struct {
	Class                    string
	Faults, Tenants, Objects int
	// MidWork counts the faults that struck while the operator still had work to do.
	MidWork                   int
	Orphans, Duplicates, Lost int
	Recovery                  []time.Duration
	Problems                  []string
	Elapsed                   time.Duration
}

// Failed says whether the class found anything wrong.
func (r Result) Failed() bool { return len(r.Problems) > 0 }

// Percentile is the p-th percentile (0..100) of the recovery times.
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Recovery) == 0 {
		return 0
	}
	d := append([]time.Duration(nil), r.Recovery...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(p/100*float64(len(d)-1)+0.5)]
}

// Crash is fault class 1: the operator killed with SIGKILL at a random moment of every round, while
// tenants are created, edited and deleted under both deletion policies, and started again at once.
func Crash(ctx context.Context, o Options) Result {
	r := rand.New(rand.NewSource(o.Seed))
	return run(ctx, o, "crash", func(ctx context.Context, settled func() bool) (time.Time, bool, error) {
		time.Sleep(time.Duration(r.Int63n(int64(o.MaxDelay) + 1))) // the moment the fault strikes, not a wait for anything
		busy := !settled()
		struck := time.Now()
		return struck, busy, o.Stack.CrashOperator(ctx)
	})
}

// run plays the class's script undisturbed and then under its fault, and compares.
func run(ctx context.Context, o Options, class string, inject fault) Result {
	start := time.Now()
	res := Result{Class: class, Faults: o.Faults}
	c, err := client.New(o.Stack.Env.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
		return res
	}
	sc := newScript(o.Seed, o.Tenants, o.Faults)
	calm := &runner{stack: o.Stack, c: c, logf: o.Logf, script: sc, prefix: class + "-calm", present: map[string]bool{}, policy: map[string]string{}}
	hit := &runner{stack: o.Stack, c: c, logf: o.Logf, script: sc, prefix: class + "-hit", present: map[string]bool{}, policy: map[string]string{}}
	defer func() {
		for _, rn := range []*runner{calm, hit} {
			if err := rn.cleanUp(context.Background()); err != nil {
				res.Problems = append(res.Problems, err.Error())
			}
		}
	}()

	o.Logf("%s: the script undisturbed (%d tenants, %d rounds)", class, o.Tenants, o.Faults)
	if _, _, err := calm.play(ctx, nil); err != nil {
		res.Problems = append(res.Problems, "undisturbed: "+err.Error())
		return res
	}
	want, err := snapshot(ctx, c, o.Stack.Vault, calm.prefix)
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
		return res
	}
	o.Logf("%s: the script under %d faults", class, o.Faults)
	res.Recovery, res.MidWork, err = hit.play(ctx, inject)
	if err != nil {
		res.Problems = append(res.Problems, "under faults: "+err.Error())
		return res
	}
	got, err := snapshot(ctx, c, o.Stack.Vault, hit.prefix)
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
		return res
	}

	cmp := compare(want, got)
	res.Objects = cmp.compared
	res.Tenants = o.Tenants
	for _, run := range []struct {
		name string
		st   state
		rn   *runner
	}{{"undisturbed", want, calm}, {"under faults", got, hit}} {
		dup, orph, lost := invariants(run.st, run.rn.present, run.rn.policy)
		if run.name == "under faults" {
			res.Duplicates, res.Orphans, res.Lost = len(dup), len(orph), len(lost)
		}
		for _, p := range append(append(dup, orph...), lost...) {
			res.Problems = append(res.Problems, run.name+": "+p)
		}
	}
	res.Lost += len(cmp.dataLost)
	res.Duplicates += len(cmp.extra)
	for _, k := range cmp.dataLost {
		res.Problems = append(res.Problems, "lost under faults: "+k)
	}
	for _, k := range cmp.missing {
		res.Problems = append(res.Problems, "missing under faults: "+k)
	}
	for _, k := range cmp.extra {
		res.Problems = append(res.Problems, "only under faults: "+k)
	}
	for _, k := range cmp.diff {
		res.Problems = append(res.Problems, "differs under faults: "+k)
	}
	res.Elapsed = time.Since(start)
	return res
}

// Table is the campaign's report, one line per fault class, as docs/reliability.md shows it.
func Table(results []Result) string {
	var b strings.Builder
	b.WriteString("| fault class | faults | of them mid-work | tenants | objects compared | orphans | duplicates | data lost | recovery p50 | recovery max | took |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s |\n", r.Class, r.Faults, r.MidWork, r.Tenants, r.Objects,
			r.Orphans, r.Duplicates, r.Lost, r.Percentile(50).Round(10*time.Millisecond), r.Percentile(100).Round(10*time.Millisecond),
			r.Elapsed.Round(time.Second))
	}
	return b.String()
}
