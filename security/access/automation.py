"""How automation logs in to the hosts: a short-lived certificate, or the break-glass key.

``hosts apply``, ``identity apply`` and the Pulumi plays log in as the hosts' administrator
account. Once the identity system exists they do it with an SSH certificate that OpenBao's SSH
CA signs for the automation identity (an AppRole whose credentials ``identity apply`` issued to
the controller): a new ed25519 key per certificate, kept 0600 under the state and reused while
the certificate has :data:`REUSE_MIN_LEFT` seconds left. Each signature is in OpenBao's audit
log, and each login in the hosts' sshd log with the certificate's key id.

The lab's plain provisioning key is the break-glass path, used

- before the identity system exists (no automation credentials yet: the very first runs);
- when asked for: ``GOVCLOUD_BREAK_GLASS=1``;
- when OpenBao cannot sign (sealed, unreachable), unless ``GOVCLOUD_BREAK_GLASS=0`` forbids
  it (then the run stops instead).

A refusal by OpenBao (credentials revoked, grant withdrawn) never falls back: it stops the run.
Every plain-key login shows in ``govcloud audit report`` under "break-glass logins".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from govcloud.errors import OperationError
from infra.inventory import InvHost
from security.access import certs, ssh_config
from security.identity.plan import SSH_USER_MOUNT, AutomationPlan
from security.openbao.client import Bao, BaoError, BaoSealed, BaoUnavailable
from security.openbao.cluster import Paths, private_dirs, read_secret

BREAK_GLASS_ENV = "GOVCLOUD_BREAK_GLASS"
REUSE_MIN_LEFT = 20 * 60  # a certificate is reused only with this much validity left
CERTIFICATE = "certificate"
BREAK_GLASS = "break-glass"
_YES = ("1", "true", "yes", "on")
_NO = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Decision:
    mode: str  # CERTIFICATE or BREAK_GLASS
    reason: str


def decide(setting: str | None, identity_ready: bool) -> Decision:
    """Certificate or break-glass key, from ``$GOVCLOUD_BREAK_GLASS`` and whether the
    automation identity's credentials exist on the controller."""
    value = (setting or "").strip().lower()
    if value and value not in _YES + _NO:
        raise OperationError(f"{BREAK_GLASS_ENV}={setting!r}: give 1 (use the key) or 0")
    if value in _YES:
        return Decision(BREAK_GLASS, f"{BREAK_GLASS_ENV}={setting} asks for it")
    if not identity_ready:
        return Decision(
            BREAK_GLASS, "the identity system has no automation identity yet (identity apply)"
        )
    return Decision(CERTIFICATE, "the automation identity signs a short-lived certificate")


def fallback_allowed(setting: str | None) -> bool:
    """Whether a run may use the break-glass key when OpenBao cannot sign."""
    return (setting or "").strip().lower() not in _NO


# -- keys and certificates ------------------------------------------------------------------


def _pair(directory: Path) -> certs.KeyPair:
    return certs.KeyPair(directory / "id_ed25519", directory / "id_ed25519.pub")


def _grant(plan: AutomationPlan) -> certs.Grant:
    return certs.Grant(plan.role, plan.principal)


def current(paths: Paths, plan: AutomationPlan, min_left: float = REUSE_MIN_LEFT) -> certs.KeyPair:
    """The newest key whose certificate is for the automation principal and still has
    ``min_left`` seconds; raises LookupError when there is none."""
    root = paths.automation_keys
    found = sorted(root.iterdir(), reverse=True) if root.is_dir() else []
    for directory in found:
        pair = _pair(directory)
        if certs.usable(pair, _grant(plan), margin=min_left) and certs.same_key(
            pair.certificate, pair.public
        ):
            return pair
    raise LookupError("no usable automation certificate")


