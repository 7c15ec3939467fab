"""Automation logs in with a certificate from OpenBao's SSH CA, without the lab.

A local OpenBao dev server (in memory, loopback) gets the lab spec's identity plan applied as
`identity apply` does (so the automation AppRole, its policy and SSH role, and the controller's
credentials); a throwaway OpenSSH sshd on a loopback port trusts that CA and accepts, for the
account running the test, only the automation principal (as the hosts' ``ops`` account does).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from govcloud.errors import OperationError
from govcloud.spec import load_spec
from infra.plan import make_plan
from security.access import automation, certs, ssh_config
from security.audit import sshd
from security.identity import apply as identity_apply
from security.identity.plan import SSH_USER_MOUNT, IdentityPlan, make_identity_plan
from security.openbao.client import Bao, BaoForbidden, BaoInvalid, Endpoint
from security.openbao.cluster import Paths
from tests.baodev import ROOT_TOKEN, dev_openbao
from tests.toolchain.conftest import free_ports

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "examples" / "lab.yaml"
SSHD = Path(shutil.which("sshd") or "/usr/sbin/sshd")


@dataclass
class Identity:
    bao: Bao  # root
    plan: IdentityPlan
    paths: Paths


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Identity]:
    """The lab spec's identity plan applied to a dev OpenBao (root token as the one actor)."""
    with dev_openbao() as addr:
        root = Bao(Endpoint(addr), ROOT_TOKEN)
        spec = load_spec(LAB)
        plan = make_identity_plan(spec, make_plan(spec).hosts)
        paths = Paths(tmp_path_factory.mktemp("state"))
        actors = identity_apply.Actors(root, root, root)
        identity_apply.apply(actors, plan, identity_apply.Credentials.load(paths))
        yield Identity(root, plan, paths)


@dataclass
class Sshd:
    port: int
    log: Path
    authorized_keys: Path  # of the test's account: empty unless a test adds a key
    account: str
    home: Path

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


