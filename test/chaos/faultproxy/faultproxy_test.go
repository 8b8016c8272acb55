package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tenantctl/tenant-operator/internal/test/testenv"
)

// The fault campaign's API class is only as good as its proxy: these tests show, against a real
// kube-apiserver, that each fault does what the campaign's report says it did, and only to the
// requests it is meant for.

func TestFaultsReachOnlyTheRequestsTheyAreFor(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	p, err := Start(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	ctx := context.Background()
	direct := kubernetes.NewForConfigOrDie(env.Config)
	// Through the proxy, as the operator: no credentials, plain HTTP, no client-side rate limit.
	cfg := &rest.Config{Host: p.URL(), QPS: -1}
	through := kubernetes.NewForConfigOrDie(cfg)

	const ns = "faults"
	if _, err := direct.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Namespace: ns}}
		if _, err := direct.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		t.Helper()
		list, err := through.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list through the proxy: %v", err)
		}
		n := 0
		for _, cm := range list.Items {
			if cm.Name != "kube-root-ca.crt" {
				n++
			}
		}
		return n
	}

	t.Run("none forwards as the operator", func(t *testing.T) {
		if n := count(); n != 6 {
			t.Errorf("listed %d ConfigMaps through the proxy, want 6", n)
		}
		if p.Injected() != 0 {
			t.Errorf("injected %d faults with none set", p.Injected())
		}
	})

	t.Run("500", func(t *testing.T) {
		p.Set(ServerError, 1)
		defer p.Set(None, 0)
		_, err := through.CoreV1().ConfigMaps(ns).Get(ctx, "cm-0", metav1.GetOptions{})
		if !apierrors.IsInternalError(err) {
			t.Errorf("get under 500: %v, want an InternalError", err)
		}
	})

	t.Run("429 says when to retry", func(t *testing.T) {
		p.Set(TooManyRequests, 1)
		defer p.Set(None, 0)
		resp, err := http.Get(p.URL() + "/api/v1/namespaces/" + ns + "/configmaps/cm-0")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("answer %d, Retry-After %q; want 429 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})

	t.Run("409 on writes only", func(t *testing.T) {
		p.Set(Conflict, 1)
		defer p.Set(None, 0)
		if _, err := through.CoreV1().ConfigMaps(ns).Get(ctx, "cm-0", metav1.GetOptions{}); err != nil {
			t.Errorf("a read under 409: %v", err)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "written", Namespace: ns}}
		if _, err := through.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); !apierrors.IsConflict(err) {
			t.Errorf("a write under 409: %v, want a Conflict", err)
		}
		if _, err := direct.CoreV1().ConfigMaps(ns).Get(ctx, "written", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the refused write reached the API server: %v", err)
		}
	})

	t.Run("partial lists drop half the items, never an object read by name", func(t *testing.T) {
		p.Set(PartialList, 1)
		defer p.Set(None, 0)
		if n := count(); n != 3 {
			t.Errorf("listed %d of 6 ConfigMaps under partial-list, want 3", n)
		}
		for i := range 6 {
			if _, err := through.CoreV1().ConfigMaps(ns).Get(ctx, fmt.Sprintf("cm-%d", i), metav1.GetOptions{}); err != nil {
				t.Errorf("get cm-%d under partial-list: %v", i, err)
			}
		}
	})

	t.Run("timeout holds the request, then 504", func(t *testing.T) {
		defer func(h time.Duration) { Hold = h }(Hold)
		Hold = 500 * time.Millisecond
		p.Set(Timeout, 1)
		defer p.Set(None, 0)
		_, err := through.CoreV1().ConfigMaps(ns).Get(ctx, "cm-0", metav1.GetOptions{})
		if !apierrors.IsTimeout(err) {
			t.Errorf("get under timeout: %v, want a Timeout", err)
		}
	})

	t.Run("a cut watch ends", func(t *testing.T) {
		p.Set(CutWatch, 1)
		defer p.Set(None, 0)
		w, err := through.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		deadline := time.After(30 * time.Second) // the API server's own watch lasts minutes
		for {
			select {
			case _, open := <-w.ResultChan():
				if !open {
					return
				}
			case <-deadline:
				t.Fatal("the watch was not cut")
			}
		}
	})

	t.Run("down refuses connections until up", func(t *testing.T) {
		p.Down()
		_, err := through.CoreV1().ConfigMaps(ns).Get(ctx, "cm-0", metav1.GetOptions{})
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("get while down: %v, want connection refused", err)
		}
		if err := p.Up(); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 6 {
			t.Errorf("listed %d ConfigMaps once up, want 6", n)
		}
	})
}
