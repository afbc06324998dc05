#!/usr/bin/env bash
# `make demo`: Conveyor on a real local cluster, from nothing to jobs running.
#
#   1. bring up (or reuse) the local single-node cluster (tests/cluster/up.sh)
#   2. build the operator image without docker and import it (images/operator/build-local.sh)
#   3. install the chart (helm upgrade --install: idempotent) into conveyor-system,
#      watching the namespace conveyor-demo only
#   4. apply a queue and some examples into conveyor-demo (deleting the previous
#      run's jobs first), and show them progressing, waiting on their conditions
#   5. print what to try next, with the lines to paste for kubectl and helm
#
# Running it again is safe: the cluster, the image and the release are reused,
# the demo's jobs are deleted and applied anew.
#
# Environment: CONVEYOR_DEMO_NAMESPACE (default conveyor-demo),
# CONVEYOR_RELEASE_NAMESPACE (default conveyor-system).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STATE="${CONVEYOR_CLUSTER_DIR:-/var/lib/conveyor-cluster}"
DEMO_NS="${CONVEYOR_DEMO_NAMESPACE:-conveyor-demo}"
RELEASE_NS="${CONVEYOR_RELEASE_NAMESPACE:-conveyor-system}"
RELEASE=conveyor

t0=$SECONDS
step() { printf '\n\033[1m[demo %3ds] %s\033[0m\n' "$((SECONDS - t0))" "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }   # print a command as the user would type it, then run it
die() { printf '[demo] ERROR: %s\n' "$*" >&2; exit 1; }

step "1/5 the local cluster (tests/cluster/up.sh; a fresh machine builds Kubernetes first, once, with its progress below)"
# --line-buffered: without it grep holds its output in 4 KiB blocks whenever stdout is a
# pipe or a file (`make demo | tee`, CI), and the build's progress shows only at the end.
bash tests/cluster/up.sh 2>&1 | grep --line-buffered -v '^export \|^# Cluster is up\|^$' \
  || die "tests/cluster/up.sh failed"
export KUBECONFIG="$STATE/kubeconfig"
export PATH="$STATE/bin:$PATH"

step "2/5 the operator image (images/operator/build-local.sh: debootstrap + wheels, no docker, no registry)"
IMAGE="$(bash images/operator/build-local.sh)" || die "building the image failed"  # progress on stderr
TAG="${IMAGE##*:}"
echo "image: $IMAGE"

step "3/5 the chart: helm upgrade --install $RELEASE charts/conveyor -n $RELEASE_NS (waits until the operator is ready, up to 3 min)"
kubectl create namespace "$DEMO_NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# Helm installs crds/ only when they are missing and never upgrades them (see
# charts/conveyor/README.md): apply them first, as an upgrade should.
show kubectl apply --server-side --force-conflicts -f charts/conveyor/crds/
show helm upgrade --install "$RELEASE" charts/conveyor -n "$RELEASE_NS" --create-namespace \
  --set image.repository="${IMAGE%:*}" --set image.tag="$TAG" --set "watchNamespaces={$DEMO_NS}" \
  --wait --timeout 3m >/dev/null
show kubectl -n "$RELEASE_NS" get deployment,pods -l app.kubernetes.io/instance="$RELEASE"

step "4/5 jobs: a queue with retries, dependencies, a chunked export, a dead letter, a schedule"
# a fresh start: the previous run's jobs (and, through ownership, their pods) go
kubectl -n "$DEMO_NS" delete bgj,jq --all --wait=true --timeout=60s >/dev/null 2>&1
kubectl -n "$DEMO_NS" wait --for=delete pod -l conveyor.dev/job --timeout=60s >/dev/null 2>&1 || true
show kubectl -n "$DEMO_NS" apply \
  -f examples/confirmation-email.yaml -f examples/order-fulfilment.yaml \
  -f examples/chunked-export.yaml -f examples/dead-letter.yaml \
  -f examples/rate-limited-api.yaml -f examples/nightly-report.yaml
echo
show kubectl -n "$DEMO_NS" get jq,bgj

echo
echo "# charge-payment and reserve-inventory run at once; ship-order waits for both:"
show kubectl -n "$DEMO_NS" wait --for=condition=Succeeded bgj/ship-order-1001 --timeout=3m
echo "# send-confirmation-1001 fails twice (SMTP refused), backs off 1s, 2s, succeeds:"
show kubectl -n "$DEMO_NS" wait --for=condition=Succeeded bgj/send-confirmation-1001 --timeout=3m
show kubectl -n "$DEMO_NS" get jq,bgj

echo
echo "# sync-legacy-crm-1001 fails all 3 attempts: the dead letter"
show kubectl -n "$DEMO_NS" wait --for=condition=Failed bgj/sync-legacy-crm-1001 --timeout=3m
echo "# the export enqueues one job per page until a page is empty (pages 0..3):"
for page in 0 1 2; do
  kubectl -n "$DEMO_NS" wait --for=create bgj/export-orders-page-$page --timeout=2m >/dev/null
  kubectl -n "$DEMO_NS" wait --for=condition=Succeeded bgj/export-orders-page-$page --timeout=2m >/dev/null
done
show kubectl -n "$DEMO_NS" wait --for=create bgj/export-orders-page-3 --timeout=2m
show kubectl -n "$DEMO_NS" wait --for=condition=Succeeded bgj -l app=export-orders --timeout=3m
show kubectl -n "$DEMO_NS" wait --for=condition=Succeeded bgj -l app=partner-sync --timeout=3m
echo
show kubectl -n "$DEMO_NS" get jq,bgj -o wide
echo
echo "# why it failed: attempts, exit codes, the log tail, events"
echo "$ kubectl -n $DEMO_NS describe bgj sync-legacy-crm-1001"
kubectl -n "$DEMO_NS" describe bgj sync-legacy-crm-1001 | sed -n '/^  Last Failure:/,/^  Observed/p;/^Events:/,$p' \
  | grep -v '^  Observed'


step "5/5 done in $((SECONDS - t0))s. Try it yourself:"
cat <<EOF

# Paste into your shell (or: source tests/cluster/env.sh):
export KUBECONFIG=$KUBECONFIG
export PATH=$STATE/bin:\$PATH

kubectl -n $DEMO_NS get jq,bgj -w                      # watch queues and jobs
kubectl -n $DEMO_NS describe bgj send-confirmation-1001  # retries, backoff, events
kubectl -n $DEMO_NS get bgj --field-selector status.phase=Failed   # the dead letter
kubectl -n $DEMO_NS annotate bgj sync-legacy-crm-1001 conveyor.dev/replay="\$(date +%s)" --overwrite
export PATH=\$PWD/.venv/bin:\$PATH                       # kubectl conveyor (the plugin)
kubectl conveyor queues -n $DEMO_NS                    # counts, rate, oldest wait per queue
kubectl conveyor retry --failed -q "" -n $DEMO_NS      # every dead letter (of no queue), again
kubectl conveyor dashboard -n $DEMO_NS --allow-actions # the web dashboard, as you: localhost:8099
kubectl -n $DEMO_NS apply -f examples/priorities.yaml  # then unpause: see its comments
kubectl -n $DEMO_NS apply -f examples/invoice-deadline.yaml
kubectl explain bgj.spec.retry                         # every field, documented
kubectl -n $RELEASE_NS logs deploy/$RELEASE            # the operator
kubectl get --raw /api/v1/namespaces/$RELEASE_NS/services/$RELEASE-metrics:metrics/proxy/metrics | grep ^conveyor_

helm -n $RELEASE_NS test $RELEASE                      # the chart's own check
helm -n $RELEASE_NS upgrade $RELEASE charts/conveyor --reuse-values \\
  --set 'watchNamespaces={$DEMO_NS,another-namespace}' # watch more namespaces (they must exist)
helm -n $RELEASE_NS uninstall $RELEASE                 # remove the operator (CRDs and jobs stay)
make cluster-down                                      # stop the local cluster

Examples: examples/README.md. The chart: charts/conveyor/README.md.
EOF
