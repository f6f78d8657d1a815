"""Domain errors raised by the directory services, independent of any protocol.

The SCIM layer and the CLI each translate them for their audience.
"""

from __future__ import annotations


class DirectoryError(Exception):
    """Base class: a request the domain refuses."""


class NotFound(DirectoryError):
    pass


class Conflict(DirectoryError):
    pass


class InvalidInput(DirectoryError):
    pass
