"""Apply a tenant plan to an API server: server-side apply in parallel with bounded concurrency,
a diff first, pruning only when asked, and YAML for teams that use GitOps.

What the server holds is read with one LIST per kind (label ``app.kubernetes.io/managed-by=
govcloud`` and ``govcloud.gov.cn/part-of`` tenants or platform). An applied object is
*created* when it was not there, *unchanged* when the server kept its resourceVersion (a
server-side apply that changes nothing writes nothing), *updated* otherwise. ``diff`` asks the
server what an apply would do (server-side apply with ``dryRun=All``) and compares that with
what it holds, so defaulting and quantity normalisation never show up as changes.

Cluster-scoped objects (namespaces, admission policies) go first, then everything inside the
namespaces; within each phase up to ``concurrency`` requests are in flight.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from clusters.tenants import DEFAULT_CONCURRENCY, kube
from clusters.tenants.kube import Kube
from clusters.tenants.plan import L_MANAGED_BY, L_PART_OF, TenantPlan
from govcloud.errors import OperationError

Key = tuple[str, str, str, str]
T = TypeVar("T")
R = TypeVar("R")

MANAGED_SELECTOR = f"{L_MANAGED_BY}={kube.FIELD_MANAGER},{L_PART_OF} in (tenants,platform)"
#: the kinds a tenant plan is made of (listed to find what the server holds)
TENANT_KINDS = [
    kube.KINDS[("v1", "Namespace")],
    kube.KINDS[("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy")],
    kube.KINDS[("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding")],
    kube.KINDS[("v1", "ResourceQuota")],
    kube.KINDS[("v1", "LimitRange")],
    kube.KINDS[("networking.k8s.io/v1", "NetworkPolicy")],
    kube.KINDS[("rbac.authorization.k8s.io/v1", "Role")],
    kube.KINDS[("rbac.authorization.k8s.io/v1", "RoleBinding")],
]
#: a digest of the manifest last applied, so an unchanged object need not be sent again
A_APPLIED = "govcloud.gov.cn/applied-digest"
_VOLATILE_METADATA = (
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
    "selfLink",
)


@dataclass
class Change:
    key: Key
    action: str  # create | update | unchanged | prune
    diff: str = ""
    sent: bool = True  # False when nothing had to be asked of the server

    @property
    def what(self) -> str:
        return kube.describe(self.key)

    def as_dict(self) -> dict[str, Any]:
        api, kind, ns, name = self.key
        d = {"apiVersion": api, "kind": kind, "namespace": ns, "name": name, "action": self.action}
        if self.diff:
            d["diff"] = self.diff
        return d


@dataclass
class Outcome:
    """What an apply or a diff found or did."""

    changes: list[Change] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    requests: int = 0

    def count(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "unchanged": 0, "prune": 0}
        for c in self.changes:
            out[c.action] = out.get(c.action, 0) + 1
        return out

    def of(self, action: str) -> list[Change]:
        return [c for c in self.changes if c.action == action]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.errors,
            "counts": self.count(),
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "errors": self.errors,
            "changes": [c.as_dict() for c in self.changes if c.action != "unchanged"],
        }


def pmap(fn: Callable[[T], R], items: Iterable[T], concurrency: int) -> list[R]:
    """``fn`` over ``items`` with at most ``concurrency`` calls at a time, results in order."""
    items = list(items)
    if concurrency <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="govcloud-apply") as ex:
        return list(ex.map(fn, items))


def phases(manifests: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Cluster-scoped objects first (the namespaces everything else lives in), then the rest."""
    first = [m for m in manifests if not kube.kind_of(m).namespaced]
    rest = [m for m in manifests if kube.kind_of(m).namespaced]
    return [p for p in (first, rest) if p]


def live_objects(k: Kube, concurrency: int = 8) -> dict[Key, dict[str, Any]]:
    """Every object a tenant plan made that the server holds, by key."""
    lists = pmap(lambda kind: k.list(kind, selector=MANAGED_SELECTOR), TENANT_KINDS, concurrency)
    return {kube.key(o): o for items in lists for o in items}


