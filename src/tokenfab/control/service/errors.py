"""What a service call can refuse, by kind. No HTTP here: `tokenfab.control.api` maps each kind to a status."""

from __future__ import annotations


class ServiceError(Exception):
    """A refused request: nothing was changed. ``field`` names the input at fault, when one is."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class Unauthenticated(ServiceError):
    """No token, or one that is unknown, malformed, expired or revoked."""


class Forbidden(ServiceError):
    """The caller is known but may not do this."""


class NotFound(ServiceError):
    """Absent, or another tenant's (a tenant cannot tell the two apart)."""


class Conflict(ServiceError):
    """The request clashes with the current state (a name taken, a workload no longer active)."""


class Invalid(ServiceError):
    """The input is well-formed but not acceptable for this factory."""
