"""The Document Signer cache (agent.emrtd.signer): a cached DSC gives the verdict an uncached one
gives, for every outcome; the clock is not cached; the cache stays bounded, also under threads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from idstation.agent.emrtd.lds.build import encode_sod
from idstation.agent.emrtd.passive_auth import verify_passive
from idstation.agent.emrtd.signer import MAX_CACHED_DER, SignerCache
from idstation.agent.emrtd.trust import TrustStore
from idstation.agent.emrtd.virtual_card.image import FID_DG, FID_SOD
from idstation.agent.sim.profile_data.pki import default_pki
from idstation.agent.sim.profiles import build_chip_image, builtin_profiles

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _groups(image: Any) -> dict[int, bytes]:
    return {n: image.files[fid] for n, fid in FID_DG.items() if fid in image.files}


def _dsc(serial: int, not_before: datetime, issuer_key: Any = None) -> tuple[x509.Certificate, Any]:
    """A DSC named like the test one, signed by the test CSCA's key (or ``issuer_key``)."""
    pki = default_pki()
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(pki.dsc_certificate.subject)
        .issuer_name(pki.csca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        .sign(issuer_key or pki.csca_key, hashes.SHA256())
    )
    return cert, key


@pytest.fixture(scope="module")
def image() -> Any:
    return build_chip_image(builtin_profiles()["an"])


@pytest.fixture(scope="module")
def trust() -> TrustStore:
    return TrustStore([default_pki().csca_certificate])


def _scenarios(image: Any, trust: TrustStore) -> dict[str, tuple[bytes, dict[int, bytes], TrustStore | None]]:
    groups = _groups(image)
    expired = build_chip_image(builtin_profiles()["an"], expired_signer=True)
    tampered = build_chip_image(builtin_profiles()["an"], tamper_dg=13)
    early, early_key = _dsc(4401, datetime(2015, 1, 1, tzinfo=UTC))  # before the CSCA could sign
    forged, forged_key = _dsc(4402, datetime(2025, 6, 1, tzinfo=UTC), ec.generate_private_key(ec.SECP256R1()))
    good, _good_key = _dsc(4403, datetime(2025, 6, 1, tzinfo=UTC))
    return {
        "ok": (image.files[FID_SOD], groups, trust),
        "unknown_csca": (image.files[FID_SOD], groups, TrustStore([])),
        "no_trust": (image.files[FID_SOD], groups, None),
        "signer_expired": (expired.files[FID_SOD], _groups(expired), trust),
        "dg_mismatch": (tampered.files[FID_SOD], _groups(tampered), trust),
        "outside_period": (encode_sod(groups, early, early_key), groups, trust),
        "chain_signature": (encode_sod(groups, forged, forged_key), groups, trust),
        "sod_signature": (encode_sod(groups, good, ec.generate_private_key(ec.SECP256R1())), groups, trust),
    }


def test_a_cached_signer_gives_the_uncached_verdict_for_every_outcome(image: Any, trust: TrustStore) -> None:
    seen = set()
    for name, (sod, groups, store) in _scenarios(image, trust).items():
        uncached = verify_passive(sod, groups, store, NOW).to_json()
        cache = SignerCache(store)
        miss = verify_passive(sod, groups, store, NOW, signers=cache).to_json()
        hit = verify_passive(sod, groups, store, NOW, signers=cache).to_json()
        assert miss == uncached, name
        assert hit == uncached, name
        assert cache.hits >= 1, name
        seen.add((uncached["result"], uncached.get("reason")))
    assert {result for result, _reason in seen} == {"ok", "unknown_csca", "signer_expired", "failed"}
    assert len(seen) == 7  # each a distinct verdict (no trust store and an empty one are both unknown_csca)


def test_the_clock_is_compared_on_every_card_not_cached(image: Any, trust: TrustStore) -> None:
    cache = SignerCache(trust)
    sod, groups = image.files[FID_SOD], _groups(image)
    assert verify_passive(sod, groups, trust, NOW, signers=cache).result == "ok"
    later = datetime(2100, 1, 1, tzinfo=UTC)
    assert verify_passive(sod, groups, trust, later, signers=cache).result == "signer_expired"
    assert verify_passive(sod, groups, trust, later).result == "signer_expired"
    assert verify_passive(sod, groups, trust, NOW, signers=cache).result == "ok"


