"""The centre's chip re-check (``central listen --csca``, issue 13): microseconds per identity event.

Builds ``--cards`` identity events the way a box makes them: distinct citizens (``seed:N``
profiles), each card read from the virtual chip with PACE, its Active Authentication challenge
derived from the event id; all cards signed by the one test Document Signer (as a state signs tens
of thousands of cards with one DSC). Then times :class:`ChipCheck` on them, in one process,
interleaved round by round so load on a shared machine hits every mode alike:

- ``before``: as the code was before issue 13's tuning: no DSC cache, EF.SOD parsed by asn1crypto and
  DG13 by TLV objects (the fast paths switched off for the run; only tlv.py's inlined loops, ~60 us,
  stay, so the true ratio is a little higher);
- ``uncached``: ``ChipCheck(signer_cache=0)``, every event parses and chains its DSC;
- ``cold``: a fresh cache for each event (the first card of a DSC: a miss, then stored);
- ``warm``: one cache for all events (the DSC cached; the steady state at the centre).

Reported: CPU time of the checking thread (``time.thread_time``: a shared machine's load
inflates it far less than wall time), the median over rounds of the mean per event, and the ratios against ``before``.
``--stages`` adds where a warm event's time goes (EF.SOD parse, the rest of passive
authentication, the citizen from DG13/DG1, Active Authentication).

``--instructions [N]`` also counts instructions per event in each mode under valgrind's cachegrind
(N checks minus none, as bench/check_path.py does): a ratio the machine's load does not move.

    python3 bench/chip_check.py [--cards 20] [--rounds 7] [--stages] [--instructions [N]] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from idstation.agent.access import candidates_for
from idstation.agent.emrtd.active_auth import challenge_for, verify_active
from idstation.agent.emrtd.citizen import citizen_json
from idstation.agent.emrtd.lds import dg13 as dg13_module
from idstation.agent.emrtd.lds import sod as sod_module
from idstation.agent.emrtd.lds.dg13 import parse_dg13
from idstation.agent.emrtd.lds.sod import parse_sod
from idstation.agent.emrtd.passive_auth import verify_passive
from idstation.agent.emrtd.read import ReadPolicy, read_document
from idstation.agent.emrtd.virtual_card.chip import VirtualChip
from idstation.agent.sim.profiles import image_for, test_trust
from idstation.agent.wiring import identity_private
from idstation.hal.reader_sim import SimReader
from idstation.mqtt.central.chip_check import SIGNER_CACHE, ChipCheck
from idstation.mqtt.clock import uuid7

Event = tuple[str, dict[str, Any]]
GOAL_WARM_US = 500.0


def make_events(cards: int) -> list[Event]:
    """``cards`` identity events (event id, opened private part), one per simulated citizen."""
    trust = test_trust()
    events = []
    for seed in range(1, cards + 1):
        image = image_for(f"seed:{seed}")
        reader = SimReader()
        reader.insert(VirtualChip(image), atr=image.atr, extended_length=True, max_response=65536)
        event_id = uuid7()
        result = read_document(
            reader.wait_for_card(1.0), candidates_for(can=image.can), ReadPolicy(), trust,
            aa_challenge=challenge_for(event_id),
        )  # fmt: skip
        private = identity_private("verified", None, result).model_dump(mode="json", exclude_none=True)
        events.append((event_id, private))
    return events


@contextmanager
def _general_parsers() -> Iterator[None]:
    """EF.SOD parsed by asn1crypto and DG13 by TLV objects, as before the fast paths (``fast=False``)."""
    originals = sod_module.parse_fast, dg13_module._usual
    sod_module.parse_fast = lambda _content_info: None
    dg13_module._usual = lambda _data: None
    try:
        yield
    finally:
        sod_module.parse_fast, dg13_module._usual = originals


def _mean_us(events: list[Event], check_for: Callable[[], ChipCheck], before: bool = False) -> float:
    """Mean microseconds per event; ``check_for()`` gives the check for each event (outside the clock)."""
    total = 0.0
    with _general_parsers() if before else nullcontext():
        for event_id, private in events:
            check = check_for()
            start = time.thread_time()
            verdict = check(event_id, private)
            total += time.thread_time() - start
            if verdict != {"passive": "verified", "data_match": True, "presence": "proven"}:
                raise SystemExit(f"unexpected verdict {verdict}")
    return total / len(events) * 1e6


def measure(events: list[Event], rounds: int) -> dict[str, float]:
    trust = test_trust()
    uncached = ChipCheck(trust, signer_cache=0)
    warm = ChipCheck(trust)
    modes: dict[str, tuple[Callable[[], ChipCheck], bool]] = {
        "before": (lambda: uncached, True),
        "uncached": (lambda: uncached, False),
        "cold": (lambda: ChipCheck(trust), False),
        "warm": (lambda: warm, False),
    }
    for check_for, before in modes.values():  # warm-up: imports, first-call costs, the warm cache filled
        _mean_us(events[:2], check_for, before)
    samples: dict[str, list[float]] = {name: [] for name in modes}
    names = list(modes)
    for index in range(rounds):
        for name in names[index % len(names) :] + names[: index % len(names)]:  # rotate the order
            samples[name].append(_mean_us(events, *modes[name]))
    out = {f"{name}_us": statistics.median(values) for name, values in samples.items()}
    for name in ("uncached", "cold", "warm"):
        out[f"before_over_{name}"] = out["before_us"] / out[f"{name}_us"]
    return out


def stages(events: list[Event], repeat: int = 20) -> dict[str, float]:
    """Microseconds per event of each stage of a warm check (the pure functions ChipCheck runs)."""
    trust = test_trust()
    check = ChipCheck(trust)
    inputs = []
    for index, (event_id, private) in enumerate(events):
        groups = {int(k[2:]): base64.b64decode(v) for k, v in private["data_groups"].items()}
        signature = base64.b64decode(private["aa_signature"])
        inputs.append((event_id, base64.b64decode(private["ef_sod"]), groups, signature, index))
    parts: dict[str, Callable[[Any], Any]] = {
        "ef_sod_parse_asn1crypto": lambda i: parse_sod(i[1], fast=False),
        "ef_sod_parse": lambda i: parse_sod(i[1]),
        "passive_after_parse": lambda i: verify_passive(parse_sod(i[1]), i[2], trust, signers=check.signers),
        "dg13_parse_general": lambda i: parse_dg13(i[2][13], fast=False),
        "citizen_dg13_dg1": lambda i: citizen_json(i[2][13], i[2][1]),
        "active_auth": lambda i: verify_active(i[2][15], challenge_for(i[0]), i[3]),
        "whole_check": lambda i: check(i[0], events[i[4]][1]),
    }
    out = {}
    for name, run in parts.items():
        start = time.thread_time()
        for _ in range(repeat):
            for item in inputs:
                run(item)
        out[name] = (time.thread_time() - start) / (repeat * len(inputs)) * 1e6
    out["passive_after_parse"] -= out["ef_sod_parse"]
    return out


def _child(spec: str, mode: str, count: int) -> None:
    """Under cachegrind: ``count`` checks in ``mode`` (before, cold, warm), after 4 to warm up."""
    with open(spec, "rb") as f:
        events = pickle.load(f)  # written by _instructions a moment ago (simulated citizens only)
    trust = test_trust()
    warm = ChipCheck(trust, signer_cache=0 if mode == "before" else SIGNER_CACHE)
    check_for = (lambda: ChipCheck(trust)) if mode == "cold" else (lambda: warm)
    with _general_parsers() if mode == "before" else nullcontext():
        for index in range(4 + count):
            event_id, private = events[index % len(events)]
            check_for()(event_id, private)


def _instructions(events: list[Event], count: int) -> dict[str, Any]:
    """Instructions per event in each mode: cachegrind over ``count`` checks minus over none (the
    machine's load does not move this figure; a few minutes under valgrind)."""
    if shutil.which("valgrind") is None:
        return {"error": "valgrind is not installed"}
    with tempfile.TemporaryDirectory(prefix="idstation-chip-check-cg-") as root:
        spec = Path(root) / "events.pickle"
        spec.write_bytes(pickle.dumps(events))
        refs = {}
        for mode in ("before", "cold", "warm"):
            for n in (0, count):
                command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                           os.path.realpath(sys.executable), __file__, "--child", str(spec), mode, str(n)]  # fmt: skip
                out = subprocess.run(command, capture_output=True, text=True, check=True).stderr
                match = re.search(r"I\s+refs:\s+([\d,]+)", out)
                if match is None:
                    return {"error": "no instruction count from valgrind"}
                refs[mode, n] = int(match.group(1).replace(",", ""))
    per = {mode: (refs[mode, count] - refs[mode, 0]) / count for mode in ("before", "cold", "warm")}
    return {
        "events": count,
        "instructions_per_event": {mode: round(value) for mode, value in per.items()},
        "before_over_warm": round(per["before"] / per["warm"], 2),
        "before_over_cold": round(per["before"] / per["cold"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--stages", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--instructions", type=int, nargs="?", const=40, default=0, metavar="EVENTS")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    events = make_events(max(args.cards, 2))
    result: dict[str, Any] = measure(events, max(args.rounds, 1))
    if args.stages:
        result["stages_us"] = stages(events)
    if args.instructions:
        result["cachegrind"] = _instructions(events, args.instructions)
    result.update(cards=len(events), rounds=args.rounds, load=os.getloadavg()[0], goal_warm_us=GOAL_WARM_US)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"chip re-check, {len(events)} cards of one DSC, median of {args.rounds} rounds (load {result['load']:.2f})")
    for name in ("before", "uncached", "cold", "warm"):
        ratio = f"  before/{name} {result[f'before_over_{name}']:.2f}x" if name != "before" else ""
        print(f"  {name:9s} {result[name + '_us']:8.1f} us/event{ratio}")
    for name, value in result.get("stages_us", {}).items():
        print(f"  stage {name:20s} {value:8.1f} us")
    print(f"  goal: warm < {GOAL_WARM_US:.0f} us/event: {'met' if result['warm_us'] < GOAL_WARM_US else 'NOT met'}")
    if "cachegrind" in result:
        print(f"  cachegrind: {json.dumps(result['cachegrind'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
