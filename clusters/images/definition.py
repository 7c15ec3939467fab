"""An image definition file (``image.yaml``): what a department's image holds and how it runs.

    name: gat/hello            # <department code>/<app>: the tenant's own registry prefix
    tag: "1.0"
    files:                     # local files or directories, relative to this file
      - {src: www, dest: /www}
      - {src: /bin/busybox, dest: /bin/busybox, mode: 0o755}
      - {src: app, dest: /app, exclude: ["*.pyc", "tests/*"]}
    entrypoint: [/bin/busybox, httpd, -f, -p, "8080", -h, /www]
    ports: [8080]
    user: "65532:65532"        # numeric, so Pod Security can see it is not root
    base:                      # optional: a Debian base layer for a runtime (built once, cached)
      packages: [python3-aiohttp, python3-asyncpg]

Read through the project's one YAML loader, checked with every problem named.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatch
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from clusters.images.oci import Image, ImageSpec, build
from clusters.images.rootfs import base_layer, check_packages
from govcloud.errors import InputError, Problem

MAX_IMAGE_BYTES = 512 * 1024 * 1024  # one layer held in memory: images here are small


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    src: StrictStr
    dest: StrictStr
    mode: int | None = None
    exclude: list[StrictStr] = Field(default_factory=list)  # globs, relative to a directory src


class Base(BaseModel):
    """A Debian ``minbase`` layer under the image's files, with these packages installed."""

    model_config = ConfigDict(extra="forbid")
    packages: list[StrictStr] = Field(default_factory=list)


class ImageDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(pattern=r"^[a-z0-9]+(/[a-z0-9]+([._-][a-z0-9]+)*)+$")]
    tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    files: list[FileEntry] = Field(min_length=1)
    entrypoint: list[StrictStr] = Field(min_length=1)
    cmd: list[StrictStr] = Field(default_factory=list)
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=list)
    user: Annotated[str, Field(pattern=r"^[1-9][0-9]*(:[0-9]+)?$")] = "65532:65532"
    env: list[StrictStr] = Field(default_factory=lambda: ["PATH=/bin:/usr/bin"])
    workdir: StrictStr = "/"
    base: Base | None = None

    @property
    def department(self) -> str:
        return self.name.split("/", 1)[0]


def load_definition(path: Path) -> tuple[ImageDefinition, ImageSpec]:
    from govcloud.yamlsafe import load_yaml

    raw: Any = load_yaml(path)
    try:
        d = ImageDefinition.model_validate(raw)
    except ValidationError as exc:
        problems = [
            Problem(".".join(str(x) for x in e["loc"]), e["msg"], str(path)) for e in exc.errors()
        ]
        raise InputError(problems, title="invalid image definition") from None
    files: dict[str, tuple[bytes, int]] = {}
    total = 0
    for i, f in enumerate(d.files):
        src = (path.parent / f.src) if not f.src.startswith("/") else Path(f.src)
        if not src.exists():
            raise InputError(
                [Problem(f"files[{i}].src", f"no such file or directory: {src}", str(path))],
                title="invalid image definition",
            )
        sources = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
        if not src.is_file():
            sources = [
                p
                for p in sources
                if not any(fnmatch(str(p.relative_to(src)), pat) for pat in f.exclude)
            ]
        for p in sources:
            rel = "" if src.is_file() else "/" + str(p.relative_to(src))
            data = p.read_bytes()
            total += len(data)
            mode = f.mode if f.mode is not None else (0o755 if p.stat().st_mode & 0o111 else 0o644)
            files[f.dest.rstrip("/") + rel] = (data, mode)
    if total > MAX_IMAGE_BYTES:
        raise InputError(
            [
                Problem(
                    "files",
                    f"{total} bytes, more than the {MAX_IMAGE_BYTES} an image may hold",
                    str(path),
                )
            ],
            title="invalid image definition",
        )
    spec = ImageSpec(
        files=files,
        entrypoint=tuple(d.entrypoint),
        cmd=tuple(d.cmd),
        user=d.user,
        env=tuple(d.env),
        ports=tuple(d.ports),
        workdir=d.workdir,
        labels={"org.opencontainers.image.title": d.name},
    )
    return d, spec


def build_image(
    path: Path, progress: Callable[[str], None] | None = None
) -> tuple[ImageDefinition, Image]:
    """The image an image definition describes (its base layer built first when missing)."""
    d, spec = load_definition(path)
    if d.base is None:
        return d, build(spec)
    packages = tuple(d.base.packages)
    try:
        check_packages(packages, "base.packages")
    except InputError as exc:
        raise InputError(
            [Problem("base.packages", str(exc), str(path))], title="invalid image definition"
        ) from None
    return d, build(spec, (base_layer(packages, progress=progress),))
