"""Chip-read benchmark: idstation's reader vs a baseline reader, commands and bytes on the wire.

Both readers open the chip the same way (``ChipSession.open``, PACE with the CAN) and read the same
files (EF.COM, EF.SOD, DG1, DG13, DG14, DG15, and DG2 in the "with face" runs) over the same
secure-messaging primitives. They differ in how they read:

- idstation (``agent/emrtd/read.py`` + ``ChipSession.read_file``): READ BINARY by short EF id
  (no SELECT), one extended-length command per file when the reader and chip allow; plus chip
  authentication and active authentication, which the baseline does not even do;
- baseline (below, the classic reader strategy): SELECT each file, then READ BINARY in 0xDF-byte
  chunks (the largest short-APDU chunk many readers use), no extended length.

RF time is modelled, not measured: bytes × 8 / bit rate + a per-command turnaround
(``--turnaround-ms``, default 5 ms: frame waiting time, chip processing, reader latency). The
in-process wall time is printed too, but the virtual chip is far faster than a real one.

    python3 bench/chip_read.py [--profile NAME_OR_DIR] [--face-kb 15] [--turnaround-ms 5] [--pcsc] [--json]

``--pcsc`` runs the idstation read once more through pcscd + vpcd (needs both running).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.apdu import CommandApdu
from idstation.agent.emrtd.fids import dg_fid
from idstation.agent.emrtd.keys import CanKey
from idstation.agent.emrtd.read import ReadPolicy, read_document
from idstation.agent.emrtd.session import ChipSession
from idstation.agent.emrtd.virtual_card.chip import VirtualChip
from idstation.hal.reader_sim import SimReader

FID_COM, FID_SOD = 0x011E, 0x011D
BASELINE_CHUNK = 0xDF
RATES = (106_000, 424_000)
GOAL_COMMANDS = 12
READ_BINARY_INS = frozenset({0xB0, 0xB1})
SELECT_INS, SELECT_BY_NAME = 0xA4, 0x04


def is_file_command(apdu: bytes) -> bool:
    """READ BINARY, or SELECT of an elementary file by its identifier.

    SELECT by DF name (P1 = 04, the eMRTD application) reads no file: idstation issues it after
    PACE and as the first command under chip authentication's new keys, which proves them.
    """
    return apdu[1] in READ_BINARY_INS or (apdu[1] == SELECT_INS and apdu[2] != SELECT_BY_NAME)


@dataclass
class Run:
    name: str
    access_apdus: int
    apdus: int  # after access control
    bytes_on_wire: int  # after access control, both directions
    wall_ms: float
    file_apdus: int = 0  # SELECT / READ BINARY only (without chip and active authentication)

    def rf_ms(self, rate: int, turnaround_ms: float) -> float:
        return self.bytes_on_wire * 8 / rate * 1000 + self.apdus * turnaround_ms


class Counting:
    """A CardConnection wrapper that counts commands and bytes (both directions)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.apdus = 0
        self.file_apdus = 0
        self.bytes = 0
        self.atr = conn.atr
        self.extended_length = conn.extended_length
        self.max_response = conn.max_response

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        data, sw = self.conn.transmit(apdu)
        self.apdus += 1
        self.file_apdus += is_file_command(apdu)  # INS and P1 stay plain under secure messaging
        self.bytes += len(apdu) + len(data) + 2
        return data, sw

    def close(self) -> None:
        self.conn.close()


def _access_cost(image: Any, key: CanKey) -> tuple[int, int]:
    """Commands and bytes that access control alone takes on this chip (same for both readers)."""
    session = ChipSession.over(VirtualChip(image))
    session.open([key])
    return session.apdus, session.bytes_sent + session.bytes_received


def _access_file_apdus(image: Any, key: CanKey) -> int:
    """SELECT/READ BINARY commands inside access control (EF.CardAccess, SELECT application)."""
    chip = VirtualChip(image)
    counter = Counting(_HandlerConnection(chip))
    ChipSession(counter.transmit, extended_length=True, max_response=65536).open([key])
    return counter.file_apdus


class _HandlerConnection:
    atr = b""
    extended_length = True
    max_response = 65536

    def __init__(self, handler: Any) -> None:
        self.handler = handler

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        rapdu = self.handler(apdu)
        return rapdu[:-2], int.from_bytes(rapdu[-2:], "big")

    def close(self) -> None:
        pass


