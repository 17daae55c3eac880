"""A publisher process for kill -9 tests: submits N identity events, prints each id once durable.

usage: python -m tests.integration.mqtt.publisher_proc URL DEVICE SITE COUNTER SIGNING_KEY CENTRAL_KEY OUTBOX N
       [INTERVAL_S [DRAIN_TIMEOUT_S]]
"""

from __future__ import annotations

import sys
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from idstation.mqtt.client import Publisher, PublisherConfig
from idstation.mqtt.seal import load_central_private_key


def start_publisher(argv: list[str], **extra: Any) -> Publisher:
    """A started Publisher from the common arguments URL DEVICE SITE COUNTER SIGNING_KEY CENTRAL_KEY OUTBOX
    (``extra``: further PublisherConfig fields). Shared with ``box_proc``."""
    url, device, site, counter, key, central, outbox = argv[:7]
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
        **extra,
    )
    pub = Publisher(config)
    pub.start()
    return pub


def main(argv: list[str]) -> int:
    count = argv[7]
    interval = float(argv[8]) if len(argv) > 8 else 0.0
    drain_timeout = float(argv[9]) if len(argv) > 9 else 30.0
    pub = start_publisher(argv)
    for n in range(int(count)):
        event_id = pub.submit_identity({"source": "chip", "citizen": {"n": n}, "verification": {}})
        sys.stdout.write(event_id + "\n")
        sys.stdout.flush()
        if interval:
            time.sleep(interval)
    drained = pub.drain(drain_timeout)
    pub.stop(5)
    sys.stdout.write("DRAINED\n" if drained else "NOT-DRAINED\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
