"""The shared services on loopback: a private PostgreSQL, an OpenBao dev server with the lab
spec's seal keys, policies and department identities, the e-licence library and the exchange."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clusters.apps.elicence.devserver import LocalBao, Services
from clusters.apps.hall.devserver import LocalPostgres
from govcloud.spec import load_spec
from govcloud.spec.load import LAB_SPEC
from security.openbao.client import Bao, Endpoint
from security.openbao.seals import (
    EXCHANGE_POLICY,
    LIBRARY_POLICY,
    apply_seals,
    enrol_department_apps,
    exchange_grants,
    licence_types,
)


def request(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@dataclass
class Shared:
    services: Services
    root: Bao
    tokens: dict[str, str]  # department code -> its app's OpenBao token

    @property
    def library(self) -> str:
        return self.services.library.url

    @property
    def exchange(self) -> str:
        return self.services.exchange.url

    def issue(self, dept: str, body: dict[str, Any]) -> tuple[int, Any]:
        return request(
            "POST",
            self.library + "/api/licences",
            body,
            {"Authorization": f"Bearer {self.tokens[dept]}"},
        )

    def read(self, dept: str | None, type_code: str, holder: str, case: str) -> tuple[int, Any]:
        from urllib.parse import urlencode

        headers = {"X-Case-Code": case}
        if dept is not None:
            headers["Authorization"] = f"Bearer {self.tokens.get(dept, dept)}"
        q = urlencode({"type": type_code, "holder": holder})
        return request("GET", f"{self.exchange}/api/licences?{q}", headers=headers)

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        import asyncio

        import asyncpg

        async def run() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(self.services.pg.dsn)
            try:
                return [tuple(r) for r in await conn.fetch(query)]
            finally:
                await conn.close()

        return asyncio.run(run())


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    spec = load_spec(LAB_SPEC)
    workdir: Path = tmp_path_factory.mktemp("services")
    pg = LocalPostgres(user="elicence", database="elicence").start()
    bao = LocalBao().start()
    services = None
    try:
        root = Bao(Endpoint(bao.addr), bao.root_token)
        tokens = enrol_department_apps(root, [d.code for d in spec.departments])
        apply_seals(root, spec)
        services = Services.create(
            pg,
            bao,
            exchange_grants(spec),
            root.create_token([LIBRARY_POLICY]),
            root.create_token([EXCHANGE_POLICY]),
            workdir,
        ).start(licence_types(spec))
        yield Shared(services, root, tokens)
    finally:
        if services is not None:
            services.stop()
        bao.stop()
        pg.stop()
