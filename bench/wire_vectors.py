"""Generate the wire-format test vectors in docs/vectors/wire/ (run once; the outputs are committed).

HPKE sealing is randomised, so the vectors are fixed outputs: a verifier in another language must
*open* them (and get the stated plaintext), not reproduce them. Ed25519 signatures are
deterministic: re-signing a vector's signed bytes with its key gives the same signature.

usage: python bench/wire_vectors.py [--out docs/vectors/wire]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.mqtt.receipt import build_receipt
from idstation.mqtt.seal import MAGIC, Signer, encode_frame, key_id_for, seal_info, seal_private

CREATED_AT = "2026-12-01T08:00:00.000Z"
ISSUED_AT = "2026-12-01T08:00:01.000Z"
BOOT_ID = "3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
SITE, COUNTER = "hn-01", "c01"
VERIFICATION = {
    "passive": {"result": "ok", "dsc": "CN=Document Signer 1,O=Test,C=VN", "csca": "CN=CSCA Test,O=Test,C=VN"},
    "active": {"result": "ok"},
    "chip": {"result": "ok", "protocol": "id-CA-ECDH-AES-CBC-CMAC-128"},
    "status": "verified",
}
PRIVATE = {
    "source": "chip",
    "status": "verified",
    "citizen": {
        "id_number": "001090123456",
        "full_name": "Nguyễn Văn Bình",
        "date_of_birth": "01/01/1990",
        "gender": "Nam",
        "permanent_address": "Phường Tân Định, Quận 1, TP Hồ Chí Minh",
    },
    "verification": VERIFICATION,
    "access": "PACE-CAN",
    "qr": None,
}


def _seed(name: str) -> bytes:
    return hashlib.sha256(f"idstation wire vector {name}".encode()).digest()


def _ed25519(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_seed(name))


def _event_id(n: int) -> str:
    """A fixed UUIDv7: 2026-12-01T08:00:00Z in ms, version 7, variant 10, a counter as the rest."""
    ms = 1_796_112_000_000
    value = (ms << 80) | (0x7 << 76) | (0b10 << 62) | n
    return str(uuid.UUID(int=value))


def _raw(key: Any) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _pub_pem(key: Any) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _priv_pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _ed_entry(key: Ed25519PrivateKey, **extra: str) -> dict[str, str]:
    return {
        **extra,
        "private_seed_hex": key.private_bytes_raw().hex(),
        "public_hex": _raw(key.public_key()),
        "public_pem": _pub_pem(key.public_key()),
        "private_pem": _priv_pem(key),
        "key_id": key_id_for(key.public_key()),
    }


class Maker:
    def __init__(self) -> None:
        self.device = _ed25519("device box-1")
        self.revoked = _ed25519("device box-9 (revoked)")
        self.unknown = _ed25519("device box-x (never enrolled)")
        self.central = X25519PrivateKey.from_private_bytes(_seed("central x25519"))
        self.receipt = _ed25519("central receipt key")
        self.signer = Signer(self.device)
        self.n = 0

    def header(self, kind: str, seq: int, *, device: Ed25519PrivateKey | None = None, **extra: Any) -> dict[str, Any]:
        self.n += 1
        key = device or self.device
        device_id = {id(self.device): "box-1", id(self.revoked): "box-9", id(self.unknown): "box-x"}[id(key)]
        header: dict[str, Any] = {
            "v": 1,
            "kind": kind,
            "event_id": _event_id(self.n),
            "device_id": device_id,
            "site": SITE,
            "counter_id": COUNTER,
            "boot_id": BOOT_ID,
            "seq": seq,
            "created_at": CREATED_AT,
            "clock_synced": True,
            "key_id": key_id_for(key.public_key()),
        }
        if kind == "identity":
            header["enc"] = "DHKEM(X25519,HKDF-SHA256)/HKDF-SHA256/ChaCha20-Poly1305"
        elif kind == "read_failed":
            header |= {"reason": "access_denied", "detail": "no key opened the chip"}
        elif kind == "status":
            header |= {"state": "online", "info": {"outbox": 0, "awaiting_receipt": 0}}
        else:
            header |= {"info": {"uptime_s": 3600}}
        header.update(extra)
        return header

    def frame(self, header: dict[str, Any], *, device: Ed25519PrivateKey | None = None, info_event: str = "") -> bytes:
        sealed = b""
        if header["kind"] == "identity":
            sealed = seal_private(
                PRIVATE, self.central.public_key(), header["device_id"], info_event or header["event_id"]
            )
        return encode_frame(header, sealed, Signer(device or self.device))


def _topic(kind: str, counter: str = COUNTER) -> str:
    return f"idstation/v1/{SITE}/{counter}/{kind}"


def _accepted(name: str, m: Maker, kind: str, seq: int, *, verdict: str, note: str) -> dict[str, Any]:
    header = m.header(kind, seq)
    frame = m.frame(header)
    case: dict[str, Any] = {
        "name": name,
        "note": note,
        "topic": _topic(kind),
        "frame_hex": frame.hex(),
        "expect": {"result": "accepted", "verdict": verdict, "header": header},
    }
    case["expect"]["layout"] = _layout(frame)
    if kind == "identity":
        plaintext = json.dumps(PRIVATE, ensure_ascii=False, separators=(",", ":")).encode()
        case["expect"]["hpke"] = {
            "info_hex": seal_info(header["device_id"], header["event_id"]).hex(),
            "enc_hex": _layout(frame)["sealed_hex"][:64],
            "plaintext_utf8": plaintext.decode(),
        }
    return case


def _layout(frame: bytes) -> dict[str, Any]:
    kid_len = frame[len(MAGIC)]
    pos = len(MAGIC) + 1 + kid_len
    (hlen,) = struct.unpack_from(">I", frame, pos)
    header_at = pos + 4
    return {
        "key_id_len": kid_len,
        "header_len": hlen,
        "header_utf8": frame[header_at : header_at + hlen].decode(),
        "sealed_hex": frame[header_at + hlen : -64].hex(),
        "signed_len": len(frame) - 64,
        "signature_hex": frame[-64:].hex(),
    }


def _rejected(name: str, topic: str, frame: bytes, reason: str, note: str) -> dict[str, Any]:
    return {
        "name": name,
        "note": note,
        "topic": topic,
        "frame_hex": frame.hex(),
        "expect": {"result": "rejected", "reason": reason},
    }


def events(m: Maker) -> list[dict[str, Any]]:
    """Processed in order by one fresh centre whose registry holds box-1 (hn-01/c01) and revoked box-9."""
    cases = [
        _accepted("identity_first", m, "identity", 1, verdict="new", note="first event of the stream, seq 1"),
        _accepted("read_failed_next", m, "read_failed", 2, verdict="new", note="seq 2"),
        _accepted("status", m, "status", 2, verdict="new", note="telemetry carries the last seq taken; moves nothing"),
        _accepted("heartbeat", m, "heartbeat", 2, verdict="new", note="telemetry"),
        _accepted("identity_gap", m, "identity", 5, verdict="gap", note="seq 5 after 2: opens the gap 3..4"),
        _accepted(
            "read_failed_fills",
            m,
            "read_failed",
            3,
            verdict="filled",
            note="seq 3 fills part of the gap (4 still open)",
        ),
    ]
    first = bytes.fromhex(cases[0]["frame_hex"])
    cases.append(_rejected("duplicate", _topic("identity"), first, "duplicate", "case identity_first sent again"))
    cases.append(
        _rejected(
            "replay", _topic("read_failed"), m.frame(m.header("read_failed", 2)), "replay", "a new event id, seq 2"
        )
    )
    cases.append(
        _rejected("replay_seq0", _topic("read_failed"), m.frame(m.header("read_failed", 0)), "replay", "seq 0")
    )
    ok = m.frame(m.header("read_failed", 10))
    cases += [
        _rejected("bad_topic_kind", _topic("bogus"), ok, "bad_topic", "the last topic level is not a kind"),
        _rejected("bad_topic_depth", "idstation/v1/hn-01/read_failed", ok, "bad_topic", "four levels"),
        _rejected("malformed_magic", _topic("read_failed"), b"IDS2" + ok[4:], "malformed", "wrong magic"),
        _rejected("malformed_truncated", _topic("read_failed"), ok[:40], "malformed", "cut after 40 bytes"),
        _rejected(
            "unknown_device",
            _topic("read_failed"),
            m.frame(m.header("read_failed", 1, device=m.unknown), device=m.unknown),
            "unknown_device",
            "signed by a key no device holds",
        ),
        _rejected(
            "revoked_device",
            _topic("read_failed"),
            m.frame(m.header("read_failed", 1, device=m.revoked), device=m.revoked),
            "revoked_device",
            "box-9 is revoked",
        ),
    ]
    flipped = bytearray(ok)
    flipped[len(ok) - 64 - 3] ^= 0x01  # a byte of the header's JSON
    cases.append(
        _rejected("bad_signature", _topic("read_failed"), bytes(flipped), "bad_signature", "one header bit flipped")
    )
    no_seq = m.header("read_failed", 11)
    del no_seq["seq"]
    cases.append(_rejected("bad_header", _topic("read_failed"), m.frame(no_seq), "bad_header", "no seq"))
    other_key = m.header("read_failed", 12, key_id="ed25519:0000000000000000")
    cases.append(
        _rejected(
            "wrong_topic_key_id",
            _topic("read_failed"),
            m.frame(other_key),
            "wrong_topic",
            "header key_id != frame key id",
        )
    )
    other_device = m.header("read_failed", 13, device_id="box-2")
    cases.append(
        _rejected(
            "wrong_topic_device", _topic("read_failed"), m.frame(other_device), "wrong_topic", "header names box-2"
        )
    )
    cases.append(
        _rejected(
            "wrong_topic_kind",
            _topic("identity"),
            m.frame(m.header("read_failed", 14)),
            "wrong_topic",
            "a read_failed header on the identity topic",
        )
    )
    cases.append(
        _rejected(
            "wrong_topic_counter",
            _topic("read_failed", "c02"),
            m.frame(m.header("read_failed", 15)),
            "wrong_topic",
            "box-1 is bound to hn-01/c01",
        )
    )
    moved = m.header("identity", 16)
    cases.append(
        _rejected(
            "undecryptable",
            _topic("identity"),
            m.frame(moved, info_event=_event_id(999)),
            "undecryptable",
            "sealed for another event id (info differs)",
        )
    )
    return cases


def receipts(m: Maker) -> dict[str, Any]:
    signer = Signer(m.receipt)
    stream = key_id_for(m.device.public_key())
    valid = build_receipt("box-1", stream, 3, [5], signer, issued_at=ISSUED_AT)
    flipped = bytearray(valid)
    flipped[len(valid) - 64 - 2] ^= 0x01
    bad_header = encode_frame({"v": 1, "kind": "receipt", "device_id": "box-1", "key_id": stream, "upto": 3,
                               "above": [2], "issued_at": ISSUED_AT}, b"", signer)  # fmt: skip
    return {
        "note": "the receipt the centre owes box-1 after the event cases: it holds seq 1, 2, 3 and 5 (4 missing)",
        "topic": _topic("receipt"),
        "valid": {
            "frame_hex": valid.hex(),
            "layout": _layout(valid),
            "expect": {
                "device_id": "box-1",
                "key_id": stream,
                "upto": 3,
                "above": [5],
                "issued_at": ISSUED_AT,
                "receipt_key_id": key_id_for(m.receipt.public_key()),
                "covered": [1, 2, 3, 5],
                "not_covered": [0, 4, 6],
            },
        },
        "invalid": [
            {
                "name": "unknown_key",
                "frame_hex": build_receipt("box-1", stream, 3, [], Signer(m.unknown), issued_at=ISSUED_AT).hex(),
                "reason": "unknown_key",
            },
            {"name": "bad_signature", "frame_hex": bytes(flipped).hex(), "reason": "bad_signature"},
            {"name": "above_not_above_upto", "frame_hex": bad_header.hex(), "reason": "bad_header"},
            {"name": "malformed", "frame_hex": valid[:30].hex(), "reason": "malformed"},
        ],
    }


def keys(m: Maker) -> dict[str, Any]:
    return {
        "device": _ed_entry(m.device, device_id="box-1", site=SITE, counter=COUNTER, registry="enrolled"),
        "revoked_device": _ed_entry(m.revoked, device_id="box-9", site=SITE, counter="c09", registry="revoked"),
        "unknown_device": _ed_entry(m.unknown, device_id="box-x", registry="absent"),
        "central": {
            "private_hex": m.central.private_bytes_raw().hex(),
            "public_hex": _raw(m.central.public_key()),
            "private_pem": _priv_pem(m.central),
            "public_pem": _pub_pem(m.central.public_key()),
        },
        "receipt": _ed_entry(m.receipt),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs/vectors/wire")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    m = Maker()
    for name, value in (("keys", keys(m)), ("events", {"cases": events(m)}), ("receipts", receipts(m))):
        path = args.out / f"{name}.json"
        path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
