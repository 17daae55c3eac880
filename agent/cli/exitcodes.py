"""The one exit-code table of the ``idstation`` command line, keyed by exception class.

``entry_for(exc)`` walks the exception's MRO and returns the first class listed here, so a subclass
resolves to its nearest listed ancestor (``TokenError`` -> ``ProvisioningError`` -> usage). The
numbers (``Exit``) are README.md's "Exit codes" table; the ``kind`` is the snake_case name that
``read-card``/``card`` commands print as ``{"error": kind}`` with ``--json``. An exception no entry
covers is a bug: exit 70 (``INTERNAL``).
"""

from __future__ import annotations

from dataclasses import dataclass

from idstation.agent.errors import AccessDenied, ConfigError, ParseError, VerificationError
from idstation.agent.exitcodes import Exit
from idstation.hal.errors import CardError, CardRemoved, DeviceError, IdstationError, NoCard
from idstation.hal.sources import SourceError
from idstation.mqtt.central.service.errors import ClientsError
from idstation.mqtt.errors import PublishError, RegistryError, SealError, StoreError
from idstation.provisioning.errors import (
    BrokerError,
    CaError,
    EnrollError,
    NotProvisioned,
    ProvisioningError,
    StateError,
)

__all__ = ["TABLE", "Entry", "Exit", "UsageError", "entry_for"]


class UsageError(IdstationError, ValueError):
    """Bad command-line input: arguments, key text, files (exit 2)."""


@dataclass(frozen=True, slots=True)
class Entry:
    code: Exit
    kind: str


TABLE: dict[type[BaseException], Entry] = {
    # command line
    UsageError: Entry(Exit.USAGE, "bad_input"),
    SourceError: Entry(Exit.USAGE, "bad_input"),  # a reader/camera source outside the grammar
    # the card and its reader
    NoCard: Entry(Exit.NO_CARD, "no_card"),
    CardRemoved: Entry(Exit.CARD_REMOVED, "card_removed"),
    AccessDenied: Entry(Exit.ACCESS_DENIED, "access_denied"),
    CardError: Entry(Exit.CARD_ERROR, "card_error"),
    ParseError: Entry(Exit.CARD_ERROR, "card_error"),  # what the chip answered does not parse
    VerificationError: Entry(Exit.FAILED, "verification_error"),
    DeviceError: Entry(Exit.DEVICE_ERROR, "device_error"),
    # configuration and local state
    ConfigError: Entry(Exit.CONFIG_ERROR, "config_error"),
    NotProvisioned: Entry(Exit.CONFIG_ERROR, "not_provisioned"),
    StateError: Entry(Exit.CONFIG_ERROR, "state_error"),
    CaError: Entry(Exit.CONFIG_ERROR, "ca_error"),
    SealError: Entry(Exit.CONFIG_ERROR, "key_error"),  # a central/receipt key that does not load
    RegistryError: Entry(Exit.CONFIG_ERROR, "registry_error"),
    StoreError: Entry(Exit.CONFIG_ERROR, "store_error"),
    ClientsError: Entry(Exit.USAGE, "bad_input"),  # a client name, a counter binding, the clients file
    # enrolment: refused by the centre (1); everything else the technician typed or carried (2)
    EnrollError: Entry(Exit.FAILED, "enroll_refused"),
    ProvisioningError: Entry(Exit.USAGE, "bad_input"),  # token, CSR, bundle, names
    # the broker
    BrokerError: Entry(Exit.BROKER_ERROR, "broker_error"),
    PublishError: Entry(Exit.BROKER_ERROR, "broker_error"),
    # a file the command was pointed at is missing or unreadable
    OSError: Entry(Exit.USAGE, "bad_input"),
    # any other domain error: the command ran and failed
    IdstationError: Entry(Exit.FAILED, "failed"),
}

INTERNAL = Entry(Exit.INTERNAL, "internal")


def entry_for(exc: BaseException) -> Entry:
    """The nearest table entry along ``type(exc).__mro__``; ``INTERNAL`` when none matches."""
    for cls in type(exc).__mro__:
        entry = TABLE.get(cls)
        if entry is not None:
            return entry
    return INTERNAL
