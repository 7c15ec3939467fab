"""How a failed task is reported: the words a user needs, not Ansible's generic ones; which
hosts get another try; where a run's SSH connections live (their own, and their sockets fit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from govcloud.errors import OperationError
from infra.hosts.runner import (
    HostResult,
    RunResult,
    _message,
    control_dir,
    retry_unreachable,
)
from security.access.ssh_config import Layout, private_dir

pytestmark = pytest.mark.unit


def test_a_failed_command_reports_its_stderr_and_exit_code() -> None:
    res = {"msg": "non-zero return code", "rc": 3, "stderr": "warming\nnft: syntax error\n"}
    assert _message(res) == "exit 3: nft: syntax error"


def test_a_failed_command_without_stderr_reports_its_stdout() -> None:
    res = {"msg": "non-zero return code", "rc": 1, "stderr": "", "stdout": "FAIL: too weak"}
    assert _message(res) == "exit 1: FAIL: too weak"


def test_a_module_message_is_kept() -> None:
    assert _message({"msg": "Destination /etc/x not writable"}) == (
        "Destination /etc/x not writable"
    )


def test_a_loop_names_the_item_that_failed() -> None:
    res = {
        "results": [
            {"item": "a", "failed": False},
            {"item": "sshd", "failed": True, "msg": "Could not find the requested service"},
        ]
    }
    assert _message(res) == "sshd: Could not find the requested service"


def test_a_loop_names_the_item_whose_host_went_away() -> None:
    res = {
        "msg": "All items completed",
        "results": [{"item": "PASS_MAX_DAYS", "unreachable": True, "msg": "kex reset by peer"}],
    }
    assert _message(res) == "PASS_MAX_DAYS: kex reset by peer"


def _run(**hosts: HostResult) -> RunResult:
    ok = all(h.status in ("ok", "changed") for h in hosts.values())
    return RunResult("hall.yml", "successful" if ok else "failed", 0 if ok else 4, 1.0, dict(hosts))


def test_only_the_unreachable_hosts_are_tried_again_and_only_when_none_failed() -> None:
    tried: list[str] = []

    def again(limit: str) -> RunResult:
        tried.append(limit)
        return _run(**{h: HostResult(h, ok=3) for h in limit.split(",")})

    down = _run(a=HostResult("a", ok=5), b=HostResult("b", unreachable=1))
    assert retry_unreachable(down, again).ok and tried == ["b"]
    failed = _run(b=HostResult("b", unreachable=1), c=HostResult("c", failed=1))
    assert retry_unreachable(failed, again) is failed and tried == ["b"]
    fine = _run(a=HostResult("a", ok=5))
    assert retry_unreachable(fine, again) is fine and tried == ["b"]


def test_each_data_dir_has_its_own_ssh_connections_and_their_sockets_fit(tmp_path: Path) -> None:
    short_a, short_b = control_dir(tmp_path / "a"), control_dir(tmp_path / "b")
    assert short_a != short_b and short_a.is_relative_to(tmp_path)
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 4)
    long_ = control_dir(deep)
    assert not long_.is_relative_to(tmp_path) and long_ == control_dir(deep)
    # Ansible names a socket with 10 characters; ssh binds it first with 17 more
    assert all(len(str(d / ("x" * 10))) + 17 <= 107 for d in (short_a, long_))


def test_the_ssh_configs_sockets_fit_under_a_deep_state_dir() -> None:
    """A state dir 51 characters deep (a test run's temporary directory numbered 100 and up)
    made ssh's master socket 108 bytes: ssh exited 255 and no host was reachable."""
    deep = Path("/tmp/pytest-of-root/pytest-110/stack-state0/ssh")
    control = Layout(deep).control_dir
    assert len(str(control / ("x" * 40))) + 17 <= 107 and control != deep / "cm"
    assert Layout(Path("/var/lib/govcloud/ssh")).control_dir == Path("/var/lib/govcloud/ssh/cm")


def test_a_socket_directory_someone_else_can_open_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(OperationError, match="this user's alone"):
        private_dir(shared)
    assert private_dir(tmp_path / "own").stat().st_mode & 0o777 == 0o700
