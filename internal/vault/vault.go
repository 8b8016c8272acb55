// Package vault applies tenants' Vault policies and Kubernetes-auth roles with
// github.com/hashicorp/vault/api. Like internal/apply it reads before it writes: a policy or role
// already as desired costs a read and no write. It logs in again when its token stops working, so
// a Vault restart or re-seal needs no operator restart. Calls from many reconcile workers run at
// once, and each is bounded by its caller's context.
package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantctl/tenant-operator/internal/builders/secrets"
	"github.com/tenantctl/tenant-operator/internal/config"
)

// Client manages tenants' policies and roles in one Vault. It is safe for concurrent use.
type Client struct {
	cfg    config.Vault
	reader client.Reader // reads the token Secret (method token)

	// anonymous holds no token and is never changed after New: logins go through it, and every
	// session is a clone of it.
	anonymous *vaultapi.Client
	// session is the logged-in client calls share, nil until the first login. A vaultapi.Client
	// whose token is never changed may serve many requests at once, so a new token means a new
	// session, swapped in whole.
	session atomic.Pointer[vaultapi.Client]
	// loggingIn holds one token while a login runs: one login at a time, and a call waiting for it
	// still honours its context.
	loggingIn chan struct{}
}

// ErrUnavailable wraps every failure to reach a usable Vault (down, sealed, refusing the login, or
// not answering before the caller's context ended; then the context's error is wrapped too).
var ErrUnavailable = errors.New("vault unavailable")

// New returns a client for the configured Vault. It does not contact Vault.
func New(cfg config.Vault, reader client.Reader) (*Client, error) {
	vc := vaultapi.DefaultConfig()
	vc.Address = cfg.Address
	vc.MaxRetries = 0 // the controller's backoff retries; a blocked worker helps nobody
	if cfg.CABundle != "" {
		if err := vc.ConfigureTLS(&vaultapi.TLSConfig{CACertBytes: []byte(cfg.CABundle)}); err != nil {
			return nil, fmt.Errorf("vault CA bundle: %w", err)
		}
	}
	api, err := vaultapi.NewClient(vc)
	if err != nil {
		return nil, err
	}
	api.ClearToken()
	return &Client{cfg: cfg, reader: reader, anonymous: api, loggingIn: make(chan struct{}, 1)}, nil
}

// do runs fn with a logged-in client, logging in again once if Vault refuses the current token.
// fn must bound every request with ctx. When ctx ends first, the error says so and wraps ctx's
// error: the caller gave up waiting, Vault refused nothing.
func (c *Client) do(ctx context.Context, fn func(*vaultapi.Client) error) error {
	err := c.call(ctx, fn)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: gave up waiting: %w", ErrUnavailable, ctx.Err())
	}
	return err
}

func (c *Client) call(ctx context.Context, fn func(*vaultapi.Client) error) error {
	api, err := c.loggedIn(ctx, nil)
	if err != nil {
		return err
	}
	err = fn(api)
	var resp *vaultapi.ResponseError
	if errors.As(err, &resp) && resp.StatusCode == http.StatusForbidden {
		if api, err = c.loggedIn(ctx, api); err != nil {
			return err
		}
		err = fn(api)
	}
	if err != nil && unavailable(err) {
		return fmt.Errorf("%w: %s", ErrUnavailable, describe(err))
	}
	return err
}

// loggedIn returns the current session, logging in first when there is none or when it is refused,
// the session Vault just refused a call with. Calls that find a usable session do not wait for
// anything; calls that need a login wait for the one in flight and use its session.
func (c *Client) loggedIn(ctx context.Context, refused *vaultapi.Client) (*vaultapi.Client, error) {
	if s := c.session.Load(); s != nil && s != refused {
		return s, nil
	}
	select {
	case c.loggingIn <- struct{}{}:
		defer func() { <-c.loggingIn }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s := c.session.Load(); s != nil && s != refused { // another call logged in meanwhile
		return s, nil
	}
	s, err := c.login(ctx)
	c.session.Store(s) // nil when the login failed: a refused session is not tried again
	return s, err
}

// login logs in and returns a new session holding the token.
func (c *Client) login(ctx context.Context) (*vaultapi.Client, error) {
	token, err := c.token(ctx)
	if err != nil {
		return nil, err
	}
	s, err := c.anonymous.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	s.SetToken(token)
	return s, nil
}

// token obtains a Vault token by the configured method.
func (c *Client) token(ctx context.Context) (string, error) {
	switch c.cfg.Auth.Method {
	case "token":
		ref := c.cfg.Auth.TokenSecret
		s := &corev1.Secret{}
		if err := c.reader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, s); err != nil {
			return "", fmt.Errorf("%w: read the Vault token Secret %s/%s: %v", ErrUnavailable, ref.Namespace, ref.Name, err)
		}
		token := strings.TrimSpace(string(s.Data[ref.Key]))
		if token == "" {
			return "", fmt.Errorf("%w: Secret %s/%s has no key %q", ErrUnavailable, ref.Namespace, ref.Name, ref.Key)
		}
		return token, nil
	case "kubernetes":
		jwt, err := os.ReadFile(c.cfg.Auth.TokenPath)
		if err != nil {
			return "", fmt.Errorf("%w: read the ServiceAccount token: %v", ErrUnavailable, err)
		}
		secret, err := c.anonymous.Logical().WriteWithContext(ctx, path.Join("auth", c.cfg.KubernetesAuthMount, "login"),
			map[string]any{"role": c.cfg.Auth.Role, "jwt": strings.TrimSpace(string(jwt))})
		if err != nil || secret == nil || secret.Auth == nil {
			return "", fmt.Errorf("%w: log in with Kubernetes auth role %s: %s", ErrUnavailable, c.cfg.Auth.Role, describe(err))
		}
		return secret.Auth.ClientToken, nil
	}
	return "", fmt.Errorf("unknown vault auth method %q", c.cfg.Auth.Method)
}

