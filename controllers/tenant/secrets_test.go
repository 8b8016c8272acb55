package tenant

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/externalsecrets"
)

func esoReady(status metav1.ConditionStatus, reason, message string) externalsecrets.Status {
	return externalsecrets.Status{Conditions: []externalsecrets.Condition{{Type: "Ready", Status: status, Reason: reason, Message: message}}}
}

func TestSecretsOutcomeMirrorsExternalSecretsOperator(t *testing.T) {
	store := esoObject{kind: "SecretStore", name: "vault", status: esoReady(metav1.ConditionTrue, "Valid", "store validated")}
	synced := esoObject{kind: "ExternalSecret", name: "stripe", status: esoReady(metav1.ConditionTrue, "SecretSynced", "secret synced")}
	cases := map[string]struct {
		objs        []esoObject
		wantStatus  metav1.ConditionStatus
		wantReason  string
		wantMessage string // fragment
	}{
		"everything synced": {
			objs:       []esoObject{store, synced},
			wantStatus: metav1.ConditionTrue, wantReason: "Ready", wantMessage: "2 stores and secrets are synced",
		},
		"not yet seen by ESO": {
			objs:       []esoObject{store, {kind: "ExternalSecret", name: "app-config"}},
			wantStatus: metav1.ConditionFalse, wantReason: tenancyv1alpha1.ReasonWaitingForExternalSecrets, wantMessage: "ExternalSecret app-config: not reported",
		},
		"a store Vault refuses": {
			objs: []esoObject{{kind: "SecretStore", name: "vault", status: esoReady(metav1.ConditionFalse, "InvalidProviderConfig",
				"unable to log in to auth method: permission denied")}, synced},
			wantStatus: metav1.ConditionFalse, wantReason: tenancyv1alpha1.ReasonSecretNotSynced, wantMessage: "SecretStore vault: InvalidProviderConfig: unable to log in",
		},
		"a secret that does not sync names itself and ESO's cause": {
			objs: []esoObject{store, synced, {kind: "ExternalSecret", name: "app-config",
				status: esoReady(metav1.ConditionFalse, "SecretSyncedError", "could not get secret data from provider")}},
			wantStatus: metav1.ConditionFalse, wantReason: tenancyv1alpha1.ReasonSecretNotSynced,
			wantMessage: "ExternalSecret app-config: SecretSyncedError: could not get secret data from provider",
		},
		"a push that fails": {
			objs: []esoObject{store, {kind: "PushSecret", name: "database-credentials-to-vault",
				status: esoReady(metav1.ConditionFalse, "Errored", "set secret failed: permission denied")}},
			wantStatus: metav1.ConditionFalse, wantReason: tenancyv1alpha1.ReasonSecretNotSynced, wantMessage: "PushSecret database-credentials-to-vault: Errored",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := secretsOutcome(tc.objs)
			if got.status != tc.wantStatus || got.reason != tc.wantReason || !strings.Contains(got.message, tc.wantMessage) {
				t.Errorf("secretsOutcome = %+v, want %s/%s containing %q", got, tc.wantStatus, tc.wantReason, tc.wantMessage)
			}
		})
	}
}
