"""Fixed statements sent straight to asyncpg, inside a session's transaction (PostgreSQL).

For the few statements a hot path runs on every batch. Through the session a statement cost
~0.5 ms of CPU here (ORM execution, cache key, result objects), asyncpg alone ~0.08 ms; at
200 intakes a second that difference was a tenth of lead-router's CPU. The statement is a
`text()` with named parameters, compiled once to asyncpg's positional form; rows come back as
asyncpg Records (`row["name"]`). Errors come out as SQLAlchemy raises a statement's
(IntegrityError, a lost connection invalidated), so callers handle them as before.

This reaches into SQLAlchemy's asyncpg adapter (its lock, its transaction start, its error
translation), as `salesrail.db.bulk.copy_columns` does: SQLAlchemy is pinned in uv.lock, and
tests/service/plumbing/test_driver_statements.py checks the behaviour on upgrades.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import TextClause

T = TypeVar("T")

_DIALECT = asyncpg_dialect()


@lru_cache(maxsize=256)
def _positional(statement: TextClause) -> tuple[str, tuple[str, ...]]:
    """The statement's SQL with $1, $2, ... and the parameter names in that order."""
    compiled = statement.compile(dialect=_DIALECT)
    return str(compiled), tuple(compiled.positiontup or ())


def _arguments(statement: TextClause, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
    sql, names = _positional(statement)
    return sql, [params[name] for name in names]


async def fetch(
    session: AsyncSession, statement: TextClause, params: Mapping[str, Any] | None = None
) -> list[Any]:
    """The rows of `statement` (asyncpg Records), in the session's transaction."""
    sql, args = _arguments(statement, params or {})
    return await in_transaction(session, sql, lambda raw: raw.fetch(sql, *args))


async def execute(
    session: AsyncSession, statement: TextClause, params: Mapping[str, Any] | None = None
) -> None:
    """Run `statement` for its effect, in the session's transaction."""
    sql, args = _arguments(statement, params or {})
    await in_transaction(session, sql, lambda raw: raw.execute(sql, *args))


async def in_transaction(
    session: AsyncSession, statement: str, call: Callable[[Any], Awaitable[T]]
) -> T:
    """`call(asyncpg connection)` in the session's transaction (begun here if it is not yet,
    as the adapter's own cursors do: else the statement would commit on its own)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapted: Any = raw.dbapi_connection  # SQLAlchemy's adapter of the asyncpg connection
    dialect = connection.dialect
    try:
        async with adapted._execute_mutex:  # one operation at a time, as its cursors do
            if adapted._transaction is None:
                await adapted._start_transaction()
            try:
                return await call(adapted._connection)
            except Exception as error:
                adapted._handle_exception(error)  # raises it as the DBAPI's error
                raise  # not reached
    except dialect.loaded_dbapi.Error as error:
        lost = dialect.is_disconnect(error, adapted, None)
        if lost:
            await connection.invalidate(error)
        raise DBAPIError.instance(
            statement,
            None,
            error,
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
        ) from error
