// Command secretlog is make lint's check that no secret value can reach a log, an event, an error, a
// condition or test output: it reports every call to such a sink (logr, fmt, log, testing, the event
// recorders, the Tenant's conditions) one of whose arguments is a secret value, which is
//
//   - a Kubernetes Secret, or its data (Data, StringData, or an entry of them);
//   - a string or []byte variable, field or call whose name ends saying it holds a credential: password,
//     token, private key, secret access key, client secret (names of things, such as
//     passwordSecret or tokenPath, are not values and do not count).
//
// It reads types, so a renamed import or a value passed through a variable of another name is still
// seen where its type is a Secret. A line that must log such a name (a test asserting that a value
// is absent, say) says why with a comment containing "secretlog:ok" on the line.
//
//	go run ./hack/secretlog ./...
package main

import (
	"go/ast"
	"go/types"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/singlechecker"
)

var analyzer = &analysis.Analyzer{
	Name: "secretlog",
	Doc:  "reports secret values passed to logs, events, errors, conditions and test output",
	Run:  run,
}

func main() { singlechecker.Main(analyzer) }

// sinks are the functions and methods whose arguments end up where people read them.
var sinks = map[string]bool{
	// logr, zap
	"Info": true, "Error": true, "WithValues": true, "Debug": true, "Warn": true,
	// fmt, log, errors
	"Printf": true, "Println": true, "Print": true, "Sprintf": true, "Sprint": true, "Sprintln": true,
	"Fprintf": true, "Fprintln": true, "Fprint": true, "Errorf": true, "Fatalf": true, "Fatal": true, "Panicf": true,
	// testing
	"Log": true, "Logf": true, "Skipf": true,
	// event recorders
	"Event": true, "Eventf": true, "AnnotatedEventf": true,
	// the Tenant's conditions
	"SetCondition": true,
}

// secretName: names that say a value is a credential, by how they end; names of things that refer
// to one (passwordSecret, tokenPath, passwordKey) end otherwise.
var secretName = regexp.MustCompile(`(?i)(password|passwd|token|privatekey|secretaccesskey|clientsecret)$`)

func run(pass *analysis.Pass) (any, error) {
	okLines := map[string]bool{}
	for _, f := range pass.Files {
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				if strings.Contains(c.Text, "secretlog:ok") {
					p := pass.Fset.Position(c.Pos())
					okLines[p.Filename+":"+strconv.Itoa(p.Line)] = true
				}
			}
		}
	}
	for _, f := range pass.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			name := calleeName(call.Fun)
			if !sinks[name] {
				return true
			}
			for _, arg := range call.Args {
				if why := secretValue(pass, arg); why != "" {
					p := pass.Fset.Position(arg.Pos())
					if okLines[p.Filename+":"+strconv.Itoa(p.Line)] {
						continue
					}
					pass.Reportf(arg.Pos(), "%s reaches %s: secret values must never be logged, recorded or printed", why, name)
				}
			}
			return true
		})
	}
	return nil, nil
}

func calleeName(fun ast.Expr) string {
	switch f := fun.(type) {
	case *ast.SelectorExpr:
		return f.Sel.Name
	case *ast.Ident:
		return f.Name
	case *ast.IndexExpr: // generic instantiation
		return calleeName(f.X)
	}
	return ""
}

// secretValue says why expr is a secret value, or "" if it is not one.
func secretValue(pass *analysis.Pass, expr ast.Expr) string {
	found := ""
	ast.Inspect(expr, func(n ast.Node) bool {
		if found != "" {
			return false
		}
		e, ok := n.(ast.Expr)
		if !ok {
			return true
		}
		// A function literal's body is not an argument's value.
		if _, ok := e.(*ast.FuncLit); ok {
			return false
		}
		t := pass.TypesInfo.TypeOf(e)
		// A number or a truth value carries no secret (a comparison with a password, its length).
		if b, ok := t.(*types.Basic); ok && b.Info()&types.IsString == 0 {
			return false
		}
		if isSecret(t) {
			found = "a Kubernetes Secret (" + types.ExprString(e) + ")"
			return false
		}
		switch x := e.(type) {
		case *ast.SelectorExpr:
			if (x.Sel.Name == "Data" || x.Sel.Name == "StringData") && isSecret(pass.TypesInfo.TypeOf(x.X)) {
				found = "a Secret's " + x.Sel.Name + " (" + types.ExprString(e) + ")"
				return false
			}
			if valueOfSecretName(x.Sel.Name, t) {
				found = "a credential (" + types.ExprString(e) + ")"
			}
			// secret.Name is a name: what a selector selects from is not its value.
			return false
		case *ast.Ident:
			if valueOfSecretName(x.Name, t) {
				found = "a credential (" + x.Name + ")"
				return false
			}
		case *ast.CallExpr:
			if name := calleeName(x.Fun); valueOfSecretName(name, t) {
				found = "a credential (" + types.ExprString(e) + ")"
				return false
			}
			// A conversion (string(token)) keeps its value; the arguments of other calls are not what
			// the sink prints (len(password)).
			if tv, ok := pass.TypesInfo.Types[x.Fun]; ok && tv.IsType() {
				return true
			}
			return false
		}
		return true
	})
	return found
}

func valueOfSecretName(name string, t types.Type) bool {
	if !secretName.MatchString(name) || t == nil {
		return false
	}
	switch u := t.Underlying().(type) {
	case *types.Basic:
		return u.Info()&types.IsString != 0
	case *types.Slice:
		b, ok := u.Elem().Underlying().(*types.Basic)
		return ok && b.Kind() == types.Byte
	}
	return false
}

func isSecret(t types.Type) bool {
	for t != nil {
		switch x := t.(type) {
		case *types.Pointer:
			t = x.Elem()
			continue
		case *types.Named:
			obj := x.Obj()
			return obj.Pkg() != nil && obj.Pkg().Path() == "k8s.io/api/core/v1" && (obj.Name() == "Secret" || obj.Name() == "SecretList")
		}
		return false
	}
	return false
}
