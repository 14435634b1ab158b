"""`salesrail keys ...`: API keys live hashed in the auth database; a key is shown once."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from salesrail.auth.api_keys import ApiKeyStore
from salesrail.auth.principal import Role
from salesrail.cli.context import auth_database_url
from salesrail.clock import system_clock
from salesrail.db.database import Database

app = typer.Typer(no_args_is_help=True)
err = Console(stderr=True)


async def _with_store(action):  # type: ignore[no-untyped-def]
    db = Database(auth_database_url(), pool_size=1)
    try:
        store = ApiKeyStore(db, clock=system_clock)
        await store.migrate()
        return await action(store)
    finally:
        await db.dispose()


@app.command("create")
def create(
    role: Annotated[Role, typer.Option(help="What the key may do.")],
    rep: Annotated[str | None, typer.Option(help="The rep this key acts for (role rep).")] = None,
    name: Annotated[str | None, typer.Option(help="Who uses the key, for the audit.")] = None,
) -> None:
    """Print a new API key, and nothing else, on standard output."""
    if role is Role.REP and not rep:
        err.print("[red]--rep is required for a key with role rep[/red]")
        raise typer.Exit(2)
    key = asyncio.run(_with_store(lambda s: s.create(role=role, rep_id=rep, name=name)))
    print(key)


@app.command("list")
def list_keys() -> None:
    """List keys (never their secrets)."""
    rows = asyncio.run(_with_store(lambda s: s.list()))
    table = Table("key id", "role", "rep", "name", "created", "revoked")
    for r in rows:
        table.add_row(
            r.key_id,
            r.role.value,
            r.rep_id or "",
            r.name or "",
            r.created_at.isoformat(),
            r.revoked_at.isoformat() if r.revoked_at else "",
        )
    Console().print(table)


@app.command("revoke")
def revoke(key_id: str) -> None:
    """Revoke a key by its id (the part after `srk_`); services forget it within 30 s."""
    if not asyncio.run(_with_store(lambda s: s.revoke(key_id))):
        err.print(f"[red]no active key {key_id}[/red]")
        raise typer.Exit(1)
    err.print(f"revoked {key_id}")
