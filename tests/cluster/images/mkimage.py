#!/usr/bin/env python3
"""Write a single-layer container image as a `docker save`-style archive.

No registry, no docker: the layer is the root filesystem (a directory or a
tarball), the config and manifest are written by hand. The result can be
loaded with `ctr -n k8s.io images import` (see import-image.sh) or with
`docker load`.

    mkimage.py --rootfs DIR|--rootfs-tar FILE --name REPO:TAG --output OUT.tar
               [--entrypoint JSON] [--cmd JSON] [--env K=V ...] [--user U]
               [--workdir DIR] [--label K=V ...] [--expose 8080/tcp ...]

--entrypoint and --cmd take a JSON list (`'["/bin/sh","-c"]'`); a plain
string is treated as a one-element list.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path


def _argv_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    value = value.strip()
    if value.startswith("["):
        parsed = json.loads(value)
        if not all(isinstance(x, str) for x in parsed):
            raise SystemExit(f"not a list of strings: {value}")
        return parsed
    return [value]


def _pairs(items: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        if "=" not in item:
            raise SystemExit(f"{what} must be KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out.append((k, v))
    return out


def _tar_directory(rootfs: Path, out) -> None:
    """Write rootfs as an uncompressed tar with relative paths.

    Ownership, modes, symlinks and hard links are kept as they are on disk
    (build the rootfs as root). Entries are sorted so equal trees give equal
    layers apart from mtimes.
    """
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        # os.walk lists symlinks to directories in dirnames without descending
        # into them, so adding every listed name non-recursively covers
        # directories, files, symlinks and device nodes alike.
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = Path(dirpath) / name
                tar.add(full, arcname=str(full.relative_to(rootfs)), recursive=False)


def _open_rootfs_tar(path: Path):
    with path.open("rb") as f:
        magic = f.read(6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic == b"\xfd7zXZ\x00":
        return lzma.open(path, "rb")
    if magic[:4] == b"\x28\xb5\x2f\xfd":
        raise SystemExit("zstd tarballs are not supported; decompress first (zstd -d)")
    return path.open("rb")


def build(args: argparse.Namespace) -> str:
    output = Path(args.output).resolve()
    tmpdir = tempfile.mkdtemp(prefix="mkimage-", dir=output.parent)
    try:
        layer_tmp = Path(tmpdir) / "layer.tar"
        with layer_tmp.open("wb") as layer:
            if args.rootfs:
                _tar_directory(Path(args.rootfs), layer)
            else:
                with _open_rootfs_tar(Path(args.rootfs_tar)) as src:
                    shutil.copyfileobj(src, layer, 1 << 20)
        h = hashlib.sha256()
        with layer_tmp.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        diff_id = h.hexdigest()

        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        env = [f"{k}={v}" for k, v in _pairs(args.env, "--env")]
        if not any(e.startswith("PATH=") for e in env):
            env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        cfg: dict = {"Env": env}
        if args.entrypoint is not None:
            cfg["Entrypoint"] = _argv_list(args.entrypoint)
        if args.cmd is not None:
            cfg["Cmd"] = _argv_list(args.cmd)
        if args.user:
            cfg["User"] = args.user
        if args.workdir:
            cfg["WorkingDir"] = args.workdir
        if args.label:
            cfg["Labels"] = dict(_pairs(args.label, "--label"))
        if args.expose:
            cfg["ExposedPorts"] = {p if "/" in p else f"{p}/tcp": {} for p in args.expose}
        config = {
            "architecture": args.arch,
            "os": "linux",
            "created": created,
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
            "history": [{"created": created, "created_by": "tests/cluster/images/mkimage.py"}],
        }
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_digest = hashlib.sha256(config_bytes).hexdigest()
        manifest = [
            {
                "Config": f"{config_digest}.json",
                "RepoTags": args.name,
                "Layers": [f"{diff_id}/layer.tar"],
            }
        ]

        out_tmp = output.with_name(output.name + ".tmp")
        with tarfile.open(out_tmp, "w", format=tarfile.PAX_FORMAT) as out:

            def add_bytes(name: str, data: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                out.addfile(info, io.BytesIO(data))

            add_bytes(f"{config_digest}.json", config_bytes)
            info = out.gettarinfo(layer_tmp, arcname=f"{diff_id}/layer.tar")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with layer_tmp.open("rb") as f:
                out.addfile(info, f)
            add_bytes("manifest.json", json.dumps(manifest).encode())
            repos: dict = {}
            for ref in args.name:
                repo, _, tag = ref.rpartition(":")
                repos.setdefault(repo, {})[tag] = diff_id
            add_bytes("repositories", json.dumps(repos).encode())
        out_tmp.replace(output)
        return config_digest
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--rootfs", help="root filesystem directory")
    src.add_argument("--rootfs-tar", help="root filesystem tarball (plain, gzip or xz)")
    p.add_argument(
        "--name",
        action="append",
        required=True,
        help="image reference with an explicit tag, e.g. conveyor.local/app:0.1 (repeatable)",
    )
    p.add_argument("--output", required=True, help="archive to write")
    p.add_argument("--entrypoint")
    p.add_argument("--cmd")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--user")
    p.add_argument("--workdir")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--expose", action="append", default=[])
    machine = os.uname().machine
    p.add_argument("--arch", default={"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine))
    args = p.parse_args(argv)
    for ref in args.name:
        last = ref.rsplit("/", 1)[-1]
        if ":" not in last or "@" in ref:
            raise SystemExit(f"--name needs an explicit tag (not a digest): {ref}")
        if last.endswith(":latest"):
            raise SystemExit(f"refusing :latest (it implies imagePullPolicy Always): {ref}")
    if args.rootfs and not Path(args.rootfs).is_dir():
        raise SystemExit(f"not a directory: {args.rootfs}")
    digest = build(args)
    print(f"sha256:{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
