"""How a failed task is reported: the words a user needs, not Ansible's generic ones."""

from __future__ import annotations

import pytest

from infra.hosts.runner import _message

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
