#!/usr/bin/env bash
# Build the operator image on this machine, without docker and without a
# registry, and import it into the local cluster's containerd.
#
#   bash images/operator/build-local.sh              build (if needed) and import; prints the ref
#   bash images/operator/build-local.sh --print-ref  only print the ref this tree builds
#   bash images/operator/build-local.sh --no-import  build the archive only
#
# It makes the same image as images/operator/Dockerfile: Debian bookworm with
# Debian's Python 3.11, a virtual environment at /opt/conveyor holding the
# project's wheel and its dependencies (no pip, no compiler), entrypoint
# /opt/conveyor/bin/conveyor, running as uid 10001.
#
#   1. base rootfs: `debootstrap --variant=minbase` with python3, python3-venv
#      and tzdata, cached in $CONVEYOR_CACHE/rootfs/bookworm-python-<hash>
#      (keyed by the package list), so it is built once per machine;
#   2. wheels, on the host for Python 3.11: the dependencies exactly as locked in
#      requirements/operator.txt (pinned, hash-checked), cached in
#      $CONVEYOR_CACHE/wheels/deps-<hash of the lock>,
#      the project's wheel from a copy of the sources (nothing is written into
#      the checkout);
#   3. a copy of the base rootfs, the venv created and filled inside it by
#      chroot from those wheels only (--no-index);
#   4. imported as conveyor.local/conveyor-operator:<version>-<content hash>
#      via tests/cluster/import-image.sh (never :latest).
#
# The content hash covers the operator's sources, pyproject.toml, the lock, this script
# and the base rootfs key: an unchanged tree whose image is already imported
# costs a second. Progress goes to stderr, the image ref alone to stdout:
#   IMAGE="$(bash images/operator/build-local.sh)"
#
# Environment: CONVEYOR_CACHE (default /var/cache/conveyor),
# CONVEYOR_DEBIAN_MIRROR (default: deb.debian.org), PYTHON (a Python 3.11
# with pip for building wheels; default .venv/bin/python, else python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SELF="$ROOT/images/operator/build-local.sh"
CACHE="${CONVEYOR_CACHE:-/var/cache/conveyor}"
MIRROR="${CONVEYOR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
PACKAGES=(python3 python3-venv tzdata)
REPO=conveyor.local/conveyor-operator
# The name the release workflow publishes (.github/workflows/release.yml) and the chart
# and examples name; tagged here too, so that they run unchanged on the local cluster.
PUBLIC_REPO=ghcr.io/conveyor-dev/conveyor-operator
APP_UID=10001

mode=import
case "${1:-}" in
  "") ;;
  --print-ref) mode=print ;;
  --no-import) mode=archive ;;
  -h|--help) sed -n '2,35p' "$SELF"; exit 0 ;;
  *) echo "usage: $0 [--print-ref|--no-import]" >&2; exit 2 ;;
esac

