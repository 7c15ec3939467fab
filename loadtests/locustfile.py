"""The locustfile: personas (closed model) or the arrival driver (open model), the profile as a
load shape, the per-level timeline, and the SLO gate in a ``quitting`` listener.

Run it through ``govcloud loadtest run``, which writes the configuration and points
``$GOVCLOUD_LOADTEST_CONFIG`` at it; plain ``locust -f loadtests/locustfile.py`` works too once
that variable is set (for example for a master and workers on several machines).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from locust import LoadTestShape, events
from locust.runners import MasterRunner, WorkerRunner

from loadtests.config import LEVELS
from loadtests.gate import evaluate
from loadtests.personas import PERSONA_CLASSES, config
from loadtests.timeline import Timeline
from loadtests.tlsclient import install

_cfg = config()
install(_cfg.resolve, _cfg.ca_file)  # after locust's gevent patches: its sockets resolve too
_timeline = Timeline(_cfg.bucket_s)
log = logging.getLogger("govcloud.loadtest")

if _cfg.mode == "rate":
    from loadtests.arrival import ArrivalDriver

    __all__ = ["ArrivalDriver"]
else:
    for _name, _cls in PERSONA_CLASSES.items():
        _cls.weight = max(0, round(_cfg.personas.get(_name, 0) * 10))
    Citizen = PERSONA_CLASSES["citizen"]
    Enterprise = PERSONA_CLASSES["enterprise"]
    Kiosk = PERSONA_CLASSES["kiosk"]
    WindowClerk = PERSONA_CLASSES["clerk"]
    Hotline = PERSONA_CLASSES["hotline"]
    # a persona with weight 0 must not run at all
    for _cls in PERSONA_CLASSES.values():
        if _cls.weight == 0:
            del globals()[_cls.__name__]
    del _cls, _name  # locust collects every User class it finds in the module


class ProfileShape(LoadTestShape):
    """The profile's curve: users (closed) or one arrival driver per process (open)."""

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        if elapsed >= _cfg.duration_s:
            return None
        if _cfg.mode == "rate":
            n = max(1, _cfg.processes)
            return n, float(n)
        users = max(1, round(_cfg.load_at(elapsed)))
        return users, max(1.0, users / 2)


@events.request.add_listener
def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    exception: Any,
    response: Any = None,
    **_: Any,
) -> None:
    headers = getattr(response, "headers", None)
    served_by = headers.get("X-Served-By") if headers is not None else None
    _timeline.on_request(name, response_time, exception, served_by=served_by)


@events.report_to_master.add_listener
def _to_master(client_id: str, data: dict[str, Any]) -> None:
    data["govcloud_timeline"] = _timeline.drain()
    data["govcloud_served"] = _timeline.drain_served()


@events.worker_report.add_listener
def _from_worker(client_id: str, data: dict[str, Any]) -> None:
    _timeline.merge(data.get("govcloud_timeline", []))
    _timeline.merge_served(data.get("govcloud_served", {}))


@events.quitting.add_listener
def _gate(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    result = evaluate(environment.stats, _cfg.slo, _cfg.min_requests)
    os.makedirs(_cfg.report_dir, exist_ok=True)
    with open(os.path.join(_cfg.report_dir, "gate.json"), "w", encoding="utf-8") as fh:
        json.dump(result.as_dict(), fh, ensure_ascii=False, indent=1)
    with open(os.path.join(_cfg.report_dir, "timeline.json"), "w", encoding="utf-8") as fh:
        json.dump(
            {
                "bucket_s": _cfg.bucket_s,
                "levels": list(LEVELS),
                "rows": _timeline.rows(),
                "served_by": dict(sorted(_timeline.served.items())),
            },
            fh,
            ensure_ascii=False,
        )
    print(result.summary(), flush=True)
    environment.process_exit_code = 0 if result.ok else 1
    if isinstance(environment.runner, MasterRunner):
        log.info("gate evaluated on the master over %d workers", environment.runner.worker_count)
