"""Deploy an app into its tenant, wait for the rollout, report status, roll back.

Every call goes out with the caller's credentials (a department member's kubeconfig): the API
server, not this code, decides whether that identity may act in the namespace. Objects are
server-side applied with the ``govcloud`` field manager; an Ingress or autoscaler the spec no
longer asks for is deleted.

Waiting: the rollout is complete when the Deployment has observed its generation and all
replicas are updated and available. When it is not, the reason is read from the cluster: a
ReplicaSet that cannot create pods (quota, Pod Security, the registry policy) says so in its
``ReplicaFailure`` condition; pods that no node was assigned to mean the cluster cannot schedule
them (no scheduler, no node, or none that fits), which is reported as such, not as a timeout.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusters.deploy.objects import L_APP, secret_name
from clusters.deploy.spec import AppSpec
from clusters.tenants import kube
from clusters.tenants.kube import KINDS, ApiError, Kube
from clusters.tenants.plan import L_PART_OF
from govcloud.errors import InputError, OperationError

DEPLOYMENT = KINDS[("apps/v1", "Deployment")]
REPLICASET = KINDS[("apps/v1", "ReplicaSet")]
POD = KINDS[("v1", "Pod")]
SECRET = KINDS[("v1", "Secret")]
OPTIONAL_KINDS = [
    KINDS[("networking.k8s.io/v1", "Ingress")],
    KINDS[("autoscaling/v2", "HorizontalPodAutoscaler")],
]
REVISION = "deployment.kubernetes.io/revision"
#: how long pods may wait for a node before the cluster is said not to schedule them
SCHEDULE_GRACE_SECONDS = 5.0


@dataclass
class Rollout:
    """Where a rollout got to."""

    state: str  # complete | cannot-schedule | failed | timeout | not-waited
    message: str
    revision: str = ""
    replicas: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state in ("complete", "not-waited")

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "message": self.message,
            "revision": self.revision,
            "replicas": self.replicas,
        }


@dataclass
class Deployed:
    applied: list[str]
    deleted: list[str]
    rollout: Rollout

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.rollout.ok,
            "applied": self.applied,
            "deleted": self.deleted,
            "rollout": self.rollout.as_dict(),
        }


def _forbidden_hint(exc: ApiError, namespace: str) -> OperationError:
    if exc.forbidden:
        return OperationError(
            f"the API server refused: {exc.api_message} — your identity may deploy only into "
            f"its own department's namespaces (this is {namespace})"
        )
    return exc


def deploy(
    k: Kube,
    app: AppSpec,
    manifests: list[dict[str, Any]],
    *,
    wait: bool = True,
    timeout: float = 120.0,
    secret_values: dict[str, str] | None = None,
) -> Deployed:
    """Apply the app's objects (validated beforehand by the caller), then wait for them."""
    applied: list[str] = []
    try:
        if secret_values is not None:
            k.apply(_secret(app, secret_values))
            applied.append(f"Secret {app.namespace}/{secret_name(app)}")
        for m in manifests:
            if m["kind"] == "Deployment" and app.autoscale is not None:
                m = _keep_replicas(k, app, m)
            if m["kind"] == "Deployment" and secret_values is not None:
                m = _with_secrets_digest(m, secret_values)
            k.apply(m)
            applied.append(kube.describe(kube.key(m)))
        wanted = {(m["apiVersion"], m["kind"]) for m in manifests}
        deleted = []
        for kind in OPTIONAL_KINDS:
            if (kind.api_version, kind.kind) in wanted:
                continue
            if k.get(kind, app.name, app.namespace) is not None:
                k.delete(kind, app.name, app.namespace)
                deleted.append(f"{kind.kind} {app.namespace}/{app.name}")
    except ApiError as exc:
        raise _forbidden_hint(exc, app.namespace) from exc
    if not wait:
        return Deployed(applied, deleted, Rollout("not-waited", "applied; not waiting"))
    return Deployed(applied, deleted, wait_rollout(k, app.namespace, app.name, timeout))


