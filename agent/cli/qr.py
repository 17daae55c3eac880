"""``idstation decode-qr`` and ``idstation camera-test``.

decode-qr prints, for each image, the QR text and the citizen fields (or why not); camera-test
shows a technician aiming the camera the frame rate, decode rate and per-frame decode time.
Heavy modules (numpy, zxing-cpp, pillow) are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idstation.agent.cli.exitcodes import Exit, UsageError
from idstation.agent.cli.parser import SubParsers

if TYPE_CHECKING:
    from idstation.agent.qr.decode import QrDecoder
    from idstation.hal.ports import Camera

__all__ = ["register"]


def register(sub: SubParsers, groups: dict[str, SubParsers]) -> None:
    """Add decode-qr and camera-test to the parser."""
    p = sub.add_parser("decode-qr", help="decode the QR code in image files and parse citizen-card payloads")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (png, jpg, webp, ...)")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per image")
    p.add_argument("--budget-ms", type=float, default=None, help="time budget for extra tries per image (ms)")
    p.set_defaults(func=_decode_qr)

    p = sub.add_parser("camera-test", help="live decode rate and frame time, for aiming the camera")
    p.add_argument("--source", default="sim", help="sim | replay:PATH | v4l2[:N] | picamera2[:PROFILE] (default: sim)")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to run (default 10)")
    p.add_argument("--fps", type=float, default=10.0, help="frame rate asked of the camera (default 10)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_camera_test)


# --- decode-qr ------------------------------------------------------------------------------------


def decode_image(path: Path, decoder: QrDecoder) -> dict[str, Any]:
    """One decode-qr result object: path, ok, text, citizen, error, ms."""
    from idstation.agent.errors import QrError
    from idstation.agent.qr.cccd import parse_cccd
    from idstation.hal.camera_replay import load_gray
    from idstation.hal.errors import CameraError

    result: dict[str, Any] = {"path": str(path), "ok": False, "text": None, "citizen": None, "error": None, "ms": None}
    try:
        gray = load_gray(path)
    except CameraError as exc:
        result["error"] = str(exc)
        result["unreadable"] = True
        return result
    start = time.perf_counter()
    hit = decoder.decode(gray)
    result["ms"] = round((time.perf_counter() - start) * 1000, 2)
    if hit is None:
        result["error"] = "no QR code found"
        return result
    result["ok"] = True
    result["text"] = hit.text
    try:
        result["citizen"] = parse_cccd(hit.text).to_json()
    except QrError as exc:
        result["citizen_error"] = str(exc)
        if _looks_like_citizen_card(hit.text):
            result["error"] = str(exc)  # a damaged or truncated card payload; plain QR codes: text only
    return result


def _looks_like_citizen_card(text: str) -> bool:
    head = text.split("|", 1)[0]
    return "|" in text and len(head) == 12 and head.isascii() and head.isdigit()


def _decode_qr(args: argparse.Namespace) -> int:
    from idstation.agent.qr.decode import DecoderConfig, QrDecoder

    config = DecoderConfig() if args.budget_ms is None else DecoderConfig(budget_ms=args.budget_ms)
    decoder = QrDecoder(config)
    results = [decode_image(Path(image), decoder) for image in args.images]
    if args.json:
        public = [{k: v for k, v in r.items() if k != "unreadable"} for r in results]
        print(json.dumps(public, ensure_ascii=False, indent=2))
    else:
        for r in results:
            _print_result(r)
    if any(r.get("unreadable") for r in results):
        return Exit.USAGE
    return Exit.OK if all(r["ok"] for r in results) else Exit.FAILED


def _print_result(r: dict[str, Any]) -> None:
    if not r["ok"]:
        print(f"{r['path']}: FAILED: {r['error']}")
        return
    print(f"{r['path']}: OK ({r['ms']} ms)")
    citizen = r["citizen"]
    if citizen is None:
        print(f"  text: {r['text']}")
        print(f"  not a citizen card: {r.get('citizen_error')}")
        return
    for key, value in citizen.items():
        print(f"  {key}: {value if value is not None else '-'}")


# --- camera-test ----------------------------------------------------------------------------------


def _camera_test(args: argparse.Namespace) -> int:
    from idstation.agent.qr.decode import QrDecoder
    from idstation.agent.sim.camera import make_sim_camera
    from idstation.hal.sources import SourceError, open_camera

    payload = _demo_payload() if args.source == "sim" else None
    try:
        camera = open_camera(args.source, payload=(lambda: payload), fps=args.fps, simulated=make_sim_camera)
        if camera is None:
            raise SourceError("camera-test needs a camera: --source none has none")
        camera.start()
    except SourceError as exc:  # a source outside the grammar is bad input (2), not a device fault
        raise UsageError(f"camera-test: {exc}") from exc
    # CameraError (7) propagates: the catch-all prints it, and the --json error object
    try:
        stats = _run(camera, QrDecoder(), args.seconds)
    finally:
        camera.stop()
    if args.json:
        print(json.dumps(stats))
    else:
        print(
            f"source {args.source}: {stats['frames']} frames in {stats['seconds']:.1f} s "
            f"({stats['fps']:.1f} frames/s), "
            f"decoded {stats['decoded']} ({stats['decode_rate']:.0%}), decode ms median {stats['median_ms']:.1f} "
            f"p95 {stats['p95_ms']:.1f}, unchanged frames {stats['unchanged']}"
        )
    return Exit.OK


def _run(camera: Camera, decoder: QrDecoder, seconds: float) -> dict[str, Any]:
    from idstation.hal.camera_change import ChangeDetector

    change = ChangeDetector()
    times: list[float] = []
    decoded = unchanged = 0
    start = last_report = time.monotonic()
    while time.monotonic() - start < seconds:
        frame = camera.read(timeout=1.0)
        if frame is None:
            if getattr(camera, "path", None) is not None:
                break  # a replay ended
            continue
        unchanged += not change.changed(frame.gray)
        t0 = time.perf_counter()
        hit = decoder.decode(frame)
        times.append((time.perf_counter() - t0) * 1000)
        decoded += hit is not None
        now = time.monotonic()
        if now - last_report >= 1.0:
            last_report = now
            rate = decoded / len(times)
            print(
                f"  {len(times) / (now - start):5.1f} frames/s  decoded {rate:4.0%}  last {times[-1]:6.1f} ms",
                file=sys.stderr,
            )
    elapsed = max(time.monotonic() - start, 1e-9)
    ordered = sorted(times)
    return {
        "frames": len(times),
        "seconds": round(elapsed, 3),
        "fps": round(len(times) / elapsed, 2),
        "decoded": decoded,
        "decode_rate": round(decoded / len(times), 4) if times else 0.0,
        "median_ms": round(statistics.median(ordered), 2) if ordered else 0.0,
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2) if ordered else 0.0,
        "unchanged": unchanged,
    }


def _demo_payload() -> str:
    import numpy as np
    from idstation.agent.sim.synth import random_payload

    return random_payload(np.random.default_rng(1))
