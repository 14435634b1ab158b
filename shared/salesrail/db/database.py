"""An async engine and transactions, tuned per backend."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

# A pooled connection unused this long is checked before use (the database may have restarted
# meanwhile). Not on every checkout: that round trip was a third of a short transaction's CPU.
IDLE_PING_AFTER_S = 5.0


class Database:
    """One service's database. `transaction()` is the unit of work of every use case."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int | None = None,
        idle_ping_after_s: float = IDLE_PING_AFTER_S,
    ) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            _ensure_parent_dir(self.url.database)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            overflow = pool_size if max_overflow is None else max_overflow
            kwargs.update(pool_size=pool_size, max_overflow=overflow)
        self.engine = create_async_engine(self.url, **kwargs)
        _ping_when_idle(self.engine.sync_engine, after_s=idle_ping_after_s)
        if self.is_sqlite:
            _tune_sqlite(self.engine.sync_engine)

        # A session class of our own, so commit hooks of this database don't fire for others.
        self._session_class = type("SalesrailSession", (Session,), {})
        self.sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=self._session_class
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Commit on success, roll back on any error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def locked(self, lock_id: int) -> AsyncIterator[None]:
        """Hold `lock_id` on this database while in the block: other processes, here or on other
        hosts, wait at the same lock until it is given back (or its holder's connection died).

        PostgreSQL only: SQLite serialises writers (BEGIN IMMEDIATE) but has no such lock."""
        if self.is_sqlite:
            yield
            return
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": lock_id})
            await connection.commit()  # the lock is the session's: no transaction left open
            try:
                yield
            finally:
                # A pooled connection outlives the block: give the lock back explicitly.
                await connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
                await connection.commit()

    def on_commit(self, callback: Callable[[Session], None]) -> None:
        event.listen(self._session_class, "after_commit", callback)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _ping_when_idle(sync_engine: Any, *, after_s: float) -> None:
    @event.listens_for(sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < after_s:
            return
        try:
            alive = sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc
        if not alive:
            raise DisconnectionError("stale pooled connection")


def _ensure_parent_dir(database: str | None) -> None:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _tune_sqlite(sync_engine: Any) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, open transactions (see `_on_begin`).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        # WAL is a property of the file: set it once. Switching needs a moment with no other
        # connection busy, which processes starting together may not give at the first try.
        for attempt in range(50):
            cursor.execute("PRAGMA journal_mode")
            if cursor.fetchone()[0] == "wal":
                break
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
            except Exception:
                time.sleep(0.02 * (attempt + 1))
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: two deferred writers would deadlock.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
