"""Central receipts: the centre's signed word that it durably holds a box's events.

Theory of operation
-------------------
A broker's PUBACK only says the broker took a message; it may have had no subscriber for it
(mosquitto answers 0x10 "No matching subscribers" and stores nothing). So a box keeps every data
event (identity, read_failed) until the *centre* says it has recorded it. The centre says so with
a receipt per device stream, published QoS 1 retained on ``idstation/v1/{site}/{counter}/receipt``.

A receipt is a frame in the event frame format (:mod:`idstation.mqtt.seal`): magic ``IDS1``, the
frame key id = :func:`~idstation.mqtt.seal.key_id_for` of the centre's *receipt* public key, a JSON
header, an empty sealed part, an Ed25519 signature by the receipt key over every byte before it.
The header::

    {"v": 1, "kind": "receipt", "device_id": D, "key_id": K, "upto": N,
     "above": [sorted seq numbers > N, at most 512], "issued_at": "2026-12-03T09:30:00.123Z"}

means: the centre durably holds every data event of stream ``(D, K)`` (device id, the id of the
device's signing key) with ``1 <= seq <= upto``, and each one listed in ``above``. The centre
derives it from the stream state (:func:`receipt_range`): ``upto`` is the lowest open gap's start
minus one, or the highest ``seq`` when nothing is missing; ``above`` lists the held numbers past
the first gap, the lowest 512 of them (the box resends what no receipt covers; once the gap is
filled ``upto`` moves past them all).

Header keys not listed above are ignored (a newer centre may add some); the listed ones are
checked strictly. Everything here is pure: no I/O, no clocks except ``issued_at``'s default.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from idstation.mqtt.errors import ReceiptRejected, SealError
from idstation.mqtt.seal import Signer, decode_frame, encode_frame, key_id_for, verify_frame
from idstation.mqtt.topics import PREFIX, valid_name

RECEIPT_KIND = "receipt"
RECEIPT_VERSION = 1
MAX_ABOVE = 512
MAX_SEQ = 2**53  # as events.MAX_SEQ: exact in every JSON implementation and in a signed 64-bit column
_ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)

__all__ = [
    "MAX_ABOVE",
    "RECEIPT_KIND",
    "Receipt",
    "ReceiptRejected",
    "build_receipt",
    "is_receipt_topic",
    "parse_receipt",
    "parse_receipt_keys",
    "receipt_range",
    "receipt_topic",
]


@dataclass(frozen=True, slots=True)
class Receipt:
    """A verified receipt: the centre holds seq ``1..upto`` and ``above`` of stream (device_id, key_id)."""

    device_id: str
    key_id: str
    upto: int
    above: frozenset[int]
    issued_at: str
    receipt_key_id: str

    def covers(self, seq: int) -> bool:
        """True when the centre holds the data event numbered ``seq`` of this stream."""
        return 1 <= seq <= self.upto or seq in self.above


def receipt_topic(site: str, counter: str) -> str:
    """The (retained) topic of a counter's receipts."""
    if not (valid_name(site) and valid_name(counter)):
        raise TypeError("site and counter must be 1-128 of A-Z a-z 0-9 . _ -")
    return f"{PREFIX}/{site}/{counter}/{RECEIPT_KIND}"


_RECEIPT_END = "/" + RECEIPT_KIND


def is_receipt_topic(topic: str) -> bool:
    """True for a receipt topic (``idstation/v1/+/+/receipt``), which an event listener must ignore."""
    if not topic.endswith(_RECEIPT_END):  # every event topic (the listener asks for each message)
        return False
    parts = topic.split("/")
    return len(parts) == 5 and "/".join(parts[:2]) == PREFIX and parts[4] == RECEIPT_KIND


