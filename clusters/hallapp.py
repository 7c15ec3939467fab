"""The online hall brought onto the cloud by the platform, as its department would do it.

1. The image (``clusters/apps/hall/image.yaml``) built from local files and pushed to the cloud's
   registry (only missing blobs are sent).
2. The hall's secrets (the database's address, the password hall.yml generated on the
   controller and the PKI's root its TLS certificate is verified against; the admin and metrics
   tokens, generated here on first use; the pods' own HTTPS certificate and key, which the
   automation identity issues from the PKI when missing or due) written to the department's
   own OpenBao mount (``kv-<code>/hall/...``) by the department's developer; nothing is
   written when they hold these values already.
3. ``app deploy`` of ``clusters/apps/hall/app.yaml`` by the department's operator: the app is
   validated against its tenant, its secrets are read from OpenBao with the operator's token and
   kept in the app's Secret only, the objects applied with the operator's own certificate, and
   the rollout awaited.

Nothing here is specific to the lab beyond where the state lives; a failure names its step.
"""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusters.hallsite import HallSite, hall_site
from govcloud.errors import OperationError
from govcloud.naming import kv_mount
from govcloud.spec.model import Spec
from infra.inventory import InvHost

HALL_DIR = Path(__file__).resolve().parent / "apps" / "hall"
APP_SPEC = HALL_DIR / "app.yaml"
IMAGE = HALL_DIR / "image.yaml"
DB_NAME, DB_USER = "hall", "govcloud_hall"  # playbooks/roles/hall_db defaults
ROLLOUT_TIMEOUT = 300.0


@dataclass
class Published:
    image: str = ""
    digest: str = ""
    blobs_sent: int = 0
    secrets_written: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    rollout: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "digest": self.digest,
            "blobs_sent": self.blobs_sent,
            "secrets_written": self.secrets_written,
            "applied": self.applied,
            "rollout": self.rollout,
        }


def _token(path: Path, length: int = 40) -> str:
    """The token kept in ``path`` (0600, in a 0700 directory), generated on first use."""
    if path.is_file():
        held = path.read_text(encoding="utf-8").split()
        if held:
            return held[0]
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    alphabet = string.ascii_letters + string.digits
    token = "".join(secrets.choice(alphabet) for _ in range(length))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token


def hall_secret_values(
    site: HallSite, hosts: list[InvHost], tls_name: str
) -> dict[str, dict[str, str]]:
    """KV path (under the department's mount) -> values, from the secrets hall.yml generated."""
    from infra.hosts.apply import hall_secrets_dir

    db = next((h for h in hosts if h.name == site.database_host), None)
    if db is None:
        raise OperationError(
            f"the hall's database host {site.database_host!r} is not in the plan "
            "(tenant.reaches of the hall's department)"
        )
    kept = hall_secrets_dir()
    values = {name: _token(kept / name) for name in ("admin-token", "metrics-token")}
    try:
        values["db-password"] = (kept / "db-password").read_text(encoding="utf-8").split()[0]
    except (OSError, IndexError):
        raise OperationError(
            f"{kept / 'db-password'} is missing: hall.yml sets the database up and generates "
            "its password (run `govcloud hosts apply` or `pulumi up`)"
        ) from None
    from security.pki.root import RootPaths

    # TLS only, the server's certificate verified for the address connected to against the
    # PKI's root (the app builds its context from HALL_DB_CA, libpq's verify-full)
    dsn = (
        f"postgresql://{DB_USER}:{values['db-password']}@{db.address}:5432/{DB_NAME}"
        "?sslmode=verify-full"
    )
    try:
        ca = RootPaths.default().cert.read_text(encoding="utf-8")
    except OSError:
        raise OperationError(
            f"{RootPaths.default().cert} is missing: identity apply sets the service PKI up "
            "(run `govcloud identity apply` or `pulumi up`)"
        ) from None
    return {
        "hall/db": {"dsn": dsn, "ca": ca},
        "hall/tokens": {"admin": values["admin-token"], "metrics": values["metrics-token"]},
        "hall/tls": _serving_cert(tls_name),
    }


