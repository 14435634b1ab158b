"""Telling a database outage (retry later) from an error of the work itself."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError


def is_outage(exc: BaseException) -> bool:
    """The database (or network) is away: no fault of the message or request."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc, OperationalError | InterfaceError | DisconnectionError | OSError | TimeoutError
    )
