"""A central listener in its own process (so a test can measure its memory or kill it).

usage: python -m tests.integration.mqtt.listener_proc URL REGISTRY_DIR CENTRAL_KEY STATE PROTOCOL
Prints ``ready`` once subscribed, then one JSON line per message: {"accepted": event_id} or
{"rejected": reason}. Runs until its stdin closes.
"""

from __future__ import annotations

import json
import sys
import threading

from idstation.mqtt.central.listener import CentralListener

_lock = threading.Lock()


def _say(line: dict[str, str]) -> None:
    with _lock:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


def main(argv: list[str]) -> int:
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is for results
    url, registry, key, state, protocol = argv[:5]
    listener = CentralListener(
        url,
        registry,
        key,
        on_event=lambda e: _say({"accepted": e.event_id}),
        on_reject=lambda _t, exc: _say({"rejected": exc.reason}),
        state_path=state,
        protocol=protocol,
        shared=False,
    )
    listener.start()
    if not listener.wait_ready(20):
        return 9
    _say({"ready": listener._conn.negotiated or ""})
    sys.stdin.read()
    listener.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
