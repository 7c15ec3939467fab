"""The e-seal (电子印章): a licence's canonical bytes signed by OpenBao transit, verified offline.

Each issuing department has a transit key (``seal-<department>``, ed25519 or ecdsa-p256) that
never leaves OpenBao: the library asks OpenBao to sign with the *caller's* token, so only the
department whose policy allows ``transit/sign/seal-<department>`` can seal its licences.
Verification needs only the key's public half (``GET transit/keys/seal-<department>``), which
anyone may hold: :func:`verify` runs with ``cryptography`` and no network.

A seal reads ``<prefix>:v<version>:<base64 signature>`` as transit returns it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp

DEFAULT_MOUNT = "transit"
KEY_TYPES = ("ed25519", "ecdsa-p256")


def key_name(department: str) -> str:
    return f"seal-{department}"


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a seal covers: JSON with sorted keys, no spaces, UTF-8 (the same record
    always gives the same bytes, whatever produced it)."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


class SealError(Exception):
    """OpenBao refused or failed a transit request; ``status`` is its HTTP status (0: none)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Transit:
    """The few transit calls the library makes, over OpenBao's HTTP API."""

    def __init__(
        self, session: aiohttp.ClientSession, addr: str, token: str, mount: str = DEFAULT_MOUNT
    ) -> None:
        self.session = session
        self.addr = addr.rstrip("/")
        self.token = token
        self.mount = mount

    async def _call(self, method: str, path: str, token: str, body: Any = None) -> Any:
        url = f"{self.addr}/v1/{self.mount}/{path}"
        try:
            async with self.session.request(
                method, url, json=body, headers={"X-Vault-Token": token}
            ) as resp:
                data = await resp.json(content_type=None) if resp.status != 204 else {}
                if resp.status >= 400:
                    errors = "; ".join((data or {}).get("errors") or []) or resp.reason
                    raise SealError(resp.status, f"OpenBao {path}: {errors}")
                return data
        except aiohttp.ClientError as exc:
            raise SealError(0, f"OpenBao did not answer ({type(exc).__name__})") from exc

    async def sign(self, department: str, payload: bytes, token: str) -> str:
        """Seal ``payload`` with the department's key, as the holder of ``token``."""
        data = await self._call(
            "POST",
            f"sign/{key_name(department)}",
            token,
            {"input": base64.b64encode(payload).decode()},
        )
        return str(data["data"]["signature"])

    async def public_keys(self, department: str) -> dict[str, Any]:
        """The key's type and public key per version (the library's own token reads them)."""
        data = await self._call("GET", f"keys/{key_name(department)}", self.token)
        d = data["data"]
        return {
            "type": d["type"],
            "keys": {v: k["public_key"] for v, k in d["keys"].items() if k.get("public_key")},
        }


def verify(payload: bytes, seal: str, key: dict[str, Any]) -> bool:
    """Whether ``seal`` is the department's signature of ``payload``, offline.

    ``key`` is what :meth:`Transit.public_keys` returns (or the seal-keys endpoint serves):
    ``{"type": "ed25519" | "ecdsa-p256", "keys": {"1": public key, ...}}``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    try:
        _prefix, version, sig_b64 = seal.split(":", 2)
        public = key["keys"][version.removeprefix("v")]
        signature = base64.b64decode(sig_b64, validate=True)
    except (ValueError, KeyError, TypeError):
        return False
    try:
        if key["type"] == "ed25519":
            ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(public)).verify(
                signature, payload
            )
            return True
        if key["type"] == "ecdsa-p256":
            pub = serialization.load_pem_public_key(public.encode())
            if not isinstance(pub, ec.EllipticCurvePublicKey):
                return False
            pub.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
            return True
    except (InvalidSignature, ValueError):
        return False
    return False
