// Package config is the operator's own configuration: the platform team's defaults and policy that
// apply to every tenant. It is read from a YAML file (in a cluster, a mounted ConfigMap); unknown
// fields are an error, so a typo never silently falls back to a default.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// Config is the operator configuration. A field a file leaves out keeps its default; a map or list
// a file gives replaces the default one whole (a platform lists every role or quota key it wants).
type Config struct {
	// NamespacePrefix is put before the tenant name to name its namespace when the Tenant does not
	// name one. At most 23 characters, so "<prefix><tenant>" stays a DNS label.
	NamespacePrefix string `json:"namespacePrefix,omitempty"`

	// TrustedNamespaces may reach into every tenant namespace (for example the CloudNativePG
	// operator, monitoring and the ingress controller).
	TrustedNamespaces []string `json:"trustedNamespaces,omitempty"`

	// PlatformEgress are egress rules added to the allow policy of every tenant whose isolation is
	// DenyAll: the platform's services outside the namespace that the tenant's pods must reach. A
	// tenant with a database needs the Kubernetes API server (CloudNativePG's instance manager) and,
	// with backups, the object store. Each rule names its destinations: a rule open to everything
	// would undo DenyAll.
	PlatformEgress []networkingv1.NetworkPolicyEgressRule `json:"platformEgress,omitempty"`

	// DefaultQuota is the ResourceQuota of a tenant whose spec sets none.
	DefaultQuota corev1.ResourceList `json:"defaultQuota,omitempty"`

	// DefaultLimits is the LimitRange of a tenant whose spec sets none.
	DefaultLimits Limits `json:"defaultLimits,omitempty"`

	// Roles are the tenant roles that may be granted, each mapped to the ClusterRole it binds.
	// The defaults are admin, developer and viewer; a file that sets roles lists every role it
	// allows.
	Roles map[string]string `json:"roles,omitempty"`
	// MaxGrantDuration, when set, is the longest a rolebindings.tenancy.tenantctl.io grant may
	// last: expiresAt becomes required and at most this far ahead (for example "720h").
	MaxGrantDuration Duration `json:"maxGrantDuration,omitempty"`

	// Database configures the tenants' PostgreSQL databases.
	Database Database `json:"database,omitempty"`

	// Vault configures where tenants' secrets live. Without it, a Tenant that asks for secrets is
	// reported as SecretsReady=False, InvalidSpec.
	Vault *Vault `json:"vault,omitempty"`
}

// Vault is the platform's HashiCorp Vault.
type Vault struct {
	// Address of the Vault server, for the operator and for every tenant's SecretStore.
	Address string `json:"address"`
	// CABundle is the PEM CA bundle that verifies Vault's certificate (empty: system roots).
	CABundle string `json:"caBundle,omitempty"`
	// KVMount is the KV version 2 mount holding tenants' secrets.
	KVMount string `json:"kvMount,omitempty"`
	// PathPrefix is where in the mount tenants' paths live: "<prefix>/<tenant>".
	PathPrefix string `json:"pathPrefix,omitempty"`
	// KubernetesAuthMount is the Kubernetes auth method's mount path.
	KubernetesAuthMount string `json:"kubernetesAuthMount,omitempty"`
	// Audience is the audience of the ServiceAccount tokens tenants log in with; every tenant role
	// requires it.
	Audience string `json:"audience,omitempty"`
	// TokenTTL is the lifetime of a tenant's Vault token.
	TokenTTL Duration `json:"tokenTTL,omitempty"`
	// ResyncInterval is how often a tenant's Vault policies and roles are checked again. Vault
	// has no watch: a policy or role deleted or edited out of band is recreated within it.
	ResyncInterval Duration `json:"resyncInterval,omitempty"`
	// Auth is how the operator itself logs in to Vault.
	Auth VaultAuth `json:"auth"`
}

// VaultAuth is the operator's own login to Vault.
type VaultAuth struct {
	// Method is "kubernetes" (the operator's ServiceAccount token) or "token" (a token in a Secret).
	Method string `json:"method"`
	// Role is the Kubernetes auth role the operator logs in with (method kubernetes).
	Role string `json:"role,omitempty"`
	// TokenPath is the ServiceAccount token file to log in with (method kubernetes).
	TokenPath string `json:"tokenPath,omitempty"`
	// TokenSecret holds a Vault token (method token).
	TokenSecret *SecretKeyRef `json:"tokenSecret,omitempty"`
}

// SecretKeyRef names a key of a Secret in a namespace.
type SecretKeyRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Key       string `json:"key"`
}

