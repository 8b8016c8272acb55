package tenant

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/internal/builders"
	"github.com/tenantctl/tenant-operator/internal/builders/database"
)

// finalBackupPatience is how long a final backup may run before the Tenant says it is stuck, and
// what the platform engineer can do about it. The deletion still waits: a final backup is never
// skipped without the explicit annotation.
const finalBackupPatience = time.Hour

// databaseObjects are what the tenant's database needs, in the tenant namespace (Dedicated) or in
// the shared cluster's namespace (Shared). The credentials Secrets are handled apart: they are
// never re-applied from a builder.
func (r *Reconciler) databaseObjects(s *scope) []client.Object {
	t, ns := s.tenant, s.namespaceName
	if t.Spec.Database.Mode == tenancyv1alpha1.DatabaseShared {
		role, db, np := database.SharedObjects(t, ns, r.Config)
		return []client.Object{role, db, np}
	}
	var objs []client.Object
	if ca := database.BackupCA(t, ns, r.Config); ca != nil {
		objs = append(objs, ca)
	}
	for _, o := range database.ObjectStores(t, ns, r.Config) {
		objs = append(objs, o)
	}
	objs = append(objs, database.Cluster(t, ns, r.Config))
	if sb := database.ScheduledBackup(t, ns); sb != nil {
		objs = append(objs, sb)
	}
	return objs
}

func (r *Reconciler) reconcileDatabase(ctx context.Context, s *scope) error {
	t := s.tenant
	if t.Spec.Database == nil {
		s.database = readyWithReason(tenancyv1alpha1.ReasonNotRequested, "the spec requests none")
		return nil
	}
	if msg, ok := database.Validate(t, r.Config); !ok {
		s.database = failed(tenancyv1alpha1.ReasonInvalidSpec, msg)
		return nil
	}
	if t.Spec.Database.Mode == tenancyv1alpha1.DatabaseShared {
		if err := r.ensureSharedCredentials(ctx, s); err != nil {
			s.database = failed(tenancyv1alpha1.ReasonApplyFailed, err.Error())
			return err
		}
	}
	if err := r.applyArea(ctx, s, areaDatabase, r.databaseObjects(s)); err != nil {
		s.database = failed(tenancyv1alpha1.ReasonApplyFailed, err.Error())
		return err
	}
	return r.observeDatabase(ctx, s)
}

// ensureSharedCredentials creates the tenant's credentials Secret once, with a generated password,
// and copies its current username and password to the shared cluster's namespace for the
// DatabaseRole. The tenant's Secret is the one source of the password: rotating it means editing
// that Secret, and the operator never overwrites it.
func (r *Reconciler) ensureSharedCredentials(ctx context.Context, s *scope) error {
	t := s.tenant
	src := &corev1.Secret{}
	key := client.ObjectKey{Namespace: s.namespaceName, Name: database.SharedCredentialsName}
	switch err := r.Client.Get(ctx, key, src); {
	case apierrors.IsNotFound(err):
		password, err := generatePassword()
		if err != nil {
			return err
		}
		src = database.TenantCredentials(t, s.namespaceName, r.Config, password)
		if err := r.Client.Create(ctx, src); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Secret %s/%s: %w", key.Namespace, key.Name, err)
		}
		if err := r.APIReader.Get(ctx, key, src); err != nil {
			return fmt.Errorf("read Secret %s/%s: %w", key.Namespace, key.Name, err)
		}
	case err != nil:
		return fmt.Errorf("get Secret %s/%s: %w", key.Namespace, key.Name, err)
	}
	// Adopting a Secret retained by an earlier Tenant of this name: the Tenant owns it again (its
	// data, the password, is never touched).
	if err := r.adoptCredentials(ctx, src, t); err != nil {
		return err
	}
	_, err := r.applyOne(ctx, s, database.SharedCredentials(t, r.Config, src.Data))
	return err
}

