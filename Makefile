# tenant-operator: the conventional kubebuilder targets, plus envtest, dev and verify.
# Everything the targets need is built into bin/ from the Go module proxy; no other download.

IMG ?= ghcr.io/tenantctl/tenant-operator:dev
CONTROLLER_TOOLS_VERSION ?= v0.23.0
# Versions of the components built from source (kube-apiserver, etcd, kubectl, Vault, ESO, helm,
# CloudNativePG): written once in hack/versions.env, read by hack/components.sh too.
include hack/versions.env
export KUBE_VERSION ETCD_VERSION VAULT_VERSION VAULT_SDK_VERSION ESO_VERSION HELM_VERSION CNPG_VERSION COREDNS_VERSION KUBE_ROUTER_VERSION POSTGRES_MAJOR POSTGRES_SUITE PAUSE_VERSION
COMPONENTS := hack/components.sh
# go test's -timeout per target: sized for the tests, never for builds (components are built first,
# by make, and a test that finds one missing fails at once).
TEST_TIMEOUT ?= 5m
E2E_TIMEOUT ?= 20m

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
# The security checks' tools, built from the Go module proxy at these versions (docs/security.md).
GOLANGCI_LINT_VERSION ?= v2.15.0
GOVULNCHECK_VERSION ?= v1.9.0
GO_LICENSES_VERSION ?= v2.0.1
CYCLONEDX_GOMOD_VERSION ?= v1.10.0
# The Go vulnerability database: golang.org/x/vulndb's OSV reports as the module proxy serves them,
# indexed by hack/vulndb (vuln.go.dev is not reachable here). VULNDB=https://vuln.go.dev uses the
# live database where it is reachable.
VULNDB_VERSION ?= v0.0.0-20261105234957-e22db6528018
VULNDB ?= file://$(LOCALBIN)/vulndb-$(VULNDB_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
GOVULNCHECK ?= $(LOCALBIN)/govulncheck-$(GOVULNCHECK_VERSION)-$(RELEASE_GOTOOLCHAIN)
GO_LICENSES ?= $(LOCALBIN)/go-licenses-$(GO_LICENSES_VERSION)
CYCLONEDX_GOMOD ?= $(LOCALBIN)/cyclonedx-gomod-$(CYCLONEDX_GOMOD_VERSION)
# The Go that builds what ships (make build, make image, and what make vulncheck scans): go1.26.8,
# this machine's, has standard-library vulnerabilities fixed only in later releases, and go1.27.3 is
# the newer Go the module proxy serves (as the module golang.org/toolchain, fetched on first use).
# Tests and components build with the Go on the PATH.
RELEASE_GOTOOLCHAIN ?= go1.27.3
# make fuzz: how long each fuzz target runs.
FUZZTIME ?= 1m
GO_TEST_FLAGS ?=

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-17s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and the manager ClusterRole from the markers in api/ and controllers/.
	$(CONTROLLER_GEN) crd paths="./api/..." output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=manager-role paths="./controllers/...;./internal/..." output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) webhook paths="./internal/webhook/..." output:webhook:artifacts:config=config/webhook

.PHONY: chart
chart: manifests ## Generate the chart's CRDs, manager role, tenant roles, admission policies and webhook from config/.
	hack/chart.sh

.PHONY: chart-lint
chart-lint: chart component-helm ## Lint the chart with the helm CLI (built from source and cached, like the control plane).
	"$$($(COMPONENTS) path helm)" lint --strict charts/tenant-operator

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the DeepCopy methods of the API types (ours and the ESO mirror).
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/...;./internal/externalsecrets/..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet, including the build-tagged e2e and cluster suites.
	go vet -tags e2e,cluster ./...

.PHONY: test
test: manifests generate vet test-components components-test ## Run unit and envtest suites against a real kube-apiserver, etcd, Vault and helm.
	KUBEBUILDER_ASSETS="$$($(COMPONENTS) path envtest)" \
		go test ./... -count=1 -timeout $(TEST_TIMEOUT) $(GO_TEST_FLAGS) -coverprofile cover.out

.PHONY: test-components
test-components: ## Test hack/components.sh: locking, interruption and cleanup, with a stand-in build (seconds).
	hack/test-components.sh