SECRETS_DIGEST = "govcloud.gov.cn/secrets-digest"


def _with_secrets_digest(m: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The pod template carries a digest of the Secret's values (never the values): pods read
    them at start, so a changed value (a renewed certificate, a rotated password) rolls the
    pods over, and an unchanged one changes nothing."""
    text = json.dumps(values, sort_keys=True)
    template = m["spec"]["template"]
    meta = template.get("metadata") or {}
    annotations = {
        **(meta.get("annotations") or {}),
        SECRETS_DIGEST: hashlib.sha256(text.encode()).hexdigest()[:16],
    }
    template = {**template, "metadata": {**meta, "annotations": annotations}}
    return {**m, "spec": {**m["spec"], "template": template}}


def _keep_replicas(k: Kube, app: AppSpec, m: dict[str, Any]) -> dict[str, Any]:
    """With an autoscaler, the replica count is the autoscaler's: apply the count the server
    has (so nothing is reset), or the autoscaler's minimum on the first deploy."""
    assert app.autoscale is not None
    live = k.get(DEPLOYMENT, app.name, app.namespace)
    replicas = ((live or {}).get("spec") or {}).get("replicas")
    if replicas is None:
        replicas = max(app.replicas, app.autoscale.min)
    return {**m, "spec": {**m["spec"], "replicas": replicas}}


def _secret(app: AppSpec, values: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(app),
            "namespace": app.namespace,
            "labels": {L_APP: app.name, L_PART_OF: "apps"},
        },
        "type": "Opaque",
        "stringData": values,
    }


def read_openbao_secrets(
    app: AppSpec, addr: str, token: str, ca: str | None = None
) -> dict[str, str]:
    """The values of ``app.secrets`` from OpenBao (KV v2 under ``kv-<code>``), read with the
    department's own token; a missing path or key is an input error naming the field."""
    from security.openbao.client import Bao, BaoError, BaoForbidden, BaoNotFound, Endpoint

    bao = Bao(Endpoint(addr, Path(ca) if ca else None), token)
    values: dict[str, str] = {}
    for i, s in enumerate(app.secrets):
        mount, _, path = s.path.partition("/")
        try:
            data = bao.read_kv_secret(path, mount_point=mount)
        except BaoForbidden as exc:
            raise InputError(f"secrets[{i}].path: OpenBao refused to read {s.path}: {exc}") from exc
        except BaoNotFound as exc:
            raise InputError(f"secrets[{i}].path: {s.path} does not exist in OpenBao") from exc
        except BaoError as exc:
            raise OperationError(f"cannot read {s.path} from OpenBao at {addr}: {exc}") from exc
        if s.key not in data:
            raise InputError(f"secrets[{i}].key: {s.path} has no key {s.key!r}")
        values[s.env] = str(data[s.key])
    return values


# --- the rollout -------------------------------------------------------------------------------


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(o.get("uid") == uid for o in obj["metadata"].get("ownerReferences") or [])


def replica_sets(k: Kube, namespace: str, dep: dict[str, Any]) -> list[dict[str, Any]]:
    """The Deployment's ReplicaSets, oldest revision first."""
    uid = dep["metadata"]["uid"]
    sel = ",".join(f"{a}={b}" for a, b in dep["spec"]["selector"].get("matchLabels", {}).items())
    rss = [r for r in k.list(REPLICASET, namespace, sel) if _owned_by(r, uid)]
    return sorted(rss, key=lambda r: int((r["metadata"].get("annotations") or {}).get(REVISION, 0)))


def _counts(dep: dict[str, Any]) -> dict[str, int]:
    st = dep.get("status") or {}
    return {
        "desired": int((dep.get("spec") or {}).get("replicas") or 0),
        "total": int(st.get("replicas") or 0),  # old revisions' pods included
        "updated": int(st.get("updatedReplicas") or 0),
        "ready": int(st.get("readyReplicas") or 0),
        "available": int(st.get("availableReplicas") or 0),
    }


