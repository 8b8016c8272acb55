/*
Copyright 2026 The tenant-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command provisioner is a dynamic hostPath volume provisioner for the real single-node test
// cluster of `make cluster`.
//
// Why it exists: that cluster has no dynamic provisioner, so the PersistentVolumeClaims of the
// CloudNativePG clusters (and anything else that asks for storage) would stay Pending forever.
// Rancher's local-path-provisioner would do the job, but it creates and removes volume
// directories by starting a helper pod from an image that the test cluster cannot pull.
//
// What it does: it runs on the node's host (not in a pod) against the cluster's API server
// (-kubeconfig), built on sigs.k8s.io/sig-storage-lib-external-provisioner. For every claim of a
// StorageClass whose provisioner is -name (default tenantctl.io/hostpath) it creates the
// directory <-dir>/<PV name> with mode 0777, so that a pod running as any uid can write to it
// (postgres in the CloudNativePG image runs as uid 26), and creates a PersistentVolume with a
// hostPath source pointing at it and a required node affinity to -node. When such a volume is
// released and its reclaim policy is Delete, it removes the directory (only ever a directory
// directly under -dir) and the PersistentVolume. Both Immediate and WaitForFirstConsumer
// binding work; capacity is recorded but not enforced, claims with a selector, block volumes and
// mount options are refused. Leader election is off: run exactly one instance.
//
// The StorageClass that names this provisioner is created by hack/cluster.sh, which also starts
// this command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

// defaultName is the provisioner name the StorageClass of hack/cluster.sh refers to.
const defaultName = "tenantctl.io/hostpath"

func main() {
	klog.InitFlags(nil)
	kubeconfig := flag.String("kubeconfig", "", "path of the kubeconfig of the cluster (required)")
	name := flag.String("name", defaultName, "provisioner name, as in the StorageClass's provisioner field")
	dir := flag.String("dir", "", "absolute host directory in which volume directories are created (required)")
	node := flag.String("node", "", "name of the cluster's node, which is also its kubernetes.io/hostname label (required)")
	flag.Parse()
	defer klog.Flush()

	if err := run(*kubeconfig, *name, *dir, *node); err != nil {
		klog.ErrorS(err, "provisioner failed")
		klog.Flush()
		os.Exit(1)
	}
}

func run(kubeconfig, name, dir, node string) error {
	switch {
	case flag.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	case kubeconfig == "":
		return errors.New("-kubeconfig is required")
	case name == "":
		return errors.New("-name must not be empty")
	case dir == "":
		return errors.New("-dir is required")
	case !filepath.IsAbs(dir):
		return fmt.Errorf("-dir %q must be an absolute path", dir)
	case filepath.Clean(dir) == "/":
		return errors.New("-dir must not be the root directory")
	case node == "":
		return errors.New("-node is required")
	}
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var workers sync.WaitGroup
	pc := controller.NewProvisionController(ctx, client, name, &hostPath{dir: dir, node: node},
		controller.LeaderElection(false), // a single instance
	)
	pc.ControllerWaitGroup(&workers)
	klog.InfoS("starting hostPath provisioner", "name", name, "dir", dir, "node", node)
	pc.Run(ctx)    // returns when ctx is cancelled
	workers.Wait() // let in-flight provisioning and deletion finish
	klog.InfoS("stopped hostPath provisioner")
	return nil
}

// hostPath provisions PersistentVolumes as directories directly under dir on the single node
// named node.
type hostPath struct {
	dir  string // absolute and clean
	node string
}

var _ controller.Provisioner = (*hostPath)(nil)

// Provision creates the directory <dir>/<PV name> and returns the PersistentVolume for it. The
// library then sets the claim reference, the pv.kubernetes.io/provisioned-by annotation and the
// storage class name, and creates the PV.
func (h *hostPath) Provision(ctx context.Context, options controller.ProvisionOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	pvc := options.PVC
	if pvc == nil {
		return nil, controller.ProvisioningFinished, errors.New("no claim given")
	}
	if pvc.Spec.Selector != nil {
		return nil, controller.ProvisioningFinished, errors.New("selectors are not supported")
	}
	if options.SelectedNodeName != "" && options.SelectedNodeName != h.node {
		return nil, controller.ProvisioningFinished, fmt.Errorf("selected node %q is not this provisioner's node %q", options.SelectedNodeName, h.node)
	}
	if pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == v1.PersistentVolumeBlock {
		return nil, controller.ProvisioningFinished, errors.New("block volumes are not supported")
	}
	if sc := options.StorageClass; sc != nil && len(sc.MountOptions) > 0 {
		return nil, controller.ProvisioningFinished, fmt.Errorf("storage class %s has mount options, which hostPath volumes do not support", sc.Name)
	}
	size, ok := pvc.Spec.Resources.Requests[v1.ResourceStorage]
	if !ok {
		return nil, controller.ProvisioningFinished, errors.New("the claim requests no storage")
	}
	name := options.PVName
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return nil, controller.ProvisioningFinished, fmt.Errorf("unusable volume name %q", name)
	}

	path := filepath.Join(h.dir, name)
	// An earlier attempt may have created the directory and then failed to save the PV.
	if err := os.Mkdir(path, 0o777); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, controller.ProvisioningFinished, err
	}
	if fi, err := os.Lstat(path); err != nil {
		return nil, controller.ProvisioningFinished, err
	} else if !fi.IsDir() {
		return nil, controller.ProvisioningFinished, fmt.Errorf("%s exists and is not a directory", path)
	}
	// Mkdir's mode is masked by the umask.
	if err := os.Chmod(path, 0o777); err != nil {
		return nil, controller.ProvisioningFinished, err
	}

	reclaim := v1.PersistentVolumeReclaimDelete
	storageClass := ""
	if sc := options.StorageClass; sc != nil {
		storageClass = sc.Name
		if sc.ReclaimPolicy != nil {
			reclaim = *sc.ReclaimPolicy
		}
	}
	hostPathType := v1.HostPathDirectoryOrCreate
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaim,
			AccessModes:                   pvc.Spec.AccessModes,
			Capacity:                      v1.ResourceList{v1.ResourceStorage: size.DeepCopy()},
			VolumeMode:                    pvc.Spec.VolumeMode,
			StorageClassName:              storageClass,
			PersistentVolumeSource: v1.PersistentVolumeSource{
				HostPath: &v1.HostPathVolumeSource{Path: path, Type: &hostPathType},
			},
			NodeAffinity: &v1.VolumeNodeAffinity{
				Required: &v1.NodeSelector{
					NodeSelectorTerms: []v1.NodeSelectorTerm{{
						MatchExpressions: []v1.NodeSelectorRequirement{{
							Key:      v1.LabelHostname,
							Operator: v1.NodeSelectorOpIn,
							Values:   []string{h.node},
						}},
					}},
				},
			},
		},
	}
	klog.FromContext(ctx).Info("Provisioned volume", "pv", name, "pvc", klog.KObj(pvc), "path", path, "size", size.String())
	return pv, controller.ProvisioningFinished, nil
}

// Delete removes the directory of a released volume. It refuses any path that is not a
// directory directly under h.dir; a directory that is already gone is fine.
func (h *hostPath) Delete(ctx context.Context, pv *v1.PersistentVolume) error {
	if pv.Spec.HostPath == nil {
		return fmt.Errorf("persistent volume %s is not a hostPath volume", pv.Name)
	}
	path := pv.Spec.HostPath.Path
	if !filepath.IsAbs(path) || filepath.Dir(filepath.Clean(path)) != h.dir {
		return fmt.Errorf("refusing to delete %q of persistent volume %s: not a directory directly under %s", path, pv.Name, h.dir)
	}
	path = filepath.Clean(path)
	if err := os.RemoveAll(path); err != nil {
		return err
	}
	claim := "<none>"
	if ref := pv.Spec.ClaimRef; ref != nil {
		claim = ref.Namespace + "/" + ref.Name
	}
	klog.FromContext(ctx).Info("Deleted volume", "pv", pv.Name, "pvc", claim, "path", path)
	return nil
}
