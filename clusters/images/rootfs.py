"""A Debian base layer for images that need a runtime (the hall's Python, say).

Built once on this machine with debootstrap's ``minbase`` variant and the packages an image
definition names (the machine reaches the Debian mirror; the lab's containers do not), trimmed of
what a container never reads (apt's lists and archives, documentation, man pages), and cached as a
gzip layer under the cache directory. The cache key is the recipe (release, packages, trim
version), so the same definition gives the same layer, and so the same image digest, on every
later build. Device nodes are left out: the container runtime provides /dev.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from govcloud.errors import InputError, OperationError

RELEASE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
TRIM_VERSION = "1"
EPOCH = 0
TRIMMED = (
    "var/cache/apt",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "var/log",
)
BUILD_TIMEOUT = 1800.0
_PACKAGE = "abcdefghijklmnopqrstuvwxyz0123456789+-."


@dataclass(frozen=True)
class BaseLayer:
    """A cached layer: its gzip file and the digest of its uncompressed tar (the diff ID)."""

    path: Path
    diff_id: str
    packages: tuple[str, ...]

    def data(self) -> bytes:
        return self.path.read_bytes()


def recipe_key(packages: tuple[str, ...]) -> str:
    text = "\n".join([RELEASE, TRIM_VERSION, *sorted(set(packages))])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_packages(packages: tuple[str, ...], where: str) -> None:
    for i, p in enumerate(packages):
        if not p or p[0] not in _PACKAGE[:36] or any(c not in _PACKAGE for c in p):
            raise InputError(
                f"{where}[{i}]: {p!r} is not a Debian package name "
                "(lower-case letters, digits, + - .)"
            )


def cache_dir() -> Path:
    return Path(os.environ.get("GOVCLOUD_CACHE") or Path.home() / ".cache" / "govcloud") / "images"


def base_layer(
    packages: tuple[str, ...],
    *,
    cache: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> BaseLayer:
    """The base layer holding Debian ``minbase`` plus ``packages``, built on the first call."""
    say = progress or (lambda _m: None)
    check_packages(packages, "base.packages")
    root = cache or cache_dir()
    key = recipe_key(packages)
    layer, meta = root / f"debian-{RELEASE}-{key}.tar.gz", root / f"debian-{RELEASE}-{key}.json"
    if layer.is_file() and meta.is_file():
        return BaseLayer(layer, json.loads(meta.read_text())["diff_id"], tuple(packages))
    root.mkdir(parents=True, exist_ok=True)
    say(f"base layer: Debian {RELEASE} minbase + {' '.join(packages)} (debootstrap, once)")
    with tempfile.TemporaryDirectory(dir=root, prefix="rootfs-") as tmp:
        tree = Path(tmp) / "rootfs"
        _debootstrap(tree, packages, Path(tmp) / "debootstrap.log")
        _trim(tree)
        say("base layer: packing the root filesystem")
        partial = layer.with_suffix(".partial")
        diff_id = _pack(tree, partial)
        partial.replace(layer)
    meta.write_text(json.dumps({"diff_id": diff_id, "packages": sorted(packages)}) + "\n")
    return BaseLayer(layer, diff_id, tuple(packages))


def _debootstrap(tree: Path, packages: tuple[str, ...], log: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise OperationError("debootstrap is not installed (make deps installs it)")
    argv = ["debootstrap", "--variant=minbase"]
    if packages:
        argv.append("--include=" + ",".join(sorted(set(packages))))
    argv += [RELEASE, str(tree), MIRROR]
    with log.open("wb") as out:
        try:
            done = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            raise OperationError(
                f"debootstrap did not finish in {BUILD_TIMEOUT:.0f} s (mirror {MIRROR})"
            ) from None
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise OperationError(
            f"debootstrap failed (exit {done.returncode}) for packages {', '.join(packages)}: "
            + " | ".join(tail)
        )


def _trim(tree: Path) -> None:
    for rel in TRIMMED:
        path = tree / rel
        if path.is_dir():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()


def _pack(tree: Path, dest: Path) -> str:
    """Tar ``tree`` in sorted order with fixed times (owners and modes kept), gzip it to
    ``dest``; returns the sha256 of the uncompressed tar."""
    plain = dest.with_suffix(".tar")
    with tarfile.open(plain, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _walk(tree):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(tree).as_posix())
            if not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
                continue  # device nodes, fifos, sockets: the runtime makes its own /dev
            info.mtime = EPOCH
            info.uname = info.gname = ""
            if info.isreg():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    digest = hashlib.sha256()
    with (
        plain.open("rb") as src,
        dest.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=EPOCH) as gz,
    ):
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            gz.write(chunk)
    plain.unlink()
    return "sha256:" + digest.hexdigest()


def _walk(tree: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        base = Path(dirpath)
        if base != tree:
            out.append(base)
        out += [base / f for f in sorted(filenames)]
        # symlinks to directories are listed by os.walk among dirnames and not descended
        out += [base / d for d in dirnames if (base / d).is_symlink()]
        dirnames[:] = [d for d in dirnames if not (base / d).is_symlink()]
    out.sort(key=lambda p: p.relative_to(tree).as_posix())
    return out
