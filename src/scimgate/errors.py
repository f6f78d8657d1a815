"""Domain errors raised by the services (directory, events, API keys), independent of any
protocol.

The SCIM layer and the CLI each translate them for their audience.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: a request the domain refuses."""


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class InvalidInput(DomainError):
    pass


class Unauthorized(DomainError):
    """The credentials do not open what they were presented for."""
