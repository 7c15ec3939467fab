"""OCI images from local files: a gzip layer of the files (after the cached Debian base layer
when the image needs a runtime), a config, a manifest.

Everything is reproducible: files are added in sorted order with fixed owners and times, so the
same inputs give the same digests (a rebuild pushes nothing new). Pure, no registry involved.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusters.images.rootfs import BaseLayer
from govcloud.errors import InputError

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
EPOCH = 0  # every file's time in a layer: the same inputs make the same layer


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


@dataclass(frozen=True)
class ImageSpec:
    """What goes into an image: files (path in the image → bytes and mode), links, and how it
    runs. ``user`` is numeric so that Pod Security's runAsNonRoot can check it."""

    files: dict[str, tuple[bytes, int]]
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    user: str = "65532:65532"
    env: tuple[str, ...] = ("PATH=/bin:/usr/bin",)
    workdir: str = "/"
    ports: tuple[int, ...] = ()
    symlinks: dict[str, str] = field(default_factory=dict)  # path → target
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Image:
    config: Blob
    layers: tuple[Blob, ...]
    manifest: Blob

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def blobs(self) -> tuple[Blob, ...]:
        return (*self.layers, self.config)


def _tarinfo(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _layer_tar(spec: ImageSpec) -> bytes:
    dirs: set[str] = set()
    for path in [*spec.files, *spec.symlinks]:
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs):
            tar.addfile(_tarinfo(d, tarfile.DIRTYPE, 0o755))
        for path in sorted(spec.files):
            data, mode = spec.files[path]
            tar.addfile(
                _tarinfo(path.strip("/"), tarfile.REGTYPE, mode, len(data)), io.BytesIO(data)
            )
        for path in sorted(spec.symlinks):
            info = _tarinfo(path.strip("/"), tarfile.SYMTYPE, 0o777)
            info.linkname = spec.symlinks[path]
            tar.addfile(info)
    return buf.getvalue()


def build(spec: ImageSpec, base: tuple[BaseLayer, ...] = ()) -> Image:
    """The image of ``spec``: its layers (``base`` first, then the spec's files), config and
    manifest blobs."""
    if not spec.entrypoint:
        raise InputError("an image needs an entrypoint")
    for path in spec.files:
        if not path.startswith("/") or ".." in path.split("/"):
            raise InputError(f"image file {path!r}: expected an absolute path without '..'")
    raw = _layer_tar(spec)
    layers = (
        *(Blob(LAYER_TYPE, b.data()) for b in base),
        Blob(LAYER_TYPE, gzip.compress(raw, mtime=EPOCH)),
    )
    diff_ids = [*(b.diff_id for b in base), "sha256:" + hashlib.sha256(raw).hexdigest()]
    config_doc: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": list(spec.entrypoint),
            "Cmd": list(spec.cmd),
            "User": spec.user,
            "Env": list(spec.env),
            "WorkingDir": spec.workdir,
            "ExposedPorts": {f"{p}/tcp": {} for p in spec.ports},
            "Labels": dict(spec.labels),
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config = Blob(CONFIG_TYPE, json.dumps(config_doc, sort_keys=True).encode())
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    manifest = Blob(MANIFEST_TYPE, json.dumps(manifest_doc, sort_keys=True).encode())
    return Image(config, layers, manifest)


def static_binary_image(
    binary: Path, name: str, args: tuple[str, ...] = (), ports: tuple[int, ...] = ()
) -> ImageSpec:
    """An image holding one static binary as ``/<name>``, run as a non-root user."""
    try:
        data = binary.read_bytes()
    except OSError as exc:
        raise InputError(
            f"{binary}: cannot read the binary for image {name} ({exc.strerror})"
        ) from None
    return ImageSpec(
        files={f"/{name}": (data, 0o755)}, entrypoint=(f"/{name}",), cmd=args, ports=ports
    )
