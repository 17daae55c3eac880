"""How large each LDS file may be before the terminal refuses to read it (ICAO 9303-10 §3.6).

A file's first READ BINARY returns its TLV header, and the header sets the read size: a hostile
chip can claim up to 4 GiB (a four-byte length). The terminal therefore caps every file before it
reads further. The caps sit far above what any genuine document holds (a CCCD DG2 face is
15-30 KB, EF.SOD with its signer certificate 2-6 KB, EF.CardAccess a few hundred bytes) and far
below the box service's memory limit, so a genuine file is never refused and a hostile one costs
at most one cap of memory.
"""

from __future__ import annotations

from idstation.agent.emrtd.fids import FID_CARD_ACCESS, FID_COM, FID_SOD

KIB = 1024
MIB = 1024 * KIB

BIOMETRIC_CAP = 1 * MIB  # DG2 face, DG3 fingerprints, DG4 iris, DG5-DG7 portraits and signature
SMALL_CAP = 64 * KIB  # everything else: structures, text, keys, EF.SOD with its certificates
CAPS: dict[int, int] = {
    FID_CARD_ACCESS: 16 * KIB,  # SecurityInfos: a handful of OIDs and parameters
    FID_COM: 4 * KIB,  # a version and a tag list
    FID_SOD: SMALL_CAP,
    **{0x0100 + n: BIOMETRIC_CAP for n in range(2, 8)},
}


def max_file_size(fid: int) -> int:
    """The largest total size (header included) the terminal reads for file ``fid``."""
    return CAPS.get(fid, SMALL_CAP)