def normalise(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without what the server alone decides (status, versions, managed fields) and
    without our digest."""
    out = {k: v for k, v in obj.items() if k != "status"}
    md = dict(out.get("metadata") or {})
    for f in _VOLATILE_METADATA:
        md.pop(f, None)
    annotations = {k: v for k, v in (md.get("annotations") or {}).items() if k != A_APPLIED}
    md.pop("annotations", None)
    if annotations:
        md["annotations"] = annotations
    out["metadata"] = md
    return out


def digest(manifest: dict[str, Any]) -> str:
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def stamped(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its own digest as an annotation."""
    md = dict(manifest["metadata"])
    md["annotations"] = {**(md.get("annotations") or {}), A_APPLIED: digest(manifest)}
    return {**manifest, "metadata": md}


def holds(live: dict[str, Any] | None, manifest: dict[str, Any]) -> bool:
    """Does the server hold exactly what this manifest last applied? True when the object
    carries the manifest's digest and nobody but govcloud (and status writers) has written
    to it since: any other writer shows up in its managed fields."""
    if live is None:
        return False
    md = live.get("metadata") or {}
    if (md.get("annotations") or {}).get(A_APPLIED) != digest(manifest):
        return False
    return all(
        e.get("manager") == kube.FIELD_MANAGER or e.get("subresource")
        for e in md.get("managedFields") or []
    )


def _yaml(obj: dict[str, Any]) -> list[str]:
    return yaml.safe_dump(obj, sort_keys=True, allow_unicode=True).splitlines(keepends=True)


def unified(key: Key, before: dict[str, Any], after: dict[str, Any]) -> str:
    name = kube.describe(key)
    return "".join(
        difflib.unified_diff(
            _yaml(normalise(before)), _yaml(normalise(after)), f"live: {name}", f"planned: {name}"
        )
    )


def _run_phases(
    manifests: list[dict[str, Any]],
    step: Callable[[dict[str, Any]], Change | None],
    concurrency: int,
    out: Outcome,
) -> None:
    def safe(m: dict[str, Any]) -> Change | None:
        try:
            return step(m)
        except OperationError as exc:
            out.errors.append(str(exc))
            return None

    for phase in phases(manifests):
        done = [c for c in pmap(safe, phase, concurrency) if c is not None]
        out.requests += sum(c.sent for c in done) + (len(phase) - len(done))
        out.changes += done


def prune_candidates(planned: Iterable[Key], live: dict[Key, dict[str, Any]]) -> list[Key]:
    """Objects the server holds that no longer belong to the plan; what lives in a namespace
    that goes is not listed on its own (deleting the namespace deletes it)."""
    wanted = set(planned)
    gone = [k for k in live if k not in wanted]
    gone_ns = {k[3] for k in gone if k[1] == "Namespace"}
    return sorted(k for k in gone if not (k[2] and k[2] in gone_ns))


def diff(
    plan: TenantPlan, k: Kube, concurrency: int = DEFAULT_CONCURRENCY, *, full: bool = False
) -> Outcome:
    """What ``apply`` would change, asked of the server (dry run) and not written. Objects that
    still hold what was last applied (:func:`holds`) are not asked about unless ``full``."""
    start = time.perf_counter()
    manifests = plan.manifests()
    live = live_objects(k)
    out = Outcome()

    def step(m: dict[str, Any]) -> Change:
        key = kube.key(m)
        if key not in live:
            return Change(key, "create")
        before = live[key]
        if not full and holds(before, m):
            return Change(key, "unchanged", sent=False)
        after = k.apply(stamped(m), dry_run=True)
        if normalise(before) == normalise(after):
            return Change(key, "unchanged")
        return Change(key, "update", unified(key, before, after))

    _run_phases(manifests, step, concurrency, out)
    out.changes += [
        Change(key, "prune") for key in prune_candidates(map(kube.key, manifests), live)
    ]
    out.seconds = time.perf_counter() - start
    return out


def apply(
    plan: TenantPlan,
    k: Kube,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    prune: bool = False,
    on_prune: Callable[[list[Key]], None] | None = None,
    full: bool = False,
) -> Outcome:
    """Server-side apply every planned object; with ``prune``, then delete what the server holds
    that the plan no longer has (``on_prune`` is shown that list before anything is deleted).
    Objects that still hold what was last applied are not sent again unless ``full``."""
    start = time.perf_counter()
    manifests = plan.manifests()
    live = live_objects(k)
    out = Outcome()

    def step(m: dict[str, Any]) -> Change:
        key = kube.key(m)
        before = live.get(key)
        if not full and holds(before, m):
            return Change(key, "unchanged", sent=False)
        after = k.apply(stamped(m))
        if before is None:
            return Change(key, "create")
        # compared without status and versions: a status writer (the admission-policy type
        # checker, the quota controller) may have moved the resourceVersion meanwhile
        return Change(key, "unchanged" if normalise(before) == normalise(after) else "update")

    _run_phases(manifests, step, concurrency, out)
    gone = prune_candidates(map(kube.key, manifests), live)
    if prune and gone:
        if out.errors:
            out.errors.append(
                f"nothing pruned: {len(gone)} object(s) would go, but the apply failed"
            )
        else:
            if on_prune:
                on_prune(gone)
            out.changes += prune_objects(k, gone, concurrency, out)
    out.seconds = time.perf_counter() - start
    return out


def prune_objects(k: Kube, keys: list[Key], concurrency: int, out: Outcome) -> list[Change]:
    def delete(key: Key) -> Change | None:
        api, kind, ns, name = key
        try:
            k.delete(kube.KINDS[(api, kind)], name, ns or None)
        except OperationError as exc:
            out.errors.append(str(exc))
            return None
        return Change(key, "prune")

    # namespaced objects first, then namespaces and cluster-scoped policies
    inner = [x for x in keys if x[2]]
    outer = [x for x in keys if not x[2]]
    done = [c for c in pmap(delete, inner, concurrency) if c]
    done += [c for c in pmap(delete, outer, concurrency) if c]
    return done


def apply_one_at_a_time(plan: TenantPlan, k: Kube) -> Outcome:
    """The baseline the benchmark measures against: every object applied in turn."""
    start = time.perf_counter()
    out = Outcome()
    for m in plan.manifests():
        k.apply(stamped(m))
        out.requests += 1
    out.seconds = time.perf_counter() - start
    return out


# --- render -------------------------------------------------------------------------------

_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when it is there


def render(plan: TenantPlan, directory: Path) -> list[Path]:
    """One YAML file per tenant and one for the platform objects, plus a kustomization that
    lists them, in ``directory`` (created). Returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[dict[str, Any]]] = {"_platform.yaml": plan.manifests_of(plan.platform)}
    for t in plan.tenants:
        files[f"{t.code}.yaml"] = plan.manifests_of(t.objects)
    written = []
    for name, docs in files.items():
        path = directory / name
        path.write_text(
            yaml.dump_all(
                docs, Dumper=_Dumper, sort_keys=False, allow_unicode=True, explicit_start=True
            ),
            encoding="utf-8",
        )
        written.append(path)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(files),
    }
    path = directory / "kustomization.yaml"
    path.write_text(yaml.safe_dump(kustomization, sort_keys=False))
    written.append(path)
    return written