.PHONY: test-e2e
test-e2e: components component-kube-node ## Run the end-to-end suites: make dev's environment and the operator binary with a real control plane, Vault and ESO; a CI-sized fault campaign.
	KUBEBUILDER_ASSETS="$$($(COMPONENTS) path envtest)" \
		go test -tags e2e ./test/e2e/ ./test/dev/ ./test/chaos/ -count=1 -v -timeout $(E2E_TIMEOUT) $(GO_TEST_FLAGS)

# make chaos: the fault campaign at full size, its figures for docs/reliability.md (CHAOS_FLAGS:
# -faults, -tenants, -seed, -max-delay, -keep).
CHAOS_FLAGS ?=
.PHONY: chaos
chaos: components component-kube-node ## Kill, cut off and starve the operator; compare with an undisturbed run (docs/reliability.md).
	KUBEBUILDER_ASSETS="$$($(COMPONENTS) path envtest)" go run ./test/chaos $(CHAOS_FLAGS)

# make bench: every shape and size, its results in docs/performance.md (about an hour on 2 cores):
# five minutes of idle at 10,000 tenants, one below.
# make bench BENCH_N=100: every shape at one size, a minute of idle each, results under bin/bench
# (about 10 minutes).
BENCH_N ?=
BENCH_IDLE ?= $(if $(BENCH_N),1m,5m)
BENCH_FLAGS ?= $(if $(BENCH_N),-minimal $(BENCH_N) -database $(BENCH_N) -secrets $(BENCH_N) -unrelated $(BENCH_N) -out bin/bench -doc bin/bench/performance.md)
.PHONY: bench
bench: components component-kube-node ## Measure the operator binary at scale against a raw client floor (docs/performance.md); never asserted in tests.
	go run ./test/bench -idle $(BENCH_IDLE) -idle-small $(if $(BENCH_N),$(BENCH_IDLE),1m) -small-below 10000 $(BENCH_FLAGS)

.PHONY: verify
verify: ## Regenerate everything and fail if any generated file is stale.
	hack/verify.sh

.PHONY: dev
dev: build components ## Start a local control plane, Vault, ESO and the operator installed with the Helm chart, and apply the samples.
	hack/dev.sh $(DEV_FLAGS)

##@ Security (docs/security.md)

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Static analysis: golangci-lint (.golangci.yml), and no secret value reaching a log, an event or a status (hack/secretlog).
	$(GOLANGCI_LINT) run ./...
	go run ./hack/secretlog -tags e2e,cluster ./...

