package rolebinding_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// TestAdmissionReadsRBACFromTheCache: once the webhook's RBAC cache has synced, deciding a grant
// that goes through the escalation check (the requester may not bind the ClusterRole, so their
// RBAC is resolved) sends no read of Roles, ClusterRoles or their bindings to the apiserver. The
// only requests an admission sends are SubjectAccessReviews.
func TestAdmissionReadsRBACFromTheCache(t *testing.T) {
	ctx := context.Background()
	const requester = "acme:cache-reader"
	granter(t, acmeNS, requester, "granter-cache-reader")
	nativeBind(t, acmeNS, requester, "tenant-developer")
	c := as(t, requester)
	allowed := grant(acmeNS, "cache-reader", "developer", time.Hour, user("acme:target"))
	refused := grant(acmeNS, "cache-reader", "admin", time.Hour, user("acme:target"))
	// Admitted once the cache has synced and holds the bindings just made.
	testenv.Eventually(t, wait, func() error { return c.Create(ctx, allowed.DeepCopy(), client.DryRunAll) })

	mark := operatorRequests.mark()
	const admissions = 5
	for i := 0; i < admissions; i++ {
		if err := c.Create(ctx, allowed.DeepCopy(), client.DryRunAll); err != nil {
			t.Fatalf("admission %d: %v", i, err)
		}
		expectRefused(t, c.Create(ctx, refused.DeepCopy(), client.DryRunAll), requester+" may not grant admin")
	}
	var rbacReads []string
	reviews := 0
	for _, r := range operatorRequests.since(mark) {
		switch {
		case strings.HasPrefix(r, "GET /apis/"+rbacv1.GroupName+"/") && !strings.Contains(r, "watch=true"):
			rbacReads = append(rbacReads, r)
		case strings.HasPrefix(r, "POST /apis/authorization.k8s.io/v1/subjectaccessreviews"):
			reviews++
		}
	}
	t.Logf("%d admissions: %d RBAC reads, %d SubjectAccessReviews", 2*admissions, len(rbacReads), reviews)
	if len(rbacReads) > 0 {
		t.Errorf("%d admissions read RBAC from the apiserver %d times; want none (the cache answers):\n%s",
			2*admissions, len(rbacReads), strings.Join(rbacReads, "\n"))
	}
	// Each decision asked whether the requester may bind: the log does see the webhook's requests.
	if reviews < 2*admissions {
		t.Errorf("%d SubjectAccessReviews recorded for %d admissions: the request log misses the webhook's requests", reviews, 2*admissions)
	}
}

// TestGrantFollowsClusterRoleBindings: a ClusterRoleBinding made just before a grant decides it
// once the cache has caught up, and its deletion is seen too; the cache is not a stale snapshot.
func TestGrantFollowsClusterRoleBindings(t *testing.T) {
	ctx := context.Background()
	const requester = "acme:cluster-viewer"
	granter(t, acmeNS, requester, "granter-cluster-viewer")
	c := as(t, requester)
	g := grant(acmeNS, "cluster-viewer", "viewer", time.Hour, user("acme:target"))
	refusal := requester + " may not grant viewer"
	refusedByWebhook := func() error {
		err := c.Create(ctx, g.DeepCopy(), client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), refusal) {
			return fmt.Errorf("want the webhook's refusal %q, got %v", refusal, err)
		}
		return nil
	}
	testenv.Eventually(t, wait, refusedByWebhook)

	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "cache-test-cluster-viewer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "tenant-viewer"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: requester}},
	}
	if err := admin.Create(ctx, crb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Delete(context.Background(), crb) })
	testenv.Eventually(t, wait, func() error { return c.Create(ctx, g.DeepCopy(), client.DryRunAll) })

	if err := admin.Delete(ctx, crb); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, refusedByWebhook)
}
