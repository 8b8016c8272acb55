package main

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"
)

// TestSecretlog: each line of testdata/src/a marked "want" is reported with that message, and no
// other line is.
func TestSecretlog(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), analyzer, "a")
}