.PHONY: vulncheck
vulncheck: $(GOVULNCHECK) $(if $(filter file://%,$(VULNDB)),$(LOCALBIN)/vulndb-$(VULNDB_VERSION)) ## Known vulnerabilities: govulncheck over the module's code and the built binary.
	GOTOOLCHAIN=$(RELEASE_GOTOOLCHAIN) $(GOVULNCHECK) -db $(VULNDB) ./...
	GOTOOLCHAIN=$(RELEASE_GOTOOLCHAIN) CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/manager-vulncheck .
	$(GOVULNCHECK) -db $(VULNDB) -mode binary $(LOCALBIN)/manager-vulncheck

.PHONY: licenses
licenses: $(GO_LICENSES) ## Licences: every module linked into the binary, checked against hack/licenses/policy.txt; the report goes to docs/licenses.csv.
	hack/licenses.sh $(GO_LICENSES)

FUZZ_TARGETS := ./controllers/rolebinding/:FuzzGrantAgreesWithTheAPIServer ./controllers/tenant/:FuzzAcceptedTenantBuildsAcceptedObjects ./internal/builders/secrets/:FuzzVaultPolicyStaysInTheTenantsPath
.PHONY: fuzz
fuzz: components-test ## Run each fuzz target for FUZZTIME against a real kube-apiserver (make test runs their seed corpora).
	KUBEBUILDER_ASSETS="$$($(COMPONENTS) path envtest)" hack/fuzz.sh $(FUZZTIME) $(FUZZ_TARGETS)

.PHONY: sbom
sbom: $(CYCLONEDX_GOMOD) ## The operator binary's SBOM (CycloneDX, from the module graph) into bin/, as make image puts it in the image.
	mkdir -p bin
	GOTOOLCHAIN=$(RELEASE_GOTOOLCHAIN) $(CYCLONEDX_GOMOD) app -licenses -std -json -output bin/sbom.cdx.json -main . .

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary (with RELEASE_GOTOOLCHAIN).
	GOTOOLCHAIN=$(RELEASE_GOTOOLCHAIN) go build -o bin/manager .

.PHONY: run
run: manifests generate fmt vet ## Run the operator against the cluster of the current kubeconfig.
	go run . --leader-elect=false

.PHONY: docker-build
docker-build: ## Build the container image (needs a container engine).
	docker build -t $(IMG) .

IMAGE_TAR ?= bin/images/tenant-operator.tar
# Where the image carries its SBOM (CycloneDX JSON, from the module graph); a copy is written beside
# the tarball.
IMAGE_SBOM := /usr/share/doc/tenant-operator/sbom.cdx.json
.PHONY: image
image: manifests generate $(CYCLONEDX_GOMOD) ## Build the operator's image without a container engine (the Dockerfile's content, plus its SBOM) as a docker-save tarball.
	mkdir -p bin/images bin/image-root/etc
	GOTOOLCHAIN=$(RELEASE_GOTOOLCHAIN) CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o bin/image-root/manager .
	GOTOOLCHAIN=$(RELEASE_GOTOOLCHAIN) $(CYCLONEDX_GOMOD) app -licenses -std -json -output bin/image-root/sbom.cdx.json -main . . 2>/dev/null
	cp bin/image-root/sbom.cdx.json $(IMAGE_TAR:.tar=.sbom.cdx.json)
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > bin/image-root/etc/passwd
	printf 'root:x:0:\nnonroot:x:65532:\n' > bin/image-root/etc/group
	go run ./hack/image -o $(IMAGE_TAR) -tag $(IMG) -user 65532:65532 -entrypoint /manager \
		-file bin/image-root/manager=/manager -file bin/image-root/etc/passwd=/etc/passwd:0644 \
		-file bin/image-root/etc/group=/etc/group:0644 \
		-file bin/image-root/sbom.cdx.json=$(IMAGE_SBOM):0444 \
		$$(test -f /etc/ssl/certs/ca-certificates.crt && echo -file /etc/ssl/certs/ca-certificates.crt=/etc/ssl/certs/ca-certificates.crt:0644)
	@echo "image $(IMG) written to $(IMAGE_TAR)"

##@ Components (built from source through the Go module proxy, cached per user by version)

.PHONY: components
components: ## Build every component the tests, the e2e suites and make dev need (a line per component, with its time; the fault campaign also needs component-kube-node).
	@$(COMPONENTS) build kube etcd vault eso helm

.PHONY: components-test
components-test: ## Build the components make test needs: kube-apiserver, kubectl, etcd, Vault, helm.
	@$(COMPONENTS) build kube etcd vault helm

.PHONY: components-list
components-list: ## Show each component, its version and whether it is built.
	@$(COMPONENTS) list

.PHONY: envtest
envtest: component-kube component-etcd ## Print the directory holding kube-apiserver, etcd and kubectl (for KUBEBUILDER_ASSETS).
	@$(COMPONENTS) path envtest

.PHONY: component-kube
component-kube: ## kube-apiserver and kubectl, from one wrapper module.
	@$(COMPONENTS) build kube
.PHONY: component-etcd
component-etcd: ## etcd.
	@$(COMPONENTS) build etcd
.PHONY: component-vault
component-vault: ## HashiCorp Vault; also the Vault CLI.
	@$(COMPONENTS) build vault
.PHONY: component-eso
component-eso: ## The External Secrets Operator controller.
	@$(COMPONENTS) build eso
.PHONY: component-helm
component-helm: ## The helm CLI.
	@$(COMPONENTS) build helm
.PHONY: component-cnpg
component-cnpg: ## The CloudNativePG operator (the real cluster's).
	@$(COMPONENTS) build cnpg
.PHONY: component-kube-node
component-kube-node: ## kubelet, kube-controller-manager, kube-scheduler, kube-proxy (the real cluster's; kube's wrapper module).
	@$(COMPONENTS) build kube-node
.PHONY: component-coredns
component-coredns: ## CoreDNS, the real cluster's DNS.
	@$(COMPONENTS) build coredns
.PHONY: component-kube-router
component-kube-router: ## kube-router's network-policy firewall, which enforces NetworkPolicy on the real cluster.
	@$(COMPONENTS) build kube-router
.PHONY: component-barman-cloud
component-barman-cloud: ## CloudNativePG's Barman Cloud plugin (plugin and sidecar), the real cluster's backups.
	@$(COMPONENTS) build barman-cloud
.PHONY: component-versitygw
component-versitygw: ## versitygw, the S3 object store the real cluster's backups go to.
	@$(COMPONENTS) build versitygw

.PHONY: components-cluster
components-cluster: ## Build every component of the real single-node cluster (make cluster).
	@$(COMPONENTS) build kube etcd vault eso helm cnpg kube-node coredns kube-router barman-cloud versitygw

##@ The real single-node cluster (root, Debian; docs/test-cluster.md)

CLUSTER_TIMEOUT ?= 30m

.PHONY: cluster
cluster: ## Start a real single-node cluster: containerd, kubelet, CNPG with PostgreSQL, Vault, ESO, the operator as a pod.
	hack/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop every process make cluster started and undo every change it made to the host.
	hack/cluster.sh down

.PHONY: cluster-images
cluster-images: components-cluster ## Build the real cluster's images offline (pause, operator, CloudNativePG, PostgreSQL, the Barman Cloud plugin and sidecar).
	hack/images.sh build

.PHONY: test-cluster
test-cluster: ## Prove the product on the real cluster (make cluster first): databases, TLS, segregation, deletion, rotation.
	eval "$$(hack/cluster.sh env)" && go test -tags cluster ./test/cluster/ -count=1 -v -timeout $(CLUSTER_TIMEOUT) $(GO_TEST_FLAGS)

##@ Deployment

KUBECTL ?= $(shell command -v kubectl 2>/dev/null || echo "$$($(COMPONENTS) path envtest)/kubectl")

.PHONY: install
install: manifests ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUBECTL) apply --server-side -k config/crd

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs (and with them every Tenant and RoleBinding object).
	$(KUBECTL) delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy the operator with kustomize (config/default); the image is set in config/manager.
	$(KUBECTL) apply --server-side -k config/default

.PHONY: undeploy
undeploy: ## Remove the operator deployed by make deploy.
	$(KUBECTL) delete --ignore-not-found -k config/default

##@ Tools

$(CONTROLLER_GEN):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)

