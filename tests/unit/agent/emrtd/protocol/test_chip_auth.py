"""Chip Authentication variants: 3DES (MSE:Set KAT), implied 3DES, explicit domain parameters."""

from __future__ import annotations

from asn1crypto import keys
from idstation.agent.emrtd import ec
from idstation.agent.emrtd.chip_auth import public_key_point
from idstation.agent.emrtd.lds.security_infos import (
    CA_ECDH_3DES,
    CA_ECDH_AES_256,
    ID_PK_ECDH,
    ChipAuthenticationInfo,
    ChipAuthenticationPublicKeyInfo,
    encode_security_infos,
    parse_security_infos,
)
from idstation.agent.emrtd.session import ChipSession
from idstation.agent.emrtd.virtual_card.image import FID_DG

from tests.unit.agent.emrtd.protocol.chips import CA_KEY, CAN, FILES, MRZ, chip


def _explicit_spki() -> bytes:
    curve = ec.BRAINPOOL_P256R1
    numbers = CA_KEY.public_key().public_numbers()
    domain = keys.SpecifiedECDomain(
        {
            "version": "ecdpVer1",
            "field_id": {"field_type": "prime_field", "parameters": curve.p},
            "curve": {"a": curve.a.to_bytes(32, "big"), "b": curve.b.to_bytes(32, "big")},
            "base": curve.encode_point(curve.g),
            "order": curve.n,
            "cofactor": 1,
        }
    )
    algorithm = {"algorithm": "ec", "parameters": keys.ECDomainParameters(name="specified", value=domain)}
    return keys.PublicKeyInfo({"algorithm": algorithm, "public_key": curve.encode_point((numbers.x, numbers.y))}).dump()


def _dg14(*infos: bytes) -> bytes:
    return encode_security_infos(list(infos), dg14=True)


def _authenticate(dg14: bytes, keys_: list[object] | None = None) -> str:
    session = ChipSession.over(chip())
    session.open(keys_ or [CAN])  # type: ignore[arg-type]
    result = session.chip_authenticate(dg14).result
    if result == "ok":
        assert session.read_file(FID_DG[1]) == FILES[FID_DG[1]]
    return result


def test_explicit_domain_parameters_are_recognised() -> None:
    curve, point = public_key_point(ChipAuthenticationPublicKeyInfo(ID_PK_ECDH, _explicit_spki()))
    numbers = CA_KEY.public_key().public_numbers()
    assert curve is ec.BRAINPOOL_P256R1
    assert point == (numbers.x, numbers.y)


def test_aes_chip_authentication_with_explicit_parameters() -> None:
    dg14 = _dg14(
        ChipAuthenticationInfo(CA_ECDH_AES_256, 1).encode(),
        ChipAuthenticationPublicKeyInfo(ID_PK_ECDH, _explicit_spki()).encode(),
    )
    assert _authenticate(dg14) == "ok"


def test_3des_chip_authentication_uses_mse_set_kat() -> None:
    dg14 = _dg14(
        ChipAuthenticationInfo(CA_ECDH_3DES, 1).encode(),
        ChipAuthenticationPublicKeyInfo(ID_PK_ECDH, _explicit_spki()).encode(),
    )
    assert _authenticate(dg14, [MRZ]) == "ok"


def test_missing_chip_authentication_info_implies_3des() -> None:
    dg14 = _dg14(ChipAuthenticationPublicKeyInfo(ID_PK_ECDH, _explicit_spki()).encode())
    assert _authenticate(dg14) == "ok"


def test_dg14_of_the_test_image_parses_into_its_kinds() -> None:
    infos = parse_security_infos(FILES[FID_DG[14]])
    assert len(infos.chip_authentication) == 1
    assert len(infos.chip_authentication_keys) == 1
    assert len(infos.pace) == 1
