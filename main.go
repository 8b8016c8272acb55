// Command tenant-operator provisions the customers of a multi-tenant platform: each Tenant becomes an
// isolated namespace, a dedicated PostgreSQL database, Vault-backed secrets and least-privilege access
// for the customer's single sign-on identities.
package main

import (
	"flag"
	"os"
	"strings"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/internal/certs"
	"github.com/tenantctl/tenant-operator/internal/config"
)

func main() {
	var (
		opts       controllers.Options
		configFile string
	)
	flag.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8443",
		"Address the metrics endpoint binds to; \"0\" disables it.")
	flag.BoolVar(&opts.SecureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, to identities that RBAC allows to GET /metrics only.")
	flag.StringVar(&opts.ProbeAddr, "health-probe-bind-address", ":8081",
		"Address the /healthz and /readyz probes bind to.")
	flag.StringVar(&opts.PprofAddr, "pprof-bind-address", "",
		"Address Go's /debug/pprof profiles are served on (plain HTTP, unauthenticated: bind it to localhost); empty disables them.")
	flag.BoolVar(&opts.LeaderElection, "leader-elect", true,
		"Elect a leader, so that only one replica reconciles at a time.")
	flag.StringVar(&opts.LeaderElectionNS, "leader-election-namespace", "",
		"Namespace of the leader-election Lease (default: the operator's own namespace).")
	flag.IntVar(&opts.MaxConcurrentTenants, "concurrency", 4,
		"How many Tenants (and RoleBindings) are reconciled at once.")
	flag.BoolVar(&opts.Webhooks, "enable-webhooks", true,
		"Serve the admission webhook for tenancy RoleBindings (its ValidatingWebhookConfiguration fails closed).")
	flag.IntVar(&opts.WebhookPort, "webhook-port", 9443, "The port the admission webhook listens on.")
	flag.StringVar(&opts.WebhookCertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs",
		"The directory holding the webhook's serving certificate (tls.crt and tls.key).")
	var certOpts certs.Options
	certMode := flag.String("webhook-cert-mode", "self-managed",
		"self-managed: the operator keeps the webhook's certificate in a Secret and the caBundle current; "+
			"external: cert-manager (or another tool) provides the files in --webhook-cert-dir and the caBundle.")
	flag.StringVar(&certOpts.ServiceName, "webhook-service", "tenant-operator-webhook-service",
		"The webhook Service in the operator's namespace (self-managed certificates are issued for it).")
	flag.StringVar(&certOpts.SecretName, "webhook-cert-secret", "tenant-operator-webhook-cert",
		"The Secret in the operator's namespace that holds the self-managed certificate.")
	flag.StringVar(&certOpts.WebhookConfiguration, "webhook-configuration", "tenant-operator-validating-webhook-configuration",
		"The ValidatingWebhookConfiguration whose caBundle the self-managed CA is put into.")
	extraHosts := flag.String("webhook-cert-extra-hosts", "",
		"Comma-separated further names or IPs for the self-managed certificate (an operator run outside the cluster).")
	flag.StringVar(&configFile, "config", "",
		"Path of the operator configuration file (YAML). Unset uses the built-in defaults.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine) // --zap-log-level, --zap-devel, --zap-encoder, ...
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")

	switch *certMode {
	case "self-managed":
		certOpts.Namespace = os.Getenv("POD_NAMESPACE")
		if certOpts.Namespace == "" {
			certOpts.Namespace = "tenant-operator-system"
		}
		if *extraHosts != "" {
			certOpts.ExtraHosts = strings.Split(*extraHosts, ",")
		}
		opts.WebhookCerts = &certOpts
	case "external":
	default:
		log.Error(nil, "--webhook-cert-mode must be self-managed or external", "value", *certMode)
		os.Exit(1)
	}

	cfg, err := config.Load(configFile)
	if err != nil {
		log.Error(err, "invalid operator configuration")
		os.Exit(1)
	}
	opts.Config = cfg

	mgr, err := controllers.New(ctrl.GetConfigOrDie(), opts)
	if err != nil {
		log.Error(err, "unable to set up the manager")
		os.Exit(1)
	}
	log.Info("starting manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager stopped with an error")
		os.Exit(1)
	}
}
