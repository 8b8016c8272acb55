// Command image builds a container image without a container engine or a registry, and writes it as a
// docker-save tarball that `ctr -n k8s.io images import` loads into containerd. make cluster builds
// every image of the real cluster with it: the pause sandbox, the operator (the same content as the
// Dockerfile: a static binary, a non-root user, no shell), the CloudNativePG operator and PostgreSQL.
//
//	go run ./hack/image -o bin/images/tenant-operator.tar -tag ghcr.io/tenantctl/tenant-operator:dev \
//	    -file bin/manager=/manager -user 65532:65532 -entrypoint /manager
//
// -file SRC=DST[:MODE] adds one file (mode 0755 by default); -dir SRC=DST adds a directory tree with
// its modes, owners and symlinks (a debootstrap root, for example); -symlink DST=TARGET adds a link.
// Each flag may repeat; everything goes into one layer, in the order given. -base TARBALL starts from
// an image this command wrote before (its layers and configuration, the new layer on top, -env
// appended to its environment, -user and -entrypoint replacing its own when given): the Barman Cloud
// sidecar is the PostgreSQL image plus the plugin's binary, and containerd stores the shared layer once.
package main

import (
	"archive/tar"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var files, dirs, links, env, entrypoint, cmd list
	out := flag.String("o", "", "the tarball to write")
	base := flag.String("base", "", "a docker-save tarball to start from (default: an empty image)")
	tag := flag.String("tag", "", "the image's fully qualified name and tag (docker.io/library/x:1, never :latest)")
	user := flag.String("user", "", "the user to run as, uid[:gid]")
	workdir := flag.String("workdir", "/", "the working directory")
	flag.Var(&files, "file", "SRC=DST[:MODE]: a file (mode 0755 by default)")
	flag.Var(&dirs, "dir", "SRC=DST: a directory tree, with its modes, owners and symlinks")
	flag.Var(&links, "symlink", "DST=TARGET: a symbolic link")
	flag.Var(&env, "env", "KEY=VALUE: an environment variable")
	flag.Var(&entrypoint, "entrypoint", "the entrypoint, one flag per argument")
	flag.Var(&cmd, "cmd", "the default arguments, one flag per argument")
	flag.Parse()
	if err := run(*out, *tag, *base, *user, *workdir, files, dirs, links, env, entrypoint, cmd); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(out, tag, base, user, workdir string, files, dirs, links, env, entrypoint, cmd []string) error {
	if out == "" || tag == "" {
		return errors.New("-o and -tag are required")
	}
	ref, err := name.NewTag(tag, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("-tag %s: %w (give the registry, repository and a tag)", tag, err)
	}
	if ref.TagStr() == "latest" {
		return errors.New("-tag: not :latest, which makes the kubelet pull (there is no registry)")
	}
	layerPath := out + ".layer.tar"
	if err := writeLayer(layerPath, files, dirs, links); err != nil {
		return err
	}
	defer os.Remove(layerPath)
	layer, err := tarball.LayerFromFile(layerPath)
	if err != nil {
		return err
	}
	img, cfg := empty.Image, &v1.ConfigFile{
		Created:      v1.Time{Time: time.Unix(0, 0).UTC()},
		OS:           "linux",
		Architecture: runtime.GOARCH,
		Config: v1.Config{
			Entrypoint: entrypoint, Cmd: cmd, User: user, WorkingDir: workdir,
			Env: append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...),
		},
	}
	if base != "" {
		if img, cfg, err = fromBase(base, user, workdir, env, entrypoint, cmd); err != nil {
			return fmt.Errorf("-base %s: %w", base, err)
		}
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return err
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return err
	}
	tmp := out + ".partial"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// fromBase reads a docker-save tarball's image and its configuration with the flags applied: its
// layers (and their diff IDs in the configuration) stay as they are.
func fromBase(file, user, workdir string, env, entrypoint, cmd []string) (v1.Image, *v1.ConfigFile, error) {
	img, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Config.Env = append(cfg.Config.Env, env...)
	if user != "" {
		cfg.Config.User = user
	}
	if workdir != "/" {
		cfg.Config.WorkingDir = workdir
	}
	if len(entrypoint) > 0 {
		cfg.Config.Entrypoint, cfg.Config.Cmd = entrypoint, cmd
	}
	return img, cfg, nil
}

// writeLayer writes one uncompressed layer: parent directories first, then each entry as given.
func writeLayer(file string, files, dirs, links []string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	seen := map[string]bool{}
	mkdirs := func(dst string) error {
		var parts []string
		for d := path.Dir(dst); d != "/" && d != "."; d = path.Dir(d) {
			parts = append([]string{d}, parts...)
		}
		for _, d := range parts {
			if seen[d] {
				continue
			}
			seen[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
				return err
			}
		}
		return nil
	}
	for _, spec := range files {
		src, dst, ok := strings.Cut(spec, "=")
		if !ok {
			return fmt.Errorf("-file %s: want SRC=DST[:MODE]", spec)
		}
		mode := int64(0o755)
		if d, m, ok := strings.Cut(dst, ":"); ok {
			if mode, err = strconv.ParseInt(m, 8, 32); err != nil {
				return fmt.Errorf("-file %s: mode: %w", spec, err)
			}
			dst = d
		}
		if err := mkdirs(dst); err != nil {
			return err
		}
		if err := addFile(tw, src, dst, mode); err != nil {
			return err
		}
	}
	for _, spec := range dirs {
		src, dst, ok := strings.Cut(spec, "=")
		if !ok {
			return fmt.Errorf("-dir %s: want SRC=DST", spec)
		}
		if err := mkdirs(path.Join(dst, "x")); err != nil {
			return err
		}
		if err := addTree(tw, src, dst); err != nil {
			return err
		}
	}
	for _, spec := range links {
		dst, target, ok := strings.Cut(spec, "=")
		if !ok {
			return fmt.Errorf("-symlink %s: want DST=TARGET", spec)
		}
		if err := mkdirs(dst); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(dst, "/"), Linkname: target, Mode: 0o777, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func addFile(tw *tar.Writer, src, dst string, mode int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(dst, "/"), Mode: mode, Size: st.Size(), ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	_, err = io.Copy(tw, in)
	return err
}

// addTree adds src's tree under dst, keeping modes, owners, symlinks and hard links.
func addTree(tw *tar.Writer, src, dst string) error {
	hardlinks := map[uint64]string{}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		// Device nodes, sockets and pipes have no place in an image; the runtime provides /dev.
		if info.Mode()&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeSocket|fs.ModeNamedPipe) != 0 {
			return nil
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = strings.TrimPrefix(path.Join(dst, filepath.ToSlash(rel)), "/")
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if st, ok := info.Sys().(*syscall.Stat_t); ok && info.Mode().IsRegular() && st.Nlink > 1 {
			if first, ok := hardlinks[st.Ino]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				return tw.WriteHeader(hdr)
			}
			hardlinks[st.Ino] = hdr.Name
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		in, err := os.Open(p) //nolint:gosec // G122,G304: a tree make image has just written under bin/, read by the user who wrote it
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.Copy(tw, in)
		return err
	})
}
