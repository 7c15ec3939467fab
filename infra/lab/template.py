"""The one cached Debian bookworm image every lab host is cloned from.

Built once with ``lxc-create -t debian`` (debootstrap; about a minute or two on a fresh machine,
most of it downloading), then baked: the network left to LXC (``iface eth0 inet manual``, or boot
stalls on dhclient), services that must not run in every container disabled, nftables loading
its saved ruleset at boot. Containers cannot reach package mirrors, so every package a host
needs is in it. The image's name carries a hash of its recipe, so a new recipe builds a new
image instead of changing the one that existing clones are layered on.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from govcloud.errors import OperationError
from infra.inventory import ADMIN_USER
from infra.lab.lxc import Lxc, locked, tail

RELEASE = "bookworm"
PACKAGES: tuple[str, ...] = (
    "openssh-server",
    "python3",
    "python3-apt",
    "sudo",
    "nftables",
    "auditd",
    "chrony",
    "rsyslog",
    "rsyslog-openssl",  # log shipping to the log host over TLS (the logship and loghost roles)
    "iproute2",
    "curl",
    "iputils-ping",
    "netcat-openbsd",
    "ca-certificates",
    "less",
    "procps",
    "postgresql",  # enabled on hosts of the "hall" profile only
    # the online hall (clusters/apps/hall/debian-packages.txt): the app runs on Debian's own
    # aiohttp and asyncpg behind nginx; the hall playbook enables nginx on the hall hosts
    "python3-aiohttp",
    "python3-asyncpg",
    "nginx",
    "libpam-pwquality",  # password complexity (the baseline role configures it)
    "logrotate",
    "aide",  # file integrity: a baseline after convergence, a scheduled check (hardening)
    "acct",  # process accounting (hardening)
    # Kubernetes worker nodes (the compute hosts): Debian's runc under containerd, and the
    # iptables-nft and ipset tools kube-router's policy controller drives
    "runc",
    "iptables",
    "ipset",
    "conntrack",
)

# Installed but not started by default: postgresql and nginx (hall hosts enable them); auditd (the
# kernel's audit is not namespaced: one auditd per container would fight over the machine's audit
# log).
DISABLED = ("postgresql.service", "nginx.service", "auditd.service")
ENABLED = ("nftables.service", "ssh.service")
BAKE_VERSION = "3"  # 3: every security update applied at build
READY = "govcloud-image-ready"
BUILD_TIMEOUT = 1800.0
UPGRADE_TIMEOUT = 900.0

INTERFACES = """\
# LXC configures the addresses before init starts; ifupdown must not run dhclient.
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet manual
"""

BASE_CONFIG = """\
# govcloud lab image: no network until a clone gets its own veths
lxc.net.0.type = empty
"""


def recipe() -> str:
    return "\n".join([RELEASE, BAKE_VERSION, *PACKAGES, "-", *DISABLED, "+", *ENABLED])


def image_name() -> str:
    """The cached image's container name: ``govcloud-<release>-<hash of the recipe>``."""
    return f"govcloud-{RELEASE}-{hashlib.sha256(recipe().encode()).hexdigest()[:8]}"


def is_image(name: str) -> bool:
    return name.startswith(f"govcloud-{RELEASE}-") or name.startswith("govcloud-image-")


def image_ready(lxc: Lxc, name: str | None = None) -> bool:
    name = name or image_name()
    return lxc.exists(name) and (lxc.lxcpath / name / READY).is_file()


def rootfs(lxc: Lxc, name: str) -> Path:
    return lxc.lxcpath / name / "rootfs"


def ensure_image(
    lxc: Lxc, cache_dir: Path, progress: Callable[[str], None] | None = None
) -> tuple[str, bool]:
    """The image's name, building it first when missing; the bool says whether it was built."""
    say = progress or (lambda _m: None)
    name = image_name()
    if image_ready(lxc, name):
        return name, False
    with locked(lxc.lxcpath / ".image.lock", "the image build", say):
        if image_ready(lxc, name):  # built by the run we waited for
            return name, False
        return name, _build(lxc, name, cache_dir, say)


