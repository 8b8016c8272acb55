package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// An image written by run reads back as containerd would import it: the tag, the platform, the
// user and entrypoint, and every file with its mode, symlinks and hard links kept.
func TestImageReadsBackWithItsConfigAndFiles(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "manager")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	for _, d := range []string{"usr/bin", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/psql"), []byte("psql"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "usr/bin/psql"), filepath.Join(root, "usr/bin/psql-15")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("psql", filepath.Join(root, "usr/bin/pg")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("postgres:x:26:26::/:/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, "img.tar")
	const tag = "ghcr.io/tenantctl/tenant-operator:dev"
	err := run(out, tag, "", "65532:65532", "/", []string{bin + "=/operator/manager_" + runtime.GOARCH}, []string{root + "=/"},
		[]string{"/manager=operator/manager_" + runtime.GOARCH}, []string{"A=b"}, []string{"/manager"}, []string{"controller"})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.NewTag(tag)
	img, err := tarball.ImageFromPath(out, &ref)
	if err != nil {
		t.Fatalf("read the image back under its tag: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s (containerd refuses an image without one)", cfg.OS, cfg.Architecture, runtime.GOARCH)
	}
	if cfg.Config.User != "65532:65532" || strings.Join(cfg.Config.Entrypoint, " ") != "/manager" || strings.Join(cfg.Config.Cmd, " ") != "controller" {
		t.Errorf("config: user %q entrypoint %q cmd %q", cfg.Config.User, cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	if !strings.Contains(strings.Join(cfg.Config.Env, " "), "A=b") || !strings.HasPrefix(cfg.Config.Env[0], "PATH=") {
		t.Errorf("env %q", cfg.Config.Env)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = h
	}
	want := map[string]func(*tar.Header) bool{
		"operator/":                          func(h *tar.Header) bool { return h.Typeflag == tar.TypeDir },
		"operator/manager_" + runtime.GOARCH: func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg && h.Mode == 0o755 },
		"manager": func(h *tar.Header) bool {
			return h.Typeflag == tar.TypeSymlink && h.Linkname == "operator/manager_"+runtime.GOARCH
		},
		"usr/bin/psql": func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg && h.Mode&0o777 == 0o755 },
		"usr/bin/pg":   func(h *tar.Header) bool { return h.Typeflag == tar.TypeSymlink && h.Linkname == "psql" },
		"etc/passwd":   func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg && h.Mode&0o777 == 0o644 },
	}
	for path, ok := range want {
		h := entries[path]
		if h == nil || !ok(h) {
			t.Errorf("layer entry %s: %+v", path, h)
		}
	}
	// The two names of one file: one is stored, the other is a hard link to it.
	a, b := entries["usr/bin/psql"], entries["usr/bin/psql-15"]
	if a == nil || b == nil || (a.Typeflag != tar.TypeLink && b.Typeflag != tar.TypeLink) {
		t.Errorf("hard link not kept: %+v %+v", a, b)
	}
	if _, err := os.Stat(out + ".layer.tar"); !os.IsNotExist(err) {
		t.Errorf("the temporary layer file was left behind")
	}
}

func TestImageRefusesWhatCannotRunWithoutARegistry(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		tag   string
		files []string
		want  string
	}{
		":latest makes the kubelet pull": {tag: "ghcr.io/x/y:latest", want: "not :latest"},
		"no tag is :latest":              {tag: "ghcr.io/x/y", want: "-tag"},
		"a file without its destination": {tag: "ghcr.io/x/y:1", files: []string{"bin/manager"}, want: "want SRC=DST"},
		"a mode that is not octal":       {tag: "ghcr.io/x/y:1", files: []string{"main.go=/m:rwx"}, want: "mode"},
	} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(dir, "img.tar")
			err := run(out, tc.tag, "", "", "/", tc.files, nil, nil, nil, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a refused build wrote %s", out)
			}
		})
	}
}

// An image built on a base keeps the base's layer and environment under the new layer, and takes the
// user and entrypoint given: the Barman Cloud sidecar is the PostgreSQL image plus the plugin binary.
func TestImageOnABaseKeepsItsLayersAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	psql, bin := filepath.Join(dir, "psql"), filepath.Join(dir, "manager")
	for _, f := range []string{psql, bin} {
		if err := os.WriteFile(f, []byte(filepath.Base(f)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	base := filepath.Join(dir, "base.tar")
	if err := run(base, "localhost/x/postgresql:15", "", "26:26", "/", []string{psql + "=/usr/bin/psql"}, nil, nil,
		[]string{"PATH=/usr/lib/postgresql/15/bin:/usr/bin"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "sidecar.tar")
	if err := run(out, "localhost/x/sidecar:1", base, "", "/", []string{bin + "=/manager"}, nil, nil, []string{"B=c"},
		[]string{"/manager"}, nil); err != nil {
		t.Fatal(err)
	}
	ref, _ := name.NewTag("localhost/x/sidecar:1")
	img, err := tarball.ImageFromPath(out, &ref)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "26:26" || strings.Join(cfg.Config.Entrypoint, " ") != "/manager" {
		t.Errorf("user %q, entrypoint %q; want the base's user and the new entrypoint", cfg.Config.User, cfg.Config.Entrypoint)
	}
	if env := strings.Join(cfg.Config.Env, " "); !strings.Contains(env, "/usr/lib/postgresql/15/bin") || !strings.Contains(env, "B=c") {
		t.Errorf("env %q, want the base's PATH and B=c", env)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 || len(cfg.RootFS.DiffIDs) != 2 {
		t.Fatalf("%d layers and %d diff IDs (%v), want the base's and the new one", len(layers), len(cfg.RootFS.DiffIDs), err)
	}
	baseImg, err := tarball.ImageFromPath(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	baseLayers, _ := baseImg.Layers()
	want, _ := baseLayers[0].Digest()
	if got, _ := layers[0].Digest(); got != want {
		t.Errorf("first layer %s, want the base's %s (so containerd stores it once)", got, want)
	}
}
