"""A busy second thread for the benches that measure one thread's CPU as a listener sees it.

A listener runs three threads under one GIL. :func:`companion` starts a thread doing what the
listener's other threads do between their GIL-free calls (short stretches of Python, a socket round
trip), so each time the measured thread lets the GIL go (a system call, a C call that releases it)
the other thread takes it, and taking it back costs the measured thread CPU: the listener's real
condition (bench/check_path.py ``contended``, bench/commit_path.py ``--contended``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def companion(busy: bool = True) -> Iterator[None]:
    """While the block runs, a busy companion thread (none without ``busy``); bounded: it stops
    with the block."""
    if not busy:
        yield
        return
    stop = threading.Event()

    def work() -> None:
        a, b = socket.socketpair()
        with a, b:
            while not stop.is_set():
                a.send(b"x" * 100)
                b.recv(100)
                sum(i * i for i in range(200))

    thread = threading.Thread(target=work, name="bench-companion", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
