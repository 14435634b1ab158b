"""Set-at-a-time statements whose cost does not grow with the number of rows in Python.

On PostgreSQL a batch's values travel as one array per column: the statement is compiled once
(whatever the batch size), asyncpg encodes the arrays in C, and the server runs one statement
instead of one per row (an executemany of 500 rows spent more time building SQLAlchemy
parameters than PostgreSQL spent storing them). SQLite keeps the plain forms.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    VARCHAR,
    ColumnElement,
    String,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from salesrail.db import driver
from salesrail.db.types import UtcDateTime


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
    returning: str | None = None,
) -> list[Any]:
    """`insert_rows` for values already laid out by column (all of the same length): the
    cheapest form to build from objects, e.g. `[c.due_at for c in clocks]`. Rows are inserted
    in the order given (an autoincrement key follows it). With `returning`, that column of
    the rows actually inserted (not of those skipped)."""
    names = tuple(columns)
    if not names or not columns[names[0]]:
        return []
    if len({len(values) for values in columns.values()}) > 1:
        # unnest() would pad the shorter arrays with NULLs instead of failing
        raise ValueError(f"columns of different lengths for {table.name}")
    if is_postgresql(session):
        statement = _unnest_insert(table, names, skip_existing, returning)
        values = {_param(n): _values(table, n, columns[n]) for n in names}
    else:
        statement = (
            sqlite_insert(table).on_conflict_do_nothing() if skip_existing else insert(table)
        )
        if returning is not None:
            statement = statement.returning(table.c[returning])
        rows = zip(*columns.values(), strict=True)
        values = [dict(zip(names, row, strict=True)) for row in rows]  # type: ignore[assignment]
    result = await session.execute(statement, values)
    return list(result.scalars()) if returning is not None else []


async def copy_columns(
    session: AsyncSession, table: Table, columns: Mapping[str, Sequence[Any]]
) -> None:
    """`insert_columns` of new rows (no skipping, nothing returned) through a binary COPY on
    PostgreSQL, in this session's transaction: asyncpg encodes each row in C, where an array
    parameter per column has every element checked against collections.abc in Python and
    datetimes go through UtcDateTime one by one (half the client's CPU of a 500-row INSERT
    of clocks). A failure is raised as SQLAlchemy raises a statement's (IntegrityError,
    DataError, a lost connection with `connection_invalidated`)."""
    names = tuple(columns)
    if not names or not columns[names[0]]:
        return
    if not is_postgresql(session):
        await insert_columns(session, table, columns)
        return
    if len({len(values) for values in columns.values()}) > 1:
        raise ValueError(f"columns of different lengths for {table.name}")
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN (FORMAT binary)"
    dialect = session.get_bind().dialect
    try:
        values = [_copy_values(table, n, columns[n], dialect) for n in names]
    except Exception as error:  # wrapped as SQLAlchemy wraps a failing bind processor
        raise StatementError(
            f"({type(error).__module__}.{type(error).__name__}) {error}", statement, None, error
        ) from error
    await _copy(session, table, names, list(zip(*values, strict=True)), statement)


def _copy_values(table: Table, name: str, values: Sequence[Any], dialect: Any) -> Sequence[Any]:
    """A column's values as its type binds them. asyncpg stores an aware datetime as the same
    instant in any zone, so of UtcDateTime only the refusal of naive ones is needed."""
    column_type = table.c[name].type
    if isinstance(column_type, UtcDateTime):
        if any(v is not None and v.tzinfo is None for v in values):
            raise ValueError("naive datetime: Salesrail stores instants with a timezone")
        return values
    process = column_type._cached_bind_processor(dialect)
    return values if process is None else [process(v) for v in values]


async def _copy(
    session: AsyncSession,
    table: Table,
    names: tuple[str, ...],
    records: list[tuple[Any, ...]],
    statement: str,
) -> None:
    await driver.in_transaction(
        session,
        statement,
        lambda raw: raw.copy_records_to_table(
            table.name, records=records, columns=names, schema_name=table.schema
        ),
    )


async def update_rows(
    session: AsyncSession,
    table: Table,
    key: str | tuple[str, ...],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """UPDATE each row of `table` whose `key` column(s) equal a row's with the rest of that
    row's values (all rows with the same keys); one statement on PostgreSQL."""
    if not rows:
        return
    keys = (key,) if isinstance(key, str) else key
    names = tuple(rows[0])
    if is_postgresql(session):
        statement = _unnest_update(table, keys, names)
        values = {_param(n): _values(table, n, [row[n] for row in rows]) for n in names}
        await session.execute(statement, values)
        return
    plain = (
        update(table)
        .where(*(table.c[k] == bindparam(_param(k)) for k in keys))
        .values({n: bindparam(_param(n)) for n in names if n not in keys})
    )
    await session.execute(plain, [{_param(n): row[n] for n in names} for row in rows])


