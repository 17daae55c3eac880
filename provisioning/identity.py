"""The device identity: made by ``provision init``, completed by ``provision apply``, read by the daemon.

``load_identity(state_dir)`` is what the daemon and the demo call; it raises ``NotProvisioned``
(a configuration-class error) unless the live generation holds a complete, consistent identity.
The layout is in docs/architecture.md ("Device state directory").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from idstation.hal.storage import DEFAULT_STATE_DIR
from idstation.mqtt.enrolment.pairing import NAME_RULE, PairingCode, new_token, valid_name
from idstation.mqtt.enrolment.session import BrokerAccess
from idstation.provisioning import keys
from idstation.provisioning.errors import NotProvisioned, ProvisioningError, StateError
from idstation.provisioning.statedir import Generation, StateDir

log = structlog.get_logger(__name__)

DEVICE_JSON = "device.json"
PAIRING_JSON = "pairing.json"
CSR_FILE = "device.csr"
CERT_FILE = "device.crt"
FLEET_CA_FILE = "fleet_ca.crt"
CENTRAL_KEY_FILE = "central.pub.pem"
BINDING_JSON = "binding.json"
RECEIPT_KEYS_FILE = "receipt_keys.pem"
_FINGERPRINT_RE = re.compile(r"[0-9a-f]{64}")
KEY_FILES = [keys.SIGNING_KEY_FILE, keys.TLS_KEY_FILE]


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What ``provision init`` made: ids, binding request and key locations (no certificate yet)."""

    device_id: str
    site: str
    counter: str
    key_id: str
    tls_fingerprint: str
    identity_dir: Path
    fleet_ca_sha256: str = ""  # the fleet CA the technician confirmed ("" = none yet)

    @property
    def store(self) -> keys.FileKeyStore:
        return keys.FileKeyStore(self.identity_dir)


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """A provisioned box: everything the daemon needs to sign, seal and publish."""

    device_id: str
    site: str
    counter: str
    key_id: str
    signing_key: ed25519.Ed25519PrivateKey = field(repr=False)
    tls_key_path: Path
    tls_cert_path: Path
    fleet_ca_path: Path
    central_public_key: x25519.X25519PublicKey = field(repr=False)
    broker_url: str
    state_dir: Path
    identity_dir: Path
    cert_not_after: datetime
    binding: dict[str, Any] = field(repr=False, default_factory=dict)

    def broker_access(self, client_id: str = "", *, url: str | None = None) -> BrokerAccess:
        """How this box reaches its broker: its TLS certificate and key, trusting the fleet CA."""
        return BrokerAccess(
            url or self.broker_url,
            ca_file=str(self.fleet_ca_path),
            cert_file=str(self.tls_cert_path),
            key_file=str(self.tls_key_path),
            client_id=client_id,
        )


class InitResult:
    def __init__(self, device: DeviceInfo, pairing: PairingCode, created: bool) -> None:
        self.device = device
        self.pairing = pairing
        self.created = created


