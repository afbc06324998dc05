#!/usr/bin/env bash
# Build the local cluster's binaries from Go modules, cached outside the checkout.
#
# k8s.io/kubernetes and etcd cannot be `go install`ed (their go.mod files carry
# `replace` directives), so each is built from a small wrapper module that
# pins the staging modules itself. One wrapper per tool keeps minimal version
# selection from mixing their dependencies. The result lands in
# $CONVEYOR_CACHE/bin/<component>-<version>/, and a finished build leaves a
# `.complete` stamp, so only a fresh machine (or a new version) pays for it.
#
#   build-binaries.sh [all | COMPONENT...]    components: etcd helm kubernetes kwok kueue (not in all)
#
# A cold build is long, so it says what it does wherever its output goes: a
# `[build <elapsed>] (n/m) ...` line per component and per step, and a
# heartbeat every $CONVEYOR_HEARTBEAT_SECONDS (60) while a step runs
# (progress.sh), naming the log to follow ($CONVEYOR_BUILD_LOG, which up.sh
# sets; go's own output goes there).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
CACHE="${CONVEYOR_CACHE:-/var/cache/conveyor}"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
started=$SECONDS
PART=""  # "(n/m) " of the component being built
# shellcheck source=progress.sh
source "$here/progress.sh"

step() { printf '[build %4ds] %s%s\n' "$((SECONDS - started))" "$PART" "$*"; }
say() { step "$@"; }
long_step() { local what="$1"; shift; long "$what" "${CONVEYOR_BUILD_LOG:-}" "$@"; }

K8S_STAGING=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
  cloud-provider cluster-bootstrap code-generator component-base component-helpers
  controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
  endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
  kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
  sample-apiserver sample-cli-plugin sample-controller)
K8S_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

build_kubernetes() {
  local out="$CACHE/bin/kubernetes-$K8S_VERSION" work="$CACHE/src/kubernetes-$K8S_VERSION"
  [[ -f "$out/.complete" ]] && { step "kubernetes $K8S_VERSION: cached in $out"; return; }
  step "kubernetes $K8S_VERSION: preparing wrapper module in $work"
  mkdir -p "$work" "$out"
  cd "$work"
  if [[ ! -f go.mod ]]; then
    go mod init conveyor.local/cluster/kubernetes >/dev/null 2>&1
    go mod edit -godebug=default=go1.24
    for m in "${K8S_STAGING[@]}"; do
      go mod edit -replace="k8s.io/$m=k8s.io/$m@$K8S_STAGING_VERSION"
    done
  fi
  step "kubernetes $K8S_VERSION: downloading modules (about 1-2 GB on a fresh machine)"
  local tools=()
  for c in "${K8S_COMMANDS[@]}"; do tools+=("k8s.io/kubernetes/cmd/$c@$K8S_VERSION"); done
  long_step "kubernetes: downloading modules" go get -tool "${tools[@]}"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local date; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  # All five static (CGO_ENABLED=0), the kubelet too, as upstream builds it from 1.36 on
  # (kubernetes#135870): one set of compiled packages serves every binary, where a cgo
  # kubelet recompiled most of them.
  local n=0 total=${#K8S_COMMANDS[@]}
  for c in "${K8S_COMMANDS[@]}"; do
    n=$((n + 1))
    [[ -x "$out/$c" ]] && { step "kubernetes: $c ($n/$total) already built"; continue; }
    step "kubernetes: building $c ($n/$total; the first takes longest, the rest reuse its packages)"
    long_step "kubernetes: building $c ($n/$total)" env CGO_ENABLED=0 go build -trimpath \
      -tags=selinux,notest -ldflags "$ldflags" -o "$out/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$out/$c.tmp" "$out/$c"
  done
  touch "$out/.complete"
}

build_etcd() {
  local out="$CACHE/bin/etcd-$ETCD_VERSION" work="$CACHE/src/etcd-$ETCD_VERSION"
  [[ -f "$out/.complete" ]] && { step "etcd $ETCD_VERSION: cached"; return; }
  step "etcd $ETCD_VERSION: building"
  mkdir -p "$work" "$out"; cd "$work"
  [[ -f go.mod ]] || go mod init conveyor.local/cluster/etcd >/dev/null 2>&1
  long_step "etcd: downloading modules" go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  long_step "etcd: compiling" env CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
    -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$out/etcd.tmp" "$out/etcd"
  touch "$out/.complete"
}

build_helm() {
  local out="$CACHE/bin/helm-$HELM_VERSION"
  [[ -f "$out/.complete" ]] && { step "helm $HELM_VERSION: cached"; return; }
  step "helm $HELM_VERSION: building"
  mkdir -p "$out"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  long_step "helm: downloading and compiling" env GOBIN="$out" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  touch "$out/.complete"
}

build_kwok() {
  local out="$CACHE/bin/kwok-$KWOK_VERSION"
  [[ -f "$out/.complete" ]] && { step "kwok $KWOK_VERSION: cached"; return; }
  step "kwok $KWOK_VERSION: building"
  mkdir -p "$out"
  long_step "kwok: downloading and compiling" env GOBIN="$out" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w \
    -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  touch "$out/.complete"
}

# Kueue's manager, for the benchmark's `kueue` phase only (bench/kueue.py asks for
# it; `all`, and so up.sh, make test and make demo, never build it). It has no
# replace directives, so `go install` builds it from the module as published.
build_kueue() {
  local out="$CACHE/bin/kueue-$KUEUE_VERSION"
  [[ -f "$out/.complete" ]] && { step "kueue $KUEUE_VERSION: cached"; return; }
  step "kueue $KUEUE_VERSION: building (about 7 min on 2 cores)"
  mkdir -p "$out"
  GOBIN="$out" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w \
    -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION" "sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION"
  # its CRDs (no conversion webhook: one version is used) and the manager's
  # configuration as the module ships them
  local src
  src="$(go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  mkdir -p "$out/crds"
  cp "$src"/config/components/crd/bases/*.yaml "$out/crds/"
  cp "$src"/config/components/manager/controller_manager_config.yaml "$out/"
  chmod u+w "$out"/crds/*.yaml "$out/controller_manager_config.yaml"
  touch "$out/.complete"
}

(($#)) || set -- all
[[ "$*" == all ]] && set -- etcd helm kubernetes kwok
for what in "$@"; do
  case "$what" in
    etcd|helm|kubernetes|kwok|kueue) ;;
    *) echo "usage: $0 [all | etcd helm kubernetes kwok kueue ...]" >&2; exit 2 ;;
  esac
done
i=0
for what in "$@"; do
  i=$((i + 1))
  PART="($i/$#) "
  (build_"$what")  # a subshell: each builder cds into its own wrapper module
done
PART=""
step "done: $* in $(minutes $((SECONDS - started)))"
