package certs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/tenantctl/tenant-operator/internal/certs"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// The rollover tests stand in for a Deployment of two operator replicas: two controller-runtime
// webhook servers (the production server, which reloads its files when they change), each with its
// own certificate directory and its own Ensure passes, behind one ValidatingWebhookConfiguration
// that the real kube-apiserver calls. envtest has no Service routing, so the configuration reaches
// each replica by URL (https://127.0.0.1:port), and it lists one webhook per replica: every
// admission request is sent to both, so one request succeeds only if the apiserver trusts both
// replicas' certificates at once.

// replica is one operator replica's webhook serving state.
type replica struct {
	name string
	opts certs.Options
	port int
}

func (r replica) url() string { return "https://127.0.0.1:" + strconv.Itoa(r.port) + "/validate" }

// twoReplicas makes a namespace, a fail-closed webhook configuration calling both replicas for
// ConfigMaps created in that namespace, and both replicas' first Ensure passes and servers.
func twoReplicas(t *testing.T, name string) (a, b *replica) {
	t.Helper()
	ctx := context.Background()
	name = unique(name)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	a = &replica{name: "a", port: freePort(t)}
	b = &replica{name: "b", port: freePort(t)}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, r := range []*replica{a, b} {
		vwc.Webhooks = append(vwc.Webhooks, admissionregistrationv1.ValidatingWebhook{
			Name:                    r.name + ".rollover.tenantctl.io",
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			TimeoutSeconds:          ptr.To[int32](10),
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To(r.url())},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
				corev1.LabelMetadataName: name}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"},
					Resources: []string{"configmaps"}},
			}},
		})
	}
	if err := c.Create(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*replica{a, b} {
		r.opts = certs.Options{Namespace: name, SecretName: "webhook-cert", ServiceName: "webhook",
			WebhookConfiguration: name, CertDir: t.TempDir(), ExtraHosts: []string{"127.0.0.1"}}
		if err := certs.Ensure(ctx, c, r.opts); err != nil {
			t.Fatalf("replica %s: %v", r.name, err)
		}
		serve(t, *r)
	}
	// Both servers listening and the apiserver holding the caBundle: the rollover starts from here.
	testenv.Eventually(t, 30*time.Second, func() error { return admit(ctx, name) })
	return a, b
}

// freePort is a port on 127.0.0.1 nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serve runs the replica's webhook server, which allows everything, until the test ends.
func serve(t *testing.T, r replica) {
	t.Helper()
	srv := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: r.port, CertDir: r.opts.CertDir})
	srv.Register("/validate", &webhook.Admission{Handler: admission.HandlerFunc(
		func(context.Context, admission.Request) admission.Response { return admission.Allowed("") })})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook server %s: %v", r.name, err)
		}
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("webhook server %s stopped: %v", r.name, err)
		default:
		}
		return srv.StartedChecker()(&http.Request{})
	})
}

// admit sends one admission request through the apiserver to both replicas: a dry-run create,
// which runs admission and stores nothing.
func admit(ctx context.Context, namespace string) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "probe-"}}
	return c.Create(ctx, cm, client.DryRunAll)
}

// admitAll sends admission requests through the apiserver until stop is called, which returns how
// many were sent and the failures: the traffic that must keep flowing during a rollover.
func admitAll(namespace string) (stop func() (int, []error)) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu       sync.Mutex
		sent     int
		failures []error
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			err := admit(ctx, namespace)
			if ctx.Err() != nil {
				return // cancelled mid-request: not an admission failure
			}
			mu.Lock()
			sent++
			if err != nil {
				failures = append(failures, err)
			}
			mu.Unlock()
		}
	}()
	return func() (int, []error) {
		cancel()
		wg.Wait()
		return sent, failures
	}
}

