"""Apply alembic migrations at start-up: the shared plumbing branch plus the service's own."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from salesrail.db.database import Database

PLUMBING_VERSIONS = Path(str(files("salesrail") / "migrations" / "versions"))
# Any fixed number: replicas starting together take turns migrating.
_MIGRATION_LOCK_ID = 7_316_551
# alembic keeps the migration it runs in module globals (`alembic.context`, `alembic.op`), so a
# process runs one at a time (services started together in one process, as tests do).
_IN_PROCESS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def alembic_config(version_locations: Sequence[Path], metadata: Sequence[MetaData] = ()) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("salesrail") / "migrations"))
    cfg.set_main_option("version_locations", " ".join(str(p) for p in version_locations))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["target_metadata"] = list(metadata)
    return cfg


async def migrate(db: Database, version_locations: Sequence[Path]) -> None:
    """Upgrade to every head; safe when several replicas start at once."""
    cfg = alembic_config(version_locations)

    def upgrade(conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")

    in_process = _IN_PROCESS.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with in_process, db.engine.begin() as conn:
        await conn.run_sync(upgrade)
