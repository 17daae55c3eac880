"""What a virtual chip holds: its files, its secrets and its behaviour switches.

Built from a citizen profile by ``idstation.agent.sim.profiles`` (documents, keys, signatures)
and served by the virtual chip (``chip.py``), which implements the protocol. The chip reads
nothing else, so a test can hand-craft a hostile image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from idstation.agent.emrtd.fids import FID_CARD_ACCESS, FID_COM, FID_DG, FID_SOD, SFI_OF  # noqa: F401 (re-exported)

# File identifiers (ICAO 9303-10 §3.6) and their short EF identifiers.
SFI = SFI_OF


@dataclass(frozen=True, slots=True)
class Faults:
    """Fault switches for tests and demos (all off by default)."""

    bac_only: bool = False  # no EF.CardAccess / PACE: BAC is the only way in
    pace_mrz_refused: bool = False  # PACE with the MRZ password answers 6982 (seen on real cards)
    remove_after: int | None = None  # the card leaves the field after N commands
    slow_ms: int = 0  # extra latency per command (a slow chip)
    no_extended_length: bool = False  # chip refuses extended-length APDUs (6700)
    no_sfi: bool = False  # chip refuses READ BINARY by short EF identifier
    bad_response_mac: bool = False  # corrupts the MAC of protected responses after access control
    dead_after_access: bool = False  # chip stops answering (6F00) after access control
    exact_le: bool = False  # READ BINARY with a short Le beyond the end of file answers 6Cxx (xx = bytes left)
    hostile: str | None = None  # serve a hostile file in place of a genuine one (see ``hostile.py``)
    max_chunk: int = 0  # READ BINARY answers at most this many bytes (0: no limit; 1: a hostile drip)


@dataclass(frozen=True, slots=True)
class ChipImage:
    """Everything the virtual chip serves.

    ``files`` maps FID → content (EF.CardAccess, EF.COM, EF.SOD, DG1…DG16). ``can`` is the PACE
    CAN; ``doc_number``/``date_of_birth``/``date_of_expiry`` (YYMMDD) make the MRZ key. ``aa_key``
    answers INTERNAL AUTHENTICATE (DG15 holds its public key); ``ca_key`` answers chip
    authentication (DG14 holds its public key). ``max_response`` caps one READ BINARY answer.
    """

    files: dict[int, bytes]
    can: str
    doc_number: str
    date_of_birth: str
    date_of_expiry: str
    aa_key: PrivateKeyTypes | None = None
    ca_key: PrivateKeyTypes | None = None
    max_response: int = 65536
    faults: Faults = field(default_factory=Faults)
    atr: bytes = bytes.fromhex("3B8880010000000000000000")  # contactless ISO 14443-4 style

    def __repr__(self) -> str:
        """Sizes only: the files and keys hold a citizen's data and secrets."""
        sizes = ", ".join(f"{fid:04X}:{len(data)}" for fid, data in sorted(self.files.items()))
        return f"ChipImage(files=[{sizes}], faults={self.faults!r})"
