"""``idstation read-card`` and ``idstation card serve | make-profile | inspect``.

Exit codes (agent/cli/exitcodes.py): 0 read and verified; 1 read but a check failed (the JSON is
printed in full); 2 bad input; 3 no card; 4 access denied; 5 card removed; 6 card error; 7 reader
or PC/SC unavailable. With ``--json`` an error prints ``{"error": kind, "message": ...}`` to
stdout. Logs go to stderr only. Heavy modules (pyscard, the eMRTD core) are imported lazily.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idstation.agent.cli.exitcodes import Exit, UsageError
from idstation.agent.cli.parser import SubParsers

if TYPE_CHECKING:
    from idstation.agent.emrtd.keys import CanKey, MrzKey
    from idstation.agent.emrtd.trust import TrustStore
    from idstation.agent.emrtd.virtual_card.image import ChipImage
    from idstation.hal.ports import CardConnection, CardReader
    from idstation.hal.sources import Source

    # the work a card command does once the card answers: (connection, access keys, virtual reader)
    CardWork = Callable[[CardConnection, list[CanKey | MrzKey], bool], int]

FAULT_FLAGS = (
    ("--bac-only", "bac_only", "no EF.CardAccess / PACE: BAC only"),
    ("--pace-mrz-refused", "pace_mrz_refused", "PACE with the MRZ password answers 6982"),
    ("--no-extended-length", "no_extended_length", "the chip refuses extended-length APDUs"),
    ("--no-sfi", "no_sfi", "the chip refuses READ BINARY by short EF identifier"),
    ("--bad-response-mac", "bad_response_mac", "corrupt response MACs after access control"),
    ("--dead-after-access", "dead_after_access", "the chip answers 6F00 after access control"),
)


def register(sub: SubParsers, groups: dict[str, SubParsers]) -> None:
    """Add read-card and the card group's commands."""
    read = sub.add_parser("read-card", help="read and verify a citizen ID card's chip")
    _reader_args(read)
    _key_args(read)
    read.add_argument("--csca", metavar="DIR", help="directory of trusted CSCA certificates / master lists")
    read.add_argument(
        "--trust-test-csca", action="store_true", help="also trust the built-in test CSCA (virtual cards only)"
    )
    read.add_argument("--with-face", action="store_true", help="also read DG2 and print the face image")
    read.add_argument("--json", action="store_true", help="print the result as JSON")
    read.set_defaults(func=_cmd_read_card)

    card = groups["card"]
    serve = card.add_parser("serve", help="attach a virtual card to vpcd until SIGINT/SIGTERM")
    serve.add_argument("--profile", required=True, help="built-in profile name or profile directory")
    serve.add_argument("--port", type=int, default=35963, help="vpcd port (35963 = Virtual PCD 00 00)")
    serve.add_argument("--host", default="127.0.0.1", help="vpcd host (default 127.0.0.1)")
    for flag, _attr, help_text in FAULT_FLAGS:
        serve.add_argument(flag, action="store_true", help=help_text)
    serve.add_argument("--remove-after", type=int, metavar="N", help="the card leaves the field after N commands")
    serve.add_argument(
        "--reinsert-after", type=float, default=1.0, metavar="S", help="after a pull, place the card again (s)"
    )
    serve.add_argument(
        "--hostile",
        metavar="NAME",
        help="serve a hostile file in place of a genuine one (agent/emrtd/virtual_card/hostile.py)",
    )
    serve.add_argument("--slow-ms", type=int, default=0, metavar="N", help="extra latency per command (ms)")
    serve.add_argument("--tamper-dg", type=int, metavar="N", help="alter DGn after signing (passive fails)")
    serve.add_argument("--expired-signer", action="store_true", help="sign with an expired document signer")
    serve.add_argument("--unknown-csca", action="store_true", help="sign under a CSCA nobody trusts")
    serve.set_defaults(func=_cmd_serve)

    make = card.add_parser("make-profile", help="write a random realistic citizen profile with keys")
    make.add_argument("--seed", type=int, required=True, help="random seed (same seed, same citizen)")
    make.add_argument("--out", required=True, metavar="DIR", help="output directory")
    make.set_defaults(func=_cmd_make_profile)

    inspect = card.add_parser("inspect", help="a card's capabilities without personal data")
    _reader_args(inspect)
    _key_args(inspect)
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    inspect.set_defaults(func=_cmd_inspect)


