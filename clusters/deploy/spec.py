"""The app spec a department team writes, and its validation against the department's tenant.

Everything here is checked before a single request is sent: the tenant exists and has the
environment, the image is named and comes from a registry the tenant may use, ports are real
ports, resources parse and fit the LimitRange and (with room for one extra pod during a rolling
update, and at the autoscaler's maximum) the namespace's quota, secrets come from the
department's own OpenBao mount (``kv-<code>/...``). Each problem names the field it is about.

Example::

    name: hall
    department: dsjj
    environment: prod
    image: registry.govcloud.local/dsjj/hall:1.4.2
    level: county
    replicas: 2
    ports: [{name: http, port: 8080}]
    resources: {cpu: 500m, memory: 512Mi}
    env: {HALL_PORT: "8080"}
    secrets:
      - {env: HALL_DSN, path: kv-dsjj/hall/db, key: dsn}
    health: {path: /readyz, port: http}
    ingress: {host: hall.dsjj.gov.local}
    autoscale: {min: 2, max: 6, cpu_percent: 70}
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from clusters.tenants.plan import Quota, TenantPlan
from govcloud.errors import InputError, Problem
from govcloud.naming import kv_mount, tenant_namespace
from govcloud.spec.load import _message, format_loc
from govcloud.spec.model import SLUG_PATTERN, Level, Spec
from govcloud.yamlsafe import load_yaml

T = TypeVar("T")

_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")  # IANA_SVC_NAME, 1-15
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DNS = re.compile(
    r"^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_IMAGE = re.compile(
    r"^(?P<repo>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Port(_M):
    name: StrictStr = "http"
    port: int  # range checked by validate(), so the problem names the field
    protocol: Literal["TCP", "UDP"] = "TCP"


class Resources(_M):
    """Per replica. ``cpu``/``memory`` are the requests; limits default to the same (the
    Guaranteed class)."""

    cpu: StrictStr | int | float
    memory: StrictStr
    cpu_limit: StrictStr | int | float | None = None
    memory_limit: StrictStr | None = None


class SecretRef(_M):
    env: StrictStr  # the variable the container sees
    path: StrictStr  # kv-<code>/<path> in OpenBao (KV v2)
    key: StrictStr


class Health(_M):
    path: StrictStr = "/healthz"
    port: StrictStr | int = "http"
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"  # HTTPS: the kubelet probes over TLS
    initial_delay_seconds: Annotated[int, Field(ge=0, le=600)] = 5
    period_seconds: Annotated[int, Field(ge=1, le=300)] = 10


class IngressSpec(_M):
    host: StrictStr
    path: StrictStr = "/"
    port: StrictStr | int | None = None  # default: the first port
    class_name: StrictStr | None = None  # default: the tenant's first allowed class


class Autoscale(_M):
    min: Annotated[int, Field(ge=1)] = 1
    max: Annotated[int, Field(ge=1)]
    cpu_percent: Annotated[int, Field(ge=1, le=100)] = 70
    # how long the load must stay low before replicas are removed (Kubernetes' default: 300)
    scale_down_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None


class AppSpec(_M):
    name: Annotated[StrictStr, Field(pattern=SLUG_PATTERN)]
    department: StrictStr
    environment: StrictStr = "prod"
    image: StrictStr
    level: Level | None = None  # the hall level it serves
    replicas: Annotated[int, Field(ge=0, le=1000)] = 2
    ports: list[Port] = Field(default_factory=lambda: [Port(port=8080)])
    resources: Resources
    env: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    secrets: list[SecretRef] = Field(default_factory=list)
    health: Health | None = None
    ingress: IngressSpec | None = None
    autoscale: Autoscale | None = None

    @property
    def namespace(self) -> str:
        return tenant_namespace(self.department, self.environment)

    @property
    def peak_replicas(self) -> int:
        return max(self.replicas, self.autoscale.max if self.autoscale else 0)


def parse_app(data: Any, source: str | None = None) -> AppSpec:
    if not isinstance(data, dict):
        raise InputError([Problem("", "an app spec is a mapping (name, department, image, ...)",
                                  source)], title="invalid app spec")  # fmt: skip
    try:
        return AppSpec.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(format_loc(e["loc"]), _message(e), source)
            for e in exc.errors(include_url=False)
        ]
        raise InputError(problems, title="invalid app spec") from None


def load_app(path: Path) -> AppSpec:
    data = load_yaml(path, error=lambda problems: InputError(problems, title="invalid app spec"))
    return parse_app(data, str(path))


# --- quantities ----------------------------------------------------------------------------

_MEM_UNITS = {
    "": Decimal(1),
    "k": Decimal(1000),
    "M": Decimal(1000) ** 2,
    "G": Decimal(1000) ** 3,
    "T": Decimal(1000) ** 4,
    "Ki": Decimal(1024),
    "Mi": Decimal(1024) ** 2,
    "Gi": Decimal(1024) ** 3,
    "Ti": Decimal(1024) ** 4,
}


def cpu_millis(value: str | int | float) -> int:
    """``"500m"`` → 500, ``"2"`` / ``2`` / ``1.5`` → 2000 / 1500."""
    text = str(value).strip()
    try:
        n = Decimal(text[:-1]) if text.endswith("m") else Decimal(text) * 1000
    except InvalidOperation:
        raise ValueError(
            f'expected CPU as cores ("2", "0.5") or millicores ("500m"), got {text!r}'
        ) from None
    if n <= 0 or n != n.to_integral_value():
        raise ValueError(f"expected a positive whole number of millicores, got {text!r}")
    return int(n)


def memory_mib(value: str) -> float:
    """``"512Mi"`` → 512, ``"1Gi"`` → 1024, ``"1G"`` → 953.67."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kMGT]i?|)\s*", str(value))
    if not m:
        raise ValueError(f'expected memory like "512Mi" or "2Gi", got {value!r}')
    n = Decimal(m.group(1)) * _MEM_UNITS[m.group(2)]
    if n <= 0:
        raise ValueError(f"expected a positive amount of memory, got {value!r}")
    return float(n / (Decimal(1024) ** 2))


