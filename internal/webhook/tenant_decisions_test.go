package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/webhook"
)

// listOnly is the manager's cache as the validator sees it: it lists the given Tenants, and counts
// the reads so that a test can say none was needed.
type listOnly struct {
	tenants []tenancyv1alpha1.Tenant
	reads   int
}

func (r *listOnly) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	r.reads++
	return errors.New("the validator reads Tenants by listing them")
}

func (r *listOnly) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	r.reads++
	list.(*tenancyv1alpha1.TenantList).Items = append([]tenancyv1alpha1.Tenant(nil), r.tenants...)
	return nil
}

// TestTenantValidatorDecisions covers what the Tenant webhook decides, request by request, with a
// stand-in for the manager's cache (the envtest tests below send the same requests through a real
// kube-apiserver).
func TestTenantValidatorDecisions(t *testing.T) {
	c, err := config.Parse([]byte("vault:\n  address: https://vault.platform.svc:8200\n  auth: {method: kubernetes, role: tenant-operator}\n"))
	if err != nil {
		t.Fatal(err)
	}
	existing := []tenancyv1alpha1.Tenant{*vaultTenant("initech", "legacy/initech"), *vaultTenant("globex", "")}
	// squatter names another tenant's place under the prefix: refused by the reconciler, it holds
	// nothing and keeps nobody out.
	squatter := vaultTenant("squatter", "tenants/hooli")
	cases := map[string]struct {
		op        admissionv1.Operation
		object    *tenancyv1alpha1.Tenant // the request's object
		old       *tenancyv1alpha1.Tenant // the request's old object (updates)
		noVault   bool                    // the operator configuration has no Vault
		others    []tenancyv1alpha1.Tenant
		wantAllow bool
		wantMsg   []string // fragments of the refusal
		wantReads int      // reads of the cache; -1: any
	}{
		"a create on a free path": {
			op: admissionv1.Create, object: vaultTenant("acme", "legacy/acme"), others: existing, wantAllow: true, wantReads: 1,
		},
		"a create on another tenant's path": {
			op: admissionv1.Create, object: vaultTenant("acme", "legacy/initech"), others: existing,
			wantMsg: []string{"spec.secrets.vaultPath", `"legacy/initech" overlaps the Vault path "legacy/initech" of tenant initech`}, wantReads: 1,
		},
		"a create holding another tenant's path": {
			op: admissionv1.Create, object: vaultTenant("acme", "legacy"), others: existing,
			wantMsg: []string{"spec.secrets.vaultPath", "tenant initech"}, wantReads: 1,
		},
		// A path under the platform's prefix that is not the tenant's own holds nothing: the
		// reconciler refuses it (InvalidSpec), and admission judges only overlaps.
		"a create inside another tenant's default path is left to the reconciler": {
			op: admissionv1.Create, object: vaultTenant("acme", "tenants/globex/acme"), others: existing, wantAllow: true,
		},
		"a create on a path only a refused tenant names": {
			op: admissionv1.Create, object: vaultTenant("hooli", ""), others: append(existing, *squatter), wantAllow: true, wantReads: 1,
		},
		"a create that asks nothing of Vault": {
			op: admissionv1.Create, object: &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}}, others: existing, wantAllow: true,
		},
		"no Vault configured": {
			op: admissionv1.Create, object: vaultTenant("acme", "legacy/initech"), noVault: true, others: existing, wantAllow: true,
		},
		"an update that keeps the path needs no lookup": {
			op: admissionv1.Update, object: func() *tenancyv1alpha1.Tenant {
				t := vaultTenant("acme", "legacy/initech")
				t.Spec.DisplayName = "Acme"
				return t
			}(), old: vaultTenant("acme", "legacy/initech"), others: existing, wantAllow: true,
		},
		"an update that starts using Vault onto another tenant's path": {
			op: admissionv1.Update, object: vaultTenant("acme", "legacy/initech/acme"),
			old: &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}}, others: existing,
			wantMsg: []string{"spec.secrets.vaultPath", "tenant initech"}, wantReads: 1,
		},
		"an update of the tenant that holds the path is not refused by itself": {
			op: admissionv1.Update, object: vaultTenant("initech", "legacy/initech"),
			old: &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "initech"}}, others: existing, wantAllow: true, wantReads: 1,
		},
		"a delete": {op: admissionv1.Delete, old: vaultTenant("initech", "legacy/initech"), others: existing, wantAllow: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := c
			if tc.noVault {
				cfg.Vault = nil
			}
			reader := &listOnly{tenants: tc.others}
			v := &webhook.TenantValidator{Reader: reader, Config: cfg}
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: tc.op}}
			if tc.object != nil {
				req.Object = raw(t, tc.object)
			}
			if tc.old != nil {
				req.OldObject = raw(t, tc.old)
			}
			resp := v.Handle(context.Background(), req)
			msg := ""
			if resp.Result != nil {
				msg = resp.Result.Message
			}
			if resp.Allowed != tc.wantAllow {
				t.Fatalf("allowed = %v (%q), want %v", resp.Allowed, msg, tc.wantAllow)
			}
			for _, f := range tc.wantMsg {
				if !strings.Contains(msg, f) {
					t.Errorf("refusal %q does not contain %q", msg, f)
				}
			}
			if tc.wantReads >= 0 && reader.reads != tc.wantReads {
				t.Errorf("%d reads of the cache, want %d", reader.reads, tc.wantReads)
			}
		})
	}
}

