package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	sigyaml "sigs.k8s.io/yaml"
)

// OperatorUsername is the identity the operator has in a cluster installed from config/ or the
// chart. The admission policies in config/admission exempt exactly this name.
const OperatorUsername = "system:serviceaccount:tenant-operator-system:tenant-operator-controller-manager"

// PlatformManifests are the cluster objects installed with the CRDs: the tenant roles and the
// admission policies.
func PlatformManifests() []string {
	root := RepoRoot()
	files := []string{filepath.Join(root, "config", "tenant-roles", "tenant_roles.yaml")}
	admission, _ := filepath.Glob(filepath.Join(root, "config", "admission", "*.yaml"))
	for _, f := range admission {
		if filepath.Base(f) != "kustomization.yaml" {
			files = append(files, f)
		}
	}
	return files
}

// ApplyFiles creates or replaces every object in the given multi-document YAML files.
func ApplyFiles(ctx context.Context, c client.Client, files ...string) error {
	for _, f := range files {
		objs, err := ReadObjects(f)
		if err != nil {
			return err
		}
		for _, obj := range objs {
			if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj),
				client.FieldOwner("testenv"), client.ForceOwnership); err != nil {
				return fmt.Errorf("%s: apply %s %s: %w", filepath.Base(f), obj.GetKind(), obj.GetName(), err)
			}
		}
	}
	return nil
}

// ReadObjects parses a multi-document YAML file.
func ReadObjects(file string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	reader := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		obj := &unstructured.Unstructured{}
		if err := sigyaml.Unmarshal(doc, &obj.Object); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if len(obj.Object) > 0 {
			out = append(out, obj)
		}
	}
}

// OperatorUser returns the operator's identity, bound to the generated manager ClusterRole
// (config/rbac/role.yaml) and to nothing else, so tests prove that role is enough.
func (e *Environment) OperatorUser(ctx context.Context, c client.Client) (*envtest.AuthenticatedUser, error) {
	if err := ApplyFiles(ctx, c, filepath.Join(RepoRoot(), "config", "rbac", "role.yaml")); err != nil {
		return nil, err
	}
	binding := &rbacv1.ClusterRoleBinding{}
	binding.Name = "tenant-operator-manager-testenv"
	binding.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "manager-role"}
	binding.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "tenant-operator-controller-manager", Namespace: "tenant-operator-system"}}
	if err := c.Create(ctx, binding); client.IgnoreAlreadyExists(err) != nil {
		return nil, fmt.Errorf("bind the manager role: %w", err)
	}
	return e.AddUser(envtest.User{Name: OperatorUsername}, nil)
}

// OperatorConfig is the rest config the operator runs with in a suite: the identity OperatorUser
// makes, and no client-side rate limiting, as ctrl.GetConfig gives the binary (QPS -1: fairness is
// left to the apiserver). client-go's default of 5 requests a second would otherwise make the
// suites slow and delay events by minutes.
func (e *Environment) OperatorConfig(ctx context.Context, c client.Client) (*rest.Config, error) {
	user, err := e.OperatorUser(ctx, c)
	if err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(user.Config())
	cfg.QPS = -1
	return cfg, nil
}

// Impersonate returns a config that acts as the given user and groups, as the apiserver would
// authenticate them (system:authenticated included).
func (e *Environment) Impersonate(user string, groups ...string) *rest.Config {
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append([]string{"system:authenticated"}, groups...)}
	return cfg
}
