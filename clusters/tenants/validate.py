"""Rendered manifests against the Kubernetes schemas of the server's version.

Offline with ``kubernetes-validate`` (strict: unknown fields are errors), which ships the
OpenAPI-derived JSON schemas per Kubernetes minor version; where it has no schemas for the
version asked, the caller can fall back to the server itself (:func:`server_dry_run`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from clusters.tenants import kube
from clusters.tenants.kube import Kube
from govcloud.errors import OperationError, Problem


class SchemasMissing(Exception):
    """kubernetes-validate has no schemas for this version or kind."""


def minor(version: str) -> str:
    """``1.36.3`` → ``1.36``."""
    parts = version.lstrip("v").split(".")
    return ".".join(parts[:2])


def schema_versions() -> list[str]:
    from kubernetes_validate import utils

    return sorted(set(utils.all_versions()), key=lambda v: tuple(int(x) for x in v.split(".")))


def has_schemas(version: str) -> bool:
    return any(minor(v) == minor(version) for v in schema_versions())


def _schema_dir(version: str, strict: bool) -> str:
    """The newest schema set not newer than ``version`` (as kubernetes-validate picks it)."""
    want = tuple(int(x) for x in minor(version).split("."))
    usable = [v for v in schema_versions() if tuple(int(x) for x in minor(v).split(".")) <= want]
    return f"v{usable[-1]}-local" + ("-strict" if strict else "")


@functools.cache
def _definitions(schema_dir: str) -> Any:
    from kubernetes_validate import utils

    return utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", "")


@functools.cache
def _validator(schema_dir: str, kind: str, api_version: str) -> Any:
    """A compiled validator per kind, built once: kubernetes-validate's ``validate`` reloads
    every schema file per call (minutes for a whole plan), this resolves them once."""
    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = utils.schema_contents(
        f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{api}.json", ""
    )
    registry: Any = Resource.from_contents(_definitions(schema_dir)) @ (
        Resource.from_contents(schema) @ Registry()
    )
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def validate_offline(
    manifests: Iterable[dict[str, Any]], version: str, strict: bool = True
) -> list[Problem]:
    """One problem per schema error (path: ``Kind ns/name: field.path``), with the schemas
    kubernetes-validate ships for ``version``'s minor release."""
    if not has_schemas(version):
        raise SchemasMissing(
            f"kubernetes-validate {_kv_version()} has no schemas for Kubernetes {minor(version)} "
            f"(it has {', '.join(schema_versions())})"
        )
    schema_dir = _schema_dir(version, strict)
    problems = []
    for m in manifests:
        where = kube.describe(kube.key(m))
        try:
            validator = _validator(schema_dir, m["kind"], m["apiVersion"])
        except (FileNotFoundError, ValueError) as exc:
            problems.append(Problem(where, f"no schema for {m['apiVersion']}/{m['kind']}: {exc}"))
            continue
        for err in validator.iter_errors(m):
            path = ".".join(str(p) for p in err.absolute_path)
            problems.append(Problem(f"{where}: {path}" if path else where, err.message))
    return problems


def server_dry_run(manifests: Iterable[dict[str, Any]], k: Kube) -> list[Problem]:
    """The server's own verdict: server-side apply with ``dryRun=All`` (nothing is written;
    namespaced objects need their namespace to exist)."""
    problems = []
    for m in manifests:
        try:
            k.apply(m, dry_run=True)
        except OperationError as exc:
            problems.append(Problem(kube.describe(kube.key(m)), str(exc)))
    return problems


def _kv_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kubernetes-validate")
    except PackageNotFoundError:
        return "(not installed)"
