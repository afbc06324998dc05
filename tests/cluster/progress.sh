# Progress for long steps, wherever the output goes (sourced by build-binaries.sh and
# images/operator/build-local.sh). A cold build runs for minutes with nothing to show:
# `long` says every $CONVEYOR_HEARTBEAT_SECONDS (default 60) that the step goes on,
# how long it has run, and which log to follow, through the caller's own `say`
# function, so a terminal, `| tee` and a CI log all see the same lines.
# shellcheck shell=bash

PROGRESS_HEARTBEAT="${CONVEYOR_HEARTBEAT_SECONDS:-60}"

minutes() { printf '%dm%02ds' "$(($1 / 60))" "$(($1 % 60))"; }

# long WHAT LOG CMD...: run CMD; while it runs, `say` every heartbeat that WHAT goes on
# (LOG, if not empty, is named as the file to follow). Returns CMD's status.
long() {
  local what="$1" follow="${2:+; follow: tail -f $2}" since=$SECONDS pid next
  shift 2
  "$@" &
  pid=$!
  next=$((SECONDS + PROGRESS_HEARTBEAT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= next)); then
      say "$what: still running, $(minutes $((SECONDS - since))) so far$follow"
      next=$((next + PROGRESS_HEARTBEAT))
    fi
    sleep 1
  done
  wait "$pid"
}
