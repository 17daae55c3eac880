"""Benchmark of the parts of the centre's check path (``CentralProcessor.check``) and of the JSON
line the commit thread prints per accepted event, each against the code it replaced (ee8c4e2), in
the same process, in alternating rounds so that a noisy machine hits both alike.

Parts, old against new (the old code is kept as the reference of tests/unit/mqtt/
test_check_fast_paths.py, which proves both give the same values, verdicts and messages):

- ``parse_topic``: the step-by-step split against one whole-topic match;
- ``is_receipt_topic`` (the listener asks it of every message): the split against a suffix test first;
- ``decode_frame``: the frame split;
- ``header_json``: the strict header parse (``Frame.header``: the decoder's ``decode`` against
  the scan without its two whitespace matches);
- ``json_line`` (commit thread): ``event_to_json_line`` (json.dumps per line against
  :func:`idstation.mqtt.json_text.compact_json`, pydantic-core's serializer where it writes the
  same text, and the received second formatted once per second);
- ``check``: the whole check of the bench mix with the three replaced steps swapped back, with
  the real verifier (libsodium) and with a verifier that accepts everything (``check_no_verify``:
  the CPU around the signature check, which these changes address).

Floors, measured beside them (no old/new): the header as parsed now (strict JSON, then the
schema) against one pass of pydantic-core over the bytes (``validate_json``: not faster here, and
it neither refuses duplicate keys nor gives the header dict the store keeps), the header schema
(pydantic-core, ``parse_header``),
the IdentityPrivate schema, and HPKE open split into X25519 (the one scalar multiplication),
``Suite.decrypt`` (X25519, the key schedule and ChaCha20-Poly1305, all in cryptography's Rust)
and ``open_private`` (decrypt plus the strict parse of the personal part).

CPU is ``time.process_time``; the best round of each is reported with the ratio new/old and the
machine's load. Timings are reported, never asserted.
Run: ``python bench/check_parts.py [--rounds 7] [--devices 100] [--per-device 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt import events as events_module
from idstation.mqtt import seal
from idstation.mqtt.central import processor as processor_module
from idstation.mqtt.central.processor import AcceptedEvent, CentralProcessor, event_to_json_line
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.store import Outcome, Verdict
from idstation.mqtt.events import parse_header, parse_private
from idstation.mqtt.receipt import is_receipt_topic
from idstation.mqtt.topics import parse_topic

from tests.integration.central.boxes import build_frames, interleave
from tests.integration.central.fleet import write_devices
from tests.unit.mqtt.test_check_fast_paths import (
    old_decode_frame,
    old_is_receipt_topic,
    old_json_line,
    old_parse_topic,
)


def _us(fn: Callable[[Any], Any], items: list[Any]) -> float:
    start = time.process_time()
    for item in items:
        fn(item)
    return (time.process_time() - start) / len(items) * 1e6


@contextmanager
def _old_steps() -> Iterator[None]:
    """The check as of ee8c4e2: the three replaced steps swapped back."""
    saved = processor_module.parse_topic, processor_module.decode_frame, seal._strict_decode
    processor_module.parse_topic, processor_module.decode_frame = old_parse_topic, old_decode_frame
    seal._strict_decode = seal._STRICT_JSON.decode
    try:
        yield
    finally:
        processor_module.parse_topic, processor_module.decode_frame, seal._strict_decode = saved


def _pairs(processors: dict[str, CentralProcessor], frames: list[Any], events: list[AcceptedEvent]) -> dict[str, Any]:
    """``name -> (old, new, items)`` of every compared part."""
    topics = [f.topic for f in frames]
    payloads = [f.payload for f in frames]
    headers = [seal.decode_frame(p) for p in payloads]
    pairs: dict[str, Any] = {
        "parse_topic": (old_parse_topic, parse_topic, topics),
        "is_receipt_topic": (old_is_receipt_topic, is_receipt_topic, topics),
        "decode_frame": (old_decode_frame, seal.decode_frame, payloads),
        "header_json": ("old", lambda fr: fr.header, headers),
        "json_line": (old_json_line, event_to_json_line, events),
    }
    for name, processor in processors.items():
        pairs[name] = ("old", lambda f, p=processor: p.check(f.topic, f.payload), frames)
    return pairs


def _floors(central: X25519PrivateKey, frames: list[Any]) -> dict[str, float]:
    split = [seal.decode_frame(f.payload) for f in frames]
    raws = [fr.header for fr in split]
    ident = [(fr, raw) for fr, raw in zip(split, raws, strict=True) if raw["kind"] == "identity"]
    infos = [(fr.sealed, seal.seal_info(raw["device_id"], raw["event_id"]), raw) for fr, raw in ident]
    privates = [seal.open_private(s, central, raw["device_id"], raw["event_id"]) for s, _, raw in infos]
    peer = X25519PrivateKey.generate().public_key()
    suite = seal._suite()
    one_pass = events_module._HEADER.validator.validate_json  # what "one strict parse" would be
    return {
        "header_json_then_schema": _us(lambda fr: parse_header(fr.header), split),
        "header_one_pass_validate_json": _us(lambda fr: one_pass(fr.header_bytes), split),
        "parse_header": _us(parse_header, raws),
        "parse_private_identity": _us(parse_private, privates),
        "x25519_exchange": _us(lambda _: central.exchange(peer), infos),
        "hpke_decrypt_identity": _us(lambda x: suite.decrypt(x[0], central, info=x[1]), infos),
        "open_private_identity": _us(
            lambda x: seal.open_private(x[0], central, x[2]["device_id"], x[2]["event_id"]), infos
        ),
    }


def run(devices: int, per_device: int, rounds: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="idstation-check-parts-"))
    sims = write_devices(root / "registry", devices)
    central = X25519PrivateKey.generate()
    frames = interleave(build_frames(sims, per_device, central.public_key()))
    registry = Registry(root / "registry")
    registry.watch()
    try:
        processors = {
            "check": CentralProcessor(registry, central, store=None),  # type: ignore[arg-type]
            "check_no_verify": CentralProcessor(registry, central, store=None, verify=lambda *_: True),  # type: ignore[arg-type]
        }
        checked = [processors["check"].check(f.topic, f.payload, time.time()) for f in frames]
        events = [
            AcceptedEvent(c.header, c.topic, c.private, Outcome(Verdict.NEW, cursor=1), c.incoming.received_at)
            for c in checked
        ]
        pairs = _pairs(processors, frames, events)
        best: dict[str, dict[str, float]] = {}
        for _ in range(rounds):
            for name, (old, new, items) in pairs.items():
                for label in ("old", "new") if _ % 2 == 0 else ("new", "old"):
                    if label == "new":
                        us = _us(new, items)
                    elif old == "old":
                        with _old_steps():
                            us = _us(new, items)
                    else:
                        us = _us(old, items)
                    best.setdefault(name, {})[label] = min(us, best.get(name, {}).get(label, us))
        floors = _floors(central, frames)
    finally:
        registry.close()
    return {
        "events": len(frames),
        "identity_share": round(sum(f.topic.endswith("/identity") for f in frames) / len(frames), 3),
        "rounds": rounds,
        "us_per_event": {n: {k: round(v, 2) for k, v in f.items()} for n, f in best.items()},
        "ratio_new_to_old": {n: round(f["new"] / f["old"], 3) for n, f in best.items()},
        "saved_us_per_event": {n: round(f["old"] - f["new"], 2) for n, f in best.items()},
        "floors_us": {n: round(v, 2) for n, v in floors.items()},
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--per-device", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up
    print(json.dumps(run(args.devices, args.per_device, args.rounds), indent=2))


if __name__ == "__main__":
    main()