def normalise_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint as 64 lower-case hex digits.

    Accepts what `central init-ca` prints and OpenSSL's ``sha256 Fingerprint=AB:CD:...``: case,
    ``:`` and spaces do not matter, a ``sha256:`` / ``sha256 fingerprint=`` prefix is dropped.
    """
    value = text.strip().lower()
    for prefix in ("sha256 fingerprint=", "sha256:", "sha256="):
        value = value.removeprefix(prefix)
    value = value.replace(":", "").replace(" ", "")
    if not _FINGERPRINT_RE.fullmatch(value):
        raise ProvisioningError("the fleet CA fingerprint must be a SHA-256: 64 hex digits, as `central init-ca` shows")
    return value


def init_device(
    state_dir: Path | str = DEFAULT_STATE_DIR,
    *,
    site: str,
    counter: str,
    force: bool = False,
    fleet_ca_fingerprint: str | None = None,
) -> InitResult:
    """Make keys, CSR and a pairing token (or re-show them: idempotent for the same site/counter).

    An enrolled box is only re-keyed with ``force=True``; changing site/counter before enrolment
    keeps the keys and issues a new pairing token. ``fleet_ca_fingerprint`` is the SHA-256 of the
    fleet CA certificate that the technician confirms: every bundle must come from that CA (kept
    across a re-initialisation when not given again).
    """
    for what, value in (("site", site), ("counter", counter)):
        if not valid_name(value):
            raise ProvisioningError(f"{what} must be {NAME_RULE}")
    pin = normalise_fingerprint(fleet_ca_fingerprint) if fleet_ca_fingerprint else None
    state = StateDir(state_dir)
    live = state.current()
    existing = _read_json(live / DEVICE_JSON) if live is not None and (live / DEVICE_JSON).exists() else None
    enrolled = live is not None and (live / BINDING_JSON).exists()
    same_place = existing is not None and (existing.get("site"), existing.get("counter")) == (site, counter)
    if existing and not force:
        if enrolled:
            raise ProvisioningError("this box is already enrolled; use --force to make new keys (re-enrolment)")
        fresh_pairing = live is not None and (live / PAIRING_JSON).exists()
        if same_place and fresh_pairing and pin in (None, existing.get("fleet_ca_sha256")):
            device = load_device(state_dir)
            return InitResult(device, pairing_code(device), created=False)
    pin = pin or _kept_pin(live, existing)
    gen = state.begin()
    try:
        if existing and not force:
            gen.carry(live, [*KEY_FILES, CSR_FILE, *([PAIRING_JSON] if same_place else [])])
        else:
            pems = keys.generate_pems()
            gen.write(keys.SIGNING_KEY_FILE, pems.signing_pem)
            gen.write(keys.TLS_KEY_FILE, pems.tls_pem)
        _write_device(gen, site, counter, pin)
    except BaseException:
        state.abort(gen)
        raise
    state.commit(gen)
    device = load_device(state_dir)
    log.info("device_initialised", device_id=device.device_id, site=site, counter=counter, fleet_ca_pinned=bool(pin))
    return InitResult(device, pairing_code(device), created=True)


def _kept_pin(live: Path | None, existing: dict[str, Any] | None) -> str:
    """The fleet CA pin a re-initialisation keeps: the recorded one, else the installed CA's."""
    if existing and existing.get("fleet_ca_sha256"):
        return str(existing["fleet_ca_sha256"])
    if live is not None and (live / BINDING_JSON).exists():
        return str(_read_json(live / BINDING_JSON).get("fleet_ca_sha256", ""))
    return ""


def _write_device(gen: Generation, site: str, counter: str, pin: str) -> None:
    store = keys.FileKeyStore(gen.path)
    public_raw = store.signing_public_raw()
    if not (gen.path / CSR_FILE).exists():
        from idstation.mqtt.enrolment.csr import build_csr

        gen.write(CSR_FILE, build_csr(store))
    device_doc = {
        "device_id": keys.device_id_for(public_raw),
        "site": site,
        "counter": counter,
        "key_id": keys.key_id_for(public_raw),
        "tls_fingerprint": keys.spki_fingerprint(store.tls_private_key().public_key()),
        "fleet_ca_sha256": pin,
        "created_at": _now(),
    }
    gen.write(DEVICE_JSON, dump_json(device_doc))
    if not (gen.path / PAIRING_JSON).exists():
        gen.write(PAIRING_JSON, dump_json({"token": new_token(), "created_at": _now()}))


def load_device(state_dir: Path | str = DEFAULT_STATE_DIR) -> DeviceInfo:
    """The device as ``provision init`` left it (enrolled or not)."""
    live = StateDir(state_dir).current()
    if live is None or not (live / DEVICE_JSON).exists():
        raise NotProvisioned(f"no device identity in {state_dir}: run `idstation provision init`")
    doc = _read_json(live / DEVICE_JSON)
    try:
        return DeviceInfo(
            device_id=str(doc["device_id"]),
            site=str(doc["site"]),
            counter=str(doc["counter"]),
            key_id=str(doc["key_id"]),
            tls_fingerprint=str(doc.get("tls_fingerprint", "")),
            identity_dir=live,
            fleet_ca_sha256=str(doc.get("fleet_ca_sha256") or ""),
        )
    except KeyError as exc:
        raise StateError(f"{DEVICE_JSON} lacks {exc.args[0]!r}") from None


