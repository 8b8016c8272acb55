package testenv

import (
	"flag"
	"fmt"
	"os"
	"syscall"
	"testing"

	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// RunMain is a suite's TestMain: it runs run and exits with its code, or prints the error that kept
// the suite from starting and exits 1.
func RunMain(m *testing.M, run func(*testing.M) (int, error)) {
	keepFuzzPipesFromChildren()
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

// StartSuite starts a suite's control plane, with the admission webhooks installed and served when
// webhooks is true, and sends the operator's log to a file named after the suite. stop stops both.
func StartSuite(name string, webhooks bool) (env *Environment, stop func(), err error) {
	logFile, err := LogOperatorToFile(name)
	if err != nil {
		return nil, nil, err
	}
	if webhooks {
		env, err = StartWithWebhooks()
	} else {
		env, err = Start()
	}
	if err != nil {
		_ = logFile.Close()
		return nil, nil, err
	}
	if apiserver, etcd, err := env.ControlPlanePIDs(); err == nil {
		RecordFuzzWorkerChild(apiserver, etcd)
	}
	return env, func() { _ = env.Stop(); _ = logFile.Close() }, nil
}

// OperatorLog is the path of the file LogOperatorToFile last opened.
var OperatorLog string

// LogOperatorToFile sends controller-runtime's log (the operator running in the suite) to a new
// temporary file named after the suite, and says where: test output stays readable, and the log is
// there when a test fails. The caller closes the file.
func LogOperatorToFile(suite string) (*os.File, error) {
	f, err := os.CreateTemp("", suite+"-suite-operator-*.log")
	if err != nil {
		return nil, err
	}
	logf.SetLogger(zap.New(zap.WriteTo(f)))
	OperatorLog = f.Name()
	fmt.Fprintln(os.Stderr, "operator log:", f.Name())
	return f, nil
}

// keepFuzzPipesFromChildren: a fuzz worker (go test -fuzz) talks to the go command's coordinator
// over file descriptors 3 and 4, inherited without close-on-exec, so every process the suite starts
// (etcd, kube-apiserver, Vault) would hold them too. Once the worker ended, the coordinator would
// wait on them for ever: make fuzz stalled that way. They are closed on exec in the worker.
func keepFuzzPipesFromChildren() {
	if !flag.Parsed() {
		flag.Parse()
	}
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		syscall.CloseOnExec(3)
		syscall.CloseOnExec(4)
	}
}

// RecordFuzzWorkerChild notes processes a fuzz worker started, in the file TENANT_OPERATOR_FUZZ_PIDS
// names (hack/fuzz.sh sets it): the go command ends its workers without their TestMain's cleanup,
// so hack/fuzz.sh stops what they left once each target is done. Elsewhere it does nothing.
func RecordFuzzWorkerChild(pids ...int) {
	path := os.Getenv("TENANT_OPERATOR_FUZZ_PIDS")
	if f := flag.Lookup("test.fuzzworker"); path == "" || f == nil || f.Value.String() != "true" {
		return
	}
	file, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer file.Close()
	for _, pid := range pids {
		fmt.Fprintln(file, pid)
	}
}