def _reader_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reader",
        default="pcsc",
        help="pcsc (first reader holding a card), pcsc:NAME (name substring), sim:PROFILE (in-process)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds to wait for a card")
    parser.add_argument("--short-apdus", action="store_true", help="the reader carries no extended-length APDUs")


def _key_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--qr", metavar="TEXT", help="the card's QR text: PACE with the CAN, then BAC keys")
    parser.add_argument("--can", metavar="DIGITS", help="the 6-digit CAN (last 6 digits of the ID number)")
    parser.add_argument("--mrz", metavar="TEXT", help="the MRZ text (TD1: 3 lines of 30)")
    parser.add_argument("--doc-number", metavar="N", help="document number (last 9 digits of the ID)")
    parser.add_argument("--dob", metavar="YYMMDD", help="date of birth")
    parser.add_argument("--expiry", metavar="YYMMDD", help="date of expiry")


# --- output ------------------------------------------------------------------------------------
def _print_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


# --- inputs ------------------------------------------------------------------------------------
def _candidates(args: argparse.Namespace) -> list[CanKey | MrzKey]:
    from idstation.agent.access import candidates_for
    from idstation.agent.errors import ParseError

    given = [args.qr is not None, args.can is not None, args.mrz is not None, args.doc_number is not None]
    if sum(given) != 1:
        raise UsageError("give exactly one key: --qr, --can, --mrz or --doc-number with --dob and --expiry")
    if args.doc_number is not None and (args.dob is None or args.expiry is None):
        raise UsageError("--doc-number needs --dob and --expiry")
    try:
        return candidates_for(
            qr=args.qr, can=args.can, mrz=args.mrz, doc_number=args.doc_number, dob=args.dob, expiry=args.expiry
        )
    except ParseError as exc:
        raise UsageError(str(exc)) from exc


VIRTUAL_READER_PREFIX = "Virtual PCD"  # vsmartcard's vpcd: test machines only, never on a box


def _trust(args: argparse.Namespace, virtual: bool) -> TrustStore:
    """--csca DIR, else the box's CSCA directory (IDSTATION_CSCA_DIR or /etc/idstation/csca) if any.

    The built-in test CSCA is trusted with --trust-test-csca, or by default when the card sits on a
    virtual reader (sim:, or vpcd) and no --csca was given: a real reader never trusts it implicitly.
    """
    import os

    from idstation.agent.config import DEFAULT_CSCA_DIR
    from idstation.agent.emrtd.read import load_trust
    from idstation.agent.errors import ConfigError

    csca = args.csca
    if csca is None:
        configured = Path(os.environ.get("IDSTATION_CSCA_DIR") or DEFAULT_CSCA_DIR)
        csca = str(configured) if configured.exists() else None
    try:
        if args.trust_test_csca or (virtual and args.csca is None):
            from idstation.agent.sim.profiles import test_csca_pem

            return load_trust(csca, extra_pem=test_csca_pem())
        return load_trust(csca)
    except (ConfigError, OSError, ValueError) as exc:
        raise UsageError(f"cannot load the CSCA directory: {type(exc).__name__}") from exc


