"""Pure parts of the lab: names, checks of a topology, and the text of every file the lab writes.

Nothing here touches the machine, so all of it is unit-tested.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable

from govcloud.errors import InputError, Problem
from infra.lab.topology import Bridge, LabHost, Topology

IFNAMSIZ = 15  # Linux interface names: at most 15 characters
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
PROFILES: dict[str, tuple[str, ...]] = {
    # LabHost.template -> services enabled on top of the one cached image
    "base": (),
    "hall": ("postgresql.service",),
    "node": (),  # a Kubernetes worker node: the same image, with NODE_LXC_SETTINGS
}
# A Kubernetes worker node runs containers of its own, so its LXC container is privileged and
# sees the machine's cgroup hierarchies as they are (kubelet needs `cpu` and `cpuacct` mounted
# apart, as the machine has them: `:force` mounts them even though the container keeps
# CAP_SYS_ADMIN), every device, no dropped capability, and /dev/kmsg (kubelet's OOM watcher).
# Only hosts of the "node" template get these.
NODE_LXC_SETTINGS = (
    "lxc.mount.auto =",
    "lxc.mount.auto = proc:rw sys:rw cgroup:rw:force",
    "lxc.apparmor.profile = unconfined",
    "lxc.cap.drop =",
    "lxc.cgroup.devices.allow = a",
    "lxc.mount.entry = /dev/kmsg dev/kmsg none bind,optional,create=file 0 0",
)
MARK = "govcloud-lab"  # every object the lab creates carries "govcloud-lab:<topology name>"
BEGIN = "# >>> govcloud-lab managed: do not edit below this line"
END = "# <<< govcloud-lab managed"


def owner_mark(lab: str) -> str:
    return f"{MARK}:{lab}"


def _short(text: str, limit: int) -> str:
    """``text`` itself when it fits, else a prefix and a stable 4-hex-digit hash of the whole."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:4]
    return f"{text[: limit - 5].rstrip('-')}-{digest}"


def bridge_ifname(lab: str, bridge: str) -> str:
    """The Linux bridge for segment ``bridge`` of lab ``lab``: carries the lab's name as prefix.

    A planner that already prefixes its bridge names with the lab name gets them verbatim.
    """
    if bridge.startswith(lab) and len(bridge) <= IFNAMSIZ:
        return bridge
    return _short(f"{lab}-{bridge}", IFNAMSIZ)


def container_name(lab: str, host: str) -> str:
    """The LXC container for ``host``: ``<lab>-<host>`` (its hostname stays ``host``)."""
    return f"{lab}-{host}"


def nft_table(lab: str) -> str:
    """The machine's own nftables table for this lab (inet family)."""
    return "govcloud_lab_" + re.sub(r"[^A-Za-z0-9_]", "_", lab)


# --- checks --------------------------------------------------------------------------------------


