"""The lab's operations: ``up`` (idempotent), ``down``, ``status``, and access to its hosts.

``up`` turns a :class:`Topology` into Linux bridges and LXC system containers cloned from the
cached image, starts them, waits for systemd, and loads each host's nftables ruleset through the
one loader script. Every object carries the lab's mark, and ``down`` removes exactly the objects
that carry it.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from govcloud.errors import OperationError
from infra.inventory import ADMIN_USER
from infra.lab import lxc as lx
from infra.lab import render
from infra.lab.lxc import Lxc
from infra.lab.render import (
    PROFILES,
    bridge_ifname,
    check_topology,
    container_name,
    nft_table,
    owner_mark,
)
from infra.lab.state import (
    LabPaths,
    LabState,
    load_state,
    remove_state,
    save_state,
    this_project,
)
from infra.lab.template import ensure_image, image_ready, is_image
from infra.lab.topology import Bridge, LabHost, Topology

Progress = Callable[[str], None]
LOADER = (
    Path(__file__).resolve().parents[2] / "playbooks/roles/firewall/files/govcloud-load-ruleset"
)
LOADER_IN_HOST = "usr/local/sbin/govcloud-load-ruleset"
BOOT_TIMEOUT = 90.0
REQUIRED_TOOLS = (
    "lxc-create",
    "lxc-copy",
    "lxc-start",
    "lxc-stop",
    "lxc-attach",
    "lxc-info",
    "lxc-wait",
    "lxc-destroy",
    "debootstrap",
    "nft",
    "ip",
    "ssh-keygen",
)
INSTALL_HINT = (
    "install them with `apt-get install lxc lxc-templates debootstrap nftables iproute2 "
    "openssh-client` (or `make deps`, as root)"
)


@dataclass(frozen=True)
class Change:
    kind: str  # image, bridge, host, ruleset, nftables
    name: str
    action: str  # created, changed, started, loaded, removed, retired, unchanged
    detail: str = ""


@dataclass
class UpReport:
    lab: str
    changes: list[Change] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            out[c.action] = out.get(c.action, 0) + 1
        return out


@dataclass
class DownReport:
    lab: str
    removed: list[Change] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class HostStatus:
    name: str
    container: str
    role: str
    state: str  # RUNNING, STOPPED, MISSING, ...
    addresses: tuple[str, ...]
    reachable: bool | None  # None: not probed (not running, or no running peer)
    probed_from: str | None = None
    probe: str = ""  # "ping", or "arp" when the host's ruleset filters the ping from that peer

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "container": self.container,
            "role": self.role,
            "state": self.state,
            "addresses": list(self.addresses),
            "reachable": self.reachable,
            "probed_from": self.probed_from,
            "probe": self.probe,
        }


@dataclass
class LabStatus:
    lab: str
    exists: bool
    hosts: list[HostStatus] = field(default_factory=list)
    bridges: dict[str, bool] = field(default_factory=dict)  # ifname -> present

    @property
    def healthy(self) -> bool:
        return (
            self.exists
            and all(h.state == "RUNNING" and h.reachable is not False for h in self.hosts)
            and all(self.bridges.values())
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "lab": self.lab,
            "exists": self.exists,
            "healthy": self.healthy,
            "bridges": self.bridges,
            "hosts": [h.as_dict() for h in self.hosts],
        }


# --- preconditions -------------------------------------------------------------------------------


def preflight() -> None:
    """Root, the tools, overlayfs: each missing piece gets a message saying what to do."""
    if not lx.is_root():
        raise OperationError(
            "the lab needs root: it creates Linux bridges and LXC containers "
            "(run `sudo govcloud lab ...`)"
        )
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if not Path("/usr/share/lxc/templates/lxc-debian").is_file():
        missing.append("lxc-templates (/usr/share/lxc/templates/lxc-debian)")
    if missing:
        raise OperationError(f"LXC or its tools are missing: {', '.join(missing)}; {INSTALL_HINT}")
    fs = Path("/proc/filesystems")
    if fs.is_file() and "overlay" not in fs.read_text():
        lx.run(["modprobe", "overlay"], check=False)
        if "overlay" not in fs.read_text():
            raise OperationError(
                "the kernel has no overlayfs (`modprobe overlay` failed): "
                "lab hosts are overlay snapshots of the cached image"
            )


INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")


def ensure_inotify(hosts: int, say: Progress) -> None:
    """Each container's systemd takes several inotify instances from root's shared budget; the
    kernel default (128) stops systemd in about the 28th container ("Failed to allocate manager
    object: Too many open files"). Raise the limit for this boot (not persisted)."""
    try:
        current = int(INOTIFY_INSTANCES.read_text())
    except (OSError, ValueError):
        return
    needed = max(1024, 16 * hosts + 256)
    if current < needed:
        INOTIFY_INSTANCES.write_text(f"{needed}\n")
        say(f"raised fs.inotify.max_user_instances {current} -> {needed} (systemd per container)")


def ensure_ssh_key(paths: LabPaths) -> str:
    """The lab's own SSH key (root access to every host until the bastion takes over)."""
    key = paths.ssh_key
    pub = key.with_suffix(".pub")
    if not (key.is_file() and pub.is_file()):
        key.parent.mkdir(parents=True, exist_ok=True)
        key.unlink(missing_ok=True)
        pub.unlink(missing_ok=True)
        lx.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "govcloud-lab", "-f", str(key)]
        )
    key.chmod(0o600)
    return pub.read_text().strip()


