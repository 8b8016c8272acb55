package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"

	"golang.org/x/time/rate"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/tenantctl/tenant-operator/controllers/rolebinding"
	"github.com/tenantctl/tenant-operator/controllers/tenant"
	"github.com/tenantctl/tenant-operator/internal/apply"
	"github.com/tenantctl/tenant-operator/internal/certs"
	"github.com/tenantctl/tenant-operator/internal/config"
	"github.com/tenantctl/tenant-operator/internal/reconcileutil"
	"github.com/tenantctl/tenant-operator/internal/vault"
	webhooks "github.com/tenantctl/tenant-operator/internal/webhook"
)

// Options are the process-level settings of the manager, set by flags in main.go.
type Options struct {
	MetricsAddr          string
	SecureMetrics        bool
	ProbeAddr            string
	PprofAddr            string
	LeaderElection       bool
	LeaderElectionID     string
	LeaderElectionNS     string
	MaxConcurrentTenants int
	// SkipNameValidation lets a second manager register controllers of the same names in one
	// process (tests that start a manager of their own next to a suite's); main.go never sets it.
	SkipNameValidation bool
	Config             config.Config
	// Webhooks serves the admission webhook on WebhookHost:WebhookPort with the serving
	// certificate in WebhookCertDir (tls.crt, tls.key).
	Webhooks       bool
	WebhookHost    string
	WebhookPort    int
	WebhookCertDir string
	// WebhookCerts is nil when something else (cert-manager, envtest) provides the serving
	// certificate; otherwise the operator manages it itself (internal/certs).
	WebhookCerts *certs.Options
}

// DefaultLeaderElectionID names the Lease the replicas compete for.
const DefaultLeaderElectionID = "tenant-operator.tenancy.tenantctl.io"

// New builds the manager with the production cache options and every controller registered.
func New(restConfig *rest.Config, o Options) (manager.Manager, error) {
	// Every client below is made from this config, so every request is counted by verb and
	// resource (tenant_operator_api_requests_total).
	if err := reconcileutil.RegisterMetrics(apiRequests); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	restConfig = rest.CopyConfig(restConfig)
	restConfig.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countRequests{next: rt} })
	metricsOpts := metricsserver.Options{BindAddress: o.MetricsAddr, SecureServing: o.SecureMetrics}
	if o.SecureMetrics {
		// Only identities allowed to GET /metrics by RBAC may scrape, as kubebuilder v4 does.
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	id := o.LeaderElectionID
	if id == "" {
		id = DefaultLeaderElectionID
	}
	var hooks webhook.Server
	if o.Webhooks && o.WebhookCerts != nil {
		// New has no context of its own: the certificate is made before the manager exists.
		if err := selfManagedCertificate(context.Background(), restConfig, o); err != nil {
			return nil, err
		}
	}
	if o.Webhooks {
		hooks = webhook.NewServer(webhook.Options{Host: o.WebhookHost, Port: o.WebhookPort, CertDir: o.WebhookCertDir})
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		WebhookServer: hooks,
		Scheme:        NewScheme(),
		Cache:         CacheOptions(),
		NewCache:      newCache,
		// The kinds the operator has no Go types for (the Barman Cloud ObjectStore) are read from
		// the cache too, like every other owned kind.
		Client:                        client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.ProbeAddr,
		PprofBindAddress:              o.PprofAddr,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              id,
		LeaderElectionNamespace:       o.LeaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add readiness check: %w", err)
	}
	if o.Webhooks {
		// Not ready until the webhook serves: with failurePolicy Fail, a replica that cannot answer
		// admission must not receive traffic.
		// GetWebhookServer (not hooks itself) adds the server to the manager's runnables.
		if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
			return nil, fmt.Errorf("add webhook readiness check: %w", err)
		}
		if o.WebhookCerts != nil {
			if err := mgr.Add(&certRenewer{config: restConfig, opts: o}); err != nil {
				return nil, err
			}
		}
		// The escalation check reads RBAC from a cache of its own (the manager's holds only labelled
		// objects), run in every replica; a replica is ready once it has synced.
		rbac, err := webhooks.NewRBACCache(restConfig, mgr.GetScheme())
		if err != nil {
			return nil, err
		}
		if err := mgr.Add(rbac); err != nil {
			return nil, fmt.Errorf("add RBAC cache: %w", err)
		}
		if err := mgr.AddReadyzCheck("rbac-cache", rbac.Synced); err != nil {
			return nil, fmt.Errorf("add RBAC cache readiness check: %w", err)
		}
		mgr.GetWebhookServer().Register(webhooks.RoleBindingPath, &webhook.Admission{Handler: &webhooks.RoleBindingValidator{
			Reader: mgr.GetAPIReader(), RBAC: rbac, Client: mgr.GetClient(), Config: o.Config,
		}})
		// The Tenant webhook reads the cache. Every replica serves it, and only the leader's
		// controller would start the Tenant informer: ask for it now, so that it starts with the
		// cache in every replica rather than on the first admission request.
		if _, err := mgr.GetCache().GetInformer(context.Background(), &tenancyv1alpha1.Tenant{}); err != nil {
			return nil, fmt.Errorf("tenant informer for the webhook: %w", err)
		}
		mgr.GetWebhookServer().Register(webhooks.TenantPath, &webhook.Admission{Handler: &webhooks.TenantValidator{
			Reader: mgr.GetClient(), Config: o.Config,
		}})
	}
	workers := o.MaxConcurrentTenants
	if workers < 1 {
		workers = 1
	}
	if err := errors.Join(tenant.RegisterMetrics(mgr.GetCache()), rolebinding.RegisterMetrics()); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	tenants := &tenant.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Config:    o.Config,
		Applier:   tenant.NewApplier(mgr.GetClient()),
		Recorder:  mgr.GetEventRecorder("tenant-operator"),
	}
	if o.Config.Vault != nil {
		// The token Secret carries no tenant label, so it is read uncached.
		v, err := vault.New(*o.Config.Vault, mgr.GetAPIReader())
		if err != nil {
			return nil, fmt.Errorf("vault client: %w", err)
		}
		tenants.Vault = v
	}
	if err := tenants.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: workers, SkipNameValidation: &o.SkipNameValidation,
		RateLimiter: RetryAfterFailure()}); err != nil {
		return nil, fmt.Errorf("set up tenant controller: %w", err)
	}
	if err := (&rolebinding.Reconciler{Client: mgr.GetClient(), Config: o.Config,
		Applier: apply.New(mgr.GetClient(), rolebinding.FieldOwner), Recorder: mgr.GetEventRecorder("tenant-operator")}).
		SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: workers, SkipNameValidation: &o.SkipNameValidation,
			RateLimiter: RetryAfterFailure()}); err != nil {
		return nil, fmt.Errorf("set up rolebinding controller: %w", err)
	}
	return mgr, nil
}

