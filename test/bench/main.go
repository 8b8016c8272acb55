// Command bench measures the operator at scale: `make bench` (every shape and size, results in
// docs/performance.md) or `make bench BENCH_N=100` (one size, results under bin/bench).
//
// It starts a real kube-apiserver and etcd (the tests' control plane), kube-controller-manager's
// namespace and garbage-collector controllers, Vault and the External Secrets Operator, installs the
// chart, and runs the operator binary built from main.go with the chart's flags (leader election,
// info logs, four workers). For each shape and size it then
//   - runs a raw floor: the objects the builders produce for N tenants, created by a plain client
//     with as many writers as the operator has workers, no controller;
//   - applies N Tenants at concurrency C by server-side apply, as a GitOps tool would, and times each
//     from its apply to its Ready condition;
//   - counts the operator's requests (client-go's metrics, and the apiserver's audit log of the
//     operator's identity), in idle and after a restart; its heap (after a forced GC) and RSS;
//   - deletes every Tenant and times it.
//
// It writes the results as JSON and renders docs/performance.md with plots from them. `-render`
// renders again from a results file without measuring.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

type options struct {
	minimal, database, secrets []int
	concurrency, workers       int
	idle, idleSmall            string
	smallBelow                 int
	unrelated                  int
	out, doc, profiles         string
	renderOnly                 bool
	keep                       bool
	deleteBelow                int
	deleteAtMost               int
}

func main() {
	var o options
	var minimal, database, secrets string
	flag.StringVar(&minimal, "minimal", "100,1000,10000", "sizes of the minimal shape (namespace, isolation, access), comma separated; empty for none")
	flag.StringVar(&database, "database", "1000", "sizes of the database shape (a dedicated CloudNativePG cluster)")
	flag.StringVar(&secrets, "secrets", "100", "sizes of the secrets shape (a Vault secret through External Secrets Operator)")
	flag.IntVar(&o.concurrency, "c", 10, "how many Tenants are applied at once")
	flag.IntVar(&o.workers, "workers", 4, "the operator's --concurrency (the chart's default), and the floor's writers")
	flag.StringVar(&o.idle, "idle", "5m", "how long the operator is watched in idle once every tenant is Ready")
	flag.StringVar(&o.idleSmall, "idle-small", "", "the idle window of scenarios under -small-below tenants (default: -idle)")
	flag.IntVar(&o.smallBelow, "small-below", 1000, "scenarios with fewer tenants are watched in idle for -idle-small")
	flag.IntVar(&o.unrelated, "unrelated", 2000, "namespaces (each with a Secret and a ConfigMap) the operator does not own, created before the scenarios")
	flag.StringVar(&o.out, "out", "docs/performance", "directory of results.json and the plots")
	flag.StringVar(&o.doc, "doc", "docs/performance.md", "the document rendered from the results")
	flag.StringVar(&o.profiles, "profiles", "bin/bench/profiles", "directory of the operator's CPU and heap profiles")
	flag.BoolVar(&o.renderOnly, "render", false, "render the document from -out/results.json without measuring")
	flag.IntVar(&o.deleteBelow, "delete-below", 10000, "scenarios with fewer tenants are deleted under the Delete policy, the others (and the database shape) under Retain")
	flag.IntVar(&o.deleteAtMost, "delete-at-most", 0, "measure deletion only for scenarios of at most this many tenants (0: all)")
	flag.BoolVar(&o.keep, "keep", false, "keep the logs (operator, apiserver audit, ...) of the run")
	flag.Parse()
	ctrllog.SetLogger(logr.Discard()) // the benchmark's own caches; it reports through progress
	var err error
	if o.minimal, err = sizes(minimal); err == nil {
		if o.database, err = sizes(database); err == nil {
			o.secrets, err = sizes(secrets)
		}
	}
	if err != nil {
		fail(err)
	}
	if o.renderOnly {
		r, err := loadResults(filepath.Join(o.out, "results.json"))
		if err != nil {
			fail(err)
		}
		if err := render(r, o.out, o.doc); err != nil {
			fail(err)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fail(err)
	}
}

func sizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("size %q: want a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