# --- the lab object ------------------------------------------------------------------------------


class Lab:
    """One lab by name: its containers, its hosts' shells, its rulesets."""

    def __init__(self, name: str, paths: LabPaths | None = None) -> None:
        self.name = name
        self.paths = paths or LabPaths.default()
        self.lxc = Lxc(self.paths.lxcpath)

    def container(self, host: str) -> str:
        return container_name(self.name, host)

    def exec(
        self,
        host: str,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float = 30,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as root inside ``host`` (lxc-attach)."""
        return self.lxc.attach(
            self.container(host), argv, input=input, timeout=timeout, check=check
        )

    def load_ruleset(
        self, host: str, text: str, *, if_changed: bool = False, own_table: bool = False
    ) -> str:
        """Load ``text`` as ``host``'s whole nftables ruleset through govcloud-load-ruleset
        (checked with ``nft -c``, loaded atomically, kept for boot); ``own_table``: replace
        only govcloud's table (a node, where other agents keep theirs). Returns "loaded" or
        "unchanged" (only with ``if_changed``)."""
        flags = [*(["--if-changed"] if if_changed else []), *(["--own-table"] if own_table else [])]
        argv = ["/" + LOADER_IN_HOST, *flags, "-"]
        proc = self.exec(host, argv, input=text, timeout=60, check=False)
        if proc.returncode != 0:
            detail = lx.tail(proc.stderr or proc.stdout)
            raise OperationError(
                f"{host}: the ruleset did not load (exit {proc.returncode}):\n{detail}"
            )
        return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "loaded"

    def owns_container(self, cname: str) -> bool:
        cfg = self.lxc.config_path(cname)
        try:
            text = cfg.read_text(errors="replace")
        except OSError:
            return False
        return f"# {owner_mark(self.name)} " in text

    def host_key(self, host: str) -> str | None:
        """``host``'s public SSH host key (``type blob``), as lab up generated it; None when
        the host does not exist."""
        cdir = self.lxc.lxcpath / self.container(host)
        config = cdir / "config"
        if not config.is_file():
            return None
        pub = _upper_dir(config.read_text(), cdir) / "etc/ssh/ssh_host_ed25519_key.pub"
        return " ".join(pub.read_text().split()[:2]) if pub.is_file() else None

    def our_containers(self) -> list[str]:
        return [c for c in self.lxc.names() if self.owns_container(c)]

    def our_bridges(self) -> list[str]:
        mark = owner_mark(self.name)
        return sorted(n for n, link in lx.links().items() if link.alias == mark)


def load_ruleset(lab: str, host: str, text: str, *, paths: LabPaths | None = None) -> str:
    """Load ``text`` as the nftables ruleset of ``host`` in lab ``lab`` (see Lab.load_ruleset)."""
    return Lab(lab, paths).load_ruleset(host, text)


# --- up ------------------------------------------------------------------------------------------


def up(
    topology: Topology, progress: Progress | None = None, *, paths: LabPaths | None = None
) -> UpReport:
    """Make the machine match ``topology``; a second run changes nothing and reports so.

    Runs of ``up`` and ``down`` on one machine take turns (a lock under the lxcpath).
    """
    p = paths or LabPaths.default()
    check_topology(topology)
    preflight()
    with lx.locked(p.lxcpath / ".lab.lock", "the lab lock", progress):
        return _up(topology, progress, p)


def _up(topology: Topology, progress: Progress | None, paths: LabPaths) -> UpReport:
    say = progress or (lambda _m: None)
    started = time.monotonic()
    topo = topology
    lab = Lab(topo.name, paths)
    report = UpReport(topo.name)

    def note(change: Change) -> None:
        report.changes.append(change)
        detail = f" ({change.detail})" if change.detail else ""
        say(f"{change.kind} {change.name}: {change.action}{detail}")

    _check_machine(lab, topo)
    ensure_inotify(len(topo.hosts), say)
    pubkey = ensure_ssh_key(lab.paths)
    say("image: checking the cached Debian image")
    image, built = ensure_image(lab.lxc, lab.paths.cache, say)
    note(Change("image", image, "created" if built else "unchanged"))

    state = load_state(lab.paths, topo.name) or LabState(topo.name, str(lab.paths.lxcpath))
    old_hosts = dict(state.hosts)
    old_bridges = dict(state.bridges)
    state.image = image
    state.record(topo)
    project = this_project()
    if state.project and state.project != project:
        note(Change("lab", topo.name, "adopted", f"brought up before for {state.project}"))
    state.project = project
    save_state(lab.paths, state)  # intent first: an interrupted run stays known to `down`

    # Hosts (and then bridges) that the topology no longer has.
    wanted = {container_name(topo.name, h.name) for h in topo.hosts}
    for cname in sorted(set(lab.our_containers()) - wanted):
        lab.lxc.destroy(cname)
        note(Change("host", cname, "removed"))
    for name in set(old_hosts) - {h.name for h in topo.hosts}:
        state.hosts.pop(name, None)

    recreated: set[str] = set()  # bridges made anew: running hosts lost their ports on them
    for b in topo.bridges:
        change = _ensure_bridge(lab, topo, b.name)
        note(change)
        if change.action == "created":
            recreated.add(b.name)
    wanted_br = {bridge_ifname(topo.name, b.name) for b in topo.bridges}
    for ifname in sorted(set(lab.our_bridges()) - wanted_br):
        lx.delete_link(ifname)
        note(Change("bridge", ifname, "removed"))
    for name in set(old_bridges) - {b.name for b in topo.bridges}:
        state.bridges.pop(name, None)
    note(_ensure_host_table(lab, topo, state))
    save_state(lab.paths, state)

    to_start: list[str] = []
    new_hosts: set[str] = set()
    for h in topo.hosts:
        rewire = sorted({i.bridge for i in h.interfaces} & recreated)
        change, needs_start = _ensure_host(lab, topo, h, image, pubkey, say, rewire)
        note(change)
        if needs_start:
            to_start.append(h.name)
        if change.action == "created":
            new_hosts.add(h.name)
    identity = {h.name for h in topo.hosts if h.role == "identity"}
    if identity and identity <= new_hosts:
        # every OpenBao node is new: shares left in our state open a cluster that is gone
        # (its hosts removed behind the lab's back, or by a lab down from elsewhere)
        retired = retire_identity(state)
        if retired:
            note(retired)
    if to_start:
        say(f"starting {len(to_start)} host(s)")
        for name in to_start:
            lab.lxc.start(lab.container(name))
    # Every host must be up (also those found running: a crashed boot is not "unchanged").
    _wait_booted(lab, [h.name for h in topo.hosts], say)

    with_rules = [h for h in topo.hosts if h.ruleset is not None]
    dropped = [
        n for n, rec in old_hosts.items() if rec.ruleset and n in {h.name for h in topo.hosts}
    ]
    dropped = [n for n in dropped if topo.host(n).ruleset is None]
    jobs: list[tuple[str, str]] = [(h.name, h.ruleset or "") for h in with_rules]
    jobs += [(n, "") for n in dropped]
    nodes = {h.name for h in topo.hosts if h.template == "node"}
    if jobs:
        say(f"rulesets: checking {len(jobs)} host(s)")
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(
                pool.map(
                    lambda j: (
                        j[0],
                        lab.load_ruleset(j[0], j[1], if_changed=True, own_table=j[0] in nodes),
                    ),
                    jobs,
                )
            )
        for host, result in results:
            note(Change("ruleset", host, "unchanged" if result == "unchanged" else "loaded"))
    save_state(lab.paths, state)
    report.seconds = time.monotonic() - started
    return report


def _machine_needs() -> dict[str, str]:
    """The machine's DNS resolvers and default gateway: no lab segment or route may take them."""
    needs: dict[str, str] = {}
    try:
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "nameserver":
                needs[words[1]] = "DNS resolver"
    except OSError:
        pass
    gw = lx.run(["ip", "-4", "route", "show", "default"], check=False).stdout.split()
    if "via" in gw:
        needs[gw[gw.index("via") + 1]] = "default gateway"
    return needs


def _check_machine(lab: Lab, topo: Topology) -> None:
    """Bridge names taken by others, addresses clashing with the machine's interfaces, containers
    with our names that are not ours: refuse before changing anything."""
    links = lx.links()
    mark = owner_mark(topo.name)
    ours = {n for n, link in links.items() if link.alias == mark}
    problems: list[str] = []
    for b in topo.bridges:
        ifname = bridge_ifname(topo.name, b.name)
        link = links.get(ifname)
        if link is not None and ifname not in ours:
            owner = f"alias {link.alias!r}" if link.alias else "no govcloud mark"
            kind = link.kind or "device"
            problems.append(
                f"bridge name {ifname} (segment {b.name}) is taken by an existing {kind} "
                f"that the lab did not create ({owner}); rename the segment or remove it"
            )
    problems += render.clashes(topo, {n: link.addresses for n, link in links.items()}, ours)
    problems += render.captured(topo, _machine_needs())
    for h in topo.hosts:
        cname = container_name(topo.name, h.name)
        if lab.lxc.exists(cname) and not lab.owns_container(cname):
            problems.append(
                f"container {cname} exists in {lab.lxc.lxcpath} but does not carry the mark "
                f"of lab {topo.name!r}; remove it or rename the lab"
            )
    if problems:
        raise OperationError(
            f"lab {topo.name!r} cannot come up on this machine:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def _ensure_bridge(lab: Lab, topo: Topology, name: str) -> Change:
    b = next(x for x in topo.bridges if x.name == name)
    ifname = bridge_ifname(topo.name, name)
    link = lx.links().get(ifname)
    if link is None:
        lx.add_bridge(ifname, owner_mark(topo.name))
        if b.host_address:
            lx.add_address(ifname, b.host_address)
        _ensure_host_routes(b, ifname)
        return Change("bridge", ifname, "created", b.cidr)
    fixes = []
    if not link.up:
        lx.set_bridge_up(ifname)
        fixes.append("set up")
    want = {b.host_address} if b.host_address else set()
    for extra in set(link.addresses) - want:
        lx.del_address(ifname, extra)
        fixes.append(f"removed {extra}")
    for missing in want - set(link.addresses):
        lx.add_address(ifname, missing)
        fixes.append(f"added {missing}")
    fixes += _ensure_host_routes(b, ifname)
    return Change("bridge", ifname, "changed" if fixes else "unchanged", ", ".join(fixes))


def _ensure_host_routes(b: Bridge, ifname: str) -> list[str]:
    fixes = []
    for r in b.host_routes:
        if lx.route_via(r.dst, ifname) != r.via:
            lx.replace_route(r.dst, r.via, ifname)
            fixes.append(f"route {r.dst} via {r.via}")
    return fixes


def _ensure_host_table(lab: Lab, topo: Topology, state: LabState) -> Change:
    """The machine's own nftables table: traffic of a lab segment stays on it (the routers are
    the only way between segments, and the machine never routes lab traffic elsewhere)."""
    table = nft_table(topo.name)
    text = render.host_nft_table(topo)
    live = lx.run(["nft", "-s", "list", "table", "inet", table], check=False)
    exists = live.returncode == 0
    if exists and live.stdout == state.nft_listing and text == state.nft_source:
        return Change("nftables", table, "unchanged")
    script = (f"table inet {table}\ndelete table inet {table}\n" if exists else "") + text
    lx.run(["nft", "-f", "-"], input=script)
    state.nft_source = text
    state.nft_listing = lx.run(["nft", "-s", "list", "table", "inet", table]).stdout
    return Change("nftables", table, "changed" if exists else "created")


def _upper_dir(config_text: str, cdir: Path) -> Path:
    for line in config_text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "lxc.rootfs.path":
            value = value.strip()
            if value.startswith(("overlay:", "overlayfs:")):
                return Path(value.split(":")[-1])
            return Path(value.split(":", 1)[-1]) if value.startswith("dir:") else Path(value)
    return cdir / "overlay" / "delta"


def _host_files(topo: Topology, h: LabHost, pubkey: str) -> dict[str, tuple[str, int]]:
    files = {
        "etc/hostname": (h.name + "\n", 0o644),
        "etc/hosts": (render.hosts_file(h), 0o644),
        "etc/network/interfaces": (render.interfaces_file(h), 0o644),
        "etc/sysctl.d/90-govcloud-lab.conf": (render.sysctl_file(h), 0o644),
        "root/.ssh/authorized_keys": (pubkey + "\n", 0o600),
        # keys live under /etc (root-owned), so no user can add one of their own
        f"etc/ssh/authorized_keys/{ADMIN_USER}": (pubkey + "\n", 0o644),
        "etc/ssh/sshd_config.d/20-govcloud-authorized-keys.conf": (
            "AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys/%u\n",
            0o644,
        ),
        "etc/ssh/sshd_config.d/10-govcloud-hostkey.conf": (
            "HostKey /etc/ssh/ssh_host_ed25519_key\n",
            0o644,
        ),
        LOADER_IN_HOST: (LOADER.read_text(), 0o755),
    }
    return files


def _ensure_host(
    lab: Lab,
    topo: Topology,
    h: LabHost,
    image: str,
    pubkey: str,
    say: Progress,
    rewire: Sequence[str] = (),
) -> tuple[Change, bool]:
    """Create or fix one host's container while it is stopped. Returns the change and whether
    the host must be (re)started. ``rewire``: bridges created anew in this run (a running host
    on one of them is restarted, which attaches its veth to the new bridge)."""
    cname = container_name(topo.name, h.name)
    cdir = lab.lxc.lxcpath / cname
    created = False
    if not lab.lxc.exists(cname) or not (cdir / "overlay").is_dir():
        if cdir.exists():
            say(f"host {h.name}: removing the rest of an interrupted clone")
            lab.lxc.destroy(cname)
        lab.lxc.snapshot_clone(image, cname)
        created = True
    cfg_path = lab.lxc.config_path(cname)
    current = cfg_path.read_text()
    desired = render.merge_config(current, render.lxc_config_block(topo, h, str(cdir)))
    if h.template == "node":
        (cdir / render.NODE_DATA / "containerd").mkdir(parents=True, exist_ok=True)
    upper = _upper_dir(current, cdir)
    diffs: list[str] = []
    if desired != current:
        diffs.append("lxc config")
    files = _host_files(topo, h, pubkey)
    for rel, (content, mode) in files.items():
        p = upper / rel
        if (
            not p.is_file()
            or p.read_text(errors="replace") != content
            or (p.stat().st_mode & 0o777) != mode
        ):
            diffs.append("/" + rel)
    # the profile's services run; one the host's configuration enabled since (PostgreSQL on a
    # department's own host, by its role) is the configuration's: lab up never disables it
    wants = upper / "etc/systemd/system/multi-user.target.wants"
    services = set(PROFILES[h.template])
    present = {p.name for p in wants.glob("*.service")} if wants.is_dir() else set()
    if services - present:
        diffs.append(f"profile {h.template}")
    first_boot = not (upper / "etc/ssh/ssh_host_ed25519_key").is_file()
    state = lab.lxc.state(cname)
    if not diffs and not first_boot:
        if state == "RUNNING" and rewire:
            say(f"host {h.name}: restarting to attach to re-created bridge(s)")
            lab.lxc.stop(cname, timeout=20)
            return Change("host", h.name, "changed", "re-attached to " + ", ".join(rewire)), True
        if state == "RUNNING":
            if f"/{image}/rootfs:" not in current:
                # Kept as it is (its disk holds state); new hosts get the new image.
                say(
                    f"host {h.name}: still layered on an older image "
                    f"(`lab down` then `lab up` moves it to {image})"
                )
            return Change("host", h.name, "unchanged"), False
        return Change("host", h.name, "started", f"was {state}"), True
    if state not in ("STOPPED", "MISSING"):
        say(f"host {h.name}: stopping to apply {', '.join(diffs)}")
        lab.lxc.stop(cname, timeout=20)
    cfg_path.write_text(desired)
    for rel, (content, mode) in files.items():
        _write(upper / rel, content, mode)
    (upper / "root/.ssh").chmod(0o700)
    wants.mkdir(parents=True, exist_ok=True)
    for svc in services:
        link = wants / svc
        if not link.is_symlink():
            link.symlink_to(f"/lib/systemd/system/{svc}")
    if first_boot:
        _write(upper / "etc/machine-id", secrets.token_hex(16) + "\n", 0o444)
        key = upper / "etc/ssh/ssh_host_ed25519_key"
        key.parent.mkdir(parents=True, exist_ok=True)
        for p in (key, key.with_suffix(".pub")):
            p.unlink(missing_ok=True)
        lx.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{h.name}", "-f", str(key)]
        )
    if created:
        return Change(
            "host", h.name, "created", ", ".join(str(i.address) for i in h.interfaces)
        ), True
    return Change("host", h.name, "changed", ", ".join(diffs)), True


def _write(path: Path, content: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.govcloud-tmp")
    tmp.write_text(content)
    tmp.chmod(mode)
    tmp.replace(path)


def _wait_booted(lab: Lab, hosts: list[str], say: Progress) -> None:
    """Wait until every host is RUNNING and its systemd has finished booting."""
    if not hosts:
        return
    say(f"waiting for {len(hosts)} host(s) to finish booting")

    def one(host: str) -> str | None:
        cname = lab.container(host)
        deadline = time.monotonic() + BOOT_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            st = lab.lxc.state(cname)
            if st != "RUNNING":
                last = f"container {st}"
                if st in ("STOPPED", "MISSING"):
                    break
            else:
                proc = lab.lxc.attach(
                    cname, ["systemctl", "is-system-running"], timeout=15, check=False
                )
                last = proc.stdout.strip() or lx.tail(proc.stderr, 1)
                if last in ("running", "degraded"):
                    return None
            time.sleep(0.3)
        console = lab.lxc.lxcpath / cname / "console.log"
        extra = ""
        if console.is_file():
            extra = "; console: " + lx.tail(console.read_text(errors="replace"), 4)
        if last.startswith("container STOPPED"):
            return f"{host}: stopped while booting{extra}"
        return f"{host}: not booted after {BOOT_TIMEOUT:g} s (last seen: {last}){extra}"

    with ThreadPoolExecutor(max_workers=min(32, len(hosts))) as pool:
        failures = [f for f in pool.map(one, hosts) if f]
    if failures:
        raise OperationError("hosts did not come up:\n" + "\n".join(f"  - {f}" for f in failures))


# --- down ----------------------------------------------------------------------------------------


def down(
    name: str,
    purge: bool = False,
    progress: Progress | None = None,
    *,
    paths: LabPaths | None = None,
) -> DownReport:
    """Remove every container, bridge and nftables table lab ``name`` created, and nothing else.

    The cached image stays unless ``purge`` (and then only when no other container uses it).
    """
    if not lx.is_root():
        raise OperationError("the lab needs root (run `sudo govcloud lab down`)")
    p = paths or LabPaths.default()
    with lx.locked(p.lxcpath / ".lab.lock", "the lab lock", progress):
        return _down(name, purge, progress, p)


def _down(name: str, purge: bool, progress: Progress | None, paths: LabPaths) -> DownReport:
    say = progress or (lambda _m: None)
    started = time.monotonic()
    lab = Lab(name, paths)
    report = DownReport(name)
    state = load_state(lab.paths, name)
    containers = set(lab.our_containers())
    if state:
        containers |= {r.container for r in state.hosts.values() if lab.owns_container(r.container)}
    say(f"removing {len(containers)} container(s)")
    for c in sorted(containers):
        lab.lxc.stop(c, kill=True)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lab.lxc.destroy, sorted(containers)))
    for c in sorted(containers):
        report.removed.append(Change("host", c, "removed"))
    # Leftovers of an interrupted clone: a directory without config, named like our hosts.
    if state:
        for r in state.hosts.values():
            d = lab.lxc.lxcpath / r.container
            if d.is_dir() and not lab.lxc.exists(r.container):
                shutil.rmtree(d)
                report.removed.append(Change("host", r.container, "removed", "partial clone"))
    for ifname in lab.our_bridges():
        lx.delete_link(ifname)
        report.removed.append(Change("bridge", ifname, "removed"))
    if state:
        left = lx.links()
        for br in state.bridges.values():
            if br.ifname in left:
                report.kept.append(f"bridge {br.ifname}: present but not carrying the lab's mark")
    table = nft_table(name)
    if lx.run(["nft", "list", "table", "inet", table], check=False).returncode == 0:
        lx.run(["nft", "delete", "table", "inet", table])
        report.removed.append(Change("nftables", table, "removed"))
    remove_state(lab.paths, name)
    retired = retire_identity(state) if state else None
    if retired:
        report.removed.append(retired)
    if purge:
        _purge(lab, report, say)
    else:
        report.kept.append("cached image (use --purge to remove it)")
    for ch in report.removed:
        say(f"{ch.kind} {ch.name}: {ch.action}")
    report.seconds = time.monotonic() - started
    return report