// Database configures how tenant databases are run by CloudNativePG.
type Database struct {
	// ImageRepository holds the PostgreSQL images; the tenant's major version is the tag.
	ImageRepository string `json:"imageRepository,omitempty"`
	// ImageCatalog, when set, names a ClusterImageCatalog to take images from instead.
	ImageCatalog string `json:"imageCatalog,omitempty"`
	// DefaultInstances is the number of instances of a Tenant that sets none.
	DefaultInstances int32 `json:"defaultInstances,omitempty"`
	// PodAntiAffinityType is "required" (instances never share a node) or "preferred".
	PodAntiAffinityType string `json:"podAntiAffinityType,omitempty"`
	// AllowedParameters are the PostgreSQL parameters a Tenant may set.
	AllowedParameters []string `json:"allowedParameters,omitempty"`
	// EnablePodMonitor asks CloudNativePG for a PodMonitor per cluster (Prometheus Operator).
	EnablePodMonitor bool `json:"enablePodMonitor,omitempty"`
	// Shared names the cluster that Shared-mode tenants get a database on.
	Shared *SharedCluster `json:"shared,omitempty"`
	// Backup is the platform's backup destination.
	Backup *BackupTemplate `json:"backup,omitempty"`
}

// SharedCluster is a CloudNativePG Cluster shared by many tenants.
type SharedCluster struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// BackupTemplate is the platform-level template of every tenant's Barman Cloud ObjectStore.
type BackupTemplate struct {
	// ObjectStore is the ObjectStore's spec.configuration (barmancloud.cnpg.io/v1): destination,
	// endpoint, credentials, compression. Its destinationPath is a prefix: each tenant's backups
	// go under "<destinationPath>/<tenant>", or, when it contains "{tenant}", there with the
	// tenant's name (s3://tenant-{tenant}/ for a bucket per tenant).
	ObjectStore map[string]any `json:"objectStore"`
	// TenantCredentials gives each tenant its own object-store credentials, read from Vault under
	// the tenant's own path, instead of credentials in the template shared by every tenant. The
	// platform creates each tenant's account (one that reaches only the tenant's destination) and
	// stores its keys there; the tenant's ObjectStore names the Secret they are synced into.
	TenantCredentials *BackupCredentials `json:"tenantCredentials,omitempty"`
	// EndpointCA is the PEM certificate of the CA that signs the object store's TLS certificate.
	// The operator writes it into each tenant's namespace (Secret "backup-ca", key ca.crt) and sets
	// it as the ObjectStore's endpointCA.
	EndpointCA string `json:"endpointCA,omitempty"`
	// AllowPathsOutsideTenant lets a Tenant's spec.database.backup.destinationPath and
	// spec.database.restore.destinationPath point outside its own path (another tenant's backups,
	// a copy elsewhere). Off, a tenant can back up to and restore from its own path only.
	AllowPathsOutsideTenant bool `json:"allowPathsOutsideTenant,omitempty"`
}

// BackupCredentials locates each tenant's object-store keys in Vault.
type BackupCredentials struct {
	// VaultKey is the key under the tenant's Vault path that holds the properties ACCESS_KEY_ID and
	// ACCESS_SECRET_KEY (and REGION, when the store needs one). Default "backup".
	VaultKey string `json:"vaultKey,omitempty"`
}

// Limits are container defaults for a LimitRange.
type Limits struct {
	Default        corev1.ResourceList `json:"default,omitempty"`
	DefaultRequest corev1.ResourceList `json:"defaultRequest,omitempty"`
	Max            corev1.ResourceList `json:"max,omitempty"`
}

// Duration is a positive length of time, written as Go writes one ("15m", "720h"). It is parsed
// once, when the configuration is read; zero means not set.
type Duration struct {
	time.Duration
	// invalid is what a file gave instead of a positive duration. Decoding keeps it rather than
	// failing, so that Validate reports it with the field's name.
	invalid string
}

// UnmarshalJSON reads a duration string; an empty string is not set.
func (d *Duration) UnmarshalJSON(data []byte) error {
	var text string
	if err := json.Unmarshal(data, &text); err != nil {
		*d = Duration{invalid: string(data)}
		return nil
	}
	if text == "" {
		*d = Duration{}
		return nil
	}
	parsed, err := time.ParseDuration(text)
	if err != nil || parsed <= 0 {
		*d = Duration{invalid: text}
		return nil
	}
	*d = Duration{Duration: parsed}
	return nil
}

// MarshalJSON writes the duration as UnmarshalJSON reads it.
func (d Duration) MarshalJSON() ([]byte, error) {
	if d.Duration == 0 {
		return []byte(`""`), nil
	}
	return json.Marshal(d.String())
}

