"""Set-at-a-time statements whose cost does not grow with the number of rows in Python.

On PostgreSQL a batch's values travel as one array per column: the statement is compiled once
(whatever the batch size), asyncpg encodes the arrays in C, and the server runs one statement
instead of one per row (an executemany of 500 rows spent more time building SQLAlchemy
parameters than PostgreSQL spent storing them). SQLite keeps the plain forms.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Table, any_, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def insert_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    skip_existing: bool = False,
) -> None:
    """INSERT these rows (all with the same keys); `skip_existing` leaves rows whose unique
    key is already stored as they are (ON CONFLICT DO NOTHING)."""
    if rows:
        names = tuple(rows[0])
        columns = {n: [row[n] for row in rows] for n in names}
        await insert_columns(session, table, columns, skip_existing=skip_existing)


async def insert_columns(
    session: AsyncSession,
    table: Table,
    columns: Mapping[str, Sequence[Any]],
    *,
    skip_existing: bool = False,
) -> None:
    """`insert_rows` for values already laid out by column (all of the same length): the
    cheapest form to build from objects, e.g. `[c.due_at for c in clocks]`."""
    names = tuple(columns)
    if not names or not columns[names[0]]:
        return
    if is_postgresql(session):
        statement = _unnest_insert(table, names, skip_existing)
        await session.execute(statement, {_param(n): list(columns[n]) for n in names})
        return
    plain = sqlite_insert(table).on_conflict_do_nothing() if skip_existing else insert(table)
    await session.execute(
        plain, [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    )


@lru_cache(maxsize=256)
def _unnest_insert(table: Table, names: tuple[str, ...], skip_existing: bool) -> Executable:
    # Several unnest() in one select list advance in lockstep: row i takes element i of each.
    arrays = [
        func.unnest(bindparam(_param(n), type_=ARRAY(table.c[n].type))).label(n) for n in names
    ]
    statement = pg_insert(table) if skip_existing else insert(table)
    statement = statement.from_select(list(names), select(*arrays))
    return statement.on_conflict_do_nothing() if skip_existing else statement


def _param(name: str) -> str:
    return f"rows_{name}"


def one_of(column: ColumnElement[Any], values: Collection[Any], *, postgresql: bool) -> Any:
    """`column IN values`, as `column = ANY(:array)` on PostgreSQL: one bound parameter, so the
    statement is compiled once whatever the number of values (an IN list is rendered anew for
    each length)."""
    if postgresql:
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))
