"""ICAO 9303-11 Appendix D (BAC, 3DES secure messaging) reproduced byte for byte."""

from __future__ import annotations

import pytest
from idstation.agent.emrtd import crypto
from idstation.agent.emrtd.apdu import CommandApdu, parse_response
from idstation.agent.emrtd.bac import Bac, bac_keys, key_seed
from idstation.agent.emrtd.keys import MrzKey
from idstation.agent.emrtd.sm import SecureMessaging
from idstation.agent.errors import SecureMessagingError

H = bytes.fromhex
MRZ = MrzKey("L898902C", "690806", "940623")
KS_ENC = H("979EC13B1CBFE9DCD01AB0FED307EAE5")
KS_MAC = H("F1CB1F1FB5ADF208806B89DC579DC1F8")
SSC = 0x887022120C06C226


def test_d2_mrz_information_and_key_seed() -> None:
    assert MRZ.mrz_information() == "L898902C<369080619406236"
    assert key_seed(MRZ) == H("239AB9CB282DAF66231DC5A4DF6BFBAE")


def test_d2_basic_access_keys_with_parity() -> None:
    assert bac_keys(MRZ) == (H("AB94FDECF2674FDFB9B391F85D7F76F2"), H("7962D9ECE03D1ACD4C76089DCE131543"))


def test_d2_parity_adjustment_is_the_only_difference_from_raw_sha1() -> None:
    assert crypto.adjust_parity(H("AB94FCEDF2664EDFB9B291F85D7F77F2")) == H("AB94FDECF2674FDFB9B391F85D7F76F2")
    assert crypto.adjust_parity(H("7862D9ECE03C1BCD4D77089DCF131442")) == H("7962D9ECE03D1ACD4C76089DCE131543")


def test_d3_bac_steps_byte_for_byte() -> None:
    bac = Bac(MRZ, rnd_ifd=H("781723860C06C226"), k_ifd=H("0B795240CB7049B01C19B33E32804F0B"))
    assert bac.start().encode() == H("0084000008")
    ext_auth = bac.receive(*parse_response(H("4608F919887022129000")))
    assert ext_auth.encode() == H(
        "008200002872C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F25F1448EEA8AD90A728"
    )
    sm = bac.receive(
        *parse_response(H("46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F2F2D235D074D74499000"))
    )
    assert (sm.ks_enc, sm.ks_mac, sm.ssc) == (KS_ENC, KS_MAC, SSC)
    assert sm.cipher.algorithm == "3DES"


def test_d3_wrong_chip_mac_is_access_denied() -> None:
    from idstation.agent.errors import AccessDenied

    bac = Bac(MRZ, rnd_ifd=H("781723860C06C226"), k_ifd=H("0B795240CB7049B01C19B33E32804F0B"))
    bac.start()
    bac.receive(*parse_response(H("4608F919887022129000")))
    with pytest.raises(AccessDenied):
        bac.receive(
            *parse_response(H("46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F2F2D235D074D74489000"))
        )


def _sm() -> SecureMessaging:
    return SecureMessaging(crypto.TDES, KS_ENC, KS_MAC, SSC)


def test_d4_select_ef_com() -> None:
    sm = _sm()
    assert sm.wrap(CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011E"))) == H(
        "0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800"
    )
    assert sm.unwrap(H("990290008E08FA855A5D4C50A8ED9000")) == (b"", 0x9000)


def test_d4_read_binary_four_then_eighteen_bytes() -> None:
    sm = _sm()
    sm.wrap(CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011E")))
    sm.unwrap(H("990290008E08FA855A5D4C50A8ED9000"))
    assert sm.wrap(CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=4)) == H("0CB000000D9701048E08ED6705417E96BA5500")
    first = sm.unwrap(H("8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000"))
    assert first == (H("60145F01"), 0x9000)
    assert sm.wrap(CommandApdu(0x00, 0xB0, 0x00, 0x04, ne=0x12)) == H("0CB000040D9701128E082EA28A70F3C7B53500")
    second = sm.unwrap(H("871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A990290008E08C8B2787EAEA07D749000"))
    assert second == (H("04303130365F36063034303030305C026175"), 0x9000)
    assert first[0] + second[0] == H("60145F0104303130365F36063034303030305C026175")


def test_d4_chip_side_reproduces_the_responses() -> None:
    terminal, chip = _sm(), _sm()
    command = chip.unwrap_command(terminal.wrap(CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011E"))))
    assert command == CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011E"))
    assert chip.wrap_response(b"", 0x9000) == H("990290008E08FA855A5D4C50A8ED9000")
    terminal.ssc += 1
    assert chip.unwrap_command(terminal.wrap(CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=4))).ne == 4
    assert chip.wrap_response(H("60145F01"), 0x9000) == H("8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000")


def test_d4_tampered_mac_kills_the_channel() -> None:
    sm = _sm()
    sm.wrap(CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011E")))
    with pytest.raises(SecureMessagingError):
        sm.unwrap(H("990290008E08FA855A5D4C50A8EE9000"))
    assert not sm.alive
    with pytest.raises(SecureMessagingError):
        sm.wrap(CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=4))


def test_response_without_do8e_is_rejected() -> None:
    sm = _sm()
    sm.wrap(CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=4))
    with pytest.raises(SecureMessagingError):
        sm.unwrap(H("8709019FF0EC34F9922651990290009000"))
