#!/usr/bin/env bash
# Import an image into the local cluster's containerd (namespace k8s.io),
# without a registry and without docker.
#
#   import-image.sh --rootfs DIR      --name conveyor.local/app:0.1 [image options]
#   import-image.sh --rootfs-tar FILE --name conveyor.local/app:0.1 [image options]
#   import-image.sh --archive FILE    (an existing `docker save` or OCI archive)
#
# Image options (passed to images/mkimage.py): --entrypoint '["/app"]'
# --cmd '["--flag"]' --env K=V --user 1000:1000 --workdir /app --label K=V
# --expose 8080. Repeat --name for more tags. Use explicit tags, never
# :latest, and imagePullPolicy IfNotPresent or Never in pods.
#
# The archive is kept in $CONVEYOR_CACHE/images/extra/ (default
# /var/cache/conveyor/images/extra), one per repository (the newest tag
# wins), and up.sh re-imports everything there whenever it starts a fresh
# cluster; --no-persist skips that. Delete the file to drop the image from
# later clusters.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

archive="" persist=1 first_name=""
args=()
while (($#)); do
  case "$1" in
    --archive) archive="$2"; shift 2 ;;
    --no-persist) persist=0; shift ;;
    --name) [[ -n "$first_name" ]] || first_name="$2"; args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done

[[ -S "$CTRD_SOCK" ]] || { echo "import-image: containerd socket $CTRD_SOCK not found (run tests/cluster/up.sh)" >&2; exit 1; }

extra="$CACHE/images/extra"
mkdir -p "$extra"
tmp=""
trap '[[ -z "$tmp" ]] || rm -f "$tmp"' EXIT
if [[ -z "$archive" ]]; then
  ((${#args[@]})) || { echo "import-image: need --rootfs/--rootfs-tar and --name, or --archive" >&2; exit 2; }
  [[ -n "$first_name" ]] || { echo "import-image: --name is required" >&2; exit 2; }
  tmp="$(mktemp "$extra/.build-XXXXXX.tar")"
  python3 "$CLUSTER_SCRIPTS/images/mkimage.py" --output "$tmp" "${args[@]}" >/dev/null
  archive="$tmp"
elif ((${#args[@]})); then
  echo "import-image: --archive takes no other options" >&2; exit 2
fi

# ctr prints "unpacking <ref> (sha256:...)...done" per image.
ctr_k8s images import --snapshotter overlayfs "$archive"

if ((persist)); then
  if [[ -n "$first_name" ]]; then
    # One archive per repository: a new tag replaces the previous one.
    keep="$extra/$(tr -c 'A-Za-z0-9._-' '_' <<<"${first_name%:*}" | sed 's/_$//').tar"
  else
    keep="$extra/$(basename "$archive")"
  fi
  if [[ "$archive" == "$tmp" ]]; then
    mv "$tmp" "$keep"; tmp=""
  elif [[ "$(realpath "$archive")" != "$(realpath -m "$keep")" ]]; then
    cp "$archive" "$keep"
  fi
  echo "kept $keep (re-imported by up.sh)"
fi
