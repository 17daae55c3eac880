"""File identifiers of the eMRTD application (ICAO 9303-10 §3.6, table 39): the one definition."""

from __future__ import annotations

__all__ = ["FID_CARD_ACCESS", "FID_COM", "FID_DG", "FID_SOD", "SFI_OF", "dg_fid"]

FID_CARD_ACCESS = 0x011C  # EF.CardAccess (in the master file: PACE parameters)
FID_SOD = 0x011D  # EF.SOD, the document security object
FID_COM = 0x011E  # EF.COM, the list of data groups present
FID_DG = {n: 0x0100 + n for n in range(1, 17)}  # DG1 = 0101 ... DG16 = 0110
# short EF identifiers (READ BINARY by SFI, 9303-10 §3.6): the FID's low byte
SFI_OF = {FID_CARD_ACCESS: 0x1C, FID_COM: 0x1E, FID_SOD: 0x1D, **{fid: n for n, fid in FID_DG.items()}}


def dg_fid(number: int) -> int:
    """ICAO 9303-10 §3.6: DGn is FID 01nn."""
    if not 1 <= number <= 16:
        raise TypeError(f"no data group {number}")
    return FID_DG[number]
