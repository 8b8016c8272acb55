// Command pause is the real cluster's pod sandbox image (make cluster): it holds a pod's namespaces
// open, reaps the zombies of processes that share its PID namespace, and exits on SIGINT or SIGTERM,
// as registry.k8s.io/pause does. It is built statically and put into an image by hack/image, because
// there is no registry to pull the upstream one from.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
