#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, with CloudNativePG, Vault, ESO and the
# operator installed by its Helm chart as a pod: `make cluster` (up) and `make cluster-down` (down).
# docs/test-cluster.md says what it is, what it changes on the host and how to tear it down.
#
#   hack/cluster.sh up       build what is missing, start every process, install everything, apply the samples
#   hack/cluster.sh down     stop every process it started (by PID) and undo every change to the host
#   hack/cluster.sh status   print which processes run
#   hack/cluster.sh env      print the variables the tests and kubectl use (KUBECONFIG, VAULT_ADDR, ...)
#
# Needs root on Debian (apt-get installs containerd, runc, the CNI plugins, iptables, ipset,
# conntrack and debootstrap when missing) and Go; everything else is built from the Go module proxy
# by hack/components.sh and hack/images.sh and cached by version. Host processes: containerd, etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, CoreDNS, kube-router
# (NetworkPolicy), the hostPath provisioner, Vault (as a platform's Vault outside the cluster) and
# the ESO controller. Pods: CloudNativePG, the operator, PostgreSQL.
set -euo pipefail

main() {
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  while IFS='=' read -r key value; do
    case "${key}" in ''|'#'*) continue ;; esac
    if [ -z "${!key:-}" ]; then export "${key}=${value}"; fi
  done < "${root}/hack/versions.env"
  D="${TENANT_OPERATOR_CLUSTER_DIR:-/var/lib/tenantctl-cluster}"
  NODE_IP=10.250.0.1
  NODE=tenantctl-node
  SERVICE_CIDR=10.96.0.0/16
  CLUSTER_CIDR=10.244.0.0/16
  POD_CIDR=10.244.0.0/24
  DNS_IP=10.96.0.10
  ETCD_PORT=12379
  VAULT_ADDR="http://${NODE_IP}:8200"
  OPERATOR_NAMESPACE=tenant-operator-system
  SHARED_NAMESPACE=postgres-shared
  PG_CATALOG=tenantctl-postgresql
  # The sysctls kubelet, kube-proxy and the CNI plugins change; `down` restores each.
  SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward
    net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables net.ipv4.conf.all.route_localnet
    net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
    net.netfilter.nf_conntrack_tcp_timeout_close_wait net.ipv4.conf.all.forwarding net.ipv6.conf.all.forwarding)

  local cmd="${1:-}"; shift || true
  case "${cmd}" in
    up|down)
      # One up or down at a time on this machine (the lock is on the cluster directory's parent,
      # so that it leaves no file behind).
      mkdir -p "$(dirname "${D}")"
      exec 9<"$(dirname "${D}")"
      flock -n 9 || die "another make cluster or cluster-down is running on this machine"
      "${cmd}" ;;
    status) status ;;
    env) print_env ;;
    # The backup suite's outage: the object store stopped and started again, its data kept.
    objectstore)
      case "${1:-}" in
        stop) stop objectstore ;;
        start) objectstore_up ;;
        *) die "usage: $0 objectstore stop|start" ;;
      esac ;;
    # The operator rebuilt from the tree and installed again with this cluster's values, on a
    # running cluster (the rest of make cluster, skipped).
    operator)
      "${root}/hack/images.sh" build operator
      ctr_ images import --no-unpack=false "$("${root}/hack/images.sh" path operator)" >/dev/null
      operator_up ;;
    *) die "usage: $0 up|down|status|env|objectstore stop|start|operator" ;;
  esac
}

log() { echo "cluster: $*" >&2; }
die() { echo "cluster: $*" >&2; exit 1; }
step() { STEP_START=$(date +%s); echo "cluster: [$(date +%H:%M:%S)] $*" >&2; }

components() { "${root}/hack/components.sh" "$@"; }
# bin COMPONENT BINARY: where one of a component's binaries is (`path` names its first).
bin() { echo "$(dirname "$("${root}/hack/components.sh" path "$1")")/$2"; }
kubectl() { "$(bin kube kubectl)" --kubeconfig "${D}/admin.kubeconfig" "$@"; }

print_env() {
  echo "export KUBECONFIG=${D}/admin.kubeconfig"
  echo "export VAULT_ADDR=${VAULT_ADDR}"
  echo "export VAULT_TOKEN_FILE=${D}/vault/root-token"
  echo "export TENANT_OPERATOR_CLUSTER_DIR=${D}"
}

# --- processes: each started detached, its PID in ${D}/run/NAME.pid, its log in ${D}/logs ----------

