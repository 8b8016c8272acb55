package database

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/test/golden"
)

func testConfig() config.Config {
	cfg := config.Default()
	cfg.Database.Backup = &config.BackupTemplate{ObjectStore: map[string]any{
		"destinationPath": "s3://platform-backups/tenants/",
		"endpointURL":     "https://s3.example",
		"s3Credentials": map[string]any{
			"accessKeyId":     map[string]any{"name": "backup-credentials", "key": "ACCESS_KEY_ID"},
			"secretAccessKey": map[string]any{"name": "backup-credentials", "key": "ACCESS_SECRET_KEY"},
		},
		"wal": map[string]any{"compression": "gzip"},
	}}
	cfg.Database.Shared = &config.SharedCluster{Name: "shared-pg", Namespace: "shared-db"}
	return cfg
}

func acme(db *tenancyv1alpha1.DatabaseSpec) *tenancyv1alpha1.Tenant {
	if db.Mode == "" {
		db.Mode = tenancyv1alpha1.DatabaseDedicated
	}
	if db.PostgresVersion == 0 && db.Mode == tenancyv1alpha1.DatabaseDedicated {
		db.PostgresVersion = 17
	}
	return &tenancyv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme-corp", UID: "0000-acme"},
		Spec: tenancyv1alpha1.TenantSpec{Database: db}}
}

func storage(size string) *tenancyv1alpha1.StorageSpec {
	return &tenancyv1alpha1.StorageSpec{Size: resource.MustParse(size)}
}

func TestDedicatedGolden(t *testing.T) {
	// A time zone and a fraction of a second: CloudNativePG gets the same instant, in UTC, to the microsecond.
	target := metav1.NewTime(time.Date(2026, 11, 1, 13, 0, 0, 412345000, time.FixedZone("CET", 3600)))
	cases := map[string]struct {
		db      *tenancyv1alpha1.DatabaseSpec // the Tenant's spec.database (after API defaults)
		catalog string                        // the configured ClusterImageCatalog, if any
		// bucketPerTenant: the template gives each tenant a bucket of its own, its own keys from
		// Vault and the object store's CA.
		bucketPerTenant bool
		// elsewhere: the platform allows paths outside the tenant's own.
		elsewhere bool
	}{
		"bucket-per-tenant": {db: &tenancyv1alpha1.DatabaseSpec{Storage: storage("10Gi"),
			Backup: &tenancyv1alpha1.BackupSpec{Schedule: "0 0 2 * * *", RetentionPolicy: "30d"}}, bucketPerTenant: true},
		"dedicated-minimal": {db: &tenancyv1alpha1.DatabaseSpec{Storage: storage("10Gi")}},
		"dedicated-full": {db: &tenancyv1alpha1.DatabaseSpec{
			Instances: ptr.To[int32](3), PostgresVersion: 16, Storage: &tenancyv1alpha1.StorageSpec{Size: resource.MustParse("50Gi"), StorageClassName: ptr.To("fast")},
			Resources:  &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}},
			Parameters: map[string]string{"work_mem": "64MB", "max_connections": "200"},
			Backup:     &tenancyv1alpha1.BackupSpec{Schedule: "0 0 2 * * *", RetentionPolicy: "30d"},
		}},
		"dedicated-image-catalog": {db: &tenancyv1alpha1.DatabaseSpec{Storage: storage("10Gi")}, catalog: "postgresql-standard"},
		"restore-own-path": {db: &tenancyv1alpha1.DatabaseSpec{Storage: storage("10Gi"),
			Backup:  &tenancyv1alpha1.BackupSpec{Schedule: "@daily", RetentionPolicy: "8w", ServerName: "postgres-2"},
			Restore: &tenancyv1alpha1.RestoreSpec{TargetTime: &target}}},
		"restore-elsewhere": {db: &tenancyv1alpha1.DatabaseSpec{Storage: storage("10Gi"),
			Restore: &tenancyv1alpha1.RestoreSpec{DestinationPath: "s3://old-backups/acme", ServerName: "acme-db"}}, elsewhere: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Database.ImageCatalog = tc.catalog
			cfg.Database.Backup.AllowPathsOutsideTenant = tc.elsewhere
			if tc.bucketPerTenant {
				cfg.Database.Backup.ObjectStore["destinationPath"] = "s3://tenant-{tenant}/"
				delete(cfg.Database.Backup.ObjectStore, "s3Credentials")
				cfg.Database.Backup.TenantCredentials = &config.BackupCredentials{}
				cfg.Database.Backup.EndpointCA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
			}
			tnt := acme(tc.db)
			if msg, ok := Validate(tnt, cfg); !ok {
				t.Fatalf("the golden case is invalid: %s", msg)
			}
			var objs []any
			if ca := BackupCA(tnt, "tenant-acme-corp", cfg); ca != nil {
				objs = append(objs, ca)
			}
			for _, o := range ObjectStores(tnt, "tenant-acme-corp", cfg) {
				objs = append(objs, o.Object)
			}
			objs = append(objs, Cluster(tnt, "tenant-acme-corp", cfg))
			if sb := ScheduledBackup(tnt, "tenant-acme-corp"); sb != nil {
				objs = append(objs, sb)
			}
			golden.Assert(t, name, objs...)
		})
	}
}

