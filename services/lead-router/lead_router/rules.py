"""Pure decisions of lead-router (no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta

# A sender's clock may run a little ahead of ours; more than this is a mistake.
RECEIVED_AT_TOLERANCE = timedelta(minutes=5)


class FutureReceivedAt(ValueError):
    pass


def effective_received_at(sent: datetime | None, *, now: datetime) -> datetime:
    """When the lead really arrived: the sender's time for imports, now otherwise."""
    if sent is None:
        return now
    if sent - now > RECEIVED_AT_TOLERANCE:
        raise FutureReceivedAt("received_at is in the future")
    return sent


def idempotency_scope(caller: str, key: str) -> str:
    """Keys are the caller's own: two systems may both send key '1' without colliding."""
    return f"{caller}:{key}"
