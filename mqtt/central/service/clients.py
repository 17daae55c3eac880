"""The service's clients: who may call it, bound to which counters, under which token.

The clients file (JSON, written atomically, mode 0600) stores per client its name, role
(``counter`` bound to one or more ``SITE/COUNTER``, or ``operator``) and the SHA-256 of its bearer
token; the token itself (256 random bits, URL-safe base64) is printed once by ``add-client`` and
never stored. A token is checked by hashing it and comparing with every stored hash in constant
time (``hmac.compare_digest``). A running service re-reads the file when its mtime or size
changes, so ``add-client`` / ``remove-client`` apply without a restart (and to every instance
sharing the file).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from idstation.hal.storage import write_atomic
from idstation.mqtt.central.service.errors import ClientsError
from idstation.mqtt.enrolment.pairing import NAME_RULE
from idstation.mqtt.enrolment.pairing import valid_name as valid_counter_name
from idstation.mqtt.topics import valid_name

__all__ = ["COUNTER", "OPERATOR", "Client", "ClientsFile", "hash_token", "new_token", "parse_counter"]

OPERATOR, COUNTER = "operator", "counter"
_VERSION = 1


def new_token() -> str:
    """A fresh bearer token: 32 random bytes, URL-safe base64 without padding (43 characters)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_counter(text: str) -> tuple[str, str]:
    """``SITE/COUNTER`` -> (site, counter), each under the one name rule of devices, sites and
    counters (``pairing.valid_name``, 1-64): a binding ``add-client`` accepts can match an enrolled box."""
    site, sep, counter = text.partition("/")
    if not sep or not valid_counter_name(site) or not valid_counter_name(counter):
        raise ClientsError(f"a counter is SITE/COUNTER, site and counter each {NAME_RULE}")
    return site, counter


def _stored_counter(text: str) -> tuple[str, str]:
    """A binding read back from the file: the topic rule (1-128), so a file an older ``add-client``
    wrote with a 65-128 character name still loads (that binding matches no enrolled box)."""
    site, sep, counter = text.partition("/")
    if not sep or not valid_name(site) or not valid_name(counter):
        raise ClientsError("the clients file holds a malformed counter binding")
    return site, counter


@dataclass(frozen=True, slots=True)
class Client:
    """An authenticated caller. ``counters`` is empty for an operator."""

    name: str
    role: str
    counters: frozenset[tuple[str, str]] = frozenset()

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR

    def may_read(self, site: str, counter: str) -> bool:
        """A counter client reads only its own counters' identities; an operator reads none."""
        return self.role == COUNTER and (site, counter) in self.counters


@dataclass(frozen=True, slots=True)
class _Entry:
    client: Client
    token_sha256: str


class ClientsFile:
    """Read, add and remove clients; authenticate tokens. Thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._entries: list[_Entry] = []

    # ---- management (the command line) -------------------------------------------------------
    def add(self, name: str, counters: Iterable[str] = (), *, operator: bool = False) -> str:
        """Create a client and return its token (shown once; only its hash is stored)."""
        if not valid_name(name):
            raise ClientsError("a client name is 1-128 of A-Z a-z 0-9 . _ -")
        bound = sorted({parse_counter(c) for c in counters})
        if operator == bool(bound):
            raise ClientsError("a client is either an operator or bound to at least one counter")
        token = new_token()
        with self._lock:
            doc = self._read_doc()
            if any(item.get("name") == name for item in doc["clients"]):
                raise ClientsError(f"a client named {name!r} already exists")
            doc["clients"].append(
                {
                    "name": name,
                    "role": OPERATOR if operator else COUNTER,
                    "counters": [f"{s}/{c}" for s, c in bound],
                    "token_sha256": hash_token(token),
                    "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                }
            )
            self._write_doc(doc)
        return token

    def remove(self, name: str) -> bool:
        """Remove a client; False when there was none of that name."""
        with self._lock:
            doc = self._read_doc()
            kept = [item for item in doc["clients"] if item.get("name") != name]
            if len(kept) == len(doc["clients"]):
                return False
            doc["clients"] = kept
            self._write_doc(doc)
        return True

    def clients(self) -> list[Client]:
        with self._lock:
            self._reload()
            return [entry.client for entry in self._entries]

    # ---- the service --------------------------------------------------------------------------
    def still_valid(self, client: Client) -> bool:
        """``client`` is still in the file with the same role and counters (checked on every poll
        of an open stream: a removed or re-bound client's stream ends)."""
        with self._lock:
            self._reload()
            return any(entry.client == client for entry in self._entries)

    def authenticate(self, token: str | None) -> Client | None:
        """The client holding ``token``, or None. Every stored hash is compared in constant time."""
        if not token:
            return None
        digest = hash_token(token)
        with self._lock:
            self._reload()
            entries = self._entries
        found = None
        for entry in entries:
            if hmac.compare_digest(entry.token_sha256, digest):
                found = entry.client
        return found

    def _reload(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._entries = None, []
            return
        except OSError as exc:
            raise ClientsError(f"cannot read the clients file: {exc.strerror}") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._entries = [_entry(item) for item in self._read_doc()["clients"]]
            self._stamp = stamp

    def _read_doc(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"version": _VERSION, "clients": []}
        except OSError as exc:
            raise ClientsError(f"cannot read the clients file: {exc.strerror}") from None
        try:
            doc = json.loads(text)
        except ValueError:
            raise ClientsError("the clients file is not valid JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("clients"), list):
            raise ClientsError("the clients file has no 'clients' list")
        return doc

    def _write_doc(self, doc: dict[str, Any]) -> None:
        data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, data, mode=0o600)
        except OSError as exc:
            raise ClientsError(f"cannot write the clients file: {exc.strerror}") from None
        self._stamp = None


def _entry(item: Any) -> _Entry:
    try:
        role = item["role"]
        if role not in (OPERATOR, COUNTER):
            raise ValueError(role)
        counters = frozenset(_stored_counter(c) for c in item.get("counters", []))
        digest = str(item["token_sha256"])
        if len(digest) != 64:
            raise ValueError("digest")
        return _Entry(Client(str(item["name"]), role, counters), digest)
    except (KeyError, TypeError, ValueError, ClientsError):
        raise ClientsError("the clients file holds a malformed client entry") from None
