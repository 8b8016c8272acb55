package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantctl/tenant-operator/controllers"
	"github.com/tenantctl/tenant-operator/internal/certs"
	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

var c client.Client

func TestMain(m *testing.M) {
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c, err = client.New(env.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// unique numbers a test's namespace, so that -count=N can run it N times against one apiserver
// (envtest has no namespace controller: a deleted namespace stays).
func unique(name string) string { return fmt.Sprintf("%s-%d", name, runs.Add(1)) }

var runs atomic.Int32

func setUp(t *testing.T, name string) certs.Options {
	t.Helper()
	ctx := context.Background()
	name = unique(name)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "rolebindings.tenancy.tenantctl.io", AdmissionReviewVersions: []string{"v1"},
			SideEffects:  ptr.To(admissionregistrationv1.SideEffectClassNone),
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: name, Name: "webhook"}},
		}},
	}
	if err := c.Create(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	return certs.Options{Namespace: name, SecretName: "webhook-cert", ServiceName: "webhook", WebhookConfiguration: name}
}

// verify checks the files in dir as the apiserver would: a TLS certificate for the Service's DNS
// name, signed by the CA in the webhook configuration's caBundle.
func verify(t *testing.T, o certs.Options, dir string, at time.Time) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: o.WebhookConfiguration}, vwc); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(vwc.Webhooks[0].ClientConfig.CABundle) {
		t.Fatal("caBundle holds no certificate")
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "webhook." + o.Namespace + ".svc", Roots: roots, CurrentTime: at}); err != nil {
		t.Fatalf("the apiserver would not trust the webhook: %v", err)
	}
	return leaf
}

func TestReplicasShareOneCertificateTheAPIServerTrusts(t *testing.T) {
	o := setUp(t, "certs-shared")
	ctx := context.Background()
	first, second := t.TempDir(), t.TempDir()
	o.CertDir = first
	if err := certs.Ensure(ctx, c, o); err != nil {
		t.Fatal(err)
	}
	o.CertDir = second // a second replica
	if err := certs.Ensure(ctx, c, o); err != nil {
		t.Fatal(err)
	}
	a, b := verify(t, o, first, time.Now()), verify(t, o, second, time.Now())
	if !a.Equal(b) {
		t.Error("the two replicas serve different certificates")
	}
	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.SecretName}, secret); err != nil {
		t.Fatal(err)
	}
	rv := secret.ResourceVersion
	if err := certs.Ensure(ctx, c, o); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.SecretName}, secret); err != nil || secret.ResourceVersion != rv {
		t.Errorf("a pass with a current certificate rewrote the Secret (err %v)", err)
	}
}

func TestCertificateIsRenewedBeforeItExpires(t *testing.T) {
	o := setUp(t, "certs-renewal")
	ctx := context.Background()
	o.CertDir = t.TempDir()
	o.Validity = 40 * 24 * time.Hour
	if err := certs.Ensure(ctx, c, o); err != nil {
		t.Fatal(err)
	}
	before := verify(t, o, o.CertDir, time.Now())
	later := time.Now().Add(15 * 24 * time.Hour) // within 30 days of the end
	o.Now = func() time.Time { return later }
	if err := certs.Ensure(ctx, c, o); err != nil {
		t.Fatal(err)
	}
	after := verify(t, o, o.CertDir, later)
	if after.Equal(before) || !after.NotAfter.After(before.NotAfter) {
		t.Errorf("not renewed: before until %s, after until %s", before.NotAfter, after.NotAfter)
	}
}

// TestCAIsReplacedWithAnOverlap follows the default CA (ten years) and serving certificates (one
// year, renewed 30 days before their end) of two replicas on a clock: renewals keep the CA, so the
// caBundle does not change; a year before the CA's end a new CA joins the bundle in front of it
// without signing yet; the next pass signs from the new CA while the previous CA still verifies
// what the other replica serves; once expired, the previous CA leaves the bundle.
func TestCAIsReplacedWithAnOverlap(t *testing.T) {
	o := setUp(t, "certs-ca-overlap")
	ctx := context.Background()
	day := 24 * time.Hour
	start := time.Now()
	pass := func(dir string, at time.Time) {
		t.Helper()
		o.CertDir, o.Now = dir, func() time.Time { return at }
		if err := certs.Ensure(ctx, c, o); err != nil {
			t.Fatal(err)
		}
	}
	bundle := func() []*x509.Certificate {
		t.Helper()
		vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := c.Get(ctx, client.ObjectKey{Name: o.WebhookConfiguration}, vwc); err != nil {
			t.Fatal(err)
		}
		var cas []*x509.Certificate
		for rest := vwc.Webhooks[0].ClientConfig.CABundle; ; {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				return cas
			}
			ca, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			cas = append(cas, ca)
		}
	}
	a, b := t.TempDir(), t.TempDir() // two replicas

	pass(a, start)
	pass(b, start)
	first := bundle()
	var at time.Time
	for k := time.Duration(1); k <= 9; k++ { // every 340 days the certificate is due (it ends at 365)
		at = start.Add(k * 340 * day)
		previous := verify(t, o, a, at)
		pass(a, at)
		if got := bundle(); len(got) != 1 || !got[0].Equal(first[0]) {
			t.Fatalf("day %d: renewing the certificate changed the caBundle (%d CAs)", k*340, len(got))
		}
		if renewed := verify(t, o, a, at); renewed.Equal(previous) {
			t.Fatalf("day %d: the certificate was not renewed", k*340)
		}
		verify(t, o, b, at) // b, not yet renewed, is still trusted
		pass(b, at)
	}

	at = start.Add(3400 * day) // a new certificate (365 days) would outlive the CA (3650 days)
	served := verify(t, o, b, at)
	pass(a, at)
	got := bundle()
	if len(got) != 2 || !got[1].Equal(first[0]) {
		t.Fatalf("want the new CA in front of the previous one, got %d CAs", len(got))
	}
	if kept := verify(t, o, a, at); !kept.Equal(served) {
		t.Error("a certificate from the CA made in the same pass was written")
	}

	at = at.Add(12 * time.Hour) // the next pass
	pass(a, at)
	renewed := verify(t, o, a, at)
	if err := renewed.CheckSignatureFrom(got[0]); err != nil {
		t.Errorf("not renewed from the new CA: %v", err)
	}
	if still := verify(t, o, b, at); !still.Equal(served) {
		t.Fatal("replica b's files changed without a pass of its own")
	}
	pass(b, at)
	verify(t, o, b, at)

	at = start.Add(3651 * day) // the previous CA has expired
	pass(a, at)
	if got := bundle(); len(got) != 1 || got[0].Equal(first[0]) {
		t.Errorf("the expired CA is still in the caBundle (%d CAs)", len(got))
	}
	verify(t, o, a, at)
}
