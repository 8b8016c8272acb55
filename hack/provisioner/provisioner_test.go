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

package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

const testNode = "node-1"

func newHostPath(t *testing.T) *hostPath {
	t.Helper()
	return &hostPath{dir: t.TempDir(), node: testNode}
}

func claim() *v1.PersistentVolumeClaim {
	fs := v1.PersistentVolumeFilesystem
	class := "hostpath"
	return &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shared-db", Name: "pg-1"},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
			VolumeMode:       &fs,
			StorageClassName: &class,
		},
	}
}

func options(pvc *v1.PersistentVolumeClaim, reclaim *v1.PersistentVolumeReclaimPolicy) controller.ProvisionOptions {
	return controller.ProvisionOptions{
		StorageClass: &storagev1.StorageClass{
			ObjectMeta:    metav1.ObjectMeta{Name: "hostpath"},
			Provisioner:   defaultName,
			ReclaimPolicy: reclaim,
		},
		PVName:           "pvc-0a1b2c3d",
		PVC:              pvc,
		SelectedNodeName: testNode,
	}
}

// entries lists the names in dir, to check that a refused call changed nothing.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestProvisionAndDelete(t *testing.T) {
	ctx := context.Background()
	h := newHostPath(t)
	pvc := claim()

	pv, state, err := h.Provision(ctx, options(pvc, nil))
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if state != controller.ProvisioningFinished {
		t.Errorf("state = %q, want %q", state, controller.ProvisioningFinished)
	}
	path := filepath.Join(h.dir, "pvc-0a1b2c3d")

	if pv.Name != "pvc-0a1b2c3d" {
		t.Errorf("name = %q", pv.Name)
	}
	if got := pv.Spec.PersistentVolumeReclaimPolicy; got != v1.PersistentVolumeReclaimDelete {
		t.Errorf("reclaim policy = %q, want Delete (the default)", got)
	}
	if !reflect.DeepEqual(pv.Spec.AccessModes, pvc.Spec.AccessModes) {
		t.Errorf("access modes = %v", pv.Spec.AccessModes)
	}
	if got := pv.Spec.Capacity[v1.ResourceStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("capacity = %s, want 1Gi", got.String())
	}
	if pv.Spec.VolumeMode == nil || *pv.Spec.VolumeMode != v1.PersistentVolumeFilesystem {
		t.Errorf("volume mode = %v", pv.Spec.VolumeMode)
	}
	if pv.Spec.StorageClassName != "hostpath" {
		t.Errorf("storage class = %q", pv.Spec.StorageClassName)
	}
	hp := pv.Spec.HostPath
	if hp == nil || hp.Path != path || hp.Type == nil || *hp.Type != v1.HostPathDirectoryOrCreate {
		t.Errorf("hostPath = %+v, want path %s type DirectoryOrCreate", hp, path)
	}
	wantAffinity := &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
		MatchExpressions: []v1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: v1.NodeSelectorOpIn, Values: []string{testNode}}},
	}}}}
	if !reflect.DeepEqual(pv.Spec.NodeAffinity, wantAffinity) {
		t.Errorf("node affinity = %+v", pv.Spec.NodeAffinity)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o777 {
		t.Errorf("%s: mode %v, want a directory with 0777", path, fi.Mode())
	}

	// Provisioning again (the library retries when saving the PV failed) reuses the directory.
	if _, _, err := h.Provision(ctx, options(pvc, nil)); err != nil {
		t.Errorf("second Provision: %v", err)
	}

	pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: pvc.Namespace, Name: pvc.Name}
	if err := h.Delete(ctx, pv); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Delete, stat %s: %v, want not exist", path, err)
	}
	// A directory that is already gone is fine.
	if err := h.Delete(ctx, pv); err != nil {
		t.Errorf("second Delete: %v", err)
	}
}

func TestProvisionReclaimPolicyFromStorageClass(t *testing.T) {
	h := newHostPath(t)
	retain := v1.PersistentVolumeReclaimRetain
	pv, _, err := h.Provision(context.Background(), options(claim(), &retain))
	if err != nil {
		t.Fatal(err)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != retain {
		t.Errorf("reclaim policy = %q, want Retain", pv.Spec.PersistentVolumeReclaimPolicy)
	}
}

func TestProvisionImmediateBinding(t *testing.T) {
	// With Immediate binding the claim has no selected node.
	h := newHostPath(t)
	opts := options(claim(), nil)
	opts.SelectedNodeName = ""
	if _, _, err := h.Provision(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
}

func TestProvisionRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate  func(*controller.ProvisionOptions)
		wantErr string
	}{
		"selector": {
			mutate: func(o *controller.ProvisionOptions) {
				o.PVC.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"disk": "fast"}}
			},
			wantErr: "selectors are not supported",
		},
		"other node": {
			mutate:  func(o *controller.ProvisionOptions) { o.SelectedNodeName = "node-2" },
			wantErr: `selected node "node-2"`,
		},
		"block": {
			mutate: func(o *controller.ProvisionOptions) {
				block := v1.PersistentVolumeBlock
				o.PVC.Spec.VolumeMode = &block
			},
			wantErr: "block volumes are not supported",
		},
		"mount options": {
			mutate:  func(o *controller.ProvisionOptions) { o.StorageClass.MountOptions = []string{"noatime"} },
			wantErr: "mount options",
		},
		"no storage request": {
			mutate:  func(o *controller.ProvisionOptions) { o.PVC.Spec.Resources.Requests = nil },
			wantErr: "requests no storage",
		},
		"name with a slash": {
			mutate:  func(o *controller.ProvisionOptions) { o.PVName = "../escape" },
			wantErr: "unusable volume name",
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHostPath(t)
			opts := options(claim(), nil)
			tc.mutate(&opts)
			pv, _, err := h.Provision(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Provision error = %v, want one containing %q", err, tc.wantErr)
			}
			if pv != nil {
				t.Errorf("got a PV with the error: %+v", pv)
			}
			if got := entries(t, h.dir); len(got) != 0 {
				t.Errorf("refused Provision created %v", got)
			}
		})
	}
}

func TestDeleteRefusesPathsOutsideDir(t *testing.T) {
	h := newHostPath(t)
	outside := t.TempDir()
	victim := filepath.Join(outside, "data")
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(h.dir, "pvc-keep")
	if err := os.Mkdir(inside, 0o755); err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{
		victim,
		outside,
		h.dir, // the volume directory itself
		h.dir + "/../" + filepath.Base(outside) + "/data", // escapes with ..
		filepath.Join(inside, "sub"),                      // deeper than one level
		"pvc-keep",                                        // relative
		"/",
	} {
		pv := &v1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pvc-evil"},
			Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{
				HostPath: &v1.HostPathVolumeSource{Path: path},
			}},
		}
		err := h.Delete(context.Background(), pv)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Delete(%q) error = %v, want a refusal naming the path", path, err)
		}
	}
	for _, dir := range []string{victim, inside} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("refused Delete removed %s: %v", dir, err)
		}
	}
}

func TestDeleteRefusesNonHostPath(t *testing.T) {
	h := newHostPath(t)
	pv := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-nfs"}, Spec: v1.PersistentVolumeSpec{
		PersistentVolumeSource: v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: "nfs", Path: "/"}},
	}}
	if err := h.Delete(context.Background(), pv); err == nil {
		t.Error("Delete of an NFS volume succeeded")
	}
}
