"""The quick look at the bastion before a check run: a real SSH banner or nothing.

Served by real sockets on loopback standing in for the bastion's sshd."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from infra.hosts.apply import silent_bastion
from infra.inventory import InvHost

pytestmark = pytest.mark.unit


def _hosts() -> list[InvHost]:
    bastion = InvHost("jump", "bastion", "management", "127.0.0.1", [])
    return [InvHost("web", "app", "public", "10.255.9.9", []), bastion]


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[int]:
    """A loopback port that accepts and then sends ``request.param`` (or nothing)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    done = threading.Event()

    def serve() -> None:
        conn, _ = sock.accept()
        if request.param:
            conn.sendall(request.param)
        done.wait(5)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield sock.getsockname()[1]
    done.set()
    sock.close()


@pytest.mark.parametrize("server", [b"SSH-2.0-OpenSSH_9.2\r\n"], indirect=True)
def test_a_bastion_whose_sshd_answers_is_not_silent(server: int) -> None:
    assert silent_bastion(_hosts(), port=server, timeout=2) is None


@pytest.mark.parametrize("server", [b"", b"HTTP/1.1 400\r\n"], indirect=True)
def test_an_accepted_connection_without_an_ssh_banner_is_silent(server: int) -> None:
    assert silent_bastion(_hosts(), port=server, timeout=0.5) == "jump"


def test_a_closed_port_is_silent() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    assert silent_bastion(_hosts(), port=port, timeout=1) == "jump"


def test_hosts_without_a_bastion_are_not_checked() -> None:
    assert silent_bastion(_hosts()[:1]) is None