def pairing_code(device: DeviceInfo) -> PairingCode:
    path = device.identity_dir / PAIRING_JSON
    if not path.exists():
        raise ProvisioningError("no pairing token (already enrolled?): run `idstation provision init --force`")
    token = str(_read_json(path)["token"])
    return PairingCode(device.device_id, device.site, device.counter, token, device.tls_fingerprint[:32])


def load_identity(state_dir: Path | str = DEFAULT_STATE_DIR) -> DeviceIdentity:
    """The enrolled identity, checked for consistency; NotProvisioned when incomplete."""
    device = load_device(state_dir)
    live = device.identity_dir
    for name in (CERT_FILE, FLEET_CA_FILE, CENTRAL_KEY_FILE, BINDING_JSON):
        if not (live / name).exists():
            raise NotProvisioned(f"device {device.device_id} is not enrolled ({name} missing): run `provision apply`")
    binding = _read_json(live / BINDING_JSON)
    if binding.get("device_id") != device.device_id:
        raise StateError(f"{BINDING_JSON} names another device")
    for what in ("site", "counter"):  # they become topic levels: a bad one must not reach the publisher
        if not valid_name(binding.get(what, getattr(device, what))):
            raise StateError(f"{BINDING_JSON}: {what} must be {NAME_RULE}")
    store = device.store
    signing_key = store.signing_key()
    if keys.key_id_for(keys.raw_public(signing_key.public_key())) != device.key_id:
        raise StateError("signing key does not match device.json")
    cert = _load_cert(live / CERT_FILE)
    central = _load_central_key(live / CENTRAL_KEY_FILE)
    return DeviceIdentity(
        device_id=device.device_id,
        site=str(binding.get("site", device.site)),
        counter=str(binding.get("counter", device.counter)),
        key_id=device.key_id,
        signing_key=signing_key,
        tls_key_path=store.tls_key_path(),
        tls_cert_path=live / CERT_FILE,
        fleet_ca_path=live / FLEET_CA_FILE,
        central_public_key=central,
        broker_url=str(binding.get("broker_url", "")),
        state_dir=Path(state_dir),
        identity_dir=live,
        cert_not_after=cert.not_valid_after_utc,
        binding=binding,
    )


def load_receipt_keys(state_dir: Path | str = DEFAULT_STATE_DIR) -> list[ed25519.Ed25519PublicKey]:
    """The centre's receipt public keys installed by provisioning (identity/receipt_keys.pem).

    A receipt signed by any of them is trusted (rotation: a renewal hands over the new set). An
    empty list when the box was enrolled before receipt keys existed; StateError when the file is
    there but holds no valid Ed25519 PUBLIC KEY block.
    """
    from idstation.mqtt.errors import SealError
    from idstation.mqtt.receipt import parse_receipt_keys

    live = StateDir(state_dir).current()
    path = live / RECEIPT_KEYS_FILE if live is not None else None
    if path is None or not path.is_file():
        return []
    try:
        return parse_receipt_keys(path.read_bytes())
    except SealError as exc:
        raise StateError(f"{RECEIPT_KEYS_FILE}: {exc}") from None


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        raise StateError(f"{path.name} is not a PEM certificate") from None


def _load_central_key(path: Path) -> x25519.X25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except ValueError:
        raise StateError(f"{path.name} is not a PEM public key") from None
    if not isinstance(key, x25519.X25519PublicKey):
        raise StateError(f"{path.name} is not an X25519 public key")
    return key


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotProvisioned(f"{path} is missing") from None
    except (ValueError, UnicodeDecodeError):
        raise StateError(f"{path.name} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise StateError(f"{path.name} is not a JSON object")
    return doc


def dump_json(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()
