package campaign

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tenancyv1alpha1 "github.com/tenantctl/tenant-operator/api/v1alpha1"
	"github.com/tenantctl/tenant-operator/controllers"
)

// Upgrade is fault class 5b: the operator of the previous commit (Options.Previous) runs the
// platform with Options.UpgradeTenants tenants; then it is replaced by this commit's, as a rolling
// update would. Once the new operator has reconciled every tenant, no object of any tenant may have
// changed: an upgrade must not rewrite what customers have. The recovery is the time from the
// new operator's start until it has reconciled every tenant.
func Upgrade(ctx context.Context, o Options) (res Result) {
	res = Result{Class: "upgrade", Faults: 1, Tenants: o.UpgradeTenants}
	start := time.Now()
	defer func() { res.Elapsed = time.Since(start) }()
	if o.Previous == "" {
		res.Problems = append(res.Problems, "no previous operator binary to upgrade from")
		return res
	}
	c, err := client.New(o.Stack.Env.Config, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
		return res
	}
	rd := round{}
	for t := 0; t < o.UpgradeTenants; t++ {
		rd = append(rd, action{kind: "create", tenant: t, version: 1})
	}
	rn := &runner{stack: o.Stack, c: c, logf: o.Logf, script: script{tenants: o.UpgradeTenants, rounds: []round{rd}},
		prefix: "upgrade", present: map[string]bool{}, policy: map[string]string{}}
	defer func() {
		if err := rn.cleanUp(context.Background()); err != nil {
			res.Problems = append(res.Problems, err.Error())
		}
	}()

	o.Stack.Operator.Stop()
	previous, err := o.Stack.StartReplica(ctx, "previous", o.Previous, []string{"--leader-elect=false", "--zap-log-level=1"})
	if err != nil {
		res.Problems = append(res.Problems, "start the previous operator: "+err.Error())
		if err := o.Stack.StartOperator(ctx); err != nil {
			res.Problems = append(res.Problems, err.Error())
		}
		return res
	}
	o.Logf("upgrade: %d tenants under the previous commit's operator", o.UpgradeTenants)
	if _, _, err := rn.play(ctx, nil); err != nil {
		previous.Stop()
		res.Problems = append(res.Problems, "under the previous operator: "+err.Error())
		if err := o.Stack.StartOperator(ctx); err != nil {
			res.Problems = append(res.Problems, err.Error())
		}
		return res
	}
	before, err := versions(ctx, c, rn.prefix)
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
		return res
	}
	previous.Stop()
	upgraded := time.Now()
	if err := o.Stack.StartOperator(ctx); err != nil {
		res.Problems = append(res.Problems, "start this commit's operator: "+err.Error())
		return res
	}
	// Every tenant reconciled by the new operator: its reconcile count reaches the tenants'.
	if err := poll(ctx, converge, func() error {
		done, err := reconciled(ctx, o.Stack.OperatorMetrics)
		if err == nil && done < o.UpgradeTenants {
			err = fmt.Errorf("this commit's operator has reconciled %d of %d tenants", done, o.UpgradeTenants)
		}
		return err
	}); err != nil {
		res.Problems = append(res.Problems, err.Error())
		return res
	}
	res.Recovery = []time.Duration{time.Since(upgraded)}
	if err := rn.converged(ctx); err != nil {
		res.Problems = append(res.Problems, "after the upgrade: "+err.Error())
	}
	after, err := versions(ctx, c, rn.prefix)
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
		return res
	}
	res.Objects = len(before)
	var changed []string
	for key, v := range before {
		if after[key] != v {
			changed = append(changed, key)
		}
	}
	sort.Strings(changed)
	for _, key := range changed {
		res.Problems = append(res.Problems, "changed by the upgrade: "+key)
	}
	o.Logf("upgrade: %d objects of %d tenants, %d changed by the upgrade", len(before), o.UpgradeTenants, len(changed))
	return res
}

// versions maps every object of the run's tenants to what the operator last wrote to it: its
// managedFields entries (the time of an entry moves only when a write of the operator changed the
// object). An object the operator never wrote (a Secret ESO fills, the customer's data) maps to its
// resourceVersion. Other writers' changes (ESO's status of an ExternalSecret) do not count, nor do
// the operator's writes to the Tenants themselves (their status is the new operator's to write).
// An entry's time has a resolution of a second, and the new operator starts seconds after the
// previous one's last write: a change to an object's values moves it even where its fields stay.
func versions(ctx context.Context, c client.Client, prefix string) (map[string]string, error) {
	out := map[string]string{}
	for _, gvk := range snapshotKinds {
		if gvk.Kind == "Tenant" {
			continue
		}
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, list); err != nil {
			return nil, fmt.Errorf("list %s: %w", gvk.Kind, err)
		}
		for _, u := range list.Items {
			if strings.HasPrefix(u.GetLabels()[tenancyv1alpha1.LabelTenant], prefix+"-") || strings.HasPrefix(u.GetNamespace(), "tenant-"+prefix+"-") {
				var ours []string
				for _, e := range u.GetManagedFields() {
					if strings.HasPrefix(e.Manager, "tenant-operator") {
						ours = append(ours, fmt.Sprintf("%s %s %s %v %s", e.Manager, e.Operation, e.Subresource, e.Time, e.FieldsV1.String()))
					}
				}
				sort.Strings(ours)
				v := strings.Join(ours, "\n")
				if v == "" {
					v = "resourceVersion " + u.GetResourceVersion()
				}
				out[fmt.Sprintf("%s %s/%s", gvk.Kind, u.GetNamespace(), u.GetName())] = v
			}
		}
	}
	return out, nil
}

// reconciled reads how many Tenant reconciles the operator has finished.
func reconciled(ctx context.Context, metrics string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metrics+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	total := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "controller_runtime_reconcile_total{") && strings.Contains(line, `controller="tenant"`) {
			fields := strings.Fields(line)
			v, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
			total += v
		}
	}
	return int(total), nil
}