# go-install-tool TARGET PACKAGE VERSION: build a tool from the module proxy into bin/, versioned.
define go-install-tool
	mkdir -p $(LOCALBIN)
	$(4) GOBIN=$(LOCALBIN) go install $(2)@$(3)
	mv $(LOCALBIN)/$(notdir $(patsubst %/v2,%,$(2))) $(1)
endef

$(GOLANGCI_LINT):
	$(call go-install-tool,$@,github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

# Built with the release Go: it type-checks that Go's standard library.
$(GOVULNCHECK):
	$(call go-install-tool,$@,golang.org/x/vuln/cmd/govulncheck,$(GOVULNCHECK_VERSION),GOTOOLCHAIN=$(RELEASE_GOTOOLCHAIN))

# go-licenses is built from its own pinning module (hack/tools/go-licenses/tools.go says why).
$(GO_LICENSES): hack/tools/go-licenses/go.mod
	mkdir -p $(LOCALBIN)
	cd hack/tools/go-licenses && go build -o $@ github.com/google/go-licenses/v2

$(CYCLONEDX_GOMOD):
	$(call go-install-tool,$@,github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod,$(CYCLONEDX_GOMOD_VERSION))

# The vulnerability database, indexed from the module's reports and dated by its commit.
$(LOCALBIN)/vulndb-$(VULNDB_VERSION):
	go mod download golang.org/x/vulndb@$(VULNDB_VERSION)
	rm -rf $@.tmp
	go run ./hack/vulndb -osv "$$(go env GOMODCACHE)/golang.org/x/vulndb@$(VULNDB_VERSION)/data/osv" -out $@.tmp \
		-stamp "$$(echo $(VULNDB_VERSION) | sed -E 's/.*-([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})-.*/\1-\2-\3T\4:\5:\6Z/')"
	mv $@.tmp $@
