package rolebinding_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// TestDecidesAsTheAPIServer compares, over a matrix of (requester, role, namespace), the operator's
// admission of a tenancy RoleBinding with kube-apiserver's own decision on the equivalent native
// RoleBinding (a server-side dry run as the same user). Every requester may create both kinds in
// both namespaces and every subject is valid for its tenant, so the only difference left is the
// escalation rule: the operator must admit exactly what the apiserver admits and refuse exactly
// what it refuses. The matrix must hold enough of both outcomes, or a webhook that refuses (or
// admits) everything would agree with it.
func TestDecidesAsTheAPIServer(t *testing.T) {
	ctx := context.Background()
	// Requesters: what each holds in acme besides the right to create both kinds of binding.
	requesters := map[string]func(name string){
		"nothing else": func(string) {},
		"viewer":       func(n string) { nativeBind(t, acmeNS, n, "tenant-viewer") },
		"developer":    func(n string) { nativeBind(t, acmeNS, n, "tenant-developer") },
		"admin":        func(n string) { nativeBind(t, acmeNS, n, "tenant-admin") },
		"viewer+developer": func(n string) {
			nativeBind(t, acmeNS, n, "tenant-viewer")
			nativeBind(t, acmeNS, n, "tenant-developer")
		},
		"bind developer": func(n string) { granter(t, acmeNS, n, "bind-"+n, bindRule("tenant-developer")) },
		"viewer, bind admin": func(n string) {
			nativeBind(t, acmeNS, n, "tenant-viewer")
			granter(t, acmeNS, n, "bind-"+n, bindRule("tenant-admin"))
		},
		"developer in globex only": func(n string) {
			nativeBind(t, globexNS, n, "tenant-developer")
		},
	}
	names := map[string]string{}
	i := 0
	for what, setUp := range requesters {
		i++
		n := fmt.Sprintf("acme:requester-%d", i)
		names[what] = n
		granter(t, acmeNS, n, fmt.Sprintf("granter-%d", i))
		granter(t, globexNS, n, fmt.Sprintf("granter-%d", i)) // may create bindings in globex too
		setUp(n)
	}
	roles := map[string]string{"viewer": "tenant-viewer", "developer": "tenant-developer", "admin": "tenant-admin"}
	type outcome struct{ operator, apiserver bool }
	results := map[string]outcome{}
	for what, n := range names {
		c := as(t, n)
		for role, clusterRole := range roles {
			for _, namespace := range []string{acmeNS, globexNS} {
				key := fmt.Sprintf("%s grants %s in %s", what, role, namespace)
				subject := "acme:target"
				if namespace == globexNS {
					subject = "globex:target"
				}
				native := &rbacv1.RoleBinding{
					ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "differential"},
					RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
					Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: subject}},
				}
				tenancy := grant(namespace, "differential", role, time.Hour, user(subject))
				// RBAC caches settle quickly but not instantly after the set-up above: decide once
				// the apiserver's answer is stable across two asks.
				var o outcome
				testenv.Eventually(t, wait, func() error {
					a := decide(c.Create(ctx, native.DeepCopy(), client.DryRunAll))
					b := decide(c.Create(ctx, native.DeepCopy(), client.DryRunAll))
					if a != b {
						return fmt.Errorf("%s: the apiserver's answer is still changing", key)
					}
					o = outcome{operator: decide(c.Create(ctx, tenancy.DeepCopy(), client.DryRunAll)), apiserver: a}
					return nil
				})
				results[key] = o
			}
		}
	}
	if len(results) != len(requesters)*len(roles)*2 {
		t.Fatalf("only %d cases decided", len(results))
	}
	allowed, refused := 0, 0
	for key, o := range results {
		switch {
		case o.operator && !o.apiserver:
			t.Errorf("LOOSER: %s: the operator admits it, the apiserver refuses the native RoleBinding", key)
		case !o.operator && o.apiserver:
			t.Errorf("STRICTER: %s: the operator refuses it, the apiserver allows the native RoleBinding", key)
		}
		if o.apiserver {
			allowed++
		} else {
			refused++
		}
	}
	t.Logf("%d cases: the apiserver allows %d and refuses %d", len(results), allowed, refused)
	// Each count is well above this today (see the log); a matrix edit that drops one outcome
	// would leave the comparison unable to tell an all-refusing or all-admitting webhook apart.
	const atLeast = 10
	if allowed < atLeast || refused < atLeast {
		t.Errorf("the matrix has %d allowed and %d refused cases; it needs at least %d of each", allowed, refused, atLeast)
	}
}

func bindRule(clusterRole string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"},
		Verbs: []string{"bind"}, ResourceNames: []string{clusterRole}}
}

// decide says whether a dry-run create was admitted; any error other than a refusal fails loudly.
func decide(err error) bool {
	switch {
	case err == nil:
		return true
	case apierrors.IsForbidden(err), apierrors.IsInvalid(err):
		return false
	default:
		panic(fmt.Sprintf("unexpected error from a dry-run create: %v", err))
	}
}
