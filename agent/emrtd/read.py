"""One whole document read: access control, files, chip/active/passive authentication, parsing.

Theory of operation (ICAO 9303-11 §9 "inspection procedure", 9303-10 §3 file layout):

1. ``ChipSession.open(candidates)`` runs PACE (CAN, then MRZ) and BAC over the candidate keys and
   reports which one opened the chip ("PACE-CAN", "PACE-MRZ" or "BAC").
2. EF.COM lists the data groups present; files it does not list are not asked for (a chip
   without EF.COM gets every file the policy wants, absent ones answer 6A82 and are skipped).
3. DG14 first, and Chip Authentication when it offers a key: the rest of the read then runs under
   keys only the genuine chip can hold (9303-11 §6.2).
4. EF.SOD, DG1, DG13, DG15 (and DG2 with the face); Active Authentication over an 8-byte
   challenge when DG15 is present (9303-11 §6.1): random, or the caller's ``aa_challenge`` (the
   box passes one derived from the identity event's id, so the centre can check the chip's
   signature, kept as ``ReadResult.aa_signature``, as a proof of presence).
5. Passive Authentication over EF.SOD and every data group read; DG1 (MRZ) and DG13 (citizen
   data) are parsed. A parse failure after a good read is a failed check in the verdict, never a
   crash: the caller still gets everything that was read.

Card and access errors (``CardRemoved``, ``AccessDenied``, ``SecureMessagingError``, ``ApduError``)
propagate to the caller, which maps them to exit codes or read-failed events. Nothing here logs
personal data; ``ReadResult``'s repr holds no data-group content.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idstation.agent.emrtd.fids import FID_COM, FID_SOD, dg_fid
from idstation.agent.emrtd.keys import CanKey, MrzKey
from idstation.agent.emrtd.verdict import CheckResult, Verdict, verdict_of
from idstation.agent.errors import ApduError, IdstationError, ParseError
from idstation.hal.logs import get_logger
from idstation.hal.ports import CardConnection

if TYPE_CHECKING:
    from idstation.agent.emrtd.trust import TrustStore

log = get_logger(__name__)

SW_FILE_NOT_FOUND = 0x6A82
SW_SECURITY_NOT_SATISFIED = 0x6982
_ABSENT = frozenset({SW_FILE_NOT_FOUND, SW_SECURITY_NOT_SATISFIED})

CITIZEN_FIELDS = (
    "id_number", "full_name", "date_of_birth", "gender", "nationality", "ethnicity", "religion", "hometown",
    "permanent_address", "identifying_marks", "issue_date", "expiry_date", "father_name", "mother_name",
    "spouse_name", "old_id_number",
)  # fmt: skip
NOT_RUN = {"result": "not_run"}

Rng = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class ReadPolicy:
    """What to read and check. ``files`` are data-group numbers besides EF.COM and EF.SOD."""

    with_face: bool = False
    active_auth: bool = True
    chip_auth: bool = True
    files: tuple[int, ...] = (1, 13, 14, 15)

    def wanted(self) -> tuple[int, ...]:
        numbers = list(self.files)
        if self.with_face and 2 not in numbers:
            numbers.append(2)
        elif not self.with_face and 2 in numbers:
            numbers.remove(2)
        return tuple(sorted(set(numbers)))


@dataclass(frozen=True)
class ReadResult:
    """Everything one read produced. ``to_json()`` is exactly ``idstation read-card --json``.

    The raw data groups and EF.SOD stay on the object (the identity event carries them encrypted
    to the centre) but never appear in ``to_json()`` or ``repr()``.
    """

    access: str
    citizen: dict[str, Any] | None
    mrz: tuple[str, ...]
    verification: dict[str, dict[str, Any]]
    verdict: Verdict
    data_groups: dict[int, bytes] = field(repr=False)
    ef_sod: bytes = field(repr=False)
    ef_com: bytes = field(default=b"", repr=False)
    aa_signature: bytes = field(default=b"", repr=False)  # the chip's INTERNAL AUTHENTICATE answer
    face: tuple[str, bytes] | None = field(default=None, repr=False)
    apdus: int = 0
    bytes_on_wire: int = 0
    elapsed_ms: int = 0

    def __repr__(self) -> str:
        groups = ",".join(f"DG{n}" for n in sorted(self.data_groups))
        return f"ReadResult(access={self.access!r}, groups=[{groups}], verified={self.verified}, apdus={self.apdus})"

    @property
    def passive(self) -> str:
        return str(self.verification.get("passive", {}).get("result", "not_run"))

    @property
    def verified(self) -> bool:
        """Passive authentication ok, no other check "failed", and the data parsed."""
        return self.verdict is Verdict.VERIFIED

    def digests(self) -> dict[str, str]:
        return {f"DG{n}": hashlib.sha256(data).hexdigest() for n, data in sorted(self.data_groups.items())}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "access": self.access,
            "citizen": self.citizen,
            "mrz": list(self.mrz),
            "verification": self.verification,
            "data_groups": self.digests(),
            "apdus": self.apdus,
            "bytes": self.bytes_on_wire,
            "elapsed_ms": self.elapsed_ms,
        }
        if self.face is not None:
            mime, image = self.face
            out["face"] = {"mime": mime, "base64": base64.b64encode(image).decode("ascii")}
        return out


def read_document(
    conn: CardConnection,
    candidates: Sequence[CanKey | MrzKey],
    policy: ReadPolicy | None = None,
    trust: TrustStore | None = None,
    *,
    now: datetime | None = None,
    rng: Rng = os.urandom,
    aa_challenge: bytes | None = None,
) -> ReadResult:
    """Read and verify one document on ``conn`` (ICAO 9303-11 §9); see the module docstring.

    ``aa_challenge``: the 8 bytes Active Authentication signs (default: ``rng(8)``)."""
    from idstation.agent.emrtd.session import ChipSession

    policy = policy or ReadPolicy()
    if not candidates:
        raise TypeError("read_document needs at least one access key candidate")
    if aa_challenge is not None and len(aa_challenge) != 8:  # RND.IFD, 9303-11 §6.1
        raise TypeError("the Active Authentication challenge is 8 bytes")
    started = time.monotonic()
    session = ChipSession(conn.transmit, extended_length=conn.extended_length, max_response=conn.max_response, rng=rng)
    access = session.open(list(candidates))
    log.info("chip_opened", access=access)
    files, ef_com, chip_verdict = _read_groups(session, policy)
    verification: dict[str, dict[str, Any]] = {"chip": chip_verdict}
    ef_sod = files.get(FID_SOD) or b""
    verification["active"], aa_signature = _active_auth(session, files.groups.get(15), policy, rng, aa_challenge)
    verification["passive"] = _passive_auth(ef_sod, files.groups, trust, now)
    citizen, mrz, face, parse_verdict = _parse(files.groups, policy)
    if parse_verdict is not None:
        verification["data"] = parse_verdict
    checks: dict[str, dict[str, Any]] = {
        k: verification[k] for k in ("passive", "active", "chip", "data") if k in verification
    }
    result = ReadResult(
        access=access,
        citizen=citizen,
        mrz=mrz,
        verification=checks,
        verdict=verdict_of({name: CheckResult(doc["result"]) for name, doc in checks.items()}),
        data_groups=dict(files.groups),
        ef_sod=ef_sod,
        ef_com=ef_com or b"",
        aa_signature=aa_signature,
        face=face,
        apdus=int(session.apdus),
        bytes_on_wire=int(session.bytes_sent) + int(session.bytes_received),
        elapsed_ms=round((time.monotonic() - started) * 1000),
    )
    log.info("chip_read_done", access=access, apdus=result.apdus, passive=result.passive, verified=result.verified)
    return result


def _read_groups(session: Any, policy: ReadPolicy) -> tuple[_Files, bytes | None, dict[str, Any]]:
    """EF.COM, then DG14 and Chip Authentication, then the other wanted groups EF.COM lists.

    Returns the files read, EF.COM (None when absent) and the Chip Authentication verdict."""
    files = _Files(session)
    ef_com = files.get(FID_COM)
    listed = _listed_groups(ef_com)
    wanted = [n for n in policy.wanted() if listed is None or n in listed]
    if 14 in wanted:
        files.get_dg(14)
    chip_verdict = _chip_auth(session, files.groups.get(14), policy)
    for number in wanted:
        if number != 14:
            files.get_dg(number)
    return files, ef_com, chip_verdict


class _Files:
    """Reads files through the session; absent (6A82) and protected (6982) files are skipped."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.groups: dict[int, bytes] = {}

    def get(self, fid: int) -> bytes | None:
        try:
            return bytes(self.session.read_file(fid))
        except ApduError as exc:
            if exc.sw in _ABSENT:
                log.info("file_absent", fid=f"{fid:04X}", sw=f"{exc.sw:04X}")
                return None
            raise

    def get_dg(self, number: int) -> None:
        data = self.get(dg_fid(number))
        if data is not None:
            self.groups[number] = data