def retire_identity(state: LabState) -> Change | None:
    """After the lab's OpenBao nodes are gone, and with them the cluster their shares opened:
    move that cluster's secrets aside in the state directory of the project that brought the
    lab up (where they were written), so a new cluster can be initialised there."""
    if not any(r.role == "identity" for r in state.hosts.values()):
        return None
    from security.openbao.cluster import Paths, retire_identity_state

    owner = Paths(Path(state.project)) if state.project else Paths.default()
    retired = retire_identity_state(owner)
    if retired is None:
        return None
    return Change("identity state", str(retired), "retired", "its cluster is gone")


def _purge(lab: Lab, report: DownReport, say: Progress) -> None:
    with lx.locked(lab.lxc.lxcpath / ".image.lock", "the image build", say):
        _purge_locked(lab, report, say)


def _purge_locked(lab: Lab, report: DownReport, say: Progress) -> None:
    names = lab.lxc.names()
    for image in [c for c in names if is_image(c)]:
        layer = f"{lab.lxc.lxcpath / image / 'rootfs'}:"
        users = [
            c
            for c in names
            if c != image and layer in lab.lxc.config_path(c).read_text(errors="replace")
        ]
        if users:  # other labs' hosts are overlays on it
            report.kept.append(f"image {image}: {len(users)} other container(s) are layered on it")
            continue
        say(f"image {image}: removing")
        lab.lxc.destroy(image)
        report.removed.append(Change("image", image, "removed"))
    for sub in ("debootstrap", "image-build.log", "image.conf"):
        p = lab.paths.cache / sub
        if p.is_dir():
            shutil.rmtree(p)
            report.removed.append(Change("cache", str(p), "removed"))
        elif p.exists():
            p.unlink()
    report.kept.append(f"the lab's SSH key {lab.paths.ssh_key}")