t0=$SECONDS
log() { printf '[image %3ds] %s\n' "$((SECONDS - t0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
say() { log "$@"; }
into_log() { local file="$1"; shift; "$@" >"$file" 2>&1; }
# shellcheck source=../../tests/cluster/progress.sh
source "$ROOT/tests/cluster/progress.sh"  # long: a heartbeat while a slow step runs

# Temporary dirs, removed on exit whatever happens.
CLEAN=()
cleanup() { local d; for d in "${CLEAN[@]}"; do rm -rf --one-file-system "$d"; done; }
trap cleanup EXIT

# ---------------------------------------------------------------- identity
# A snapshot of the sources that make the wheel: the tree may change while we
# build (others edit it), and the tag must name what the image contains.
SRC="$(mktemp -d /tmp/conveyor-image-src.XXXXXX)"; CLEAN+=("$SRC")
(cd "$ROOT" && { find operator/conveyor -type f \( -name '*.py' -o -name py.typed \
    -o -path '*/dashboard/static/*' \) -not -path '*/__pycache__/*'; echo pyproject.toml;
    echo README.md; echo requirements/operator.txt; } | LC_ALL=C sort \
  | tar -cf - -T -) | tar -C "$SRC" -xf -
version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$SRC/pyproject.toml" | head -1)"
[[ -n "$version" ]] || die "no version in pyproject.toml"

rootfs_key="$(printf '%s\n' "$SUITE" "minbase" "${PACKAGES[@]}" "rootfs-recipe-2" | sha256sum | cut -c1-12)"
BASE="$CACHE/rootfs/$SUITE-python-$rootfs_key"

# The dependencies exactly as locked, with their hashes (requirements/README.md).
LOCK="$SRC/requirements/operator.txt"
deps_key="$(sha256sum "$LOCK" | cut -c1-12)"

content_hash() {
  {
    echo "$rootfs_key $deps_key"
    sha256sum "$SELF" | cut -d' ' -f1
    (cd "$SRC" && find . -type f | LC_ALL=C sort | xargs -d '\n' sha256sum)
  } | sha256sum | cut -c1-12
}
TAG="$version-$(content_hash)"
REF="$REPO:$TAG"
# Also tagged with the bare version, under the local name and the public one (which
# the chart's default image and the examples name); the content-hash tag is what the
# demo and the e2e tests install, so that a changed tree rolls the operator pod.
VERSION_REF="$REPO:$version"
PUBLIC_REF="$PUBLIC_REPO:$version"
if [[ "$mode" == print ]]; then echo "$REF"; exit 0; fi

[[ "$(id -u)" == 0 ]] || die "must run as root (debootstrap and chroot)"
mkdir -p "$CACHE/rootfs" "$CACHE/wheels" "$CACHE/images/extra"
# One build at a time per machine (the demo and the e2e fixture may race).
exec 9>"$CACHE/.operator-image.lock"
flock 9

CTRD_SOCK="${CONVEYOR_CONTAINERD_RUN:-/run/conveyor-containerd}/containerd.sock"
# One archive per repository in the directory up.sh re-imports on a fresh
# cluster (import-image.sh's convention); its tag is in the .ref beside it.
ARCHIVE="$CACHE/images/extra/${REPO//\//_}.tar"
ctr_k8s() { ctr --address "$CTRD_SOCK" --namespace k8s.io "$@"; }
image_imported() { [[ -S "$CTRD_SOCK" ]] && ctr_k8s images ls -q 2>/dev/null | grep -qxF "$REF"; }

log "image $REF"
if [[ "$mode" == import ]] && image_imported; then
  log "already imported into the cluster's containerd: nothing to do"
  ctr_k8s images tag --force "$REF" "$VERSION_REF" >/dev/null
  ctr_k8s images tag --force "$REF" "$PUBLIC_REF" >/dev/null
  echo "$REF"; exit 0
fi
if [[ -f "$ARCHIVE" && "$(cat "$ARCHIVE.ref" 2>/dev/null)" == "$REF" ]]; then
  log "archive cached: $ARCHIVE"
else
  # ------------------------------------------------------------ 1. base rootfs
  if [[ -f "$BASE/.complete" ]]; then
    log "base rootfs cached: $BASE"
  else
    command -v debootstrap >/dev/null || {
      log "installing debootstrap"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -q >/tmp/conveyor-image-apt.log 2>&1 || die "apt-get update failed (/tmp/conveyor-image-apt.log)"
      apt-get install -y -q --no-install-recommends debootstrap >>/tmp/conveyor-image-apt.log 2>&1 \
        || die "apt-get install debootstrap failed (/tmp/conveyor-image-apt.log)"
    }
    log "building the base rootfs: debootstrap --variant=minbase $SUITE + ${PACKAGES[*]} (a few minutes, once per machine)"
    tmp="$(mktemp -d "$CACHE/rootfs/.build-XXXXXX")"; CLEAN+=("$tmp")
    dblog="$CACHE/rootfs/debootstrap.log"
    long "debootstrap" "$dblog" into_log "$dblog" debootstrap --variant=minbase \
      --include="$(IFS=,; echo "${PACKAGES[*]}")" "$SUITE" "$tmp" "$MIRROR" \
      || { tail -20 "$dblog" >&2; die "debootstrap failed (log: $dblog)"; }
    # what a slim image leaves out: package caches, docs, man pages
    rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/* \
      "$tmp"/usr/share/man/* "$tmp"/usr/share/info/* "$tmp"/var/log/*.log "$tmp"/var/cache/debconf/*-old
    find "$tmp/usr/share/doc" -type f ! -name copyright -delete 2>/dev/null || true
    : >"$tmp/etc/resolv.conf"
    touch "$tmp/.complete"
    rm -rf "$BASE"; mv "$tmp" "$BASE"
    log "base rootfs ready: $BASE ($(du -sh "$BASE" | cut -f1))"
  fi
  py_target="$(chroot "$BASE" /usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

  # ------------------------------------------------------------ 2. wheels
  PY="${PYTHON:-}"
  if [[ -z "$PY" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
  fi
  py_host="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  [[ "$py_host" == "$py_target" ]] \
    || die "building wheels needs Python $py_target on the host ($PY is $py_host); set PYTHON="
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_FIND_LINKS=
  DEPS="$CACHE/wheels/deps-$deps_key"
  if [[ -f "$DEPS/.complete" ]]; then
    log "dependency wheels cached: $DEPS"
  else
    log "downloading the locked dependency wheels for Python $py_target (requirements/operator.txt)"
    rm -rf "$DEPS.tmp"; mkdir -p "$DEPS.tmp"
    long "pip wheel" "" "$PY" -m pip wheel --quiet --require-hashes --no-deps --wheel-dir "$DEPS.tmp" \
      -r "$LOCK" >&2 || die "pip wheel of the locked dependencies failed"
    touch "$DEPS.tmp/.complete"; rm -rf "$DEPS"; mv "$DEPS.tmp" "$DEPS"
    log "dependency wheels: $(find "$DEPS" -name '*.whl' | wc -l) in $DEPS"
  fi
  work="$(mktemp -d "$CACHE/rootfs/.image-XXXXXX")"; CLEAN+=("$work")
  log "building the project's wheel (with the locked setuptools of requirements/build.txt)"
  mkdir -p "$work/wheels"
  "$PY" -c 'import setuptools, wheel' 2>/dev/null \
    || die "$PY has no setuptools/wheel: make venv (or pip install --require-hashes -r requirements/build.txt)"
  "$PY" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$work/wheels" "$SRC" >&2 \
    || die "pip wheel of the project failed"
  wheel="$(basename "$(ls "$work"/wheels/*.whl)")"
  log "built $wheel"

  # ------------------------------------------------------------ 3. the image's rootfs
  log "copying the base rootfs"
  root="$work/rootfs"
  cp -a "$BASE" "$root"
  rm -f "$root/.complete"
  mkdir -p "$root/tmp/wheels"
  cp "$DEPS"/*.whl "$work"/wheels/*.whl "$LOCK" "$root/tmp/wheels/"
  log "creating /opt/conveyor and installing the locked dependencies and $wheel (no index)"
  in_root() {
    chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
      PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore "$@"
  }
  in_root /usr/bin/python3 -m venv /opt/conveyor
  in_root /opt/conveyor/bin/pip install --quiet --no-index --find-links /tmp/wheels \
    --require-hashes -r /tmp/wheels/operator.txt >&2 || die "installing the locked dependencies failed"
  in_root /opt/conveyor/bin/pip install --quiet --no-index --no-deps "/tmp/wheels/$wheel" >&2 \
    || die "installing $wheel failed"
  in_root /opt/conveyor/bin/pip check >&2 || die "the installed dependencies do not fit together"
  in_root /opt/conveyor/bin/pip uninstall --quiet --yes pip >&2
  in_root /opt/conveyor/bin/python -c 'import conveyor.__main__, kopf, kubernetes' \
    || die "the installed operator does not import"
  in_root /opt/conveyor/bin/conveyor --help >/dev/null || die "conveyor --help failed"
  rm -rf "$root/tmp/wheels" "$root/root/.cache"
  echo "conveyor:x:$APP_UID:$APP_UID:conveyor:/nonexistent:/usr/sbin/nologin" >>"$root/etc/passwd"
  echo "conveyor:x:$APP_UID:" >>"$root/etc/group"
  # the runtime mounts these; the image carries them empty
  rm -rf "${root:?}"/dev/* "${root:?}"/proc/* "${root:?}"/sys/* "${root:?}"/run/*
  chmod 1777 "$root/tmp"
  log "image rootfs: $(du -sh "$root" | cut -f1)"

  # ------------------------------------------------------------ archive
  log "writing the image archive"
  python3 "$ROOT/tests/cluster/images/mkimage.py" --rootfs "$root" --name "$REF" --name "$VERSION_REF" --name "$PUBLIC_REF" \
    --entrypoint '["/opt/conveyor/bin/conveyor"]' --user "$APP_UID:$APP_UID" --workdir / \
    --env PATH=/opt/conveyor/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env PYTHONUNBUFFERED=1 --env PYTHONDONTWRITEBYTECODE=1 --env LANG=C.UTF-8 \
    --label "org.opencontainers.image.title=conveyor-operator" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.source=images/operator/build-local.sh" \
    --expose 8080 --expose 9090 --output "$ARCHIVE.tmp" >/dev/null
  rm -f "$ARCHIVE.ref"; mv "$ARCHIVE.tmp" "$ARCHIVE"; echo "$REF" >"$ARCHIVE.ref"
  rm -rf --one-file-system "$work"
  log "archive: $ARCHIVE ($(du -sh "$ARCHIVE" | cut -f1))"
fi

if [[ "$mode" == import ]]; then
  [[ -S "$CTRD_SOCK" ]] || die "the local cluster's containerd is not running (bash tests/cluster/up.sh)"
  log "importing into the cluster's containerd"
  bash "$ROOT/tests/cluster/import-image.sh" --archive "$ARCHIVE" >/dev/null
  log "tagged $REF, $VERSION_REF and $PUBLIC_REF"
  # Keep the tags of the last three builds (a running pod may name one: a
  # restarted container needs its tag); drop older ones of ours.
  history="$CACHE/images/conveyor-operator.built"
  { grep -vxF "$REF" "$history" 2>/dev/null || true; echo "$REF"; } >"$history.tmp"
  mv "$history.tmp" "$history"
  head -n -3 "$history" | while read -r stale; do
    if ctr_k8s images ls -q 2>/dev/null | grep -qxF "$stale"; then
      log "removing old tag $stale"; ctr_k8s images rm "$stale" >/dev/null || true
    fi
  done
  tail -n 3 "$history" >"$history.tmp" && mv "$history.tmp" "$history"
fi
log "done: $REF"
echo "$REF"
