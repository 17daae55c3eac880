from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from idstation.agent.emrtd.active_auth import sign_challenge, verify_active
from idstation.agent.emrtd.lds.dg15 import encode_dg15, parse_dg15

CHALLENGE = bytes.fromhex("0102030405060708")


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.BrainpoolP256R1(), ec.SECP384R1()])
def test_ecdsa_signature_from_the_chip_verifies(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    verdict = verify_active(encode_dg15(key.public_key()), CHALLENGE, sign_challenge(key, CHALLENGE))
    assert verdict.to_json()["result"] == "ok"
    assert verdict.algorithm == "ecdsa"


def test_ecdsa_signature_over_another_challenge_fails() -> None:
    key = ec.generate_private_key(ec.BrainpoolP256R1())
    signature = sign_challenge(key, CHALLENGE)
    assert verify_active(encode_dg15(key.public_key()), b"\x00" * 8, signature).result == "failed"


def test_ecdsa_with_sha1_chip_is_accepted_without_dg14_hint() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signature = sign_challenge(key, CHALLENGE, hash_name="sha1")
    verdict = verify_active(encode_dg15(key.public_key()), CHALLENGE, signature)
    assert (verdict.result, verdict.hash) == ("ok", "sha1")


def test_ecdsa_declared_hash_is_enforced() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signature = sign_challenge(key, CHALLENGE, hash_name="sha1")
    assert verify_active(encode_dg15(key.public_key()), CHALLENGE, signature, hash_name="sha256").result == "failed"


def test_rsa_iso9796_2_signature_verifies(rsa_key: rsa.RSAPrivateKey) -> None:
    verdict = verify_active(encode_dg15(rsa_key.public_key()), CHALLENGE, sign_challenge(rsa_key, CHALLENGE))
    assert (verdict.result, verdict.algorithm, verdict.hash) == ("ok", "rsa-iso9796-2", "sha1")


def test_rsa_iso9796_2_with_sha256_trailer_verifies(rsa_key: rsa.RSAPrivateKey) -> None:
    numbers = rsa_key.private_numbers()
    n = numbers.public_numbers.n
    k = (n.bit_length() + 7) // 8
    m1 = bytes(range(k - 32 - 3))
    digest = hashes.Hash(hashes.SHA256())
    digest.update(m1 + CHALLENGE)
    f = b"\x6a" + m1 + digest.finalize() + b"\x34\xcc"
    signature = pow(int.from_bytes(f, "big"), numbers.d, n).to_bytes(k, "big")
    verdict = verify_active(encode_dg15(rsa_key.public_key()), CHALLENGE, signature)
    assert (verdict.result, verdict.hash) == ("ok", "sha256")


def test_rsa_signature_over_another_challenge_fails(rsa_key: rsa.RSAPrivateKey) -> None:
    signature = sign_challenge(rsa_key, CHALLENGE)
    assert verify_active(encode_dg15(rsa_key.public_key()), b"\xff" * 8, signature).result == "failed"


def test_garbage_signature_gives_failed_verdict(rsa_key: rsa.RSAPrivateKey) -> None:
    assert verify_active(encode_dg15(rsa_key.public_key()), CHALLENGE, b"\x01\x02").result == "failed"
    ec_key = ec.generate_private_key(ec.SECP256R1())
    assert verify_active(encode_dg15(ec_key.public_key()), CHALLENGE, b"\x01\x02\x03").result == "failed"


def test_missing_dg15_is_not_supported() -> None:
    assert verify_active(b"", CHALLENGE, b"").result == "not_supported"


def test_malformed_dg15_is_failed_not_an_exception() -> None:
    assert verify_active(b"\x6f\x03\x01\x02\x03", CHALLENGE, b"\x00" * 64).result == "failed"


def test_dg15_reports_key_kind_and_size(rsa_key: rsa.RSAPrivateKey) -> None:
    parsed = parse_dg15(encode_dg15(rsa_key.public_key()))
    assert (parsed.kind, parsed.key_bits) == ("rsa", 1024)


def test_ecdsa_der_signature_from_a_nonconforming_chip_is_accepted() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.sign(CHALLENGE, ec.ECDSA(hashes.SHA256()))
    assert verify_active(encode_dg15(key.public_key()), CHALLENGE, der).result == "ok"
