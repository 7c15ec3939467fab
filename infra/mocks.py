"""Running the Pulumi program with the engine mocked: the resource graph without touching
anything (used by the unit tests and by the preview benchmark)."""

from __future__ import annotations

import asyncio
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

from infra.settings import Settings


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.inputs: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.inputs[args.name] = dict(args.inputs)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


class Recorder(MockMonitor):
    """The mock monitor, remembering each registration's type, name, parent and dependencies."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.seen: list[dict[str, Any]] = []

    def RegisterResource(self, request: Any) -> Any:  # the engine's method name
        self.seen.append(
            {
                "type": request.type,
                "name": request.name,
                "parent": request.parent,
                "deps": list(request.dependencies),
            }
        )
        return super().RegisterResource(request)


def run_program(settings: Settings) -> list[dict[str, Any]]:
    """Build the program for ``settings`` under mocks; every registration, in order."""
    from infra.program import build

    mocks = Mocks()
    monitor = Recorder(mocks)
    # the mocked engine uses the thread's current event loop; an earlier asyncio.run() in the
    # same process (the load tests, the hall) leaves none behind
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(
        mocks, project="govcloud", stack="test", preview=False, monitor=monitor
    )

    @pulumi.runtime.test
    def go() -> Any:
        return build(settings)["datacenter"].hosts

    go()
    for record in monitor.seen:
        record["inputs"] = mocks.inputs.get(record["name"], {})
    return monitor.seen
