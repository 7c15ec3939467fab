"""The one way govcloud runs Ansible: ``ansible_runner.run`` over the plan's inventory.

Hosts are reached through the one ``ssh_config`` (bastion + ProxyJump). Results come from the
runner's events, never from parsing its output: per host ok / changed / failed / unreachable /
skipped and how long it took, and the failed tasks with their messages. Artifacts are rotated;
nothing secret goes into the runner's env files (connections use keys and certificates named in
the ssh_config, never passwords).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ansible_runner
import yaml

from govcloud.errors import InputError, OperationError
from govcloud.paths import state_dir
from infra.hosts.digests import PLAYBOOKS
from security.access.ssh_config import private_dir, socket_dir

KEEP_ARTIFACTS = 5


@dataclass
class HostResult:
    host: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    first: float | None = None
    last: float | None = None

    @property
    def seconds(self) -> float:
        return (self.last - self.first) if self.first and self.last else 0.0

    @property
    def status(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "changed" if self.changed else "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": self.status,
            "ok": self.ok,
            "changed": self.changed,
            "failed": self.failed,
            "unreachable": self.unreachable,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 2),
        }


@dataclass
class Failure:
    host: str
    task: str
    message: str


@dataclass
class RunResult:
    playbook: str
    status: str
    rc: int
    seconds: float
    hosts: dict[str, HostResult] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and all(h.status in ("ok", "changed") for h in self.hosts.values())

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "playbook": self.playbook,
            "status": self.status,
            "rc": self.rc,
            "seconds": round(self.seconds, 2),
            "changed": self.changed,
            "hosts": [h.as_dict() for h in self.hosts.values()],
            "failures": [f.__dict__ for f in self.failures],
        }


@dataclass(frozen=True)
class Connection:
    """How Ansible connects: through the ssh_config, as ``user`` with sudo."""

    ssh_config: Path
    user: str
    tuned: bool = True  # SSH multiplexing, pipelining, 16 forks (False: Ansible's defaults)
    mitogen: bool = True  # when tuned: Mitogen's strategy (one interpreter per host and run)
    forks: int | None = None  # None: 16 when tuned, else Ansible's default of 5
    identity_file: Path | None = None  # the key (also in the ssh_config)
    certificate: Path | None = None  # its SSH certificate, when automation logs in with one

    @property
    def fork_count(self) -> int:
        return self.forks or (16 if self.tuned else 5)


def _timestamp(event: dict[str, Any]) -> float:
    created = event.get("created")
    if isinstance(created, str):
        from datetime import datetime

        try:
            return datetime.fromisoformat(created).timestamp()
        except ValueError:
            pass
    return time.time()


def warm_bastion(config: Path) -> None:
    """Open the bastion's master connection before the forks start, so every host's ProxyJump
    shares it instead of each racing to open its own: a burst of new connections beyond
    sshd's MaxStartups gets some dropped during key exchange. Best effort: a failure here
    shows up, with its reason, in the play itself."""
    if not config.is_file() or "\nHost bastion" not in config.read_text(encoding="utf-8"):
        return
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            ["ssh", "-F", str(config), "-o", "BatchMode=yes", "bastion", "true"],
            capture_output=True,
            timeout=30,
            check=False,
        )


def _message(res: dict[str, Any]) -> str:
    for item in res.get("results", []) or []:  # a loop: the first item that failed
        if isinstance(item, dict) and (item.get("failed") or item.get("unreachable")):
            label = item.get("_ansible_item_label", item.get("item", ""))
            return f"{label}: {_message(item)}"
    texts = {k: str(res.get(k) or "").strip() for k in ("msg", "stderr", "module_stderr", "reason")}
    if texts["msg"] == "non-zero return code" and (texts["stderr"] or res.get("stdout")):
        # a command that failed: what it printed says why, not ansible's generic message
        detail = texts["stderr"] or str(res.get("stdout")).strip()
        return f"exit {res.get('rc')}: {detail.splitlines()[-1][:400]}"
    for value in texts.values():
        if value:
            return value.splitlines()[-1][:400]
    return json.dumps(res)[:400]


def retry_unreachable(run: RunResult, again: Callable[[str], RunResult]) -> RunResult:
    """Hosts a run could not reach get one more try, limited to them, when no host failed:
    the bastion turns some away while many connections start (sshd's MaxStartups), and a run
    started right after an interrupted one can find a connection it shared gone. ``again``
    runs the play limited to the hosts given; the result is the first run's hosts with those
    the second run reached again in place, and the second run's outcome."""
    down = [h.host for h in run.hosts.values() if h.status == "unreachable"]
    if not down or any(h.status == "failed" for h in run.hosts.values()):
        return run
    second = again(",".join(down))
    return replace(
        second, hosts={**run.hosts, **second.hosts}, seconds=run.seconds + second.seconds
    )


def mitogen_strategies() -> Path:
    """Where Mitogen's strategy plugins are (its ``ansible_mitogen`` package, installed with
    govcloud). Under Mitogen, Ansible keeps one Python interpreter per host for a whole run and
    sends each task to it, instead of an SSH command and a new interpreter per task: a play
    that changes nothing takes about a third of the time on the lab (bench ansible_strategy)."""
    import importlib.util

    found = importlib.util.find_spec("ansible_mitogen")
    if found is None or not found.submodule_search_locations:
        raise OperationError("Mitogen is not installed (make deps installs govcloud's packages)")
    return Path(next(iter(found.submodule_search_locations))) / "plugins" / "strategy"


def control_dir(data: Path) -> Path:
    """The directory of the SSH connections a run multiplexes, one per private data dir (runs
    in it take turns). Runs must not share them: a connection dies with the run that opened it
    (its ProxyJump process goes with that run's terminal), and a command another run had in
    flight on it is then run again by Ansible's retry, a second time."""
    return socket_dir(data.resolve() / "cp", 10)  # Ansible names its sockets with 10


def run_playbook(
    playbook: str,
    inventory: dict[str, Any],
    connection: Connection,
    *,
    limit: str | None = None,
    check: bool = False,
    extravars: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    data_dir: Path | None = None,
) -> RunResult:
    """Run ``playbooks/<playbook>`` and return what happened on each host."""
    path = PLAYBOOKS / playbook
    if not path.is_file():
        raise InputError(f"no playbook {playbook} under playbooks/")
    # one private data dir per playbook (its artifacts rotate there), and one run at a time in it
    data = data_dir or state_dir() / "ansible" / Path(playbook).stem
    (data / "inventory").mkdir(parents=True, exist_ok=True)
    with (data / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _run(
            path,
            playbook,
            data,
            inventory,
            connection,
            limit=limit,
            check=check,
            extravars=extravars,
            progress=progress,
        )


def _run(
    path: Path,
    playbook: str,
    data: Path,
    inventory: dict[str, Any],
    connection: Connection,
    *,
    limit: str | None,
    check: bool,
    extravars: dict[str, Any] | None,
    progress: Callable[[str], None] | None,
) -> RunResult:
    inv = data / "inventory" / "hosts.yml"
    inv.write_text(yaml.safe_dump(inventory, allow_unicode=True, sort_keys=False))
    say = progress or (lambda _m: None)

    ssh_args = f"-F {connection.ssh_config}"
    if connection.certificate is not None:
        ssh_args += f" -o CertificateFile={connection.certificate}"
    env = {
        "ANSIBLE_SSH_COMMON_ARGS": ssh_args,
        "ANSIBLE_REMOTE_USER": connection.user,
        "ANSIBLE_BECOME": "True",
        "ANSIBLE_ROLES_PATH": str(PLAYBOOKS / "roles"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",  # the ssh_config decides (known_hosts, host CA)
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_FORCE_COLOR": "False",
        "ANSIBLE_TIMEOUT": "20",
        # a new connection through the bastion can be refused while many open at once (sshd's
        # MaxStartups on a bastion not yet configured): try again rather than fail the host
        "ANSIBLE_SSH_RETRIES": "3",
    }
    if connection.identity_file is not None:
        env["ANSIBLE_PRIVATE_KEY_FILE"] = str(connection.identity_file)
    if connection.tuned:  # else Ansible's defaults: no pipelining, 60 s multiplexing
        env["ANSIBLE_PIPELINING"] = "True"
        if not connection.mitogen:
            env["ANSIBLE_SSH_ARGS"] = "-o ControlMaster=auto -o ControlPersist=300s"
        else:
            env["ANSIBLE_STRATEGY_PLUGINS"] = str(mitogen_strategies())
            env["ANSIBLE_STRATEGY"] = "mitogen_linear"
            # Mitogen keeps one connection per host for the run and sets no ControlPath of
            # its own: the ssh_config's shared one would make another run's master carry this
            # run's commands (cut when that run ends). No multiplexing to the hosts, then;
            # the hop through the bastion still shares the bastion's master (warm_bastion).
            env["ANSIBLE_SSH_ARGS"] = "-o ControlMaster=no -o ControlPath=none"
    env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(private_dir(control_dir(data)))

    hosts: dict[str, HostResult] = {}
    failures: list[Failure] = []

    def on_event(event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data_ = event.get("event_data", {}) or {}
        host = data_.get("host")
        if kind == "playbook_on_task_start":
            say(f"task: {data_.get('task', '')}")
        if not host or not kind.startswith("runner_on_"):
            return True
        r = hosts.setdefault(host, HostResult(host))
        stamp = _timestamp(event)
        r.first = r.first or stamp
        r.last = stamp
        res = data_.get("res", {}) or {}
        if kind == "runner_on_ok":
            if res.get("changed"):
                r.changed += 1
            else:
                r.ok += 1
        elif kind == "runner_on_failed" and not data_.get("ignore_errors"):
            r.failed += 1
            failures.append(Failure(host, data_.get("task", ""), _message(res)))
        elif kind == "runner_on_unreachable":
            r.unreachable += 1
            failures.append(Failure(host, data_.get("task", ""), _message(res)))
        elif kind == "runner_on_skipped":
            r.skipped += 1
        return True

    # ansible-playbook comes with ansible-core, next to the interpreter running govcloud
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    warm_bastion(connection.ssh_config)
    # ansible-runner writes env/cmdline, env/extravars, ... only for what it is given, and
    # reads whatever is there: files left by an earlier run (--check, --full) would apply to
    # this one too. Each run starts from an empty env/.
    shutil.rmtree(data / "env", ignore_errors=True)
    start = time.monotonic()
    try:
        result = ansible_runner.run(
            private_data_dir=str(data),
            project_dir=str(PLAYBOOKS),
            playbook=str(path),
            inventory=str(inv),
            envvars=env,
            extravars=extravars or {},
            limit=limit,
            cmdline="--check --diff" if check else None,
            forks=connection.fork_count,
            event_handler=on_event,
            quiet=True,
            rotate_artifacts=KEEP_ARTIFACTS,
        )
    except Exception as exc:  # the runner itself failed to start
        raise OperationError(f"ansible-runner could not run {playbook}: {exc}") from exc
    return RunResult(
        playbook, str(result.status), int(result.rc or 0), time.monotonic() - start, hosts, failures
    )