// served is the certificate the replica presents to a new TLS connection now.
func served(r replica) (*x509.Certificate, error) {
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(r.port), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the certificate only
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// handshake connects to the replica as the apiserver does: verifying its certificate against the
// webhook configuration's caBundle and the URL's host.
func handshake(r replica) error {
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: r.opts.WebhookConfiguration}, vwc); err != nil {
		return err
	}
	roots := x509.NewCertPool()
	for _, hook := range vwc.Webhooks {
		if len(hook.ClientConfig.CABundle) == 0 {
			return fmt.Errorf("webhook %s has no caBundle", hook.Name)
		}
		if *hook.ClientConfig.URL == r.url() && !roots.AppendCertsFromPEM(hook.ClientConfig.CABundle) {
			return fmt.Errorf("webhook %s: caBundle holds no certificate", hook.Name)
		}
	}
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(r.port), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		return fmt.Errorf("replica %s: %w", r.name, err)
	}
	return conn.Close()
}

// fileCert is the certificate in the replica's directory.
func fileCert(t *testing.T, r replica) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.opts.CertDir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("replica %s: tls.crt holds no PEM", r.name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// eventuallyServes waits until the replica's server has reloaded want from its directory.
func eventuallyServes(t *testing.T, r replica, want *x509.Certificate) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		got, err := served(r)
		if err != nil {
			return err
		}
		if !got.Equal(want) {
			return fmt.Errorf("replica %s still serves serial %s, not %s", r.name, got.SerialNumber, want.SerialNumber)
		}
		return nil
	})
}

// bothTrusted checks, as the apiserver would verify them, both replicas' certificates against the
// caBundle, and sends an admission request through the apiserver to both.
func bothTrusted(t *testing.T, a, b replica) {
	t.Helper()
	for _, r := range []replica{a, b} {
		if err := handshake(r); err != nil {
			t.Errorf("the apiserver would not trust replica %s: %v", r.name, err)
		}
	}
	if err := admit(context.Background(), a.opts.Namespace); err != nil {
		t.Errorf("admission request failed: %v", err)
	}
}

// TestRenewalInOneReplicaFailsNoAdmission renews the certificate in one replica (as its 12-hourly
// pass does when the certificate is due) while the other still serves the previous one, as it does
// for up to 12 hours: every admission request, through the real apiserver to both replicas, must
// succeed before, during and after.
func TestRenewalInOneReplicaFailsNoAdmission(t *testing.T) {
	a, b := twoReplicas(t, "rollover-renewal")
	before := fileCert(t, *a)
	stop := admitAll(a.opts.Namespace)

	forced := a.opts
	forced.RenewBefore = 365 * 24 * time.Hour // the default validity: every pass finds the certificate due
	if err := certs.Ensure(context.Background(), c, forced); err != nil {
		t.Fatal(err)
	}
	renewed := fileCert(t, *a)
	if renewed.Equal(before) {
		t.Fatal("the forced pass did not renew the certificate")
	}
	eventuallyServes(t, *a, renewed)
	if got, err := served(*b); err != nil || !got.Equal(before) {
		t.Fatalf("replica b should still serve the previous certificate (err %v)", err)
	}
	bothTrusted(t, *a, *b) // the replicas serve different certificates: the apiserver trusts both

	if err := certs.Ensure(context.Background(), c, b.opts); err != nil { // b's next pass
		t.Fatal(err)
	}
	eventuallyServes(t, *b, renewed)
	bothTrusted(t, *a, *b)

	sent, failures := stop()
	t.Logf("%d admission requests during the rollover", sent)
	if len(failures) > 0 {
		t.Errorf("%d of %d admission requests during the rollover failed; the first: %v", len(failures), sent, failures[0])
	}
}

