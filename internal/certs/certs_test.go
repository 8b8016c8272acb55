package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
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

func setUp(t *testing.T, name string) certs.Options {
	t.Helper()
	ctx := context.Background()
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
