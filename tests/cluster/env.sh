# Point this shell at the local cluster:   source tests/cluster/env.sh
# shellcheck shell=bash
# Run as a program, it prints the export lines instead:   bash tests/cluster/env.sh
_conveyor_state="${CONVEYOR_CLUSTER_DIR:-/var/lib/conveyor-cluster}"
if [[ -n "${ZSH_EVAL_CONTEXT:-}" && "$ZSH_EVAL_CONTEXT" == *:file* ]] || [[ -n "${BASH_VERSION:-}" && "${BASH_SOURCE[0]}" != "$0" ]]; then
  export KUBECONFIG="$_conveyor_state/kubeconfig"
  case ":$PATH:" in *":$_conveyor_state/bin:"*) ;; *) export PATH="$_conveyor_state/bin:$PATH" ;; esac
  [[ -f "$KUBECONFIG" ]] || echo "env.sh: $KUBECONFIG does not exist yet; run tests/cluster/up.sh (make cluster)" >&2
else
  echo "export KUBECONFIG=$_conveyor_state/kubeconfig"
  echo "export PATH=$_conveyor_state/bin:\$PATH"
fi
unset _conveyor_state