// TestCAReplacementInOneReplicaFailsNoAdmission replaces the CA in one replica, here because the
// Secret holds no CA key (as a Secret written before CA keys were kept does not): the new CA must be
// in the caBundle before any replica serves a certificate it signed, and the previous CA must stay
// there while the other replica serves a certificate the previous CA signed.
func TestCAReplacementInOneReplicaFailsNoAdmission(t *testing.T) {
	a, b := twoReplicas(t, "rollover-ca")
	ctx := context.Background()
	before := fileCert(t, *a)
	secret := &corev1.Secret{}
	key := client.ObjectKey{Namespace: a.opts.Namespace, Name: a.opts.SecretName}
	if err := c.Get(ctx, key, secret); err != nil {
		t.Fatal(err)
	}
	delete(secret.Data, "ca.key")
	if err := c.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	stop := admitAll(a.opts.Namespace)

	// First pass: a new CA joins the caBundle; the certificate is still the one the previous CA signed.
	forced := a.opts
	forced.RenewBefore = 365 * 24 * time.Hour
	if err := certs.Ensure(ctx, c, forced); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, key, secret); err != nil {
		t.Fatal(err)
	}
	if n := countCerts(secret.Data["ca.crt"]); n != 2 {
		t.Fatalf("the CA bundle holds %d CAs, want the new and the previous", n)
	}
	if !fileCert(t, *a).Equal(before) {
		t.Fatal("a certificate signed by a CA the apiserver may not know yet was written")
	}
	bothTrusted(t, *a, *b)
	// The next pass comes 12 hours later in production; here, once the apiserver demonstrably
	// trusts the new CA.
	newCA := apiserverTrusts(t, a.opts, secret)

	// Next pass: the certificate is renewed from the new CA; b still serves the previous CA's.
	if err := certs.Ensure(ctx, c, forced); err != nil {
		t.Fatal(err)
	}
	renewed := fileCert(t, *a)
	if err := renewed.CheckSignatureFrom(newCA); err != nil {
		t.Fatalf("the certificate was not renewed from the new CA: %v", err)
	}
	eventuallyServes(t, *a, renewed)
	bothTrusted(t, *a, *b)

	if err := certs.Ensure(ctx, c, b.opts); err != nil {
		t.Fatal(err)
	}
	eventuallyServes(t, *b, renewed)
	bothTrusted(t, *a, *b)

	sent, failures := stop()
	t.Logf("%d admission requests during the rollover", sent)
	if len(failures) > 0 {
		t.Errorf("%d of %d admission requests during the rollover failed; the first: %v", len(failures), sent, failures[0])
	}
}

func countCerts(bundle []byte) int {
	n := 0
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			return n
		}
		n++
	}
}

// apiserverTrusts waits until the apiserver trusts the CA that signs in the Secret (the first in its
// bundle), and returns it: a probe webhook, for a namespace of its own, serves a certificate that CA
// signs, with the caBundle the webhook configuration holds.
func apiserverTrusts(t *testing.T, o certs.Options, secret *corev1.Secret) *x509.Certificate {
	t.Helper()
	ctx := context.Background()
	caBlock, _ := pem.Decode(secret.Data["ca.crt"])
	keyBlock, _ := pem.Decode(secret.Data["ca.key"])
	if caBlock == nil || keyBlock == nil {
		t.Fatal("the Secret holds no signing CA")
	}
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := x509.ParseECPrivateKey(keyBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	probe := httptest.NewUnstartedServer(&webhook.Admission{Handler: admission.HandlerFunc(
		func(context.Context, admission.Request) admission.Response { return admission.Allowed("") })})
	probe.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	probe.StartTLS()
	t.Cleanup(probe.Close)

	ns := o.Namespace + "-probe"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: o.WebhookConfiguration}, vwc); err != nil {
		t.Fatal(err)
	}
	hook := *vwc.Webhooks[0].DeepCopy()
	hook.Name = "probe.rollover.tenantctl.io"
	hook.ClientConfig.URL = ptr.To(probe.URL)
	hook.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}
	vwc.Webhooks = append(vwc.Webhooks, hook)
	if err := c.Update(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error { return admit(ctx, ns) })
	return ca
}