def _fmt_cpu(m: float) -> str:
    return f"{m / 1000:g} CPU"


def _fmt_mem(mi: float) -> str:
    return f"{mi / 1024:g} GiB" if mi >= 1024 else f"{mi:g} MiB"


# --- validation ----------------------------------------------------------------------------


def _quantity(
    bad: Callable[[str, str], None], path: str, parse: Callable[[Any], T], value: Any
) -> T | None:
    try:
        return parse(value)
    except ValueError as exc:
        bad(path, str(exc))
        return None


def validate(app: AppSpec, spec: Spec, plan: TenantPlan) -> list[Problem]:
    """Every reason the app cannot go to its tenant, each with the field it is about."""
    problems: list[Problem] = []

    def bad(path: str, message: str) -> None:
        problems.append(Problem(path, message))

    dept = spec.department(app.department)
    tenant = plan.tenant(app.department)
    if dept is None or tenant is None:
        known = ", ".join(sorted(d.code for d in spec.departments))
        bad("department", f"no tenant {app.department!r} in spec {spec.name} (tenants: {known})")
        return problems
    quota: Quota | None = tenant.quotas.get(app.environment)
    if quota is None:
        bad(
            "environment",
            f"tenant {app.department} has no {app.environment!r} environment "
            f"(it has {', '.join(tenant.quotas)})",
        )
    if app.level is not None and app.level not in dept.levels:
        bad(
            "level",
            f"department {app.department} serves {', '.join(lv.value for lv in dept.levels)}, "
            f"not {app.level.value}",
        )

    # image
    image = app.image.strip()
    allowed = plan.options.registries_for(app.department)
    m = _IMAGE.match(image)
    if not image:
        bad("image", "an image is required")
    elif not m:
        bad("image", f"{image!r} is not an image reference (registry/path/name:tag)")
    elif not (m.group("tag") or m.group("digest")):
        bad("image", f"{image!r} has no tag or digest: pin a version")
    elif m.group("tag") == "latest" and not m.group("digest"):
        bad("image", f"{image!r}: 'latest' is not a version; pin a tag or a digest")
    if image and not any(image.startswith(r) for r in allowed):
        bad("image", f"{image!r} is not from a registry tenant {app.department} may use "
                     f"({', '.join(allowed)})")  # fmt: skip

    # ports
    names: dict[str, int] = {}
    numbers: set[tuple[int, str]] = set()
    if not app.ports:
        bad("ports", "at least one port is needed")
    for i, p in enumerate(app.ports):
        if not 1 <= p.port <= 65535:
            bad(f"ports[{i}].port", f"{p.port} is not a port (1-65535)")
        if not _PORT_NAME.match(p.name):
            bad(f"ports[{i}].name", f"{p.name!r}: 1-15 lower-case letters, digits or dashes")
        if p.name in names:
            bad(f"ports[{i}].name", f"{p.name!r} is also ports[{names[p.name]}]")
        if (p.port, p.protocol) in numbers:
            bad(f"ports[{i}].port", f"{p.port}/{p.protocol} is listed twice")
        names.setdefault(p.name, i)
        numbers.add((p.port, p.protocol))

    def port_ref(path: str, ref: str | int | None) -> None:
        if ref is None:
            return
        if isinstance(ref, int):
            if not any(p.port == ref for p in app.ports):
                bad(path, f"{ref} is not one of the app's ports")
        elif ref not in names:
            bad(path, f"{ref!r} is not one of the app's port names ({', '.join(names) or '-'})")

    if app.health:
        port_ref("health.port", app.health.port)
        if not app.health.path.startswith("/"):
            bad("health.path", f"{app.health.path!r} must start with /")
    if app.ingress:
        port_ref("ingress.port", app.ingress.port)
        if not _DNS.match(app.ingress.host):
            bad("ingress.host", f"{app.ingress.host!r} is not a DNS name")
        if not app.ingress.path.startswith("/"):
            bad("ingress.path", f"{app.ingress.path!r} must start with /")
        classes = plan.options.ingress_classes
        if app.ingress.class_name is not None and app.ingress.class_name not in classes:
            bad("ingress.class_name", f"{app.ingress.class_name!r} is not an ingress class "
                                      f"the tenant may use ({', '.join(classes)})")  # fmt: skip

    # env and secrets
    for name in app.env:
        if not _ENV_NAME.match(name):
            bad(f"env.{name}", "not a valid environment variable name")
    mount = kv_mount(app.department) + "/"
    seen_env: dict[str, str] = {n: f"env.{n}" for n in app.env}
    for i, s in enumerate(app.secrets):
        if not _ENV_NAME.match(s.env):
            bad(f"secrets[{i}].env", f"{s.env!r} is not a valid environment variable name")
        if s.env in seen_env:
            bad(f"secrets[{i}].env", f"{s.env} is also set by {seen_env[s.env]}")
        seen_env[s.env] = f"secrets[{i}]"
        if not s.path.startswith(mount) or len(s.path) <= len(mount):
            owner = s.path.split("/", 1)[0]
            whose = (
                f"; {owner} belongs to department {owner.removeprefix('kv-')}"
                if owner.startswith("kv-") and owner != mount[:-1]
                else ""
            )
            bad(
                f"secrets[{i}].path",
                f"{s.path!r} is outside department {app.department}'s secrets ({mount}...){whose}",
            )
        if not s.key:
            bad(f"secrets[{i}].key", "a key is required")

    # resources against the LimitRange and the quota
    if app.autoscale and app.autoscale.min > app.autoscale.max:
        bad("autoscale.min", f"{app.autoscale.min} is more than autoscale.max "
                             f"({app.autoscale.max})")  # fmt: skip
    r = app.resources
    cpu_req = _quantity(bad, "resources.cpu", cpu_millis, r.cpu)
    cpu_lim = (
        _quantity(bad, "resources.cpu_limit", cpu_millis, r.cpu_limit)
        if r.cpu_limit is not None
        else cpu_req
    )
    mem_req = _quantity(bad, "resources.memory", memory_mib, r.memory)
    mem_lim = (
        _quantity(bad, "resources.memory_limit", memory_mib, r.memory_limit)
        if r.memory_limit is not None
        else mem_req
    )
    if not (cpu_req and cpu_lim and mem_req and mem_lim):
        return problems
    if cpu_req and cpu_lim < cpu_req:
        bad("resources.cpu_limit", "the limit is below the request")
    if mem_req and mem_lim < mem_req:
        bad("resources.memory_limit", "the limit is below the request")
    if cpu_req and cpu_lim > 4 * cpu_req:
        bad("resources.cpu_limit", "at most 4 × the request (the tenant's LimitRange)")
    if mem_req and mem_lim > 2 * mem_req:
        bad("resources.memory_limit", "at most 2 × the request (the tenant's LimitRange)")
    if quota is not None:
        ns = tenant_namespace(app.department, app.environment)
        if cpu_req < 10:
            bad("resources.cpu", "at least 10m per container (the tenant's LimitRange)")
        if mem_req < 16:
            bad("resources.memory", "at least 16Mi per container (the tenant's LimitRange)")
        peak = app.peak_replicas
        pods = peak + (1 if peak else 0)  # one more during a rolling update
        why = (
            f"{peak} replica(s){' at the autoscaler maximum' if app.autoscale else ''} "
            f"+ 1 during a rolling update"
        )
        field_of = "autoscale.max" if app.autoscale and app.autoscale.max > app.replicas else None
        checks: list[tuple[str, float, float, Callable[[Any], str], str]] = [
            ("CPU", cpu_lim, quota.cpu_m, _fmt_cpu, "resources.cpu"),
            ("memory", mem_lim, quota.memory_mi, _fmt_mem, "resources.memory"),
        ]
        for what, per_pod, limit, fmt, path in checks:
            need = per_pod * pods
            if per_pod > limit:
                bad(path, f"one replica needs {fmt(per_pod)}, more than {ns}'s whole {what} "
                          f"quota ({fmt(limit)})")  # fmt: skip
            elif need > limit:
                bad(field_of or path,
                    f"over quota: {why} = {pods} × {fmt(per_pod)} = {fmt(need)}, more than "
                    f"{ns}'s {what} quota ({fmt(limit)})")  # fmt: skip
        if pods > quota.pods:
            bad(
                field_of or "replicas",
                f"over quota: {pods} pods ({why}), more than {ns} allows ({quota.pods})",
            )
    return problems


def check(app: AppSpec, spec: Spec, plan: TenantPlan, source: str | None = None) -> None:
    """Raise :class:`InputError` with every problem, or return when the app may go."""
    problems = validate(app, spec, plan)
    if problems:
        raise InputError(
            [Problem(p.path, p.message, source) for p in problems],
            title=f"app {app.name} cannot be deployed",
        )
