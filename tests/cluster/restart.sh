#!/usr/bin/env bash
# Stop, start or restart one component of the local cluster, keeping its state.
#
#   tests/cluster/restart.sh [restart|stop|start] COMPONENT
#   COMPONENT: etcd kube-apiserver kube-controller-manager kube-scheduler kubelet containerd
#
# up.sh treats an unhealthy cluster as disposable (fresh etcd, fresh PKI); this
# does not: it stops the component by its pid file (SIGTERM, then SIGKILL) and
# starts it again exactly as up.sh started it (its own functions, sourced), with
# its data left where it was. For fault injection: `make chaos`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=up.sh
source "$here/up.sh"

action=restart
case "${1:-}" in restart | stop | start) action="$1"; shift ;; esac
component="${1:?usage: restart.sh [restart|stop|start] COMPONENT}"
case "$component" in
  etcd | kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | containerd) ;;
  *) die "unknown component $component" ;;
esac

# Start only the component asked for, even from a function that starts two.
eval "up_start_bg() $(declare -f start_bg | tail -n +2)"
start_bg() { [[ "$1" == "$component" ]] || return 0; up_start_bg "$@"; }

start_one() {
  pid_of "$component" >/dev/null && { log "$component is running already"; return 0; }
  mkdir -p "$PIDS" "$LOGS"
  case "$component" in
    etcd) start_etcd ;;
    kube-apiserver) start_apiserver ;;
    kube-controller-manager | kube-scheduler) start_controllers ;;
    kubelet) start_kubelet ;;
    containerd) start_containerd ;;
  esac
}

case "$action" in
  stop) stop_component "$component" ;;
  start) start_one ;;
  restart) stop_component "$component"; start_one ;;
esac
log "$component: $action done"
