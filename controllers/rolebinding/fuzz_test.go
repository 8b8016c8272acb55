package rolebinding_test

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// The alphabets a fuzzed requester's rules are drawn from: the verbs, resources and groups the
// tenant roles use, the wildcards, and the RBAC verbs that matter to escalation.
var (
	fuzzVerbs     = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "*", "bind", "escalate", "impersonate"}
	fuzzResources = []string{"pods", "deployments", "secrets", "configmaps", "services", "*", "rolebindings", "roles", "jobs", "pods/log", "pods/exec", "events", "persistentvolumeclaims", "serviceaccounts", "networkpolicies", "clusterroles"}
	fuzzGroups    = []string{"", "apps", "batch", "rbac.authorization.k8s.io", "*", "networking.k8s.io", "policy", "tenancy.tenantctl.io"}
	fuzzRoles     = []string{"viewer", "developer", "admin"}
	fuzzClusterRl = map[string]string{"viewer": "tenant-viewer", "developer": "tenant-developer", "admin": "tenant-admin"}
)

func pick(alphabet []string, mask uint32) []string {
	var out []string
	for i, s := range alphabet {
		if mask&(1<<i) != 0 {
			out = append(out, s)
		}
	}
	return out
}

// fuzzedRules reads a requester's rules from data: five bytes a rule (verbs, resources, groups),
// at most four rules. A rule with no verb, resource or group is left out, as RBAC would never
// match it.
func fuzzedRules(data []byte) []rbacv1.PolicyRule {
	var rules []rbacv1.PolicyRule
	for len(data) >= 5 && len(rules) < 4 {
		r := rbacv1.PolicyRule{
			Verbs:     pick(fuzzVerbs, uint32(data[0])|uint32(data[1]&0x0f)<<8),
			Resources: pick(fuzzResources, uint32(data[2])|uint32(data[3])<<8),
			APIGroups: pick(fuzzGroups, uint32(data[4])),
		}
		data = data[5:]
		if len(r.Verbs) > 0 && len(r.Resources) > 0 && len(r.APIGroups) > 0 {
			rules = append(rules, r)
		}
	}
	return rules
}

// FuzzGrantAgreesWithTheAPIServer holds the grant webhook to kube-apiserver's own escalation rule
// over requesters holding arbitrary rules (from a Role or a ClusterRole, bound to them or to a
// group of theirs): whatever the rules, the operator admits a grant of a tenant role exactly when
// the apiserver admits the equivalent native RoleBinding for the same requester. An admission the
// apiserver refuses fails at once; a refusal the apiserver admits fails once the RBAC caches have
// had 10 seconds to settle.
//
// The first byte of data picks the role granted (its two low bits, modulo 3) and how the rules are held
// (bit 2: through a ClusterRole; bit 3: bound to a group); the rest are the rules (fuzzedRules).
func FuzzGrantAgreesWithTheAPIServer(f *testing.F) {
	// Seeds the differential test knows: nothing held; a developer's rules; everything; "bind" on
	// the role only; a wildcard verb on a wildcard group.
	f.Add([]byte{1})
	f.Add([]byte{1, 0xff, 0x00, 0x3f, 0x00, 0x07})
	f.Add([]byte{2 | 4, 0xff, 0x0f, 0xff, 0xff, 0xff})
	f.Add([]byte{2 | 8, 0x00, 0x02, 0x00, 0x80, 0x08})
	f.Add([]byte{0, 0x07, 0x00, 0xff, 0xff, 0x10})
	ctx := context.Background()
	decided, allowed := 0, 0
	f.Cleanup(func() {
		if fuzzing := flag.Lookup("test.fuzz"); (fuzzing == nil || fuzzing.Value.String() == "") && !f.Failed() && (allowed == 0 || allowed == decided) {
			f.Errorf("the seeds were decided %d times and allowed %d: they need both outcomes", decided, allowed)
		}
	})
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		n++
		role := fuzzRoles[int(data[0]&3)%len(fuzzRoles)]
		viaClusterRole, viaGroup := data[0]&4 != 0, data[0]&8 != 0
		rules := fuzzedRules(data[1:])
		requester := fmt.Sprintf("acme:fuzz-%d-%d", time.Now().UnixNano(), n)
		group := requester + "-group"
		name := fmt.Sprintf("fuzz-%d-%d", time.Now().UnixNano(), n)

		granter(t, acmeNS, requester, name+"-granter")
		subject := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: requester}
		if viaGroup {
			subject = rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: group}
		}
		var held []client.Object
		if len(rules) > 0 {
			if viaClusterRole {
				held = []client.Object{
					&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules},
					&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
						RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}, Subjects: []rbacv1.Subject{subject}},
				}
			} else {
				held = []client.Object{
					&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: acmeNS, Name: name}, Rules: rules},
					&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: acmeNS, Name: name},
						RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}, Subjects: []rbacv1.Subject{subject}},
				}
			}
		}
		defer func() {
			for _, obj := range held {
				_ = admin.Delete(ctx, obj)
			}
			_ = admin.Delete(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: acmeNS, Name: name + "-granter"}})
			_ = admin.Delete(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: acmeNS, Name: name + "-granter"}})
		}()
		for _, obj := range held {
			if err := admin.Create(ctx, obj); err != nil {
				t.Fatal(err)
			}
		}

		c := as(t, requester, group)
		native := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: acmeNS, Name: "fuzz"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: fuzzClusterRl[role]},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "acme:target"}},
		}
		tenancy := grant(acmeNS, "fuzz", role, time.Hour, user("acme:target"))
		var apiserver, operator bool
		testenv.Eventually(t, 10*time.Second, func() error {
			a := decide(c.Create(ctx, native.DeepCopy(), client.DryRunAll))
			b := decide(c.Create(ctx, native.DeepCopy(), client.DryRunAll))
			if a != b {
				return fmt.Errorf("the apiserver's answer is still changing")
			}
			apiserver = a
			operator = decide(c.Create(ctx, tenancy.DeepCopy(), client.DryRunAll))
			if operator && !apiserver {
				t.Fatalf("LOOSER: the operator admits a grant of %s the apiserver refuses as a native RoleBinding; the requester holds %+v (ClusterRole %v, via a group %v)",
					role, rules, viaClusterRole, viaGroup)
			}
			if operator != apiserver {
				return fmt.Errorf("STRICTER: the operator refuses a grant of %s the apiserver admits as a native RoleBinding; the requester holds %+v (ClusterRole %v, via a group %v)",
					role, rules, viaClusterRole, viaGroup)
			}
			return nil
		})
		decided++
		if apiserver {
			allowed++
		}
	})
}
