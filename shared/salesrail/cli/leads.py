"""`salesrail leads import FILE`: each row posted as one lead, with progress and a report.

Rows are read here and sent one by one to `POST /v1/leads` with the key the import endpoint
uses (`import:<sha256 of file>:<row>`) and in the same order (rows that may be one lead go in
file order): the same path as a single lead, a real progress bar, and a re-run (or an upload of
the same file to /v1/leads/import with the same key) creates nothing new.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from salesrail.leads_file import (
    LeadsFile,
    LeadsFileError,
    Row,
    file_digest,
    for_each_row,
    open_leads_file,
    row_idempotency_key,
)

app = typer.Typer(no_args_is_help=True)
out = Console()
err = Console(stderr=True)

RETRIES = 3
STATUSES = ("created", "duplicate", "replayed", "refused", "failed")
SHOWN_PROBLEMS = 20
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Fatal(Exception):
    """The import cannot go on: a bad key, a wrong URL, or the service gone."""


@dataclass
class RowOutcome:
    row: int
    status: str  # one of STATUSES; "failed" = the service never gave this row an answer
    lead_id: str | None = None
    lead_status: str | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    url: str
    api_key: str
    source: str
    digest: str


@app.command("import")
def import_leads(
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8 or GBK) or .xlsx, header row first.")],
    url: Annotated[str, typer.Option(help="lead-router's base URL.")] = "http://127.0.0.1:8001",
    api_key: Annotated[
        str | None, typer.Option(envvar="SALESRAIL_API_KEY", help="API key (X-API-Key).")
    ] = None,
    source: Annotated[str, typer.Option(help="Source of rows that have none.")] = "import",
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Rows in flight.")] = 8,
    report: Annotated[Path | None, typer.Option(help="Write the per-row report CSV here.")] = None,
) -> None:
    """Import leads from a file; exit 0 when every row got an answer (refused rows included)."""
    if not api_key:
        _fail("an API key is needed: --api-key KEY or SALESRAIL_API_KEY")
    try:
        binary = file.open("rb")
    except OSError as exc:
        _fail(f"cannot open {file}: {exc.strerror}")
    with binary:
        try:
            leads = open_leads_file(binary)
        except LeadsFileError as exc:
            _fail(f"{file.name}: {exc}")
        with leads:
            _check_reachable(url)
            target = Target(url.rstrip("/"), api_key, source, file_digest(binary))
            outcomes, fatal = _run(leads, target, concurrency, file.name)
    outcomes.sort(key=lambda o: o.row)
    if outcomes or fatal is None:
        _print_summary(file.name, outcomes)
    if report is not None:
        _write_report(report, outcomes)
        err.print(f"report written to {report}")
    if fatal is not None:
        err.print(
            f"[red]stopped: {fatal}[/red]\nrun the same command again to resume: "
            "rows already imported are not imported twice"
        )
        raise typer.Exit(1)
    if any(o.status == "failed" for o in outcomes):
        err.print("[red]some rows got no answer from the service; run the import again[/red]")
        raise typer.Exit(1)


def _check_reachable(url: str) -> None:
    """Fail fast, before any row is sent, when nothing answers at the URL."""
    try:
        httpx.get(f"{url.rstrip('/')}/healthz", timeout=5.0)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach lead-router at {url} ({type(exc).__name__}): is it running?")


def _run(
    leads: LeadsFile, target: Target, concurrency: int, name: str
) -> tuple[list[RowOutcome], Fatal | None]:
    try:
        total = leads.count_rows(limit=10**9)
    except LeadsFileError as exc:
        _fail(f"{name}: {exc}")
    encoding = f" ({leads.encoding})" if leads.encoding else ""
    err.print(f"{name}: {leads.format}{encoding}, {total} rows")
    if leads.header.ignored:
        err.print(f"[yellow]ignored columns: {', '.join(leads.header.ignored)}[/yellow]")
    outcomes: list[RowOutcome] = []
    fatal: list[Fatal] = []
    progress = Progress(
        TextColumn("[bold]importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    )
    with progress:
        task = progress.add_task("rows", total=total)
        asyncio.run(
            _post_rows(leads, target, concurrency, outcomes, fatal, lambda: progress.advance(task))
        )
    return outcomes, (fatal[0] if fatal else None)


async def _post_rows(
    leads: LeadsFile,
    target: Target,
    concurrency: int,
    outcomes: list[RowOutcome],
    fatal: list[Fatal],
    advance: Callable[[], None],
) -> None:
    """Rows in flight `concurrency` at a time, in the server's order; a fatal answer stops."""
    limits = httpx.Limits(max_connections=concurrency)
    headers = {"X-API-Key": target.api_key}
    async with httpx.AsyncClient(
        base_url=target.url, headers=headers, timeout=30.0, limits=limits
    ) as client:

        async def one(row: Row) -> None:
            if fatal:
                return
            try:
                outcomes.append(await _post_row(client, row, target))
            except Fatal as exc:
                fatal.append(exc)
            except Exception as exc:  # an answer nobody expected (a 200 that is not JSON...)
                why = f"unexpected answer ({type(exc).__name__}: {exc})"
                outcomes.append(RowOutcome(row.number, "failed", errors=[("row", why)]))
            advance()

        with closing(leads.rows()) as rows:
            await for_each_row(rows, one, concurrency=concurrency, stopped=lambda: bool(fatal))


