#!/usr/bin/env bash
# Start (or reuse) a real single-node Kubernetes cluster on this machine:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd
# (its own instance) and a kubelet, built from Go modules by build-binaries.sh.
# Idempotent: a healthy cluster is reused; a dead or half-started one is
# cleaned up and started fresh (cluster state is disposable).
#
# Environment:
#   CONVEYOR_CLUSTER_DIR          state dir (default /var/lib/conveyor-cluster)
#   CONVEYOR_CACHE                binary/image cache (default /var/cache/conveyor)
#   CONVEYOR_APISERVER_EXTRA_FLAGS, CONVEYOR_KCM_EXTRA_FLAGS,
#   CONVEYOR_SCHEDULER_EXTRA_FLAGS, CONVEYOR_KUBELET_EXTRA_FLAGS
#                                 extra flags (word-split); a change restarts the cluster
#   CONVEYOR_SERVICE_DNAT=0       do not DNAT the kubernetes Service IP to the API server
#   CONVEYOR_FORCE_RESTART=1      restart even if the running cluster is healthy
#
#   up.sh [--with-kwok]           --with-kwok also builds kwok (the benchmark's fake nodes)
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
export PATH="$BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

t0=$SECONDS
log() { printf '[cluster %3ds] %s\n' "$((SECONDS - t0))" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }
[[ "$(id -u)" == 0 ]] || die "must run as root (it starts containerd and a kubelet)"

APISERVER_EXTRA="${CONVEYOR_APISERVER_EXTRA_FLAGS:-}"
KCM_EXTRA="${CONVEYOR_KCM_EXTRA_FLAGS:-}"
SCHEDULER_EXTRA="${CONVEYOR_SCHEDULER_EXTRA_FLAGS:-}"
KUBELET_EXTRA="${CONVEYOR_KUBELET_EXTRA_FLAGS:-}"
SERVICE_DNAT="${CONVEYOR_SERVICE_DNAT:-1}"
WITH_KWOK=0
kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" --request-timeout=10s "$@"; }

print_paste_lines() {
  echo
  echo "# Cluster is up. Paste into your shell (or: source tests/cluster/env.sh):"
  echo "export KUBECONFIG=$KUBECONFIG_ADMIN"
  echo "export PATH=$BIN:\$PATH"
}

# ---------------------------------------------------------------------------
install_packages() {
  local pkgs=(containerd runc containernetworking-plugins iptables conntrack openssl
    busybox-static gcc libc6-dev socat curl ethtool iproute2 util-linux ca-certificates)
  local missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >"/tmp/conveyor-apt.log" 2>&1 || { cat /tmp/conveyor-apt.log >&2; die "apt-get update failed"; }
    # Debian's containerd package enables a systemd unit; there is no systemd
    # here, and we run our own instance anyway.
    apt-get install -y -q --no-install-recommends "${missing[@]}" >>"/tmp/conveyor-apt.log" 2>&1 \
      || { tail -30 /tmp/conveyor-apt.log >&2; die "apt-get install failed (log: /tmp/conveyor-apt.log)"; }
  else
    log "packages present"
  fi
}

# Only what the command needs is built: kwok (the benchmark's fake nodes) only with
# --with-kwok. Each component is a directory with a `.complete` stamp.
component_dir() {
  case "$1" in
    kubernetes) echo "$K8S_BIN" ;; etcd) echo "$ETCD_BIN" ;; helm) echo "$HELM_BIN" ;; kwok) echo "$KWOK_BIN" ;;
  esac
}

