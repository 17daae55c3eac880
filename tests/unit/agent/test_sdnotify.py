"""sd_notify: datagrams a systemd Type=notify supervisor receives; silent without NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from idstation.agent.sdnotify import Notifier


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    notifier = Notifier(environ={})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog_s is None


def test_ready_status_and_watchdog_reach_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2)
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    notifier = Notifier(environ=env)
    try:
        assert notifier.watchdog_s == 30.0
        assert notifier.ready("online")
        assert server.recv(4096) == b"READY=1\nSTATUS=online"
        notifier.watchdog()
        assert server.recv(4096) == b"WATCHDOG=1"
        notifier.status("outbox 3\nqueued")
        assert server.recv(4096) == b"STATUS=outbox 3 queued"
        notifier.stopping()
        assert server.recv(4096) == b"STOPPING=1"
    finally:
        notifier.close()
        server.close()


def test_abstract_socket_addresses_are_supported() -> None:
    name = f"idstation-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(2)
    notifier = Notifier(environ={"NOTIFY_SOCKET": "@" + name})
    try:
        assert notifier.ready()
        assert server.recv(4096) == b"READY=1"
    finally:
        notifier.close()
        server.close()


def test_a_watchdog_meant_for_another_process_is_ignored() -> None:
    assert Notifier(environ={"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_s is None