def check_topology(topo: Topology) -> None:
    """Raise InputError listing every inconsistency of ``topo`` (names, prefixes, addresses)."""
    problems: list[Problem] = []

    def bad(path: str, message: str) -> None:
        problems.append(Problem(path, message))

    if not _NAME.match(topo.name) or len(topo.name) > 10:
        bad("name", f"{topo.name!r}: the lab name must be 1-10 characters of a-z, 0-9 and '-'")
    bridges: dict[str, Bridge] = {}
    nets: dict[str, ipaddress.IPv4Network] = {}
    ifnames: dict[str, str] = {}
    for i, b in enumerate(topo.bridges):
        where = f"bridges[{i}]({b.name})"
        if b.name in bridges:
            bad(where, "duplicate bridge name")
        bridges[b.name] = b
        if not _NAME.match(b.name):
            bad(where, "a bridge name is made of a-z, 0-9 and '-'")
        ifname = bridge_ifname(topo.name, b.name)
        if ifname in ifnames and ifnames[ifname] != b.name:
            bad(where, f"its interface name {ifname} collides with bridge {ifnames[ifname]}")
        ifnames[ifname] = b.name
        try:
            net = ipaddress.IPv4Network(b.cidr, strict=True)
        except ValueError as exc:
            bad(where, f"cidr {b.cidr!r}: {exc}")
            continue
        for other, onet in nets.items():
            if net.overlaps(onet):
                bad(where, f"{net} overlaps bridge {other} ({onet})")
        nets[b.name] = net
        if b.host_address is not None:
            _check_iface(where + ".host_address", b.host_address, net, bad)
    seen_hosts: set[str] = set()
    seen_addr: dict[str, str] = {}
    for b in topo.bridges:
        if b.host_address and b.name in nets:
            seen_addr[b.host_address.split("/")[0]] = f"bridge {b.name} (the machine)"
    for i, h in enumerate(topo.hosts):
        where = f"hosts[{i}]({h.name})"
        if h.name in seen_hosts:
            bad(where, "duplicate host name")
        seen_hosts.add(h.name)
        if not _NAME.match(h.name) or len(h.name) > 50:
            bad(where, "a host name is made of a-z, 0-9 and '-' (at most 50 characters)")
        if h.template not in PROFILES:
            bad(where, f"template {h.template!r} is not one of {', '.join(sorted(PROFILES))}")
        if not h.interfaces:
            bad(where, "a host needs at least one interface")
        on: list[ipaddress.IPv4Network] = []
        used_bridges: set[str] = set()
        for j, itf in enumerate(h.interfaces):
            iw = f"{where}.interfaces[{j}]"
            if itf.bridge not in bridges:
                bad(iw, f"bridge {itf.bridge!r} is not in the topology")
                continue
            if itf.bridge in used_bridges:
                bad(iw, f"a second interface on bridge {itf.bridge}")
            used_bridges.add(itf.bridge)
            if itf.bridge not in nets:
                continue
            if _check_iface(iw, itf.address, nets[itf.bridge], bad):
                ip = itf.address.split("/")[0]
                if ip in seen_addr:
                    bad(iw, f"address {ip} is also used by {seen_addr[ip]}")
                seen_addr[ip] = f"host {h.name}"
                on.append(nets[itf.bridge])
        if h.gateway is not None:
            if not _on_segment(h.gateway, on):
                bad(f"{where}.gateway", f"{h.gateway} is on none of the host's segments")
            if h.gateway in {i.address.split("/")[0] for i in h.interfaces}:
                bad(f"{where}.gateway", "the gateway is the host's own address")
        for k, r in enumerate(h.routes):
            rw = f"{where}.routes[{k}]"
            try:
                ipaddress.IPv4Network(r.dst, strict=True)
            except ValueError as exc:
                bad(rw, f"dst {r.dst!r}: {exc}")
            if not _on_segment(r.via, on):
                bad(rw, f"next hop {r.via} is on none of the host's segments")
        if h.ruleset is not None and not h.ruleset.strip():
            bad(f"{where}.ruleset", "an empty ruleset (use None for no ruleset)")
    if problems:
        raise InputError(problems, title=f"lab topology {topo.name!r} is inconsistent")


def _check_iface(
    where: str, address: str, net: ipaddress.IPv4Network, bad: Callable[[str, str], None]
) -> bool:
    try:
        itf = ipaddress.IPv4Interface(address)
    except ValueError as exc:
        bad(where, f"{address!r}: {exc}")
        return False
    if "/" not in address or itf.network != net:
        bad(where, f"{address} is not an address of the segment {net} (with its prefix length)")
        return False
    if net.prefixlen < 31 and itf.ip in (net.network_address, net.broadcast_address):
        # point-to-point /31 links use both addresses (RFC 3021)
        bad(where, f"{itf.ip} is the network or broadcast address of {net}")
        return False
    return True


def _on_segment(ip: str, nets: list[ipaddress.IPv4Network]) -> bool:
    try:
        addr = ipaddress.IPv4Address(ip)
    except ValueError:
        return False
    return any(addr in n for n in nets)


def captured(topo: Topology, needed: dict[str, str]) -> list[str]:
    """Addresses the machine itself needs (its DNS resolvers, its gateway: ``needed`` maps each
    to what it is) that a lab segment or one of the machine's lab routes would capture."""
    found: list[str] = []
    prefixes = [(b.cidr, f"segment {b.name}") for b in topo.bridges]
    prefixes += [(r.dst, f"the machine's route {r.dst} via {r.via}") for b in topo.bridges
                 for r in b.host_routes]  # fmt: skip
    for addr, what in sorted(needed.items()):
        try:
            ip = ipaddress.IPv4Address(addr)
        except ValueError:
            continue
        for prefix, where in prefixes:
            if ip in ipaddress.IPv4Network(prefix):
                found.append(f"{where} would capture {addr}, the machine's {what}")
    return found


def clashes(topo: Topology, existing: dict[str, tuple[str, ...]], ours: set[str]) -> list[str]:
    """Address clashes between the topology's segments and the machine's other interfaces.

    ``existing`` maps an interface name to its IPv4 addresses ("a.b.c.d/len"); interfaces in
    ``ours`` (the lab's own bridges) are ignored.
    """
    found: list[str] = []
    for b in topo.bridges:
        net = ipaddress.IPv4Network(b.cidr)
        for ifname, addrs in sorted(existing.items()):
            if ifname in ours:
                continue
            for a in addrs:
                other = ipaddress.IPv4Interface(a).network
                if net.overlaps(other):
                    found.append(
                        f"segment {b.name} ({net}) overlaps {a} on the machine's interface {ifname}"
                    )
    return found


# --- what is written into a container ---------------------------------------------------------


NODE_DATA = "node-data"  # beside the container's rootfs: where a node keeps its images