func TestSharedGolden(t *testing.T) {
	cfg := testConfig()
	tnt := acme(&tenancyv1alpha1.DatabaseSpec{Mode: tenancyv1alpha1.DatabaseShared})
	role, db, np := SharedObjects(tnt, "tenant-acme-corp", cfg)
	creds := TenantCredentials(tnt, "tenant-acme-corp", cfg, "not-a-real-password")
	golden.Assert(t, "shared", role, db, np, creds, FinalBackup(tnt, "tenant-acme-corp", "0000-cluster"))
}

func TestValidate(t *testing.T) {
	noBackups := testConfig()
	noBackups.Database.Backup = nil
	noShared := testConfig()
	noShared.Database.Shared = nil
	elsewhereAllowed := testConfig()
	elsewhereAllowed.Database.Backup.AllowPathsOutsideTenant = true
	backup := func(path string) *tenancyv1alpha1.BackupSpec {
		return &tenancyv1alpha1.BackupSpec{DestinationPath: path}
	}
	cases := map[string]struct {
		db      *tenancyv1alpha1.DatabaseSpec // the Tenant's spec.database
		cfg     config.Config                 // the operator configuration
		wantErr string                        // fragment of the refusal; "" when acceptable
	}{
		"allowed parameters":                   {db: &tenancyv1alpha1.DatabaseSpec{Parameters: map[string]string{"work_mem": "4MB"}}, cfg: testConfig()},
		"parameter off the allowlist":          {db: &tenancyv1alpha1.DatabaseSpec{Parameters: map[string]string{"shared_preload_libraries": "x", "fsync": "off"}}, cfg: testConfig(), wantErr: "fsync, shared_preload_libraries not allowed"},
		"shared without a shared cluster":      {db: &tenancyv1alpha1.DatabaseSpec{Mode: tenancyv1alpha1.DatabaseShared}, cfg: noShared, wantErr: "names no shared cluster"},
		"backup without an object store":       {db: &tenancyv1alpha1.DatabaseSpec{Backup: &tenancyv1alpha1.BackupSpec{}}, cfg: noBackups, wantErr: "no backup object store"},
		"restore with nowhere to restore from": {db: &tenancyv1alpha1.DatabaseSpec{Restore: &tenancyv1alpha1.RestoreSpec{}}, cfg: testConfig(), wantErr: "no destinationPath"},
		"backups under the tenant's own path":  {db: &tenancyv1alpha1.DatabaseSpec{Backup: backup("s3://platform-backups/tenants/acme-corp/2026")}, cfg: testConfig()},
		"backups into another tenant's path": {db: &tenancyv1alpha1.DatabaseSpec{Backup: backup("s3://platform-backups/tenants/globex")}, cfg: testConfig(),
			wantErr: `spec.database.backup.destinationPath: "s3://platform-backups/tenants/globex" is outside the tenant's own backup path "s3://platform-backups/tenants/acme-corp"`},
		"a path that only starts like the tenant's": {db: &tenancyv1alpha1.DatabaseSpec{Backup: backup("s3://platform-backups/tenants/acme-corp-2")}, cfg: testConfig(), wantErr: "outside the tenant's own backup path"},
		"restore from another tenant's path": {db: &tenancyv1alpha1.DatabaseSpec{Backup: backup(""), Restore: &tenancyv1alpha1.RestoreSpec{DestinationPath: "s3://platform-backups/tenants/globex"}}, cfg: testConfig(),
			wantErr: "spec.database.restore.destinationPath"},
		"restore from elsewhere, allowed by the platform": {db: &tenancyv1alpha1.DatabaseSpec{Restore: &tenancyv1alpha1.RestoreSpec{DestinationPath: "s3://old-backups/acme"}}, cfg: elsewhereAllowed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			msg, ok := Validate(acme(tc.db), tc.cfg)
			if (tc.wantErr == "") != ok {
				t.Fatalf("Validate = (%q, %v)", msg, ok)
			}
			if tc.wantErr != "" && !contains(msg, tc.wantErr) {
				t.Errorf("message %q does not contain %q", msg, tc.wantErr)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
