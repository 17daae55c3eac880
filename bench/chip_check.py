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

    python3 bench/chip_check.py [--cards 20] [--rounds 7] [--stages] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
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
from idstation.mqtt.central.chip_check import ChipCheck
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--stages", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    events = make_events(max(args.cards, 2))
    result: dict[str, Any] = measure(events, max(args.rounds, 1))
    if args.stages:
        result["stages_us"] = stages(events)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