// String is the duration as a platform writes it: "720h", "15m", "1h30m", not "720h0m0s".
func (d Duration) String() string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// problem describes a duration that is not a positive one: a file's text that did not parse, or a
// value set in code that is not positive. required says whether zero (not set) is a problem.
func (d Duration) problem(required bool) (string, bool) {
	switch {
	case d.invalid != "":
		return d.invalid, true
	case d.Duration < 0, d.Duration == 0 && required:
		return d.String(), true
	}
	return "", false
}

// MaxNamespacePrefixLength keeps "<prefix><tenant>" within a DNS label for the longest tenant name.
const MaxNamespacePrefixLength = 23

var prefixPattern = regexp.MustCompile(`^[a-z]([-a-z0-9]*)$`)

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		NamespacePrefix: "tenant-",
		DefaultQuota: corev1.ResourceList{
			corev1.ResourceRequestsCPU:            resource.MustParse("4"),
			corev1.ResourceRequestsMemory:         resource.MustParse("8Gi"),
			corev1.ResourceLimitsCPU:              resource.MustParse("8"),
			corev1.ResourceLimitsMemory:           resource.MustParse("16Gi"),
			corev1.ResourcePersistentVolumeClaims: resource.MustParse("10"),
			corev1.ResourceRequestsStorage:        resource.MustParse("100Gi"),
			corev1.ResourcePods:                   resource.MustParse("100"),
			corev1.ResourceServicesLoadBalancers:  resource.MustParse("0"),
			corev1.ResourceServicesNodePorts:      resource.MustParse("0"),
		},
		DefaultLimits: Limits{
			Default: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("500m"),
				corev1.ResourceMemory: resource.MustParse("512Mi"),
			},
			DefaultRequest: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("128Mi"),
			},
		},
		Roles: map[string]string{
			"admin":     "tenant-admin",
			"developer": "tenant-developer",
			"viewer":    "tenant-viewer",
		},
		Database: Database{
			ImageRepository:     "ghcr.io/cloudnative-pg/postgresql",
			DefaultInstances:    3,
			PodAntiAffinityType: "required",
			AllowedParameters: []string{
				"work_mem", "maintenance_work_mem", "max_connections", "shared_buffers",
				"effective_cache_size", "random_page_cost", "effective_io_concurrency",
				"statement_timeout", "idle_in_transaction_session_timeout", "lock_timeout",
				"log_min_duration_statement", "timezone", "default_statistics_target",
			},
		},
	}
}

// Load reads the configuration file at path over the defaults. An empty path gives the defaults.
func Load(path string) (Config, error) {
	if path == "" {
		cfg := Default()
		return cfg, cfg.Validate()
	}
	data, err := os.ReadFile(path) //nolint:gosec // G304: the operator's own --config file, named by whoever starts it
	if err != nil {
		return Config{}, fmt.Errorf("read configuration: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("configuration %s: %w", path, err)
	}
	return cfg, nil
}

// Parse reads a configuration document over the defaults, strictly (an unknown field is an
// error), and validates it. A map the document gives replaces the default map whole.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("parse: %w", err)
	}
	// Decoding over the defaults merges a map into the default map, so a platform could never drop
	// a default role or quota key. The same document decoded alone holds exactly the maps it gives.
	// (Lists need no such step: decoding a list replaces it.)
	var given Config
	if err := yaml.Unmarshal(data, &given); err != nil {
		return Config{}, fmt.Errorf("parse: %w", err)
	}
	replaceMaps(reflect.ValueOf(&cfg).Elem(), reflect.ValueOf(given))
	cfg.defaultVault()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// replaceMaps sets into dst every map that src holds, wherever it is in the struct.
