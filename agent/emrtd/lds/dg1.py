"""EF.DG1: the MRZ as stored on the chip (ICAO 9303-10 §4.7.1): ``61 L { 5F1F L <MRZ text> }``."""

from __future__ import annotations

from dataclasses import dataclass

from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.mrz import Mrz, parse_mrz
from idstation.agent.errors import MrzError, TlvError

TAG_DG1 = 0x61
TAG_MRZ = 0x5F1F


@dataclass(frozen=True, slots=True)
class Dg1:
    mrz: Mrz

    def __repr__(self) -> str:
        return f"Dg1(format={self.mrz.format!r}, ***)"

    @property
    def lines(self) -> list[str]:
        return self.mrz.lines


def dg1_mrz_text(data: bytes) -> str:
    """The MRZ text stored in EF.DG1, not yet parsed."""
    outer = tlv.decode(bytes(data), TAG_DG1)
    inner = outer.find(TAG_MRZ)
    if inner is None:
        raise TlvError("DG1 has no MRZ data object (5F1F)")
    try:
        return inner.value.decode("ascii")
    except UnicodeDecodeError as exc:
        raise MrzError("DG1 MRZ is not ASCII") from exc


def parse_dg1(data: bytes) -> Dg1:
    """Parse EF.DG1 and its MRZ (check digits verified)."""
    return Dg1(parse_mrz(dg1_mrz_text(data)))


def encode_dg1(mrz_text: str) -> bytes:
    """EF.DG1 for a TD1/TD3 MRZ given without line breaks."""
    return tlv.encode(TAG_DG1, tlv.encode(TAG_MRZ, mrz_text.encode("ascii")))
