#!/usr/bin/env bash
# Restart only the local cluster's kube-controller-manager with other flags,
# for the tuned batch/v1 Job baseline of the benchmark (bench/README.md).
#
#   bench/kcm.sh show                       the flags it runs with now
#   bench/kcm.sh set --kube-api-qps=1000 --kube-api-burst=2000 --concurrent-job-syncs=50
#                                           restart it with these flags (replacing
#                                           flags of the same name, keeping the rest)
#   bench/kcm.sh reset                      restart it with the flags up.sh gave it
#
# It works from the cluster's own pid file ($STATE/pids/kube-controller-manager.pid,
# written by tests/cluster/up.sh) and writes the new pid back there, so up.sh
# and down.sh keep finding it. The first `set` saves the command line up.sh
# started, keyed by the running API server (a restarted cluster makes that copy
# stale, and up.sh's own flags are in force again). Flags are --name=value only.
# The controller-manager is down for a second or two; other users of the
# cluster see no more than that.
set -euo pipefail
STATE="${CONVEYOR_CLUSTER_DIR:-/var/lib/conveyor-cluster}"
PIDS="$STATE/pids"
LOGS="$STATE/logs"
SAVE_DIR="${CONVEYOR_BENCH_STATE:-/tmp/conveyor-bench}"
SAVED="$SAVE_DIR/kcm-original.cmdline"
KCM=kube-controller-manager

say() { echo "[kcm] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

pid_of() {  # the pid in the component's pid file, if that process is the component's binary
  local f="$PIDS/$1.pid" pid exe
  [[ -f "$f" ]] || return 1
  pid="$(cat "$f" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  [[ "$(basename "${exe% (deleted)}")" == "$1" ]] || return 1
  echo "$pid"
}

instance() {  # identifies the running cluster: the API server's pid and start time
  local pid
  pid="$(pid_of kube-apiserver)" || die "kube-apiserver is not running (bash tests/cluster/up.sh)"
  echo "$pid:$(awk '{print $22}' "/proc/$pid/stat")"
}

read_cmdline() {  # read_cmdline PID -> the global array CMD
  mapfile -d '' -t CMD <"/proc/$1/cmdline"
}

healthy() {
  curl -fsSk --max-time 2 https://127.0.0.1:10257/healthz >/dev/null 2>&1
}

restart_with() {  # restart_with ARGV...
  local pid i
  pid="$(pid_of "$KCM")" || die "$KCM is not running (no live pid in $PIDS/$KCM.pid)"
  say "stopping $KCM (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    [[ -d "/proc/$pid" ]] || break
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && break
    sleep 0.1
  done
  [[ -d "/proc/$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
  say "starting $KCM ${*:2}"
  echo "[kcm.sh $(date -u +%FT%TZ)] restarting with: $*" >>"$LOGS/$KCM.log"
  setsid "$@" </dev/null >>"$LOGS/$KCM.log" 2>&1 &
  echo $! >"$PIDS/$KCM.pid"
  for ((i = 0; i < 600; i++)); do
    healthy && { say "$KCM healthy (pid $(cat "$PIDS/$KCM.pid"))"; return 0; }
    pid_of "$KCM" >/dev/null || { tail -n 20 "$LOGS/$KCM.log" >&2; die "$KCM exited"; }
    sleep 0.1
  done
  die "$KCM not healthy after 60s (log: $LOGS/$KCM.log)"
}

flag_name() { local f="$1"; echo "${f%%=*}"; }

cmd_show() {
  local pid
  pid="$(pid_of "$KCM")" || die "$KCM is not running"
  read_cmdline "$pid"
  printf '%s\n' "${CMD[@]:1}"
}

cmd_set() {
  (($#)) || die "usage: $0 set --flag=value..."
  local f pid inst names=() out=()
  for f in "$@"; do
    [[ "$f" == --*=* ]] || die "flags must be --name=value: $f"
    names+=("$(flag_name "$f")")
  done
  pid="$(pid_of "$KCM")" || die "$KCM is not running"
  inst="$(instance)"
  mkdir -p "$SAVE_DIR"
  if [[ ! -f "$SAVED" || "$(head -n1 "$SAVED")" != "$inst" ]]; then
    read_cmdline "$pid"
    { echo "$inst"; printf '%s\0' "${CMD[@]}"; } >"$SAVED"
  fi
  mapfile -d '' -t CMD < <(tail -n +2 "$SAVED")
  for f in "${CMD[@]}"; do
    local keep=1 n
    for n in "${names[@]}"; do [[ "$(flag_name "$f")" == "$n" ]] && keep=0; done
    ((keep)) && out+=("$f")
  done
  restart_with "${out[@]}" "$@"
}

cmd_reset() {
  local pid inst
  pid="$(pid_of "$KCM")" || die "$KCM is not running"
  inst="$(instance)"
  if [[ ! -f "$SAVED" || "$(head -n1 "$SAVED")" != "$inst" ]]; then
    say "$KCM runs with the flags up.sh gave it; nothing to do"
    rm -f "$SAVED"
    return 0
  fi
  mapfile -d '' -t CMD < <(tail -n +2 "$SAVED")
  local -a now
  mapfile -d '' -t now <"/proc/$pid/cmdline"
  if [[ "${now[*]}" == "${CMD[*]}" ]]; then
    say "$KCM already runs with the flags up.sh gave it"
  else
    restart_with "${CMD[@]}"
  fi
  rm -f "$SAVED"
}

[[ "$(id -u)" == 0 ]] || die "must run as root (the cluster's processes are root's)"
case "${1:-}" in
  show) cmd_show ;;
  set) shift; cmd_set "$@" ;;
  reset) cmd_reset ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
