"""Provisioning errors: the box is not (or wrongly) provisioned, enrolment or a bundle was refused.

Every class subclasses ``IdstationError``; messages name the file, field or rule that failed and
never hold key material, tokens or citizen data.
"""

from __future__ import annotations

from idstation.hal.errors import IdstationError

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


class ProvisioningError(IdstationError):
    """Root of provisioning failures."""


class NotProvisioned(ProvisioningError):
    """The state directory holds no (complete) device identity: run ``idstation provision init``/``apply``.

    Plays the role of a configuration error (exit code CONFIG_ERROR).
    """


class StateError(ProvisioningError):
    """The state directory is unusable (permissions, a foreign file where ours should be)."""


class CsrError(ProvisioningError, ValueError):
    """A certificate signing request is malformed, badly signed, or names another device."""


class TokenError(ProvisioningError):
    """A pairing token is unknown, already used, or bound to another device, site or counter."""


class EnrollError(ProvisioningError):
    """Enrolment failed: refused by the central side, revoked, or no answer in time."""


class BundleError(ProvisioningError, ValueError):
    """An enrolment bundle is malformed, not for this device, or does not verify."""


class CaError(ProvisioningError):
    """The fleet CA's state is missing or inconsistent."""


class BrokerError(ProvisioningError):
    """The broker could not be reached, refused us, or did not acknowledge in time."""
