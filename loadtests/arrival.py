"""The open (arrival-rate) model: requests arrive on a schedule, whatever the server does.

Locust's users are a closed model: a user waits for its response before the next request, so a
slow server lowers the offered load and hides its own slowness. Here one driver per locust
process draws Poisson arrivals at the profile's rate (divided over the processes) and hands each
arrival to an idle persona session (a user of the level and persona drawn for it) in its own
greenlet. Sessions are created as concurrency demands, up to ``max_sessions`` per process; an
arrival that finds none free is recorded as a failed request named ``[level] (dropped arrival)``,
so an overloaded hall shows up in the error ratio instead of as a quietly lower rate (k6 calls
these dropped iterations).
"""

from __future__ import annotations

import random
import time
from typing import Any

import gevent
from gevent.pool import Group
from locust import User, task
from locust.exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately

from loadtests.personas import PERSONA_CLASSES, Citizen, Persona, config, pick_level


class DroppedArrival(Exception):
    pass


class ArrivalDriver(User):
    host = "http://arrival-driver.invalid"  # each session talks to its own site's hall

    def on_start(self) -> None:
        self.inflight = Group()
        self.idle: dict[tuple[str, str], list[Persona]] = {}
        self.sessions = 0
        self.t0 = time.monotonic()
        cfg = config()
        self.persona_names = [p for p, w in cfg.personas.items() if w > 0]
        self.persona_weights = [cfg.personas[p] for p in self.persona_names]

    def on_stop(self) -> None:
        self.inflight.kill(block=False)

    @task
    def drive(self) -> None:
        cfg = config()
        share = max(1, cfg.processes)
        next_at = time.monotonic()
        while True:
            now = time.monotonic()
            if now - self.t0 >= cfg.duration_s:
                # the run is over: no new arrivals while locust lets the last ones finish
                gevent.sleep(1)
                continue
            rate = cfg.load_at(now - self.t0) / share
            if rate <= 0:
                gevent.sleep(0.05)
                next_at = time.monotonic()
                continue
            next_at += random.expovariate(rate)
            delay = next_at - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            self.arrive()

    def arrive(self) -> None:
        cfg = config()
        level = pick_level(cfg)
        persona = random.choices(self.persona_names, self.persona_weights)[0]
        key = (persona, level)
        pool = self.idle.get(key)
        if pool:
            session = pool.pop()
        elif self.sessions < cfg.max_sessions:
            session = PERSONA_CLASSES[persona](self.environment, level)
            self.sessions += 1
        else:
            self.environment.events.request.fire(
                request_type="ARRIVAL",
                name=f"[{level}] (dropped arrival)",
                response_time=0,
                response_length=0,
                exception=DroppedArrival(
                    f"no free session: {cfg.max_sessions} busy in this process"
                ),
                context={},
            )
            return
        self.inflight.spawn(self._serve, session, key)

    def _serve(self, session: Persona, key: tuple[str, str]) -> None:
        try:
            if not session.started:
                session.on_start()
                if isinstance(session, Citizen):
                    return  # its registration was this arrival's request
            action: Any = random.choice(session.tasks)
            action(session)
        except (RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet):
            pass
        finally:
            self.idle.setdefault(key, []).append(session)