@lru_cache(maxsize=256)
def _unnest_update(table: Table, keys: tuple[str, ...], names: tuple[str, ...]) -> Executable:
    given = select(*_arrays(table, names)).subquery("given")
    return (
        update(table)
        .where(*(table.c[k] == given.c[k] for k in keys))
        .values({n: given.c[n] for n in names if n not in keys})
    )


@lru_cache(maxsize=256)
def _unnest_insert(
    table: Table, names: tuple[str, ...], skip_existing: bool, returning: str | None
) -> Executable:
    statement = pg_insert(table) if skip_existing else insert(table)
    statement = statement.from_select(list(names), select(*_arrays(table, names)))
    if skip_existing:
        statement = statement.on_conflict_do_nothing()
    if returning is not None:
        statement = statement.returning(table.c[returning])
    return statement


def insert_from_json(table: Table, names: Sequence[str], param: str) -> str:
    """SQL (PostgreSQL) inserting the rows of a JSON array of objects, keys the column names,
    bound as `:param`, in array order (an autoincrement key follows it). For a caller's own
    statement, e.g. several tables' writes in one round trip: a table's rows as one JSON
    document cost half the client CPU of one array per column, whose every element asyncpg
    checks in Python (measured: ~0.4 against ~0.8 ms for 3 leads). Values as pydantic_core's
    to_json writes them: datetimes must be aware (the text is read in the session's zone)."""
    quoted = ", ".join(f'"{n}"' for n in names)  # "by" is a keyword
    return (
        f"INSERT INTO {table.name} ({quoted}) SELECT {quoted} "
        f"FROM json_populate_recordset(NULL::{table.name}, CAST(:{param} AS json))"
    )


def _arrays(table: Table, names: tuple[str, ...]) -> list[Any]:
    # Several unnest() in one select list advance in lockstep, in array order: row i takes
    # element i of each.
    arrays = []
    for n in names:
        column = table.c[n]
        if _is_json(column):  # a list value would read as a nested array: send JSON text
            array = cast(func.unnest(bindparam(_param(n), type_=ARRAY(Text))), column.type)
        else:
            array = func.unnest(bindparam(_param(n), type_=ARRAY(_unbounded(column.type))))
        arrays.append(array.label(n))
    return arrays


def _values(table: Table, name: str, values: Sequence[Any]) -> list[Any]:
    column = table.c[name]
    if not _is_json(column):
        return list(values)
    # As SQLAlchemy's JSON type stores them: None is JSON null unless none_as_null.
    keep_null = column.type.none_as_null  # type: ignore[attr-defined]
    return [None if v is None and keep_null else json.dumps(v, ensure_ascii=False) for v in values]


def _unbounded(type_: Any) -> Any:
    """A VARCHAR(n) array parameter would be cast explicitly, and PostgreSQL truncates an
    over-long string in an explicit cast: bind unbounded strings, so that the column's own
    length refuses it on insert ("value too long"), as a plain INSERT does."""
    if type(type_) in (String, VARCHAR) and type_.length is not None:
        return String()
    return type_


def _is_json(column: ColumnElement[Any]) -> bool:
    return isinstance(column.type, JSON)


def _param(name: str) -> str:
    return f"rows_{name}"


def one_of(column: ColumnElement[Any], values: Collection[Any], *, postgresql: bool) -> Any:
    """`column IN values`, as `column = ANY(:array)` on PostgreSQL: one bound parameter, so the
    statement is compiled once whatever the number of values (an IN list is rendered anew for
    each length)."""
    if postgresql:
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))
