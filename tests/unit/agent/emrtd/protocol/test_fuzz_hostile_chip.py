"""Fuzzing the read path against a hostile virtual chip: random file contents behind genuine SM.

Access control and secure messaging are genuine (the virtual chip), the files are not: random
bytes, TLV headers claiming up to 4 GiB, the right outer tag around garbage, structured hostile
SecurityInfos in DG14. ``read_document`` must return a result or raise a ``CardError``; nothing
else escapes, and every example stays small (files are capped before they are read).
``IDSTATION_FUZZ_EXAMPLES`` scales the example count.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.read import ReadPolicy, read_document
from idstation.agent.emrtd.virtual_card.chip import VirtualChip
from idstation.agent.emrtd.virtual_card.image import FID_CARD_ACCESS, FID_COM, FID_DG, FID_SOD
from idstation.agent.errors import CardError
from idstation.hal.reader_sim import SimReader

from tests.unit.agent.emrtd.lds.test_fuzz_security_infos import security_info
from tests.unit.agent.emrtd.protocol.chips import CAN, FILES, MRZ, image

EXAMPLES = int(os.environ.get("IDSTATION_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIDS = (FID_CARD_ACCESS, FID_COM, FID_SOD, FID_DG[1], FID_DG[2], FID_DG[13], FID_DG[14], FID_DG[15])


@st.composite
def hostile_file(draw: st.DrawFn, fid: int) -> bytes:
    kind = draw(st.sampled_from(["random", "claims_more", "outer_tag", "truncated", "huge_header"]))
    genuine = FILES.get(fid, b"\x31\x00")
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=300))
    if kind == "claims_more":
        claim = draw(st.integers(len(genuine), 2**32 - 1))
        tag = genuine[0:1]
        return tag + tlv.encode_length(claim) + draw(st.binary(max_size=400))
    if kind == "outer_tag":
        return tlv.encode(tlv.decode_one(genuine)[0].tag, draw(st.binary(max_size=300)))
    if kind == "truncated":
        return genuine[: draw(st.integers(1, max(1, len(genuine) - 1)))]
    return b"\x75\x84" + draw(st.binary(min_size=4, max_size=4)) + draw(st.binary(max_size=64))


@st.composite
def hostile_files(draw: st.DrawFn) -> dict[int, bytes]:
    chosen = draw(st.lists(st.sampled_from(FIDS), min_size=1, max_size=3, unique=True))
    files = {fid: draw(hostile_file(fid)) for fid in chosen}
    if draw(st.booleans()):
        files[FID_DG[14]] = tlv.encode(0x6E, tlv.encode(0x31, b"".join(draw(st.lists(security_info(), max_size=4)))))
    return files


def _read(files: dict[int, bytes], with_face: bool) -> None:
    chip_image = image(files=files)
    reader = SimReader()
    reader.insert(VirtualChip(chip_image), atr=chip_image.atr, extended_length=True, max_response=65536)
    conn = reader.wait_for_card(1.0)
    assert conn is not None
    try:
        result = read_document(conn, [CAN, MRZ], ReadPolicy(with_face=with_face))
    except CardError:
        return
    finally:
        reader.close()
    assert result.verification["chip"]["result"] in {"ok", "failed", "not_supported"}
    assert result.passive in {"ok", "failed", "unknown_csca", "signer_expired", "not_checked"}
    assert all(len(data) <= 1024 * 1024 for data in result.data_groups.values())


@FUZZ
@given(hostile_files(), st.booleans())
def test_a_chip_serving_hostile_files_gives_a_result_or_a_card_error(files: dict[int, bytes], face: bool) -> None:
    _read(files, face)
