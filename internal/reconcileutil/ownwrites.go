package reconcileutil

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// OwnWrites remembers, per object, the resourceVersion of a controller's last write to it until the
// controller's cache has caught up with that write.
//
// A pass that wrote an object's status is followed at once by another when anything queued the
// object meanwhile (the watch events of the objects the pass made do), and that pass may read the
// object from the cache before the status write's own watch event has arrived. It would compute the
// same status again and send it locked on the old resourceVersion: a request that meets a conflict,
// an error in the log, and a retry. A pass that finds the cache Behind its own write does nothing
// instead; the write's watch event is on its way and brings the object back.
//
// The zero value is ready to use. Nothing here outlives the process: a restarted operator has
// written nothing yet, and its cache starts from a list.
type OwnWrites struct {
	mu  sync.Mutex
	rvs map[types.NamespacedName]string
}

// Wrote records obj's resourceVersion as a successful write returned it.
func (w *OwnWrites) Wrote(obj client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.rvs == nil {
		w.rvs = map[types.NamespacedName]string{}
	}
	w.rvs[client.ObjectKeyFromObject(obj)] = obj.GetResourceVersion()
}

// Behind says whether obj, as read from the cache, is older than the last write recorded for it.
// Once it is not, the record is dropped. A resourceVersion that cannot be compared (not etcd's
// integers) is never behind.
func (w *OwnWrites) Behind(obj client.Object) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := client.ObjectKeyFromObject(obj)
	written, ok := w.rvs[key]
	if !ok {
		return false
	}
	if c, err := resourceversion.CompareResourceVersion(obj.GetResourceVersion(), written); err == nil && c < 0 {
		return true
	}
	delete(w.rvs, key)
	return false
}

// Forget drops the record of an object that is gone.
func (w *OwnWrites) Forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.rvs, key)
}
