"""A centre for service tests: a real SQLite store, a registry, the central key, clients, and
boxes that sign and seal real frames and record them into the store as a listener would."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from idstation.agent.sim.profile_data.faces import face_jpeg
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.service.clients import ClientsFile
from idstation.mqtt.central.store import Incoming, open_store
from idstation.mqtt.events import EventBuilder
from idstation.mqtt.seal import Signer, decode_frame

# A made-up citizen (not a real person); Vietnamese text must come back exactly.
CITIZEN = {
    "id_number": "001090123456",
    "full_name": "Nguyễn Thị Thuỳ Dương",
    "date_of_birth": "1990-01-01",
    "gender": "Nữ",
    "nationality": "Việt Nam",
    "hometown": "Xã Đông Hưng, Huyện Tiên Lữ, Hưng Yên",
    "permanent_address": "Số 7 ngõ 12 Phố Huế, Phường Phạm Đình Hổ, Quận Hai Bà Trưng, Hà Nội",
    "issue_date": "2021-04-15",
    "expiry_date": "2030-01-01",
}
FACE = {"mime": "image/jpeg", "base64": base64.b64encode(face_jpeg(1, "Nữ")).decode()}
PERSONAL = [CITIZEN["id_number"], CITIZEN["full_name"], CITIZEN["permanent_address"], "Nguyễn", "001090"]


def citizen(n: int) -> dict[str, Any]:
    return {**CITIZEN, "id_number": f"0010901{n:05d}", "full_name": f"Trần Văn Số {n}"}


@dataclass
class Box:
    centre: Centre
    device_id: str
    site: str
    counter: str
    builder: EventBuilder
    key_id: str
    seq: int = 0
    held: list[Incoming] | None = None  # inside batch(): events wait here, then go in one transaction

    def batch(self, n: int) -> list[str]:
        """``n`` identities recorded in ONE store transaction (as a listener's batch would)."""
        self.held = []
        ids = [self.identity(citizen(i)) for i in range(n)]
        self.centre.store.record(self.held)
        self.held = None
        return ids

    def _record(self, kind: str, received_at: float | None, centre: dict[str, Any] | None = None, **kw: Any) -> str:
        seq = self.seq + 1 if kind in ("identity", "read_failed") else self.seq
        built = self.builder.build(kind, seq, **kw)
        self.seq = seq
        header = decode_frame(built.frame).header
        if centre is not None:  # the centre's own chip verdict, as `central listen --csca` stores it
            header["centre_verification"] = centre
        incoming = Incoming(
            built.event_id, self.device_id, self.key_id, seq, kind, self.site, self.counter,
            header["created_at"], received_at if received_at is not None else time.time(), header, built.frame,
        )  # fmt: skip
        if self.held is not None:
            self.held.append(incoming)
        else:
            self.centre.store.record([incoming])
        return built.event_id

    def identity(
        self,
        who: dict[str, Any] | None = None,
        *,
        received_at: float | None = None,
        centre: dict[str, Any] | None = None,
    ) -> str:
        private = {
            "source": "chip",
            "status": "verified",
            "citizen": who or CITIZEN,
            "verification": {"passive": {"result": "ok"}, "active": {"result": "ok"}, "status": "verified"},
            "access": "PACE-CAN",
            "face": FACE,
        }
        return self._record("identity", received_at, centre, private=private)

    def read_failed(self, reason: str = "card_removed", *, received_at: float | None = None) -> str:
        return self._record("read_failed", received_at, reason=reason, detail="")

    def status(self, state: str = "online", info: dict[str, Any] | None = None) -> str:
        return self._record("status", None, state=state, info=info or {})


@dataclass
class Centre:
    root: Path
    store_url: str
    key: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.store = open_store(self.store_url, migrate=True)
        self.registry_dir = self.root / "registry"
        self.registry = Registry(self.registry_dir, create=True)
        self.key_path = self.root / "central.key.pem"
        self.key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.clients_path = self.root / "clients.json"
        self.clients = ClientsFile(self.clients_path)
        self.tokens["c01"] = self.clients.add("clerk-c01", ["hn-01/c01"])
        self.tokens["c02"] = self.clients.add("clerk-c02", ["hn-01/c02"])
        self.tokens["operator"] = self.clients.add("ops", operator=True)

    def box(self, device_id: str, site: str = "hn-01", counter: str = "c01") -> Box:
        key = Ed25519PrivateKey.generate()
        record = self.registry.add_device(device_id, site, counter, key.public_key())
        builder = EventBuilder(device_id, site, counter, Signer(key), self.key.public_key())
        return Box(self, device_id, site, counter, builder, record.key_id)

    def audit(self) -> list[dict[str, Any]]:
        return self.store.audit_since(0.0)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sse_lines(response: httpx.Response) -> Iterator[str]:
    """One line iterator per response, so several reads continue where the last one stopped."""
    lines = getattr(response, "_idstation_lines", None)
    if lines is None:
        lines = response.iter_lines()
        response._idstation_lines = lines  # type: ignore[attr-defined]
    return lines


def read_sse(response: httpx.Response, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The next ``count`` events of an open SSE response (bounded by ``timeout``)."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    for line in sse_lines(response):
        if time.monotonic() > deadline:
            break
        if not line:
            if "data" in current:
                current["json"] = json.loads(current["data"])
                events.append(current)
                if len(events) >= count:
                    return events
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            current[name] = value[1:] if value.startswith(" ") else value
    raise AssertionError(f"got {len(events)} of {count} events within {timeout} s")
