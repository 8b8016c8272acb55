package campaign

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/controllers"
)

// outage is one dependency taken away for Options.Outage and given back.
type outage struct {
	name       string
	down, back func(ctx context.Context) error
}

// Dependencies is fault class 3: in each round one thing the operator depends on goes away for
// Options.Outage, in turn: the API server unreachable (its connections closed, new ones refused),
// kube-apiserver and etcd frozen (SIGSTOP), Vault sealed, the External Secrets Operator stopped,
// the operator itself stopped with its admission webhook still registered. Recovery is measured
// from the moment the dependency is back, and no process is restarted but the one taken away.
// While the operator is down, writes unrelated to tenancy grants must go through (its webhook
// governs only rolebindings.tenancy.tenantctl.io, and that one fails closed).
func Dependencies(ctx context.Context, o Options) Result {
	o.Faults = o.Outages
	r := rand.New(rand.NewSource(o.Seed))
	var extra []string
	admin, err := client.New(o.Stack.Env.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		return Result{Class: "dependencies", Problems: []string{err.Error()}}
	}
	apiserver, etcd, err := o.Stack.Env.ControlPlanePIDs()
	if err != nil {
		return Result{Class: "dependencies", Problems: []string{err.Error()}}
	}
	signal := func(sig syscall.Signal) func(context.Context) error {
		return func(context.Context) error {
			for _, pid := range []int{etcd, apiserver} {
				if err := syscall.Kill(pid, sig); err != nil {
					return err
				}
			}
			return nil
		}
	}
	outages := []outage{
		{"API server unreachable", func(context.Context) error { o.Proxy.Down(); return nil }, func(context.Context) error { return o.Proxy.Up() }},
		{"kube-apiserver and etcd frozen", signal(syscall.SIGSTOP), signal(syscall.SIGCONT)},
		{"Vault sealed", o.Stack.Vault.Seal, o.Stack.Vault.Unseal},
		{"ESO stopped", func(context.Context) error { o.Stack.StopESO(); return nil }, func(context.Context) error { return o.Stack.StartESO() }},
		{"operator stopped, its webhook registered", func(ctx context.Context) error {
			o.Stack.Operator.Stop()
			extra = append(extra, unrelatedWrites(ctx, admin)...)
			return nil
		}, o.Stack.StartOperator},
	}
	round := 0
	res := run(ctx, o, "dependencies", func(ctx context.Context, settled func() bool) (time.Time, bool, error) {
		out := outages[round%len(outages)]
		round++
		time.Sleep(time.Duration(r.Int63n(int64(o.MaxDelay) + 1))) // the moment the fault strikes, not a wait for anything
		busy := !settled()
		if err := out.down(ctx); err != nil {
			return time.Time{}, false, fmt.Errorf("%s: %w", out.name, err)
		}
		time.Sleep(o.Outage) // how long the dependency stays away, not a wait for anything
		if err := out.back(ctx); err != nil {
			return time.Time{}, false, fmt.Errorf("%s, coming back: %w", out.name, err)
		}
		o.Logf("dependencies: %s for %s", out.name, o.Outage)
		return time.Now(), busy, nil
	})
	res.Problems = append(res.Problems, extra...)
	for i, took := range res.Recovery {
		if i < len(res.Calm) && took-res.Calm[i] > recoveryTarget {
			res.Problems = append(res.Problems, fmt.Sprintf("round %d (%s): converged %s after the dependency came back, %s later than undisturbed: over the %s target",
				i, outages[i%len(outages)].name, took.Round(10*time.Millisecond), (took-res.Calm[i]).Round(10*time.Millisecond), recoveryTarget))
		}
	}
	return res
}

// recoveryTarget is how much later than undisturbed a round may converge once its dependency is
// back. The round's own work (a new tenant's Secret, which ESO fills within seconds; a namespace
// the namespace controller empties) takes what it takes anyway: that is the undisturbed run's time
// for the same round, and only the delay beyond it is the outage's.
const recoveryTarget = 15 * time.Second

// unrelatedWrites checks, with the operator down, that writes its admission webhook does not
// govern go through (a ConfigMap, a Kubernetes RoleBinding) and that a tenancy grant is refused
// rather than admitted unchecked. It returns what went wrong.
func unrelatedWrites(ctx context.Context, c client.Client) []string {
	var problems []string
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", GenerateName: "chaos-"}, Data: map[string]string{"k": "v"}}
	if err := c.Create(ctx, cm); err != nil {
		problems = append(problems, "with the operator down, a ConfigMap write failed: "+err.Error())
	} else {
		_ = c.Delete(ctx, cm)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "default", GenerateName: "chaos-"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "someone"}}}
	if err := c.Create(ctx, rb); err != nil {
		problems = append(problems, "with the operator down, a Kubernetes RoleBinding write failed: "+err.Error())
	} else {
		_ = c.Delete(ctx, rb)
	}
	grant := &tenancyv1alpha1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "default", GenerateName: "chaos-"},
		Spec: tenancyv1alpha1.RoleBindingSpec{Role: "viewer", Subjects: []tenancyv1alpha1.Subject{{Kind: "User", Name: "oidc:someone@example.com"}}}}
	switch err := c.Create(ctx, grant); {
	case err == nil:
		_ = c.Delete(ctx, grant)
		problems = append(problems, "with the operator down, a tenancy grant was admitted without its webhook")
	case !strings.Contains(err.Error(), "rolebindings.tenancy.tenantctl.io"):
		problems = append(problems, "with the operator down, a tenancy grant was refused, but not by its webhook: "+err.Error())
	}
	return problems
}
