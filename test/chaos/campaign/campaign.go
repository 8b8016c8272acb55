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
	"github.com/tenantctl/tenant-operator/test/chaos/faultproxy"
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
	// Outage is how long a dependency stays away in the dependencies class, and Outages how many
	// rounds that class has (each dependency in turn).
	Outage  time.Duration
	Outages int
	// Previous is the operator binary of the commit before, and UpgradeTenants the tenants it
	// runs before the upgrade class replaces it with this commit's.
	Previous       string
	UpgradeTenants int
	// Proxy stands between the operator and the API server (faultproxy); the api class needs it.
	Proxy *faultproxy.Proxy
	// Rounds sets the rounds of a class by name, instead of Faults (or Outages).
	Rounds map[string]int
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// quiet is how long the platform is watched, idle, after a class's script: an operator that keeps
// sending requests once everything has converged is in a hot loop.
const quiet = 10 * time.Second

// hotLoop is how many requests in the quiet window count as a hot loop (informers' watch renewals
// and a timed requeue may fall inside it; a hot loop sends hundreds).
const hotLoop = 20

// Result is what one fault class found.
type Result struct {
	Class                    string
	Faults, Tenants, Objects int
	// MidWork counts the faults that struck while the operator still had work to do.
	MidWork                   int
	Orphans, Duplicates, Lost int
	Recovery                  []time.Duration
	// Calm is how long each round of the undisturbed run took to converge after its actions: what
	// the platform takes anyway (a new tenant's secrets, a namespace's deletion), without a fault.
	Calm []time.Duration
	// Injected is how many requests the proxy answered with a fault; PeakRate the most requests a
	// second the operator sent during one fault; Idle how many it sent in the quiet window after.
	Injected int64
	PeakRate float64
	Idle     int64
	Problems []string
	Elapsed  time.Duration
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

// Classes are the fault classes by name.
var Classes = map[string]func(context.Context, Options) Result{
	"crash":        Crash,
	"api":          API,
	"dependencies": Dependencies,
	"stray":        Stray,
	"leader":       Leader,
	"upgrade":      Upgrade,
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

// API is fault class 2: the API server, through the proxy, answering half the operator's requests
// with one fault in each round, cycling through 500s, 429s with Retry-After, 409 conflicts,
// requests held and timed out, watches cut mid-stream and lists missing half their items, for one
// to three seconds while tenants are created, edited and deleted.
func API(ctx context.Context, o Options) Result {
	r := rand.New(rand.NewSource(o.Seed))
	round := 0
	var peak float64
	res := run(ctx, o, "api", func(ctx context.Context, settled func() bool) (time.Time, bool, error) {
		f := faultproxy.Faults[round%len(faultproxy.Faults)]
		round++
		window := time.Second + time.Duration(r.Int63n(int64(2*time.Second)))
		before := o.Proxy.Requests()
		o.Proxy.Set(f, 0.5)
		time.Sleep(window) // how long the fault lasts, not a wait for anything
		busy := !settled()
		o.Proxy.Set(faultproxy.None, 0)
		if rate := float64(o.Proxy.Requests()-before) / window.Seconds(); rate > peak {
			peak = rate
		}
		return time.Now(), busy, nil
	})
	res.PeakRate = peak
	res.Injected = o.Proxy.Injected()
	return res
}

// phase sets a class's platform up before its script runs under faults, and back after.
type phase struct{ before, after func(context.Context) error }

// run plays the class's script undisturbed and then under its faults (inject in every round, and
// whatever around sets up), and compares.
func run(ctx context.Context, o Options, class string, inject fault, around ...phase) Result {
	if n, ok := o.Rounds[class]; ok {
		o.Faults = n
	}
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
	calmTimes, _, err := calm.play(ctx, nil)
	if err != nil {
		res.Problems = append(res.Problems, "undisturbed: "+err.Error())
		return res
	}
	res.Calm = calmTimes
	want, err := snapshot(ctx, c, o.Stack.Vault, calm.prefix)
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
		return res
	}
	o.Logf("%s: the script under %d faults", class, o.Faults)
	for _, p := range around {
		if err := p.before(ctx); err != nil {
			res.Problems = append(res.Problems, "setting up: "+err.Error())
			return res
		}
		defer func() {
			if err := p.after(context.Background()); err != nil {
				res.Problems = append(res.Problems, "setting back: "+err.Error())
			}
		}()
	}
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

	if o.Proxy != nil {
		before := o.Proxy.Requests()
		time.Sleep(quiet) // the window the requests are counted in, not a wait for anything
		res.Idle = o.Proxy.Requests() - before
		if res.Idle > hotLoop {
			res.Problems = append(res.Problems, fmt.Sprintf("under faults: %d requests in %s once every tenant had converged: a hot loop", res.Idle, quiet))
		}
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
	b.WriteString("| fault class | faults | of them mid-work | requests failed | tenants | objects compared | orphans | duplicates | data lost | recovery p50 | recovery max | undisturbed round max | peak requests/s | requests idle 10 s after | took |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		calm := Result{Recovery: r.Calm}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s | %.0f | %d | %s |\n", r.Class, r.Faults, r.MidWork, r.Injected, r.Tenants, r.Objects,
			r.Orphans, r.Duplicates, r.Lost, r.Percentile(50).Round(10*time.Millisecond), r.Percentile(100).Round(10*time.Millisecond),
			calm.Percentile(100).Round(10*time.Millisecond), r.PeakRate, r.Idle, r.Elapsed.Round(time.Second))
	}
	return b.String()
}
