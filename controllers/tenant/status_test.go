package tenant

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/reconcileutil"
)

func TestComputeStatus(t *testing.T) {
	now := metav1.Now()
	cases := map[string]struct {
		spec      tenancyv1alpha1.TenantSpec // the Tenant's spec
		deleting  bool                       // the Tenant has a deletion timestamp
		observe   func(s *scope)             // what the phases of the pass observed
		complete  bool                       // whether every phase succeeded
		wantReady metav1.ConditionStatus     // the Ready summary
		wantWhy   string                     // Ready's reason
		wantPhase tenancyv1alpha1.TenantPhase
		wantGen   int64 // observedGeneration after the pass (the Tenant is at generation 3)
	}{
		"first visit: everything Unknown": {
			observe:   func(s *scope) {},
			wantReady: metav1.ConditionUnknown, wantWhy: tenancyv1alpha1.ReasonReconciling,
			wantPhase: tenancyv1alpha1.TenantProvisioning,
		},
		"all areas ready": {
			observe: func(s *scope) {
				s.namespace, s.isolation, s.access = ready("ns"), ready("iso"), ready("rbac")
				s.database = readyWithReason(tenancyv1alpha1.ReasonNotRequested, "none")
				s.secrets = readyWithReason(tenancyv1alpha1.ReasonNotRequested, "none")
			},
			complete:  true,
			wantReady: metav1.ConditionTrue, wantWhy: tenancyv1alpha1.ReasonReady,
			wantPhase: tenancyv1alpha1.TenantReady, wantGen: 3,
		},
		"a database still starting keeps the tenant provisioning": {
			spec: tenancyv1alpha1.TenantSpec{Database: &tenancyv1alpha1.DatabaseSpec{}},
			observe: func(s *scope) {
				s.namespace, s.isolation, s.access = ready("ns"), ready("iso"), ready("rbac")
				s.database = failed(tenancyv1alpha1.ReasonClusterNotReady, "1 of 3 instances ready")
				s.secrets = readyWithReason(tenancyv1alpha1.ReasonNotRequested, "none")
			},
			complete:  true,
			wantReady: metav1.ConditionFalse, wantWhy: tenancyv1alpha1.ReasonNotReady,
			wantPhase: tenancyv1alpha1.TenantProvisioning, wantGen: 3,
		},
		"failing backups degrade the tenant": {
			spec: tenancyv1alpha1.TenantSpec{Database: &tenancyv1alpha1.DatabaseSpec{}},
			observe: func(s *scope) {
				s.namespace, s.isolation, s.access = ready("ns"), ready("iso"), ready("rbac")
				s.database = failed(tenancyv1alpha1.ReasonBackupFailing, "last backup failed")
				s.secrets = readyWithReason(tenancyv1alpha1.ReasonNotRequested, "none")
			},
			complete:  true,
			wantReady: metav1.ConditionFalse, wantWhy: tenancyv1alpha1.ReasonNotReady,
			wantPhase: tenancyv1alpha1.TenantDegraded, wantGen: 3,
		},
		"namespace conflict degrades and dependents wait": {
			observe: func(s *scope) {
				s.namespace = failed(tenancyv1alpha1.ReasonNamespaceConflict, "not ours")
			},
			wantReady: metav1.ConditionFalse, wantWhy: tenancyv1alpha1.ReasonNotReady,
			wantPhase: tenancyv1alpha1.TenantDegraded,
		},
		"a transient failure is provisioning, not degraded": {
			observe: func(s *scope) {
				s.namespace = ready("ns")
				s.isolation = ready("iso")
				s.access = waiting(tenancyv1alpha1.ReasonWaitingForIsolation, "later")
			},
			wantReady: metav1.ConditionFalse, wantWhy: tenancyv1alpha1.ReasonNotReady,
			wantPhase: tenancyv1alpha1.TenantProvisioning,
		},
		"suspended": {
			spec:      tenancyv1alpha1.TenantSpec{Suspend: true},
			observe:   func(s *scope) { s.suspended = true },
			wantReady: metav1.ConditionFalse, wantWhy: tenancyv1alpha1.ReasonSuspended,
			wantPhase: tenancyv1alpha1.TenantSuspended, wantGen: 3,
		},
		"deleting": {
			deleting:  true,
			observe:   func(s *scope) { s.deletion = failed(tenancyv1alpha1.ReasonRetaining, "retaining") },
			wantReady: metav1.ConditionFalse, wantWhy: tenancyv1alpha1.ReasonRetaining,
			wantPhase: tenancyv1alpha1.TenantTerminating,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tnt := &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", Generation: 3}, Spec: tc.spec}
			if tc.deleting {
				tnt.DeletionTimestamp = &now
			}
			s := newScope(tnt)
			tc.observe(s)
			computeStatus(s, tc.complete)
			var ready *metav1.Condition
			for i, c := range tnt.Status.Conditions {
				if c.ObservedGeneration != 3 || c.Reason == "" {
					t.Errorf("condition %s lacks generation or reason: %+v", c.Type, c)
				}
				if c.Type == tenancyv1alpha1.ConditionReady {
					ready = &tnt.Status.Conditions[i]
				}
			}
			if ready == nil || ready.Status != tc.wantReady || ready.Reason != tc.wantWhy {
				t.Errorf("Ready = %+v, want %s/%s", ready, tc.wantReady, tc.wantWhy)
			}
			if tnt.Status.Phase != tc.wantPhase || tnt.Status.ObservedGeneration != tc.wantGen {
				t.Errorf("phase %s, observedGeneration %d; want %s, %d", tnt.Status.Phase, tnt.Status.ObservedGeneration, tc.wantPhase, tc.wantGen)
			}

			// The same observations again change nothing: no status write, no event.
			before := tnt.DeepCopy()
			again := newScope(tnt)
			tc.observe(again)
			computeStatus(again, tc.complete)
			if tr := reconcileutil.Transitions(before.Status.Conditions, tnt.Status.Conditions); len(tr) != 0 {
				t.Errorf("an unchanged pass produced transitions: %+v", tr)
			}
		})
	}
}
