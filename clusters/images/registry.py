"""Pushing to and reading from the cloud's registry (the OCI distribution API over TLS).

Blobs the registry already holds are not sent again, so pushing an unchanged image costs one
HEAD request per blob and one manifest PUT.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clusters.images.oci import MANIFEST_TYPE, Blob, Image
from govcloud.errors import InputError, OperationError

TIMEOUT = 60.0


@dataclass(frozen=True)
class Registry:
    """A registry reached at ``endpoint`` (``https://address:port``), trusted through
    ``ca_file``; ``name`` is how images are named (``name:port/prefix/app:tag``)."""

    endpoint: str
    name: str
    ca_file: Path

    def _context(self) -> ssl.SSLContext:
        try:
            ctx = ssl.create_default_context(cafile=str(self.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise OperationError(f"cannot load the registry CA {self.ca_file}: {exc}") from None
        return ctx  # the certificate names both the registry's address and its name

    def _request(
        self,
        method: str,
        url: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        if not url.startswith("http"):
            url = self.endpoint + url
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT, context=self._context()) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OperationError(f"registry {self.endpoint}: {method} {url}: {reason}") from None

    def has_blob(self, repo: str, digest: str) -> bool:
        status, _, _ = self._request("HEAD", f"/v2/{repo}/blobs/{digest}")
        return status == 200

    def push_blob(self, repo: str, blob: Blob) -> bool:
        """Upload ``blob`` unless present; True when it was sent."""
        if self.has_blob(repo, blob.digest):
            return False
        status, headers, body = self._request("POST", f"/v2/{repo}/blobs/uploads/")
        location = headers.get("Location") or headers.get("location")
        if status != 202 or not location:
            raise OperationError(
                f"registry {self.endpoint}: cannot start an upload to {repo} "
                f"(HTTP {status}: {body[:200]!r})"
            )
        url = urllib.parse.urljoin(self.endpoint + "/", location)
        sep = "&" if "?" in url else "?"
        status, _, body = self._request(
            "PUT",
            f"{url}{sep}digest={urllib.parse.quote(blob.digest)}",
            data=blob.data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if status != 201:
            raise OperationError(
                f"registry {self.endpoint}: upload of {blob.digest} to {repo} "
                f"refused (HTTP {status}: {body[:200]!r})"
            )
        return True

    def push(self, repo: str, tag: str, image: Image) -> int:
        """Push ``image`` as ``repo:tag``; returns how many blobs were sent."""
        check_reference(repo, tag)
        sent = sum(self.push_blob(repo, b) for b in image.blobs())
        status, _, body = self._request(
            "PUT",
            f"/v2/{repo}/manifests/{tag}",
            data=image.manifest.data,
            headers={"Content-Type": MANIFEST_TYPE},
        )
        if status != 201:
            raise OperationError(
                f"registry {self.endpoint}: manifest {repo}:{tag} refused "
                f"(HTTP {status}: {body[:200]!r})"
            )
        return sent

    def manifest(self, repo: str, tag: str) -> dict[str, Any] | None:
        """The manifest of ``repo:tag``, or None when the registry does not have it."""
        status, _, body = self._request(
            "GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_TYPE}
        )
        if status == 404:
            return None
        if status != 200:
            raise OperationError(f"registry {self.endpoint}: {repo}:{tag}: HTTP {status}")
        doc: dict[str, Any] = json.loads(body)
        return doc

    def reference(self, repo: str, tag: str) -> str:
        return f"{self.name}/{repo}:{tag}"


def check_reference(repo: str, tag: str) -> None:
    import re

    if not re.fullmatch(r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*", repo):
        raise InputError(
            f"image repository {repo!r}: expected lower-case path components such as 'gat/hello'"
        )
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
        raise InputError(f"image tag {tag!r}: expected letters, digits, '_', '.', '-'")


def split_reference(image: str, registry_name: str) -> tuple[str, str] | None:
    """``(repo, tag)`` of an image reference in this registry, None when it names another."""
    prefix = registry_name + "/"
    if not image.startswith(prefix):
        return None
    rest = image[len(prefix) :]
    if "@" in rest:
        return None
    repo, _, tag = rest.rpartition(":")
    if not repo:
        return rest, "latest"
    return repo, tag


def require_image(image: str, spec: Any, server: str) -> None:
    """Refuse (exit 2, nothing sent) an image of the cloud's registry that the registry does
    not hold, when the app goes to the API server of that cloud (``server``): a typo in a tag
    would otherwise leave pods waiting to pull forever. Images of other registries, other API
    servers (a local one) and clouds without a planned registry are not checked here."""
    from clusters.cloud.pki import pki_dir
    from clusters.cloud.plan import make_cluster_plan
    from infra.plan import make_plan

    cp = make_cluster_plan(spec, make_plan(spec).hosts)
    ca = pki_dir() / "ca.crt"
    if cp is None or not ca.is_file() or server.rstrip("/") != cp.server:
        return
    ref = split_reference(image, cp.registry)
    if ref is None:
        return
    reg = Registry(f"https://{cp.registry_address}:{cp.registry_port}", cp.registry, ca)
    try:
        found = reg.manifest(*ref)
    except OperationError:
        return  # the registry cannot be asked from here: the nodes will say
    if found is None:
        raise InputError(
            f"image: {image} is not in the registry {cp.registry} (push it first: "
            f"govcloud images push)"
        )