start() {
  local name="$1"; shift
  if running "${name}"; then return 0; fi
  mkdir -p "${D}/run" "${D}/logs"
  # 9<&-: the daemon must not inherit the lock that up and down hold, or it would hold it forever.
  setsid "$@" >>"${D}/logs/${name}.log" 2>&1 < /dev/null 9<&- &
  echo $! > "${D}/run/${name}.pid"
}
pid_of() { cat "${D}/run/$1.pid" 2>/dev/null || true; }
running() { local p; p="$(pid_of "$1")"; [ -n "${p}" ] && kill -0 "${p}" 2>/dev/null; }
stop() {
  local name="$1" p i; p="$(pid_of "${name}")"
  [ -n "${p}" ] || return 0
  if kill -0 "${p}" 2>/dev/null; then
    kill -TERM "${p}" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "${p}" 2>/dev/null || break; sleep 0.2; done
    # kube-apiserver has been seen not to exit on SIGTERM within a minute.
    if kill -0 "${p}" 2>/dev/null; then kill -KILL "${p}" 2>/dev/null || true; fi
    log "stopped ${name} (pid ${p})"
  fi
  rm -f "${D}/run/${name}.pid"
}
# wait_for WHAT SECONDS COMMAND...: retry until the command succeeds; a component's start-up.
wait_for() {
  local what="$1" secs="$2"; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "${deadline}" ] || die "${what} not ready after ${secs}s (logs: ${D}/logs)"
    sleep 1
  done
}
status() {
  local n
  for n in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns kube-router provisioner vault external-secrets objectstore; do
    if running "${n}"; then echo "${n}: running (pid $(pid_of "${n}"))"; else echo "${n}: stopped"; fi
  done
}

# --- up ----------------------------------------------------------------------------------------

up() {
  [ "$(id -u)" = 0 ] || die "make cluster needs root (containerd, kubelet, iptables)"
  [ -d /sys/fs/cgroup ] || die "no cgroups"
  local t0; t0=$(date +%s)
  step "1/9 host packages (apt-get: containerd, runc, CNI plugins, iptables, ipset, conntrack, debootstrap)"
  host_packages
  step "2/9 components (built from the Go module proxy on first use, then cached; a line each)"
  components build kube etcd vault eso helm cnpg kube-node coredns kube-router barman-cloud versitygw
  ( cd "${root}" && CGO_ENABLED=0 go build -o bin/provisioner ./hack/provisioner )
  step "3/9 images (pause, the operator from this tree, CloudNativePG, PostgreSQL, the Barman Cloud plugin and its sidecar)"
  "${root}/hack/images.sh" build pause operator cnpg postgres barman-cloud barman-cloud-sidecar
  mkdir -p "${D}"
  record_host
  step "4/9 PKI, containerd and the images"
  pki
  start_containerd
  import_images
  step "5/9 control plane (etcd, kube-apiserver, controller-manager, scheduler)"
  control_plane
  step "6/9 node (kubelet, kube-proxy, CoreDNS, kube-router, the hostPath provisioner)"
  node
  step "7/9 CloudNativePG, the shared PostgreSQL cluster and the Barman Cloud plugin"
  cnpg
  barman_cloud
  step "8/9 Vault, the External Secrets Operator and the object store"
  vault_up
  eso_up
  objectstore_up
  step "9/9 the operator (helm install charts/tenant-operator) and the samples"
  operator_up
  samples
  log "ready in $(( $(date +%s) - t0 ))s"
  cat >&2 <<EOF

The cluster is up. As root:
  $(print_env | tr '\n' ';' | sed 's/;/\n  /g')
  kubectl get nodes; kubectl get tenants         # globex, initech (shared database), cluster-demo
  kubectl wait --for=condition=Ready tenant/cluster-demo tenant/initech --timeout=5m
  kubectl -n tenant-cluster-demo get cluster,pods,externalsecrets
  make test-cluster        # the suite that proves the product on this cluster
  make cluster-down        # stop everything and undo every change to the host
Logs: ${D}/logs. kubectl: $(bin kube kubectl)
EOF
}

host_packages() {
  local pkgs=(containerd runc containernetworking-plugins iptables ipset conntrack debootstrap) missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f '${Status}' "${p}" 2>/dev/null | grep -q "install ok installed" || missing+=("${p}")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian's containerd package would start its own daemon where an init system runs; there is none
  # here, and ours runs with its own configuration, socket and directories anyway.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  mkdir -p "${D}/host"
  printf '%s\n' "${missing[@]}" >> "${D}/host/apt-installed"
}

# record_host: what `down` must restore, written once per cluster (before anything changes).
record_host() {
  mkdir -p "${D}/host"
  [ ! -f "${D}/host/recorded" ] || return 0
  local s
  for s in "${SYSCTLS[@]}"; do
    if v="$(sysctl -n "${s}" 2>/dev/null)"; then printf '%s=%s\n' "${s}" "${v}"; fi
  done > "${D}/host/sysctls"
  iptables-save > "${D}/host/iptables" 2>/dev/null || true
  ip6tables-save > "${D}/host/ip6tables" 2>/dev/null || true
  ipset list -n 2>/dev/null | sort > "${D}/host/ipsets" || true
  for s in /var/lib/cni /var/log/containers /var/log/pods /run/netns /etc/cni /run/containerd; do
    [ -e "${s}" ] && echo "${s}"
  done > "${D}/host/existing-paths" || true
  ip -4 addr show dev lo | grep -q " ${NODE_IP}/32" && echo yes > "${D}/host/lo-address-existed" || true
  touch "${D}/host/recorded"
}

# --- PKI (openssl): a CA, serving certificates and one client certificate per identity ----------

