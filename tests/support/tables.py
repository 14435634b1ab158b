"""Tables a test defines itself, on a real database, for the length of the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import MetaData

from salesrail.db import Database


@asynccontextmanager
async def database_with(url: str, metadata: MetaData) -> AsyncIterator[Database]:
    """A Database on `url` where the tables of `metadata` exist in the block, dropped after."""
    database = Database(url)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield database
    finally:
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await database.dispose()
