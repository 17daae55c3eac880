"""What the publisher's outbox queries cost when many identity events wait for the centre's receipt.

The connection thread reads the lanes every 50 ms while idle, the alarm check counts every 5 s,
and every status/heartbeat counts and reads the seq floor. With identity frames of ~30 KB (a
face), any of those that read a row's columns *behind* its frame walks the frame's overflow
pages: the outbox's partial indexes (mqtt/outbox_file.py) keep every one of them index-only.

usage: python bench/outbox_queries.py [--events 2000] [--face-bytes 22000] [--repeat 20] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.events import EventBuilder
from idstation.mqtt.outbox import Lane, Outbox
from idstation.mqtt.seal import Signer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--face-bytes", type=int, default=22000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    central = X25519PrivateKey.generate().public_key()
    builder = EventBuilder("box-1", "s", "c", Signer(Ed25519PrivateKey.generate()), central, boot_id="bench")
    face = base64.b64encode(os.urandom(args.face_bytes)).decode()
    private = {"source": "chip", "citizen": {"n": 1}, "face": {"mime": "image/jpeg", "base64": face}}
    with tempfile.TemporaryDirectory() as tmp:
        box = Outbox(Path(tmp) / "ob.sqlite")
        rows = [
            box.append("identity", "t/identity", lambda s: builder.build("identity", s, private=private))
            for _ in range(args.events)
        ]
        for row in rows:
            box.mark_at_broker(row.id)  # all at the broker, none receipted: the centre is down
        box.flush_acks()
        result: dict[str, float] = {"events": args.events, "frame_bytes": rows[0].size}
        for name, query in (
            ("backlog_query_ms", lambda: box.pending(Lane.BACKLOG, 4)),
            ("live_query_ms", lambda: box.pending(Lane.LIVE, 20)),
            ("depth_ms", box.depth),
            ("seq_floor_ms", box.seq_floor),
        ):
            start = time.perf_counter()
            for _ in range(args.repeat):
                query()
            result[name] = round((time.perf_counter() - start) / args.repeat * 1000, 3)
        box.close()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:18} {value}")


if __name__ == "__main__":
    main()