def _diagnose(k: Kube, namespace: str, dep: dict[str, Any], since: float) -> Rollout | None:
    """Why a rollout is not moving, if the cluster says: None while it may still be."""
    revision = (dep["metadata"].get("annotations") or {}).get(REVISION, "")
    counts = _counts(dep)
    rss = replica_sets(k, namespace, dep)
    current = next(
        (r for r in rss if (r["metadata"].get("annotations") or {}).get(REVISION) == revision),
        None,
    )
    if current is None:
        return None
    for cond in (current.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return Rollout("failed", f"pods cannot be created: {cond.get('message')}", revision,
                           counts)  # fmt: skip
    for cond in (dep.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return Rollout("failed", cond.get("message", "progress deadline exceeded"), revision,
                           counts)  # fmt: skip
    hash_ = (current["metadata"].get("labels") or {}).get("pod-template-hash", "")
    pods = k.list(POD, namespace, f"{L_APP}={dep['metadata']['name']},pod-template-hash={hash_}")
    if not pods or time.monotonic() - since < SCHEDULE_GRACE_SECONDS:
        return None
    unscheduled = [p for p in pods if not (p.get("spec") or {}).get("nodeName")]
    if len(unscheduled) == len(pods):
        reasons = {
            c.get("message", "")
            for p in pods
            for c in (p.get("status") or {}).get("conditions") or []
            if c.get("type") == "PodScheduled" and c.get("status") == "False"
        }
        why = (
            "; ".join(sorted(r for r in reasons if r))
            if reasons
            else "no scheduler has assigned them a node (this cluster runs no scheduler or "
            "kubelet: pods are admitted and stored, never run)"
        )
        return Rollout(
            "cannot-schedule",
            f"the cluster cannot schedule {len(pods)} pod(s) of revision {revision}: {why}",
            revision,
            counts,
        )
    return None


def wait_rollout(k: Kube, namespace: str, name: str, timeout: float = 120.0) -> Rollout:
    start = time.monotonic()
    last: dict[str, Any] | None = None
    while True:
        dep = k.get(DEPLOYMENT, name, namespace)
        if dep is None:
            raise OperationError(f"Deployment {namespace}/{name} does not exist")
        last = dep
        st = dep.get("status") or {}
        c = _counts(dep)
        revision = (dep["metadata"].get("annotations") or {}).get(REVISION, "")
        observed = st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 0)
        # complete: every replica of the new revision available and none of the old left
        if (
            observed
            and c["updated"] == c["desired"]
            and c["available"] == c["desired"]
            and c["total"] == c["updated"]
        ):
            return Rollout("complete", f"{c['available']}/{c['desired']} available", revision, c)
        if observed:
            diagnosis = _diagnose(k, namespace, dep, start)
            if diagnosis is not None:
                return diagnosis
        if time.monotonic() - start > timeout:
            break
        time.sleep(1.0)
    c = _counts(last)
    return Rollout(
        "timeout",
        f"not complete after {timeout:.0f} s: {c['updated']}/{c['desired']} updated, "
        f"{c['available']}/{c['desired']} available",
        (last["metadata"].get("annotations") or {}).get(REVISION, ""),
        c,
    )


# --- status and rollback ---------------------------------------------------------------------


def _pod_row(p: dict[str, Any]) -> dict[str, Any]:
    """One pod as status shows it: where it runs, whether it is ready and, if not, why (the
    Ready condition's reason, or the container's waiting reason such as ErrImagePull)."""
    st = p.get("status") or {}
    ready: dict[str, Any] = next(
        (c for c in st.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    waiting = [
        cs["state"]["waiting"].get("reason", "")
        for cs in st.get("containerStatuses") or []
        if (cs.get("state") or {}).get("waiting")
    ]
    not_ready = [cs["name"] for cs in st.get("containerStatuses") or [] if not cs.get("ready")]
    reason = ", ".join(waiting) or (
        f"container {', '.join(not_ready)} not ready (readiness probe)" if not_ready else ""
    )
    return {
        "name": p["metadata"]["name"],
        "phase": st.get("phase"),
        "node": (p.get("spec") or {}).get("nodeName"),
        "ip": st.get("podIP"),
        "ready": ready.get("status") == "True",
        "terminating": bool(p["metadata"].get("deletionTimestamp")),
        "reason": reason or ready.get("reason") or "",
    }


def status(k: Kube, namespace: str, name: str) -> dict[str, Any]:
    try:
        dep = k.get(DEPLOYMENT, name, namespace)
    except ApiError as exc:
        raise _forbidden_hint(exc, namespace) from exc
    if dep is None:
        raise InputError(f"no app {name!r} in namespace {namespace}")
    rss = replica_sets(k, namespace, dep)
    pods = k.list(POD, namespace, f"{L_APP}={name}")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    out: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "image": container.get("image"),
        "revision": (dep["metadata"].get("annotations") or {}).get(REVISION, ""),
        "replicas": _counts(dep),
        "conditions": [
            {k_: c.get(k_) for k_ in ("type", "status", "reason", "message")}
            for c in (dep.get("status") or {}).get("conditions") or []
        ],
        "revisions": [
            {
                "revision": (r["metadata"].get("annotations") or {}).get(REVISION, ""),
                "image": r["spec"]["template"]["spec"]["containers"][0].get("image"),
                "replicas": int((r.get("status") or {}).get("replicas") or 0),
            }
            for r in rss
        ],
        "pods": [_pod_row(p) for p in pods],
    }
    for kind in OPTIONAL_KINDS:
        obj = k.get(kind, name, namespace)
        if obj is not None:
            out[kind.kind.lower()] = obj.get("spec")
    return out


def rollback(
    k: Kube, namespace: str, name: str, to_revision: int | None = None, *, wait: bool = True,
    timeout: float = 120.0,
) -> Rollout:  # fmt: skip
    """Put the pod template of an earlier revision back (the previous one by default), as
    ``kubectl rollout undo`` does; the Deployment controller then rolls it out as a new
    revision."""
    try:
        dep = k.get(DEPLOYMENT, name, namespace)
        if dep is None:
            raise InputError(f"no app {name!r} in namespace {namespace}")
        rss = replica_sets(k, namespace, dep)
        current = (dep["metadata"].get("annotations") or {}).get(REVISION, "")
        revs = {(r["metadata"].get("annotations") or {}).get(REVISION, ""): r for r in rss}
        if to_revision is None:
            earlier = [r for r in revs if r and r != current and int(r) < int(current or 0)]
            if not earlier:
                raise InputError(
                    f"{namespace}/{name} has no earlier revision to roll back to "
                    f"(revisions: {', '.join(sorted(revs)) or 'none'})"
                )
            target = max(earlier, key=int)
        else:
            target = str(to_revision)
            if target not in revs:
                raise InputError(
                    f"--to-revision {to_revision}: {namespace}/{name} has revisions "
                    f"{', '.join(sorted(revs, key=int))}"
                )
            if target == current:
                raise InputError(f"revision {target} is already the current one")
        template = json.loads(json.dumps(revs[target]["spec"]["template"]))
        (template["metadata"].get("labels") or {}).pop("pod-template-hash", None)
        k.request(
            "PATCH",
            DEPLOYMENT.path(namespace, name),
            query=[("fieldManager", kube.FIELD_MANAGER)],
            body=[{"op": "replace", "path": "/spec/template", "value": template}],
            content_type="application/json-patch+json",
            what=f"roll back Deployment {namespace}/{name} to revision {target}",
        )
    except ApiError as exc:
        raise _forbidden_hint(exc, namespace) from exc
    if not wait:
        return Rollout("not-waited", f"rolled back to revision {target}; not waiting")
    return wait_rollout(k, namespace, name, timeout)