pki() {
  local p="${D}/pki"
  [ -f "${p}/done" ] && return 0
  mkdir -p "${p}" && chmod 0700 "${p}"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=tenantctl-cluster-ca" -keyout "${p}/ca.key" -out "${p}/ca.crt" 2>/dev/null
  openssl ecparam -name prime256v1 -genkey -noout -out "${p}/sa.key"
  openssl ec -in "${p}/sa.key" -pubout -out "${p}/sa.pub" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:${NODE_IP},IP:10.96.0.1,IP:127.0.0.1" server
  cert admin "/O=system:masters/CN=tenantctl-cluster-admin" "" client
  cert kubelet-client "/O=system:nodes/CN=system:node:${NODE}" "" client
  cert apiserver-kubelet-client "/O=kube-apiserver-kubelet-clients/CN=kube-apiserver-kubelet-client" "" client
  cert controller-manager "/CN=system:kube-controller-manager" "" client
  cert scheduler "/CN=system:kube-scheduler" "" client
  cert kube-proxy "/CN=system:kube-proxy" "" client
  # The node's own infrastructure, each with its own identity and ClusterRole (infra_rbac).
  cert coredns "/CN=tenantctl:coredns" "" client
  cert kube-router "/CN=tenantctl:kube-router" "" client
  cert provisioner "/CN=tenantctl:provisioner" "" client
  cert external-secrets "/CN=tenantctl:external-secrets" "" client
  cert objectstore "/CN=tenantctl-objectstore" "IP:${NODE_IP},IP:127.0.0.1,DNS:localhost" server
  local n
  for n in admin kubelet-client controller-manager scheduler kube-proxy coredns kube-router provisioner external-secrets; do
    kubeconfig "${n}" > "${D}/${n%-client}.kubeconfig"
  done
  chmod 0600 "${D}"/*.kubeconfig
  touch "${p}/done"
}
cert() {
  local name="$1" subj="$2" san="$3" usage="$4" p="${D}/pki" ext
  ext="basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=$([ "${usage}" = server ] && echo serverAuth || echo clientAuth)"
  [ -z "${san}" ] || ext+=$'\n'"subjectAltName=${san}"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "${subj}" \
    -keyout "${p}/${name}.key" -out "${p}/${name}.csr" 2>/dev/null
  openssl x509 -req -in "${p}/${name}.csr" -CA "${p}/ca.crt" -CAkey "${p}/ca.key" -CAcreateserial \
    -days 3650 -extfile <(echo "${ext}") -out "${p}/${name}.crt" 2>/dev/null
  rm -f "${p}/${name}.csr"
}
kubeconfig() {
  local p="${D}/pki"
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tenantctl
  cluster:
    server: https://${NODE_IP}:6443
    certificate-authority-data: $(base64 -w0 < "${p}/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $(base64 -w0 < "${p}/$1.crt")
    client-key-data: $(base64 -w0 < "${p}/$1.key")
contexts:
- name: tenantctl
  context: {cluster: tenantctl, user: $1}
current-context: tenantctl
EOF
}

# --- containerd -----------------------------------------------------------------------------------

start_containerd() {
  mkdir -p "${D}/containerd" "${D}/cni/net.d" "${D}/cni/ipam"
  cat > "${D}/containerd/config.toml" <<EOF
version = 2
root = "${D}/containerd/root"
state = "${D}/containerd/state"
[grpc]
  address = "${D}/containerd/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "${D}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$("${root}/hack/images.sh" ref pause)"
  # Root here lacks CAP_SYS_RESOURCE: without this every sandbox fails to lower its oom_score_adj.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${D}/cni/net.d"
EOF
  cat > "${D}/cni/net.d/10-tenantctl.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "tenantctl",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "${D}/cni/ipam", "ranges": [[{"subnet": "${POD_CIDR}"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  start containerd containerd --config "${D}/containerd/config.toml"
  wait_for containerd 30 ctr --address "${D}/containerd/containerd.sock" version
}
ctr_() { ctr --address "${D}/containerd/containerd.sock" -n k8s.io "$@"; }
import_images() {
  local n ref
  for n in pause operator cnpg postgres barman-cloud barman-cloud-sidecar; do
    ref="$("${root}/hack/images.sh" ref "${n}")"
    # The operator is rebuilt from the tree each time; the others are imported once.
    if [ "${n}" = operator ] || ! ctr_ images ls -q | grep -qx "${ref}"; then
      ctr_ images import --no-unpack=false "$("${root}/hack/images.sh" path "${n}")" >/dev/null
      log "imported ${ref}"
    fi
  done
}

# --- control plane ----------------------------------------------------------------------------------

control_plane() {
  # The node's address on lo (there is no dummy link type here): the kubernetes Service's endpoint,
  # reachable from pods, and where every host-run component listens.
  ip -4 addr show dev lo | grep -q " ${NODE_IP}/32" || ip addr add "${NODE_IP}/32" dev lo
  local p="${D}/pki"
  mkdir -p "${D}/etcd" && chmod 0700 "${D}/etcd"
  start etcd "$(bin etcd etcd)" --data-dir "${D}/etcd" --name tenantctl \
    --listen-client-urls "http://127.0.0.1:${ETCD_PORT}" --advertise-client-urls "http://127.0.0.1:${ETCD_PORT}" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "tenantctl=http://127.0.0.1:$((ETCD_PORT + 1))" --quota-backend-bytes 2147483648
  # The operator's writes are audited (Metadata level, no bodies): make test-cluster counts them to
  # prove the operator is silent in a steady state, and an auditor reads who changed what.
  cat > "${D}/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: ["system:serviceaccount:${OPERATOR_NAMESPACE}:tenant-operator-controller-manager"]
  verbs: [create, update, patch, delete, deletecollection]
- level: None
EOF
  start kube-apiserver "$(bin kube kube-apiserver)" \
    --etcd-servers "http://127.0.0.1:${ETCD_PORT}" \
    --bind-address "${NODE_IP}" --advertise-address "${NODE_IP}" --secure-port 6443 \
    --tls-cert-file "${p}/apiserver.crt" --tls-private-key-file "${p}/apiserver.key" --client-ca-file "${p}/ca.crt" \
    --kubelet-client-certificate "${p}/apiserver-kubelet-client.crt" --kubelet-client-key "${p}/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "${p}/sa.pub" --service-account-signing-key-file "${p}/sa.key" \
    --service-cluster-ip-range "${SERVICE_CIDR}" --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction --allow-privileged=false \
    --audit-policy-file "${D}/audit-policy.yaml" --audit-log-path "${D}/logs/audit.log" \
    --audit-log-maxsize 100 --audit-log-maxbackup 2
  wait_for kube-apiserver 120 kubectl get --raw /readyz
  start kube-controller-manager "$(bin kube-node kube-controller-manager)" \
    --kubeconfig "${D}/controller-manager.kubeconfig" --authentication-kubeconfig "${D}/controller-manager.kubeconfig" \
    --authorization-kubeconfig "${D}/controller-manager.kubeconfig" --bind-address 127.0.0.1 \
    --leader-elect=false --use-service-account-credentials --allocate-node-cidrs \
    --cluster-cidr "${CLUSTER_CIDR}" --node-cidr-mask-size 24 --service-cluster-ip-range "${SERVICE_CIDR}" \
    --root-ca-file "${p}/ca.crt" --service-account-private-key-file "${p}/sa.key" \
    --cluster-signing-cert-file "${p}/ca.crt" --cluster-signing-key-file "${p}/ca.key" --cluster-name tenantctl
  start kube-scheduler "$(bin kube-node kube-scheduler)" --kubeconfig "${D}/scheduler.kubeconfig" \
    --authentication-kubeconfig "${D}/scheduler.kubeconfig" --authorization-kubeconfig "${D}/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false
  infra_rbac
}

# infra_rbac: the least each host-run infrastructure process needs.
infra_rbac() {
  kubectl apply --server-side --field-manager tenantctl-cluster -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "tenantctl:coredns"}
rules:
- {apiGroups: [""], resources: [services, namespaces, pods], verbs: [list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "tenantctl:kube-router"}
rules:
- {apiGroups: [""], resources: [namespaces, pods, services, nodes, endpoints], verbs: [get, list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [get, list, watch]}
- {apiGroups: [networking.k8s.io], resources: [networkpolicies], verbs: [get, list, watch]}
- {apiGroups: ["", events.k8s.io], resources: [events], verbs: [create, patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "tenantctl:provisioner"}
rules:
- {apiGroups: [""], resources: [persistentvolumes], verbs: [get, list, watch, create, delete]}
- {apiGroups: [""], resources: [persistentvolumeclaims], verbs: [get, list, watch, update]}
- {apiGroups: [storage.k8s.io], resources: [storageclasses], verbs: [get, list, watch]}
- {apiGroups: ["", events.k8s.io], resources: [events], verbs: [create, update, patch]}
- {apiGroups: [""], resources: [nodes], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "tenantctl:external-secrets"}
rules:
- {apiGroups: [external-secrets.io, generators.external-secrets.io], resources: ["*"], verbs: ["*"]}
- {apiGroups: [""], resources: [secrets, configmaps, namespaces, events], verbs: [get, list, watch, create, update, patch, delete]}
- {apiGroups: [""], resources: [serviceaccounts/token], verbs: [create]}
- {apiGroups: [""], resources: [serviceaccounts], verbs: [get, list, watch]}
- {apiGroups: [events.k8s.io], resources: [events], verbs: [create, patch]}
- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get, list, watch, create, update, patch]}
- {apiGroups: [apiextensions.k8s.io], resources: [customresourcedefinitions], verbs: [get, list, watch]}
EOF
  # kube-apiserver's client certificate at the kubelet (logs, exec, port-forward), as kubeadm binds it.
  kubectl create clusterrolebinding tenantctl:kube-apiserver-kubelet-client --clusterrole system:kubelet-api-admin \
    --user kube-apiserver-kubelet-client --dry-run=client -o yaml | kubectl apply --server-side --field-manager tenantctl-cluster -f - >/dev/null
  local n
  for n in coredns kube-router provisioner external-secrets; do
    kubectl create clusterrolebinding "tenantctl:${n}" --clusterrole "tenantctl:${n}" --user "tenantctl:${n}" \
      --dry-run=client -o yaml | kubectl apply --server-side --field-manager tenantctl-cluster -f - >/dev/null
  done
}

# --- the node -------------------------------------------------------------------------------------

node() {
  local p="${D}/pki"
  # Pods resolve the host's upstream name servers for names outside the cluster.
  grep -E '^nameserver' /etc/resolv.conf | grep -vE ' 127\.| ::1' > "${D}/resolv.conf" || true
  [ -s "${D}/resolv.conf" ] || echo "nameserver ${NODE_IP}" > "${D}/resolv.conf"
  cat > "${D}/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroups here are v1 in hybrid mode, and there is no systemd.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://${D}/containerd/containerd.sock
address: ${NODE_IP}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
clusterDNS: [${DNS_IP}]
clusterDomain: cluster.local
resolvConf: ${D}/resolv.conf
failSwapOn: false
# There is no registry: never collect an imported image.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${p}/ca.crt}
authorization: {mode: Webhook}
serializeImagePulls: false
EOF
  start kubelet "$(bin kube-node kubelet)" --config "${D}/kubelet-config.yaml" \
    --kubeconfig "${D}/kubelet.kubeconfig" --root-dir "${D}/kubelet" --cert-dir "${D}/kubelet/pki" \
    --hostname-override "${NODE}" --node-ip "${NODE_IP}"
  wait_for "node ${NODE}" 180 kubectl wait --for=condition=Ready "node/${NODE}" --timeout=5s
  start kube-proxy "$(bin kube-node kube-proxy)" --kubeconfig "${D}/kube-proxy.kubeconfig" \
    --hostname-override "${NODE}" --proxy-mode iptables --cluster-cidr "${CLUSTER_CIDR}" \
    --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0 \
    --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256
  # Cluster DNS: CoreDNS on the host, behind a selector-less kube-dns Service.
  cat > "${D}/Corefile" <<EOF
.:53 {
    bind ${NODE_IP}
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig ${D}/coredns.kubeconfig tenantctl
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . ${D}/resolv.conf
    cache 30
}
EOF
  start coredns "$(bin coredns coredns)" -conf "${D}/Corefile"
  kubectl apply --server-side --field-manager tenantctl-cluster -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: ${DNS_IP}
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-host
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: tenantctl-cluster}
addressType: IPv4
endpoints:
- addresses: [${NODE_IP}]
  conditions: {ready: true}
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
EOF
  # NetworkPolicy: kube-router's firewall alone (the bridge CNI routes, kube-proxy serves Services).
  # It filters pod-to-pod traffic on the bridge through iptables, which needs bridge netfilter on.
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  start kube-router "$(bin kube-router kube-router)" --kubeconfig "${D}/kube-router.kubeconfig" \
    --run-firewall=true --run-router=false --run-service-proxy=false --hostname-override "${NODE}" \
    --service-cluster-ip-range "${SERVICE_CIDR}" --health-addr 127.0.0.1 --health-port 20244
  wait_for kube-router 60 curl -fsS http://127.0.0.1:20244/healthz
  # Storage: the hostPath provisioner, behind the default StorageClass.
  mkdir -p "${D}/volumes"
  start provisioner "${root}/bin/provisioner" -kubeconfig "${D}/provisioner.kubeconfig" \
    -dir "${D}/volumes" -node "${NODE}"
  kubectl apply --server-side --field-manager tenantctl-cluster -f - >/dev/null <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: hostpath
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: tenantctl.io/hostpath
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
EOF
}

# --- CloudNativePG --------------------------------------------------------------------------------

cnpg() {
  local dir manifest
  dir="$(cd "${root}" && go mod download -json "github.com/cloudnative-pg/cloudnative-pg@v${CNPG_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  manifest="${dir}/releases/cnpg-${CNPG_VERSION}.yaml"
  [ -f "${manifest}" ] || die "no ${manifest}"
  # The image is imported, never pulled.
  sed 's/imagePullPolicy: Always/imagePullPolicy: IfNotPresent/' "${manifest}" |
    kubectl apply --server-side --force-conflicts --field-manager tenantctl-cluster -f - >/dev/null
  kubectl -n cnpg-system rollout status deployment/cnpg-controller-manager --timeout=300s >/dev/null
  # The PostgreSQL images a tenant may ask for: Debian's major only.
  local pg_ref; pg_ref="$("${root}/hack/images.sh" ref postgres)"
  apply_cnpg <<EOF
apiVersion: postgresql.cnpg.io/v1
kind: ClusterImageCatalog
metadata: {name: ${PG_CATALOG}}
spec:
  images:
  - {major: ${POSTGRES_MAJOR}, image: ${pg_ref}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: ${SHARED_NAMESPACE}
  labels: {pod-security.kubernetes.io/enforce: restricted}
---
# The platform default-denies ingress to the shared cluster: the operator's per-tenant policies are
# the only way in (docs/database.md), plus CloudNativePG's operator and the instances themselves.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: ${SHARED_NAMESPACE}}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {}
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: cnpg-system}}
---
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: shared, namespace: ${SHARED_NAMESPACE}}
spec:
  instances: 1
  imageCatalogRef: {apiGroup: postgresql.cnpg.io, kind: ClusterImageCatalog, name: ${PG_CATALOG}, major: ${POSTGRES_MAJOR}}
  storage: {size: 1Gi}
  enableSuperuserAccess: false
  postgresql:
    # Segregation between the tenants sharing it (docs/database.md): TLS only, and each role only
    # into the database of its own name (the operator names both after the tenant). PostgreSQL
    # grants CONNECT on every new database to PUBLIC, so without "sameuser" any tenant's role
    # could open any other tenant's database.
    pg_hba:
    - hostnossl all all all reject
    - hostssl sameuser all all scram-sha-256
    - hostssl all all all reject
EOF
}
# apply_cnpg: apply through CloudNativePG's webhooks, which answer once its pod serves them.
apply_cnpg() {
  local doc; doc="$(cat)"
  wait_for "CloudNativePG's webhook" 120 kubectl apply --server-side --field-manager tenantctl-cluster -f - <<<"${doc}"
}

# barman_cloud: CloudNativePG's Barman Cloud plugin, from its release manifest in the module source
# without the cert-manager objects: the two TLS Secrets of the plugin's gRPC channel (CloudNativePG
# dials the plugin's Service with the client pair and trusts the server certificate; the plugin
# trusts the client certificate) are made here, self-signed as cert-manager's Issuer would.
barman_cloud() {
  local dir p="${D}/pki/barman-cloud" plugin_ref sidecar_ref
  dir="$(cd "${root}" && go mod download -json "github.com/cloudnative-pg/plugin-barman-cloud@v${BARMAN_CLOUD_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  [ -f "${dir}/manifest.yaml" ] || die "no ${dir}/manifest.yaml"
  plugin_ref="$("${root}/hack/images.sh" ref barman-cloud)"
  sidecar_ref="$("${root}/hack/images.sh" ref barman-cloud-sidecar)"
  mkdir -p "${p}" && chmod 0700 "${p}"
  if [ ! -f "${p}/server.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj /CN=barman-cloud \
      -addext subjectAltName=DNS:barman-cloud -addext extendedKeyUsage=serverAuth -keyout "${p}/server.key" -out "${p}/server.crt" 2>/dev/null
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj /CN=barman-cloud-client \
      -addext extendedKeyUsage=clientAuth -keyout "${p}/client.key" -out "${p}/client.crt" 2>/dev/null
  fi
  kubectl -n cnpg-system create secret tls barman-cloud-server-tls --cert "${p}/server.crt" --key "${p}/server.key" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl -n cnpg-system create secret tls barman-cloud-client-tls --cert "${p}/client.crt" --key "${p}/client.key" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  # The Deployment reads SIDECAR_IMAGE from a Secret the release's kustomization generates.
  local sidecar_secret
  sidecar_secret="$(grep -A1 'key: SIDECAR_IMAGE' "${dir}/manifest.yaml" | awk '$1 == "name:" {print $2; exit}')"
  [ -n "${sidecar_secret}" ] || die "the plugin's manifest names no SIDECAR_IMAGE Secret"
  kubectl -n cnpg-system create secret generic "${sidecar_secret}" --from-literal "SIDECAR_IMAGE=${sidecar_ref}" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  # Every document except cert-manager's and that Secret; the image is imported, never pulled.
  awk -v RS='\n---\n' -v ORS='\n---\n' '!/apiVersion: cert-manager.io\// && !/\nkind: Secret\n/' "${dir}/manifest.yaml" |
    sed -E "s#^( *)image: .*plugin-barman-cloud.*#\1image: ${plugin_ref}\n\1imagePullPolicy: IfNotPresent#" |
    kubectl apply --server-side --force-conflicts --field-manager tenantctl-cluster -f - >/dev/null
  kubectl -n cnpg-system rollout status deployment/barman-cloud --timeout=300s >/dev/null
}

# objectstore_up: versitygw, an S3-compatible object store, as a host process on the node's address
# (a platform's object store outside the cluster, like its Vault), with TLS from the cluster's CA and
# its data under the cluster directory. Each tenant gets an account limited to its own bucket
# (hack/objectstore-tenant.sh).
objectstore_up() {
  local dir="${D}/objectstore"
  mkdir -p "${dir}/data" "${dir}/iam" && chmod 0700 "${dir}"
  [ -f "${dir}/root-secret" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' > "${dir}/root-secret"
  chmod 0600 "${dir}/root-secret"
  start objectstore env ROOT_ACCESS_KEY=tenantctl-admin ROOT_SECRET_KEY="$(cat "${dir}/root-secret")" \
    "$(bin versitygw versitygw)" --port "${NODE_IP}:9000" --cert "${D}/pki/objectstore.crt" --key "${D}/pki/objectstore.key" \
    --admin-port "${NODE_IP}:9001" --admin-cert "${D}/pki/objectstore.crt" --admin-cert-key "${D}/pki/objectstore.key" \
    --iam-dir "${dir}/iam" --health /health --keep-alive --quiet posix "${dir}/data"
  wait_for objectstore 60 curl -fsS --cacert "${D}/pki/ca.crt" "https://${NODE_IP}:9000/health"
}

# --- Vault and ESO (host processes, as a platform's Vault outside the cluster) ---------------------

vault_up() {
  mkdir -p "${D}/vault" && chmod 0700 "${D}/vault"
  [ -f "${D}/vault/root-token" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' > "${D}/vault/root-token"
  chmod 0600 "${D}/vault/root-token"
  # A dev server: in memory, unsealed, HTTP. A restart loses its data (make cluster-down; up again).
  start vault env HOME="${D}/vault" VAULT_DEV_ROOT_TOKEN_ID="$(cat "${D}/vault/root-token")" \
    "$(bin vault vault)" server -dev -dev-listen-address "${NODE_IP}:8200"
  wait_for vault 60 curl -fsS "${VAULT_ADDR}/v1/sys/health"
  kubectl create namespace "${OPERATOR_NAMESPACE}" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl apply -f "${root}/config/vault/token-reviewer.yaml" >/dev/null
  kubectl -n "${OPERATOR_NAMESPACE}" create token vault-token-reviewer --duration 8760h > "${D}/vault/reviewer.jwt"
  chmod 0600 "${D}/vault/reviewer.jwt"
  VAULT="$(bin vault vault)" VAULT_ADDR="${VAULT_ADDR}" VAULT_TOKEN="$(cat "${D}/vault/root-token")" HOME="${D}/vault" \
    KUBERNETES_HOST="https://${NODE_IP}:6443" KUBERNETES_CA_FILE="${D}/pki/ca.crt" \
    TOKEN_REVIEWER_JWT_FILE="${D}/vault/reviewer.jwt" "${root}/hack/vault-bootstrap.sh"
}

eso_up() {
  local dir
  dir="$(cd "${root}" && go mod download -json "github.com/external-secrets/external-secrets@v${ESO_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  kubectl apply --server-side --force-conflicts --field-manager tenantctl-cluster -k "${dir}/config/crds/bases/" >/dev/null
  # ESO exits at start when a kind it watches is not served yet: wait until every CRD is established.
  kubectl wait --for condition=Established --timeout 60s crd --all >/dev/null
  start external-secrets env KUBECONFIG="${D}/external-secrets.kubeconfig" "$(bin eso external-secrets)" \
    --enable-leader-election=false --metrics-addr 127.0.0.1:18080 --live-addr 127.0.0.1:18081 \
    --enable-cluster-store-reconciler=false --enable-cluster-external-secret-reconciler=false \
    --enable-cluster-push-secret-reconciler=false --enable-generator-state=false --zap-time-encoding iso8601
  wait_for "external-secrets" 60 curl -fsS http://127.0.0.1:18081/healthz
}

# --- the operator, with its chart -----------------------------------------------------------------

operator_up() {
  local ref repo tag helm
  ref="$("${root}/hack/images.sh" ref operator)"; repo="${ref%:*}"; tag="${ref##*:}"
  helm="$(bin helm helm)"
  cat > "${D}/operator-values.yaml" <<EOF
image: {repository: ${repo}, tag: "${tag}", pullPolicy: IfNotPresent}
config:
  trustedNamespaces: [cnpg-system, monitoring]
  # DenyAll tenants' pods reach DNS, which here runs on the node rather than as kube-dns pods, and
  # their databases the API server (the kubernetes Service's endpoint) and the object store, all on
  # the node.
  platformEgress:
  - to: [{ipBlock: {cidr: ${NODE_IP}/32}}]
    ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}, {protocol: TCP, port: 6443}, {protocol: TCP, port: 9000}]
  database:
    imageCatalog: ${PG_CATALOG}
    # One node: instances share it.
    podAntiAffinityType: preferred
    defaultInstances: 1
    shared: {name: shared, namespace: ${SHARED_NAMESPACE}}
    # Each tenant's backups in a bucket of its own, with its own keys (hack/objectstore-tenant.sh).
    backup:
      objectStore:
        destinationPath: s3://tenant-{tenant}/
        endpointURL: https://${NODE_IP}:9000
        wal: {compression: gzip}
        data: {compression: gzip}
      tenantCredentials: {vaultKey: backup}
      endpointCA: |
$(sed 's/^/        /' "${D}/pki/ca.crt")
  vault:
    address: ${VAULT_ADDR}
    auth: {method: kubernetes, role: tenant-operator, tokenPath: /var/run/secrets/tenantctl.io/vault/token}
EOF
  HELM_CACHE_HOME="${D}/helm" HELM_CONFIG_HOME="${D}/helm" HELM_DATA_HOME="${D}/helm" \
    "${helm}" upgrade --install tenant-operator "${root}/charts/tenant-operator" --kubeconfig "${D}/admin.kubeconfig" \
    --namespace "${OPERATOR_NAMESPACE}" --create-namespace -f "${D}/operator-values.yaml" --wait --timeout 5m >/dev/null
  # A new image under the same tag: restart so the pods run what was just built.
  kubectl -n "${OPERATOR_NAMESPACE}" rollout restart deployment >/dev/null
  kubectl -n "${OPERATOR_NAMESPACE}" rollout status deployment --timeout=300s >/dev/null
}

# samples: config/samples' tenants that fit this cluster (globex without a database, initech on the
# shared cluster) and cluster-demo, with a dedicated PostgreSQL 15 of one instance. acme, the full
# sample, asks for PostgreSQL 17, three instances on three nodes and backups to an object store,
# none of which this cluster has (make dev applies it).
samples() {
  kubectl apply --server-side -f "${root}/config/samples/tenancy_v1alpha1_tenant_minimal.yaml" \
    -f "${root}/config/samples/tenancy_v1alpha1_tenant_shared_db.yaml" >/dev/null
  kubectl apply -f - >/dev/null <<EOF
apiVersion: tenancy.tenantctl.io/v1alpha1
kind: Tenant
metadata:
  name: cluster-demo
spec:
  displayName: A tenant on the test cluster
  owners:
  - {kind: User, name: "oidc:alice@demo.example"}
  database:
    mode: Dedicated
    instances: 1
    postgresVersion: ${POSTGRES_MAJOR}
    storage: {size: 1Gi}
    confirmDeletionWithoutBackup: true
  deletionPolicy: Delete
EOF
}

# --- down -----------------------------------------------------------------------------------------

down() {
  [ "$(id -u)" = 0 ] || die "make cluster-down needs root"
  [ -d "${D}" ] || { log "nothing to tear down (${D} does not exist)"; return 0; }
  local n
  for n in objectstore external-secrets vault provisioner kube-router coredns kube-proxy kubelet; do stop "${n}"; done
  kill_pods
  for n in containerd kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "${n}"; done
  restore_host
  rm -rf "${D}"
  log "down: every process stopped and the host restored (${D} removed)"
}

# restore_rules TOOL SAVED: put TOOL's (iptables, ip6tables) rules back as saved. iptables-restore
# replaces only the tables the file names, and a host without rules saves none, so every table the
# file lacks is emptied first (its chains flushed and deleted, its policies back to ACCEPT).
restore_rules() {
  local tool="$1" saved="$2" t c
  command -v "${tool}" >/dev/null || return 0
  [ -f "${saved}" ] || return 0
  for t in filter nat mangle raw security; do
    grep -qx "\*${t}" "${saved}" && continue
    "${tool}" -t "${t}" -F 2>/dev/null || continue
    "${tool}" -t "${t}" -X 2>/dev/null || true
    for c in $("${tool}" -t "${t}" -S 2>/dev/null | awk '$1 == "-P" {print $2}'); do "${tool}" -t "${t}" -P "${c}" ACCEPT; done
  done
  "${tool}-restore" < "${saved}"
}

# kill_pods: every container process (the kubepods cgroups), then the containerd shims of this
# cluster, then the cgroups themselves.
kill_pods() {
  local cg pids i
  for i in 1 2 3; do
    pids="$(cat $(find /sys/fs/cgroup/*/kubepods* -name cgroup.procs 2>/dev/null) 2>/dev/null | sort -u || true)"
    [ -n "${pids}" ] || break
    kill -KILL ${pids} 2>/dev/null || true
    sleep 1
  done
  pkill -KILL -f "containerd-shim-runc-v2 .*-address ${D}/containerd/containerd.sock" 2>/dev/null || true
  for cg in /sys/fs/cgroup/*/kubepods*; do
    [ -d "${cg}" ] && find "${cg}" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

restore_host() {
  local m
  # Mounts: the kubelet's root dir and pod volumes, containerd's snapshots and the network namespaces.
  for m in $(awk -v d="${D}" 'index($2, d) == 1 || index($2, "/run/netns/cni-") == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "${m}" 2>/dev/null || true
  done
  rm -f /run/netns/cni-* 2>/dev/null || true
  ip link del cni0 2>/dev/null || true
  [ -f "${D}/host/lo-address-existed" ] || ip addr del "${NODE_IP}/32" dev lo 2>/dev/null || true
  restore_rules iptables "${D}/host/iptables"
  restore_rules ip6tables "${D}/host/ip6tables"
  if [ -f "${D}/host/ipsets" ]; then
    for m in $(ipset list -n 2>/dev/null | sort | comm -23 - "${D}/host/ipsets"); do ipset destroy "${m}" 2>/dev/null || true; done
  fi
  if [ -f "${D}/host/sysctls" ]; then
    while IFS='=' read -r k v; do
      [ "$(sysctl -n "${k}" 2>/dev/null)" = "${v}" ] || sysctl -qw "${k}=${v}" 2>/dev/null || log "could not restore ${k}=${v}"
    done < "${D}/host/sysctls"
  fi
  for m in /var/lib/cni /var/log/containers /var/log/pods /run/netns /etc/cni /run/containerd; do
    grep -qx "${m}" "${D}/host/existing-paths" 2>/dev/null || rm -rf "${m}"
  done
  if [ -s "${D}/host/apt-installed" ]; then
    log "left installed (apt-get): $(tr '\n' ' ' < "${D}/host/apt-installed")- remove with: apt-get purge $(tr '\n' ' ' < "${D}/host/apt-installed")"
  fi
}

main "$@"; exit $?