// EnsurePolicy writes the policy unless Vault already holds exactly these rules.
func (c *Client) EnsurePolicy(ctx context.Context, p secrets.Policy) (bool, error) {
	changed := false
	err := c.do(ctx, func(api *vaultapi.Client) error {
		current, err := api.Sys().GetPolicyWithContext(ctx, p.Name)
		if err != nil {
			return err
		}
		if current == p.Rules {
			return nil
		}
		changed = true
		return api.Sys().PutPolicyWithContext(ctx, p.Name, p.Rules)
	})
	if err != nil {
		return changed, fmt.Errorf("vault policy %s: %w", p.Name, err)
	}
	return changed, nil
}

// EnsureRole writes the Kubernetes-auth role unless Vault already holds these parameters.
func (c *Client) EnsureRole(ctx context.Context, r secrets.Role) (bool, error) {
	rolePath := path.Join("auth", c.cfg.KubernetesAuthMount, "role", r.Name)
	changed := false
	err := c.do(ctx, func(api *vaultapi.Client) error {
		current, err := api.Logical().ReadWithContext(ctx, rolePath)
		if err != nil {
			return err
		}
		if current != nil && roleMatches(current.Data, r.Params) {
			return nil
		}
		changed = true
		_, err = api.Logical().WriteWithContext(ctx, rolePath, r.Params)
		return err
	})
	if err != nil {
		return changed, fmt.Errorf("vault role %s: %w", r.Name, err)
	}
	return changed, nil
}

// roleMatches compares the parameters we set with what Vault returns (lists as strings, numbers as
// json.Number).
func roleMatches(current, desired map[string]any) bool {
	for k, want := range desired {
		got, ok := current[k]
		if !ok {
			return false
		}
		switch w := want.(type) {
		case []string:
			if !reflect.DeepEqual(strings.Join(sorted(w), ","), strings.Join(sorted(toStrings(got)), ",")) {
				return false
			}
		case string:
			if fmt.Sprint(got) != w {
				return false
			}
		default:
			if fmt.Sprint(got) != fmt.Sprint(w) {
				return false
			}
		}
	}
	return true
}

func toStrings(v any) []string {
	switch x := v.(type) {
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	case []string:
		return x
	case string:
		return strings.Split(x, ",")
	}
	return nil
}

func sorted(in []string) []string {
	out := append([]string{}, in...)
	sort.Strings(out)
	return out
}

// Delete removes the tenant's policies and roles.
func (c *Client) Delete(ctx context.Context, policies []secrets.Policy, roles []secrets.Role) error {
	return c.do(ctx, func(api *vaultapi.Client) error {
		for _, r := range roles {
			if _, err := api.Logical().DeleteWithContext(ctx, path.Join("auth", c.cfg.KubernetesAuthMount, "role", r.Name)); err != nil {
				return fmt.Errorf("delete vault role %s: %w", r.Name, err)
			}
		}
		for _, p := range policies {
			if err := api.Sys().DeletePolicyWithContext(ctx, p.Name); err != nil {
				return fmt.Errorf("delete vault policy %s: %w", p.Name, err)
			}
		}
		return nil
	})
}

// Purge deletes every secret (all versions and metadata) under the tenant's path.
func (c *Client) Purge(ctx context.Context, tenantPath string) error {
	return c.do(ctx, func(api *vaultapi.Client) error { return c.purge(ctx, api, tenantPath) })
}

func (c *Client) purge(ctx context.Context, api *vaultapi.Client, dir string) error {
	list, err := api.Logical().ListWithContext(ctx, path.Join(c.cfg.KVMount, "metadata", dir))
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	if list == nil {
		return nil
	}
	keys, _ := list.Data["keys"].([]any)
	for _, k := range keys {
		key := fmt.Sprint(k)
		if strings.HasSuffix(key, "/") {
			if err := c.purge(ctx, api, path.Join(dir, key)); err != nil {
				return err
			}
			continue
		}
		if _, err := api.Logical().DeleteWithContext(ctx, path.Join(c.cfg.KVMount, "metadata", dir, key)); err != nil {
			return fmt.Errorf("delete %s: %w", path.Join(dir, key), err)
		}
	}
	return nil
}

// unavailable says whether err means Vault cannot be used right now (as opposed to refusing a
// request): unreachable, sealed, or not yet initialised.
func unavailable(err error) bool {
	var resp *vaultapi.ResponseError
	if errors.As(err, &resp) {
		return resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode >= 500
	}
	return true // transport errors: refused, reset, timed out
}

// describe shortens a Vault error to its cause, without request details.
func describe(err error) string {
	if err == nil {
		return "no token returned"
	}
	var resp *vaultapi.ResponseError
	if errors.As(err, &resp) {
		if len(resp.Errors) > 0 {
			return fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.Join(resp.Errors, "; "))
		}
		return fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}
