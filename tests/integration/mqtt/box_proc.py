"""A box process for kill -9 tests with receipts on: submits N identity events, prints each id once
durable, then ``at_broker`` once all of them reached the broker, then waits to be killed.

usage: python -m tests.integration.mqtt.box_proc URL DEVICE SITE COUNTER SIGNING_KEY CENTRAL_KEY OUTBOX N RECEIPT_KEYS
"""

from __future__ import annotations

import sys
import time

import structlog
from cryptography.hazmat.primitives import serialization
from idstation.mqtt.client import Publisher, PublisherConfig
from idstation.mqtt.seal import load_central_private_key


def main(argv: list[str]) -> int:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is for results
    url, device, site, counter, key, central, outbox, count, receipt_keys = argv[:9]
    central_public = load_central_private_key(central).public_key()
    pem = central_public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    config = PublisherConfig(
        broker_url=url,
        device_id=device,
        site=site,
        counter=counter,
        signing_key=key,
        central_public_key=pem.decode(),
        outbox_path=outbox,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        receipt_keys=receipt_keys,
        receipt_timeout_s=600.0,  # no resend before the kill
    )
    pub = Publisher(config)
    pub.start()
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