def test_cards_of_one_signer_share_one_entry(trust: TrustStore) -> None:
    cache = SignerCache(trust)
    for name in ("an", "binh"):
        card = build_chip_image(builtin_profiles()[name])
        assert verify_passive(card.files[FID_SOD], _groups(card), trust, NOW, signers=cache).result == "ok"
    assert (len(cache), cache.misses, cache.hits) == (1, 1, 1)


def test_the_cache_is_bounded_and_evicts_the_least_recently_used(image: Any, trust: TrustStore) -> None:
    groups = _groups(image)
    sods = []
    for serial in (4501, 4502, 4503):
        cert, key = _dsc(serial, datetime(2025, 6, 1, tzinfo=UTC))
        sods.append(encode_sod(groups, cert, key))
    cache = SignerCache(trust, maxsize=2)
    for sod in sods + sods[:1]:
        assert verify_passive(sod, groups, trust, NOW, signers=cache).result == "ok"
        assert len(cache) <= 2
    assert cache.misses == 4  # the first came back after it was evicted: a miss, the same verdict


def test_an_oversized_certificate_is_checked_alike_but_never_kept(image: Any, trust: TrustStore) -> None:
    """A hostile box could send huge certificates: the cache keeps only genuine-sized ones."""
    pki = default_pki()
    key = ec.generate_private_key(ec.SECP256R1())
    padding = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x00" * (MAX_CACHED_DER + 1))
    big = (
        x509.CertificateBuilder()
        .subject_name(pki.dsc_certificate.subject)
        .issuer_name(pki.csca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(4601)
        .not_valid_before(datetime(2025, 6, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        .add_extension(padding, critical=False)
        .sign(pki.csca_key, hashes.SHA256())
    )
    groups = _groups(image)
    sod = encode_sod(groups, big, key)
    cache = SignerCache(trust)
    verdicts = [verify_passive(sod, groups, trust, NOW, signers=cache).to_json() for _ in range(2)]
    assert verdicts == [verify_passive(sod, groups, trust, NOW).to_json()] * 2
    assert verdicts[0]["result"] == "ok"
    assert len(cache) == 0


def test_a_verdicts_signer_description_is_its_own(image: Any, trust: TrustStore) -> None:
    cache = SignerCache(trust)
    first = verify_passive(image.files[FID_SOD], _groups(image), trust, NOW, signers=cache)
    assert first.signer is not None and first.csca is not None
    first.signer["subject"] = "changed"
    first.csca["subject"] = "changed"
    second = verify_passive(image.files[FID_SOD], _groups(image), trust, NOW, signers=cache)
    assert second.signer is not None and second.signer["subject"] != "changed"
    assert second.csca is not None and second.csca["subject"] != "changed"


def test_a_cache_made_for_another_trust_store_is_refused(image: Any, trust: TrustStore) -> None:
    with pytest.raises(TypeError):
        verify_passive(image.files[FID_SOD], _groups(image), trust, NOW, signers=SignerCache(TrustStore([])))


def test_threads_sharing_a_locked_cache_get_the_uncached_verdicts(image: Any, trust: TrustStore) -> None:
    cases = list(_scenarios(image, trust).values())
    cases = [case for case in cases if case[2] is trust]
    expected = [verify_passive(sod, groups, trust, NOW).to_json() for sod, groups, _store in cases]
    cache = SignerCache(trust, maxsize=2, lock=threading.Lock())  # smaller than the DSCs: evictions race too
    wrong: list[str] = []

    def work() -> None:
        for _round in range(5):
            for (sod, groups, _store), want in zip(cases, expected, strict=True):
                if verify_passive(sod, groups, trust, NOW, signers=cache).to_json() != want:
                    wrong.append(want["result"])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert wrong == []
    assert len(cache) <= 2
