"""A citizen who keeps applying, for the hall's failure drills: ``python -m tests.hall.submitter
URL SECONDS [NAME:ADDRESS CA_FILE]`` (an https URL by a name the run resolves itself, trusting
that CA, as a load run does: loadtests.tlsclient). Registers an account, then submits
applications one after another for SECONDS; prints JSON: the account, the codes the hall
accepted (201) and how many attempts failed.

Run inside a hall LAN's network namespace (``nsenter --net``), so it takes the citizens' path
through the edge.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from typing import Any


def call(url: str, method: str = "GET", body: Any = None, token: str = "") -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


def main(url: str, seconds: float) -> dict[str, Any]:
    login = f"c{secrets.token_hex(8)}"
    status, body = call(
        f"{url}/api/accounts",
        "POST",
        {"kind": "citizen", "login": login, "name": "演练用户", "password": secrets.token_hex(12)},
    )
    if status != 201:
        return {"error": f"registration: HTTP {status}"}
    token = body["token"]
    status, page = call(f"{url}/api/sites/52/items?limit=50")
    items = [i["code"] for i in (page or {}).get("items", []) if i.get("online")]
    if not items:
        return {"error": f"no online item in the province's catalog (HTTP {status})"}
    accepted: list[str] = []
    failed = 0
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        status, body = call(
            f"{url}/api/cases",
            "POST",
            {"item": items[n % len(items)], "form": {"note": "演练"}},
            token,
        )
        n += 1
        if status == 201 and body and body.get("code"):
            accepted.append(body["code"])
        else:
            failed += 1
            time.sleep(0.2)
    return {"login": login, "accepted": accepted, "failed": failed}


if __name__ == "__main__":
    if len(sys.argv) > 4:
        from loadtests.tlsclient import install, parse_resolve

        install(parse_resolve([sys.argv[3]]), sys.argv[4])
    print(json.dumps(main(sys.argv[1].rstrip("/"), float(sys.argv[2]))))