// adoptCredentials makes the Tenant the owner of its credentials Secret again when a Secret retained
// by an earlier Tenant of this name is found: the retained label goes and the owner reference comes
// back. Only metadata is patched (under an optimistic lock); the password is never touched.
func (r *Reconciler) adoptCredentials(ctx context.Context, secret *corev1.Secret, t *tenancyv1alpha1.Tenant) error {
	before := secret.DeepCopy()
	owners := make([]metav1.OwnerReference, 0, len(secret.OwnerReferences)+1)
	owned := false
	for _, o := range secret.OwnerReferences {
		switch {
		case !isTenantRef(o):
			owners = append(owners, o)
		case o.UID == t.UID:
			owners, owned = append(owners, o), true
		}
	}
	if !owned {
		owners = append(owners, builders.OwnerReference(t))
	}
	secret.OwnerReferences = owners
	delete(secret.Labels, tenancyv1alpha1.LabelRetained)
	if equality.Semantic.DeepEqual(secret.Labels, before.Labels) && equality.Semantic.DeepEqual(secret.OwnerReferences, before.OwnerReferences) {
		return nil
	}
	if err := r.Client.Patch(ctx, secret, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patch Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	return nil
}

func generatePassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// observeDatabase mirrors CloudNativePG's view of the database into the Tenant's status.
func (r *Reconciler) observeDatabase(ctx context.Context, s *scope) error {
	t := s.tenant
	rw, ro := database.Services(t, s.namespaceName, r.Config)
	st := &tenancyv1alpha1.DatabaseStatus{
		Mode: t.Spec.Database.Mode, ReadWriteService: rw, ReadOnlyService: ro, DatabaseName: database.Name(t),
	}
	s.databaseStatus = st
	if t.Spec.Database.Mode == tenancyv1alpha1.DatabaseShared {
		st.CredentialsSecret = database.SharedCredentialsName
		key := client.ObjectKey{Namespace: r.Config.Database.Shared.Namespace, Name: "tenant-" + t.Name}
		db, role := &cnpgv1.Database{}, &cnpgv1.DatabaseRole{}
		dbErr := r.Client.Get(ctx, key, db)
		if client.IgnoreNotFound(dbErr) != nil {
			return dbErr
		}
		roleErr := r.Client.Get(ctx, key, role)
		if client.IgnoreNotFound(roleErr) != nil {
			return roleErr
		}
		s.database = sharedDatabaseOutcome(db, dbErr == nil, role, roleErr == nil)
		return nil
	}
	st.CredentialsSecret = database.AppSecretName
	cluster := &cnpgv1.Cluster{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.namespaceName, Name: database.ClusterName}, cluster)
	if client.IgnoreNotFound(err) != nil {
		return err
	}
	var store *unstructured.Unstructured
	if t.Spec.Database.Backup != nil && r.Config.Database.Backup != nil {
		store = &unstructured.Unstructured{}
		store.SetGroupVersionKind(database.ObjectStoreGVK)
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.namespaceName, Name: database.ObjectStoreName}, store); client.IgnoreNotFound(err) != nil {
			return err
		} else if err != nil {
			store = nil
		}
	}
	if err == nil {
		st.Phase = cluster.Status.Phase
		st.ReadyInstances = int32(cluster.Status.ReadyInstances) //nolint:gosec // G115: the ready instances of one Cluster, which the Tenant's schema bounds to a handful
		backupStatus(st, cluster, store, database.ServerName(t))
	}
	s.database = clusterOutcome(cluster, err == nil, t.Spec.Database.Backup != nil, st)
	return nil
}

// backupStatus fills in what the database's backups look like. The Barman Cloud plugin reports
// its backups in the ObjectStore's recovery window for the server name, not in the Cluster's
// status (whose backup times CloudNativePG sets only for the in-tree method, deprecated, which the
// operator does not use), and WAL archiving in the Cluster's ContinuousArchiving condition.
func backupStatus(st *tenancyv1alpha1.DatabaseStatus, c *cnpgv1.Cluster, store *unstructured.Unstructured, serverName string) {
	if store != nil {
		for field, into := range map[string]**metav1.Time{
			"lastSuccessfulBackupTime": &st.LastSuccessfulBackup,
			"lastFailedBackupTime":     &st.LastFailedBackup,
			"firstRecoverabilityPoint": &st.FirstRecoverabilityPoint,
		} {
			text, _, _ := unstructured.NestedString(store.Object, "status", "serverRecoveryWindow", serverName, field)
			if v := parseTime(text); v != nil {
				*into = v
			}
		}
	}
	switch cond := meta.FindStatusCondition(c.Status.Conditions, string(cnpgv1.ConditionContinuousArchiving)); {
	case cond == nil:
	case cond.Status == metav1.ConditionTrue:
		st.WALArchiving = tenancyv1alpha1.WALArchivingWorking
	case cond.Status == metav1.ConditionFalse:
		st.WALArchiving = tenancyv1alpha1.WALArchivingFailing
	}
}

