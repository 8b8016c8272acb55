package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// VaultRootToken is the dev server's root token in tests.
const VaultRootToken = "tenant-operator-test-root"

// Vault is a real HashiCorp Vault dev server (in-memory storage, unsealed, KV v2 at secret/).
type Vault struct {
	Address string
	bin     string
	addr    string
	cmd     *exec.Cmd
	logPath string
}

// FreeAddr returns a free loopback address.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// StartVault starts a Vault dev server on a free loopback port and waits until it serves.
func StartVault() (*Vault, error) {
	bin, err := ComponentBinary("vault")
	if err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	logFile, err := os.CreateTemp("", "vault-*.log")
	if err != nil {
		return nil, err
	}
	logFile.Close()
	v := &Vault{Address: "http://" + addr, bin: bin, addr: addr, logPath: logFile.Name()}
	return v, v.Start()
}

// Start (re)starts the server. A dev server keeps everything in memory: a restart loses every
// policy, role and secret, as a disaster would.
func (v *Vault) Start() error {
	logFile, err := os.OpenFile(v.logPath, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	v.cmd = exec.Command(v.bin, "server", "-dev", "-dev-root-token-id="+VaultRootToken, "-dev-listen-address="+v.addr)
	v.cmd.Stdout, v.cmd.Stderr = logFile, logFile
	v.cmd.Env = append(os.Environ(), "VAULT_DEV_ROOT_TOKEN_ID="+VaultRootToken, "HOME="+os.TempDir())
	if err := v.cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start vault: %w", err)
	}
	go func() { _ = v.cmd.Wait(); logFile.Close() }()
	RecordFuzzWorkerChild(v.cmd.Process.Pid)
	if err := waitOK(v.Address+"/v1/sys/health", nil); err != nil {
		return fmt.Errorf("vault did not become healthy: %w (log: %s)", err, v.logPath)
	}
	return nil
}

// waitOK polls url until it answers 200, for up to a minute, or until alive (when given) says the
// process serving it has exited. Start-up of a component, not a test assertion.
func waitOK(url string, alive func() bool) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && (alive == nil || alive()) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200", url)
}

// Stop stops the server and waits until its port is closed.
func (v *Vault) Stop() error {
	if v.cmd == nil || v.cmd.Process == nil {
		return nil
	}
	_ = v.cmd.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", v.addr, 100*time.Millisecond)
		if err != nil {
			return nil
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("vault still listening on %s", v.addr)
}

// Do sends a request to Vault as root and returns the status code and body.
func (v *Vault) Do(ctx context.Context, method, path, body string) (int, string, error) {
	return v.DoAs(ctx, VaultRootToken, method, path, body)
}

// DoAs sends a request to Vault with the given token ("" for none).
func (v *Vault) DoAs(ctx context.Context, token, method, path, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, v.Address+"/v1/"+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), err
}

// Binary is the vault binary, which is also the Vault CLI.
func (v *Vault) Binary() string { return v.bin }

// Seal seals Vault, as an operator of it would in an incident, or as a restarted server comes up:
// it answers 503 until unsealed, its data kept.
func (v *Vault) Seal(ctx context.Context) error {
	code, body, err := v.Do(ctx, http.MethodPut, "sys/seal", "")
	if err != nil {
		return err
	}
	if code != http.StatusNoContent && code != http.StatusOK {
		return fmt.Errorf("seal vault: HTTP %d: %s", code, body)
	}
	return nil
}

// Unseal unseals Vault with the dev server's unseal key (from its log).
func (v *Vault) Unseal(ctx context.Context) error {
	log, err := os.ReadFile(v.logPath)
	if err != nil {
		return err
	}
	i := strings.LastIndex(string(log), "Unseal Key: ")
	if i < 0 {
		return fmt.Errorf("no unseal key in %s", v.logPath)
	}
	key := strings.Fields(string(log)[i+len("Unseal Key: "):])[0]
	code, body, err := v.Do(ctx, http.MethodPut, "sys/unseal", fmt.Sprintf(`{"key":%q}`, key))
	if err != nil {
		return err
	}
	if code != http.StatusOK || strings.Contains(body, `"sealed":true`) {
		return fmt.Errorf("unseal vault: HTTP %d: %s", code, body)
	}
	return nil
}
