"""The hall's web pages against its JSON API for the same data, in the same run.

For each pair (an item's guide, a county's catalog, a citizen's cases) the page and the API call
are each driven by concurrent keep-alive clients for a few seconds; the hall's own CPU time
(utime + stime of its process, read from /proc) gives requests per CPU-second, which for the
single-threaded asyncio hall is requests per second per core, independent of what else the
machine runs. The render meter in /metrics gives the share of the hall's CPU that turning data
into HTML takes while it serves pages.

The catalog page fetches more than the API call (the site, its parents and children, the
departments); the guide and the cases pages read what their API calls read.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time

from bench.common import Result
from clusters.apps.hall.devserver import LocalHall, LocalPostgres, http_json
from clusters.hallseed import seed_plan
from govcloud.spec import load_spec
from govcloud.spec.load import LAB_SPEC

SITE = "520102"
SECONDS = 3.0
CLIENTS = 8


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def meter(hall: LocalHall) -> dict[str, float]:
    status, text = http_json("GET", hall.url + "/metrics", token=hall.admin_token)
    assert status == 200
    found = re.findall(
        r"^(hall_page_render_seconds_total|hall_page_renders_total) (\S+)$", text, re.M
    )
    return {k: float(v) for k, v in found}


async def drive(urls: list[str], headers: dict[str, str], seconds: float) -> tuple[int, int]:
    """Keep CLIENTS requests in flight over ``urls`` for ``seconds``: (ok, failed)."""
    import aiohttp

    ok = failed = 0
    stop = time.monotonic() + seconds
    async with aiohttp.ClientSession(headers=headers) as session:

        async def client(n: int) -> None:
            nonlocal ok, failed
            i = n
            while time.monotonic() < stop:
                async with session.get(urls[i % len(urls)]) as resp:
                    await resp.read()
                    if resp.status == 200:
                        ok += 1
                    else:
                        failed += 1
                i += CLIENTS

        await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    return ok, failed


def measure(hall: LocalHall, urls: list[str], headers: dict[str, str]) -> tuple[float, float, int]:
    """(requests per CPU-second of the hall, render share of that CPU, failures)."""
    assert hall.proc is not None
    asyncio.run(drive(urls[:4], headers, 0.5))  # warm up
    before_cpu, before = cpu_seconds(hall.proc.pid), meter(hall)
    ok, failed = asyncio.run(drive(urls, headers, SECONDS))
    cpu = cpu_seconds(hall.proc.pid) - before_cpu
    after = meter(hall)
    rendering = after["hall_page_render_seconds_total"] - before["hall_page_render_seconds_total"]
    return ok / cpu if cpu else 0.0, rendering / cpu if cpu else 0.0, failed


def run() -> Result:
    pg = LocalPostgres().start()
    hall: LocalHall | None = None
    try:
        hall = LocalHall(pg, extra_env={"HALL_ACCESS_LOG": "off"})
        hall.seed(seed_plan(load_spec(LAB_SPEC)))
        hall.start()
        _, body = http_json("GET", f"{hall.url}/api/sites/{SITE}/items?limit=20")
        items = [i["code"] for i in body["items"]]
        _, account = http_json(
            "POST",
            hall.url + "/api/accounts",
            {"login": f"bench-{secrets.token_hex(4)}", "name": "压测", "password": "pw-12345678"},
        )
        token = account["token"]
        for item in items[:10]:
            http_json("POST", hall.url + "/api/cases", {"item": item}, token)
        api_auth = {"Authorization": f"Bearer {token}"}
        page_auth = {"Cookie": f"__Host-hall_session={token}"}
        pairs = {
            "guide": (
                [f"{hall.url}/items/{i}" for i in items],
                [f"{hall.url}/api/items/{i}" for i in items],
                {},
                {},
            ),
            "catalog": (
                [f"{hall.url}/sites/{SITE}?page={p}" for p in (1, 2)],
                [f"{hall.url}/api/sites/{SITE}/items?offset={o}" for o in (0, 20)],
                {},
                {},
            ),
            "my_cases": (
                [f"{hall.url}/my/cases"],
                [f"{hall.url}/api/my/cases?limit=100"],
                page_auth,
                api_auth,
            ),
        }
        figures: dict[str, float | int | str] = {}
        failures = 0
        shares = []
        guide_ratio = 0.0
        for name, (pages, apis, ph, ah) in pairs.items():
            page_rate, share, f1 = measure(hall, pages, ph)
            api_rate, _, f2 = measure(hall, apis, ah)
            failures += f1 + f2
            shares.append(share)
            figures[f"{name}_pages_per_core_s"] = round(page_rate)
            figures[f"{name}_api_per_core_s"] = round(api_rate)
            ratio = page_rate / api_rate if api_rate else 0.0
            figures[f"{name}_page_vs_api"] = round(ratio, 2)
            if name == "guide":
                guide_ratio = ratio
            figures[f"{name}_render_cpu_share"] = round(share, 3)
        figures["failures"] = failures
        return Result(
            "hall_pages",
            figures,
            {
                "no failed request": failures == 0,
                "a guide page costs at most twice its API call": guide_ratio >= 0.5,
                "rendering takes under half the hall's CPU": max(shares) < 0.5,
            },
        )
    finally:
        if hall is not None:
            hall.stop()
        pg.stop()


if __name__ == "__main__":
    result = run()
    print(result)