def run_idstation(image: Any, key: CanKey, with_face: bool, trust: Any) -> Run:
    reader = SimReader()
    reader.insert(VirtualChip(image), atr=image.atr)
    conn = Counting(reader.wait_for_card(1.0))
    access_apdus, access_bytes = _access_cost(image, key)
    started = time.perf_counter()
    result = read_document(conn, [key], ReadPolicy(with_face=with_face), trust)
    wall = (time.perf_counter() - started) * 1000
    if not result.verified:
        print(f"warning: idstation read not verified: {result.verification}", file=sys.stderr)
    files = conn.file_apdus - _access_file_apdus(image, key)
    return Run("idstation", access_apdus, conn.apdus - access_apdus, conn.bytes - access_bytes, wall, files)


def _baseline_read(session: ChipSession, fid: int) -> bytes:
    """SELECT the file, then READ BINARY in 0xDF-byte chunks until the TLV length is reached."""
    select = CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big"))
    _data, sw = session._exchange(select, extended=False)
    if sw != 0x9000:
        return b""
    out = bytearray()
    total: int | None = None
    for _ in range(1000):  # bounded: 1000 × 223 bytes is far past any eMRTD file
        want = BASELINE_CHUNK if total is None else min(BASELINE_CHUNK, total - len(out))
        offset = len(out)
        data, sw = session._exchange(CommandApdu(0x00, 0xB0, offset >> 8, offset & 0xFF, b"", want), extended=False)
        out += data
        if total is None and len(out) >= 2:
            total = tlv.total_length(bytes(out[:6]))
        if sw != 0x9000 or not data or (total is not None and len(out) >= total):
            break
    return bytes(out)


def run_baseline(image: Any, key: CanKey, with_face: bool) -> Run:
    chip = VirtualChip(image)
    session = ChipSession.over(chip, extended_length=False, max_response=256)
    session.open([key])
    access_apdus, access_bytes = session.apdus, session.bytes_sent + session.bytes_received
    started = time.perf_counter()
    groups = [1, 13, 14, 15] + ([2] if with_face else [])
    for fid in [FID_COM, FID_SOD, *(dg_fid(n) for n in groups)]:
        _baseline_read(session, fid)
    wall = (time.perf_counter() - started) * 1000
    apdus = session.apdus - access_apdus
    return Run("baseline", access_apdus, apdus, session.bytes_sent + session.bytes_received - access_bytes, wall, apdus)


def run_pcsc(image: Any, key: CanKey, with_face: bool, trust: Any) -> Run:
    from idstation.agent.emrtd.virtual_card.vpcd import VpcdBridge
    from idstation.hal.reader_pcsc import PcscReader

    bridge = VpcdBridge(VirtualChip(image), atr=image.atr).start()
    reader = PcscReader("Virtual PCD 00 00")
    try:
        raw = reader.wait_for_card(10.0)
        if raw is None:
            raise SystemExit("no card seen through pcscd/vpcd (is pcscd running?)")
        conn = Counting(raw)
        access_apdus, access_bytes = _access_cost(image, key)
        started = time.perf_counter()
        read_document(conn, [key], ReadPolicy(with_face=with_face), trust)
        wall = (time.perf_counter() - started) * 1000
        conn.close()
    finally:
        bridge.stop()
        reader.wait_for_removal(5.0)  # let pcscd see the card go before the next run places one
        reader.close()
    files = conn.file_apdus - _access_file_apdus(image, key)
    return Run("idstation via pcscd", access_apdus, conn.apdus - access_apdus, conn.bytes - access_bytes, wall, files)


def _load(profile: str, face_kb: int) -> tuple[Any, CanKey, Any]:
    from idstation.agent.sim.profiles import image_for, test_trust

    image = image_for(profile)
    if face_kb:
        image = _with_face_size(image, face_kb * 1024)
    return image, CanKey(image.can), test_trust()


def _with_face_size(image: Any, size: int) -> Any:
    """The same card with a DG2 of about ``size`` bytes (real CCCD faces are 10-20 KB), SOD re-signed.

    The profile's JPEG gets a comment segment (FF FE) of filler after SOI: still a valid JPEG.
    """
    import dataclasses

    from idstation.agent.emrtd.lds import build
    from idstation.agent.emrtd.lds.dg2 import parse_dg2
    from idstation.agent.sim.profile_data.pki import default_pki

    face = parse_dg2(image.files[dg_fid(2)]).face
    extra = max(0, size - len(image.files[dg_fid(2)]))
    segments = b""
    while extra > 4:
        chunk = min(extra - 4, 65533)
        segments += b"\xff\xfe" + (chunk + 2).to_bytes(2, "big") + bytes(chunk)
        extra -= chunk + 4
    jpeg = face.data[:2] + segments + face.data[2:]
    groups = {n: image.files[dg_fid(n)] for n in (1, 2, 13, 14, 15)}
    groups[2] = build.encode_dg2(jpeg, face.width, face.height)
    pki = default_pki()
    sod = build.encode_sod(groups, pki.dsc_certificate, pki.dsc_key)
    files = dict(image.files) | {dg_fid(2): groups[2], FID_SOD: sod}
    return dataclasses.replace(image, files=files)


