"""Cross-checks against another implementation's recorded traces (not ICAO's own examples).

Source: gmrtd/gmrtd ``pace/pace_test.go``: TestDoPace_GM_ECDH_TDES_CBC_NZ (PACE-ECDH-GM-3DES on
brainpoolP256r1 with an MRZ password) and the secure-messaging reads recorded in
TestDoPace_CAM_ECDH_DE (AES-128 SM after PACE; the CAM step itself is not implemented here).
gmrtd leaves the parameter reference (84) out of MSE:Set AT when EF.CardAccess has one PACEInfo;
we always send it (ICAO 9303-11 §4.4.4.1 allows both), so the MSE command is not compared.
"""

from __future__ import annotations

from idstation.agent.emrtd import crypto
from idstation.agent.emrtd.apdu import CommandApdu, parse_response
from idstation.agent.emrtd.keys import MrzKey
from idstation.agent.emrtd.lds.security_infos import parse_security_infos
from idstation.agent.emrtd.pace import Pace
from idstation.agent.emrtd.sm import SecureMessaging

H = bytes.fromhex


def test_pace_gm_3des_trace() -> None:
    info = parse_security_infos(H("31143012060a04007f0007020204020102010202010d")).pace[0]
    pace = Pace(
        MrzKey("LM277954", "781214", "271115"),
        info,
        map_sk=int("2808272c0ec20e01a3450030ef32855e9feb5cb17719e985389b1cf47609e69f", 16),
        eph_sk=int("8f89449052df6c7983750c7b042c3cea12b36819174424c7cd28153f7b70b402", 16),
    )
    pace.start()
    assert pace.receive(b"", 0x9000).encode() == H("10860000027c0000")
    assert pace.receive(*parse_response(H("7c128010b88382812290017af1cc906ff00e7f4d9000"))).encode() == H(
        "10860000457c438141047706b2b6246ab4612229b8a11212ddba7fea0568c9c0975dee22c0e3dd3a3f0321e8afee836e373b570d24000d"
        "56fb195104d486e63321ff8c819dd5ee018dcb00"
    )
    ga2 = H(
        "7c43824104780b4edec9b926f9f964fad826d9990a667608d96ba7b397ae8609b6533e0d036d148365ddf4e5ff6611c2b62aa17fc9899f"
        "327bc929db543e7abd0ee724e4be9000"
    )
    assert pace.receive(*parse_response(ga2)).encode() == H(
        "10860000457c43834104507a0156efae8fb8acc519036c0b2fe0393c878744c7f91878ee4e07a41412ba5c0753d68a44a91e9f57f3f992"
        "ab689e6c2065d3b2a27c3658a4fd632931ee3800"
    )
    ga3 = H(
        "7c438441042dbaf62e6fdfb31eb66f206493b9e7721586f0e5c93754d7bd5a884ca251ee4d720ab539a60561bc46812fa289b58ac69f0c"
        "6e32adbaf7241049a31211f80f5b9000"
    )
    assert pace.receive(*parse_response(ga3)).encode() == H("008600000c7c0a85088d7c617d43efe09e00")
    sm = pace.receive(*parse_response(H("7c0a8608cb57047c809079f69000")))
    assert isinstance(sm, SecureMessaging)
    assert (sm.ks_enc, sm.ks_mac, sm.ssc) == (
        H("430e4c8c38dfefaed92067b919a897f8"),
        H("c1bc1f075797b970b5a45e64a764b0cb"),
        0,
    )
    assert sm.cipher.algorithm == "3DES"


def _aes_sm(ssc: int = 0) -> SecureMessaging:
    return SecureMessaging(
        crypto.AES128, H("a8e85e938514ec67ae33cda3d43d3c48"), H("27f1adeb705a049a305b0c619b14b9b3"), ssc
    )


def test_aes_secure_messaging_trace() -> None:
    sm = _aes_sm()
    assert sm.wrap(CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011D"))) == H(
        "0ca4020c1d87110147ee2e3bd440fb596167f2bb6cd6395e8e08a105747484314bcf00"
    )
    assert sm.unwrap(H("990290008e085f570baddd1002d29000")) == (b"", 0x9000)
    assert sm.wrap(CommandApdu(0x00, 0xB0, 0x00, 0x00, ne=4)) == H("0cb000000d9701048e085d283ec183cbb99800")
    assert sm.unwrap(H("871101d688d27a6d16f03619e76dcb59c1f1ec990290008e08b7df9a5982bb17299000")) == (
        H("30820742"),
        0x9000,
    )
    assert sm.wrap(CommandApdu(0x00, 0xB0, 0x00, 0x04, ne=256)) == H("0cb000040d9701008e08a893fca2cd1cb17d00")


def test_aes_secure_messaging_last_chunk_of_the_trace() -> None:
    sm = _aes_sm(ssc=20)
    assert sm.wrap(CommandApdu(0x00, 0xB0, 0x06, 0xFC, ne=0x4A)) == H("0cb006fc0d97014a8e0834b735e4065d97c100")
    data, sw = sm.unwrap(
        H(
            "8751017c668bedae4a7b51f4466d979d2026942ea1f4ae37bcb6e29f0c4b36f3572675ae58c8b9f52ebf35c65c3ae955dc060bebc79b4"
            "07f7e86d587391d9535c593e5f790939babe21b1436035b2046560d09990290008e0820085b109fb48aad9000"
        )
    )
    assert (len(data), sw) == (0x4A, 0x9000)
    assert sm.ssc == 22
