"""The Document Signer certificate of Passive Authentication (ICAO 9303-11 §5.1, 9303-12 §7.1).

Theory of operation. A state signs tens of thousands of cards with one Document Signer
certificate (DSC), and every EF.SOD carries it. Parsing it, loading its key and verifying its
chain to a CSCA is the same work for every card of that DSC, so the centre, which re-verifies
every identity event (issue 13), keeps it in a :class:`SignerCache` keyed by the certificate's
bytes (SHA-256 of the DER).

A :class:`Signer` memoises, one by one and only when they succeed, the facts that are pure
functions of the certificate's bytes and of the trust store: its serial, subject key identifier,
description, public key, validity dates, and which CSCA issued it (or why none did). A step that
raises is not remembered: it raises again on the next card, so a cached certificate gives the
very verdict an uncached one gives (a malformed, unknown or wrongly chained signer included).
Nothing that depends on the clock is cached: the validity is compared with ``now`` every time.

The cache is bounded (least recently used out). Threads may share it when the caller gives it a
lock (the core imports no threading; the centre passes a ``threading.Lock``): the table is
guarded by that lock; a :class:`Signer`'s memo fields are written without one, since two threads
that race compute equal values from the same bytes.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from idstation.agent.emrtd.trust import TrustStore, load_certificate

__all__ = ["CRYPTO_ERRORS", "MAX_CACHED_DER", "Signer", "SignerCache", "describe", "find_csca"]

CRYPTO_ERRORS = (InvalidSignature, ValueError, TypeError, OverflowError, UnsupportedAlgorithm)
_UNSET: Any = object()


def describe(cert: x509.Certificate) -> dict[str, str]:
    """What a verdict says of a certificate (state certificates: no personal data)."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def _signing_period(csca: x509.Certificate) -> tuple[datetime | None, datetime | None]:
    """When the CSCA's key may sign: its PrivateKeyUsagePeriod, else its validity."""
    try:
        usage = csca.extensions.get_extension_for_class(x509.PrivateKeyUsagePeriod).value
    except (x509.ExtensionNotFound, AttributeError):
        return csca.not_valid_before_utc, csca.not_valid_after_utc
    start, end = usage.not_before, usage.not_after
    return (
        start.replace(tzinfo=UTC) if start and start.tzinfo is None else start,
        end.replace(tzinfo=UTC) if end and end.tzinfo is None else end,
    )


def _issued_in_period(cert: x509.Certificate, csca: x509.Certificate) -> bool:
    start, end = _signing_period(csca)
    issued = cert.not_valid_before_utc
    return (start is None or start <= issued) and (end is None or issued <= end)


def find_csca(cert: x509.Certificate, trust: TrustStore | None) -> tuple[x509.Certificate | None, str | None]:
    """The CSCA that verifiably issued ``cert`` (one whose signing period covers it first), and why
    none did: "signature" (a name-matching CSCA's key rejects it), "period" (a CSCA's key verifies it
    but the DSC is dated outside that CSCA's signing period), or None (no CSCA matches by name)."""
    why: str | None = None
    outside: x509.Certificate | None = None
    for csca in trust.issuers_of(cert) if trust is not None else []:
        try:
            cert.verify_directly_issued_by(csca)
        except CRYPTO_ERRORS:
            why = why or "signature"
            continue
        if _issued_in_period(cert, csca):
            return csca, None
        outside = csca
    return None, "period" if outside is not None else why


class Signer:
    """One DSC and what Passive Authentication asks of it, each computed once when it succeeds."""

    __slots__ = ("_chain", "_csca_described", "_described", "_key", "_ski", "_validity", "cert", "trust")

    def __init__(self, cert: x509.Certificate, trust: TrustStore | None) -> None:
        self.cert, self.trust = cert, trust
        self._ski: Any = _UNSET
        self._described: dict[str, str] | None = None
        self._key: Any = None
        self._validity: tuple[datetime, datetime] | None = None
        self._chain: tuple[x509.Certificate | None, str | None] | None = None
        self._csca_described: dict[str, str] | None = None

    @property
    def serial(self) -> int:
        return int(self.cert.serial_number)

    def key_id(self) -> bytes:
        """The subjectKeyIdentifier (``ExtensionNotFound`` or ``ValueError`` when it has none usable)."""
        if self._ski is _UNSET:
            self._ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        return bytes(self._ski)

    def described(self) -> dict[str, str]:
        if self._described is None:
            self._described = describe(self.cert)
        return dict(self._described)  # a copy: the verdict's dict is the caller's

    def public_key(self) -> Any:
        if self._key is None:
            self._key = self.cert.public_key()
        return self._key

    def valid_at(self, now: datetime) -> bool:
        if self._validity is None:
            self._validity = (self.cert.not_valid_before_utc, self.cert.not_valid_after_utc)
        return self._validity[0] <= now <= self._validity[1]

    def chain(self) -> tuple[x509.Certificate | None, str | None]:
        """:func:`find_csca` against this signer's trust store."""
        if self._chain is None:
            self._chain = find_csca(self.cert, self.trust)
        return self._chain

    def csca_described(self) -> dict[str, str] | None:
        csca = self.chain()[0]
        if csca is None:
            return None
        if self._csca_described is None:
            self._csca_described = describe(csca)
        return dict(self._csca_described)


MAX_CACHED_DER = 16 * 1024  # a genuine DSC is 0.4-2 KB; a larger one is checked, not kept


class SignerCache:
    """Up to ``maxsize`` :class:`Signer` objects for ``trust``, by the SHA-256 of their DER.

    ``lock`` guards the table when threads share the cache (default: none, for one thread).
    Memory: at most ``maxsize`` certificates of at most ``MAX_CACHED_DER`` bytes (about 6 KB of
    Python objects each besides the DER): a few MB at worst, whatever certificates are sent.
    """

    def __init__(
        self, trust: TrustStore | None, maxsize: int = 256, *, lock: AbstractContextManager[Any] | None = None
    ) -> None:
        if maxsize < 1:
            raise TypeError("SignerCache needs room for at least one signer")
        self.trust, self.maxsize = trust, maxsize
        self._signers: OrderedDict[bytes, Signer] = OrderedDict()
        self._lock: AbstractContextManager[Any] = lock if lock is not None else nullcontext()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._signers)

    def __repr__(self) -> str:
        return f"SignerCache({len(self)}/{self.maxsize} signers, {self.hits} hits, {self.misses} misses)"

    def signer(self, der: bytes) -> Signer:
        """The :class:`Signer` of certificate ``der``; what ``load_certificate`` raises when it does not load."""
        if len(der) > MAX_CACHED_DER:
            return Signer(load_certificate(der), self.trust)  # checked alike, never kept
        key = hashlib.sha256(der).digest()
        with self._lock:
            found = self._signers.get(key)
            if found is not None:
                self._signers.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        made = Signer(load_certificate(der), self.trust)  # outside the lock: a slow parse blocks nobody
        with self._lock:
            found = self._signers.setdefault(key, made)
            self._signers.move_to_end(key)
            while len(self._signers) > self.maxsize:
                self._signers.popitem(last=False)
        return found
