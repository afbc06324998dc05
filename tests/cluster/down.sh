#!/usr/bin/env bash
# Stop the local cluster started by up.sh and remove its state (not the
# binary/image cache). Stops by pid file: kubelet, pods and containerd shims,
# containerd, scheduler, controller-manager, apiserver, etcd; then unmounts,
# drops CNI reservations, the pod bridge and our iptables rules, and deletes
# the state dir. Safe to run more than once.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
t0=$SECONDS
log() { printf '[cluster %3ds] %s\n' "$((SECONDS - t0))" "$*"; }
[[ "$(id -u)" == 0 ]] || { log "ERROR: must run as root" >&2; exit 1; }

if [[ ! -d "$STATE" && ! -d "$CTRD_RUN" ]] && [[ -z "$(our_stray_pids)" ]]; then
  dispose_dirs  # finish an interrupted background deletion, if any
  log "no cluster state in $STATE: nothing to do"
  exit 0
fi
stop_cluster_processes
cleanup_host_state
unmount_under "$STATE"
dispose_dirs "$STATE"
log "cluster stopped; removed $STATE (large leftovers are deleted in the background)"
