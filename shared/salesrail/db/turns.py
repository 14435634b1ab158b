"""Transactions that must not interleave: "read the newest version, store the next one"."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def one_at_a_time(session: AsyncSession, name: str) -> None:
    """Until this transaction ends, others that call this with the same `name` wait here.

    PostgreSQL: a transaction-scoped advisory lock on the name's hash. SQLite needs none: its
    transactions write one at a time (BEGIN IMMEDIATE), reads included.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
