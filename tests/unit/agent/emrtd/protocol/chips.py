"""A tiny hand-made ChipImage for the protocol tests (fixed bytes, no real SOD)."""

from __future__ import annotations

import random
from dataclasses import replace

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from idstation.agent.emrtd import tlv
from idstation.agent.emrtd.keys import CanKey, MrzKey
from idstation.agent.emrtd.lds.security_infos import (
    CA_ECDH_AES_128,
    ID_PK_ECDH,
    PACE_ECDH_GM_AES_128,
    ChipAuthenticationInfo,
    ChipAuthenticationPublicKeyInfo,
    PaceInfo,
    encode_security_infos,
)
from idstation.agent.emrtd.virtual_card.chip import VirtualChip
from idstation.agent.emrtd.virtual_card.image import FID_CARD_ACCESS, FID_COM, FID_DG, FID_SOD, ChipImage, Faults

CAN = CanKey("123456")
MRZ = MrzKey("093047064", "900101", "300101")
WRONG_CAN = CanKey("654321")
WRONG_MRZ = MrzKey("093047064", "900101", "300102")
MRZ_TEXT = b"IDVNM0930470641001093047064<<2" + b"9001017M3001018VNM<<<<<<<<<<<8" + b"NGUYEN<<VAN<A<<<<<<<<<<<<<<<<<"

_rand = random.Random(9303)
CA_KEY = ec.derive_private_key(_rand.getrandbits(200) + 1, ec.BrainpoolP256R1())
AA_KEY = ec.derive_private_key(_rand.getrandbits(200) + 1, ec.SECP256R1())


def _blob(tag: int, size: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    return tlv.encode(tag, bytes(rnd.getrandbits(8) for _ in range(size)))


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def card_access(protocol: str = PACE_ECDH_GM_AES_128, parameter_id: int = 13) -> bytes:
    return encode_security_infos([PaceInfo(protocol, 2, parameter_id).encode()])


def dg14(ca_key: ec.EllipticCurvePrivateKey = CA_KEY) -> bytes:
    infos = [
        ChipAuthenticationInfo(CA_ECDH_AES_128, 1).encode(),
        ChipAuthenticationPublicKeyInfo(ID_PK_ECDH, _spki(ca_key)).encode(),
        PaceInfo(PACE_ECDH_GM_AES_128, 2, 13).encode(),
    ]
    return encode_security_infos(infos, dg14=True)


FILES = {
    FID_COM: tlv.encode(0x60, bytes.fromhex("5F0104303130375F36063034303030305C0661756E6D6F6F")),
    FID_SOD: _blob(0x77, 1800, 1),
    FID_DG[1]: tlv.encode(0x61, tlv.encode(0x5F1F, MRZ_TEXT)),
    FID_DG[2]: _blob(0x75, 20000, 2),
    FID_DG[3]: _blob(0x63, 300, 3),
    FID_DG[13]: _blob(0x6D, 700, 13),
    FID_DG[14]: dg14(),
    FID_DG[15]: tlv.encode(0x6F, _spki(AA_KEY)),
}


def image(**changes: object) -> ChipImage:
    faults = changes.pop("faults", Faults())
    files = dict(FILES)
    files[FID_CARD_ACCESS] = changes.pop("card_access", card_access())  # type: ignore[assignment]
    files.update(changes.pop("files", {}))  # type: ignore[arg-type]
    base = ChipImage(
        files=files,
        can=CAN.can,
        doc_number=MRZ.doc_number,
        date_of_birth=MRZ.date_of_birth,
        date_of_expiry=MRZ.date_of_expiry,
        aa_key=AA_KEY,
        ca_key=CA_KEY,
        faults=faults,  # type: ignore[arg-type]
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def chip(**changes: object) -> VirtualChip:
    return VirtualChip(image(**changes), rng=random.Random(7).randbytes)


class CountingHandler:
    """Passes APDUs to a chip and counts READ BINARY commands (a wire tap, not a mock)."""

    def __init__(self, handler: VirtualChip) -> None:
        self.handler = handler
        self.read_binaries = 0
        self.odd_reads = 0
        self.extended = 0

    def __call__(self, apdu: bytes) -> bytes:
        if apdu[1] in (0xB0, 0xB1):
            self.read_binaries += 1
            self.odd_reads += apdu[1] == 0xB1
        if len(apdu) > 6 and apdu[4] == 0:
            self.extended += 1
        return self.handler(apdu)