build_binaries() {
  local c missing=() want=(etcd helm kubernetes)
  ((WITH_KWOK)) && want+=(kwok)
  for c in "${want[@]}"; do
    [[ -f "$(component_dir "$c")/.complete" ]] || missing+=("$c")
  done
  if ((${#missing[@]} == 0)); then
    log "binaries cached in $CACHE/bin"
  else
    local build_log="$CACHE/build.log"
    mkdir -p "$CACHE"
    log "building ${missing[*]} from Go modules, once per machine (the longest part of a first run); log: $build_log"
    # flock: two concurrent up.sh runs must not build into the same dirs
    exec 8>"$CACHE/.build.lock"
    if ! flock -n 8; then
      log "another build holds $CACHE/.build.lock: waiting for it (follow: tail -f $build_log)"
      flock 8
    fi
    { CONVEYOR_BUILD_LOG="$build_log" bash "$CLUSTER_SCRIPTS/build-binaries.sh" "${missing[@]}" 2>&1 || true; } \
      | tee -a "$build_log" | grep --line-buffered '^\[build' || true
    exec 8>&-
    for c in "${missing[@]}"; do
      [[ -f "$(component_dir "$c")/.complete" ]] || die "build-binaries.sh did not finish $c (see $build_log)"
    done
  fi
  mkdir -p "$BIN"
  for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
    ln -sfn "$K8S_BIN/$c" "$BIN/$c"
  done
  ln -sfn "$ETCD_BIN/etcd" "$BIN/etcd"
  ln -sfn "$HELM_BIN/helm" "$BIN/helm"
  [[ -x "$KWOK_BIN/kwok" ]] && ln -sfn "$KWOK_BIN/kwok" "$BIN/kwok"
  cat >"$BIN/conveyor-ctr" <<EOF
#!/bin/sh
# ctr for the cluster's own containerd, namespace k8s.io
exec ctr --address "$CTRD_SOCK" --namespace k8s.io "\$@"
EOF
  ln -sfn "$CLUSTER_SCRIPTS/import-image.sh" "$BIN/conveyor-import-image"
  chmod +x "$BIN/conveyor-ctr"
}

# What the running cluster was started with: versions, addresses, extra flags
# and the code that writes configs and starts components (`declare -f` drops
# comments, so editing comments does not restart a cluster).
fingerprint() {
  printf '%s\n' "$K8S_VERSION" "$ETCD_VERSION" "$NODE_NAME" "$NODE_IP" "$APISERVER_EXTRA" "$KCM_EXTRA" \
    "$SCHEDULER_EXTRA" "$KUBELET_EXTRA" "$SERVICE_DNAT" "$CTRD_SOCK" "$POD_CIDR" "$CNI_BRIDGE" \
    "$(declare -f make_pki write_configs service_dnat start_etcd start_apiserver start_controllers \
      start_containerd start_kubelet)" | sha256sum | cut -c1-16
}

node_ready() {
  [[ "$(kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

api_ready() {
  curl -fsS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://$NODE_IP:$API_PORT/readyz" >/dev/null 2>&1
}

cluster_healthy() {
  local c
  [[ -f "$KUBECONFIG_ADMIN" && -f "$STATE/fingerprint" ]] || return 1
  for c in "${COMPONENTS[@]}"; do pid_of "$c" >/dev/null || return 1; done
  [[ "$(cat "$STATE/fingerprint")" == "$(fingerprint)" ]] || { log "configuration changed: restarting"; return 1; }
  api_ready && node_ready
}

# ---------------------------------------------------------------------------
host_setup() {
  # kubelet's OOM watcher reads /dev/kmsg (fatal if missing)
  [[ -e /dev/kmsg ]] || { log "creating /dev/kmsg -> /dev/console"; ln -s /dev/console /dev/kmsg; }
  command -v modprobe >/dev/null && modprobe -q br_netfilter 2>/dev/null || true
  command -v modprobe >/dev/null && modprobe -q overlay 2>/dev/null || true
  sysctl -qw net.ipv4.ip_forward=1
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] && sysctl -qw net.bridge.bridge-nf-call-iptables=1
  [[ -e /proc/sys/net/bridge/bridge-nf-call-ip6tables ]] && sysctl -qw net.bridge.bridge-nf-call-ip6tables=1
  local key want cur
  for kv in fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=524288; do
    key="${kv%=*}" want="${kv#*=}" cur="$(sysctl -n "$key")"
    ((cur >= want)) || sysctl -qw "$kv"
  done
  local ctl
  for ctl in cpu cpuacct cpuset memory pids; do
    awk -v c="$ctl" '$1 == c && $4 == 1 {found=1} END {exit !found}' /proc/cgroups \
      || die "cgroup controller $ctl is not available"
  done
  grep -qw overlay /proc/filesystems || die "overlayfs is not available (set snapshotter to native in up.sh)"
  # dockerd sets the FORWARD policy to DROP; let our pod bridge through.
  if iptables -S FORWARD 2>/dev/null | grep -q -- '-P FORWARD DROP'; then
    log "FORWARD policy is DROP: accepting traffic on $CNI_BRIDGE"
    iptables -C FORWARD -i "$CNI_BRIDGE" -j ACCEPT 2>/dev/null || iptables -I FORWARD -i "$CNI_BRIDGE" -j ACCEPT
    iptables -C FORWARD -o "$CNI_BRIDGE" -j ACCEPT 2>/dev/null || iptables -I FORWARD -o "$CNI_BRIDGE" -j ACCEPT
  fi
  # The cgroup the kubelet puts pods under (cgroupRoot), so they are easy to find.
  local d
  for d in /sys/fs/cgroup/*/; do
    [[ -f "$d/cgroup.procs" && "$d" != */unified/ ]] || continue
    mkdir -p "$d/conveyor"
    if [[ -f "$d/cpuset.cpus" ]]; then
      cat "$d/cpuset.cpus" >"$d/conveyor/cpuset.cpus"
      cat "$d/cpuset.mems" >"$d/conveyor/cpuset.mems"
    fi
  done
}

service_dnat() {
  # No kube-proxy: a single DNAT rule makes the kubernetes Service
  # (https://10.0.0.1:443, what in-cluster clients use) reach the API server.
  [[ "$SERVICE_DNAT" == 1 ]] || return 0
  iptables -t nat -N CONVEYOR-SERVICES 2>/dev/null || iptables -t nat -F CONVEYOR-SERVICES
  iptables -t nat -A CONVEYOR-SERVICES -d "$API_SERVICE_IP/32" -p tcp --dport 443 \
    -j DNAT --to-destination "$NODE_IP:$API_PORT"
  local chain
  for chain in PREROUTING OUTPUT; do
    iptables -t nat -C "$chain" -d "$SERVICE_CIDR" -j CONVEYOR-SERVICES 2>/dev/null \
      || iptables -t nat -I "$chain" -d "$SERVICE_CIDR" -j CONVEYOR-SERVICES
  done
}

# ---------------------------------------------------------------------------
# Certificates (openssl, ECDSA P-256: fast to generate, accepted everywhere)
cert() {  # cert NAME SUBJECT EKU [SANS]; signed by $CA (default: ca)
  local name="$1" subj="$2" eku="$3" sans="${4:-}" ca="${CA:-ca}"
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  {
    echo "[v3]"
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature, keyEncipherment"
    echo "extendedKeyUsage = $eku"
    echo "authorityKeyIdentifier = keyid"
    [[ -n "$sans" ]] && echo "subjectAltName = $sans"
  } >"$PKI/$name.ext"
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 3650 -extfile "$PKI/$name.ext" -extensions v3 -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

make_pki() {
  local stamp="v2 $NODE_NAME $NODE_IP $API_SERVICE_IP"
  if [[ -f "$PKI/.complete" && "$(cat "$PKI/.complete")" == "$stamp" ]]; then
    log "reusing certificates in $PKI"
    return
  fi
  log "creating certificates in $PKI"
  rm -rf "$PKI"; mkdir -p "$PKI"; chmod 700 "$PKI"
  cat >"$PKI/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
CN = conveyor-cluster-ca
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
EOF
  local ca
  for ca in ca front-proxy-ca; do
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$ca.key" 2>/dev/null
    openssl req -x509 -new -config "$PKI/ca.cnf" -key "$PKI/$ca.key" -days 3650 \
      -subj "/CN=conveyor-cluster-$ca" -out "$PKI/$ca.crt" 2>/dev/null
  done
  cert apiserver "/CN=kube-apiserver" serverAuth \
    "DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, DNS:localhost, DNS:$NODE_NAME, IP:$API_SERVICE_IP, IP:$NODE_IP, IP:127.0.0.1"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  cert admin "/O=system:masters/CN=conveyor-admin" clientAuth
  cert controller-manager "/CN=system:kube-controller-manager" clientAuth
  cert scheduler "/CN=system:kube-scheduler" clientAuth
  cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  cert kubelet-serving "/CN=$NODE_NAME" serverAuth "DNS:$NODE_NAME, DNS:localhost, IP:$NODE_IP, IP:127.0.0.1"
  # aggregation layer (requestheader authentication of the API server's proxy)
  CA=front-proxy-ca cert front-proxy-client "/CN=front-proxy-client" clientAuth
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key" 2>/dev/null
  openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  echo "$stamp" >"$PKI/.complete"
}

kubeconfig() {  # kubeconfig FILE CERTNAME USER
  b64() { base64 -w0 <"$1"; }
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: conveyor
  cluster:
    server: https://$NODE_IP:$API_PORT
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: $3
  user:
    client-certificate-data: $(b64 "$PKI/$2.crt")
    client-key-data: $(b64 "$PKI/$2.key")
contexts:
- name: conveyor
  context: {cluster: conveyor, user: $3, namespace: default}
current-context: conveyor
EOF
  chmod 600 "$1"
}

write_configs() {
  mkdir -p "$CONF" "$STATE/manifests" "$STATE/cni/net.d" "$STATE/pod-logs" "$KUBELET_DIR"
  kubeconfig "$KUBECONFIG_ADMIN.tmp" admin conveyor-admin && mv "$KUBECONFIG_ADMIN.tmp" "$KUBECONFIG_ADMIN"
  kubeconfig "$CONF/controller-manager.kubeconfig" controller-manager system:kube-controller-manager
  kubeconfig "$CONF/scheduler.kubeconfig" scheduler system:kube-scheduler
  kubeconfig "$CONF/kubelet.kubeconfig" kubelet-client "system:node:$NODE_NAME"

  cat >"$CONF/scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $CONF/scheduler.kubeconfig
leaderElection:
  leaderElect: false
EOF

  cat >"$CONF/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$CTRD_RUN/state"
# The VM withholds CAP_SYS_RESOURCE: no negative OOM scores for anything.
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  tolerate_missing_hugetlb_controller = true
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CTRD_RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
EOF

  # containerd adds the loopback interface itself (loopback plugin from bin_dir).
  cat >"$STATE/cni/net.d/10-conveyor.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$STATE/cni/networks"
      }
    },
    {"type": "firewall", "backend": "iptables"},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

  cat >"$CONF/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /conveyor
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$CTRD_SOCK
address: 0.0.0.0
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
registerNode: true
clusterDomain: cluster.local
staticPodPath: $STATE/manifests
podLogsDir: $STATE/pod-logs
resolvConf: /etc/resolv.conf
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
serializeImagePulls: false
oomScoreAdj: 0
EOF
}

# ---------------------------------------------------------------------------
start_bg() {  # start_bg NAME CMD...: detached (own session), logs and pid file under the state dir
  local name="$1"; shift
  log "starting $name"
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
}

wait_until() {  # wait_until TIMEOUT DESCRIPTION COMPONENT CMD...
  local timeout="$1" desc="$2" comp="$3"; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [[ -n "$comp" ]] && ! pid_of "$comp" >/dev/null; then
      tail -n 40 "$LOGS/$comp.log" >&2 || true
      die "$comp exited while waiting for $desc (log: $LOGS/$comp.log)"
    fi
    if ((SECONDS >= deadline)); then
      [[ -n "$comp" ]] && tail -n 40 "$LOGS/$comp.log" >&2
      die "timed out after ${timeout}s waiting for $desc"
    fi
    sleep 0.25
  done
}

start_etcd() {
  start_bg etcd "$BIN/etcd" --name conveyor --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "conveyor=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --log-level warn
  wait_until 30 "etcd health" etcd curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"
}

start_apiserver() {
  # shellcheck disable=SC2086
  start_bg kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=0.0.0.0 --secure-port="$API_PORT" --advertise-address="$NODE_IP" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true --v=1 $APISERVER_EXTRA
  wait_until 90 "kube-apiserver /readyz" kube-apiserver api_ready
}

start_controllers() {
  # shellcheck disable=SC2086
  start_bg kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$CONF/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$CONF/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$CONF/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --leader-elect=false --v=1 $KCM_EXTRA
  # shellcheck disable=SC2086
  start_bg kube-scheduler "$BIN/kube-scheduler" --config="$CONF/scheduler.yaml" \
    --authentication-kubeconfig="$CONF/scheduler.kubeconfig" \
    --authorization-kubeconfig="$CONF/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --v=1 $SCHEDULER_EXTRA
}

start_containerd() {
  mkdir -p "$CTRD_RUN" "$STATE/containerd"
  start_bg containerd containerd --config "$CONF/containerd.toml"
  wait_until 30 "containerd socket" containerd ctr --address "$CTRD_SOCK" version
}

# ---------------------------------------------------------------------------
# Images: built without registry or docker, archives cached in $CACHE/images
IMG_CACHE="$CACHE/images"

build_pause_archive() {
  local out="$IMG_CACHE/pause-3.10.tar" src="$CLUSTER_SCRIPTS/images/pause.c"
  [[ -f "$out" && "$out" -nt "$src" && "$out" -nt "$CLUSTER_SCRIPTS/images/mkimage.py" ]] && return
  log "building $PAUSE_IMAGE"
  local root; root="$(mktemp -d "$IMG_CACHE/pause-root.XXXXXX")"
  gcc -Os -static -Wall -o "$root/pause" "$src"
  strip "$root/pause" 2>/dev/null || true
  python3 "$CLUSTER_SCRIPTS/images/mkimage.py" --rootfs "$root" --name "$PAUSE_IMAGE" \
    --entrypoint '["/pause"]' --user 65535:65535 --output "$out" >/dev/null
  rm -rf "$root"
}

# In extra/, which every up.sh re-imports into a fresh cluster (import-image.sh's convention).
BUSYBOX_ARCHIVE="$IMG_CACHE/extra/busybox.tar"

build_busybox_archive() {
  local out="$BUSYBOX_ARCHIVE" names="$BUSYBOX_IMAGE $BUSYBOX_LEGACY_IMAGE"
  [[ -f "$out" && "$out" -nt /bin/busybox && "$out" -nt "$CLUSTER_SCRIPTS/images/mkimage.py" \
    && "$(cat "$out.names" 2>/dev/null)" == "$names" ]] && return
  local banner=""
  [[ -x /bin/busybox ]] && banner="$(/bin/busybox --help 2>&1 || true)"
  [[ "$banner" == *"BusyBox v1."* ]] || die "/bin/busybox is not Debian's busybox-static"
  log "building $BUSYBOX_IMAGE (also tagged $BUSYBOX_LEGACY_IMAGE) from Debian's busybox-static"
  local root; root="$(mktemp -d "$IMG_CACHE/busybox-root.XXXXXX")"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,var/tmp,home}
  chmod 1777 "$root/tmp" "$root/var/tmp"; chmod 700 "$root/root"
  cp /bin/busybox "$root/bin/busybox"
  # each applet as a symlink to /bin/busybox, in its usual directory
  chroot "$root" /bin/busybox --install -s
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  python3 "$CLUSTER_SCRIPTS/images/mkimage.py" --rootfs "$root" --name "$BUSYBOX_IMAGE" \
    --name "$BUSYBOX_LEGACY_IMAGE" --cmd '["sh"]' --output "$out" >/dev/null
  echo "$names" >"$out.names"
  rm -rf "$root"
}

import_images() {
  mkdir -p "$IMG_CACHE/extra"
  build_pause_archive
  build_busybox_archive
  local a n=0
  for a in "$IMG_CACHE/pause-3.10.tar" "$IMG_CACHE"/extra/*.tar; do
    [[ -f "$a" ]] || continue
    ctr_k8s images import --snapshotter overlayfs "$a" >/dev/null || die "importing $a failed"
    n=$((n + 1))
  done
  log "imported $n images ($(ctr_k8s images ls -q | grep -v '^sha256:' | tr '\n' ' '))"
}

# A reused cluster gets the images a newer checkout names (the busybox under its public
# name, say) without a restart: importing into containerd disturbs no running pod.
import_missing_images() {
  local have
  have="$(ctr_k8s images ls -q 2>/dev/null)" || { log "warning: cannot list the cluster's images"; return 0; }
  if ! grep -qxF "$BUSYBOX_IMAGE" <<<"$have" || ! grep -qxF "$BUSYBOX_LEGACY_IMAGE" <<<"$have"; then
    mkdir -p "$IMG_CACHE/extra"
    exec 7>"$IMG_CACHE/.busybox.lock"
    flock 7  # two up.sh at once must not write one archive together
    build_busybox_archive
    exec 7>&-
    ctr_k8s images import --snapshotter overlayfs "$BUSYBOX_ARCHIVE" >/dev/null \
      || die "importing $BUSYBOX_ARCHIVE failed"
    log "imported $BUSYBOX_IMAGE and $BUSYBOX_LEGACY_IMAGE into the running cluster"
  fi
}

start_kubelet() {
  # shellcheck disable=SC2086
  start_bg kubelet "$BIN/kubelet" --config="$CONF/kubelet.yaml" \
    --kubeconfig="$CONF/kubelet.kubeconfig" --root-dir="$KUBELET_DIR" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1 $KUBELET_EXTRA
}

default_sa_ready() {
  kubectl -n default get serviceaccount default && kubectl -n default get configmap kube-root-ca.crt
}

# ---------------------------------------------------------------------------
main() {
  # Parsed here, not at the top: restart.sh sources this file with arguments of its own.
  for arg in "$@"; do
    case "$arg" in
      --with-kwok) WITH_KWOK=1 ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
      *) die "unknown argument $arg (usage: up.sh [--with-kwok])" ;;
    esac
  done
  [[ -n "$NODE_IP" ]] || die "no IPv4 address found on the default-route interface; set CONVEYOR_NODE_IP"
  install_packages
  build_binaries
  mkdir -p "$PIDS" "$LOGS"

  if [[ "${CONVEYOR_FORCE_RESTART:-0}" != 1 ]] && cluster_healthy; then
    log "cluster already running and healthy: reusing it"
    import_missing_images
    print_paste_lines
    return 0
  fi

  log "cleaning up leftovers of an earlier run"
  stop_cluster_processes
  cleanup_host_state
  # Cluster state is disposable: fresh etcd, kubelet and containerd dirs.
  rm -rf "$STATE/pod-logs" "$STATE/cni" "$STATE/fingerprint" "$STATE/tmp"
  dispose_dirs "$STATE/etcd" "$STATE/containerd"
  if [[ -d "$KUBELET_DIR" ]]; then
    rm -rf --one-file-system "$KUBELET_DIR" || die "could not remove $KUBELET_DIR (mounts left?)"
  fi
  if compgen -G "$LOGS/*.log" >/dev/null; then
    rm -rf "$LOGS/previous"; mkdir -p "$LOGS/previous"; mv "$LOGS"/*.log "$LOGS/previous/"
  fi
  mkdir -p "$LOGS" "$PIDS"

  host_setup
  make_pki
  write_configs
  service_dnat

  start_etcd
  start_apiserver
  start_controllers
  start_containerd
  import_images
  start_kubelet

  log "waiting for node $NODE_NAME to be Ready"
  wait_until 120 "node $NODE_NAME Ready" kubelet node_ready
  log "waiting for the default ServiceAccount"
  wait_until 60 "ServiceAccount default/default" kube-controller-manager default_sa_ready
  local c
  for c in "${COMPONENTS[@]}"; do
    pid_of "$c" >/dev/null || die "$c is not running (log: $LOGS/$c.log)"
  done
  fingerprint >"$STATE/fingerprint"
  log "cluster ready ($("$BIN/kubectl" version --kubeconfig "$KUBECONFIG_ADMIN" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])'), node $NODE_NAME $NODE_IP)"
  print_paste_lines
}

[[ "${BASH_SOURCE[0]}" != "$0" ]] || main "$@"
