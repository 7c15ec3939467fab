"""The one OpenBao client of govcloud: an hvac wrapper with verb_noun methods and typed errors.

No raw hvac call leaves ``security/``: everything else talks to OpenBao through :class:`Bao`.
Each method says what it does (``read_kv_secret``, ``sign_ssh_key``), takes ``mount_point=``
where a mount is involved, and raises one of the exceptions below instead of hvac's, with a
message a user can act on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import hvac
import hvac.exceptions as hx
import requests

from govcloud.errors import OperationError

T = TypeVar("T")


class BaoError(OperationError):
    """OpenBao refused or failed a request."""


class BaoUnavailable(BaoError):
    """No answer from OpenBao (down, unreachable, TLS failure)."""


class BaoSealed(BaoError):
    """OpenBao is sealed or not initialised."""


class BaoUnauthorized(BaoError):
    """Bad credentials: a login failed or a token is not valid any more."""


class BaoForbidden(BaoError):
    """The token's policies do not allow this request."""


class BaoNotFound(BaoError):
    """Nothing at that path."""


class BaoInvalid(BaoError):
    """OpenBao rejected the request's content."""


class BaoMfaRequired(BaoError):
    """The login needs a second factor (TOTP) and none was given."""


class BaoAuditFailure(BaoError):
    """OpenBao refused the request because no audit device could record it (fail closed)."""


