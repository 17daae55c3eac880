"""The broker configuration (mosquitto 2.x) and its ACLs: the one generator, driven by the registry,
used by ``central init-ca``/``enroll``/``revoke`` and by the tests that run it on a real mosquitto.

Two listeners with ``per_listener_settings true``:

- claim/central listener (TLS, username + password): the claim user may only write provisioning
  requests and read provisioning responses; the enrolment service reads and writes provisioning
  topics; the centre reads every idstation topic and is the only writer of receipt topics.
- device listener (mutual TLS with fleet-CA certificates, the certificate CN as the username, the
  fleet CA's CRL): each enrolled box writes only ``idstation/v1/{its site}/{its counter}/{kind}``
  for the four event kinds and reads only its own ``.../receipt``; it also writes its own
  provisioning requests (renewal) and reads its own provisioning responses. A box publishing under
  another counter is refused by the broker (MQTT 5 reason 0x87 Not authorized; dropped on 3.1.1).

``device.acl`` is regenerated from the registry after every enrolment and revocation
(:func:`write_acls`); mosquitto reads it again on SIGHUP.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from pathlib import Path
from typing import Any

from idstation.mqtt.errors import RegistryError
from idstation.mqtt.events import KINDS
from idstation.mqtt.receipt import RECEIPT_KIND, receipt_topic
from idstation.mqtt.seal import MAX_FRAME
from idstation.mqtt.topics import PREFIX, PROVISION_PREFIX, topic_for, valid_name

CENTRAL_USERS = ("central",)
MAX_PACKET_SIZE = MAX_FRAME + 64 * 1024  # a frame plus topic and properties; larger packets are refused
# A draining centre (docs/mqtt.md): the central listener's persistent session holds the boxes'
# backlog while the listener is away (mosquitto's default keeps 1,000 messages and drops the rest);
# measured ~1.06 KB of broker memory per queued 700-byte event, so 1,000,000 queued ~ 1.1 GB,
# the payload bytes capped at 1 GiB. In flight per client: the listener asks for its own Receive
# Maximum over MQTT 5; this is the window of clients that do not (MQTT 3.1.1).
MAX_QUEUED_MESSAGES = 1_000_000
MAX_QUEUED_BYTES = 1 << 30
MAX_INFLIGHT_MESSAGES = 1000


def central_acl(central_users: Iterable[str] = CENTRAL_USERS) -> str:
    """The centre's lines: it reads every idstation topic and is the only writer of receipts."""
    lines: list[str] = []
    for user in central_users:
        lines += [f"user {user}", f"topic read {PREFIX}/#", f"topic write {PREFIX}/+/+/{RECEIPT_KIND}", ""]
    return "\n".join(lines)


def claim_acl(central_users: Iterable[str] = CENTRAL_USERS) -> str:
    """claim.acl: the username/password listener (claim user, enrolment service, centre)."""
    return "\n".join(
        [
            "# idstation: claim, enrolment service and central users (username/password listener)",
            "user claim",
            f"topic write {PROVISION_PREFIX}+/request",
            f"topic read {PROVISION_PREFIX}+/response",
            "",
            "user enroller",
            f"topic readwrite {PROVISION_PREFIX}#",
            "",
            central_acl(central_users),
        ]
    )


def device_acl(devices: Iterable[Any], revoked: Container[str] = ()) -> str:
    """device.acl from the registry: each enrolled device writes only its own event topics
    (``idstation/v1/{site}/{counter}/{kind}``, never ``receipt``) and reads only its own receipts.

    ``devices`` have ``device_id``, ``site`` and ``counter`` (``Registry.devices()``); a device in
    ``revoked`` gets no line (the CRL refuses its connection too). Username = certificate CN = device id.
    """
    lines = [
        "# idstation: boxes (mTLS listener; username = certificate CN = device id), generated from the registry",
        f"pattern write {PROVISION_PREFIX}%u/request",
        f"pattern read {PROVISION_PREFIX}%u/response",
        "",
    ]
    for dev in sorted(devices, key=lambda d: d.device_id):
        if dev.device_id in revoked:
            continue
        if not (valid_name(dev.device_id) and valid_name(dev.site) and valid_name(dev.counter)):
            raise RegistryError("a registry record has a name mosquitto cannot take")
        lines.append(f"user {dev.device_id}")
        lines += [f"topic write {topic_for(dev.site, dev.counter, kind)}" for kind in KINDS]
        lines += [f"topic read {receipt_topic(dev.site, dev.counter)}", ""]
    return "\n".join(lines)


def registry_acl(registry: Any) -> str:
    """``device_acl`` of a ``Registry``'s enrolled, non-revoked devices."""
    return device_acl(registry.devices(), revoked=set(registry.revoked()))


def single_listener_acl(registry: Any, central_users: Iterable[str] = CENTRAL_USERS) -> str:
    """Devices and centre in one ACL file, for a broker with one listener (tests, small sites)."""
    return registry_acl(registry) + "\n" + central_acl(central_users)


def write_acls(broker_dir: Path, registry: Any, central_users: Iterable[str] = CENTRAL_USERS) -> None:
    """(Re)write broker_dir/claim.acl and device.acl; mosquitto reads them again on SIGHUP."""
    from idstation.hal.storage import write_atomic

    write_atomic(broker_dir / "claim.acl", claim_acl(central_users).encode())
    write_atomic(broker_dir / "device.acl", registry_acl(registry).encode())


def mosquitto_conf(
    broker_dir: Path,
    crl_file: Path,
    *,
    claim_port: int = 8884,
    device_port: int = 8883,
    bind: str = "",
    run_as_root: bool = False,
    verbose: bool = False,
    persistence_dir: Path | None = None,
) -> str:
    """A mosquitto.conf using ``broker_dir``/{ca.crt, server.crt, server.key, passwords, claim.acl, device.acl}."""
    d = broker_dir
    tls = [
        f"cafile {d / 'ca.crt'}",
        f"certfile {d / 'server.crt'}",
        f"keyfile {d / 'server.key'}",
        "tls_version tlsv1.2",
    ]
    lines = ["# generated by idstation (mqtt/central/broker_config.py)", "per_listener_settings true"]
    lines.append(f"max_packet_size {MAX_PACKET_SIZE}")  # MQTT 3.1.1 clients cannot ask for a cap themselves
    lines += [f"max_queued_messages {MAX_QUEUED_MESSAGES}", f"max_queued_bytes {MAX_QUEUED_BYTES}"]
    lines.append(f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}")
    lines += ["log_dest stdout", "log_type all" if verbose else "log_type notice"]
    if persistence_dir is not None:  # keeps QoS 1 sessions of central listeners across broker restarts
        lines += ["persistence true", f"persistence_location {persistence_dir}/"]
    else:
        lines.append("persistence false")
    if run_as_root:
        lines.append("user root")
    suffix = f" {bind}" if bind else ""
    lines += [f"listener {claim_port}{suffix}", *tls, f"password_file {d / 'passwords'}"]
    lines += [f"acl_file {d / 'claim.acl'}", "allow_anonymous false"]
    lines += [f"listener {device_port}{suffix}", *tls, "require_certificate true", "use_identity_as_username true"]
    lines += [f"crlfile {crl_file}", f"acl_file {d / 'device.acl'}"]
    return "\n".join(lines) + "\n"
