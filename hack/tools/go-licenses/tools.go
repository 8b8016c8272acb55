//go:build tools

// Package tools pins google/go-licenses for make licenses. It is a module of its own because
// `go install github.com/google/go-licenses/v2@v2.0.1` asks the module proxy for the module's
// version list to check for deprecation, which the proxy here does not serve (404); built from
// this module, the version is the one go.sum records.
package tools

import _ "github.com/google/go-licenses/v2"
