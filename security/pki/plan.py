"""The cloud's service PKI, planned from the spec (pure, no server).

Two tiers. The **root** is kept offline: its key is made by govcloud and kept in the lab's
state (``secrets/pki/root.key``, mode 0600; a real deployment keeps it on an offline machine or
an HSM), and it signs nothing but intermediates. The **intermediate** lives in OpenBao (one
``pki`` mount, :data:`PKI_MOUNT`): its key is generated inside OpenBao and never leaves it, its
CSR is signed by the offline root. Every service certificate is issued by the intermediate
through govcloud, so every one of them is in OpenBao's audit trail; a stolen OpenBao cannot mint
a new CA, and a new intermediate is one signature of the offline root away.

We chose the intermediate-only mount over a root mount plus an intermediate mount because a
root mount would keep the root key online in the same system as the intermediate, which is what
the second tier exists to avoid; the offline root also outlives an OpenBao that is rebuilt.

The intermediate carries name constraints: it may issue only for the spec's edge and internal
domains (and addresses in the government network's supernets), so even the intermediate's key
cannot vouch for another ``gov.cn`` site.

Uses (roles):
- ``edge``: the halls' public names under ``tls.edge.allowed_domains``, server certificates for
  the edge's nginx (citizens' browsers trust the root);
- ``internal``: service-to-service under ``tls.internal.allowed_domains`` with addresses: the
  hall to PostgreSQL, rsyslog to the log host; server and client certificates (mutual TLS).

How it relates to the bootstrap CA in ``state/identity/tls/``: that CA (govcloud's own,
:func:`security.openbao.cluster.ensure_tls`) signs only OpenBao's listener and raft certificates,
because OpenBao needs TLS before it is initialised and unsealed, that is, before this PKI exists.
It is trusted by govcloud and the OpenBao nodes alone. The service PKI's root is what everything
else trusts (browsers at the halls, the hall's database client, rsyslog). The two never sign each
other; once this PKI runs, OpenBao's own listener could move to an ``internal`` certificate, but
the bootstrap CA stays as the way to bring a fresh cluster up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from govcloud.spec.checks import hall_server_names
from govcloud.spec.model import Spec

PKI_MOUNT = "pki-int"
EDGE_ROLE = "edge"
INTERNAL_ROLE = "internal"
ROOT_COMMON_NAME = "govcloud Root CA"
INTERMEDIATE_COMMON_NAME = "govcloud Intermediate CA"
ROOT_DAYS = 3650
KEY_TYPE = "ec"
KEY_BITS = 256


@dataclass(frozen=True)
class PkiRole:
    """One use of the PKI: an OpenBao role."""

    name: str
    allowed_domains: tuple[str, ...]
    ttl_hours: int
    max_ttl_hours: int
    server: bool = True
    client: bool = False
    ip_sans: bool = False

    def params(self) -> dict[str, object]:
        """The role's parameters as OpenBao takes them."""
        return {
            "allowed_domains": list(self.allowed_domains),
            "allow_bare_domains": True,
            "allow_subdomains": True,
            "allow_glob_domains": False,
            "allow_wildcard_certificates": False,
            "allow_localhost": False,
            "allow_any_name": False,
            "enforce_hostnames": True,
            "allow_ip_sans": self.ip_sans,
            "server_flag": self.server,
            "client_flag": self.client,
            "key_type": KEY_TYPE,
            "key_bits": KEY_BITS,
            "ttl": f"{self.ttl_hours}h",
            "max_ttl": f"{self.max_ttl_hours}h",
            "no_store": False,  # stored: listed by serial for the audit and for revocation
            "require_cn": True,
        }


@dataclass
class PkiPlan:
    mount: str
    max_ttl_hours: int
    intermediate_hours: int  # the intermediate's own life: twice the longest certificate
    renew_before: float  # share of a certificate's life left when it is renewed
    roles: dict[str, PkiRole]
    permitted_domains: tuple[str, ...]
    permitted_networks: tuple[str, ...]
    edge_names: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "mount": self.mount,
            "max_ttl_hours": self.max_ttl_hours,
            "intermediate_hours": self.intermediate_hours,
            "renew_before": self.renew_before,
            "roles": {
                n: {
                    "allowed_domains": list(r.allowed_domains),
                    "ttl_hours": r.ttl_hours,
                    "server": r.server,
                    "client": r.client,
                    "ip_sans": r.ip_sans,
                }
                for n, r in self.roles.items()
            },
            "permitted_domains": list(self.permitted_domains),
            "permitted_networks": list(self.permitted_networks),
            "edge_names": self.edge_names,
        }


def make_pki_plan(spec: Spec) -> PkiPlan:
    tls = spec.tls
    edge = PkiRole(
        EDGE_ROLE,
        tuple(tls.edge.allowed_domains),
        tls.edge.ttl_hours,
        tls.max_ttl_hours,
        server=True,
        client=False,
        ip_sans=False,  # citizens reach the halls by name
    )
    internal = PkiRole(
        INTERNAL_ROLE,
        tuple(tls.internal.allowed_domains),
        tls.internal.ttl_hours,
        tls.max_ttl_hours,
        server=True,
        client=True,  # mutual TLS: rsyslog senders, database clients
        ip_sans=True,  # services are addressed by IP inside the data center
    )
    domains = tuple(dict.fromkeys([*tls.edge.allowed_domains, *tls.internal.allowed_domains]))
    nets = spec.network.supernets
    return PkiPlan(
        mount=PKI_MOUNT,
        max_ttl_hours=tls.max_ttl_hours,
        intermediate_hours=2 * tls.max_ttl_hours,
        renew_before=tls.renew_before,
        roles={EDGE_ROLE: edge, INTERNAL_ROLE: internal},
        permitted_domains=domains,
        permitted_networks=tuple(dict.fromkeys([nets.extranet, nets.datacenter])),
        edge_names=[name for _path, name in hall_server_names(spec)],
    )