// clusterOutcome is DatabaseReady for a dedicated cluster: True when every instance is ready and
// CloudNativePG reports the cluster healthy, False with CloudNativePG's phase otherwise, and False
// when backups are configured and the last one failed after the last success (an unbacked-up
// database is not ready, whatever it serves).
func clusterOutcome(c *cnpgv1.Cluster, exists, backups bool, db *tenancyv1alpha1.DatabaseStatus) outcome {
	if !exists {
		return failed(tenancyv1alpha1.ReasonClusterNotReady, "the CloudNativePG Cluster is being created")
	}
	st := c.Status
	if st.Phase != cnpgv1.PhaseHealthy || st.ReadyInstances < c.Spec.Instances {
		phase := st.Phase
		if phase == "" {
			phase = "not reported yet"
		}
		return failed(tenancyv1alpha1.ReasonClusterNotReady, fmt.Sprintf("%d of %d instances ready; CloudNativePG phase: %s", st.ReadyInstances, c.Spec.Instances, phase))
	}
	if backups {
		if db.WALArchiving == tenancyv1alpha1.WALArchivingFailing {
			msg := "the database serves, but archiving its WAL to the object store fails: what is written now cannot be recovered until it works again"
			if cond := meta.FindStatusCondition(st.Conditions, string(cnpgv1.ConditionContinuousArchiving)); cond != nil && cond.Message != "" {
				msg += " (CloudNativePG: " + truncate(cond.Message, 200) + ")"
			}
			return failed(tenancyv1alpha1.ReasonArchivingFailing, msg)
		}
		lastOK, lastFailed := db.LastSuccessfulBackup, db.LastFailedBackup
		if lastFailed != nil && (lastOK == nil || lastFailed.After(lastOK.Time)) {
			return failed(tenancyv1alpha1.ReasonBackupFailing, "the database serves, but its last backup failed (see status.database.lastFailedBackup and the Backup objects)")
		}
		if cond := meta.FindStatusCondition(st.Conditions, string(cnpgv1.ConditionBackup)); cond != nil && cond.Status == metav1.ConditionFalse {
			return failed(tenancyv1alpha1.ReasonBackupFailing, "the database serves, but its last backup failed (CloudNativePG: "+truncate(cond.Message, 200)+")")
		}
	}
	return ready(fmt.Sprintf("%d of %d instances ready", st.ReadyInstances, c.Spec.Instances))
}

// sharedDatabaseOutcome is DatabaseReady for a database on the shared cluster: True only when
// CloudNativePG has applied both the database and the tenant's login role with its password, so
// that the credentials work the moment the tenant is Ready. (On a real cluster the role is applied
// a few seconds after the database: the instance manager first waits for CloudNativePG to let it
// read the role's password Secret.)
func sharedDatabaseOutcome(db *cnpgv1.Database, dbExists bool, role *cnpgv1.DatabaseRole, roleExists bool) outcome {
	switch {
	case !roleExists || role.Status.Applied == nil:
		return failed(tenancyv1alpha1.ReasonDatabaseNotReady, "waiting for CloudNativePG to create the tenant's role on the shared cluster")
	case !*role.Status.Applied:
		return failed(tenancyv1alpha1.ReasonDatabaseNotReady, "CloudNativePG could not apply the tenant's role: "+role.Status.Message)
	case !dbExists || db.Status.Applied == nil:
		return failed(tenancyv1alpha1.ReasonDatabaseNotReady, "waiting for CloudNativePG to create the database on the shared cluster")
	case !*db.Status.Applied:
		return failed(tenancyv1alpha1.ReasonDatabaseNotReady, "CloudNativePG could not create the database: "+db.Status.Message)
	}
	return ready("the database and the tenant's role exist on the shared cluster")
}

// truncate shortens a message from another component for a condition.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func parseTime(s string) *metav1.Time {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}

