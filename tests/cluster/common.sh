# Shared settings of the local cluster scripts (sourced by up.sh, down.sh,
# import-image.sh). Every path and address can be overridden from the
# environment; the defaults keep all state in one directory.
# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts
CLUSTER_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$CLUSTER_SCRIPTS/versions.env"

CACHE="${CONVEYOR_CACHE:-/var/cache/conveyor}"
STATE="${CONVEYOR_CLUSTER_DIR:-/var/lib/conveyor-cluster}"
# containerd's state dir and sockets (must not be the system's /run/containerd).
CTRD_RUN="${CONVEYOR_CONTAINERD_RUN:-/run/conveyor-containerd}"
CTRD_SOCK="$CTRD_RUN/containerd.sock"

K8S_BIN="$CACHE/bin/kubernetes-$K8S_VERSION"
ETCD_BIN="$CACHE/bin/etcd-$ETCD_VERSION"
HELM_BIN="$CACHE/bin/helm-$HELM_VERSION"
KWOK_BIN="$CACHE/bin/kwok-$KWOK_VERSION"

BIN="$STATE/bin"                 # stable symlinks: kubectl, helm, kwok, ...
PKI="$STATE/pki"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
CONF="$STATE/config"
KUBECONFIG_ADMIN="$STATE/kubeconfig"
KUBELET_DIR="$STATE/kubelet"

NODE_NAME="${CONVEYOR_NODE_NAME:-$(hostname | tr '[:upper:]' '[:lower:]')}"
if [[ -z "${CONVEYOR_NODE_IP:-}" ]]; then
  _dev="$(ip -4 route show default 2>/dev/null | awk '{for(i=1;i<NF;i++) if($i=="dev"){print $(i+1); exit}}')"
  CONVEYOR_NODE_IP="$(ip -4 -o addr show dev "${_dev:-eth0}" 2>/dev/null | awk '{split($4,a,"/"); print a[1]; exit}')"
  unset _dev
fi
NODE_IP="$CONVEYOR_NODE_IP"

ETCD_PORT="${CONVEYOR_ETCD_PORT:-2379}"
ETCD_PEER_PORT="${CONVEYOR_ETCD_PEER_PORT:-2380}"
API_PORT="${CONVEYOR_API_PORT:-6443}"
SERVICE_CIDR="${CONVEYOR_SERVICE_CIDR:-10.0.0.0/24}"
API_SERVICE_IP="${CONVEYOR_API_SERVICE_IP:-10.0.0.1}"
POD_CIDR="${CONVEYOR_POD_CIDR:-10.88.0.0/16}"
CNI_NETWORK="conveyor"
CNI_BRIDGE="${CONVEYOR_CNI_BRIDGE:-conveyor0}"
CNI_BIN_DIR="/usr/lib/cni"

PAUSE_IMAGE="conveyor.local/pause:3.10"
# The busybox that examples and tests name is the public one (`busybox:1.36`, which
# containerd normalises to this); the local cluster imports Debian's busybox-static
# under that name, so one manifest works here and on any cluster that pulls from
# Docker Hub. The old local name stays imported too, for manifests written before.
BUSYBOX_IMAGE="docker.io/library/busybox:1.36"
BUSYBOX_LEGACY_IMAGE="conveyor.local/busybox:1.35"

# Start order; down.sh stops in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet)

pid_of() {  # pid_of COMPONENT -> prints the pid if its pid file names a live process of that binary
  local f="$PIDS/$1.pid" pid exe
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  [[ "$(basename "${exe% (deleted)}")" == "$1" ]] || return 1
  echo "$pid"
}

ctr_k8s() { ctr --address "$CTRD_SOCK" --namespace k8s.io "$@"; }

# ---------------------------------------------------------------------------
# Stopping and cleaning up (used by down.sh and by up.sh over a dead cluster).
# Everything is found by our own pid files, socket, state dir and cgroup
# (/conveyor), never by process name alone.

_say() { if declare -F log >/dev/null; then log "$@"; else echo "$*"; fi; }

stop_component() {  # SIGTERM by pid file, SIGKILL after a grace period
  local name="$1" grace="${2:-10}" pid i
  pid="$(pid_of "$name")" || { rm -f "$PIDS/$name.pid"; return 0; }
  _say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    [[ -d "/proc/$pid" ]] || break
    # a zombie child of ours counts as gone
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && break
    sleep 0.1
  done
  [[ -d "/proc/$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDS/$name.pid"
}

# Processes of the cluster's binaries whose command line names our state dir
# or containerd socket: covers lost pid files and containerd's shims.
our_stray_pids() {
  local p exe cmd
  for p in /proc/[0-9]*; do
    exe="$(readlink "$p/exe" 2>/dev/null)" || continue
    exe="${exe% (deleted)}"
    case "${exe##*/}" in
      etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kwok|containerd|containerd-shim-runc-v2) ;;
      *) continue ;;
    esac
    cmd="$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" || continue
    if [[ "$cmd" == *"$STATE/"* || "$cmd" == *"$CTRD_SOCK"* || "$cmd" == *"$CTRD_RUN/"* ]]; then
      echo "${p#/proc/}"
    fi
  done
}