def _open_reader(spec: str, short_apdus: bool) -> tuple[CardReader, bool]:
    """A CardReader for ``--reader`` (``hal.sources`` grammar: pcsc, pcsc:NAME, sim:PROFILE) and whether
    it is simulated."""
    from idstation.hal.sources import open_reader, parse_reader

    source = parse_reader(spec)
    if source.kind == "none" or (source.kind == "sim" and not source.arg):
        raise UsageError("--reader must be pcsc, pcsc:NAME or sim:PROFILE")

    def simulated(src: Source) -> CardReader:
        from idstation.agent.emrtd.virtual_card.chip import VirtualChip
        from idstation.hal.reader_sim import SimReader

        image = _image(src.arg)
        reader = SimReader(f"sim:{src.arg}")
        reader.insert(
            VirtualChip(image), atr=image.atr, extended_length=not short_apdus, max_response=image.max_response
        )
        return reader

    max_response = 256 if short_apdus else 65536
    reader = open_reader(source, extended_length=not short_apdus, max_response=max_response, simulated=simulated)
    if reader is None:  # "none" was refused above
        raise UsageError("--reader must be pcsc, pcsc:NAME or sim:PROFILE")
    return reader, source.kind == "sim"


def _image(
    spec: str,
    faults: dict[str, Any] | None = None,
    *,
    tamper_dg: int | None = None,
    expired_signer: bool = False,
    unknown_csca: bool = False,
) -> ChipImage:
    """The chip image of a built-in profile, ``seed:N`` or a profile directory, with fault switches.

    Adapter over B's profiles module: ``image_for`` takes no PKI, so the profile is resolved here
    and ``build_chip_image`` gets a foreign PKI for ``unknown_csca``.
    """
    import dataclasses

    from idstation.agent.errors import ConfigError, ParseError
    from idstation.agent.sim import profiles
    from idstation.agent.sim.profile_data.pki import UNKNOWN_CSCA_SEED, default_pki

    try:
        pki = None
        if spec in profiles.builtin_profiles():
            profile = profiles.builtin_profiles()[spec]
        elif spec.startswith("seed:") and spec[5:].isdigit():
            profile = profiles.make_profile(int(spec[5:]))
        elif Path(spec).is_dir():
            profile, pki = profiles.load_profile(spec)
        else:
            raise UsageError("unknown profile: give a built-in name, seed:N or a profile directory")
        if unknown_csca:
            pki = default_pki(UNKNOWN_CSCA_SEED, expired=expired_signer)
        chosen = dataclasses.replace(profile.faults, **(faults or {}))
        return profiles.build_chip_image(profile, pki, chosen, tamper_dg=tamper_dg, expired_signer=expired_signer)
    except (ConfigError, ParseError, OSError, TypeError) as exc:
        raise UsageError(f"cannot build the virtual card: {exc}") from exc


def _with_card(args: argparse.Namespace, work: CardWork) -> int:
    """Parse keys, open the reader, wait for a card, run ``work(conn, candidates, sim)``; map errors."""
    from idstation.hal.errors import NoCard

    reader = None
    try:
        candidates = _candidates(args)
        reader, sim = _open_reader(args.reader, args.short_apdus)
        conn = reader.wait_for_card(args.timeout)
        if conn is None:
            raise NoCard(f"no card on the reader within {args.timeout:g} s")
        virtual = sim or reader.name.startswith(VIRTUAL_READER_PREFIX)
        try:
            return work(conn, candidates, virtual)
        finally:
            conn.close()
    finally:
        if reader is not None:
            reader.close()


# --- commands ----------------------------------------------------------------------------------
def _cmd_read_card(args: argparse.Namespace) -> int:
    def work(conn: CardConnection, candidates: list[CanKey | MrzKey], virtual: bool) -> int:
        from idstation.agent.emrtd.read import ReadPolicy, read_document

        trust = _trust(args, virtual)
        result = read_document(conn, candidates, ReadPolicy(with_face=args.with_face), trust)
        if args.json:
            _print_json(result.to_json())
        else:
            _print_summary(result.to_json(), result.verified)
        return int(Exit.OK if result.verified else Exit.FAILED)

    return _with_card(args, work)


