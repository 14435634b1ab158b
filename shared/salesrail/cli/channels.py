"""`salesrail channels reseal`: every stored notification channel sealed with the first key.

After a new key is put first in SALESRAIL_CHANNEL_KEYS (the old one after it) and lead-router
restarted, this seals every rep's and team's channels with the new key (and those stored in
clear before sealing existed), so that the old key can then be removed. Each owner is
rewritten in its own short transaction: a running cluster is not held up.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import Column, MetaData, String, Table, select, update

from salesrail.cli.context import configured_channel_keys, lead_router_database_url
from salesrail.db.database import Database
from salesrail.db.types import JsonDoc
from salesrail.notify.sealing import CannotOpen, InvalidKey, Sealer
from salesrail.notify.stored import is_current, reseal_channel

app = typer.Typer(no_args_is_help=True)
err = Console(stderr=True)

# Only the columns resealing touches, of lead-router's tables.
_metadata = MetaData()
OWNER_TABLES = {
    kind: Table(
        table, _metadata, Column("id", String, primary_key=True), Column("channels", JsonDoc)
    )
    for kind, table in (("rep", "reps"), ("team", "teams"))
}


@dataclass
class ResealReport:
    resealed: int = 0  # channels sealed again (or for the first time)
    current: int = 0  # already sealed with the first key
    owners_written: int = 0
    unopened: list[str] = field(default_factory=list)  # "rep r1, channel c: reason"


@app.command("reseal")
def reseal(
    database_url: Annotated[
        str | None,
        typer.Option(help="lead-router's database (default: as lead-router reads its settings)."),
    ] = None,
) -> None:
    """Seal every stored channel again with the first of SALESRAIL_CHANNEL_KEYS."""
    keys = configured_channel_keys()
    if not keys:
        err.print("[red]no channel key is configured: set SALESRAIL_CHANNEL_KEYS[/red]")
        raise typer.Exit(2)
    try:
        sealer = Sealer.from_text(keys)
    except InvalidKey as exc:
        err.print(f"[red]SALESRAIL_CHANNEL_KEYS: {exc}[/red]")
        raise typer.Exit(2) from None
    report = asyncio.run(reseal_all(database_url or lead_router_database_url(), sealer))
    err.print(
        f"resealed {report.resealed} channels ({report.owners_written} reps and teams written); "
        f"{report.current} were sealed with the first key already"
    )
    for problem in report.unopened:
        err.print(f"[red]cannot open {problem}[/red]")
    if report.unopened:
        err.print("[red]left as they are: configure the key that sealed them, then rerun[/red]")
        raise typer.Exit(1)


async def reseal_all(database_url: str, sealer: Sealer) -> ResealReport:
    database = Database(database_url, pool_size=1)
    report = ResealReport()
    try:
        for kind, table in OWNER_TABLES.items():
            async with database.transaction() as session:
                owner_ids = (await session.scalars(select(table.c.id).order_by(table.c.id))).all()
            for owner_id in owner_ids:
                await _reseal_owner(database, table, kind, owner_id, sealer, report)
    finally:
        await database.dispose()
    return report


async def _reseal_owner(
    database: Database,
    table: Table,
    kind: str,
    owner_id: str,
    sealer: Sealer,
    report: ResealReport,
) -> None:
    # Locked while rewritten: a directory update meanwhile is neither lost nor overwritten.
    async with database.transaction() as session:
        query = select(table.c.channels).where(table.c.id == owner_id)
        if not database.is_sqlite:  # SQLite's transaction holds the write lock already
            query = query.with_for_update()
        channels: list[Any] | None = await session.scalar(query)
        resealed, changed = [], False
        for raw in channels or []:
            if is_current(raw, sealer) or not isinstance(raw, dict):
                report.current += isinstance(raw, dict)
                resealed.append(raw)
                continue
            try:
                sealed = reseal_channel(raw, sealer)
            except CannotOpen as exc:
                report.unopened.append(f"{kind} {owner_id}, channel {raw.get('id')!r}: {exc}")
                resealed.append(raw)
                continue
            resealed.append(sealed)
            if sealed is not raw:
                report.resealed += 1
                changed = True
        if changed:
            await session.execute(
                update(table).where(table.c.id == owner_id).values(channels=resealed)
            )
            report.owners_written += 1