# --- status --------------------------------------------------------------------------------------


def status(name: str, *, paths: LabPaths | None = None, probe: bool = True) -> LabStatus:
    """Each host's state and addresses; with ``probe``, whether it answers a ping from its router
    (or another host on one of its segments)."""
    if not lx.is_root():
        raise OperationError("the lab needs root (run `sudo govcloud lab status`)")
    lab = Lab(name, paths)
    state = load_state(lab.paths, name)
    if state is None:
        return LabStatus(name, exists=bool(lab.our_containers()))
    links = lx.links()
    result = LabStatus(name, exists=True)
    result.bridges = {r.ifname: r.ifname in links for r in state.bridges.values()}
    states = {h: lab.lxc.state(r.container) for h, r in state.hosts.items()}

    def probe_one(host: str) -> HostStatus:
        rec = state.hosts[host]
        addrs = tuple(i["address"] for i in rec.interfaces)
        reachable: bool | None = None
        peer_name: str | None = None
        how = ""
        if probe and states[host] == "RUNNING":
            found = _peer(state, host, states)
            if found is not None:
                peer_name, address = found
                reachable, how = _probe(lab, peer_name, address)
        return HostStatus(
            host, rec.container, rec.role, states[host], addrs, reachable, peer_name, how
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        result.hosts = list(pool.map(probe_one, list(state.hosts)))
    return result


def _probe(lab: Lab, peer: str, address: str) -> tuple[bool, str]:
    """Ping ``address`` from ``peer``; when a ruleset filters the ping, the neighbour table still
    shows whether the host answers on the segment (ARP is not filtered by inet rulesets)."""
    for wait in ("1", "2"):  # one retry when not even ARP answered: the host may be slow
        argv = ["ping", "-n", "-q", "-c", "1", "-W", wait, address]
        if lab.exec(peer, argv, timeout=10, check=False).returncode == 0:
            return True, "ping"
        out = lab.exec(peer, ["ip", "-j", "neigh", "show", address], check=False).stdout
        try:
            entries = json.loads(out or "[]")
        except ValueError:
            entries = []
        live = {"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT"}
        if any(e.get("lladdr") and live & set(e.get("state", [])) for e in entries):
            return True, "arp"
    return False, "ping+arp"


def _peer(state: LabState, host: str, states: dict[str, str]) -> tuple[str, str] | None:
    """A running host sharing a segment with ``host`` (a forwarding one first) and the address
    of ``host`` on that segment."""
    mine = {i["bridge"]: i["address"].split("/")[0] for i in state.hosts[host].interfaces}
    candidates = []
    for other, rec in state.hosts.items():
        if other == host or states.get(other) != "RUNNING":
            continue
        shared = [i["bridge"] for i in rec.interfaces if i["bridge"] in mine]
        if shared:
            candidates.append((0 if rec.forwarding else 1, other, mine[shared[0]]))
    if not candidates:
        return None
    _, other, address = min(candidates)
    ipaddress.IPv4Address(address)
    return other, address


def image_cached(paths: LabPaths | None = None) -> bool:
    """Whether the lab image is built (``lab up`` then takes seconds, not minutes)."""
    p = paths or LabPaths.default()
    return image_ready(Lxc(p.lxcpath))
