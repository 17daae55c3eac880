"""ICAO 9303-11 Appendix G.1 (PACE ECDH-GM, brainpoolP256r1, AES-128) reproduced byte for byte."""

from __future__ import annotations

import pytest
from idstation.agent.emrtd import crypto, ec
from idstation.agent.emrtd.apdu import parse_response
from idstation.agent.emrtd.keys import MrzKey
from idstation.agent.emrtd.lds.security_infos import parse_security_infos
from idstation.agent.emrtd.pace import Pace, auth_token, k_pi, password_bytes
from idstation.agent.emrtd.sm import SecureMessaging
from idstation.agent.errors import AccessDenied, CardError

H = bytes.fromhex
CARD_ACCESS = H("31143012060A04007F0007020204020202010202010D")
KEY = MrzKey("T22000129", "640812", "101031")
MAP_SK = int("7F4EF07B9EA82FD78AD689B38D0BC78CF21F249D953BC46F4C6E19259C010F99", 16)
EPH_SK = int("A73FB703AC1436A18E0CFA5ABB3F7BEC7A070E7A6788486BEE230C4A22762595", 16)
GA1_R = H("7C12801095A3A016522EE98D01E76CB6B98B42C39000")
GA2_R = H(
    "7C43824104824FBA91C9CBE26BEF53A0EBE7342A3BF178CEA9F45DE0B70AA601651FBA3F5730D8C879AAA9C9F73991E61B58F4D52EB87A0A0C"
    "709A49DC63719363CCD13C549000"
)
GA3_R = H(
    "7C438441049E880F842905B8B3181F7AF7CAA9F0EFB743847F44A306D2D28C1D9EC65DF6DB7764B22277A2EDDC3C265A9F018F9CB852E111B7"
    "68B326904B59A0193776F0949000"
)
GA4_R = H("7C0A86083ABB9674BCE93C089000")
PK_PICC = (
    int("9E880F842905B8B3181F7AF7CAA9F0EFB743847F44A306D2D28C1D9EC65DF6DB", 16),
    int("7764B22277A2EDDC3C265A9F018F9CB852E111B768B326904B59A0193776F094", 16),
)


def _pace() -> Pace:
    info = parse_security_infos(CARD_ACCESS).pace[0]
    return Pace(KEY, info, map_sk=MAP_SK, eph_sk=EPH_SK)


def test_g1_password_and_k_pi() -> None:
    assert KEY.mrz_information() == "T22000129364081251010318"
    assert password_bytes(KEY) == H("7E2D2A41C74EA0B38CD36F863939BFA8E9032AAD")
    assert k_pi(KEY, crypto.AES128) == H("89DED1B26624EC1E634C1989302849DD")


def test_g1_every_command_byte_for_byte() -> None:
    pace = _pace()
    assert pace.start().encode() == H("0022C1A412800A04007F0007020204020283010184010D")
    assert pace.receive(b"", 0x9000).encode() == H("10860000027C0000")
    assert pace.receive(*parse_response(GA1_R)).encode() == H(
        "10860000457C438141047ACF3EFC982EC45565A4B155129EFBC74650DCBFA6362D896FC70262E0C2CC5E544552DCB6725218799115B55C9BA"
        "A6D9F6BC3A9618E70C25AF71777A9C4922D00"
    )
    assert pace.receive(*parse_response(GA2_R)).encode() == H(
        "10860000457C438341042DB7A64C0355044EC9DF190514C625CBA2CEA48754887122F3A5EF0D5EDD301C3556F3B3B186DF10B857B58F6A7EB"
        "80F20BA5DC7BE1D43D9BF850149FBB3646200"
    )
    assert pace.receive(*parse_response(GA3_R)).encode() == H("008600000C7C0A8508C2B0BD78D94BA86600")
    sm = pace.receive(*parse_response(GA4_R))
    assert isinstance(sm, SecureMessaging)
    assert (sm.ks_enc, sm.ks_mac, sm.ssc) == (
        H("F5F0E35C0D7161EE6724EE513A0D9A7F"),
        H("FE251C7858B356B24514B3BD5F4297D1"),
        0,
    )


def test_g1_intermediate_values() -> None:
    pace = _pace()
    pace.start()
    pace.receive(b"", 0x9000)
    pace.receive(*parse_response(GA1_R))
    assert pace._nonce == int("3F00C4D39D153F2B2A214A078D899B22", 16)
    pace.receive(*parse_response(GA2_R))
    assert pace._generator == (
        int("8CED63C91426D4F0EB1435E7CB1D74A46723A0AF21C89634F65A9AE87A9265E2", 16),
        int("8C879506743F8611AC33645C5B985C80B5F09A0B83407C1B6A4D857AE76FE522", 16),
    )


def test_g1_shared_point_h_and_secret_k() -> None:
    curve = ec.BRAINPOOL_P256R1
    chip_map = curve.decode_point(GA2_R[4:-2])
    assert curve.multiply(MAP_SK, chip_map) == (
        int("60332EF2450B5D247EF6D3868397D398852ED6E8CAF6FFEEF6BF85CA57057FD5", 16),
        int("0840CA7415BAF3E43BD414D35AA4608B93A2CAF3A4E3EA4E82C9C13D03EB7181", 16),
    )
    shared = curve.multiply(EPH_SK, PK_PICC)
    assert shared is not None
    assert shared[0].to_bytes(32, "big") == H("28768D20701247DAE81804C9E780EDE582A9996DB4A315020B2733197DB84925")
    assert crypto.kdf(shared[0].to_bytes(32, "big"), 1, "AES") == H("F5F0E35C0D7161EE6724EE513A0D9A7F")


def test_g1_tokens() -> None:
    ks_mac = H("FE251C7858B356B24514B3BD5F4297D1")
    oid = "0.4.0.127.0.7.2.2.4.2.2"
    curve = ec.BRAINPOOL_P256R1
    assert auth_token(crypto.AES128, ks_mac, oid, curve, PK_PICC) == H("C2B0BD78D94BA866")
    pk_pcd = curve.decode_point(
        H(
            "042DB7A64C0355044EC9DF190514C625CBA2CEA48754887122F3A5EF0D5EDD301C3556F3B3B186DF10B857B58F6A7EB80F20BA5DC7BE1D43"
            "D9BF850149FBB36462"
        )
    )
    assert auth_token(crypto.AES128, ks_mac, oid, curve, pk_pcd) == H("3ABB9674BCE93C08")


def test_g1_wrong_chip_token_is_access_denied() -> None:
    pace = _pace()
    pace.start()
    for response in (H("9000"), GA1_R, GA2_R, GA3_R):
        pace.receive(*parse_response(response))
    with pytest.raises(AccessDenied):
        pace.receive(*parse_response(H("7C0A86083ABB9674BCE93C099000")))
    assert pace.state == "ERROR"


def test_chip_refusing_the_token_is_access_denied() -> None:
    pace = _pace()
    pace.start()
    for response in (H("9000"), GA1_R, GA2_R, GA3_R):
        pace.receive(*parse_response(response))
    with pytest.raises(AccessDenied):
        pace.receive(b"", 0x6300)


def test_point_off_the_curve_is_rejected() -> None:
    pace = _pace()
    pace.start()
    pace.receive(b"", 0x9000)
    pace.receive(*parse_response(GA1_R))
    bad = bytearray(GA2_R)
    bad[-3] ^= 1
    with pytest.raises(CardError):
        pace.receive(*parse_response(bytes(bad)))