def _serving_cert(stem: str) -> dict[str, str]:
    """The pods' HTTPS certificate ``stem`` (its chain after it) and key, as issued on the
    controller."""
    from security.pki.hostcerts import SERVICE, cert_dir

    directory = cert_dir(SERVICE)
    try:
        return {
            "cert": (directory / f"{stem}.fullchain.pem").read_text(encoding="utf-8"),
            "key": (directory / f"{stem}.key").read_text(encoding="utf-8"),
        }
    except OSError:
        raise OperationError(
            f"the hall's HTTPS certificate is missing in {directory}: `govcloud pki hosts` "
            "issues it (the automation identity)"
        ) from None


def publish_hall(
    spec: Spec, hosts: list[InvHost], progress: Callable[[str], None] | None = None
) -> Published:
    """Image, secrets and deploy of the hall on the cloud; raises on the first failed step."""
    from clusters.cloud.apply import registry_client
    from clusters.cloud.pki import department_kubeconfig
    from clusters.cloud.plan import make_cluster_plan
    from clusters.deploy import objects, rollout
    from clusters.deploy.spec import check, load_app
    from clusters.images.definition import build_image
    from clusters.tenants.kube import Kube
    from clusters.tenants.plan import plan_tenants
    from security.identity.session import login
    from security.openbao.client import BaoNotFound
    from security.openbao.cluster import Paths

    say = progress or (lambda _m: None)
    site = hall_site(spec)
    cp = make_cluster_plan(spec, hosts)
    if site is None or cp is None:
        raise OperationError("the spec puts no hall on a cloud (tenant.edge for app 'hall')")
    out = Published()
    app = load_app(APP_SPEC)
    tenants = plan_tenants(spec)
    check(app, spec, tenants, source=str(APP_SPEC))

    say("hall: building and pushing its image")
    d, image = build_image(IMAGE, progress=say)
    out.image, out.digest = f"{cp.registry}/{d.name}:{d.tag}", image.digest
    if out.image != app.image:
        raise OperationError(f"{APP_SPEC}: image {app.image} is not the one {IMAGE} builds")
    out.blobs_sent = registry_client(cp).push(d.name, d.tag, image)

    from security.pki import hostcerts

    for r in hostcerts.ensure(
        spec, hosts, hostcerts.automation_login(hosts), uses=[hostcerts.SERVICE]
    ):
        if r.action != "good":
            say(f"hall: its HTTPS certificate {r.stem}: {r.action} ({r.reason})")
    (serving,) = hostcerts.service_certs(spec, hosts)
    say(f"hall: its secrets in OpenBao ({kv_mount(site.department)}/hall/...)")
    paths = Paths.default()
    developer = login(f"{site.department}-developer", hosts, paths)
    mount = kv_mount(site.department)
    for path, values in hall_secret_values(site, hosts, serving.stem).items():
        try:
            held = developer.read_kv_secret(path, mount_point=mount)
        except BaoNotFound:
            held = {}
        if held != values:
            developer.write_kv_secret(path, values, mount_point=mount)
            out.secrets_written.append(f"{mount}/{path}")

    say("hall: deploying it as the department's operator")
    operator = login(f"{site.department}-operator", hosts, paths)
    ca = operator.endpoint.ca_cert
    secret_values = rollout.read_openbao_secrets(
        app, operator.endpoint.url, operator.token or "", str(ca) if ca else None
    )
    kube = Kube.from_kubeconfig(department_kubeconfig(cp, site.department, "operator"))
    done = rollout.deploy(
        kube,
        app,
        objects.build(app, tenants),
        timeout=ROLLOUT_TIMEOUT,
        secret_values=secret_values,
    )
    out.applied = done.applied
    out.rollout = done.rollout.as_dict()
    if not done.rollout.ok:
        raise OperationError(f"the hall's rollout did not complete: {done.rollout.message}")
    return out
