"""The centre's receipt keys: the signing key the listener uses, and the public set boxes trust.

Central state directory (beside ``central_key.pem``)::

    receipt_key.pem        the active Ed25519 signing key (PKCS#8, 0600): `central listen` signs with it
    receipt.pub.pem        its public key (for outside verifiers)
    receipt_key.next.pem   a staged successor (0600), after `central receipt-key add`
    receipt_keys.pem       the public keys handed to boxes with every bundle (enrolment, renewal)

Rotation, without a moment where a box distrusts the centre: ``add`` stages a new key and puts its
public half into the handed-out set; boxes learn it with their next renewal (the renewal bundle
replaces the box's set) while receipts are still signed with the old key; ``activate`` then makes
the staged key the signing key (the old one is kept as ``receipt_key.retired-<id>.pem``) and
``retire KEY_ID`` finally drops the old public key from the set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from idstation.hal.storage import write_atomic
from idstation.mqtt.enrolment.errors import CaError
from idstation.mqtt.errors import SealError
from idstation.mqtt.receipt import parse_receipt_keys
from idstation.mqtt.seal import key_id_for

log = structlog.get_logger(__name__)

RECEIPT_KEY_FILE = "receipt_key.pem"
RECEIPT_PUB_FILE = "receipt.pub.pem"
NEXT_KEY_FILE = "receipt_key.next.pem"
HANDED_OUT_FILE = "receipt_keys.pem"


@dataclass(frozen=True, slots=True)
class ReceiptKeyInfo:
    key_id: str
    status: str  # "active" | "staged" | "trusted" (handed out, no longer or not yet signing)


def _public_pem(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _new_key(path: Path) -> ed25519.Ed25519PrivateKey:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_atomic(path, pem, mode=0o600)
    return key


def _load_private(path: Path) -> ed25519.Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise CaError(f"no receipt key {path.name} in {path.parent}: run `idstation central receipt-key add`") from None
    except ValueError:
        raise CaError(f"{path} is not a PEM private key") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise CaError(f"{path} is not an Ed25519 key")
    return key


def handed_out(directory: Path | str) -> list[ed25519.Ed25519PublicKey]:
    """The public keys every bundle carries (empty before the first receipt key)."""
    path = Path(directory) / HANDED_OUT_FILE
    if not path.is_file():
        return []
    try:
        return parse_receipt_keys(path.read_bytes())
    except SealError as exc:
        raise CaError(f"{path}: {exc}") from None


def handed_out_pem(directory: Path | str) -> str:
    """``receipt_keys.pem`` as text for a bundle ("" when the centre has no receipt key yet)."""
    return "".join(_public_pem(key).decode("ascii") for key in handed_out(directory))


def _write_set(directory: Path, keys: list[ed25519.Ed25519PublicKey]) -> None:
    unique: dict[str, ed25519.Ed25519PublicKey] = {}
    for key in keys:
        unique.setdefault(key_id_for(key), key)
    write_atomic(directory / HANDED_OUT_FILE, b"".join(_public_pem(k) for k in unique.values()), mode=0o644)


def create(directory: Path | str) -> str:
    """Make the first receipt key (``init-ca``); returns its key id. An existing key is kept (and handed out)."""
    directory = Path(directory)
    path = directory / RECEIPT_KEY_FILE
    key = _load_private(path) if path.exists() else _new_key(path)
    write_atomic(directory / RECEIPT_PUB_FILE, _public_pem(key.public_key()), mode=0o644)
    _write_set(directory, [*handed_out(directory), key.public_key()])
    key_id = key_id_for(key.public_key())
    log.info("receipt_key_created", key_id=key_id)
    return key_id


def add(directory: Path | str) -> str:
    """Stage a successor key and hand its public half out from now on; returns its key id.

    A central directory made before receipt keys existed has none: the first one is made active at once.
    """
    directory = Path(directory)
    if not (directory / RECEIPT_KEY_FILE).exists():
        return create(directory)
    _load_private(directory / RECEIPT_KEY_FILE)
    if (directory / NEXT_KEY_FILE).exists():
        raise CaError("a receipt key is already staged: `central receipt-key activate` it first")
    key = _new_key(directory / NEXT_KEY_FILE)
    _write_set(directory, [*handed_out(directory), key.public_key()])
    key_id = key_id_for(key.public_key())
    log.info("receipt_key_staged", key_id=key_id)
    return key_id


def activate(directory: Path | str) -> str:
    """The staged key becomes the signing key (restart the listeners); returns its key id."""
    directory = Path(directory)
    staged = _load_private(directory / NEXT_KEY_FILE)
    old = _load_private(directory / RECEIPT_KEY_FILE)
    old_pem = (directory / RECEIPT_KEY_FILE).read_bytes()
    write_atomic(directory / f"receipt_key.retired-{key_id_for(old.public_key())[8:]}.pem", old_pem, mode=0o600)
    write_atomic(directory / RECEIPT_KEY_FILE, (directory / NEXT_KEY_FILE).read_bytes(), mode=0o600)
    write_atomic(directory / RECEIPT_PUB_FILE, _public_pem(staged.public_key()), mode=0o644)
    _write_set(directory, [*handed_out(directory), staged.public_key()])
    (directory / NEXT_KEY_FILE).unlink()
    key_id = key_id_for(staged.public_key())
    log.info("receipt_key_activated", key_id=key_id, previous=key_id_for(old.public_key()))
    return key_id


def retire(directory: Path | str, key_id: str) -> None:
    """Stop handing out ``key_id`` (never the active or the staged key)."""
    directory = Path(directory)
    if key_id in {info.key_id for info in listing(directory) if info.status in ("active", "staged")}:
        raise CaError(f"{key_id} is the active or the staged receipt key")
    keys = handed_out(directory)
    remaining = [key for key in keys if key_id_for(key) != key_id]
    if len(remaining) == len(keys):
        raise CaError(f"{key_id} is not among the handed-out receipt keys")
    _write_set(directory, remaining)
    log.info("receipt_key_retired", key_id=key_id)


def listing(directory: Path | str) -> list[ReceiptKeyInfo]:
    directory = Path(directory)
    active = key_id_for(_load_private(directory / RECEIPT_KEY_FILE).public_key())
    staged = None
    if (directory / NEXT_KEY_FILE).exists():
        staged = key_id_for(_load_private(directory / NEXT_KEY_FILE).public_key())
    status = {active: "active", **({staged: "staged"} if staged else {})}
    ids = [key_id_for(key) for key in handed_out(directory)]
    return [ReceiptKeyInfo(kid, status.get(kid, "trusted")) for kid in dict.fromkeys([active, *ids])]