def _listed_groups(ef_com: bytes | None) -> set[int] | None:
    """Data-group numbers EF.COM lists, or None when EF.COM is missing or unreadable (read all)."""
    if not ef_com:
        return None
    from idstation.agent.emrtd.lds.com import parse_com

    try:
        return set(parse_com(ef_com).data_groups)
    except ParseError:
        log.warning("ef_com_malformed")
        return None


def _chip_auth(session: Any, dg14: bytes | None, policy: ReadPolicy) -> dict[str, Any]:
    if not policy.chip_auth:
        return dict(NOT_RUN)
    if dg14 is None:
        return {"result": "not_supported", "reason": "no DG14"}
    outcome = session.chip_authenticate(dg14)
    return _verdict_json(outcome)


def _active_auth(
    session: Any, dg15: bytes | None, policy: ReadPolicy, rng: Rng, aa_challenge: bytes | None
) -> tuple[dict[str, Any], bytes]:
    """The AA verdict and the chip's signature (empty when AA did not run)."""
    if not policy.active_auth:
        return dict(NOT_RUN), b""
    if dg15 is None:
        return {"result": "not_supported", "reason": "no DG15"}, b""
    from idstation.agent.emrtd.active_auth import CHALLENGE_SIZE, verify_active

    challenge = rng(CHALLENGE_SIZE) if aa_challenge is None else bytes(aa_challenge)
    try:
        signature = bytes(session.internal_authenticate(challenge))
    except ApduError as exc:
        return {"result": "failed", "reason": f"chip answered {exc.sw:04X} to INTERNAL AUTHENTICATE"}, b""
    return _verdict_json(verify_active(dg15, challenge, signature)), signature


