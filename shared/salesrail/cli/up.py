"""`salesrail up` and `salesrail status`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from salesrail.auth.api_keys import ApiKeyStore
from salesrail.auth.principal import Role
from salesrail.cli.context import (
    auth_database_url,
    channel_keys,
    data_dir,
    jwt_secret,
    state_file,
)
from salesrail.cli.supervisor import Supervisor, child_env
from salesrail.clock import system_clock
from salesrail.cluster import SERVICES
from salesrail.db.database import Database
from salesrail.embedded_nats import EmbeddedNats

console = Console()


def up(
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for every /readyz.")] = 90,
) -> None:
    """Start NATS (unless SALESRAIL_NATS_URL is set) and the five services; Ctrl-C stops all."""
    asyncio.run(_up(ready_timeout))


async def _up(ready_timeout: float) -> None:
    started = time.monotonic()
    var = data_dir()
    var.mkdir(parents=True, exist_ok=True)
    nats = None
    nats_url = os.environ.get("SALESRAIL_NATS_URL")
    if not nats_url:
        nats = EmbeddedNats(store_dir=var / "nats")
        nats.start()
        nats_url = nats.url
        console.print(f"[bold]NATS[/bold] embedded nats-server at [cyan]{nats_url}[/cyan]")
    else:
        console.print(f"[bold]NATS[/bold] using {nats_url} (SALESRAIL_NATS_URL)")

    await _bootstrap_admin_key()
    env = child_env(
        SALESRAIL_NATS_URL=nats_url,
        SALESRAIL_DATA_DIR=str(var),
        SALESRAIL_JWT_SECRET=jwt_secret(),
        SALESRAIL_CHANNEL_KEYS=channel_keys(),
    )
    supervisor = Supervisor(SERVICES, env=env, console=console)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await supervisor.start_all()
        ready = await _wait_or_stop(supervisor.wait_ready(ready_timeout), stop)
        if ready is not None:
            # Written before "Salesrail is up" is shown: whoever reads that may read the file.
            _write_state(nats_url, nats is not None, supervisor)
            _print_cluster(supervisor, nats_url, ready, time.monotonic() - started)
            await stop.wait()
        console.print("[bold]stopping…[/bold]")
    finally:
        await supervisor.stop_all()
        if nats is not None:
            nats.stop()
        with contextlib.suppress(FileNotFoundError):
            state_file().unlink()
        console.print("[bold]stopped[/bold]")


async def _wait_or_stop(work, stop: asyncio.Event):  # type: ignore[no-untyped-def]
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task in done:
        return task.result()
    task.cancel()
    return None


async def _bootstrap_admin_key() -> None:
    """On the very first start, make an admin key and show it once."""
    db = Database(auth_database_url(), pool_size=1)
    try:
        store = ApiKeyStore(db, clock=system_clock)
        await store.migrate()
        if await store.has_admin_key():
            return
        key = await store.create(role=Role.ADMIN, name="bootstrap-admin")
    finally:
        await db.dispose()
    console.print(
        Panel(
            f"[bold]{key}[/bold]\n\nSend it as the X-API-Key header. It is shown only this once; "
            "make more with `salesrail keys create --role ROLE`.",
            title="Admin API key (first start)",
            border_style="yellow",
        )
    )


def _print_cluster(
    supervisor: Supervisor, nats_url: str, ready: dict[str, bool], secs: float
) -> None:
    table = Table(title=f"Salesrail is up ({secs:.1f}s)")
    table.add_column("service")
    table.add_column("ready")
    table.add_column("URL")
    table.add_column("API docs")
    for child in supervisor.children:
        ok = ready[child.spec.name]
        table.add_row(
            child.spec.name,
            "[green]yes[/green]" if ok else "[red]no[/red]",
            child.url,
            f"{child.url}/docs",
        )
    table.add_row("nats", "[green]yes[/green]", nats_url, "")
    console.print(table)
    if not all(ready.values()):
        console.print("[red]some services are not ready: see their logs above[/red]")


def _write_state(nats_url: str, embedded: bool, supervisor: Supervisor) -> None:
    state = {
        "nats_url": nats_url,
        "nats_embedded": embedded,
        "pid": os.getpid(),
        "services": {c.spec.name: {"url": c.url} for c in supervisor.children},
    }
    path = state_file()
    pending = path.with_name(f".{path.name}.{os.getpid()}")
    pending.write_text(json.dumps(state, indent=2))
    os.replace(pending, path)  # atomic: `salesrail status` never reads half a file


def status() -> None:
    """Exit 0 when every service answers /readyz with 200."""
    path: Path = state_file()
    if not path.exists():
        console.print("Salesrail is not running here (no var/cluster.json).")
        raise typer.Exit(1)
    state = json.loads(path.read_text())
    table = Table(title="Salesrail")
    table.add_column("service")
    table.add_column("state")
    table.add_column("URL")
    all_ready = True
    with httpx.Client(timeout=2.0) as client:
        for name, info in state["services"].items():
            try:
                response = client.get(f"{info['url']}/readyz")
                ok, text = response.status_code == 200, response.json().get("status", "")
            except httpx.HTTPError as exc:
                ok, text = False, f"unreachable ({type(exc).__name__})"
            all_ready &= ok
            table.add_row(
                name, f"[green]{text}[/green]" if ok else f"[red]{text}[/red]", info["url"]
            )
    kind = "embedded" if state.get("nats_embedded") else "external"
    table.add_row("nats", kind, state["nats_url"])
    console.print(table)
    raise typer.Exit(0 if all_ready else 1)
