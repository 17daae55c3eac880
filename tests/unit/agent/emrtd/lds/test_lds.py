from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.lds import build
from idstation.agent.emrtd.lds.com import parse_com
from idstation.agent.emrtd.lds.dg1 import parse_dg1
from idstation.agent.emrtd.lds.dg2 import encode_dg2, face_record, parse_dg2
from idstation.agent.emrtd.lds.dg13 import encode_dg13, parse_dg13
from idstation.agent.emrtd.lds.dg15 import parse_dg15
from idstation.agent.emrtd.lds.sod import parse_sod
from idstation.agent.errors import ParseError, TlvError
from idstation.agent.sim.profile_data.pki import default_pki

ICAO_EF_COM = bytes.fromhex("60145F0104303130365F36063034303030305C026175")  # ICAO 9303-11 D.4
JPEG = bytes.fromhex("FFD8FFE000104A46494600") + b"\x00" * 20 + b"\xff\xd9"
JP2 = bytes.fromhex("0000000C6A5020200D0A870A") + b"\x00" * 16


def _entry(number: int, value: bytes) -> bytes:
    return tlv.encode(0x30, tlv.encode(0x02, bytes([number])) + value)


def _utf8(text: str) -> bytes:
    return tlv.encode(0x0C, text.encode())


def _dg13(*entries: bytes) -> bytes:
    body = (
        tlv.encode(0x02, b"\x01")
        + tlv.encode(0x06, bytes.fromhex("28D316010008"))
        + tlv.encode(0x31, b"".join(entries))
    )
    return tlv.encode(0x6D, tlv.encode(0x30, body))


def test_icao_ef_com_lists_dg1_and_dg2() -> None:
    com = parse_com(ICAO_EF_COM)
    assert (com.lds_version, com.unicode_version, com.data_groups) == ("1.6", "4.0.0", (1, 2))


def test_com_round_trip() -> None:
    assert parse_com(build.encode_com([1, 2, 13, 14, 15])).data_groups == (1, 2, 13, 14, 15)


def test_dg1_round_trip_gives_the_mrz() -> None:
    mrz = "I<UTOL898902C<3<<<<<<<<<<<<<<<6908061F9406236UTO<<<<<<<<<<<2ERIKSSON<<ANNA<MARIA<<<<<<<<<<"
    dg1 = parse_dg1(build.encode_dg1(mrz))
    assert dg1.mrz.document_number == "L898902C"
    assert dg1.lines[0] == mrz[:30]


def test_dg2_extracts_jpeg_without_decoding() -> None:
    dg2 = parse_dg2(encode_dg2(JPEG, 96, 120))
    assert (dg2.mime, dg2.image, dg2.face.width, dg2.face.height) == ("image/jpeg", JPEG, 96, 120)


def test_dg2_extracts_jpeg2000() -> None:
    dg2 = parse_dg2(encode_dg2(JP2, 240, 320, jpeg2000=True))
    assert (dg2.mime, dg2.image) == ("image/jp2", JP2)


def test_dg2_with_7f2e_block_and_feature_points() -> None:
    record = bytearray(face_record(JPEG, 10, 10))
    record[14 + 4 : 14 + 6] = b"\x00\x01"  # one feature point: 8 more bytes before the image info
    record = bytes(record[: 14 + 20]) + b"\x01" * 8 + bytes(record[14 + 20 :])
    bit = tlv.encode(0x7F60, tlv.encode(0xA1, b"") + tlv.encode(0x7F2E, record))
    data = tlv.encode(0x75, tlv.encode(0x7F61, tlv.encode(0x02, b"\x01") + bit))
    assert parse_dg2(data).image == JPEG


def test_dg2_without_face_record_is_a_parse_error() -> None:
    bit = tlv.encode(0x7F60, tlv.encode(0x5F2E, b"not a record at all, no magic"))
    with pytest.raises(ParseError):
        parse_dg2(tlv.encode(0x75, tlv.encode(0x7F61, bit)))