func replaceMaps(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Map:
		if !src.IsNil() {
			dst.Set(src)
		}
	case reflect.Pointer:
		if !src.IsNil() && !dst.IsNil() {
			replaceMaps(dst.Elem(), src.Elem())
		}
	case reflect.Struct:
		for i := range src.NumField() {
			if src.Type().Field(i).IsExported() {
				replaceMaps(dst.Field(i), src.Field(i))
			}
		}
	}
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if len(c.NamespacePrefix) > MaxNamespacePrefixLength || !prefixPattern.MatchString(c.NamespacePrefix) {
		errs = append(errs, fmt.Errorf("namespacePrefix %q must start with a lowercase letter, hold only lowercase letters, digits and '-', and be at most %d characters", c.NamespacePrefix, MaxNamespacePrefixLength))
	}
	if text, bad := c.MaxGrantDuration.problem(false); bad {
		errs = append(errs, fmt.Errorf("maxGrantDuration %q must be a positive duration such as 720h", text))
	}
	if len(c.Roles) == 0 {
		errs = append(errs, errors.New("roles must allow at least one tenant role"))
	}
	for role, clusterRole := range c.Roles {
		switch clusterRole {
		case "", "cluster-admin", "admin", "edit", "view", "system:masters":
			errs = append(errs, fmt.Errorf("roles.%s: %q cannot be a tenant role's ClusterRole; use a dedicated least-privilege ClusterRole", role, clusterRole))
		}
	}
	for i, rule := range c.PlatformEgress {
		if len(rule.To) == 0 {
			errs = append(errs, fmt.Errorf("platformEgress[%d].to must name the destinations (an ipBlock, or a namespace or pod selector): a rule without them allows egress everywhere", i))
		}
	}
	switch c.Database.PodAntiAffinityType {
	case "required", "preferred":
	default:
		errs = append(errs, fmt.Errorf("database.podAntiAffinityType %q must be required or preferred", c.Database.PodAntiAffinityType))
	}
	if c.Database.ImageRepository == "" && c.Database.ImageCatalog == "" {
		errs = append(errs, errors.New("database needs an imageRepository or an imageCatalog"))
	}
	if b := c.Database.Backup; b != nil {
		if p, _ := b.ObjectStore["destinationPath"].(string); p == "" {
			errs = append(errs, errors.New("database.backup.objectStore.destinationPath is required"))
		}
		if _, ok := b.ObjectStore["serverName"]; ok {
			errs = append(errs, errors.New("database.backup.objectStore.serverName must be left empty: the plugin takes the server name as a parameter"))
		}
		if _, ok := b.ObjectStore["s3Credentials"]; ok && b.TenantCredentials != nil {
			errs = append(errs, errors.New("database.backup.objectStore.s3Credentials must be left empty with tenantCredentials: each tenant's come from Vault"))
		}
		if b.TenantCredentials != nil && c.Vault == nil {
			errs = append(errs, errors.New("database.backup.tenantCredentials needs vault: the credentials are read from each tenant's Vault path"))
		}
		if _, ok := b.ObjectStore["endpointCA"]; ok && b.EndpointCA != "" {
			errs = append(errs, errors.New("database.backup.objectStore.endpointCA must be left empty with database.backup.endpointCA, which sets it"))
		}
		if b.EndpointCA != "" && !strings.Contains(b.EndpointCA, "-----BEGIN CERTIFICATE-----") {
			errs = append(errs, errors.New("database.backup.endpointCA must be a PEM certificate"))
		}
	}
	if v := c.Vault; v != nil {
		if v.Address == "" {
			errs = append(errs, errors.New("vault.address is required"))
		}
		for _, f := range []struct {
			name  string
			value Duration
		}{{"tokenTTL", v.TokenTTL}, {"resyncInterval", v.ResyncInterval}} {
			if text, bad := f.value.problem(true); bad {
				errs = append(errs, fmt.Errorf("vault.%s %q must be a positive duration such as 15m", f.name, text))
			}
		}
		switch v.Auth.Method {
		case "kubernetes":
			if v.Auth.Role == "" {
				errs = append(errs, errors.New("vault.auth.role is required for the kubernetes method"))
			}
		case "token":
			if r := v.Auth.TokenSecret; r == nil || r.Namespace == "" || r.Name == "" || r.Key == "" {
				errs = append(errs, errors.New("vault.auth.tokenSecret needs namespace, name and key for the token method"))
			}
		default:
			errs = append(errs, fmt.Errorf("vault.auth.method %q must be kubernetes or token", v.Auth.Method))
		}
	}
	if s := c.Database.Shared; s != nil && (s.Name == "" || s.Namespace == "") {
		errs = append(errs, errors.New("database.shared needs both name and namespace"))
	}
	return errors.Join(errs...)
}

// DefaultVaultTokenPath is where config/manager projects the operator's ServiceAccount token for
// Vault's audience.
const DefaultVaultTokenPath = "/var/run/secrets/tenantctl.io/vault/token" //nolint:gosec // G101: where the token is mounted, not a token

// defaultVault fills the Vault settings a file left out.
func (c *Config) defaultVault() {
	v := c.Vault
	if v == nil {
		return
	}
	for field, value := range map[*string]string{
		&v.KVMount: "secret", &v.PathPrefix: "tenants", &v.KubernetesAuthMount: "kubernetes",
		&v.Audience: "vault", &v.Auth.TokenPath: DefaultVaultTokenPath,
	} {
		if *field == "" {
			*field = value
		}
	}
	for field, value := range map[*Duration]time.Duration{&v.TokenTTL: 15 * time.Minute, &v.ResyncInterval: 5 * time.Minute} {
		if *field == (Duration{}) {
			*field = Duration{Duration: value}
		}
	}
}

// Key is the key under the tenant's Vault path that holds its object-store credentials.
func (b *BackupCredentials) Key() string {
	if b.VaultKey == "" {
		return "backup"
	}
	return b.VaultKey
}