def _passive_auth(
    ef_sod: bytes, groups: dict[int, bytes], trust: TrustStore | None, now: datetime | None
) -> dict[str, Any]:
    if not ef_sod:
        return {"result": "failed", "reason": "no EF.SOD"}
    from idstation.agent.emrtd.passive_auth import verify_passive

    try:
        verdict = verify_passive(ef_sod, groups, trust, now=now)
    except ParseError:
        return {"result": "failed", "reason": "EF.SOD is malformed"}
    return _verdict_json(verdict)


def _verdict_json(verdict: Any) -> dict[str, Any]:
    if isinstance(verdict, dict):
        return dict(verdict)
    to_json = getattr(verdict, "to_json", None)
    if callable(to_json):
        return dict(to_json())
    return {"result": str(verdict)}


def _parse(
    groups: dict[int, bytes], policy: ReadPolicy
) -> tuple[dict[str, Any] | None, tuple[str, ...], tuple[str, bytes] | None, dict[str, Any] | None]:
    """Citizen, MRZ lines and face from the data groups; a parse verdict when something failed."""
    problems: list[str] = []
    mrz: tuple[str, ...] = ()
    citizen: dict[str, Any] | None = None
    face: tuple[str, bytes] | None = None
    if 1 in groups:
        try:
            mrz = _mrz_lines(groups[1])
        except IdstationError:
            problems.append("DG1")
    if 13 in groups:
        try:
            citizen = _citizen(groups[13], groups.get(1))
        except IdstationError:
            problems.append("DG13")
    if policy.with_face and 2 in groups:
        try:
            face = _face(groups[2])
        except IdstationError:
            problems.append("DG2")
    if problems:
        log.warning("data_group_unparseable", groups=problems)
        return citizen, mrz, face, {"result": "failed", "reason": "unparseable " + ", ".join(problems)}
    return citizen, mrz, face, None


def _mrz_lines(dg1: bytes) -> tuple[str, ...]:
    from idstation.agent.emrtd.lds.dg1 import parse_dg1

    return tuple(parse_dg1(dg1).mrz.lines)


def _citizen(dg13: bytes, dg1: bytes | None) -> dict[str, Any]:
    from idstation.agent.emrtd.citizen import citizen_json

    try:
        data = dict(citizen_json(dg13, dg1))
    except ParseError:  # DG1 unusable: DG13 alone still gives the citizen
        data = dict(citizen_json(dg13))
    ordered = {name: data.get(name) for name in CITIZEN_FIELDS}
    return ordered | {k: v for k, v in data.items() if k not in CITIZEN_FIELDS}


def _face(dg2: bytes) -> tuple[str, bytes]:
    from idstation.agent.emrtd.lds.dg2 import parse_dg2

    face = parse_dg2(dg2).face
    return str(face.mime), bytes(face.data)


def load_trust(csca_dir: str | Path | None = None, *, extra_pem: bytes | None = None) -> TrustStore:
    """The CSCA trust store: ``csca_dir`` (certificates / master lists), plus ``extra_pem`` certificates.

    The read path never loads test keys itself: the wiring hands the simulator's test CSCA in as
    ``extra_pem`` only for simulated and virtual readers (or an explicit ``--trust-test-csca``).
    Raises ``ConfigError`` when ``csca_dir`` does not exist.
    """
    from cryptography import x509
    from idstation.agent.emrtd.trust import TrustStore

    certificates: list[x509.Certificate] = []
    if csca_dir is not None:
        certificates.extend(TrustStore.from_dir(csca_dir).certificates)
    if extra_pem:
        certificates.extend(x509.load_pem_x509_certificates(extra_pem))
    return TrustStore(certificates)