// effectiveDatabasePolicy is the database's deletion policy: its own, else the Tenant's.
func effectiveDatabasePolicy(t *tenancyv1alpha1.Tenant) tenancyv1alpha1.DeletionPolicy {
	if p := t.Spec.Database.DeletionPolicy; p != "" {
		return p
	}
	if t.Spec.DeletionPolicy == "" {
		return tenancyv1alpha1.DeletionPolicyRetain
	}
	return t.Spec.DeletionPolicy
}

// finalizeDatabase carries out the database's deletion policy. It reports done=false while it
// must wait (a final backup running) or is blocked (a final backup failed or stuck); s.deletion
// then says what blocks and what the platform engineer can do.
//
// Retain: nothing here; the retain transform keeps the database objects at the end of the deletion.
// Delete with backups configured: an on-demand final Backup is taken first and must complete,
// unless the Tenant carries the skip-final-backup annotation (recorded in an event).
// Delete: every database object of the tenant is deleted, found by its label (so a configuration
// that no longer names the shared cluster cannot block it). On the shared cluster PostgreSQL keeps
// the data (reclaim policy retain); a dedicated cluster's volumes go with it.
func (r *Reconciler) finalizeDatabase(ctx context.Context, s *scope) (bool, error) {
	t := s.tenant
	if t.Spec.Database == nil || effectiveDatabasePolicy(t) == tenancyv1alpha1.DeletionPolicyRetain {
		return true, nil
	}
	if t.Spec.Database.Mode != tenancyv1alpha1.DatabaseShared && t.Spec.Database.Backup != nil && s.namespaceName != "" {
		done, err := r.finalBackup(ctx, s)
		if !done || err != nil {
			return false, err
		}
	}
	// Backups and credentials Secrets outlive the database object: the tenant's own is kept with a
	// retained namespace or goes with a deleted one; the copy on the shared cluster keeps its owner
	// reference (the retain transform leaves it), so the garbage collector deletes it with the Tenant.
	err := r.eachOwned(ctx, s, func(o owned) bool { return o.area == areaDatabase && o.gvk != gvkBackup && o.gvk != gvkSecret },
		func(_ owned, obj client.Object) error {
			_, err := r.Applier.Delete(ctx, obj)
			return err
		})
	return err == nil, err
}

// listedInObjectStore says whether the object store's catalog lists the completed backup: the Barman
// Cloud plugin reads the catalog back after each backup and records the newest one in the
// ObjectStore's recovery window, so a last successful backup at or after this one's end means
// Barman found it whole in the bucket. Without a backup ObjectStore (backups through another
// method), CloudNativePG's completed phase is all there is.
func (r *Reconciler) listedInObjectStore(ctx context.Context, s *scope, backup *cnpgv1.Backup) (bool, error) {
	if backup.Spec.Method != cnpgv1.BackupMethodPlugin || r.Config.Database.Backup == nil {
		return true, nil
	}
	store := &unstructured.Unstructured{}
	store.SetGroupVersionKind(database.ObjectStoreGVK)
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.namespaceName, Name: database.ObjectStoreName}, store); {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return true, nil
	case err != nil:
		return false, err
	}
	text, _, _ := unstructured.NestedString(store.Object, "status", "serverRecoveryWindow", database.ServerName(s.tenant), "lastSuccessfulBackupTime")
	last := parseTime(text)
	stopped := backup.Status.StoppedAt
	return last != nil && stopped != nil && !last.Before(stopped), nil
}

// ofAnEarlierCluster says whether the final Backup was taken of another Cluster than this one: it
// names another Cluster's UID, or, taken before the operator recorded it, was created before it.
func ofAnEarlierCluster(backup *cnpgv1.Backup, cluster *cnpgv1.Cluster) bool {
	if uid, ok := backup.Annotations[tenancyv1alpha1.AnnotationClusterUID]; ok {
		return types.UID(uid) != cluster.UID
	}
	return backup.CreationTimestamp.Before(&cluster.CreationTimestamp)
}