@pytest.fixture(scope="module")
def server(identity: Identity, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """sshd on a loopback port: trusts the user CA; the account running the test accepts the
    automation principal only, and no plain key."""
    if not SSHD.exists():
        pytest.fail("sshd is missing: apt-get install -y openssh-server (scripts/deps does)")
    if os.geteuid() != 0:
        pytest.skip("sshd with a loopback config of its own needs root here")
    home = tmp_path_factory.mktemp("sshd")
    account = getpass.getuser()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / "host_ed25519")],
        check=True,
    )
    ca = identity.bao.read_ssh_ca_public_key(mount_point=SSH_USER_MOUNT)
    (home / "user_ca.pub").write_text(ca + "\n")
    for d in ("principals", "authorized_keys"):
        (home / d).mkdir()
    principals = identity.plan.host_accounts["bao-1"][identity.plan.automation.account]
    (home / "principals" / account).write_text("\n".join(principals) + "\n")
    keys = home / "authorized_keys" / account
    keys.write_text("")
    (port,) = free_ports(1)
    log = home / "sshd.log"
    config = home / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\nHostKey {home / 'host_ed25519'}\n"
        f"PidFile {home / 'sshd.pid'}\nTrustedUserCAKeys {home / 'user_ca.pub'}\n"
        f"AuthorizedPrincipalsFile {home / 'principals'}/%u\n"
        f"AuthorizedKeysFile {home / 'authorized_keys'}/%u\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "PermitRootLogin prohibit-password\nLogLevel VERBOSE\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen(
        [str(SSHD), "-D", "-f", str(config), "-p", str(port), "-E", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while "Server listening" not in (log.read_text() if log.is_file() else ""):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = log.read_text() if log.is_file() else ""
                pytest.fail(f"sshd did not start: {err[-500:]}")
            time.sleep(0.1)
        yield Sshd(port, log, keys, account, home)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ssh(server: Sshd, key: Path, cert: Path | None, command: str = "echo logged-in") -> str:
    """Exit status and output of one ssh login with exactly this key (and certificate)."""
    args = [
        "ssh", "-F", "/dev/null", "-p", str(server.port), "-i", str(key),
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        "-o", f"CertificateFile={cert or '/dev/null'}",
    ]  # fmt: skip
    r = subprocess.run(
        [*args, f"{server.account}@127.0.0.1", command],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return f"{r.returncode} {r.stdout.strip()} {r.stderr.strip()}"


def _plain_key(path: Path) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    pub = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    path.with_name(path.name + ".pub").write_bytes(pub + b" provisioning\n")
    return path


def test_identity_apply_sets_up_automation_idempotently(identity: Identity) -> None:
    assert identity.paths.automation_file.stat().st_mode & 0o777 == 0o600
    again = identity_apply.apply(
        identity_apply.Actors(identity.bao, identity.bao, identity.bao),
        identity.plan,
        identity_apply.Credentials.load(identity.paths),
    )
    assert again.changed == []  # the grant and the controller's credentials kept


def test_automation_logs_in_with_a_certificate_its_key_id_in_the_log(
    identity: Identity, server: Sshd, tmp_path: Path
) -> None:
    said: list[str] = []
    creds = automation.login_credentials(
        ssh_config.Credentials("ops", _plain_key(tmp_path / "provisioning")),
        [],
        paths=identity.paths,
        environ={},
        connect=lambda: identity.bao,
        say=said.append,
    )
    assert creds.certificate is not None and creds.user == identity.plan.automation.account
    assert "automation certificate" in said[0], said
    assert creds.identity_file.stat().st_mode & 0o777 == 0o600
    left = certs.cert_valid_before(creds.certificate) - time.time()
    assert 25 * 60 < left <= 30 * 60 + 5
    out = _ssh(server, creds.identity_file, creds.certificate)
    assert out.startswith("0 logged-in"), out
    report = sshd.build(server.lines(), [], host="local")
    ids = [k for k in report.certificates if k.startswith(f"{server.account} <- automation-")]
    assert ids, server.lines()[-5:]
    assert not report.break_glass and not report.plain
    # a second run reuses the certificate: OpenBao is not asked again
    again = automation.login_credentials(
        ssh_config.Credentials("ops", tmp_path / "provisioning"),
        [],
        paths=identity.paths,
        environ={},
        connect=lambda: pytest.fail("signed again"),  # type: ignore[arg-type,return-value]
        say=said.append,
    )
    assert again == creds


def test_the_automation_identity_signs_nothing_else(identity: Identity) -> None:
    stored = __import__("json").loads(identity.paths.automation_file.read_text())
    bao = identity.bao.login_approle(stored["role_id"], stored["secret_id"], mount_point="approle")
    pub = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    with pytest.raises(BaoForbidden):
        bao.sign_ssh_key("system", pub, mount_point=SSH_USER_MOUNT)
    with pytest.raises(BaoInvalid):
        bao.sign_ssh_key(
            "automation", pub, mount_point=SSH_USER_MOUNT, valid_principals="govcloud-system-admins"
        )
    with pytest.raises(BaoForbidden):
        bao.read_kv_secret("anything", mount_point="kv-gat")


def test_the_security_administrator_cannot_widen_the_automation_grant(identity: Identity) -> None:
    security = identity.bao.with_token(identity.bao.create_token(["govcloud-security-admins"]))
    params = identity.plan.automation.approle_params()
    for widened in ("govcloud-automation,govcloud-system-admins", ["govcloud-system-admins"]):
        with pytest.raises(BaoForbidden):
            security.create_or_update_approle_role(
                "automation", mount_point="approle", **{**params, "token_policies": widened}
            )
    security.create_or_update_approle_role("automation", mount_point="approle", **params)


def test_a_certificate_for_another_principal_is_refused(
    identity: Identity, server: Sshd, tmp_path: Path
) -> None:
    """A department operator's certificate (principal dept-gat-operators): same CA, refused
    by the administrator account."""
    key = _plain_key(tmp_path / "operator")
    cert = tmp_path / "operator-cert.pub"
    cert.write_text(
        identity.bao.sign_ssh_key(
            "dept-gat",
            key.with_name("operator.pub").read_text().strip(),
            mount_point=SSH_USER_MOUNT,
            valid_principals="dept-gat-operators",
            cert_type="user",
        )
        + "\n"
    )
    assert "dept-gat-operators" not in (server.home / "principals" / server.account).read_text()
    out = _ssh(server, key, cert)
    assert out.startswith("255 ") and "Permission denied" in out, out


def test_the_key_without_its_certificate_is_refused(
    identity: Identity, server: Sshd, tmp_path: Path
) -> None:
    pair = automation.certificate(lambda: identity.bao, identity.paths)
    alone = tmp_path / "alone"  # not beside its certificate: ssh would pick that up
    shutil.copy(pair.private, alone)
    alone.chmod(0o600)
    out = _ssh(server, alone, None)
    assert out.startswith("255 ") and "Permission denied" in out, out


def test_break_glass_key_when_asked_and_reported(
    identity: Identity, server: Sshd, tmp_path: Path
) -> None:
    key = _plain_key(tmp_path / "provisioning")
    said: list[str] = []
    creds = automation.login_credentials(
        ssh_config.Credentials("ops", key),
        [],
        paths=identity.paths,
        environ={automation.BREAK_GLASS_ENV: "1"},
        connect=lambda: pytest.fail("no signing on break-glass"),  # type: ignore[arg-type,return-value]
        say=said.append,
    )
    assert creds.identity_file == key and creds.certificate is None
    assert "BREAK-GLASS" in said[0]
    out = _ssh(server, key, None)
    assert out.startswith("255 "), out  # not authorized on this host
    server.authorized_keys.write_text(key.with_name("provisioning.pub").read_text())
    try:
        out = _ssh(server, key, None)
    finally:
        server.authorized_keys.write_text("")
    assert out.startswith("0 logged-in"), out
    fp = sshd.key_fingerprint(key)
    keygen = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(key.with_name("provisioning.pub"))],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert keygen.stdout.split()[1] == fp
    report = sshd.build(server.lines(), [fp], host="local")
    use = report.break_glass[fp]
    assert use.count == 1 and use.users[server.account] == 1 and use.hosts["local"] == 1
    assert report.certificates  # the certificate logins stay apart


def test_openbao_down_breaks_glass_unless_forbidden(identity: Identity, tmp_path: Path) -> None:
    from security.openbao.client import BaoUnavailable

    paths = Paths(tmp_path / "state")  # credentials, but no certificate yet
    paths.automation_file.parent.mkdir(parents=True)
    shutil.copy(identity.paths.automation_file, paths.automation_file)

    def down() -> Bao:
        raise BaoUnavailable("no OpenBao node serves")

    base = ssh_config.Credentials("ops", tmp_path / "provisioning")
    said: list[str] = []
    got = automation.login_credentials(
        base, [], paths=paths, environ={}, connect=down, say=said.append
    )
    assert got == base and "OpenBao cannot sign" in said[0]
    with pytest.raises(OperationError, match="forbids the break-glass key"):
        automation.login_credentials(
            base, [], paths=paths, environ={automation.BREAK_GLASS_ENV: "0"}, connect=down
        )
