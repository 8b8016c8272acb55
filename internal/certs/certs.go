// Package certs manages the admission webhook's serving certificate when no cert-manager does: a
// private CA and a serving certificate for the webhook Service, kept in one Secret that every
// replica shares, written to the webhook server's certificate directory, and trusted by the
// ValidatingWebhookConfiguration through its caBundle. Every step is idempotent and safe to run
// from all replicas at once (the Secret is created once; the losers of that race read the winner's).
package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options name what the certificate is for and where it goes.
type Options struct {
	// Namespace and SecretName locate the Secret holding ca.crt, tls.crt and tls.key.
	Namespace, SecretName string
	// ServiceName is the webhook Service in Namespace; the certificate is valid for its DNS names.
	ServiceName string
	// WebhookConfiguration is the ValidatingWebhookConfiguration whose caBundle is kept current.
	WebhookConfiguration string
	// CertDir receives tls.crt and tls.key for the webhook server.
	CertDir string
	// ExtraHosts are further names or IP addresses the certificate is valid for: for an operator
	// run outside the cluster (make dev), whose webhook the apiserver reaches by URL.
	ExtraHosts []string
	// Validity of a new certificate (default one year); RenewBefore its end, it is replaced
	// (default 30 days).
	Validity, RenewBefore time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Secret keys.
const (
	CAKey   = "ca.crt"
	CertKey = corev1.TLSCertKey
	KeyKey  = corev1.TLSPrivateKeyKey
)

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,verbs=get;patch,resourceNames=tenant-operator-validating-webhook-configuration

// Ensure makes the Secret hold a current CA and serving certificate, writes the certificate to
// CertDir, and puts the CA into the webhook configuration's caBundle.
func Ensure(ctx context.Context, c client.Client, o Options) error {
	o.defaults()
	secret, err := ensureSecret(ctx, c, o)
	if err != nil {
		return err
	}
	if err := writeFiles(o.CertDir, secret); err != nil {
		return err
	}
	return injectCABundle(ctx, c, o.WebhookConfiguration, secret.Data[CAKey])
}

func (o *Options) defaults() {
	if o.Validity == 0 {
		o.Validity = 365 * 24 * time.Hour
	}
	if o.RenewBefore == 0 {
		o.RenewBefore = 30 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// DNSNames are the names the webhook Service is reached by.
func (o Options) DNSNames() []string {
	return []string{
		o.ServiceName + "." + o.Namespace + ".svc",
		o.ServiceName + "." + o.Namespace + ".svc.cluster.local",
	}
}

func ensureSecret(ctx context.Context, c client.Client, o Options) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: o.Namespace, Name: o.SecretName}
	err := c.Get(ctx, key, secret)
	switch {
	case apierrors.IsNotFound(err):
		data, err := issue(o)
		if err != nil {
			return nil, err
		}
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.SecretName,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "tenant-operator", "app.kubernetes.io/component": "webhook-certificate"}},
			Type: corev1.SecretTypeTLS,
			Data: data,
		}
		if err := c.Create(ctx, secret); err != nil {
			if apierrors.IsAlreadyExists(err) { // another replica was first: use its certificate
				return secret, c.Get(ctx, key, secret)
			}
			return nil, fmt.Errorf("create webhook certificate Secret %s: %w", key, err)
		}
		return secret, nil
	case err != nil:
		return nil, fmt.Errorf("read webhook certificate Secret %s: %w", key, err)
	}
	if current(secret.Data, o) {
		return secret, nil
	}
	data, err := issue(o)
	if err != nil {
		return nil, err
	}
	secret.Data = data
	secret.Type = corev1.SecretTypeTLS
	// Optimistic concurrency: if another replica renewed first, this update conflicts and the next
	// pass reads the renewed certificate.
	if err := c.Update(ctx, secret); err != nil {
		return nil, fmt.Errorf("renew webhook certificate Secret %s: %w", key, err)
	}
	return secret, nil
}

// current says whether data holds a certificate for these names, signed by its CA, that is not due
// for renewal.
func current(data map[string][]byte, o Options) bool {
	caBlock, _ := pem.Decode(data[CAKey])
	certBlock, _ := pem.Decode(data[CertKey])
	if caBlock == nil || certBlock == nil || len(data[KeyKey]) == 0 {
		return false
	}
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		return false
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return false
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	now := o.Now()
	for _, name := range append(o.DNSNames(), o.ExtraHosts...) {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: now}); err != nil {
			return false
		}
	}
	return now.Add(o.RenewBefore).Before(cert.NotAfter) && now.Add(o.RenewBefore).Before(ca.NotAfter)
}

// issue makes a new CA and a serving certificate it signs.
func issue(o Options) (map[string][]byte, error) {
	now := o.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "tenant-operator-webhook-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(o.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	names, ips := o.DNSNames(), []net.IP(nil)
	for _, h := range o.ExtraHosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			names = append(names, h)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(o.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		CAKey:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CertKey: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		KeyKey:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

// writeFiles writes tls.crt and tls.key where the webhook server reads them (it reloads on change);
// unchanged files are left alone.
func writeFiles(dir string, s *corev1.Secret) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, k := range []string{CertKey, KeyKey} {
		path := filepath.Join(dir, k)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, s.Data[k]) {
			continue
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, s.Data[k], 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return nil
}

// injectCABundle sets caBundle on every webhook of the configuration that does not already hold it.
func injectCABundle(ctx context.Context, c client.Client, name string, ca []byte) error {
	if len(ca) == 0 {
		return errors.New("the webhook certificate Secret holds no CA")
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, vwc); err != nil {
		return fmt.Errorf("read ValidatingWebhookConfiguration %s: %w", name, err)
	}
	patch := client.MergeFromWithOptions(vwc.DeepCopy(), client.MergeFromWithOptimisticLock{})
	changed := false
	for i := range vwc.Webhooks {
		if !bytes.Equal(vwc.Webhooks[i].ClientConfig.CABundle, ca) {
			vwc.Webhooks[i].ClientConfig.CABundle = ca
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := c.Patch(ctx, vwc, patch); err != nil {
		return fmt.Errorf("set caBundle of ValidatingWebhookConfiguration %s: %w", name, err)
	}
	return nil
}