func raw(t *testing.T, obj *tenancyv1alpha1.Tenant) runtime.RawExtension {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: data}
}

// A tenant's backups and restores stay within its own path in the object store unless the platform
// allows others: refused at admission, the field named, with or without a Vault.
func TestTenantValidatorRefusesBackupPathsOutsideTheTenant(t *testing.T) {
	const file = "database:\n  imageRepository: ghcr.io/cloudnative-pg/postgresql\n  backup:\n    objectStore: {destinationPath: 's3://tenant-{tenant}/'}\n"
	withBackup := func(backupPath, restorePath string) *tenancyv1alpha1.Tenant {
		db := &tenancyv1alpha1.DatabaseSpec{Mode: tenancyv1alpha1.DatabaseDedicated,
			Backup: &tenancyv1alpha1.BackupSpec{Schedule: "@daily", DestinationPath: backupPath}}
		if restorePath != "" {
			db.Restore = &tenancyv1alpha1.RestoreSpec{DestinationPath: restorePath}
		}
		return &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}, Spec: tenancyv1alpha1.TenantSpec{Database: db}}
	}
	for name, tc := range map[string]struct {
		extra     string
		tenant    *tenancyv1alpha1.Tenant
		wantAllow bool
		wantMsg   string
	}{
		"its own bucket":          {tenant: withBackup("s3://tenant-acme/2026", ""), wantAllow: true},
		"another tenant's bucket": {tenant: withBackup("s3://tenant-globex", ""), wantMsg: `spec.database.backup.destinationPath: "s3://tenant-globex" is outside the tenant's own backup path "s3://tenant-acme"`},
		"restore from another tenant's bucket": {tenant: withBackup("", "s3://tenant-globex"),
			wantMsg: "spec.database.restore.destinationPath"},
		"restore from another tenant's bucket, allowed by the platform": {extra: "    allowPathsOutsideTenant: true\n",
			tenant: withBackup("", "s3://tenant-globex"), wantAllow: true},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(file + tc.extra))
			if err != nil {
				t.Fatal(err)
			}
			v := &webhook.TenantValidator{Reader: &listOnly{}, Config: cfg}
			resp := v.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
				Operation: admissionv1.Create, Object: raw(t, tc.tenant)}})
			if resp.Allowed != tc.wantAllow {
				t.Fatalf("allowed = %v (%s), want %v", resp.Allowed, resp.Result.Message, tc.wantAllow)
			}
			if !tc.wantAllow && !strings.Contains(resp.Result.Message, tc.wantMsg) {
				t.Errorf("refusal %q does not say %q", resp.Result.Message, tc.wantMsg)
			}
		})
	}
}