def test_dg13_real_shape() -> None:
    data = _dg13(
        _entry(1, _utf8("001090123456")), _entry(2, _utf8("Nguyễn Văn An")),
        _entry(13, tlv.encode(0x30, _utf8("Nguyễn Văn Ba") + _utf8("Trần Thị Tư"))),
        _entry(14, tlv.encode(0x30, _utf8("Lê Thị Năm"))), _entry(15, _utf8("012345678")),
    )  # fmt: skip
    dg13 = parse_dg13(data)
    assert dg13.text(2) == "Nguyễn Văn An"
    assert dg13.parts(13) == ("Nguyễn Văn Ba", "Trần Thị Tư")
    assert dg13.text(14) == "Lê Thị Năm"
    assert dg13.version == 1


def test_dg13_spouse_as_plain_string() -> None:
    assert parse_dg13(_dg13(_entry(14, _utf8("Lê Thị Năm")))).text(14) == "Lê Thị Năm"


def test_dg13_unknown_field_kept_raw_even_if_not_text() -> None:
    raw_value = tlv.encode(0x04, b"\xff\xfe\x01")
    dg13 = parse_dg13(_dg13(_entry(16, raw_value), _entry(1, _utf8("001090123456"))))
    assert dg13.raw[16] == raw_value
    assert 16 not in dg13.fields
    assert dg13.text(1) == "001090123456"


def test_dg13_empty_and_missing_values_and_any_order() -> None:
    dg13 = parse_dg13(_dg13(_entry(15, _utf8("")), _entry(9, b""), _entry(2, _utf8("A")), _entry(1, _utf8("1"))))
    assert (dg13.text(15), dg13.text(9), dg13.text(2), dg13.text(4)) == ("", "", "A", None)


def test_dg13_encoder_round_trip() -> None:
    fields = {1: "001090123456", 13: ("Cha", "Mẹ"), 12: "Không thời hạn", 16: "x"}
    assert parse_dg13(encode_dg13(fields)).fields == fields


def test_dg13_invalid_utf8_in_a_known_field_names_only_the_field() -> None:
    data = _dg13(_entry(2, tlv.encode(0x0C, "Nguyễn".encode()[:-1] + b"\xff")))
    with pytest.raises(ParseError, match="field 2") as info:
        parse_dg13(data)
    assert "Nguy" not in str(info.value)


def test_dg13_wrong_outer_tag_is_tlv_error() -> None:
    with pytest.raises(TlvError):
        parse_dg13(tlv.encode(0x6C, b""))


def test_dg15_ec_round_trip() -> None:
    key = ec.generate_private_key(ec.BrainpoolP256R1()).public_key()
    parsed = parse_dg15(build.encode_dg15(key))
    assert (parsed.kind, parsed.key_bits) == ("ec", 256)


def test_sod_round_trip_holds_the_dg_hashes_and_the_dsc() -> None:
    pki = default_pki()
    groups = {1: b"\x61\x00", 13: b"\x6d\x00"}
    sod = parse_sod(build.encode_sod(groups, pki.dsc_certificate, pki.dsc_key))
    assert sod.hash_algorithm == "sha256"
    assert sod.dg_hashes == {n: hashlib.sha256(v).digest() for n, v in groups.items()}
    assert sod.signature_algorithm == "ecdsa"
    assert sod.signed_attrs is not None
    assert sod.signed_attrs[0] == 0x31
    assert sod.message_digest == hashlib.sha256(sod.econtent).digest()
    assert len(sod.certificates) == 1
    assert sod.signer_serial == pki.dsc_certificate.serial_number


def test_card_access_declares_pace_gm_aes128_brainpool() -> None:
    # ICAO 9303-11 G.1 EF.CardAccess (vectors file)
    assert build.encode_card_access() == bytes.fromhex("31143012060A04007F0007020204020202010202010D")