def receipt_range(max_seq: int, gaps: Iterable[tuple[int, int]], *, limit: int = MAX_ABOVE) -> tuple[int, list[int]]:
    """``(upto, above)`` of a stream whose highest data ``seq`` is ``max_seq`` with open ``gaps``.

    ``gaps`` are inclusive ranges ``(lo, hi)`` of numbers not held, within ``1..max_seq``. ``upto``
    is the first gap's ``lo - 1`` (or ``max_seq`` without gaps); ``above`` the lowest ``limit``
    held numbers between the first gap and ``max_seq``. A stream with no data event is ``(0, [])``.
    """
    if max_seq < 0 or limit < 0:
        raise TypeError("max_seq and limit are non-negative")
    ranges = sorted((max(lo, 1), min(hi, max_seq)) for lo, hi in gaps if lo <= hi and hi >= 1 and lo <= max_seq)
    if not ranges:
        return max_seq, []
    upto = ranges[0][0] - 1
    above: list[int] = []
    cursor = upto + 1  # the lowest number not yet classified
    for lo, hi in ranges:
        if lo > cursor:
            above.extend(range(cursor, min(lo, cursor + limit - len(above))))
        cursor = max(cursor, hi + 1)
        if len(above) >= limit:
            return upto, above
    above.extend(range(cursor, min(max_seq + 1, cursor + limit - len(above))))
    return upto, above


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_receipt(
    device_id: str,
    key_id: str,
    upto: int,
    above: Sequence[int],
    signer: Signer,
    *,
    issued_at: str | None = None,
) -> bytes:
    """The signed receipt frame for stream ``(device_id, key_id)``; misuse is a :class:`TypeError`."""
    try:
        above = sorted(set(above))
    except TypeError:
        raise TypeError("above holds integers") from None
    if not valid_name(device_id) or not _valid_key_id(key_id):
        raise TypeError("a receipt names a valid device id and key id")
    if not _is_int(upto) or not 0 <= upto <= MAX_SEQ:
        raise TypeError("upto is an integer in 0..2**53")
    if not all(type(s) is int for s in above):  # exact type: a bool is not a number here
        raise TypeError("above holds integers")
    if len(above) > MAX_ABOVE or (above and (above[0] <= upto or above[-1] > MAX_SEQ)):
        raise TypeError(f"above holds at most {MAX_ABOVE} integers greater than upto")
    issued_at = issued_at or _now_iso()
    if not _ISO_Z.fullmatch(issued_at):
        raise TypeError("issued_at is ISO 8601 UTC ending in Z")
    header = {
        "v": RECEIPT_VERSION,
        "kind": RECEIPT_KIND,
        "device_id": device_id,
        "key_id": key_id,
        "upto": upto,
        "above": above,
        "issued_at": issued_at,
    }
    frame: bytes = encode_frame(header, b"", signer)
    return frame


def parse_receipt(payload: bytes, trusted_keys: Iterable[Ed25519PublicKey]) -> Receipt:
    """Verify and parse a receipt; :class:`ReceiptRejected` with ``reason`` ``malformed`` (not a
    frame, or a sealed part), ``unknown_key`` (no trusted key has the frame's key id),
    ``bad_signature`` or ``bad_header`` (checked in that order)."""
    try:
        frame = decode_frame(payload)
    except SealError as exc:
        raise ReceiptRejected("malformed", str(exc)) from None
    key = next((k for k in trusted_keys if key_id_for(k) == frame.key_id), None)
    if key is None:
        raise ReceiptRejected("unknown_key", "no trusted receipt key has this key id")
    try:
        verify_frame(frame, key)
    except SealError:
        raise ReceiptRejected("bad_signature", "bad receipt signature") from None
    if frame.sealed:
        raise ReceiptRejected("malformed", "a receipt has no sealed part")
    try:
        header = frame.header
    except SealError as exc:
        raise ReceiptRejected("bad_header", str(exc)) from None
    return _parse_header(header, frame.key_id)


def _parse_header(h: dict[str, Any], receipt_key_id: str) -> Receipt:
    if not _is_int(h.get("v")) or h.get("v") != RECEIPT_VERSION or h.get("kind") != RECEIPT_KIND:
        raise ReceiptRejected("bad_header", "not a version 1 receipt")
    device_id, key_id, upto, above, issued_at = (
        h.get(k) for k in ("device_id", "key_id", "upto", "above", "issued_at")
    )
    if not isinstance(device_id, str) or not valid_name(device_id) or not _valid_key_id(key_id):
        raise ReceiptRejected("bad_header", "bad device id or key id")
    if not isinstance(upto, int) or not _is_int(upto) or not 0 <= upto <= MAX_SEQ:
        raise ReceiptRejected("bad_header", "bad upto")
    if not isinstance(above, list) or len(above) > MAX_ABOVE:
        raise ReceiptRejected("bad_header", f"above is a list of at most {MAX_ABOVE}")
    previous = upto
    for seq in above:
        if not _is_int(seq) or not previous < seq <= MAX_SEQ:
            raise ReceiptRejected("bad_header", "above is strictly increasing and greater than upto")
        previous = seq
    if not isinstance(issued_at, str) or not _ISO_Z.fullmatch(issued_at):
        raise ReceiptRejected("bad_header", "bad issued_at")
    return Receipt(device_id, str(key_id), upto, frozenset(above), issued_at, receipt_key_id)


def parse_receipt_keys(pem: bytes | str) -> list[Ed25519PublicKey]:
    """Every Ed25519 public key in PEM text holding one or more ``PUBLIC KEY`` blocks
    (``identity/receipt_keys.pem``); :class:`SealError` if a block is not an Ed25519 key or there is none."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else bytes(pem)
    keys: list[Ed25519PublicKey] = []
    for block in _PEM_BLOCK.findall(data):
        try:
            key = serialization.load_pem_public_key(block)
        except (ValueError, TypeError):
            raise SealError("a receipt key block is not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SealError("a receipt key is not an Ed25519 key")
        keys.append(key)
    if not keys:
        raise SealError("no receipt public key found")
    return keys


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _valid_key_id(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and 0 < len(value) < 256 and value.isprintable()
