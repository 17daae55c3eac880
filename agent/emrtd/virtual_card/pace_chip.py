"""The virtual chip's side of PACE-ECDH-GM (ICAO 9303-11 §4.4) and Chip Authentication (§6.2).

Errors are ``ApduError(sw)``; the chip turns them into status words. Wrong passwords show up
where a real chip notices them: the terminal's token T_PCD does not verify → 6300.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable

from idstation.agent.emrtd import crypto, ec, tlv
from idstation.agent.emrtd.keys import CanKey, MrzKey
from idstation.agent.emrtd.lds.security_infos import (
    CA_ECDH_3DES,
    PaceInfo,
    cipher_of,
    decode_oid,
    parse_security_infos,
)
from idstation.agent.emrtd.pace import PASSWORD_CAN, PASSWORD_MRZ, auth_token, k_pi, random_scalar, sm_cipher
from idstation.agent.emrtd.sm import SecureMessaging
from idstation.agent.errors import ApduError, ParseError, TlvError

Rng = Callable[[int], bytes]


def _objects(data: bytes) -> dict[int, bytes]:
    try:
        return {item.tag: item.value for item in tlv.decode_all(data)}
    except TlvError:
        raise ApduError(0x6A80, "malformed data objects") from None


def _dynamic(data: bytes, tag: int) -> bytes:
    try:
        outer = tlv.decode(data, 0x7C)
        item = outer.find(tag) if tag else None
    except TlvError:
        raise ApduError(0x6A80, "malformed 7C") from None
    if tag and item is None:
        raise ApduError(0x6A80, f"7C lacks {tag:02X}")
    return item.value if item is not None else outer.value


def _point(curve: ec.Curve, data: bytes) -> ec.Point:
    try:
        return curve.decode_point(data)
    except ParseError:
        raise ApduError(0x6A80, "invalid public key") from None


class PaceChip:
    """One PACE run on the chip: ``set_at()`` then four ``step()`` calls."""

    def __init__(self, card_access: bytes, can: str, mrz: MrzKey, *, refuse_mrz: bool, rng: Rng = os.urandom) -> None:
        try:
            self._infos = [i for i in parse_security_infos(card_access).pace if i.mapping == "ECDH-GM"]
        except ParseError:
            self._infos = []
        self._can, self._mrz, self._refuse_mrz, self._rng = can, mrz, refuse_mrz, rng
        self._reset()

    def _reset(self) -> None:
        self.step_no = 0
        self.info: PaceInfo | None = None
        self._password: CanKey | MrzKey | None = None

    def set_at(self, data: bytes) -> None:
        self._reset()
        objects = _objects(data)
        oid = decode_oid(objects.get(0x80, b"")) if objects.get(0x80) else ""
        reference = objects.get(0x83, b"")
        parameter = objects.get(0x84)
        chosen = [i for i in self._infos if i.protocol == oid]
        if parameter is not None:
            chosen = [i for i in chosen if i.parameter_id == int.from_bytes(parameter, "big")]
        if not chosen:
            raise ApduError(0x6A80, "PACE protocol or parameters not supported")
        if reference == bytes([PASSWORD_MRZ]):
            if self._refuse_mrz:
                raise ApduError(0x6982, "PACE with the MRZ refused")
            self._password = self._mrz
        elif reference == bytes([PASSWORD_CAN]):
            self._password = CanKey(self._can)
        else:
            raise ApduError(0x6A80, "unsupported PACE password")
        self.info = chosen[0]
        self.curve = ec.curve_for(self.info.parameter_id or 0)
        self.cipher = sm_cipher(self.info)
        self.step_no = 1

    def step(self, cla: int, data: bytes) -> tuple[bytes, SecureMessaging | None]:
        """One GENERAL AUTHENTICATE; returns the response data and, at the end, the SM channel."""
        if self.info is None or self._password is None or not 1 <= self.step_no <= 4:
            raise ApduError(0x6985, "PACE not set up")
        last = not cla & 0x10
        if last != (self.step_no == 4):
            self._reset()
            raise ApduError(0x6985, "command chaining out of order")
        try:
            handler = (self._nonce, self._map, self._agree, self._tokens)[self.step_no - 1]
            result = handler(data)
        except ApduError:
            self._reset()
            raise
        self.step_no += 1
        if result[1] is not None:
            self._reset()  # a finished run cannot be continued
        return result

    def _nonce(self, data: bytes) -> tuple[bytes, None]:
        if _dynamic(data, 0):
            raise ApduError(0x6A80, "GA1 must be empty")
        s = self._rng(self.cipher.block)
        self._s = int.from_bytes(s, "big")
        assert self._password is not None
        z = self.cipher.encrypt(k_pi(self._password, self.cipher), s)
        return tlv.encode(0x7C, tlv.encode(0x80, z)), None

    def _map(self, data: bytes) -> tuple[bytes, None]:
        pk_pcd = _point(self.curve, _dynamic(data, 0x81))
        sk = random_scalar(self.curve, self._rng)
        pk = self.curve.multiply_base(sk)
        shared = self.curve.multiply(sk, pk_pcd)
        generator = self.curve.add(self.curve.multiply(self._s, self.curve.g), shared)
        if pk is None or generator is None:
            raise ApduError(0x6A80, "mapping failed")
        self._generator = generator
        return tlv.encode(0x7C, tlv.encode(0x82, self.curve.encode_point(pk))), None

    def _agree(self, data: bytes) -> tuple[bytes, None]:
        self._pk_pcd = _point(self.curve, _dynamic(data, 0x83))
        sk = random_scalar(self.curve, self._rng)
        pk = self.curve.multiply(sk, self._generator)
        if pk is None or pk == self._pk_pcd:
            raise ApduError(0x6A80, "key agreement failed")
        try:
            k = self.curve.shared_x(sk, self._pk_pcd)
        except ParseError:
            raise ApduError(0x6A80, "key agreement failed") from None
        self._pk_picc = pk
        self._ks = (self.cipher.derive(k, 1), self.cipher.derive(k, 2))
        return tlv.encode(0x7C, tlv.encode(0x84, self.curve.encode_point(pk))), None

    def _tokens(self, data: bytes) -> tuple[bytes, SecureMessaging]:
        assert self.info is not None
        t_pcd = _dynamic(data, 0x85)
        expected = auth_token(self.cipher, self._ks[1], self.info.protocol, self.curve, self._pk_picc)
        if not hmac.compare_digest(expected, t_pcd):
            raise ApduError(0x6300, "PACE token")
        t_picc = auth_token(self.cipher, self._ks[1], self.info.protocol, self.curve, self._pk_pcd)
        sm = SecureMessaging(self.cipher, self._ks[0], self._ks[1], 0)
        return tlv.encode(0x7C, tlv.encode(0x86, t_picc)), sm


class ChipAuthChip:
    """Chip side of CA v1 (ECDH): MSE:Set AT + GA (AES) or MSE:Set KAT (3DES)."""

    def __init__(self, ca_key: object) -> None:
        self._key = ca_key
        self._protocol: str | None = None

    def set_at(self, data: bytes) -> None:
        objects = _objects(data)
        try:
            protocol = decode_oid(objects.get(0x80, b""))
            cipher_of(protocol)
        except ParseError:
            raise ApduError(0x6A80, "CA protocol") from None
        if self._key is None or ".2.2.3.2." not in protocol:
            raise ApduError(0x6A80, "CA protocol not supported")
        self._protocol = protocol

    def general_authenticate(self, data: bytes) -> SecureMessaging:
        if self._protocol is None:
            raise ApduError(0x6985, "CA not set up")
        protocol, self._protocol = self._protocol, None
        return self._agree(protocol, _dynamic(data, 0x80))

    def key_agreement(self, data: bytes) -> SecureMessaging:
        public = _objects(data).get(0x91)
        if public is None or self._key is None:
            raise ApduError(0x6A80, "MSE:Set KAT without a public key")
        return self._agree(CA_ECDH_3DES, public)

    def _agree(self, protocol: str, public: bytes) -> SecureMessaging:
        from cryptography.hazmat.primitives.asymmetric import ec as cec

        key = self._key
        if not isinstance(key, cec.EllipticCurvePrivateKey):
            raise ApduError(0x6A80, "CA key is not EC")
        try:
            peer = cec.EllipticCurvePublicKey.from_encoded_point(key.curve, public)
            k = key.exchange(cec.ECDH(), peer)
        except ValueError:
            raise ApduError(0x6A80, "CA public key invalid") from None
        algorithm, bits = cipher_of(protocol)
        cipher = crypto.SmCipher(algorithm, bits)
        return SecureMessaging(cipher, cipher.derive(k, 1), cipher.derive(k, 2), 0)
