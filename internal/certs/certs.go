// Package certs manages the admission webhook's serving certificate when no cert-manager does: a
// private CA and a serving certificate for the webhook Service, kept in one Secret that every
// replica shares, written to the webhook server's certificate directory, and trusted by the
// ValidatingWebhookConfiguration through its caBundle. Every step is idempotent and safe to run
// from all replicas at once (the Secret is created once; the losers of that race read the winner's).
//
// Replicas pick up a renewed certificate only at their own next pass, hours apart, so a rollover
// never makes the apiserver distrust a certificate some replica may still serve:
//   - the CA outlives the serving certificates it signs and is kept across their renewals, so
//     renewing the serving certificate leaves the caBundle as it is;
//   - a new CA (the previous one is about to end, or its key is unknown) joins the caBundle in front
//     of the previous one, and signs serving certificates only from a later pass on (any
//     replica's), by when the apiserver, which takes a caBundle change within seconds, trusts it;
//   - the previous CA stays in the caBundle until it expires: every certificate it signed ends no
//     later than it does.
package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
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
	// Namespace and SecretName locate the Secret holding ca.crt, ca.key, tls.crt and tls.key.
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
	// Validity of a new serving certificate (default one year); RenewBefore its end, it is replaced
	// (default 30 days).
	Validity, RenewBefore time.Duration
	// CAValidity of a new CA (default ten years), which must be longer than Validity. A CA is
	// replaced once a new serving certificate would outlive it, that is Validity before its end:
	// the previous CA and the new one are both in the caBundle for that long.
	CAValidity time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Secret keys. CAKey holds the CA bundle the caBundle is set to: the CA that signs first, then the
// previous CA until it expires. CAPrivateKeyKey holds the key of the CA that signs.
const (
	CAKey           = "ca.crt"
	CAPrivateKeyKey = "ca.key"
	CertKey         = corev1.TLSCertKey
	KeyKey          = corev1.TLSPrivateKeyKey
)

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,verbs=get;patch,resourceNames=tenant-operator-validating-webhook-configuration

// Ensure makes the Secret hold a current CA bundle and serving certificate, puts the bundle into
// the webhook configuration's caBundle, and then writes the certificate to CertDir: the apiserver is
// told of a CA before this replica serves anything new.
func Ensure(ctx context.Context, c client.Client, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	secret, err := ensureSecret(ctx, c, o)
	if err != nil {
		return err
	}
	if err := injectCABundle(ctx, c, o.WebhookConfiguration, secret.Data[CAKey]); err != nil {
		return err
	}
	return writeFiles(o.CertDir, secret)
}

func (o *Options) defaults() error {
	if o.Validity == 0 {
		o.Validity = 365 * 24 * time.Hour
	}
	if o.RenewBefore == 0 {
		o.RenewBefore = 30 * 24 * time.Hour
	}
	if o.CAValidity == 0 {
		o.CAValidity = 10 * 365 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CAValidity <= o.Validity {
		return fmt.Errorf("the webhook CA's validity (%s) must be longer than its certificate's (%s)", o.CAValidity, o.Validity)
	}
	return nil
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
		data, _, err := renew(nil, o)
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
	data, changed, err := renew(secret.Data, o)
	if err != nil {
		return nil, err
	}
	if !changed {
		return secret, nil
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

// renew returns what the Secret should hold, given what it holds (nil for nothing) and the time:
//   - the CA bundle without expired CAs, led by a CA whose key it has and that outlives a new
//     serving certificate; if the leading CA is not so, a new CA goes in front of it;
//   - the serving certificate as it is while it is valid for every name, trusted by the bundle and
//     not due for renewal; otherwise one signed by the leading CA, except that a CA made in this
//     same pass does not sign a certificate that is still valid: that waits for the next pass, so
//     the apiserver trusts the new CA before any replica serves what it signed.
//
// changed says whether the result differs from data.
func renew(data map[string][]byte, o Options) (next map[string][]byte, changed bool, err error) {
	now := o.Now()
	next = map[string][]byte{}
	for _, k := range []string{CAKey, CAPrivateKeyKey, CertKey, KeyKey} {
		if len(data[k]) > 0 {
			next[k] = data[k]
		}
	}
	bundle := validCAs(data[CAKey], now)
	signer, signerKey := signingCA(bundle, data[CAPrivateKeyKey])
	newCA := signer == nil || now.Add(o.Validity).After(signer.NotAfter)
	if newCA {
		ca, key, keyPEM, err := issueCA(o, now)
		if err != nil {
			return nil, false, err
		}
		signer, signerKey = ca, key
		bundle = append([]*x509.Certificate{ca}, bundle...)
		next[CAPrivateKeyKey] = keyPEM
	}
	next[CAKey] = encodeCerts(bundle)

	leaf := servingCert(data, bundle, o, now)
	due := leaf == nil || !now.Add(o.RenewBefore).Before(leaf.NotAfter)
	if due && (leaf == nil || !newCA) {
		if next[CertKey], next[KeyKey], err = issueServing(o, now, signer, signerKey); err != nil {
			return nil, false, err
		}
	}
	for _, k := range []string{CAKey, CAPrivateKeyKey, CertKey, KeyKey} {
		if !bytes.Equal(data[k], next[k]) {
			changed = true
		}
	}
	return next, changed, nil
}

// validCAs are the CA certificates in the PEM bundle that have not expired, in order.
func validCAs(bundle []byte, now time.Time) []*x509.Certificate {
	var cas []*x509.Certificate
	for {
		var block *pem.Block
		if block, bundle = pem.Decode(bundle); block == nil {
			return cas
		}
		ca, err := x509.ParseCertificate(block.Bytes)
		if err != nil || !ca.IsCA || now.After(ca.NotAfter) {
			continue
		}
		cas = append(cas, ca)
	}
}

// signingCA is the bundle's first CA with its private key, or nil when keyPEM is not that CA's key
// (as in a Secret written before CA keys were kept).
func signingCA(bundle []*x509.Certificate, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey) {
	block, _ := pem.Decode(keyPEM)
	if len(bundle) == 0 || block == nil {
		return nil, nil
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, nil
	}
	if pub, ok := bundle[0].PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil
	}
	return bundle[0], key
}

// servingCert is the Secret's serving certificate if it matches its key and the bundle trusts it
// for every name now; nil otherwise.
func servingCert(data map[string][]byte, bundle []*x509.Certificate, o Options, now time.Time) *x509.Certificate {
	pair, err := tls.X509KeyPair(data[CertKey], data[KeyKey])
	if err != nil {
		return nil
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil
	}
	roots := x509.NewCertPool()
	for _, ca := range bundle {
		roots.AddCert(ca)
	}
	for _, name := range append(o.DNSNames(), o.ExtraHosts...) {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: now}); err != nil {
			return nil
		}
	}
	return cert
}

// issueCA makes a new CA, valid from an hour ago (clock skew) for CAValidity.
func issueCA(o Options, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "tenant-operator-webhook-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(o.CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return ca, key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// issueServing makes a serving certificate for the Service's names and ExtraHosts, signed by ca,
// valid from an hour ago for Validity (never beyond the CA's end).
func issueServing(o Options, now time.Time, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	names, ips := o.DNSNames(), []net.IP(nil)
	for _, h := range o.ExtraHosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			names = append(names, h)
		}
	}
	notAfter := now.Add(o.Validity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

func encodeCerts(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
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
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, s.Data[k]) { //nolint:gosec // G304: the operator's own --webhook-cert-dir, joined with a fixed file name
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
