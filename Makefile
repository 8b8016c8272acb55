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

IMAGE_TAR ?= bin/images/tenant-operator.tar
.PHONY: image
image: manifests generate ## Build the operator's image without a container engine (the Dockerfile's content) as a docker-save tarball.
	mkdir -p bin/images bin/image-root/etc
	CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o bin/image-root/manager .
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > bin/image-root/etc/passwd
	printf 'root:x:0:\nnonroot:x:65532:\n' > bin/image-root/etc/group
	go run ./hack/image -o $(IMAGE_TAR) -tag $(IMG) -user 65532:65532 -entrypoint /manager \
		-file bin/image-root/manager=/manager -file bin/image-root/etc/passwd=/etc/passwd:0644 \
		-file bin/image-root/etc/group=/etc/group:0644 \
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