def _new_key(paths: Paths) -> certs.KeyPair:
    """A fresh ed25519 key in a directory of its own (named by time, so the newest sorts
    last): a run still using the previous one is never disturbed."""
    directory = paths.automation_keys / f"{int(time.time()):012d}-{secrets.token_hex(4)}"
    private_dirs(directory)
    pair = _pair(directory)
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    fd = os.open(pair.private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    pair.public.write_bytes(pub + b" automation@govcloud\n")
    return pair


def _forget_expired(paths: Paths, keep: Path) -> None:
    for directory in paths.automation_keys.iterdir():
        if (
            directory != keep
            and certs.cert_valid_before(_pair(directory).certificate) < time.time()
        ):
            shutil.rmtree(directory, ignore_errors=True)


def approle_login(connect: Callable[[], Bao], paths: Paths, plan: AutomationPlan) -> Bao:
    """A client logged in as the automation identity with the controller's AppRole
    credentials (a 5-minute token; revoke it when done)."""
    stored = read_secret(paths.automation_file)
    if not stored or not stored.get("role_id") or not stored.get("secret_id"):
        raise OperationError(
            f"no automation credentials in {paths.automation_file}: run `govcloud identity "
            "apply` (the system administrator issues them)"
        )
    return connect().login_approle(
        str(stored["role_id"]), str(stored["secret_id"]), mount_point=plan.mount
    )


def certificate(
    connect: Callable[[], Bao],
    paths: Paths,
    plan: AutomationPlan | None = None,
    *,
    reuse: bool = True,
) -> certs.KeyPair:
    """The automation's key and certificate: the current one while it has
    :data:`REUSE_MIN_LEFT` seconds, else a new key signed by OpenBao's SSH CA after an AppRole
    login with the controller's credentials (the token is revoked once it has signed)."""
    plan = plan or AutomationPlan()
    private_dirs(paths.automation_keys)
    with (paths.automation_keys.parent / ".automation.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one signer at a time (parallel plays)
        if reuse:
            try:
                return current(paths, plan)
            except LookupError:
                pass
        bao = approle_login(connect, paths, plan)
        pair = _new_key(paths)
        signed = bao.sign_ssh_key(
            plan.role,
            pair.public.read_text().strip(),
            mount_point=SSH_USER_MOUNT,
            valid_principals=plan.principal,
            cert_type="user",
        )
        pair.certificate.write_text(signed + "\n")
        os.chmod(pair.certificate, 0o600)
        with contextlib.suppress(BaoError):  # it expires within minutes anyway
            bao.revoke_token()
        _forget_expired(paths, pair.private.parent)
        return pair


# -- the one decision -----------------------------------------------------------------------


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def login_credentials(
    break_glass: ssh_config.Credentials,
    hosts: list[InvHost],
    *,
    paths: Paths | None = None,
    environ: Mapping[str, str] | None = None,
    connect: Callable[[], Bao] | None = None,
    say: Callable[[str], None] = _stderr,
) -> ssh_config.Credentials:
    """What automation logs in to the hosts with: the automation certificate (account, key,
    certificate) when the identity system can give one, else ``break_glass`` (the plain
    provisioning key). Says which, and why."""
    from security.openbao import cluster

    paths = paths or Paths.default()
    env = os.environ if environ is None else environ
    setting = env.get(BREAK_GLASS_ENV)
    decision = decide(setting, paths.automation_file.is_file())
    plan = AutomationPlan()
    if decision.mode == CERTIFICATE:
        try:
            pair = certificate(connect or (lambda: cluster.connect(hosts, paths)), paths, plan)
        except (BaoSealed, BaoUnavailable) as exc:
            if not fallback_allowed(setting):
                raise OperationError(
                    f"OpenBao cannot sign the automation certificate ({exc}) and "
                    f"{BREAK_GLASS_ENV}={setting} forbids the break-glass key: unseal OpenBao "
                    "(govcloud identity apply) or allow the key for this run"
                ) from exc
            decision = Decision(BREAK_GLASS, f"OpenBao cannot sign ({exc})")
        else:
            left = (certs.cert_valid_before(pair.certificate) - time.time()) / 60
            say(
                f"SSH login: {plan.account} with an automation certificate from OpenBao's SSH "
                f"CA (principal {plan.principal}, {left:.0f} min left)"
            )
            return ssh_config.Credentials(plan.account, pair.private, pair.certificate)
    say(
        f"SSH login: BREAK-GLASS key {break_glass.identity_file} for {break_glass.user}: "
        f"{decision.reason}. Every such login is listed by `govcloud audit report`."
    )
    return break_glass