def _table(rows: list[tuple[str, list[Run]]], turnaround_ms: float) -> str:
    head = f"{'case':<10} {'reader':<20} {'cmds':>5} {'files':>5} {'bytes':>7} " + " ".join(
        f"{f'RF@{r // 1000}k ms':>11}" for r in RATES
    )
    lines = [head, "-" * len(head)]
    for case, runs in rows:
        for run in runs:
            rf = " ".join(f"{run.rf_ms(rate, turnaround_ms):>11.0f}" for rate in RATES)
            lines.append(f"{case:<10} {run.name:<20} {run.apdus:>5} {run.file_apdus:>5} {run.bytes_on_wire:>7} {rf}")
        ours, base = runs[0], runs[1]
        ratio = ours.apdus / base.apdus if base.apdus else 0.0
        byte_ratio = ours.bytes_on_wire / max(base.bytes_on_wire, 1)
        file_ratio = ours.file_apdus / max(base.file_apdus, 1)
        lines.append(
            f"{case:<10} {'ratio ours/baseline':<20} {ratio:>5.2f} {file_ratio:>5.2f} {byte_ratio:>7.2f} "
            + " ".join(
                f"{ours.rf_ms(r, turnaround_ms) / max(base.rf_ms(r, turnaround_ms), 1e-9):>11.2f}" for r in RATES
            )
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=os.environ.get("IDSTATION_BENCH_PROFILE", ""), help="profile name/dir")
    parser.add_argument("--turnaround-ms", type=float, default=5.0, help="modelled per-command turnaround")
    parser.add_argument("--pcsc", action="store_true", help="also run through pcscd + vpcd")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--face-kb", type=int, default=15, help="DG2 size in KB (0: the profile's small face)")
    args = parser.parse_args(argv)
    image, key, trust = _load(args.profile or _default_profile(), args.face_kb)
    rows: list[tuple[str, list[Run]]] = []
    for case, with_face in (("no face", False), ("with DG2", True)):
        runs = [run_idstation(image, key, with_face, trust), run_baseline(image, key, with_face)]
        if args.pcsc:
            runs.append(run_pcsc(image, key, with_face, trust))
        rows.append((case, runs))
    no_face = rows[0][1]
    goal = {
        "commands_without_dg2": no_face[0].apdus,
        "at_most_12": no_face[0].apdus <= GOAL_COMMANDS,
        "file_commands_without_dg2": no_face[0].file_apdus,
        "file_commands_at_most_one_third_of_baseline": no_face[0].file_apdus * 3 <= no_face[1].file_apdus,
        "all_commands_at_most_one_third_of_baseline": no_face[0].apdus * 3 <= no_face[1].apdus,
    }
    if args.json:
        out = {case: [run.__dict__ for run in runs] for case, runs in rows} | {"goal": goal}
        print(json.dumps(out, indent=2))
    else:
        sizes = {f"{fid:04X}": len(data) for fid, data in sorted(image.files.items())}
        print(f"file sizes (bytes): {sizes}")
        print(f"access control (same for both): {no_face[0].access_apdus} commands; figures below are after it")
        print(f"modelled RF time = bytes*8/rate + {args.turnaround_ms:g} ms per command")
        print("cmds: every command after access control (idstation adds chip + active authentication);")
        print("files: READ BINARY and SELECT of an EF (all the baseline does); an application SELECT reads no file")
        print(_table(rows, args.turnaround_ms))
        for case, runs in rows:
            print(f"{case}: in-process wall time " + ", ".join(f"{r.name} {r.wall_ms:.1f} ms" for r in runs))
        print(f"goal: {goal}")
    return 0


def _default_profile() -> str:
    from idstation.agent.sim.profiles import builtin_profiles

    names = list(builtin_profiles())
    return names[0]


if __name__ == "__main__":
    sys.exit(main())