# Kill every process in the kubelet's pod cgroups (cgroupRoot /conveyor),
# then containerd's shims for our socket, then remove the cgroups.
kill_pods() {
  local round pids shims d
  shims="$(for p in $(our_stray_pids); do
      [[ "$(basename "$(readlink "/proc/$p/exe" 2>/dev/null)")" != containerd-shim-runc-v2 ]] || echo "$p"
    done)"
  for round in 1 2 3 4 5 6 7 8 9 10; do
    pids="$(find /sys/fs/cgroup/*/conveyor -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un || true)"
    [[ -z "$pids" ]] && break
    ((round == 1)) && _say "killing $(wc -w <<<"$pids") pod processes"
    kill -KILL $pids 2>/dev/null || true
    sleep 0.2
  done
  if [[ -n "$shims" ]]; then
    _say "killing $(wc -w <<<"$shims") containerd shims"
    kill -KILL $shims 2>/dev/null || true
  fi
  for d in /sys/fs/cgroup/*/conveyor; do
    [[ -d "$d" ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

stop_cluster_processes() {
  local c strays
  mkdir -p "$PIDS"
  stop_component kubelet 10
  kill_pods
  # State is disposable: no long graceful shutdowns (the API server would
  # otherwise drain watches for ~10s).
  for c in containerd kube-scheduler kube-controller-manager kube-apiserver etcd kwok; do
    stop_component "$c" 3
  done
  strays="$(our_stray_pids | grep -vx "$$" || true)"
  if [[ -n "$strays" ]]; then
    _say "killing leftover cluster processes without pid files: $(echo $strays)"
    kill -KILL $strays 2>/dev/null || true
    sleep 0.2
  fi
  kill_pods  # shims that were started after the first pass
}

unmount_under() {  # unmount everything below the given directories, deepest first
  local dir mp n=0
  for dir in "$@"; do
    [[ -d "$dir" ]] || continue
    dir="$(realpath "$dir")"
    while read -r mp; do
      umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
      n=$((n + 1))
    done < <(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
  done
  ((n == 0)) || _say "unmounted $n mounts"
}

# Rules the bridge (ipMasq), firewall and portmap plugins left for pods of our
# network, plus our kubernetes-Service DNAT chain.
cleanup_iptables() {
  command -v iptables-save >/dev/null || return 0
  local table script
  for table in nat filter; do
    script="$(iptables-save -t "$table" 2>/dev/null | python3 -c '
import ipaddress, re, shlex, sys
net, cidr = sys.argv[1], ipaddress.ip_network(sys.argv[2])
keep = {"CNI-FORWARD", "CNI-ADMIN", "CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"}
dels, chains = [], set()
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line.startswith("-A "):
        continue
    ours = "CONVEYOR-" in line or ("name: \\\"%s\\\"" % net) in line
    for m in re.finditer(r"(?:^| )-[sd] (\S+)", line):
        try:
            ours = ours or ipaddress.ip_network(m.group(1), strict=False).subnet_of(cidr)
        except (TypeError, ValueError):
            pass
    if not ours:
        continue
    dels.append("-D " + line[3:])
    for m in re.finditer(r" -[jg] (CNI-\S+|CONVEYOR-\S+)", line):
        if m.group(1) not in keep:
            chains.add(m.group(1))
    if line.split()[1].startswith(("CNI-DN-", "CONVEYOR-")):
        chains.add(line.split()[1])
        dels.pop()  # the whole chain goes
for c in sorted(chains):
    dels += ["-F " + c, "-X " + c]
print("\n".join(dels))
' "$CNI_NETWORK" "$POD_CIDR")" || continue
    [[ -n "$script" ]] || continue
    printf '*%s\n%s\nCOMMIT\n' "$table" "$script" | iptables-restore --noflush 2>/dev/null \
      || _say "warning: could not remove some $table iptables rules of the old cluster"
  done
}

# Rename, then delete in the background: a containerd root holding a few
# hundred MB of unpacked image layers takes ~10s to delete on this disk.
# Leftovers of an interrupted deletion are picked up by the next call.
dispose_dirs() {
  local d parent trash
  for d in "$@"; do
    [[ -e "$d" ]] || continue
    parent="$(dirname "$d")"
    trash="$parent/.conveyor-trash.$(basename "$d").$$.$RANDOM"
    mv "$d" "$trash"
  done
  for trash in "$(dirname "$STATE")"/.conveyor-trash.* "$STATE"/.conveyor-trash.*; do
    [[ -e "$trash" ]] || continue
    unmount_under "$trash"
    setsid rm -rf --one-file-system "$trash" </dev/null >/dev/null 2>&1 &
  done
}

cleanup_host_state() {
  unmount_under "$KUBELET_DIR" "$CTRD_RUN" "$STATE"
  rm -rf "$STATE/cni/networks" "/var/lib/cni/networks/$CNI_NETWORK" /var/lib/cni/results/"$CNI_NETWORK"-* 2>/dev/null || true
  if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
    _say "removing bridge $CNI_BRIDGE"
    ip link set "$CNI_BRIDGE" down 2>/dev/null || true
    ip link del "$CNI_BRIDGE" 2>/dev/null || true
  fi
  cleanup_iptables
  # the kubelet's symlinks to our pod logs
  find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true
  rm -rf "$CTRD_RUN"
}
