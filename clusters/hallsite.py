"""Where the online hall sits in a spec: the department that runs it on the cloud, the port the
edge forwards to on every node, and the department's own host holding its database.

The spec says it in the department's tenant: an ``edge`` entry for the app ``hall`` and a
``reaches`` entry whose ports include PostgreSQL's.
"""

from __future__ import annotations

from dataclasses import dataclass

from govcloud.spec.model import Spec

HALL_APP = "hall"
POSTGRES_PORT = 5432


@dataclass(frozen=True)
class HallSite:
    department: str
    port: int  # the container port
    node_port: int
    database_host: str | None


def hall_site(spec: Spec) -> HallSite | None:
    """The hall's place on the cloud, or None when no tenant exposes it at the edge."""
    for d in spec.departments:
        for e in d.tenant.edge:
            if e.app == HALL_APP:
                db = next((r.host for r in d.tenant.reaches if POSTGRES_PORT in r.ports), None)
                return HallSite(d.code, e.port, e.node_port, db)
    return None
