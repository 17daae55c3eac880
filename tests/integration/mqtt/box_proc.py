"""A box process for kill -9 tests with receipts on: submits N identity events, prints each id once
durable, then ``at_broker`` once all of them reached the broker, then waits to be killed.

usage: python -m tests.integration.mqtt.box_proc URL DEVICE SITE COUNTER SIGNING_KEY CENTRAL_KEY OUTBOX N RECEIPT_KEYS
"""

from __future__ import annotations

import sys
import time

import structlog

from tests.integration.mqtt.publisher_proc import start_publisher


def main(argv: list[str]) -> int:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is for results
    count, receipt_keys = argv[7], argv[8]
    # no resend before the kill
    pub = start_publisher(argv, receipt_keys=receipt_keys, receipt_timeout_s=600.0)
    for n in range(int(count)):
        sys.stdout.write(pub.submit_identity({"source": "chip", "citizen": {"n": n}, "verification": {}}) + "\n")
        sys.stdout.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and pub.stats()["outbox"]["awaiting_receipt"] < int(count):
        time.sleep(0.05)
    sys.stdout.write("at_broker\n")
    sys.stdout.flush()
    time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
