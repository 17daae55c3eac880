"""Provisioning errors, under the box-side name: the classes live with the enrolment formats they
guard (``idstation.mqtt.enrolment.errors``), which the central side uses too."""

from __future__ import annotations

from idstation.mqtt.enrolment.errors import (
    BrokerError,
    BundleError,
    CaError,
    CsrError,
    EnrollError,
    IdstationError,
    NotProvisioned,
    ProvisioningError,
    StateError,
    TokenError,
)

__all__ = [
    "BrokerError",
    "BundleError",
    "CaError",
    "CsrError",
    "EnrollError",
    "IdstationError",
    "NotProvisioned",
    "ProvisioningError",
    "StateError",
    "TokenError",
]