async def _post_row(client: httpx.AsyncClient, row: Row, target: Target) -> RowOutcome:
    body = {"source": target.source, **{k: _json(v) for k, v in row.values.items()}}
    headers = {"Idempotency-Key": row_idempotency_key(target.digest, row.number)}
    for attempt in range(RETRIES + 1):
        last = attempt == RETRIES
        try:
            response = await client.post("/v1/leads", json=body, headers=headers)
        except httpx.TransportError as exc:
            if last:
                raise Fatal(f"lead-router at {target.url} does not answer ({exc!r})") from exc
            await asyncio.sleep(0.5 * 2**attempt)  # retries are safe: the key is idempotent
            continue
        code = response.status_code
        if code in (401, 403):
            raise Fatal(f"the service refused the API key ({code}): {_detail(response)}")
        if code in (404, 405):
            raise Fatal(f"no lead intake at {target.url}/v1/leads ({code}): is it lead-router?")
        if code == 429 or code >= 500:
            if last:
                return RowOutcome(row.number, "failed", errors=[("row", _detail(response))])
            await asyncio.sleep(0.5 * 2**attempt)
            continue
        if code in (200, 201):
            lead = response.json()
            status = "replayed" if code == 200 else "created"
            if code == 201 and lead.get("status") == "duplicate":
                status = "duplicate"
            return RowOutcome(row.number, status, lead.get("id"), lead.get("status"))
        return RowOutcome(row.number, "refused", errors=_errors(response))
    raise AssertionError("unreachable")


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail") or response.reason_phrase)
    except ValueError:
        return f"HTTP {response.status_code}"


def _errors(response: httpx.Response) -> list[tuple[str, str]]:
    try:
        problem = response.json()
    except ValueError:
        return [("row", f"HTTP {response.status_code}")]
    errors = problem.get("errors") or []
    found = [(str(e.get("field", "row")), str(e.get("message", ""))) for e in errors]
    return found or [("row", str(problem.get("detail") or f"HTTP {response.status_code}"))]


def _print_summary(name: str, outcomes: list[RowOutcome]) -> None:
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in STATUSES}
    table = Table(title=f"{name}: {len(outcomes)} rows")
    table.add_column("result")
    table.add_column("rows", justify="right")
    for status in STATUSES:
        if counts[status] or status != "failed":
            table.add_row(status, str(counts[status]))
    out.print(table)
    problems = [o for o in outcomes if o.status in ("refused", "failed")]
    if not problems:
        return
    detail = Table(title="rows not imported")
    detail.add_column("row", justify="right")
    detail.add_column("result")
    detail.add_column("why")
    for o in problems[:SHOWN_PROBLEMS]:
        detail.add_row(str(o.row), o.status, _why(o))
    out.print(detail)
    if len(problems) > SHOWN_PROBLEMS:
        out.print(f"… and {len(problems) - SHOWN_PROBLEMS} more (see --report)")


def _why(outcome: RowOutcome) -> str:
    return "; ".join(f"{f}: {m}" for f, m in outcome.errors)


def _write_report(path: Path, outcomes: list[RowOutcome]) -> None:
    # With a BOM, so Excel on a Chinese Windows opens it as UTF-8.
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "status", "lead_id", "lead_status", "errors"])
        for o in outcomes:
            cells = [o.status, o.lead_id or "", o.lead_status or "", _why(o)]
            writer.writerow([o.row, *(_cell(c) for c in cells)])


def _cell(text: str) -> str:
    """Text a spreadsheet will not run as a formula (the service's answers are not trusted)."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _fail(message: str) -> NoReturn:
    err.print(f"[red]{message}[/red]")
    raise typer.Exit(1)
