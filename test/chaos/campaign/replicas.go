package campaign

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// leaderElected are the flags of a replica that competes for the Lease, as the chart runs them.
var leaderElected = []string{"--leader-elect=true", "--leader-election-namespace=" + testenv.OperatorNamespace, "--zap-log-level=1"}

// Stray is fault class 4a: a second operator started beside the first without leader election, by
// mistake, for the whole script. Both reconcile every tenant; the end state must be the undisturbed
// one, and once it is reached neither may keep rewriting what the other wrote (the quiet window).
func Stray(ctx context.Context, o Options) Result {
	var stray *testenv.Replica
	res := run(ctx, o, "stray", nil, phase{
		before: func(ctx context.Context) error {
			var err error
			stray, err = o.Stack.StartReplica(ctx, "stray", "", []string{"--leader-elect=false", "--zap-log-level=1"})
			return err
		},
		after: func(context.Context) error { stray.Stop(); return nil },
	})
	res.Faults = 1 // one stray, for the whole script
	return res
}

// Leader is fault classes 4b and 5: two replicas with leader election, as the chart runs them; in
// each round the leader is, in turn, killed with SIGKILL (and started again as a follower), or
// frozen with SIGSTOP for longer than its lease, so that the other takes over while the old leader
// is mid-reconcile, and then thawed: it must find it lost the lease and stop (it is then started
// again), never write beside the new leader. Recovery, from the kill or the freeze, is the time
// until the new leader has reconciled the round's changes.
func Leader(ctx context.Context, o Options) Result {
	o.Faults = o.Outages // each round lasts a lease or more
	replicas := map[string]*testenv.Replica{}
	start := func(ctx context.Context, name string) error {
		r, err := o.Stack.StartReplica(ctx, name, "", leaderElected)
		replicas[name] = r
		return err
	}
	round := 0
	var problems []string
	res := run(ctx, o, "leader", func(ctx context.Context, settled func() bool) (time.Time, bool, error) {
		kill := round%2 == 0
		round++
		name, err := leader(ctx, replicas)
		if err != nil {
			return time.Time{}, false, err
		}
		busy := !settled()
		struck := time.Now()
		if kill {
			replicas[name].Kill()
			return struck, busy, start(ctx, name)
		}
		if err := replicas[name].Signal(syscall.SIGSTOP); err != nil {
			return time.Time{}, false, err
		}
		// Frozen past its lease; meanwhile the other replica takes over, and the recovery is when it
		// has reconciled the round, found by polling.
		var converged time.Time
		for thaw := struck.Add(leaseDuration + 5*time.Second); time.Now().Before(thaw); time.Sleep(250 * time.Millisecond) {
			if converged.IsZero() && settled() {
				converged = time.Now()
			}
		}
		if err := replicas[name].Signal(syscall.SIGCONT); err != nil {
			return time.Time{}, false, err
		}
		// Thawed, it must notice it lost the lease and exit; until then it may not have written.
		deadline := time.Now().Add(leaseDuration + 15*time.Second)
		for replicas[name].Running() && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond) // polling the process, with a deadline
		}
		if replicas[name].Running() {
			problems = append(problems, fmt.Sprintf("round %d: the old leader %s still runs %s after it was thawed, its lease long taken", round-1, name, leaseDuration+15*time.Second))
			replicas[name].Kill()
		}
		if !converged.IsZero() {
			// The round converged during the freeze: report that recovery, not the freeze's length.
			struck = time.Now().Add(-converged.Sub(struck))
		}
		return struck, busy, start(ctx, name)
	}, phase{
		before: func(ctx context.Context) error {
			o.Stack.Operator.Stop()
			for _, name := range []string{"replica-a", "replica-b"} {
				if err := start(ctx, name); err != nil {
					return err
				}
			}
			return nil
		},
		after: func(ctx context.Context) error {
			for _, r := range replicas {
				r.Stop()
			}
			return o.Stack.StartOperator(ctx)
		},
	})
	res.Problems = append(res.Problems, problems...)
	return res
}

// leaseDuration is controller-runtime's default, which the operator keeps.
const leaseDuration = 15 * time.Second

// leader finds the replica that holds the Lease, from each replica's leader_election_master_status
// metric, waiting up to a lease and a half for one to take it.
func leader(ctx context.Context, replicas map[string]*testenv.Replica) (string, error) {
	deadline := time.Now().Add(leaseDuration * 3 / 2)
	for {
		var leaders []string
		for name, r := range replicas {
			if r.Running() && isLeader(ctx, r.Metrics) {
				leaders = append(leaders, name)
			}
		}
		switch {
		case len(leaders) == 1:
			return leaders[0], nil
		case len(leaders) > 1:
			return "", fmt.Errorf("two leaders at once: %v", leaders)
		case time.Now().After(deadline):
			return "", fmt.Errorf("no replica holds the lease %s after %s", controllers.DefaultLeaderElectionID, leaseDuration*3/2)
		}
		time.Sleep(200 * time.Millisecond) // polling the replicas, with a deadline
	}
}

func isLeader(ctx context.Context, metrics string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metrics+"/metrics", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "leader_election_master_status{") && strings.HasSuffix(line, " 1") {
			return true
		}
	}
	return false
}
