package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;roles;rolebindings;clusterrolebindings,verbs=list;watch

// ErrRBACNotSynced is the answer to a grant that needs the requester's RBAC while the RBAC cache has
// not yet listed the cluster. Deciding on a partial view would refuse legitimate grants with a
// wrong reason ("you do not hold ..."), so the webhook fails closed and says why instead.
var ErrRBACNotSynced = errors.New("the webhook's RBAC cache has not synced yet; retry in a few seconds")

// RBACCache holds every Role, ClusterRole, RoleBinding and ClusterRoleBinding of the cluster in an
// informer cache of its own, so an admission reads the requester's RBAC from memory instead of
// listing it from the apiserver. It cannot share the manager's cache: that one holds these kinds
// only when they carry the tenant label, and the escalation check needs the bindings platform
// admins write. managedFields are stripped: the check reads only rules, role references and
// subjects.
//
// Every replica serves the webhook, so the cache runs in every replica, not only the leader.
type RBACCache struct {
	cache  cache.Cache
	synced atomic.Bool
}

// rbacKinds are the kinds the escalation check reads.
func rbacKinds() []client.Object {
	return []client.Object{&rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}}
}

// NewRBACCache builds the cache; the manager starts it (add it with mgr.Add).
func NewRBACCache(cfg *rest.Config, scheme *runtime.Scheme) (*RBACCache, error) {
	c, err := cache.New(cfg, cache.Options{
		Scheme:           scheme,
		DefaultTransform: cache.TransformStripManagedFields(),
		// A read of any other kind is a bug here: fail instead of starting a cluster-wide informer.
		ReaderFailOnMissingInformer: true,
	})
	if err != nil {
		return nil, fmt.Errorf("RBAC cache: %w", err)
	}
	for _, obj := range rbacKinds() {
		// Before Start this only registers the informer; Start runs it.
		if _, err := c.GetInformer(context.Background(), obj); err != nil {
			return nil, fmt.Errorf("RBAC cache: informer for %T: %w", obj, err)
		}
	}
	return &RBACCache{cache: c}, nil
}

// NeedLeaderElection is false: every replica answers admission requests.
func (*RBACCache) NeedLeaderElection() bool { return false }

// Start runs the informers until ctx ends, and marks the cache synced once each has listed. A cache
// that fails to start returns its error at once, so the manager stops rather than serve unsynced.
func (c *RBACCache) Start(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- c.cache.Start(ctx) }()
	synced := make(chan bool, 1)
	go func() { synced <- c.cache.WaitForCacheSync(ctx) }()
	select {
	case err := <-done:
		return err
	case ok := <-synced:
		c.synced.Store(ok)
		return <-done
	}
}

// Synced is a readiness check: a replica is not ready to serve admission before its RBAC is known.
func (c *RBACCache) Synced(*http.Request) error {
	if !c.synced.Load() {
		return ErrRBACNotSynced
	}
	return nil
}

// reader is the cache to read from, or ErrRBACNotSynced.
func (c *RBACCache) reader() (client.Reader, error) {
	if c == nil || !c.synced.Load() {
		return nil, ErrRBACNotSynced
	}
	return c.cache, nil
}