def node_data_mounts(container_dir: str) -> tuple[str, ...]:
    """A node's container images live on the machine's own filesystem: the container's root is
    an overlayfs clone, and overlayfs cannot take another overlayfs as its upper layer, so
    containerd's overlay snapshots fail there ("invalid argument")."""
    src = f"{container_dir}/{NODE_DATA}/containerd"
    return (f"lxc.mount.entry = {src} var/lib/containerd none bind,create=dir 0 0",)


def lxc_config_block(topo: Topology, host: LabHost, container_dir: str | None = None) -> str:
    """The managed part of a container's LXC config: identity, one veth per interface, sysctls
    (and, for a Kubernetes node in ``container_dir``, its settings and data mounts)."""
    lines = [
        BEGIN,
        f"# {owner_mark(topo.name)} host={host.name} role={host.role}",
        f"lxc.uts.name = {host.name}",
    ]
    gw_iface = None
    if host.gateway is not None:
        gip = ipaddress.IPv4Address(host.gateway)
        for n, itf in enumerate(host.interfaces):
            if gip in ipaddress.IPv4Interface(itf.address).network:
                gw_iface = n
                break
    for n, itf in enumerate(host.interfaces):
        lines += [
            f"lxc.net.{n}.type = veth",
            f"lxc.net.{n}.link = {bridge_ifname(topo.name, itf.bridge)}",
            f"lxc.net.{n}.name = eth{n}",
            f"lxc.net.{n}.flags = up",
            f"lxc.net.{n}.hwaddr = {mac_address(topo.name, host.name, n)}",
            f"lxc.net.{n}.ipv4.address = {itf.address}",
        ]
        if n == gw_iface:
            lines.append(f"lxc.net.{n}.ipv4.gateway = {host.gateway}")
    lines.append(f"lxc.sysctl.net.ipv4.ip_forward = {1 if forwards(host) else 0}")
    if host.template == "node":
        lines += NODE_LXC_SETTINGS
        if container_dir is not None:
            lines += node_data_mounts(container_dir)
    lines.append("lxc.start.auto = 0")
    lines.append(END)
    return "\n".join(lines) + "\n"


def mac_address(lab: str, host: str, n: int) -> str:
    """A stable, locally administered unicast MAC for interface ``n`` of ``host``."""
    d = hashlib.sha256(f"{lab}/{host}/{n}".encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in d[:5])


_MANAGED_KEYS = ("lxc.net.", "lxc.uts.name", "lxc.sysctl.", "lxc.start.auto")


def merge_config(current: str, block: str) -> str:
    """``current`` LXC config with its managed block (and any stray managed key) replaced."""
    kept: list[str] = []
    inside = False
    for line in current.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            inside = True
            continue
        if stripped == END:
            inside = False
            continue
        if inside or stripped.startswith(_MANAGED_KEYS):
            continue
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept) + "\n\n" + block


def interfaces_file(host: LabHost) -> str:
    """/etc/network/interfaces: LXC sets the addresses; ifupdown only adds the extra routes."""
    lines = [
        "# written by govcloud lab: addresses and the default route come from the LXC config",
        "auto lo",
        "iface lo inet loopback",
    ]
    for n, _itf in enumerate(host.interfaces):
        lines += ["", f"auto eth{n}", f"iface eth{n} inet manual"]
        net = ipaddress.IPv4Interface(_itf.address).network
        for r in host.routes:
            if ipaddress.IPv4Address(r.via) in net:
                lines.append(f"    post-up ip route replace {r.dst} via {r.via} dev eth{n}")
    return "\n".join(lines) + "\n"


def hosts_file(host: LabHost) -> str:
    first = host.interfaces[0].address.split("/")[0] if host.interfaces else "127.0.1.1"
    return (
        "127.0.0.1\tlocalhost\n"
        f"{first}\t{host.name}\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
    )


def forwards(host: LabHost) -> bool:
    """Routers forward between their segments; a Kubernetes node routes its pods' traffic."""
    return host.forwarding or host.template == "node"


def sysctl_file(host: LabHost) -> str:
    return f"# written by govcloud lab\nnet.ipv4.ip_forward = {1 if forwards(host) else 0}\n"


def host_nft_table(topo: Topology) -> str:
    """The machine's own table: bridged traffic stays on its segment and the machine never routes
    between a lab segment and anything else (the routers are the only path between segments)."""
    names = [bridge_ifname(topo.name, b.name) for b in topo.bridges]
    table = nft_table(topo.name)
    rules = [f'        iifname "{n}" oifname "{n}" accept' for n in names]
    quoted = ", ".join(f'"{n}"' for n in names)
    if names:
        rules += [f"        iifname {{ {quoted} }} drop", f"        oifname {{ {quoted} }} drop"]
    body = "\n".join(rules)
    return (
        f"table inet {table} {{\n"
        f'    comment "{owner_mark(topo.name)}"\n'
        "    chain forward {\n"
        "        type filter hook forward priority filter - 10; policy accept;\n"
        f"{body}\n"
        "    }\n"
        "}\n"
    )
