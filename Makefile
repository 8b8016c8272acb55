# tenant-operator: the conventional kubebuilder targets, plus envtest, dev and verify.
# Everything the targets need is built into bin/ from the Go module proxy; no other download.

IMG ?= ghcr.io/tenantctl/tenant-operator:dev
CONTROLLER_TOOLS_VERSION ?= v0.23.0
# Kubernetes control-plane versions for envtest, make dev and the e2e suite (see hack/envtest.sh).
KUBE_VERSION ?= 1.37.2
ETCD_VERSION ?= 3.6.6

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GO_TEST_FLAGS ?=

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

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
chart-lint: chart ## Lint the chart with the helm CLI (built from source and cached, like the control plane).
	"$$(hack/build-component.sh helm)" lint --strict charts/tenant-operator

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the DeepCopy methods of the API types (ours and the ESO mirror).
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/...;./internal/externalsecrets/..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet, including the build-tagged e2e suite.
	go vet -tags e2e ./...

.PHONY: envtest
envtest: ## Provide kube-apiserver, etcd and kubectl under bin/ (cached; built from source without internet).
	@KUBE_VERSION=$(KUBE_VERSION) ETCD_VERSION=$(ETCD_VERSION) hack/envtest.sh

.PHONY: test
test: manifests generate vet ## Run unit and envtest suites against a real kube-apiserver and etcd.
	KUBEBUILDER_ASSETS="$$(KUBE_VERSION=$(KUBE_VERSION) ETCD_VERSION=$(ETCD_VERSION) hack/envtest.sh)" \
		go test ./... $(GO_TEST_FLAGS) -coverprofile cover.out

.PHONY: test-e2e
test-e2e: ## Run the end-to-end suite: the operator binary, a control plane, real Vault and real ESO.
	KUBEBUILDER_ASSETS="$$(KUBE_VERSION=$(KUBE_VERSION) ETCD_VERSION=$(ETCD_VERSION) hack/envtest.sh)" \
		go test -tags e2e ./test/e2e/ -count=1 -v -timeout 30m $(GO_TEST_FLAGS)

.PHONY: bench
bench: ## Run the benchmarks (speed and memory are measured here, never asserted in tests).
	KUBEBUILDER_ASSETS="$$(KUBE_VERSION=$(KUBE_VERSION) ETCD_VERSION=$(ETCD_VERSION) hack/envtest.sh)" \
		go test ./... -run '^$$' -bench . -benchmem

.PHONY: verify
verify: ## Regenerate everything and fail if any generated file is stale.
	hack/verify.sh

.PHONY: dev
dev: build ## Start a local control plane, Vault, ESO and the operator, and apply the samples (DEV_FLAGS=-chart: install with helm).
	KUBE_VERSION=$(KUBE_VERSION) ETCD_VERSION=$(ETCD_VERSION) hack/dev.sh $(DEV_FLAGS)

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary.
	go build -o bin/manager .

.PHONY: run
run: manifests generate fmt vet ## Run the operator against the cluster of the current kubeconfig.
	go run . --leader-elect=false

.PHONY: docker-build
docker-build: ## Build the container image (needs a container engine).
	docker build -t $(IMG) .

##@ Deployment

KUBECTL ?= $(shell command -v kubectl 2>/dev/null || echo "$$(hack/envtest.sh)/kubectl")

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