// finalBackup takes the on-demand backup before deletion and reports whether the deletion may go
// on: the backup completed, there is nothing to back up, or the Tenant explicitly skips it.
func (r *Reconciler) finalBackup(ctx context.Context, s *scope) (bool, error) {
	t := s.tenant
	if reason := t.Annotations[tenancyv1alpha1.AnnotationSkipFinalBackup]; reason != "" {
		if !s.finalBackupSkipped {
			s.finalBackupSkipped = true
			r.warn(t, tenancyv1alpha1.ReasonFinalBackupSkipped, "the final backup is skipped at the request of annotation %s: %s",
				tenancyv1alpha1.AnnotationSkipFinalBackup, reason)
		}
		return true, nil
	}
	cluster := &cnpgv1.Cluster{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.namespaceName, Name: database.ClusterName}, cluster)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return true, nil // no cluster (or no CloudNativePG at all): no data to back up
	}
	if err != nil {
		return false, err
	}
	backup := &cnpgv1.Backup{}
	key := client.ObjectKey{Namespace: s.namespaceName, Name: database.FinalBackupName}
	switch err := r.Client.Get(ctx, key, backup); {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, database.FinalBackup(t, s.namespaceName, cluster.UID)); err != nil && !apierrors.IsAlreadyExists(err) {
			return false, fmt.Errorf("create the final Backup: %w", err)
		}
		s.deletion = failed(tenancyv1alpha1.ReasonFinalBackupRunning, "taking a final backup (Backup "+database.FinalBackupName+") before deleting the database")
		return false, nil
	case err != nil:
		return false, err
	}
	if ofAnEarlierCluster(backup, cluster) {
		// The final backup of an earlier database: its namespace was retained and its database
		// deleted, and the Tenant created again. It says nothing about this database's data, so it
		// goes, and its deletion brings the Tenant back to take this database's own.
		if err := r.Client.Delete(ctx, backup, client.Preconditions{UID: &backup.UID}); err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("delete the final Backup of an earlier database: %w", err)
		}
		s.deletion = failed(tenancyv1alpha1.ReasonFinalBackupRunning, "taking a final backup (Backup "+database.FinalBackupName+") before deleting the database")
		return false, nil
	}
	override := fmt.Sprintf("; or, to delete without it, annotate the Tenant with %s=<why> (recorded in an event and the audit log)",
		tenancyv1alpha1.AnnotationSkipFinalBackup)
	switch backup.Status.Phase {
	case cnpgv1.BackupPhaseCompleted:
		listed, err := r.listedInObjectStore(ctx, s, backup)
		if err != nil || listed {
			return listed, err
		}
		if age := r.now().Sub(backup.CreationTimestamp.Time); age >= finalBackupPatience {
			s.deletion = failed(tenancyv1alpha1.ReasonFinalBackupStuck, fmt.Sprintf(
				"the final backup (Backup %s) completed, but the object store's catalog (ObjectStore %s) has not listed it after %s: check the backup plugin's sidecar, or set spec.database.deletionPolicy: Retain%s",
				database.FinalBackupName, database.ObjectStoreName, finalBackupPatience, override))
			return false, nil
		}
		s.deletion = failed(tenancyv1alpha1.ReasonFinalBackupRunning, "the final backup (Backup "+database.FinalBackupName+") completed; waiting for the object store's catalog to list it before deleting the database")
		s.requeueAfter = finalBackupPatience - r.now().Sub(backup.CreationTimestamp.Time)
		return false, nil
	case cnpgv1.BackupPhaseFailed:
		s.deletion = failed(tenancyv1alpha1.ReasonFinalBackupFailed, "the final backup failed, so the database is kept: fix the cause and delete Backup "+
			database.FinalBackupName+" to take it again, or set spec.database.deletionPolicy: Retain"+override)
		return false, nil
	}
	if age := r.now().Sub(backup.CreationTimestamp.Time); age >= finalBackupPatience {
		s.deletion = failed(tenancyv1alpha1.ReasonFinalBackupStuck, fmt.Sprintf(
			"the final backup (Backup %s) has not completed after %s (phase %q): check that CloudNativePG and the backup plugin run, or set spec.database.deletionPolicy: Retain%s",
			database.FinalBackupName, finalBackupPatience, backup.Status.Phase, override))
		return false, nil
	}
	s.deletion = failed(tenancyv1alpha1.ReasonFinalBackupRunning, "taking a final backup (Backup "+database.FinalBackupName+") before deleting the database")
	s.requeueAfter = finalBackupPatience - r.now().Sub(backup.CreationTimestamp.Time)
	return false, nil
}
