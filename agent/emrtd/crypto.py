"""Symmetric cryptography of ICAO 9303-11: KDF, 3DES and AES, retail MAC, CMAC, padding.

- KDF: ICAO 9303-11 §9.7.1 — ``H(K ‖ c)`` with c = 1 (encryption), 2 (MAC), 3 (PACE password);
  SHA-1 for 3DES and AES-128, SHA-256 for AES-192/256; 3DES keys get DES odd parity.
- 3DES: two-key 3DES-CBC with a zero IV (§9.8.6.1); MAC: ISO/IEC 9797-1 MAC algorithm 3
  (the "retail MAC") with DES (§9.8.6.2).
- AES: AES-CBC (IV given by the caller, §9.8.7.1); MAC: AES-CMAC truncated to 8 bytes (§9.8.7.2).
- Padding: ISO/IEC 9797-1 padding method 2 (``80 00 …``).

``SmCipher`` bundles one algorithm's operations so secure messaging, BAC, PACE and CA share them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC
from idstation.agent.errors import SecureMessagingError

KDF_ENC = 1
KDF_MAC = 2
KDF_PI = 3


def pad(data: bytes, block: int = 8) -> bytes:
    """ISO/IEC 9797-1 padding method 2: append 80, then 00 up to a multiple of ``block``."""
    padded = data + b"\x80"
    return padded + b"\x00" * (-len(padded) % block)


def unpad(data: bytes) -> bytes:
    """Remove padding method 2; a missing 80 marker raises ``SecureMessagingError``."""
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) >= 16:
        raise SecureMessagingError("decrypted data has no valid ISO 9797-1 padding")
    return stripped[:-1]


def adjust_parity(key: bytes) -> bytes:
    """Set DES odd parity in the low bit of every byte (ICAO prints 3DES keys this way)."""
    out = bytearray()
    for byte in key:
        high = byte & 0xFE
        out.append(high | ((bin(high).count("1") + 1) % 2))
    return bytes(out)


def kdf(shared: bytes, counter: int, algorithm: str, key_bits: int = 128) -> bytes:
    """ICAO 9303-11 §9.7.1 key derivation. ``algorithm`` is "3DES" or "AES"."""
    suffix = counter.to_bytes(4, "big")
    if algorithm == "3DES":
        return adjust_parity(hashlib.sha1(shared + suffix).digest()[:16])  # noqa: S324 - ICAO 9303-11 mandates SHA-1 here
    if algorithm != "AES":
        raise TypeError(f"unknown algorithm {algorithm}")
    if key_bits == 128:
        return hashlib.sha1(shared + suffix).digest()[:16]  # noqa: S324 - ICAO 9303-11 mandates SHA-1 here
    if key_bits in (192, 256):
        return hashlib.sha256(shared + suffix).digest()[: key_bits // 8]
    raise TypeError(f"unsupported AES key length {key_bits}")


def _tdes(key: bytes) -> TripleDES:
    """TripleDES with a 24-byte key: single DES (K) and two-key 3DES (K1 K2) expanded."""
    if len(key) == 8:
        key = key * 3
    elif len(key) == 16:
        key = key + key[:8]
    return TripleDES(key)


def tdes_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    enc = Cipher(_tdes(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def tdes_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    dec = Cipher(_tdes(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with DES over already padded ``data`` (8 bytes out)."""
    if len(data) % 8 or not data:
        raise TypeError("retail MAC input must be padded to 8-byte blocks")
    k1, k2 = key[:8], key[8:16]
    chain = tdes_cbc_encrypt(k1, data)[-8:]
    step = Cipher(_tdes(k2), modes.ECB()).decryptor().update(chain)  # noqa: S305 - single-block primitive of the spec
    return Cipher(_tdes(k1), modes.ECB()).encryptor().update(step)  # noqa: S305 - single-block primitive of the spec


def aes_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def aes_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def aes_ecb_block(key: bytes, block: bytes) -> bytes:
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(block)  # noqa: S305 - single-block primitive of the spec


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC (NIST SP 800-38B), full 16 bytes."""
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


@dataclass(frozen=True, slots=True)
class SmCipher:
    """One secure-messaging algorithm: "3DES" (8-byte blocks/SSC) or "AES" (16, key_bits)."""

    algorithm: str
    key_bits: int = 128

    @property
    def block(self) -> int:
        return 8 if self.algorithm == "3DES" else 16

    def derive(self, shared: bytes, counter: int) -> bytes:
        return kdf(shared, counter, self.algorithm, self.key_bits)

    def encrypt(self, key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
        if self.algorithm == "3DES":
            return tdes_cbc_encrypt(key, data, iv or bytes(8))
        return aes_cbc_encrypt(key, data, iv or bytes(16))

    def decrypt(self, key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
        if len(data) % self.block:
            raise SecureMessagingError("ciphertext is not a whole number of blocks")
        if self.algorithm == "3DES":
            return tdes_cbc_decrypt(key, data, iv or bytes(8))
        return aes_cbc_decrypt(key, data, iv or bytes(16))

    def mac(self, key: bytes, data: bytes) -> bytes:
        """8-byte MAC over ``data`` already padded to the block size."""
        if self.algorithm == "3DES":
            return retail_mac(key, data)
        return aes_cmac(key, data)[:8]

    def sm_iv(self, ks_enc: bytes, ssc: bytes) -> bytes:
        """IV for SM encryption: zero for 3DES, E(KS_enc, SSC) for AES (§9.8.7.1)."""
        if self.algorithm == "3DES":
            return bytes(8)
        return aes_ecb_block(ks_enc, ssc)


TDES = SmCipher("3DES")
AES128 = SmCipher("AES", 128)
AES192 = SmCipher("AES", 192)
AES256 = SmCipher("AES", 256)