def _wrap(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except hx.Forbidden as exc:
        raise BaoForbidden(f"{what}: permission denied") from exc
    except hx.Unauthorized as exc:
        raise BaoUnauthorized(f"{what}: not authenticated ({_first(exc)})") from exc
    except hx.InvalidPath as exc:
        raise BaoNotFound(f"{what}: nothing there") from exc
    except hx.InvalidRequest as exc:
        text = _first(exc)
        if "permission denied" in text:
            raise BaoForbidden(f"{what}: permission denied") from exc
        raise BaoInvalid(f"{what}: {text}") from exc
    except hx.VaultNotInitialized as exc:
        raise BaoSealed(f"{what}: OpenBao is not initialised") from exc
    except hx.VaultDown as exc:
        raise BaoSealed(f"{what}: OpenBao is sealed") from exc
    except hx.InternalServerError as exc:
        text = _first(exc)
        if "audit" in text.lower() or "internal error" in text.lower():
            raise BaoAuditFailure(
                f"{what}: OpenBao refused the request ({text}); no audit device could record "
                "it (fail closed)"
            ) from exc
        raise BaoError(f"{what}: server error: {text}") from exc
    except hx.VaultError as exc:
        raise BaoError(f"{what}: {_first(exc)}") from exc
    except requests.exceptions.SSLError as exc:
        raise BaoUnavailable(f"{what}: TLS verification failed: {exc}") from exc
    except requests.exceptions.RequestException as exc:
        raise BaoUnavailable(f"{what}: OpenBao did not answer ({type(exc).__name__})") from exc


def _first(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if errors:
        return "; ".join(str(e) for e in errors)
    return str(exc).split(", on ")[0]


def totp_code(secret_b32: str, at: float | None = None, period: int = 30, digits: int = 6) -> str:
    """RFC 6238 TOTP (SHA-1), the algorithm OpenBao's TOTP MFA method uses by default."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // period)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


@dataclass(frozen=True)
class Endpoint:
    """Where OpenBao answers and how its certificate is checked."""

    url: str
    ca_cert: Path | None = None
    timeout: float = 10.0


class Bao:
    """An OpenBao client bound to one endpoint and (optionally) one token."""

    def __init__(self, endpoint: Endpoint, token: str | None = None) -> None:
        self.endpoint = endpoint
        verify: bool | str = str(endpoint.ca_cert) if endpoint.ca_cert else True
        self._client = hvac.Client(
            url=endpoint.url, token=token, verify=verify, timeout=endpoint.timeout
        )

    @property
    def token(self) -> str | None:
        return self._client.token

    def with_token(self, token: str) -> Bao:
        return Bao(self.endpoint, token)

    # -- generic (kept private: callers use the verb_noun methods) ---------------------------

    def _read(self, path: str, what: str) -> dict[str, Any] | None:
        return _wrap(what, lambda: self._client.read(path))

    def _write(self, path: str, what: str, **data: Any) -> Any:
        return _wrap(what, lambda: self._client.write_data(path, data=data))

    def _list(self, path: str, what: str) -> list[str]:
        resp = _wrap(what, lambda: self._client.list(path))
        return list((resp or {}).get("data", {}).get("keys", []))

    def _delete(self, path: str, what: str) -> None:
        _wrap(what, lambda: self._client.delete(path))

    # -- cluster -----------------------------------------------------------------------------

    def read_health(self) -> dict[str, Any]:
        """``sys/health``, whatever the node's state (sealed, standby, uninitialised)."""

        def call() -> dict[str, Any]:
            resp = self._client.adapter.get(
                "/v1/sys/health",
                params={
                    "standbyok": "true",
                    "sealedcode": 200,
                    "uninitcode": 200,
                    "standbycode": 200,
                    "perfstandbyok": "true",
                },
            )
            return resp if isinstance(resp, dict) else resp.json()

        return _wrap("read health", call)

    def read_seal_status(self) -> dict[str, Any]:
        return _wrap("read seal status", lambda: dict(self._client.sys.read_seal_status()))

    def initialize_cluster(self, shares: int, threshold: int) -> dict[str, Any]:
        return _wrap(
            "initialise",
            lambda: dict(
                self._client.sys.initialize(secret_shares=shares, secret_threshold=threshold)
            ),
        )

    def submit_unseal_key(self, key: str) -> dict[str, Any]:
        return _wrap("unseal", lambda: dict(self._client.sys.submit_unseal_key(key)))

    def read_raft_configuration(self) -> list[dict[str, Any]]:
        resp = self._read("sys/storage/raft/configuration", "read raft configuration") or {}
        return list(resp.get("data", {}).get("config", {}).get("servers", []))

    def read_leader(self) -> dict[str, Any]:
        return _wrap("read leader", lambda: dict(self._client.sys.read_leader_status()))

    # -- tokens ------------------------------------------------------------------------------

    def lookup_token(self) -> dict[str, Any]:
        resp = _wrap("look up token", lambda: self._client.auth.token.lookup_self())
        return dict(resp.get("data", {}))

    def revoke_token(self) -> None:
        _wrap("revoke token", lambda: self._client.auth.token.revoke_self())

    def create_token(self, policies: list[str], *, ttl: str = "1h", **params: Any) -> str:
        """A child token with ``policies`` (a service's own token); returns the token."""
        resp = _wrap(
            "create token",
            lambda: self._client.auth.token.create(policies=policies, ttl=ttl, **params),
        )
        return str(resp["auth"]["client_token"])

    # -- auth methods ------------------------------------------------------------------------

    def list_auth_methods(self) -> dict[str, Any]:
        resp = _wrap("list auth methods", lambda: self._client.sys.list_auth_methods())
        return dict(resp.get("data", resp))

    def enable_auth_method(self, method_type: str, *, mount_point: str) -> None:
        _wrap(
            f"enable auth {mount_point}",
            lambda: self._client.sys.enable_auth_method(method_type, path=mount_point),
        )

    def tune_auth_method(self, *, mount_point: str, **config: Any) -> None:
        self._write(f"sys/auth/{mount_point}/tune", f"tune auth {mount_point}", **config)

    def create_or_update_userpass_user(
        self, username: str, password: str | None, *, mount_point: str, **params: Any
    ) -> None:
        data = dict(params)
        if password is not None:
            data["password"] = password
        self._write(f"auth/{mount_point}/users/{username}", f"write user {username}", **data)

    def read_userpass_user(self, username: str, *, mount_point: str) -> dict[str, Any] | None:
        try:
            resp = self._read(f"auth/{mount_point}/users/{username}", f"read user {username}")
        except BaoNotFound:
            return None
        return (resp or {}).get("data")

    def login_userpass(
        self,
        username: str,
        password: str,
        *,
        mount_point: str,
        totp_secret: str | None = None,
        passcode: str | None = None,
    ) -> Bao:
        """Log in; answer the TOTP challenge when the login requires one. Returns a new client
        holding the user's token."""

        def call() -> Any:
            return self._client.adapter.post(
                f"/v1/auth/{mount_point}/login/{username}", json={"password": password}
            )

        resp = _wrap(f"log in as {username}", call)
        auth = (resp or {}).get("auth") or {}
        requirement = auth.get("mfa_requirement")
        if requirement:
            if passcode is None and totp_secret is None:
                raise BaoMfaRequired(
                    f"log in as {username}: a TOTP passcode is required (--totp, or the "
                    "lab's enrolment file)"
                )
            code = passcode or totp_code(totp_secret or "")
            methods = requirement.get("mfa_constraints", {})
            payload = {
                m["id"]: [code]
                for constraint in methods.values()
                for m in constraint.get("any", [])
            }
            request_id = requirement["mfa_request_id"]

            def validate() -> Any:
                return self._client.adapter.post(
                    "/v1/sys/mfa/validate",
                    json={"mfa_request_id": request_id, "mfa_payload": payload},
                )

            resp = _wrap(f"MFA for {username}", validate)
            auth = (resp or {}).get("auth") or {}
        token = auth.get("client_token")
        if not token:
            raise BaoUnauthorized(f"log in as {username}: no token returned")
        return self.with_token(token)

    # -- AppRole (machine identities) --------------------------------------------------------

    def read_approle_role(self, name: str, *, mount_point: str) -> dict[str, Any] | None:
        try:
            resp = self._read(f"auth/{mount_point}/role/{name}", f"read AppRole role {name}")
        except BaoNotFound:
            return None
        data = (resp or {}).get("data")
        return dict(data) if data else None

    def create_or_update_approle_role(self, name: str, *, mount_point: str, **params: Any) -> None:
        self._write(f"auth/{mount_point}/role/{name}", f"write AppRole role {name}", **params)

    def read_approle_role_id(self, name: str, *, mount_point: str) -> str:
        resp = self._read(f"auth/{mount_point}/role/{name}/role-id", f"read role id of {name}")
        role_id = ((resp or {}).get("data") or {}).get("role_id")
        if not role_id:
            raise BaoNotFound(f"read role id of {name}: no AppRole role {name}")
        return str(role_id)

    def generate_approle_secret_id(
        self, name: str, *, mount_point: str, **params: Any
    ) -> dict[str, Any]:
        """A new secret id for the role (``secret_id``, ``secret_id_accessor``,
        ``secret_id_ttl``, returned once)."""
        resp = self._write(
            f"auth/{mount_point}/role/{name}/secret-id", f"issue a secret id for {name}", **params
        )
        return dict((resp or {}).get("data") or {})

    def login_approle(self, role_id: str, secret_id: str, *, mount_point: str) -> Bao:
        """Log in as a machine identity; returns a new client holding its token."""

        def call() -> Any:
            return self._client.adapter.post(
                f"/v1/auth/{mount_point}/login",
                json={"role_id": role_id, "secret_id": secret_id},
            )

        resp = _wrap(f"log in with AppRole {mount_point}", call)
        token = ((resp or {}).get("auth") or {}).get("client_token")
        if not token:
            raise BaoUnauthorized(f"log in with AppRole {mount_point}: no token returned")
        return self.with_token(token)

    # -- identity ----------------------------------------------------------------------------

    def create_or_update_entity(self, name: str, **params: Any) -> str:
        self._write(f"identity/entity/name/{name}", f"write entity {name}", **params)
        resp = self._read(f"identity/entity/name/{name}", f"read entity {name}") or {}
        return str(resp["data"]["id"])

    def read_entity(self, name: str) -> dict[str, Any] | None:
        try:
            resp = self._read(f"identity/entity/name/{name}", f"read entity {name}")
        except BaoNotFound:
            return None
        return (resp or {}).get("data")

    def create_entity_alias(self, name: str, entity_id: str, mount_accessor: str) -> None:
        self._write(
            "identity/entity-alias",
            f"alias {name}",
            name=name,
            canonical_id=entity_id,
            mount_accessor=mount_accessor,
        )

    def create_or_update_group(self, name: str, **params: Any) -> str:
        self._write(f"identity/group/name/{name}", f"write group {name}", **params)
        resp = self._read(f"identity/group/name/{name}", f"read group {name}") or {}
        return str(resp["data"]["id"])

    def read_group(self, name: str) -> dict[str, Any] | None:
        try:
            resp = self._read(f"identity/group/name/{name}", f"read group {name}")
        except BaoNotFound:
            return None
        return (resp or {}).get("data")

    def list_groups(self) -> list[str]:
        try:
            return self._list("identity/group/name", "list groups")
        except BaoNotFound:
            return []

    # -- MFA ---------------------------------------------------------------------------------

    def list_totp_methods(self) -> list[dict[str, Any]]:
        try:
            resp = self._client.adapter.request("LIST", "/v1/identity/mfa/method/totp")
        except hx.InvalidPath:
            return []
        except hx.VaultError as exc:
            raise BaoError(f"list TOTP methods: {_first(exc)}") from exc
        data = (resp or {}).get("data", {})
        return [data["key_info"][k] | {"id": k} for k in data.get("keys", [])]

    def create_totp_method(self, **params: Any) -> str:
        resp = self._write("identity/mfa/method/totp", "create TOTP method", **params)
        return str(resp["data"]["method_id"])

    def generate_totp_secret(self, method_id: str, entity_id: str) -> str:
        """Admin enrolment: a new TOTP secret for an entity (returned once)."""
        resp = self._write(
            "identity/mfa/method/totp/admin-generate",
            "enrol TOTP",
            method_id=method_id,
            entity_id=entity_id,
        )
        url = str((resp or {}).get("data", {}).get("url", ""))
        from urllib.parse import parse_qs, urlparse

        secret = parse_qs(urlparse(url).query).get("secret", [""])[0]
        if not secret:
            raise BaoError("enrol TOTP: no secret returned")
        return secret

    def destroy_totp_secret(self, method_id: str, entity_id: str) -> None:
        self._write(
            "identity/mfa/method/totp/admin-destroy",
            "remove TOTP enrolment",
            method_id=method_id,
            entity_id=entity_id,
        )

    def create_or_update_mfa_enforcement(self, name: str, **params: Any) -> None:
        self._write(f"identity/mfa/login-enforcement/{name}", f"MFA enforcement {name}", **params)

    # -- policies ----------------------------------------------------------------------------

    def create_or_update_policy(self, name: str, policy: str) -> None:
        self._write(f"sys/policies/acl/{name}", f"write policy {name}", policy=policy)

    def read_policy(self, name: str) -> str | None:
        try:
            resp = self._read(f"sys/policies/acl/{name}", f"read policy {name}")
        except BaoNotFound:
            return None
        return (resp or {}).get("data", {}).get("policy")

    def list_policies(self) -> list[str]:
        return self._list("sys/policies/acl", "list policies")

    def delete_policy(self, name: str) -> None:
        self._delete(f"sys/policies/acl/{name}", f"delete policy {name}")

    # -- secrets engines ---------------------------------------------------------------------

    def list_secrets_engines(self) -> dict[str, Any]:
        resp = _wrap("list mounts", lambda: self._client.sys.list_mounted_secrets_engines())
        return dict(resp.get("data", resp))

    def enable_secrets_engine(
        self, backend_type: str, *, mount_point: str, options: dict[str, Any] | None = None
    ) -> None:
        _wrap(
            f"enable {mount_point}",
            lambda: self._client.sys.enable_secrets_engine(
                backend_type, path=mount_point, options=options
            ),
        )

    def tune_secrets_engine(self, *, mount_point: str, **config: Any) -> None:
        self._write(f"sys/mounts/{mount_point}/tune", f"tune {mount_point}", **config)

    # -- KV v2 -------------------------------------------------------------------------------

    def read_kv_secret(self, path: str, *, mount_point: str) -> dict[str, Any]:
        resp = self._read(f"{mount_point}/data/{path}", f"read {mount_point}/{path}")
        if resp is None:
            raise BaoNotFound(f"read {mount_point}/{path}: nothing there")
        return dict(resp.get("data", {}).get("data", {}))

    def write_kv_secret(self, path: str, secret: dict[str, Any], *, mount_point: str) -> None:
        self._write(f"{mount_point}/data/{path}", f"write {mount_point}/{path}", data=secret)

    def list_kv_secrets(self, path: str = "", *, mount_point: str) -> list[str]:
        return self._list(f"{mount_point}/metadata/{path}", f"list {mount_point}/{path}")

    # -- SSH ---------------------------------------------------------------------------------

    def configure_ssh_ca(self, *, mount_point: str) -> str:
        """The CA's public key, generating the CA key pair on first use."""
        try:
            resp = self._read(f"{mount_point}/config/ca", f"read {mount_point} CA")
            key = (resp or {}).get("data", {}).get("public_key")
            if key:
                return str(key).strip()
        except (BaoNotFound, BaoInvalid):  # "no default issuer currently configured"
            pass
        resp = self._write(
            f"{mount_point}/config/ca",
            f"generate {mount_point} CA",
            generate_signing_key=True,
            key_type="ssh-ed25519",
        )
        return str(resp["data"]["public_key"]).strip()

    def read_ssh_ca_public_key(self, *, mount_point: str) -> str:
        resp = self._read(f"{mount_point}/config/ca", f"read {mount_point} CA") or {}
        key = resp.get("data", {}).get("public_key")
        if not key:
            raise BaoNotFound(f"{mount_point}: no CA configured")
        return str(key).strip()

    def create_or_update_ssh_role(self, name: str, *, mount_point: str, **params: Any) -> None:
        self._write(f"{mount_point}/roles/{name}", f"write SSH role {name}", **params)

    def sign_ssh_key(self, role: str, public_key: str, *, mount_point: str, **params: Any) -> str:
        resp = self._write(
            f"{mount_point}/sign/{role}",
            f"sign an SSH key with {mount_point}/{role}",
            public_key=public_key,
            **params,
        )
        return str(resp["data"]["signed_key"]).strip()

    # -- audit -------------------------------------------------------------------------------

    def list_audit_devices(self) -> dict[str, Any]:
        resp = _wrap("list audit devices", lambda: self._client.sys.list_enabled_audit_devices())
        data = resp.get("data", resp) if isinstance(resp, dict) else {}
        return {k: v for k, v in data.items() if isinstance(v, dict)}

    def calculate_audit_hash(self, device: str, value: str) -> str:
        resp = self._write(f"sys/audit-hash/{device}", f"hash with {device}", input=value)
        return str(resp["data"]["hash"])

    # -- PKI (X.509) -------------------------------------------------------------------------

    def generate_intermediate_csr(
        self, common_name: str, *, mount_point: str, **params: Any
    ) -> str:
        """A new key pair inside the mount (it never leaves OpenBao) and its CSR, to be signed
        by the offline root."""
        resp = self._write(
            f"{mount_point}/intermediate/generate/internal",
            f"generate an intermediate CSR in {mount_point}",
            common_name=common_name,
            **params,
        )
        return str(resp["data"]["csr"]).strip()

    def set_signed_intermediate(self, pem_bundle: str, *, mount_point: str) -> list[str]:
        """Import the signed intermediate (with its chain); returns the issuer ids imported."""
        resp = self._write(
            f"{mount_point}/intermediate/set-signed",
            f"import the signed intermediate into {mount_point}",
            certificate=pem_bundle,
        )
        return [str(i) for i in ((resp or {}).get("data") or {}).get("imported_issuers") or []]

    def read_pki_issuer(
        self, issuer_ref: str = "default", *, mount_point: str
    ) -> dict[str, Any] | None:
        """The issuer (``certificate``, ``ca_chain``, ``issuer_id``...), or None when the mount
        has none yet."""
        try:
            resp = self._read(
                f"{mount_point}/issuer/{issuer_ref}", f"read issuer {issuer_ref} of {mount_point}"
            )
        except (BaoNotFound, BaoInvalid):
            return None
        except BaoError as exc:  # a 500 "no default issuer currently configured"
            if "no default issuer" in str(exc):
                return None
            raise
        data = (resp or {}).get("data")
        return dict(data) if data else None

    def set_default_pki_issuer(self, issuer_id: str, *, mount_point: str) -> None:
        self._write(
            f"{mount_point}/config/issuers",
            f"set the default issuer of {mount_point}",
            default=issuer_id,
        )

    def read_pki_role(self, name: str, *, mount_point: str) -> dict[str, Any] | None:
        try:
            resp = self._read(f"{mount_point}/roles/{name}", f"read PKI role {name}")
        except BaoNotFound:
            return None
        data = (resp or {}).get("data")
        return dict(data) if data else None

    def create_or_update_pki_role(self, name: str, *, mount_point: str, **params: Any) -> None:
        self._write(f"{mount_point}/roles/{name}", f"write PKI role {name}", **params)

    def issue_pki_certificate(
        self, role: str, common_name: str, *, mount_point: str, **params: Any
    ) -> dict[str, Any]:
        """A new key and certificate from ``role`` (``certificate``, ``private_key``,
        ``issuing_ca``, ``ca_chain``, ``serial_number``, ``expiration``). The key is generated
        by OpenBao and returned once; the issue is in the audit trail."""
        resp = self._write(
            f"{mount_point}/issue/{role}",
            f"issue a certificate for {common_name} with {mount_point}/{role}",
            common_name=common_name,
            **params,
        )
        return dict(resp["data"])

    def list_pki_certificates(self, *, mount_point: str) -> list[str]:
        """Serial numbers of the certificates the mount has issued (and stored)."""
        try:
            return self._list(f"{mount_point}/certs", f"list certificates of {mount_point}")
        except BaoNotFound:
            return []

    def read_pki_certificate(self, serial: str, *, mount_point: str) -> str | None:
        try:
            resp = self._read(f"{mount_point}/cert/{serial}", f"read certificate {serial}")
        except BaoNotFound:
            return None
        cert = ((resp or {}).get("data") or {}).get("certificate")
        return str(cert) if cert else None

    def revoke_pki_certificate(self, serial: str, *, mount_point: str) -> None:
        self._write(f"{mount_point}/revoke", f"revoke certificate {serial}", serial_number=serial)

    def tidy_pki(self, *, mount_point: str, safety_buffer: str = "72h") -> None:
        """Forget expired certificates and revoked entries (a background job in OpenBao)."""
        self._write(
            f"{mount_point}/tidy",
            f"tidy {mount_point}",
            tidy_cert_store=True,
            tidy_revoked_certs=True,
            safety_buffer=safety_buffer,
        )

    # -- transit (the e-seal: keys that never leave OpenBao) ---------------------------------

    def create_transit_key(self, name: str, *, mount_point: str, key_type: str = "ed25519") -> None:
        """Create the key if it does not exist (an existing key is left as it is)."""
        self._write(f"{mount_point}/keys/{name}", f"create key {mount_point}/{name}", type=key_type)

    def read_transit_key(self, name: str, *, mount_point: str) -> dict[str, Any]:
        """The key's type and, per version, its public key (never the private key)."""
        resp = self._read(f"{mount_point}/keys/{name}", f"read key {mount_point}/{name}")
        if resp is None:
            raise BaoNotFound(f"read key {mount_point}/{name}: nothing there")
        data = resp.get("data", {})
        return {
            "type": data.get("type"),
            "keys": {
                str(v): k.get("public_key")
                for v, k in data.get("keys", {}).items()
                if isinstance(k, dict)
            },
        }

    def sign_transit_data(self, name: str, data: bytes, *, mount_point: str) -> str:
        """OpenBao signs ``data`` with the key: ``<prefix>:v<version>:<base64 signature>``."""
        resp = self._write(
            f"{mount_point}/sign/{name}",
            f"sign with {mount_point}/{name}",
            input=base64.b64encode(data).decode(),
        )
        return str(resp["data"]["signature"])

    def verify_transit_signature(
        self, name: str, data: bytes, signature: str, *, mount_point: str
    ) -> bool:
        resp = self._write(
            f"{mount_point}/verify/{name}",
            f"verify with {mount_point}/{name}",
            input=base64.b64encode(data).decode(),
            signature=signature,
        )
        return bool(resp["data"]["valid"])
