"""Opaque cursors for keyset pagination on (instant, id): stable while rows are inserted."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

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


async def newest_first(
    session: AsyncSession,
    query: Select[Any],
    *,
    at: InstrumentedAttribute[datetime],
    id: InstrumentedAttribute[Any],
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """One page of `query`'s entities, newest `at` first (ties by `id`), and the next page's
    cursor (None on the last page)."""
    if cursor is not None:
        when, item_id = decode_cursor(cursor)
        query = query.where(or_(at < when, and_(at == when, id < item_id)))
    found = await session.scalars(query.order_by(at.desc(), id.desc()).limit(limit + 1))
    rows = list(found.all())
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor((getattr(last, at.key), getattr(last, id.key)))
