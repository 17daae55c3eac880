"""PACE with ECDH generic mapping (ICAO 9303-11 §4.4, worked example Appendix G.1), terminal side.

Theory of operation: ``start()`` returns MSE:Set AT (protocol OID, password reference 01 MRZ /
02 CAN, standardized parameter ID). Each ``receive(data, sw)`` consumes the chip's answer and
returns the next GENERAL AUTHENTICATE, and finally a ``SecureMessaging`` (SSC 0):

1. GA1 (empty 7C) → z; s = D(K_π, z) with K_π = KDF(π, 3), π = CAN or SHA-1(MRZ_information).
2. GA2 sends the mapping key PK_map = SK_map·G (tag 81); with the chip's PK_map (82):
   H = SK_map·PK_map_IC and the mapped generator G~ = s·G + H.
3. GA3 sends PK_eph = SK_eph·G~ (83); with the chip's PK_eph (84): K = x(SK_eph·PK_eph_IC),
   KS_enc = KDF(K, 1), KS_mac = KDF(K, 2).
4. GA4 sends T_PCD = MAC(KS_mac, 7F49{06 OID, 86 PK_eph_IC}) (85); checks the chip's T_PICC (86)
   against the same over our PK_eph.

Received points are validated (on the curve, not infinity, PK_eph_IC ≠ PK_eph_PCD). A refused
password (MSE 6982/6A80 on MRZ, GA4 6300/6982, or a wrong T_PICC) raises ``AccessDenied``; any
other failure raises a ``CardError`` subclass; after an exception the machine is in ERROR.
The private scalars can be injected (``map_sk``, ``eph_sk``) to replay the ICAO vectors.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

from idstation.agent.emrtd import crypto, ec, tlv
from idstation.agent.emrtd.apdu import CommandApdu
from idstation.agent.emrtd.keys import CanKey, MrzKey
from idstation.agent.emrtd.lds.security_infos import PaceInfo, SecurityInfos, encode_oid
from idstation.agent.emrtd.sm import SecureMessaging
from idstation.agent.emrtd.sw import check
from idstation.agent.errors import AccessDenied, CardError, ParseError, TlvError

Rng = Callable[[int], bytes]
PASSWORD_MRZ = 0x01
PASSWORD_CAN = 0x02
PACE_CURVES = frozenset(ec.STANDARD_PARAMETERS)  # standardized parameter IDs implemented


def password_reference(key: CanKey | MrzKey) -> int:
    return PASSWORD_CAN if isinstance(key, CanKey) else PASSWORD_MRZ


def password_bytes(key: CanKey | MrzKey) -> bytes:
    """π: the CAN digits, or SHA-1(MRZ_information) (ICAO 9303-11 §9.7.3)."""
    if isinstance(key, CanKey):
        return key.password
    return hashlib.sha1(key.mrz_information().encode("ascii")).digest()  # noqa: S324 - mandated by the spec


def sm_cipher(info: PaceInfo) -> crypto.SmCipher:
    algorithm, bits = info.cipher
    return crypto.SmCipher(algorithm, bits)


def k_pi(key: CanKey | MrzKey, cipher: crypto.SmCipher) -> bytes:
    return cipher.derive(password_bytes(key), crypto.KDF_PI)


def random_scalar(curve: ec.Curve, rng: Rng) -> int:
    """Uniform scalar in [1, n-1] by rejection sampling (bounded: 64 draws)."""
    size = (curve.n.bit_length() + 7) // 8
    for _ in range(64):
        k = int.from_bytes(rng(size), "big") >> (8 * size - curve.n.bit_length())
        if 0 < k < curve.n:
            return k
    raise TypeError("random source does not produce usable scalars")


def auth_token(cipher: crypto.SmCipher, ks_mac: bytes, protocol: str, curve: ec.Curve, point: ec.Point) -> bytes:
    """T = MAC(KS_mac, 7F49{06 OID, 86 point}) (§4.4.3.4): CMAC for AES, retail MAC for 3DES."""
    data = tlv.encode(0x7F49, tlv.encode(0x06, encode_oid(protocol)) + tlv.encode(0x86, curve.encode_point(point)))
    if cipher.algorithm == "AES":
        return crypto.aes_cmac(ks_mac, data)[:8]
    return crypto.retail_mac(ks_mac, crypto.pad(data))


def dynamic_data(data: bytes, tag: int) -> bytes:
    """Value of ``tag`` inside the 7C dynamic authentication data; ``CardError`` if absent."""
    try:
        item = tlv.decode(data, 0x7C).find(tag)
    except TlvError:
        raise CardError("GENERAL AUTHENTICATE answer is not 7C dynamic authentication data") from None
    if item is None:
        raise CardError(f"GENERAL AUTHENTICATE answer lacks tag {tag:02X}")
    return item.value


def general_authenticate(tag: int, value: bytes, *, last: bool = False) -> CommandApdu:
    body = tlv.encode(0x7C, tlv.encode(tag, value) if tag else b"")
    return CommandApdu(0x00 if last else 0x10, 0x86, 0x00, 0x00, body, ne=256)


def mse_set_at(info: PaceInfo, reference: int) -> CommandApdu:
    data = tlv.encode(0x80, encode_oid(info.protocol)) + tlv.encode(0x83, bytes([reference]))
    if info.parameter_id is not None:
        data += tlv.encode(0x84, bytes([info.parameter_id]))
    return CommandApdu(0x00, 0x22, 0xC1, 0xA4, data)


def point_from_chip(curve: ec.Curve, data: bytes) -> ec.Point:
    try:
        return curve.decode_point(data)
    except ParseError as exc:
        raise CardError(f"PACE: chip sent an invalid public key ({exc})") from None


class Pace:
    """Terminal-side PACE-ECDH-GM step machine (see the module docstring)."""

    def __init__(
        self,
        key: CanKey | MrzKey,
        info: PaceInfo,
        *,
        rng: Rng = os.urandom,
        map_sk: int | None = None,
        eph_sk: int | None = None,
    ) -> None:
        if info.mapping != "ECDH-GM":
            raise TypeError(f"PACE mapping {info.mapping} is not implemented")
        self.info = info
        self.key = key
        self.curve = ec.curve_for(info.parameter_id if info.parameter_id is not None else -1)
        self.cipher = sm_cipher(info)
        self._map_sk = map_sk or random_scalar(self.curve, rng)
        self._eph_sk = eph_sk or random_scalar(self.curve, rng)
        self.state = "START"
        self.failed_at: str | None = None
        self._nonce = 0
        self._generator: ec.Point = self.curve.g
        self._pk_pcd: ec.Point = self.curve.g
        self._pk_picc: ec.Point = self.curve.g
        self._keys = (b"", b"")

    def start(self) -> CommandApdu:
        if self.state != "START":
            raise TypeError("PACE already started")
        self.state = "MSE"
        return mse_set_at(self.info, password_reference(self.key))

    def receive(self, data: bytes, sw: int) -> CommandApdu | SecureMessaging:
        """Consume the chip's answer to the last command; return the next command or the SM channel."""
        transitions: dict[str, tuple[Callable[[bytes, int], CommandApdu | SecureMessaging], str]] = {
            "MSE": (self._on_mse, "NONCE"),
            "NONCE": (self._on_nonce, "MAP"),
            "MAP": (self._on_map, "AGREE"),
            "AGREE": (self._on_agree, "TOKENS"),
            "TOKENS": (self._on_tokens, "DONE"),
        }
        if self.state not in transitions:
            raise TypeError(f"PACE receive() in state {self.state}")
        handler, following = transitions[self.state]
        self.failed_at, self.state = self.state, "ERROR"  # any exception leaves the machine in ERROR
        result = handler(data, sw)
        self.failed_at, self.state = None, following
        return result

    def _on_mse(self, data: bytes, sw: int) -> CommandApdu:
        check(sw, "PACE MSE:Set AT", authenticating=True)
        return general_authenticate(0, b"")

    def _on_nonce(self, data: bytes, sw: int) -> CommandApdu:
        check(sw, "PACE nonce")
        z = dynamic_data(data, 0x80)
        if not z or len(z) % self.cipher.block:
            raise CardError("PACE: encrypted nonce has a bad length")
        s = self.cipher.decrypt(k_pi(self.key, self.cipher), z)
        self._nonce = int.from_bytes(s, "big")
        pk_map = self.curve.multiply_base(self._map_sk)
        return general_authenticate(0x81, self.curve.encode_point(pk_map))

    def _on_map(self, data: bytes, sw: int) -> CommandApdu:
        check(sw, "PACE mapping")
        pk_map_ic = point_from_chip(self.curve, dynamic_data(data, 0x82))
        shared = self.curve.multiply(self._map_sk, pk_map_ic)
        generator = self.curve.add(self._nonce_point(), shared)
        if shared is None or generator is None:
            raise CardError("PACE: mapping produced the point at infinity")
        self._generator = generator
        pk_eph = self.curve.multiply(self._eph_sk, generator)
        assert pk_eph is not None
        self._pk_pcd = pk_eph
        return general_authenticate(0x83, self.curve.encode_point(pk_eph))

    def _nonce_point(self) -> ec.Point | None:
        try:
            return self.curve.multiply_base(self._nonce)
        except ParseError:
            return None  # s ≡ 0 (mod n): G~ = H

    def _on_agree(self, data: bytes, sw: int) -> CommandApdu:
        check(sw, "PACE key agreement")
        self._pk_picc = point_from_chip(self.curve, dynamic_data(data, 0x84))
        if self._pk_picc == self._pk_pcd:
            raise CardError("PACE: chip echoed our ephemeral public key")
        try:
            k = self.curve.shared_x(self._eph_sk, self._pk_picc)
        except ParseError:
            raise CardError("PACE: key agreement failed on the chip's public key") from None
        self._keys = (self.cipher.derive(k, crypto.KDF_ENC), self.cipher.derive(k, crypto.KDF_MAC))
        token = auth_token(self.cipher, self._keys[1], self.info.protocol, self.curve, self._pk_picc)
        return general_authenticate(0x85, token, last=True)

    def _on_tokens(self, data: bytes, sw: int) -> SecureMessaging:
        check(sw, "PACE mutual authentication", authenticating=True)
        t_picc = dynamic_data(data, 0x86)
        expected = auth_token(self.cipher, self._keys[1], self.info.protocol, self.curve, self._pk_pcd)
        if not hmac.compare_digest(expected, t_picc):
            raise AccessDenied("PACE: the chip's authentication token does not verify")
        return SecureMessaging(self.cipher, self._keys[0], self._keys[1], 0)


def supported_pace(infos: SecurityInfos) -> PaceInfo | None:
    """The first PACEInfo this terminal implements (ECDH-GM on a standardized curve), or None."""
    for info in infos.pace:
        try:
            info.cipher  # noqa: B018 - raises ParseError for an unknown cipher arc
        except ParseError:
            continue
        if info.mapping == "ECDH-GM" and info.parameter_id in PACE_CURVES:
            return info
    return None
