"""Basic Access Control (ICAO 9303-11 §4.3, worked example Appendix D.2/D.3), both sides.

Theory of operation (terminal, ``Bac``): K_seed = SHA-1(MRZ_information)[:16]; K_enc, K_mac =
KDF(K_seed, 1/2) with DES parity. ``start()`` returns GET CHALLENGE; ``receive(data, sw)`` with
RND.IC returns EXTERNAL AUTHENTICATE carrying E.IFD = 3DES(K_enc, RND.IFD ‖ RND.IC ‖ K.IFD)
and M.IFD = MAC(K_mac, E.IFD); ``receive`` with the chip's E.IC ‖ M.IC checks the MAC and
RND.IFD, derives KS_enc/KS_mac from K.IFD ⊕ K.IC and returns a ``SecureMessaging`` whose SSC is
RND.IC[4:8] ‖ RND.IFD[4:8]. A refused key (6300/6982, a wrong MAC) raises ``AccessDenied``;
any other misuse or reply moves the machine to ERROR. Randomness is injected for the vectors.

``BacChip`` is the chip side (for the virtual chip): ``challenge()`` then ``authenticate(data)``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

from idstation.agent.emrtd import crypto
from idstation.agent.emrtd.apdu import CommandApdu
from idstation.agent.emrtd.keys import MrzKey
from idstation.agent.emrtd.sm import SecureMessaging
from idstation.agent.emrtd.sw import check
from idstation.agent.errors import AccessDenied, ApduError, CardError

Rng = Callable[[int], bytes]


def key_seed(key: MrzKey) -> bytes:
    """K_seed = the first 16 bytes of SHA-1(MRZ_information) (§9.7.2)."""
    return hashlib.sha1(key.mrz_information().encode("ascii")).digest()[:16]  # noqa: S324 - ICAO 9303-11 mandates SHA-1 here


def bac_keys(key: MrzKey) -> tuple[bytes, bytes]:
    """(K_enc, K_mac) for BAC, with DES parity set."""
    seed = key_seed(key)
    return crypto.kdf(seed, crypto.KDF_ENC, "3DES"), crypto.kdf(seed, crypto.KDF_MAC, "3DES")


def _session(k_a: bytes, k_b: bytes, rnd_ic: bytes, rnd_ifd: bytes) -> SecureMessaging:
    seed = bytes(a ^ b for a, b in zip(k_a, k_b, strict=True))
    ks_enc = crypto.kdf(seed, crypto.KDF_ENC, "3DES")
    ks_mac = crypto.kdf(seed, crypto.KDF_MAC, "3DES")
    ssc = int.from_bytes(rnd_ic[4:8] + rnd_ifd[4:8], "big")
    return SecureMessaging(crypto.TDES, ks_enc, ks_mac, ssc)


class Bac:
    """Terminal-side BAC step machine: START → CHALLENGE → AUTHENTICATE → DONE (or ERROR)."""

    def __init__(
        self, key: MrzKey, *, rnd_ifd: bytes | None = None, k_ifd: bytes | None = None, rng: Rng = os.urandom
    ) -> None:
        self._k_enc, self._k_mac = bac_keys(key)
        self._rnd_ifd = rnd_ifd if rnd_ifd is not None else rng(8)
        self._k_ifd = k_ifd if k_ifd is not None else rng(16)
        self._rnd_ic = b""
        self.state = "START"

    def start(self) -> CommandApdu:
        self._expect("START", "CHALLENGE")
        return CommandApdu(0x00, 0x84, 0x00, 0x00, ne=8)

    def receive(self, data: bytes, sw: int) -> CommandApdu | SecureMessaging:
        if self.state == "CHALLENGE":
            return self._on_challenge(data, sw)
        if self.state == "AUTHENTICATE":
            return self._on_authenticate(data, sw)
        raise TypeError(f"BAC receive() in state {self.state}")

    def _expect(self, state: str, then: str) -> None:
        if self.state != state:
            raise TypeError(f"BAC step out of order (state {self.state})")
        self.state = then

    def _on_challenge(self, data: bytes, sw: int) -> CommandApdu:
        self.state = "ERROR"
        check(sw, "GET CHALLENGE")
        if len(data) != 8:
            raise CardError(f"GET CHALLENGE returned {len(data)} bytes, expected 8")
        self._rnd_ic = data
        e_ifd = crypto.tdes_cbc_encrypt(self._k_enc, self._rnd_ifd + self._rnd_ic + self._k_ifd)
        m_ifd = crypto.retail_mac(self._k_mac, crypto.pad(e_ifd))
        self.state = "AUTHENTICATE"
        return CommandApdu(0x00, 0x82, 0x00, 0x00, e_ifd + m_ifd, ne=40)

    def _on_authenticate(self, data: bytes, sw: int) -> SecureMessaging:
        self.state = "ERROR"
        check(sw, "EXTERNAL AUTHENTICATE", authenticating=True)
        if len(data) != 40:
            raise CardError(f"EXTERNAL AUTHENTICATE returned {len(data)} bytes, expected 40")
        e_ic, m_ic = data[:32], data[32:]
        if not hmac.compare_digest(crypto.retail_mac(self._k_mac, crypto.pad(e_ic)), m_ic):
            raise AccessDenied("BAC: the chip's authentication MAC does not verify")
        plain = crypto.tdes_cbc_decrypt(self._k_enc, e_ic)
        if plain[:8] != self._rnd_ic or plain[8:16] != self._rnd_ifd:
            raise AccessDenied("BAC: the chip did not return our challenge")
        self.state = "DONE"
        return _session(self._k_ifd, plain[16:32], self._rnd_ic, self._rnd_ifd)


class BacChip:
    """Chip-side BAC: answers GET CHALLENGE and EXTERNAL AUTHENTICATE (raises ``ApduError``)."""

    def __init__(self, key: MrzKey, rng: Rng = os.urandom) -> None:
        self._k_enc, self._k_mac = bac_keys(key)
        self._rng = rng
        self._rnd_ic: bytes | None = None

    def challenge(self, ne: int) -> bytes:
        if ne != 8:
            raise ApduError(0x6700, "GET CHALLENGE length")
        self._rnd_ic = self._rng(8)
        return self._rnd_ic

    def authenticate(self, data: bytes) -> tuple[bytes, SecureMessaging]:
        rnd_ic, self._rnd_ic = self._rnd_ic, None
        if rnd_ic is None:
            raise ApduError(0x6985, "no challenge issued")
        if len(data) != 40:
            raise ApduError(0x6700, "EXTERNAL AUTHENTICATE length")
        e_ifd, m_ifd = data[:32], data[32:]
        if not hmac.compare_digest(crypto.retail_mac(self._k_mac, crypto.pad(e_ifd)), m_ifd):
            raise ApduError(0x6300, "BAC MAC")
        plain = crypto.tdes_cbc_decrypt(self._k_enc, e_ifd)
        if plain[8:16] != rnd_ic:
            raise ApduError(0x6300, "BAC challenge")
        rnd_ifd, k_ifd = plain[:8], plain[16:32]
        k_ic = self._rng(16)
        e_ic = crypto.tdes_cbc_encrypt(self._k_enc, rnd_ic + rnd_ifd + k_ic)
        m_ic = crypto.retail_mac(self._k_mac, crypto.pad(e_ic))
        return e_ic + m_ic, _session(k_ifd, k_ic, rnd_ic, rnd_ifd)
