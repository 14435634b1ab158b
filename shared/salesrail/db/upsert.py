"""Inserts that tolerate a row already being there: idempotent handlers need them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_ignore(
    session: AsyncSession,
    table: Table | Any,
    values: dict[str, Any],
    *,
    conflict: Sequence[str],
) -> bool:
    """Insert unless a row with the same `conflict` columns exists; True if inserted.

    Safe against a concurrent insert of the same row (no IntegrityError, no retry).
    """
    target = getattr(table, "__table__", table)
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(target).values(**values).on_conflict_do_nothing(index_elements=list(conflict))
    )
    result = await session.execute(statement)
    return bool(result.rowcount)