def _print_summary(data: dict[str, Any], verified: bool) -> None:
    checks = ", ".join(f"{name} {v.get('result')}" for name, v in data["verification"].items())
    lines = [f"{'VERIFIED' if verified else 'NOT VERIFIED'}: {checks}", f"access: {data['access']}"]
    for key, value in (data.get("citizen") or {}).items():
        if value not in (None, ""):
            lines.append(f"{key.replace('_', ' ')}: {value}")
    lines.extend(f"mrz: {line}" for line in data["mrz"])
    lines.append(f"{data['apdus']} APDUs, {data['bytes']} bytes, {data['elapsed_ms']} ms")
    if "face" in data:
        lines.append(f"face: {data['face']['mime']}, {len(data['face']['base64']) * 3 // 4} bytes")
    print("\n".join(lines))


def _cmd_inspect(args: argparse.Namespace) -> int:
    def work(conn: CardConnection, candidates: list[CanKey | MrzKey], _sim: bool) -> int:
        from idstation.agent.emrtd.inspect import inspect_card, render_text

        report = inspect_card(conn, candidates)
        if args.json:
            _print_json(report)
        else:
            print(render_text(report))
        return int(Exit.OK)

    return _with_card(args, work)


def _cmd_make_profile(args: argparse.Namespace) -> int:
    from idstation.agent.sim.profiles import make_profile, write_profile

    out = Path(args.out)
    try:
        written = write_profile(make_profile(args.seed), out)
    except OSError as exc:
        raise UsageError(f"cannot write the profile: {type(exc).__name__}") from exc
    qr_path = _qr_path(out, written)
    print(out)
    print(qr_path)
    return int(Exit.OK)


def _qr_path(out: Path, written: object) -> Path:
    if isinstance(written, dict) and "qr" in written:
        return Path(written["qr"])
    candidates = sorted(out.glob("qr*.txt"))
    return candidates[0] if candidates else out / "qr.txt"


def _cmd_serve(args: argparse.Namespace) -> int:
    import dataclasses
    import signal
    import threading

    from idstation.agent.emrtd.virtual_card.chip import VirtualChip
    from idstation.agent.emrtd.virtual_card.vpcd import MAX_RAPDU, VpcdBridge

    faults: dict[str, Any] = {attr: True for _flag, attr, _h in FAULT_FLAGS if getattr(args, attr)}
    if args.remove_after is not None:
        faults["remove_after"] = args.remove_after
    if args.slow_ms:
        faults["slow_ms"] = args.slow_ms
    if args.hostile:
        from idstation.agent.emrtd.virtual_card.hostile import HOSTILE_FILES

        if args.hostile not in HOSTILE_FILES:
            raise UsageError(f"--hostile must be one of {', '.join(sorted(HOSTILE_FILES))}")
        faults["hostile"] = args.hostile
    image = _image(
        args.profile,
        faults,
        tamper_dg=args.tamper_dg,
        expired_signer=args.expired_signer,
        unknown_csca=args.unknown_csca,
    )
    image = dataclasses.replace(image, max_response=min(image.max_response, MAX_RAPDU - 2))  # vpcd's frame size
    steady = _without_removal(image)
    bridge = VpcdBridge(
        VirtualChip(image),
        host=args.host,
        port=args.port,
        atr=image.atr,
        reinsert_after=args.reinsert_after if args.remove_after is not None else None,
        reinsert_handler=VirtualChip(steady) if steady is not image else None,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    bridge.start()
    print(f"serving {args.profile} on vpcd {args.host}:{args.port}; Ctrl-C to stop", file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        pass
    bridge.stop()
    return int(Exit.OK)


def _without_removal(image: ChipImage) -> ChipImage:
    """The same card held still: the image without the ``remove_after`` fault."""
    import dataclasses

    if image.faults.remove_after is None:
        return image
    return dataclasses.replace(image, faults=dataclasses.replace(image.faults, remove_after=None))
