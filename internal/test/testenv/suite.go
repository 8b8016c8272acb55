package testenv

import (
	"fmt"
	"os"
	"testing"

	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// RunMain is a suite's TestMain: it runs run and exits with its code, or prints the error that kept
// the suite from starting and exits 1.
func RunMain(m *testing.M, run func(*testing.M) (int, error)) {
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