// MaxRetryDelay is the longest a failed reconcile waits before it is tried again.
//
// controller-runtime's default lets the wait double up to 1000 s, so a tenant that failed through a
// 15-second outage of the API server or Vault was tried again only some 20 s after the outage
// ended, and after a longer outage minutes later (the fault campaign measured 22 s after a 15 s
// outage, docs/reliability.md). With the wait capped at 10 s, every tenant is reconciled within
// 10 s of a dependency's return. The shared bucket (10 retries a second, bursts of 100) still
// keeps thousands of failing tenants from hammering a dependency that is down.
const MaxRetryDelay = 10 * time.Second

// RetryAfterFailure is the controllers' rate limiter: per tenant, a wait that doubles from 5 ms up
// to MaxRetryDelay; across tenants, a bucket of 10 retries a second with bursts of 100.
func RetryAfterFailure() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, MaxRetryDelay),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
}

// CacheOptions are the production cache options: the kinds the operator writes are cached only when
// they carry the tenant label, so the operator's memory follows the number of tenants, not the size
// of the cluster. Tests start the manager with these same options.
func CacheOptions() cache.Options {
	managed, err := labels.NewRequirement(tenancyv1alpha1.LabelTenant, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant label key: cannot fail
	}
	selector := labels.NewSelector().Add(*managed)
	byObject := map[client.Object]cache.ByObject{}
	for _, k := range tenant.OwnedKinds() {
		byObject[k.Object] = cache.ByObject{Label: selector}
	}
	return cache.Options{ByObject: byObject, DefaultTransform: trimForCache}
}

// newCache leaves out of the cache options the optional owned kinds the cluster does not serve (the
// Barman Cloud ObjectStore where its plugin is not installed): the cache refuses options for a kind
// it cannot map, and the operator must run without the plugin. Installing the plugin later takes an
// operator restart for its ObjectStores to be cached and watched.
func newCache(config *rest.Config, opts cache.Options) (cache.Cache, error) {
	optional := map[schema.GroupVersionKind]bool{}
	for _, k := range tenant.OwnedKinds() {
		if k.Optional {
			optional[k.Object.GetObjectKind().GroupVersionKind()] = true
		}
	}
	byObject := make(map[client.Object]cache.ByObject, len(opts.ByObject))
	for obj, by := range opts.ByObject {
		if optional[obj.GetObjectKind().GroupVersionKind()] && !tenant.Installed(opts.Mapper, obj) {
			ctrl.Log.WithName("cache").Info("not caching an optional kind: its CRD is not installed", "kind", obj.GetObjectKind().GroupVersionKind().Kind)
			continue
		}
		byObject[obj] = by
	}
	opts.ByObject = byObject
	return cache.New(config, opts)
}

// selfManagedCertificate provides the webhook's serving certificate before the server starts.
func selfManagedCertificate(ctx context.Context, restConfig *rest.Config, o Options) error {
	c, err := client.New(restConfig, client.Options{Scheme: NewScheme()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	opts := *o.WebhookCerts
	opts.CertDir = o.WebhookCertDir
	if err := certs.Ensure(ctx, c, opts); err != nil {
		return fmt.Errorf("webhook certificate: %w", err)
	}
	return nil
}

// certRenewer renews the self-managed certificate in every replica (not only the leader: each
// serves the webhook), twice a day; the webhook server reloads the files when they change. So the
// replicas serve a renewed certificate up to 12 hours apart, which internal/certs allows for: it
// keeps every CA in the caBundle while a replica may serve a certificate that CA signed.
type certRenewer struct {
	config *rest.Config
	opts   Options
}

func (*certRenewer) NeedLeaderElection() bool { return false }

func (r *certRenewer) Start(ctx context.Context) error {
	log := ctrl.Log.WithName("webhook-certificate")
	ticker := time.NewTicker(12 * time.Hour)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if err := selfManagedCertificate(ctx, r.config, r.opts); err != nil {
				log.Error(err, "renewing the webhook certificate failed; retrying in 12h")
			}
		}
	}
}
