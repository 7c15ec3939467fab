"""The Pulumi program's one typed settings object, read from the stack's configuration.

Layers: project defaults (``Pulumi.yaml``), then the stack's overrides (``Pulumi.<stack>.yaml``).
Secrets are never configured in clear: the stack names where they live in OpenBao.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from govcloud.errors import InputError
from govcloud.paths import PROJECT_ROOT

TARGETS = ("lab", "hosts")


@dataclass(frozen=True)
class Settings:
    spec: Path  # the spec file or directory
    target: str  # "lab": LXC hosts on this machine; "hosts": existing hosts of the site
    kubeconfig: Path | None = None  # the tenant cloud's API server; None: no tenants
    admin_user: str = "ops"
    identity_file: Path | None = None  # None on the lab target: the lab's own key
    secrets_path: str | None = None  # where the stack's secrets live in OpenBao

    @classmethod
    def from_values(cls, values: dict[str, str | None]) -> Settings:
        def path(key: str) -> Path | None:
            value = values.get(key)
            if not value:
                return None
            p = Path(value)
            return p if p.is_absolute() else PROJECT_ROOT / p

        spec = path("spec")
        if spec is None:
            raise InputError("govcloud:spec: expected the path of the spec (file or directory)")
        target = values.get("target") or "lab"
        if target not in TARGETS:
            raise InputError(
                f"govcloud:target: expected one of {', '.join(TARGETS)}, got {target!r}"
            )
        return cls(
            spec,
            target,
            path("kubeconfig"),
            values.get("adminUser") or "ops",
            path("identityFile"),
            values.get("secretsPath"),
        )

    @classmethod
    def from_stack(cls) -> Settings:
        import pulumi

        config = pulumi.Config("govcloud")
        keys = ("spec", "target", "kubeconfig", "adminUser", "identityFile", "secretsPath")
        return cls.from_values({k: config.get(k) for k in keys})