def _build(lxc: Lxc, name: str, cache_dir: Path, say: Callable[[str], None]) -> bool:
    if lxc.exists(name) or (lxc.lxcpath / name).exists():
        say(f"image {name}: removing an incomplete build")
        lxc.destroy(name)
    cache_dir.mkdir(parents=True, exist_ok=True)
    log = cache_dir / "image-build.log"
    conf = cache_dir / "image.conf"
    conf.write_text(BASE_CONFIG)
    say(f"image {name}: building Debian {RELEASE} (debootstrap; a few minutes, once)")
    env = dict(
        os.environ, LXC_CACHE_PATH=str(cache_dir / "debootstrap"), DEBIAN_FRONTEND="noninteractive"
    )
    argv = [
        "lxc-create",
        "-P",
        str(lxc.lxcpath),
        "-n",
        name,
        "-f",
        str(conf),
        "-t",
        "debian",
        "--",
        "-r",
        RELEASE,
        "--packages=" + ",".join(PACKAGES),
    ]
    lxc.lxcpath.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        fh.write("$ " + " ".join(argv) + "\n")
        fh.flush()
        try:
            proc = subprocess.run(
                argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=BUILD_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = -1
    if code != 0:
        last = tail(log.read_text(errors="replace"), 20)
        if lxc.exists(name):
            lxc.destroy(name)
        raise OperationError(
            f"the lab image failed to build (lxc-create -t debian, exit {code}); "
            f"full log: {log}\n{last}"
        )
    # lxc-debian does not fail when apt-get cannot install a package: check them all.
    missing = missing_packages(rootfs(lxc, name))
    if missing:
        last = tail(log.read_text(errors="replace"), 20)
        lxc.destroy(name)
        raise OperationError(
            f"the lab image failed to build: packages not installed: {', '.join(missing)}; "
            f"full log: {log}\n{last}"
        )
    say(f"image {name}: baking")
    bake(rootfs(lxc, name))
    (lxc.lxcpath / name / READY).write_text(recipe() + "\n")
    return True


def missing_packages(root: Path) -> list[str]:
    proc = subprocess.run(
        ["chroot", str(root), "dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\\n"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
    )
    installed = {
        line.split()[0].split(":")[0]
        for line in proc.stdout.splitlines()
        if line.endswith(" installed")
    }
    return [p for p in PACKAGES if p not in installed]


def bake(root: Path) -> None:
    """Turn debootstrap's rootfs into the lab image (runs on the machine, not in a container)."""
    (root / "etc/network/interfaces").write_text(INTERFACES)
    for unit in DISABLED:
        _chroot(root, ["systemctl", "disable", unit], check=False)
    for unit in ENABLED:
        _chroot(root, ["systemctl", "enable", unit])
    # The administrator account: no password (locked), sudo; its key is placed per host.
    if f"\n{ADMIN_USER}:" not in "\n" + (root / "etc/passwd").read_text():
        _chroot(root, ["useradd", "--create-home", "--shell", "/bin/bash", ADMIN_USER])
    sudoers = root / "etc/sudoers.d" / f"govcloud-{ADMIN_USER}"
    sudoers.write_text(f"{ADMIN_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    # The same host keys in every clone would defeat host-key checking: clones get their own.
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    upgrade(root)
    _chroot(root, ["apt-get", "clean"], check=False)


NO_SERVICE_STARTS = "usr/sbin/policy-rc.d"


def upgrade(root: Path) -> None:
    """Every update the release and its security archive have at build time, applied to the
    image (debootstrap's base packages come from the release as first published). The hosts
    reach no mirror afterwards: the package lists stay in the image, and the compliance item
    patch-level shows no security update pending against them. No service starts meanwhile."""
    guard = root / NO_SERVICE_STARTS
    guard.write_text("#!/bin/sh\nexit 101\n")
    guard.chmod(0o755)
    try:
        _chroot(root, ["apt-get", "update"], timeout=UPGRADE_TIMEOUT)
        _chroot(
            root,
            ["apt-get", "-y", "-o", "Dpkg::Options::=--force-confold", "dist-upgrade"],
            timeout=UPGRADE_TIMEOUT,
        )
    finally:
        guard.unlink(missing_ok=True)


def _chroot(root: Path, argv: list[str], check: bool = True, timeout: float = 120) -> None:
    try:
        proc = subprocess.run(
            ["chroot", str(root), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env={
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG": "C.UTF-8",
                "DEBIAN_FRONTEND": "noninteractive",
            },
        )
    except subprocess.TimeoutExpired as e:
        raise OperationError(
            f"baking the lab image: {' '.join(argv)} took more than {timeout:.0f} s"
        ) from e
    if check and proc.returncode != 0:
        raise OperationError(
            f"baking the lab image: {' '.join(argv)} failed:\n{tail(proc.stderr or proc.stdout)}"
        )
