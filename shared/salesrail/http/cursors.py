"""Opaque cursors for keyset pagination on (instant, id): stable while rows are inserted."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from salesrail.http.problems import ProblemError, invalid_field

Position = tuple[datetime, str]


def encode_cursor(position: Position) -> str:
    raw = json.dumps([position[0].isoformat(), str(position[1])], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor of ours names; a 422 problem naming `cursor` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, item_id = json.loads(raw)
        when = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise _not_ours() from exc
    if when.tzinfo is None or not isinstance(item_id, str):
        raise _not_ours()
    return when, item_id


def _not_ours() -> ProblemError:
    return invalid_field("cursor", "not a cursor this API gave out", location="query")
